//! End-to-end: real `dsys mutex` processes on loopback, typed into through
//! stdin as at three terminals, checked through what they print, their
//! critical-section log and `dsys check mutex` on their events.

mod common;

use std::path::Path;

use common::{Proc, machines, run, temp_dir};

fn node(dir: &Path, name: &str, extra: &[&str]) -> Proc {
    let mut events = format!("{name}.jsonl");
    let mut k = 1;
    while dir.join(&events).exists() {
        k += 1;
        events = format!("{name}-{k}.jsonl");
    }
    let mut args = vec!["mutex", name, "--cs-log", "cs.log", "--events", &events];
    args.extend_from_slice(extra);
    let p = Proc::spawn(name, &args, dir);
    p.expect("Type `help`", 10);
    p
}

/// The README's walk: three nodes, `lock` on two at once; every step is
/// printed; the one that goes first is the smaller (timestamp, name); the
/// other enters when it leaves. Kill one: the waiting is explained; restart
/// it: the others go on. The checker agrees.
#[test]
fn three_nodes_two_locks_at_once_a_kill_and_a_restart() {
    let dir = temp_dir("mutex-walk");
    machines(&dir, &["a", "b", "c"]);
    let mut a = node(&dir, "a", &[]);
    let mut b = node(&dir, "b", &[]);
    let mut c = node(&dir, "c", &[]);
    std::thread::sleep(std::time::Duration::from_millis(300));

    a.send("lock");
    a.expect("request ts=1 sent to b, c", 5);
    a.expect("reply from b", 5);
    a.expect("(2 of 2)", 5);
    a.expect("entered the critical section", 5);
    b.expect("replied to a (its request ts=1)", 5);
    // b asks while a is inside: a defers it.
    b.send("lock");
    a.expect("deferred b's request", 5);
    b.send("status");
    b.expect("replies awaited from: a", 5);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        b.count("entered the critical section"),
        0,
        "b is not in yet"
    );
    a.send("unlock");
    a.expect("left the critical section; replied to the deferred: b", 5);
    b.expect("entered the critical section", 5);
    b.send("unlock");
    b.expect("left the critical section", 5);

    // Two at once: the smaller (timestamp, name) goes first.
    b.send("lock");
    c.send("lock");
    let first_in = |p: &Proc| p.count("entered the critical section");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while first_in(&b) < 2 && first_in(&c) < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Whoever is in leaves; the other gets in.
    if first_in(&b) >= 2 {
        b.send("unlock");
        c.expect("entered the critical section", 5);
        c.send("unlock");
    } else {
        c.send("unlock");
        b.expect_n("entered the critical section", 2, 5);
        b.send("unlock");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));

    // c dies: a request waits for it, and says so.
    c.kill9();
    a.send("lock");
    a.expect("waiting for c, which is DOWN", 10);
    // c comes back: a is let in.
    let mut c = node(&dir, "c", &[]);
    a.expect_n("entered the critical section", 2, 15);
    a.send("unlock");
    c.send("lock");
    c.expect("entered the critical section", 10);
    c.send("unlock");
    for p in [&mut a, &mut b, &mut c] {
        p.send("quit");
        assert_eq!(p.wait_exit(10), Some(0), "{} quits cleanly", p.name);
    }
    let log = std::fs::read_to_string(dir.join("cs.log")).unwrap();
    assert!(log.lines().count() >= 6, "{log}");
    assert!(log.lines().all(|l| l.contains(" ts ")), "{log}");
    let (code, out) = common::check_dir(&dir, "mutex");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mutual exclusion: OK"), "{out}");
    assert!(out.contains("priority: OK"), "{out}");
}

/// Quitting inside the critical section leaves it and answers the deferred
/// requests; with --reuse-permissions a node locking again alone sends no
/// messages; bad input gets a hint.
#[test]
fn quit_inside_answers_the_deferred_and_reuse_costs_nothing() {
    let dir = temp_dir("mutex-quit");
    machines(&dir, &["a", "b"]);
    let mut a = node(&dir, "a", &["--reuse-permissions"]);
    let mut b = node(&dir, "b", &["--reuse-permissions"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.send("frobnicate");
    a.expect("unknown command", 5);
    a.send("auto sometimes");
    a.expect(
        "\"sometimes\" is not a mean time between locks (usage: auto [MEAN]|off)",
        5,
    );
    a.send("lock");
    a.expect("entered the critical section", 5);
    a.send("unlock");
    a.send("lock");
    a.expect(
        "every permission is still held from earlier entries (b): no messages",
        5,
    );
    a.expect_n("entered the critical section", 2, 5);
    b.send("lock");
    a.expect("deferred b's request", 5);
    a.send("quit");
    assert_eq!(a.wait_exit(10), Some(0));
    b.expect("entered the critical section", 10);
    b.send("quit");
    b.wait_exit(10);
    let (code, out) = common::check_dir(&dir, "mutex");
    assert_eq!(code, 0, "{out}");

    let (code, _, err) = run(&["mutex"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("give this node's NAME"), "{err}");
}

/// `auto` on every node: many entries, never two inside.
#[test]
fn auto_on_every_node_keeps_mutual_exclusion() {
    let dir = temp_dir("mutex-auto");
    machines(&dir, &["a", "b", "c"]);
    let mut nodes: Vec<Proc> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&dir, n, &["--hold", "5ms", "--quiet"]))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for p in &mut nodes {
        p.send("auto 20ms");
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    for p in &mut nodes {
        p.send("auto off");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for p in &mut nodes {
        p.send("quit");
        p.wait_exit(10);
    }
    let (code, out) = common::check_dir(&dir, "mutex");
    assert_eq!(code, 0, "{out}");
    let entries: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("critical-section entries: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(entries > 30, "{out}");
    // 2(N-1) = 4 per entry; a request still under way at `quit` adds a few.
    let per_entry: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("messages per entry: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!((4.0..4.2).contains(&per_entry), "{out}");
}

/// An entry made by `auto` leaves by itself: its line says so, and does not
/// tell the user to type `unlock`; a typed `lock` still does.
#[test]
fn an_auto_entry_says_it_leaves_by_itself() {
    let dir = temp_dir("mutex-auto-text");
    machines(&dir, &["a", "b"]);
    let mut a = node(&dir, "a", &["--hold", "50ms"]);
    let mut b = node(&dir, "b", &[]);
    a.expect("b is up", 10);
    a.send("auto 100ms");
    a.expect_n("auto leaves it in 50ms", 2, 10);
    a.send("auto off");
    a.expect("auto off", 5);
    assert_eq!(a.count("type `unlock` to leave"), 0, "{:?}", a.lines());
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.send("lock");
    a.expect("type `unlock` to leave", 10);
    a.send("unlock");
    for p in [&mut a, &mut b] {
        p.send("quit");
        assert_eq!(p.wait_exit(10), Some(0));
    }
}
