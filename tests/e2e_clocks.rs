//! The clock model on real processes: `dsys clocks run` end to end, and
//! three machines started by hand, typed into, one killed and restarted.

mod common;

use common::{Proc, machines, run, temp_dir};

#[test]
fn a_short_real_run_writes_logs_a_passing_check_and_a_report() {
    let dir = temp_dir("clocks-run");
    let (code, out, err) = run(
        &[
            "clocks",
            "run",
            "--duration",
            "5s",
            "--runs",
            "1",
            "--rates",
            "2..4",
            "--out",
            "r",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("run-1: l1 "), "a line for the run: {out}");
    assert!(out.contains("report: r/report.md"), "{out}");
    let mut files = Vec::new();
    for n in ["l1", "l2", "l3"] {
        let log = std::fs::read_to_string(dir.join(format!("r/run-1/{n}.log"))).unwrap();
        assert!(log.contains("setup "), "{n}.log: {log}");
        assert!(log.contains(" clock "), "{n}.log has clock lines: {log}");
        files.push(format!("r/run-1/{n}.jsonl"));
    }
    let mut args = vec!["check", "clocks"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, _) = run(&args, &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: OK"), "{out}");
    // 5 s at 2..4 ticks/s: 10 to 20 ticks each.
    for line in out.lines().filter(|l| l.contains(" ticks in ")) {
        let ticks: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!((10..=20).contains(&ticks), "{line}");
    }
    let md = std::fs::read_to_string(dir.join("r/report.md")).unwrap();
    assert!(
        md.contains("## run-1") && md.contains("(run-1-clock.svg)"),
        "{md}"
    );
    assert!(dir.join("r/run-1-jumps.svg").exists());
}

#[test]
fn three_machines_by_hand_tick_answer_status_and_survive_a_kill() {
    let dir = temp_dir("clocks-hand");
    let peers = machines(&dir, &["l1", "l2", "l3"]);
    let peers = peers.to_str().unwrap();
    let start = |name: &str, rate: &str| {
        Proc::spawn(
            name,
            &["clocks", name, "--peers", peers, "--rate", rate],
            &dir,
        )
    };
    // The README's quick start names no files: the log and the events are
    // written by default, where the machine says.
    let mut l1 = start("l1", "5");
    l1.expect("Log: l1.log, events: l1.jsonl", 10);
    l1.expect("rate: 5 ticks per second", 10);
    let mut l2 = start("l2", "2");
    let mut l3 = start("l3", "6");
    for p in [&l1, &l2, &l3] {
        p.expect("ticking at", 15);
    }
    l1.expect("#5 ", 10);
    l1.send("status");
    l1.expect("l1: ticking at 5 ticks/s", 5);
    l2.send("nonsense");
    l2.expect("unknown command \"nonsense\"", 5);
    l3.kill9();
    l1.expect("l3 is DOWN", 15);
    // l1 and l2 go on ticking; a new l3 joins them.
    let ticks = l1.count("clock ");
    let l3 = start("l3", "6");
    l3.expect("ticking at 6/s", 15);
    l3.expect("#3 ", 10);
    assert!(l1.count("clock ") > ticks, "l1 kept ticking");
    // A receive is random (each tick sends with some probability, to a
    // random peer) and l2 ticks slowly: wait for one rather than hope the
    // few seconds above held one.
    l2.expect("recv ", 30);
    for mut p in [l1, l2, l3] {
        p.send("quit");
        assert_eq!(p.wait_exit(10), Some(0), "{} quits", p.name);
    }
    let (code, out, _) = run(
        &["check", "clocks", "l1.jsonl", "l2.jsonl", "l3.jsonl"],
        &dir,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: OK"), "{out}");
    let log = std::fs::read_to_string(dir.join("l2.log")).unwrap();
    assert!(log.contains("receive     from"), "{log}");
    // Both lives of l3 are in its files, and the report reads them.
    let l3 = std::fs::read_to_string(dir.join("l3.log")).unwrap();
    assert_eq!(l3.matches("setup ").count(), 2, "{l3}");
    let (code, out, err) = run(&["clocks", "report", "."], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(dir.join("report.md").exists(), "{out}");
}

#[test]
fn no_log_writes_no_files() {
    let dir = temp_dir("clocks-nolog");
    let peers = machines(&dir, &["l1", "l2"]);
    let peers = peers.to_str().unwrap();
    let mut l1 = Proc::spawn("l1", &["clocks", "l1", "--peers", peers, "--no-log"], &dir);
    l1.expect("listening on", 10);
    l1.expect("rate: ", 10);
    assert_eq!(l1.count("Log: "), 0, "{:?}", l1.lines());
    l1.send("quit");
    assert_eq!(l1.wait_exit(10), Some(0));
    assert!(!dir.join("l1.log").exists() && !dir.join("l1.jsonl").exists());
    let (code, _, err) = run(
        &[
            "clocks", "l1", "--peers", peers, "--no-log", "--log", "x.log",
        ],
        &dir,
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn bad_flags_and_names_are_refused_with_the_reason() {
    let dir = temp_dir("clocks-bad");
    let peers = machines(&dir, &["l1", "l2"]);
    let peers = peers.to_str().unwrap();
    let (code, _, err) = run(&["clocks", "nobody", "--peers", peers], &dir);
    assert_eq!(code, 2);
    assert!(
        err.contains("nobody") && err.contains("machines.txt"),
        "{err}"
    );
    let (code, _, err) = run(&["clocks", "l1", "--peers", peers, "--rate", "0"], &dir);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["clocks", "run", "--event-range", "2"], &dir);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &["clocks", "l1", "--peers", peers, "--internal-prob", "1.5"],
        &dir,
    );
    assert_eq!(code, 2);
    assert!(err.contains("probability"), "{err}");
    // Without a name and without a terminal: the names are listed.
    let (code, _, err) = run(&["clocks", "--peers", peers], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("l1, l2"), "{err}");
}
