//! The chat UI in a real terminal, driven the way a person would: two
//! `dsys multicast` nodes in tmux windows, keys sent with `send-keys`, the
//! screen read with `capture-pane`.

mod common;

use std::path::Path;

use common::tmux::Tmux;
use common::{BIN, machines, temp_dir};

/// A chat window for node `node` (something on the screen before the UI
/// starts must not stay there).
fn chat(t: &Tmux, dir: &Path, node: &str) {
    t.window(
        node,
        dir,
        &format!("echo Killed; {BIN} multicast {node} --peers machines.txt"),
    );
}

#[test]
fn two_chat_windows_see_each_other_and_ctrl_c_leaves_cleanly() {
    let dir = temp_dir("tui");
    machines(&dir, &["a", "b"]);
    let t = Tmux::new("tui", &dir, 80, 16);
    chat(&t, &dir, "a");
    chat(&t, &dir, "b");
    let s = t.wait_for("a", "b up");
    assert!(
        s.contains("messages, in total order") && s.contains("b up"),
        "{s}"
    );
    assert!(
        !s.contains("Killed"),
        "the screen was cleared at start:\n{s}"
    );
    t.keys("a", &["hello from a", "Enter"]);
    t.keys("b", &["and b says hi", "Enter"]);
    for w in ["a", "b"] {
        let s = t.wait_for(w, "and b says hi");
        assert!(
            s.contains("a: hello from a") && s.contains("b: and b says hi"),
            "{w}:\n{s}"
        );
        let a_at = s.find("hello from a").unwrap_or(usize::MAX);
        let b_at = s.find("and b says hi").unwrap_or(0);
        assert!(a_at < b_at, "same order in {w}:\n{s}");
    }
    // Editing: type, move left, insert; history with Up.
    t.keys("a", &["wrld", "Left", "Left", "Left", "o", "Enter"]);
    let s = t.wait_for("b", "a: world");
    assert!(s.contains("a: world"), "{s}");
    t.keys("a", &["Up"]);
    let s = t.wait_for("a", "│world ");
    assert!(s.contains("│world "), "history recall:\n{s}");
    // /status answers in the message pane; /gen without on|off says how.
    t.keys("a", &["End", "C-u", "/status", "Enter"]);
    let s = t.wait_for("a", "Lamport clock");
    assert!(
        s.contains("Lamport clock") && !s.contains("unknown command"),
        "{s}"
    );
    t.keys("a", &["/gen", "Enter"]);
    let s = t.wait_for("a", "usage: /gen on|off");
    assert!(s.contains("usage: /gen on|off"), "{s}");
    // A line longer than the window scrolls: its end stays visible.
    let long = format!("{}THE-END", "wordy ".repeat(25));
    t.keys("a", &[long.as_str()]);
    let s = t.wait_for("a", "wordy THE-END");
    assert!(
        s.contains("wordy THE-END"),
        "the end of a long line is visible:\n{s}"
    );
    t.keys("a", &["Enter"]);
    let s = t.wait_for("b", "THE-END");
    assert!(
        s.contains("THE-END") && s.matches("wordy").count() == 25,
        "a long message wraps and is shown whole:\n{s}"
    );
    // Ctrl-D on a draft deletes the character under the cursor, and the
    // node stays; on an empty line it quits.
    t.keys("b", &["draft", "Home", "C-d"]);
    let s = t.wait_for("b", "│raft");
    assert!(s.contains("│raft"), "the draft is kept:\n{s}");
    t.keys("b", &["C-u", "End", "BSpace", "BSpace", "BSpace", "BSpace"]);
    t.keys("b", &["C-d"]);
    assert!(
        t.closed("b", 10),
        "b still running after Ctrl-D on an empty line"
    );
    let s = t.wait_for("a", "b DOWN");
    assert!(s.contains("b DOWN"), "{s}");
    // b comes back: a says so; Ctrl-C quits too.
    chat(&t, &dir, "b");
    let s = t.wait_for("a", "b joined");
    assert!(s.contains("b joined"), "{s}");
    t.keys("b", &["C-c"]);
    assert!(t.closed("b", 10), "b still running after Ctrl-C");
    let s = t.wait_for("a", "b DOWN");
    assert!(s.contains("b DOWN"), "{s}");
}
