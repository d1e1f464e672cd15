//! End-to-end: real `dsys tokenring` processes on loopback, driven through
//! stdin like a person at three terminals, checked through what they print,
//! their critical-section log and `dsys check tokenring` on their events.

mod common;

use std::path::{Path, PathBuf};

use common::{Proc, machines, run, temp_dir};

struct Ring {
    dir: PathBuf,
    nodes: Vec<Proc>,
}

impl Ring {
    /// Nodes `names` in a ring in that order, each with events and the
    /// shared cs-log.
    fn start(test: &str, names: &[&str], hop_delay: &str) -> Ring {
        let dir = temp_dir(test);
        machines(&dir, names);
        let nodes = (0..names.len())
            .map(|i| spawn_node(&dir, names, i, hop_delay))
            .collect();
        Ring { dir, nodes }
    }

    fn events(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| p.display().to_string())
            .collect();
        files.sort();
        files
    }

    fn check(&self) -> (i32, String) {
        let files = self.events();
        let mut args = vec!["check", "tokenring"];
        args.extend(files.iter().map(String::as_str));
        let (code, out, err) = run(&args, &self.dir);
        (code, format!("{out}{err}"))
    }
}

fn spawn_node(dir: &Path, names: &[&str], i: usize, hop_delay: &str) -> Proc {
    let name = names[i];
    let next = names[(i + 1) % names.len()];
    // A restarted node writes a new events file rather than truncating the old one.
    let mut events = format!("{name}.jsonl");
    let mut k = 1;
    while dir.join(&events).exists() {
        k += 1;
        events = format!("{name}-{k}.jsonl");
    }
    Proc::spawn(
        name,
        &[
            "tokenring",
            name,
            "--next",
            next,
            "--hop-delay",
            hop_delay,
            "--cs-log",
            "cs.log",
            "--events",
            &events,
        ],
        dir,
    )
}

