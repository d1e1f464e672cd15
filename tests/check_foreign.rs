//! `dsys check A` on a file another algorithm wrote must not pass: a token
//! ring's events hold `cs_enter` too, and once passed a mutex check. For
//! every pair of the algorithms `dsys check --help` lists, the file is
//! refused with exit 2, naming the algorithm that wrote it and the command
//! to use; its own checker still accepts it.

mod common;

use std::path::{Path, PathBuf};

use common::{listed, run, temp_dir};

/// Every `.jsonl` file under `dir`.
fn jsonl_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// One events file written by `algorithm`, made the way a user would: its
/// simulator (or demo, for those without one) with events on.
fn events_of(algorithm: &str, dir: &Path) -> PathBuf {
    let name = format!("{algorithm}.jsonl");
    let out = format!("{algorithm}-out");
    let args: Vec<&str> = if algorithm == "clocks" {
        // Its simulator writes a folder of runs, one file per machine.
        let sim = ["sim", "clocks", "--runs", "1", "--duration", "10s"];
        [&sim[..], &["--out", &out]].concat()
    } else if run(&["sim", algorithm, "--help"], dir).0 == 0 {
        vec!["sim", algorithm, "--events", &name]
    } else {
        vec!["demo", algorithm, "--duration", "6s", "--events", &name]
    };
    let (code, _, err) = run(&args, dir);
    assert!(code == 0 || code == 1, "{args:?}: exit {code}: {err}");
    let file = dir.join(&name);
    if !file.exists() {
        let mut all = Vec::new();
        for f in jsonl_under(&dir.join(&out)) {
            all.extend(std::fs::read(f).expect("read events"));
        }
        std::fs::write(&file, all).expect("write events");
    }
    assert!(
        std::fs::metadata(&file).expect("events file").len() > 0,
        "{algorithm} wrote no events"
    );
    file
}

#[test]
fn every_checker_refuses_every_other_algorithms_events_naming_the_right_one() {
    let dir = temp_dir("check-foreign");
    let algorithms = listed("check", &dir);
    assert!(algorithms.len() >= 5, "{algorithms:?}");
    let files: Vec<(String, PathBuf)> = algorithms
        .iter()
        .map(|a| (a.clone(), events_of(a, &dir)))
        .collect();
    for (wrote, file) in &files {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (code, out, err) = run(&["check", wrote, &name], &dir);
        assert!(
            code == 0 || code == 1,
            "its own checker must read {name}: exit {code}: {err}"
        );
        assert!(out.contains("verdict:"), "{out}");
        for asked in algorithms.iter().filter(|a| *a != wrote) {
            let (code, out, err) = run(&["check", asked, &name], &dir);
            assert_eq!(
                code, 2,
                "dsys check {asked} {name} must be refused: stdout {out} stderr {err}"
            );
            assert!(
                !out.contains("verdict"),
                "no verdict for another algorithm's file: {out}"
            );
            assert!(
                err.contains(&format!("holds {wrote} events"))
                    && err.contains(&format!("dsys check {wrote} ")),
                "dsys check {asked} {name} must name {wrote}: {err}"
            );
        }
    }
}

#[test]
fn a_file_mixing_two_algorithms_is_refused_and_one_with_none_of_its_events_is_not_ok() {
    let dir = temp_dir("check-mixed");
    let tr = events_of("tokenring", &dir);
    let mx = events_of("mutex", &dir);
    let mut both = std::fs::read(&tr).expect("read");
    both.extend(std::fs::read(&mx).expect("read"));
    std::fs::write(dir.join("both.jsonl"), both).expect("write");
    let (code, _, err) = run(&["check", "mutex", "both.jsonl"], &dir);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("both.jsonl") && err.contains("tokenring"),
        "{err}"
    );

    // Only the events every node writes: nothing of the token ring's.
    std::fs::write(
        dir.join("bare.jsonl"),
        "{\"t_us\":1,\"node\":\"l1\",\"event\":\"start\"}\n{\"t_us\":2,\"node\":\"l1\",\"event\":\"stop\"}\n",
    )
    .expect("write");
    let (code, out, err) = run(&["check", "tokenring", "bare.jsonl"], &dir);
    assert_eq!(code, 2, "stdout {out} stderr {err}");
    assert!(!out.contains("verdict: OK"), "{out}");
}
