//! The simulator's output for fixed seeds, pinned: what each scenario below
//! prints (stdout) and writes (its event files) must hash to what
//! `tests/golden/sim.txt` recorded. A refactor changes no behaviour; this is
//! how it proves it. A change that means to alter a run records again:
//!
//! ```sh
//! DSYS_RECORD_GOLDEN=1 cargo test --test sim_golden   # then say why in the commit
//! ```

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{run, temp_dir};

/// (name, the command after `dsys`, with `{dir}` for a scratch folder).
const SCENARIOS: &[(&str, &str)] = &[
    (
        "tokenring-default",
        "sim tokenring --seed 7 --events {dir}/e.jsonl",
    ),
    (
        "tokenring-faults",
        "sim tokenring --nodes 4 --duration 5s --seed 11 --loss 0.02 --crash l2@2s --restart l2@3s --events {dir}/e.jsonl",
    ),
    ("mutex-default", "sim mutex --seed 7 --events {dir}/e.jsonl"),
    (
        "mutex-faults",
        "sim mutex --seed 12 --loss 0.05 --duplicate 0.02 --crash l2@3s --restart l2@5s --pause l4@2s-3s --events {dir}/e.jsonl",
    ),
    (
        "mutex-reuse",
        "sim mutex --seed 13 --reuse-permissions --events {dir}/e.jsonl",
    ),
    (
        "gossip-default",
        "sim gossip --seed 7 --events {dir}/e.jsonl",
    ),
    (
        "gossip-faults",
        "sim gossip --seed 14 --loss 0.1 --crash l3@2s --restart l3@4s --events {dir}/e.jsonl",
    ),
    (
        "multicast-default",
        "sim multicast --seed 7 --events {dir}/e.jsonl",
    ),
    (
        "multicast-faults",
        "sim multicast --seed 15 --crash l2@3s --restart l2@5s --events {dir}/e.jsonl",
    ),
    (
        "clocks-runs",
        "clocks sim --runs 2 --duration 10s --seed 16 --out {dir}/out",
    ),
];

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

/// Lines that carry wall-clock time, not the run's, are left out of the
/// hash. The scratch folder's name (it differs per run) reads as `{dir}`.
fn deterministic(stdout: &str, dir: &str) -> String {
    stdout
        .replace(dir, "{dir}")
        .lines()
        .filter(|l| !l.contains("simulated run(s) of"))
        .map(|l| match l.split_once("virtual time) in ") {
            // "... (20.3s of virtual time) in 0.19s (seed 14)": the wall
            // time goes.
            Some((head, tail)) => {
                let rest = tail.split_once(' ').map_or("", |(_, r)| r);
                format!("{head}virtual time in (wall) {rest}\n")
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// Every event and log file the scenario wrote, in name order.
fn files_hash(dir: &Path) -> String {
    fn walk(d: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "jsonl" || x == "log") {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(rel.display().to_string(), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    assert!(!files.is_empty(), "no event files in {}", dir.display());
    let mut all = Vec::new();
    for (name, bytes) in files {
        all.extend_from_slice(name.as_bytes());
        all.push(0);
        all.extend_from_slice(&bytes);
    }
    hash(&all)
}

#[test]
fn fixed_seeds_give_the_recorded_simulator_output() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sim.txt");
    let mut got = String::from(
        "# scenario  stdout-hash  files-hash (tests/sim_golden.rs; DSYS_RECORD_GOLDEN=1 records again)\n",
    );
    for (name, cmd) in SCENARIOS {
        let dir = temp_dir(&format!("golden-{name}"));
        let d = dir.display().to_string();
        let args: Vec<String> = cmd.split(' ').map(|a| a.replace("{dir}", &d)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args, &dir);
        assert!(code == 0 || code == 1, "{name}: exit {code}: {err}");
        got.push_str(&format!(
            "{name}  {}  {}\n",
            hash(deterministic(&out, &d).as_bytes()),
            files_hash(&dir)
        ));
    }
    if std::env::var_os("DSYS_RECORD_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden).expect("tests/golden/sim.txt");
    let (want_lines, got_lines): (Vec<&str>, Vec<&str>) =
        (want.lines().collect(), got.lines().collect());
    let changed: Vec<String> = want_lines
        .iter()
        .zip(&got_lines)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  recorded {w}\n  now      {g}"))
        .collect();
    assert!(
        changed.is_empty() && want_lines.len() == got_lines.len(),
        "the simulator's output changed for fixed seeds:\n{}\n(a refactor must change nothing; if the change is meant, DSYS_RECORD_GOLDEN=1 cargo test --test sim_golden, and say why in the commit)",
        changed.join("\n")
    );
}