#[test]
fn three_nodes_pass_the_token_and_take_turns_in_the_critical_section() {
    let mut ring = Ring::start("basic", &["a", "b", "c"], "20ms");
    for n in &ring.nodes {
        n.expect("Type `help`", 10);
    }
    ring.nodes[0].send("start");
    for n in &ring.nodes {
        n.expect("token ", 10);
    }
    ring.nodes[1].send("lock");
    ring.nodes[1].expect("entered the critical section", 15);
    ring.nodes[2].send("lock");
    // c cannot get in while b is inside...
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(ring.nodes[2].count("entered the critical section"), 0);
    // ...and gets in once b leaves.
    ring.nodes[1].send("unlock");
    ring.nodes[1].expect("left the critical section", 5);
    ring.nodes[2].expect("entered the critical section", 15);
    ring.nodes[2].send("unlock");
    ring.nodes[2].expect("left the critical section", 5);

    ring.nodes[0].send("status");
    ring.nodes[0].expect("ring: a -> b -> c", 5);
    ring.nodes[0].expect("links:", 5);

    for n in &mut ring.nodes {
        n.send("quit");
    }
    for n in &mut ring.nodes {
        assert_eq!(n.wait_exit(10), Some(0), "{} did not quit cleanly", n.name);
    }
    let log = std::fs::read_to_string(ring.dir.join("cs.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains(" b hop ") && lines[1].contains(" c hop "),
        "{log}"
    );
    // Each line carries a fencing token: generation, hop and lease round,
    // compared in that order; it grows from one entry to the next.
    let token = |line: &str| -> (String, u64, u64) {
        let w: Vec<&str> = line.split(' ').collect();
        let at = |k: &str| {
            w.iter()
                .position(|x| *x == k)
                .map(|i| w[i + 1])
                .expect(line)
        };
        (
            at("generation").to_string(),
            at("hop").parse().expect(line),
            at("round").parse().expect(line),
        )
    };
    let (g0, h0, _) = token(lines[0]);
    let (g1, h1, _) = token(lines[1]);
    assert_eq!(g0, g1, "{log}");
    assert!(g0.ends_with("@a"), "{log}");
    assert!(h1 > h0, "{log}");
    assert!(lines.iter().all(|l| l.contains(" lease-until ")), "{log}");
    let (code, out) = ring.check();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mutual exclusion: OK"), "{out}");
}

#[test]
fn killing_the_holder_inside_the_critical_section_regenerates_one_token() {
    let mut ring = Ring::start("holder", &["a", "b", "c"], "20ms");
    ring.nodes[0].send("start");
    ring.nodes[1].expect("token ", 10);
    ring.nodes[0].send("lock");
    ring.nodes[0].expect("entered the critical section", 15);
    ring.nodes[0].kill9();
    ring.nodes[1].send("lock");
    ring.nodes[1].expect("entered the critical section", 20);
    ring.nodes[1].send("unlock");
    ring.nodes[2].send("lock");
    ring.nodes[2].expect("entered the critical section", 20);
    ring.nodes[2].send("unlock");
    ring.nodes[2].expect("left the critical section", 5);
    let regenerated: usize = ring.nodes[1..].iter().map(|n| n.count("regenerated")).sum();
    assert_eq!(regenerated, 1, "exactly one new token");

    // The killed node comes back and is taken into the ring again.
    ring.nodes[0] = spawn_node(&ring.dir, &["a", "b", "c"], 0, "20ms");
    ring.nodes[0].expect("token ", 20);
    ring.nodes[0].send("lock");
    ring.nodes[0].expect("entered the critical section", 20);
    ring.nodes[0].send("unlock");
    for n in &mut ring.nodes {
        n.send("quit");
        n.wait_exit(10);
    }
    let (code, out) = ring.check();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_dead_next_node_is_routed_around_and_taken_back() {
    let mut ring = Ring::start("route", &["a", "b", "c"], "20ms");
    ring.nodes[0].send("start");
    ring.nodes[2].expect("token ", 10);
    ring.nodes[1].kill9();
    let before = ring.nodes[2].count("token ");
    // c keeps getting the token from a, around the dead b.
    assert!(
        ring.nodes[2].wait_for_n("token ", before + 20, 20),
        "{}",
        ring.nodes[2].lines().join("\n")
    );
    ring.nodes[0].expect("b looks down", 5);
    ring.nodes[1] = spawn_node(&ring.dir, &["a", "b", "c"], 1, "20ms");
    ring.nodes[1].expect("token ", 20);
}

#[test]
fn start_on_two_nodes_converges_to_one_token() {
    let mut ring = Ring::start("twostarts", &["a", "b", "c", "d"], "10ms");
    ring.nodes[0].send("start");
    ring.nodes[2].send("start");
    for n in &ring.nodes {
        n.expect("token ", 10);
    }
    // Let the ring settle, then look at the hops each node sees: with one
    // token, hop counters at a node increase by the ring size each time.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let hops = |p: &Proc| -> Vec<u64> {
        p.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("token ").and_then(|h| h.parse().ok()))
            .collect()
    };
    let seen = hops(&ring.nodes[1]);
    let tail: Vec<u64> = seen[seen.len().saturating_sub(10)..].to_vec();
    assert!(tail.len() >= 5, "{seen:?}");
    for w in tail.windows(2) {
        assert_eq!(w[1] - w[0], 4, "one token in a ring of 4: {tail:?}");
    }
    for n in &mut ring.nodes {
        n.send("quit");
    }
}

#[test]
fn end_of_input_does_not_stop_a_node_but_sigterm_does() {
    let mut ring = Ring::start("eof", &["a"], "20ms");
    let node = &mut ring.nodes[0];
    node.expect("Type `help`", 10);
    node.send("start");
    node.expect("token ", 10);
    node.close_stdin();
    let n = node.count("token ");
    assert!(node.wait_for_n("token ", n + 5, 10), "still passing tokens");
    assert_eq!(node.wait_exit(1), None, "still running after EOF");
    let pid = node.pid().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert_eq!(node.wait_exit(10), Some(0));
    node.expect("a stopped", 1);
}

