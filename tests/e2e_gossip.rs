//! End-to-end: real `dsys gossip` processes on loopback. The topology is
//! built through the prompts (two nodes add each other at the same moment),
//! words are injected with `say`, a node is killed and restarted, and
//! `dsys check gossip` must find every word at every live node.

mod common;

use std::path::Path;

use common::{Proc, machines, run, temp_dir};

fn gossip(dir: &Path, name: &str, events: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "gossip",
        "--no-generate",
        "--anti-entropy-interval",
        "500ms",
        "--events",
        events,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(name, &args, dir)
}

#[test]
fn topology_from_prompts_words_everywhere_and_a_restarted_node_catches_up() {
    let dir = temp_dir("gossip-e2e");
    machines(&dir, &["a", "b", "c", "d", "e"]);
    let mut a = gossip(&dir, "a", "a.jsonl", &[]);
    a.send("a");
    a.expect("listening", 10);
    a.send("0");
    let mut b = gossip(&dir, "b", "b.jsonl", &[]);
    b.send("b");
    b.expect("listening", 10);
    b.send("1");
    b.send("a");
    b.expect("linked with a", 10);
    a.expect("b linked with us", 10);

    // c and d add each other at the same moment.
    let mut c = gossip(&dir, "c", "c.jsonl", &[]);
    let mut d = gossip(&dir, "d", "d.jsonl", &[]);
    c.send("c");
    d.send("d");
    c.expect("listening", 10);
    d.expect("listening", 10);
    c.send("1");
    d.send("2");
    c.send("d");
    d.send("c");
    // Either add may land first; both ends end up linked either way.
    for (p, other) in [(&c, "d"), (&d, "c")] {
        let done = || {
            p.count(&format!("linked with {other}")) > 0
                || p.count(&format!("{other} is already a neighbor")) > 0
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            done(),
            "{}: not linked with {other}:\n{}",
            p.name,
            p.lines().join("\n")
        );
    }
    d.send("b");
    d.expect("linked with b", 10);
    for p in [&a, &b, &c, &d] {
        p.expect("type `help` for commands", 10);
    }
    c.send("peers");
    d.send("peers");
    c.expect("  d ", 5);
    d.expect("  c ", 5);

    a.send("say alpha");
    d.send("say delta");
    for p in [&a, &b, &c, &d] {
        p.expect("\"alpha\"", 10);
        p.expect("\"delta\"", 10);
    }

    // b links the two halves; kill it and words stop crossing...
    b.kill9();
    a.send("say while-b-is-down");
    c.send("say from-c");
    assert!(!a.wait_for("from-c", 1), "a word crossed without b");
    // ...until b is back (with no state) and anti-entropy catches everyone up.
    let b2 = gossip(&dir, "b", "b-2.jsonl", &["b", "--neighbors", "a,d"]);
    b2.expect("\"alpha\"", 15);
    b2.expect("\"while-b-is-down\"", 15);
    b2.expect("\"from-c\"", 15);
    a.expect("\"from-c\"", 15);
    c.expect("\"while-b-is-down\"", 15);

    b2.expect("type `help`", 5);
    let mut all = vec![a, b2, c, d];
    for p in &mut all {
        p.send("status");
        p.expect("words known: 4", 10);
        p.send("quit");
        assert_eq!(p.wait_exit(10), Some(0), "{} quits cleanly", p.name);
    }
    let (code, out, err) = run(
        &[
            "check",
            "gossip",
            "a.jsonl",
            "b.jsonl",
            "b-2.jsonl",
            "c.jsonl",
            "d.jsonl",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("coverage: 100.00%"), "{out}");
    assert!(out.contains("words: 4 at 4 live nodes"), "{out}");
}

#[test]
fn bad_answers_at_every_prompt_get_a_message_and_the_question_again() {
    let dir = temp_dir("gossip-prompts");
    machines(&dir, &["a", "b", "down"]);
    let mut b = gossip(&dir, "b", "b.jsonl", &["b", "--neighbors", ""]);
    b.expect("listening", 10);
    let mut a = gossip(&dir, "a", "a.jsonl", &[]);
    a.expect("machines in machines.txt: a, b, down", 10);
    a.send("nobody");
    a.expect("\"nobody\" is not a machine", 5);
    a.send("a");
    a.expect("listening", 5);
    for bad in ["many", "-1", "3"] {
        a.send(bad);
    }
    a.expect("is not a number", 5);
    a.expect("there are only 2 other nodes", 5);
    a.send("2");
    a.send("a");
    a.expect("that is this node", 5);
    a.send("zz");
    a.expect("\"zz\" is not a machine", 5);
    a.send("down");
    a.expect("down does not answer", 10);
    a.send("b");
    a.expect("linked with b", 10);
    a.send("b");
    a.expect("b is added already", 5);
    a.send("down");
    a.expect_n("down does not answer", 2, 10);
    // End of input stops the questions, not the node: it still gossips.
    a.close_stdin();
    a.expect("not asking for more neighbors", 5);
    assert_eq!(a.wait_exit(1), None);
    b.send("say still-here");
    a.expect("\"still-here\"", 10);

    // Commands afterwards.
    b.send("add");
    b.expect("which node?", 5);
    b.send("add zz");
    b.expect("\"zz\" is not a machine", 5);
    b.send("add b");
    b.expect("that is this node", 5);
    b.send("remove down");
    b.expect("not a neighbor", 5);
    b.send("say");
    b.expect("say what?", 5);
    b.send("gen sideways");
    b.expect("usage: gen on|off", 5);
    b.send("frobnicate");
    b.expect("unknown command", 5);
    b.send("peers");
    b.expect("a ", 5);
    b.send("remove a");
    b.expect("removed a", 5);
    a.expect("b removed us", 5);
    b.send("words");
    b.expect("word(s) known", 5);
    b.send("status");
    b.expect("words known:", 5);
}

#[test]
fn gossip_without_a_name_on_a_pipe_that_ends_is_a_clear_error() {
    let dir = temp_dir("gossip-eof");
    machines(&dir, &["a"]);
    let (code, _, err) = run(&["gossip"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("no answer"), "{err}");
    let (code, _, err) = run(&["gossip", "a", "--neighbors", "zz"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("no node named \"zz\""), "{err}");
}
