//! End-to-end: three real `dsys multicast` processes in plain mode send
//! concurrently; every node prints the same delivery sequence. A node is
//! killed (messages wait for it), restarted with no state (it delivers the
//! suffix from its join on), and `dsys check multicast` accepts the run.

mod common;

use std::path::Path;

use common::{Proc, machines, run, temp_dir};

fn node(dir: &Path, name: &str, events: &str) -> Proc {
    let mut p = Proc::spawn(
        name,
        &[
            "multicast",
            name,
            "--plain",
            "--peers",
            "machines.txt",
            "--events",
            events,
        ],
        dir,
    );
    p.name = name.to_string();
    p
}

/// The delivery lines (`[LAMPORT] SENDER: TEXT`), in order.
fn deliveries(p: &Proc) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter(|l| l.starts_with('['))
        .collect()
}

#[test]
fn same_order_everywhere_through_a_kill_and_a_restart() {
    let dir = temp_dir("mc-e2e");
    machines(&dir, &["a", "b", "c"]);
    let mut a = node(&dir, "a", "a.jsonl");
    let mut b = node(&dir, "b", "b.jsonl");
    let mut c = node(&dir, "c", "c.jsonl");
    for p in [&a, &b, &c] {
        p.expect("(joined the group)", 15);
    }
    for i in 0..20 {
        a.send(&format!("from a {i}"));
        b.send(&format!("from b {i}"));
        c.send(&format!("from c {i}"));
    }
    for p in [&a, &b, &c] {
        p.expect_n("] ", 60, 15);
    }
    let first = deliveries(&a);
    assert_eq!(first.len(), 60);
    assert_eq!(deliveries(&b), first, "b's order");
    assert_eq!(deliveries(&c), first, "c's order");

    // c dies: what a and b send now waits for it, and is not lost.
    c.kill9();
    a.send("while c is down 1");
    b.send("while c is down 2");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(deliveries(&a).len(), 60, "nothing delivered without c");
    a.send("/status");
    a.expect("holdback queue 2", 5);
    a.expect("waits for acks from c", 5);

    let mut c2 = node(&dir, "c", "c.jsonl");
    c2.expect("(joined the group)", 15);
    a.expect("while c is down 2", 15);
    b.expect("while c is down 2", 15);
    c2.expect("while c is down 2", 15);
    c2.send("c is back");
    for p in [&a, &b, &c2] {
        p.expect("c is back", 15);
    }
    let all = deliveries(&a);
    assert_eq!(all.len(), 63);
    assert_eq!(deliveries(&b), all);
    // The restarted c delivers a suffix: from its join on, the same order.
    let tail = deliveries(&c2);
    assert!(tail.len() >= 3, "{tail:?}");
    assert_eq!(tail[..], all[all.len() - tail.len()..]);

    for p in [&mut a, &mut b, &mut c2] {
        p.send("/quit");
        assert_eq!(p.wait_exit(10), Some(0), "{} quits", p.name);
    }
    let (code, out, err) = run(
        &["check", "multicast", "a.jsonl", "b.jsonl", "c.jsonl"],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verdict: OK"), "{out}");
}

#[test]
fn bad_input_gets_a_message_not_a_crash() {
    let dir = temp_dir("mc-bad");
    machines(&dir, &["a", "b"]);
    let (code, _, err) = run(&["multicast", "zz", "--peers", "machines.txt"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("no node named \"zz\""), "{err}");
    let (code, _, err) = run(&["multicast", "a", "--peers", "nope.json"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("nope.json"), "{err}");
    let mut a = node(&dir, "a", "a.jsonl");
    a.send("/frobnicate");
    a.expect("unknown command", 5);
    // b is down: a's message waits and a says what it waits for.
    a.send("hello?");
    a.expect("waiting for b", 5);
    let b = node(&dir, "b", "b.jsonl");
    b.expect("hello?", 15);
    a.expect("hello?", 15);
}

/// Nodes that quit one after another leave messages undelivered: that is a
/// liveness matter (who left is named), not an order violation.
#[test]
fn quitting_one_by_one_is_not_a_violation_and_the_checker_says_who_left() {
    let dir = temp_dir("mc-quit");
    machines(&dir, &["a", "b", "c"]);
    let chatty = |name: &str| {
        let mut p = Proc::spawn(
            name,
            &[
                "multicast",
                name,
                "--plain",
                "--peers",
                "machines.txt",
                "--events",
                &format!("{name}.jsonl"),
                "--generate",
                "--rate",
                "20",
            ],
            &dir,
        );
        p.name = name.to_string();
        p
    };
    let mut nodes = [chatty("a"), chatty("b"), chatty("c")];
    for p in &nodes {
        p.expect("(joined the group)", 15);
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    for p in &mut nodes {
        p.send("/quit");
        assert_eq!(p.wait_exit(10), Some(0));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let files = ["check", "multicast", "a.jsonl", "b.jsonl", "c.jsonl"];
    let (code, out, err) = run(&files, &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("safety: OK") && !out.contains("VIOLATED"),
        "{out}"
    );
    if out.contains("did not reach every node") {
        assert!(out.contains("members gone by the end"), "{out}");
        let mut strict = files.to_vec();
        strict.push("--strict");
        let (code, _, _) = run(&strict, &dir);
        assert_eq!(code, 1, "--strict fails on liveness");
    }
}

/// A member that crashes for good: the simulator says what the queues wait
/// for, and only --strict makes that a failure.
#[test]
fn a_member_crashed_for_good_is_a_liveness_matter_in_the_simulator() {
    let dir = temp_dir("mc-sim-crash");
    let (code, out, err) = run(
        &["sim", "multicast", "--nodes", "3", "--crash", "l2@3s"],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("safety: OK"), "{out}");
    assert!(out.contains("waits for acks from l2"), "{out}");
    assert!(out.contains("l2 (last heard of"), "{out}");
    let (code, _, _) = run(
        &[
            "sim",
            "multicast",
            "--nodes",
            "3",
            "--crash",
            "l2@3s",
            "--strict",
        ],
        &dir,
    );
    assert_eq!(code, 1);
}
