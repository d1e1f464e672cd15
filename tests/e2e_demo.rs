//! `dsys demo X` for every algorithm `dsys demo --help` lists: real nodes in
//! one process, a node killed and restarted on the demo's schedule (or the
//! user's `--crash`/`--restart`), the checker's verdict, and an events file
//! that `dsys check X` accepts again.

mod common;

use common::{listed, run, temp_dir};

#[test]
fn every_demo_kills_and_restarts_a_node_and_passes_its_check() {
    let dir = temp_dir("demos");
    let demos = listed("demo", &dir);
    for algo in ["tokenring", "mutex", "gossip", "multicast"] {
        assert!(demos.iter().any(|d| d == algo), "dsys demo lists {demos:?}");
    }
    for algo in &demos {
        let events = dir.join(format!("{algo}.jsonl")).display().to_string();
        let (code, out, err) = run(
            &["demo", algo, "--duration", "10s", "--events", &events],
            &dir,
        );
        assert_eq!(code, 0, "dsys demo {algo}: {out}{err}");
        assert!(out.contains("==== killed l"), "{algo}: no crash:\n{out}");
        assert!(
            out.contains("==== restarted l"),
            "{algo}: no restart:\n{out}"
        );
        assert!(out.contains("--- verdict"), "{algo}: no verdict:\n{out}");
        assert!(out.contains("verdict: OK"), "{algo}:\n{out}");
        if algo == "multicast" {
            // It says how long it sends, not the whole run as if it sent
            // all along.
            assert!(
                out.contains("for 7s, then 3s for the last to be delivered"),
                "{out}"
            );
        }
        let (code, again, err) = run(&["check", algo, &events], &dir);
        assert_eq!(
            code, 0,
            "dsys check {algo} on the demo's events: {again}{err}"
        );
    }
}

#[test]
fn a_demo_takes_the_users_crash_schedule_and_refuses_a_bad_one() {
    let dir = temp_dir("demo-schedule");
    let (code, out, err) = run(
        &[
            "demo",
            "mutex",
            "--duration",
            "6s",
            "--crash",
            "l2@1500ms",
            "--restart",
            "l2@3s",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("] ==== killed l2 "), "{out}");
    assert!(out.contains("] ==== restarted l2 "), "{out}");
    assert_eq!(out.matches("==== killed").count(), 1, "{out}");

    let (code, _, err) = run(&["demo", "mutex", "--crash", "l9@1s"], &dir);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("l9"), "{err}");
    let (code, _, err) = run(&["demo", "gossip", "--restart", "l2@1s"], &dir);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not down"), "{err}");
}
