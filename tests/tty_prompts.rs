//! Interactive commands in a real terminal (tmux), where Ctrl-D and
//! prompts behave differently from a pipe. One behaviour everywhere: on a
//! terminal, Ctrl-D at a question ends that question; Ctrl-D at the
//! command prompt quits like `quit` (never a node that runs on deaf).

mod common;

use std::path::Path;

use common::tmux::Tmux;
use common::{BIN, Proc, machines, temp_dir};

/// Runs `args` in window `name`; when dsys ends the window shows
/// `EXIT=<code>` and stays open for reading.
fn run_in(t: &Tmux, dir: &Path, name: &str, args: &str) {
    t.window(name, dir, &format!("{BIN} {args}; echo EXIT=$?; sleep 60"));
}

/// Issue 7.1: `lock`, Ctrl-D: the node leaves the critical section, hands
/// the token on and quits (before, it stopped reading and held the section).
#[test]
fn tokenring_ctrl_d_inside_the_critical_section_leaves_it_and_quits() {
    let dir = temp_dir("tty-tokenring");
    machines(&dir, &["a", "b", "c"]);
    let t = Tmux::new("tty-tr", &dir, 100, 30);
    let mut b = Proc::spawn(
        "b",
        &["tokenring", "b", "--next", "c", "--hop-delay", "20ms"],
        &dir,
    );
    let mut c = Proc::spawn(
        "c",
        &["tokenring", "c", "--next", "a", "--hop-delay", "20ms"],
        &dir,
    );
    b.expect("Type `help`", 10);
    c.expect("Type `help`", 10);
    run_in(&t, &dir, "a", "tokenring a --next b --hop-delay 20ms");
    let s = t.wait_for("a", "Type `help`");
    assert!(s.contains("Type `help`"), "{s}");
    t.keys("a", &["start", "Enter"]);
    t.keys("a", &["lock", "Enter"]);
    let s = t.wait_for("a", "entered the critical section");
    assert!(s.contains("entered the critical section"), "{s}");
    t.keys("a", &["C-d"]);
    let s = t.wait_for("a", "EXIT=");
    assert!(s.contains("left the critical section"), "{s}");
    assert!(s.contains("EXIT=0"), "{s}");
    // The token was handed on: b gets in.
    b.send("lock");
    b.expect("entered the critical section", 20);
    for p in [&mut b, &mut c] {
        p.send("quit");
        assert_eq!(p.wait_exit(10), Some(0));
    }
}

/// Issue 7.13: a name whose port is busy is refused at the prompt and
/// asked again (before, the node exited after the name was typed).
#[test]
fn a_busy_port_at_the_name_prompt_asks_again() {
    let dir = temp_dir("tty-busy");
    machines(&dir, &["a", "b"]);
    let t = Tmux::new("tty-busy", &dir, 120, 30);
    let mut a = Proc::spawn("a", &["tokenring", "a", "--next", "b"], &dir);
    a.expect("Type `help`", 10);
    run_in(&t, &dir, "x", "tokenring --hop-delay 20ms");
    let s = t.wait_for("x", "this node's name:");
    assert!(s.contains("machines in"), "{s}");
    t.keys("x", &["a", "Enter"]);
    let s = t.wait_for("x", "is in use");
    assert!(
        s.contains("a's address") && s.contains("pick another name"),
        "{s}"
    );
    assert!(!s.contains("EXIT="), "{s}");
    t.keys("x", &["b", "Enter"]);
    t.wait_for("x", "next node's name:");
    t.keys("x", &["a", "Enter"]);
    let s = t.wait_for("x", "Type `help`");
    assert!(s.contains("b listening on"), "{s}");
    t.keys("x", &["C-d"]);
    let s = t.wait_for("x", "EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    a.send("quit");
    a.wait_exit(10);
}

/// Issue 7.1: Ctrl-D at gossip's neighbour questions ends the questions;
/// the node then reads commands (`peers`, `status`), and Ctrl-D at the
/// command prompt quits.
#[test]
fn gossip_ctrl_d_at_a_question_ends_it_and_commands_still_work() {
    let dir = temp_dir("tty-gossip");
    machines(&dir, &["a", "b", "c"]);
    let t = Tmux::new("tty-gossip", &dir, 120, 40);
    let mut a = Proc::spawn("a", &["gossip", "a", "--neighbors", "c"], &dir);
    a.expect("a listening", 10);
    run_in(&t, &dir, "b", "gossip b");
    let s = t.wait_for("b", "how many nodes to add");
    assert!(s.contains("how many nodes to add"), "{s}");
    t.keys("b", &["2", "Enter"]);
    t.wait_for("b", "node 1 of 2 to add");
    t.keys("b", &["a", "Enter"]);
    let s = t.wait_for("b", "node 2 of 2 to add");
    assert!(s.contains("node 2 of 2 to add"), "{s}");
    t.keys("b", &["C-d"]);
    let s = t.wait_for("b", "not asking for more neighbors");
    assert!(s.contains("not asking for more neighbors"), "{s}");
    t.keys("b", &["peers", "Enter"]);
    let s = t.wait_for("b", "(up)");
    assert!(
        s.contains("(up)") && s.contains("  a "),
        "peers lists a:\n{s}"
    );
    t.keys("b", &["status", "Enter"]);
    let s = t.wait_for("b", "words");
    assert!(!s.contains("EXIT="), "{s}");
    t.keys("b", &["C-d"]);
    let s = t.wait_for("b", "EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    a.send("quit");
    a.wait_exit(10);
}

/// Issue 7.1: plain multicast on a terminal: commands are read, and
/// Ctrl-D quits (before, it said "keeps running" and stopped reading).
#[test]
fn plain_multicast_on_a_terminal_quits_on_ctrl_d() {
    let dir = temp_dir("tty-multicast");
    machines(&dir, &["a", "b"]);
    let t = Tmux::new("tty-mc", &dir, 120, 30);
    run_in(&t, &dir, "a", "multicast a --peers machines.txt --plain");
    t.wait_for("a", "a listening");
    t.keys("a", &["/status", "Enter"]);
    let s = t.wait_for("a", "lamport clock");
    assert!(s.contains("lamport clock"), "{s}");
    t.keys("a", &["C-d"]);
    let s = t.wait_for("a", "EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
}

/// The chat UI on SIGTERM leaves like /quit: the terminal restored, the
/// node stopped, exit 0 (before, the process died inside the UI).
#[test]
fn the_chat_ui_leaves_cleanly_on_sigterm() {
    let dir = temp_dir("tty-sigterm");
    machines(&dir, &["a", "b"]);
    let t = Tmux::new("tty-term", &dir, 100, 20);
    run_in(
        &t,
        &dir,
        "a",
        "multicast a --peers machines.txt --events sigterm-ui.jsonl",
    );
    let s = t.wait_for("a", "messages, in total order");
    assert!(s.contains("messages, in total order"), "{s}");
    let pgrep = std::process::Command::new("pgrep")
        .args(["-f", "^[^ ]*dsys multicast a .*sigterm-ui.jsonl"])
        .output()
        .expect("pgrep");
    let pids = String::from_utf8_lossy(&pgrep.stdout).to_string();
    let pid = pids
        .lines()
        .find(|l| !l.trim().is_empty())
        .expect("the chat's pid")
        .trim()
        .to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok);
    let s = t.wait_for("a", "EXIT=");
    assert!(s.contains("a stopped") && s.contains("EXIT=0"), "{s}");
    assert!(
        !s.contains("messages, in total order"),
        "the UI is gone:\n{s}"
    );
}