#[test]
fn unknown_commands_get_a_hint_and_garbage_on_the_port_is_survived() {
    let dir = temp_dir("garbage");
    let m = machines(&dir, &["a", "b"]);
    let mut a = Proc::spawn("a", &["tokenring", "a", "--next", "b"], &dir);
    a.expect("Type `help`", 10);
    a.send("fly me to the moon");
    a.expect("unknown command", 5);
    a.send("help");
    a.expect("unlock", 5);
    a.send("unlock");
    a.expect("not in the critical section", 5);

    let text = std::fs::read_to_string(&m).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let addr = cfg["a"].as_str().unwrap().to_string();
    for junk in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0u8; 10_000],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\xff\xff\xff\xff".to_vec(),
        (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ] {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::Write;
            let _ = s.write_all(&junk);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.send("status");
    a.expect("critical section: not in it", 5);
    // And a real peer can still talk to it.
    let b = Proc::spawn(
        "b",
        &["tokenring", "b", "--next", "a", "--hop-delay", "20ms"],
        &dir,
    );
    b.expect("Type `help`", 10);
    a.send("start");
    b.expect("token ", 10);
}

#[test]
fn config_errors_name_the_file_and_exit_2() {
    let dir = temp_dir("config");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap();
        name.to_string()
    };
    let cases = [
        ("missing.txt".to_string(), "missing.txt: cannot read"),
        (write("bad.json", "{\"a\": "), "bad.json: not valid JSON"),
        (write("addr.json", r#"{"a": "nowhere"}"#), "bad.json"),
        (
            write(
                "dup.json",
                r#"{"a": "127.0.0.1:7000", "b": "127.0.0.1:7000"}"#,
            ),
            "dup.json: nodes \"a\" and \"b\" both use 127.0.0.1:7000",
        ),
        (
            write("ok.json", r#"{"a": "127.0.0.1:7001"}"#),
            "ok.json: no node named \"zz\"",
        ),
    ];
    for (i, (file, want)) in cases.iter().enumerate() {
        let (name, want) = if i == 2 {
            (
                "a",
                "addr.json: node \"a\": address \"nowhere\" is not host:port",
            )
        } else if i == 4 {
            ("zz", *want)
        } else {
            ("a", *want)
        };
        let (code, out, err) = run(
            &["tokenring", name, "--next", "a", "--machines", file],
            &dir,
        );
        assert_eq!(code, 2, "{file}: {out}{err}");
        assert!(err.contains(want), "{file}: wanted {want:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    }
    // Without a terminal, missing names are an error, not a hang.
    write("machines.txt", r#"{"a": "127.0.0.1:7002"}"#);
    let (code, _, err) = run(&["tokenring"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("not a terminal"), "{err}");
}

#[test]
fn the_checker_names_overlapping_intervals() {
    let dir = temp_dir("checker");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        [
            r#"{"t_us":100,"node":"a","event":"cs_enter","hop":1,"lease_us":1000}"#,
            r#"{"t_us":150,"node":"b","event":"cs_enter","hop":2,"lease_us":1000}"#,
            r#"{"t_us":200,"node":"a","event":"cs_exit","hop":1,"forced":false}"#,
            r#"{"t_us":250,"node":"b","event":"cs_exit","hop":2,"forced":false}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let (code, out, _) = run(&["check", "tokenring", "bad.jsonl"], &dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("VIOLATED"), "{out}");
    assert!(
        out.contains("a in the critical section from t=100us to t=200us"),
        "{out}"
    );
    assert!(
        out.contains("b in the critical section from t=150us"),
        "{out}"
    );

    std::fs::write(
        dir.join("torn.jsonl"),
        "{\"t_us\":1,\"node\":\"a\",\"event\":\"x\"}\nnot json\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check", "tokenring", "torn.jsonl"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("torn.jsonl:2"), "{err}");
}

#[test]
fn quitting_inside_the_critical_section_hands_the_token_on() {
    let mut ring = Ring::start("quit-in-cs", &["a", "b", "c"], "20ms");
    ring.nodes[0].send("start");
    ring.nodes[2].expect("token ", 10);
    ring.nodes[0].send("lock");
    ring.nodes[0].expect("entered the critical section", 15);
    ring.nodes[0].send("quit");
    ring.nodes[0].expect("left the critical section", 5);
    assert_eq!(ring.nodes[0].wait_exit(10), Some(0));
    // The token went on at once: b can get in, and nobody had to regenerate.
    ring.nodes[1].send("lock");
    ring.nodes[1].expect("entered the critical section", 15);
    let regenerated: usize = ring.nodes[1..].iter().map(|n| n.count("regenerated")).sum();
    assert_eq!(regenerated, 0, "{}", ring.nodes[1].lines().join("\n"));
    ring.nodes[1].send("unlock");
    for n in &mut ring.nodes[1..] {
        n.send("quit");
        n.wait_exit(10);
    }
    let (code, out) = ring.check();
    assert_eq!(code, 0, "{out}");
}

fn signal(p: &Proc, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &p.pid().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {}", p.name);
}

/// Issue 8.2: the holder is stopped (SIGSTOP) inside the critical section
/// for longer than its lease. The next node gets in once the lease has
/// run out; the stopped node, continued, says it LOST the section, logs
/// `cs_lost` at its lease end, and the checker agrees: no overlap.
#[test]
fn a_holder_stopped_past_its_lease_loses_the_section_and_the_log_agrees() {
    let mut ring = Ring::start("paused", &["a", "b", "c"], "20ms");
    for n in &ring.nodes {
        n.expect("Type `help`", 10);
    }
    ring.nodes[0].send("start");
    ring.nodes[1].expect("token ", 10);
    ring.nodes[0].send("lock");
    ring.nodes[0].expect("entered the critical section", 15);
    signal(&ring.nodes[0], "-STOP");
    ring.nodes[1].send("lock");
    ring.nodes[1].expect("entered the critical section", 20);
    signal(&ring.nodes[0], "-CONT");
    ring.nodes[0].expect("LOST the critical section", 10);
    ring.nodes[1].send("unlock");
    ring.nodes[1].expect("left the critical section", 5);
    // a takes part again: it can lock once more.
    ring.nodes[0].send("lock");
    ring.nodes[0].expect_n("entered the critical section", 2, 20);
    ring.nodes[0].send("unlock");
    for n in &mut ring.nodes {
        n.send("quit");
        n.wait_exit(10);
    }
    let a_events = std::fs::read_to_string(ring.dir.join("a.jsonl")).unwrap();
    assert!(a_events.contains("\"cs_lost\""), "{a_events}");
    let (code, out) = ring.check();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a lost the critical section"), "{out}");
    assert!(out.contains("mutual exclusion: OK"), "{out}");
}

/// Issue 7.11: `start` while a node of the ring is not running says what
/// it is trying while it tries, and the failure names the node that did
/// not pass the walk on.
#[test]
fn start_with_a_ring_node_not_running_names_it() {
    let dir = temp_dir("start-missing");
    machines(&dir, &["a", "b", "c"]);
    let names = ["a", "b", "c"];
    let mut a = spawn_node(&dir, &names, 0, "20ms");
    let mut b = spawn_node(&dir, &names, 1, "20ms");
    a.expect("Type `help`", 10);
    b.expect("Type `help`", 10);
    a.send("start");
    a.expect("walking the ring from here to b", 5);
    a.expect(
        "it reached b, whose next is c, and went no further (c is not running",
        20,
    );
    a.expect("start failed", 30);
    let failed = a
        .lines()
        .into_iter()
        .find(|l| l.contains("start failed"))
        .unwrap_or_default();
    assert!(failed.contains("c is not running"), "{failed}");
    // Without b either, the first hop is named.
    b.kill9();
    a.send("start");
    a.expect("did not get past the first hop: b (this node's next)", 30);
    a.send("quit");
    assert_eq!(a.wait_exit(10), Some(0));
}

/// Commands typed at once before `quit` all happen, in order: the `lock`
/// is answered before the node stops (it used to be dropped).
#[test]
fn commands_typed_before_quit_are_carried_out() {
    let dir = temp_dir("typed-ahead");
    machines(&dir, &["a", "b"]);
    let mut a = Proc::spawn("a", &["tokenring", "a", "--next", "b"], &dir);
    a.expect("Type `help`", 10);
    a.send("LOCK\nstatus\nquit now\nquit");
    assert_eq!(a.wait_exit(10), Some(0));
    let lines = a.lines();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let lock = at("waiting for the token").expect("lock answered");
    let stopped = at("a stopped").expect("stopped");
    assert!(lock < stopped, "{lines:?}");
    assert!(at("takes nothing after it").is_some(), "{lines:?}");
}
