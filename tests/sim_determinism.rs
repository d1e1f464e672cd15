//! The simulator's promise: the same seed gives byte-identical event
//! output, for every algorithm `dsys sim` lists, through the real command
//! line, with faults (loss, a crash and a restart).

mod common;

use std::path::Path;

use common::{listed, run, temp_dir};

/// Every event and log file under `dir`, in name order, as one byte string
/// (a report names its folder, which differs between the runs).
fn written(dir: &Path) -> Vec<u8> {
    let mut paths = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else if e
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl" || x == "log")
            {
                paths.push(e.path());
            }
        }
    }
    paths.sort();
    let mut all = Vec::new();
    for p in paths {
        all.extend_from_slice(
            p.strip_prefix(dir)
                .expect("under dir")
                .as_os_str()
                .as_encoded_bytes(),
        );
        all.extend(std::fs::read(&p).expect("read"));
    }
    all
}

#[test]
fn the_same_seed_gives_byte_identical_events() {
    let dir = temp_dir("determinism");
    let algorithms = listed("sim", &dir);
    assert!(
        ["tokenring", "mutex", "gossip", "multicast", "clocks"]
            .iter()
            .all(|a| algorithms.iter().any(|b| b == a)),
        "dsys sim lists {algorithms:?}"
    );
    for algo in &algorithms {
        let (_, help, _) = run(&["sim", algo, "--help"], &dir);
        let mut outputs = Vec::new();
        for (i, seed) in ["11", "11", "12"].iter().enumerate() {
            let out = dir.join(format!("{algo}-{i}"));
            std::fs::create_dir_all(&out).expect("mkdir");
            let o = out.display().to_string();
            let events = format!("{o}/events.jsonl");
            let mut args: Vec<&str> = vec!["sim", algo, "--seed", seed];
            if help.contains("--events") {
                // A peer algorithm: the shared scenario flags, with faults.
                args.extend([
                    "--events",
                    &events,
                    "--nodes",
                    "4",
                    "--duration",
                    "3s",
                    "--loss",
                    "0.02",
                    "--crash",
                    "l2@1s",
                    "--restart",
                    "l2@2s",
                ]);
            } else {
                // The clock model writes its runs' logs to a folder.
                args.extend(["--out", &o, "--runs", "1", "--duration", "10s"]);
            }
            let (code, stdout, err) = run(&args, &dir);
            assert!(code == 0 || code == 1, "{algo}: {stdout}{err}");
            outputs.push(written(&out));
        }
        assert!(outputs[0].len() > 1000, "{algo}: events were written");
        assert!(
            outputs[0] == outputs[1],
            "{algo}: seed 11 twice gave different events"
        );
        assert!(
            outputs[0] != outputs[2],
            "{algo}: seeds 11 and 12 gave the same events"
        );
    }
}

/// The summary line says the run is the duration asked for plus the
/// settling time, not a sum the user did not ask for.
#[test]
fn the_summary_line_names_the_duration_asked_for_and_the_settle() {
    let dir = temp_dir("sim-summary");
    for algorithm in listed("sim", &dir) {
        let (_, help, _) = run(&["sim", &algorithm, "--help"], &dir);
        if !help.contains("--settle") {
            continue;
        }
        let (code, out, err) = run(
            &["sim", &algorithm, "--duration", "3s", "--settle", "2s"],
            &dir,
        );
        assert!(code == 0 || code == 1, "{algorithm}: {err}");
        assert!(
            out.lines()
                .next()
                .is_some_and(|l| l.contains("for 3s + 2s settle (")),
            "{algorithm}: {out}"
        );
    }
}
