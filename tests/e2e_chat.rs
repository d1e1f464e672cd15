//! `dsys chat` end to end: a real server, real clients (`--plain`, over
//! both protocols, the same suite against each), raw bytes at the wire
//! port, a client that stops reading, kill -9 of the server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::chat::Server;
use common::{Proc, temp_dir};

fn server(dir: &Path, ports: Option<(u16, u16)>) -> Server {
    common::chat::server(dir, ports, &[])
}

fn client(s: &Server, protocol: &str, dir: &Path, name: &str) -> Proc {
    let c = Proc::spawn(
        name,
        &[
            "chat",
            "client",
            "--plain",
            "--protocol",
            protocol,
            "--server",
            s.addr(protocol),
        ],
        dir,
    );
    c.expect("note: connected to", 20);
    c
}

/// Sends `line` and waits for the `n`-th line containing `needle`.
fn say(c: &mut Proc, line: &str, needle: &str) {
    let n = c.count(needle) + 1;
    c.send(line);
    c.expect_n(needle, n, 20);
}

fn suite(protocol: &str) {
    let dir = temp_dir(&format!("chat-{protocol}"));
    let s = server(&dir, None);
    let mut a = client(&s, protocol, &dir, "alice");
    say(&mut a, "/create alice pw-a", "ok: created account alice");
    say(
        &mut a,
        "/create alice other",
        "error: the name \"alice\" is taken",
    );
    say(
        &mut a,
        "/create bad/name pw",
        "error: \"bad/name\" is not a valid account name",
    );
    say(&mut a, "/msg alice hi", "error: not logged in");
    // The password on the next line (as a prompt would take it).
    a.send("/create bob");
    say(&mut a, "pw-b", "ok: created account bob");
    say(&mut a, "/create albert pw", "ok: created account albert");
    say(
        &mut a,
        "/login alice wrong",
        "error: wrong password for \"alice\"",
    );
    say(
        &mut a,
        "/login nobody pw",
        "error: there is no account \"nobody\"",
    );
    say(
        &mut a,
        "/login alice pw-a",
        "ok: logged in as alice; no queued messages",
    );
    say(
        &mut a,
        "/login alice pw-a",
        "error: this connection is already logged in",
    );
    say(
        &mut a,
        "/list al*",
        "ok: accounts matching al*: 2: albert, alice (online)",
    );
    say(
        &mut a,
        "/list",
        "ok: accounts: 3: albert, alice (online), bob",
    );
    // bob is offline: queued, then delivered on demand, oldest first.
    say(&mut a, "/msg bob first", "ok: sent to bob (queued");
    say(&mut a, "@bob second", "ok: sent to bob (queued");
    say(
        &mut a,
        "/msg nobody x",
        "error: there is no account \"nobody\"",
    );
    let big = "x".repeat(20_000);
    say(
        &mut a,
        &format!("/msg bob {big}"),
        "error: a message is at most 16384 bytes",
    );
    say(&mut a, "hello?", "error: \"hello?\" is not a command");
    let mut b = client(&s, protocol, &dir, "bob");
    say(
        &mut b,
        "/login bob pw-b",
        "ok: logged in as bob; 2 queued message(s)",
    );
    say(&mut b, "/deliver 1", "ok: delivered 1; 1 still queued");
    assert!(
        b.lines()
            .iter()
            .any(|l| l.starts_with("<- alice [") && l.ends_with(": first")),
        "{:?}",
        b.lines()
    );
    say(&mut b, "/deliver", "ok: delivered 1; 0 still queued");
    assert!(b.lines().iter().any(|l| l.ends_with(": second")));
    // Online now: pushed at once, to every connection of the account.
    let mut b2 = client(&s, protocol, &dir, "bob2");
    say(&mut b2, "/login bob pw-b", "ok: logged in as bob");
    say(
        &mut a,
        "/msg bob are you there",
        "ok: sent to bob (delivered",
    );
    b.expect(": are you there", 10);
    b2.expect(": are you there", 10);
    // Delete: bob's undelivered messages are dropped, counted; alice's
    // queued message from bob stays, from a deleted account.
    say(&mut a, "/logout", "ok: logged out");
    say(&mut b, "/msg alice from bob", "ok: sent to alice (queued");
    say(&mut b2, "/logout", "ok: logged out");
    say(&mut b2, "/login albert pw", "ok: logged in as albert");
    // bob is still logged in on b: delivered. Log b out to queue one.
    say(
        &mut b2,
        "/msg bob one for bob",
        "ok: sent to bob (delivered",
    );
    say(&mut b, "/logout", "ok: logged out");
    say(
        &mut b2,
        "/msg bob queued for bob",
        "ok: sent to bob (queued",
    );
    say(&mut b, "/login bob pw-b", "ok: logged in as bob; 1 queued");
    say(&mut b, "/delete wrong", "error: wrong password");
    say(
        &mut b,
        "/delete pw-b",
        "ok: account bob deleted; 1 undelivered message(s) dropped",
    );
    say(&mut b, "/msg alice again", "error: not logged in");
    say(
        &mut a,
        "/login alice pw-a",
        "ok: logged in as alice; 1 queued",
    );
    say(&mut a, "/deliver", "ok: delivered 1");
    assert!(
        a.lines()
            .iter()
            .any(|l| l.contains("<- bob (deleted account) [") && l.ends_with(": from bob")),
        "{:?}",
        a.lines()
    );
    say(
        &mut a,
        "/list",
        "ok: accounts: 2: albert (online), alice (online)",
    );
    // The name is free again.
    say(&mut a, "/create bob new-pw", "ok: created account bob");
    drop(s);
}

#[test]
fn every_operation_over_the_wire_protocol() {
    suite("wire");
}

#[test]
fn every_operation_over_grpc() {
    suite("grpc");
}

#[test]
fn a_wire_user_and_a_grpc_user_talk_through_one_server() {
    let dir = temp_dir("chat-mixed");
    let s = server(&dir, None);
    let mut w = client(&s, "wire", &dir, "w");
    let mut g = client(&s, "grpc", &dir, "g");
    say(&mut w, "/create wendy pw", "ok: created");
    say(&mut g, "/create gus pw", "ok: created");
    say(&mut w, "/login wendy pw", "ok: logged in");
    say(&mut g, "/login gus pw", "ok: logged in");
    say(
        &mut w,
        "@gus hi from the wire",
        "ok: sent to gus (delivered",
    );
    g.expect("<- wendy [", 10);
    say(
        &mut g,
        "@wendy hi from grpc",
        "ok: sent to wendy (delivered",
    );
    w.expect(": hi from grpc", 10);
    // Pages of 20.
    let script: String = (0..23).map(|i| format!("/create p{i:02} pw\n")).collect();
    w.send(script.trim_end());
    w.expect("ok: created account p22", 30);
    say(
        &mut g,
        "/list p*",
        "ok: accounts matching p*: 23 (page 1 of 2; /list p* 2 for more): p00, p01,",
    );
    say(
        &mut g,
        "/list p* 2",
        "ok: accounts matching p*: 23 (page 2 of 2): p20, p21, p22",
    );
    say(
        &mut g,
        "/list 2",
        "ok: accounts: 25 (page 2 of 2): p19, p20, p21, p22, wendy (online)",
    );
    say(
        &mut g,
        "/list p* x",
        "error: `/list p* x`: PAGE is a number from 1",
    );
}

fn raw(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes; returns what it sent.
fn read_all(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn frame(op: u8, id: u32, body: &[u8]) -> Vec<u8> {
    let mut f = ((body.len() + 6) as u32).to_be_bytes().to_vec();
    f.push(1);
    f.push(op);
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn str_field(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

#[test]
fn garbage_truncated_and_oversized_frames_close_only_their_connection() {
    let dir = temp_dir("chat-fuzz");
    let s = server(&dir, None);
    let mut ok = client(&s, "wire", &dir, "ok");
    say(&mut ok, "/create steady pw", "ok: created");
    say(&mut ok, "/login steady pw", "ok: logged in");
    // Each bad input gets an error frame (op 0x81, id 0) with its code, then
    // the connection is closed.
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "version 9",
            {
                let mut f = frame(0x09, 1, &[]);
                f[4] = 9;
                f
            },
            2,
        ),
        ("unknown op", frame(0x3f, 1, &[]), 3),
        ("oversized", (1_000_000u32).to_be_bytes().to_vec(), 4),
        ("short head", vec![0, 0, 0, 2, 1, 1], 1),
        ("field past the end", frame(0x05, 1, &[0, 200, b'x']), 1),
        ("bytes left over", frame(0x09, 1, &[1, 2, 3]), 1),
        (
            "not UTF-8",
            frame(0x01, 1, &[0, 2, 0xff, 0xfe, 0, 1, b'p']),
            1,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut c = raw(&s.wire);
        c.write_all(&bytes).unwrap();
        let got = read_all(c);
        assert!(got.len() >= 12, "{what}: {got:?}");
        assert_eq!(got[5], 0x81, "{what}: an error frame");
        assert_eq!(u16::from_be_bytes([got[10], got[11]]), code, "{what}");
    }
    // Random bytes and random truncations of valid frames, 300 times.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let login = frame(0x02, 5, &[str_field("steady"), str_field("pw")].concat());
    for i in 0..300 {
        let mut c = raw(&s.wire);
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..(next() % 200) as usize).map(|_| next() as u8).collect()
        } else {
            login[..(next() as usize % login.len())].to_vec()
        };
        let _ = c.write_all(&bytes);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let _ = read_all(c);
    }
    // Everyone else was served throughout.
    say(&mut ok, "/list", "ok: accounts: 1: steady (online)");
    say(
        &mut ok,
        "@steady to myself",
        "ok: sent to steady (delivered",
    );
    ok.expect(": to myself", 10);
}

#[test]
fn a_client_that_stops_reading_holds_up_nobody_and_loses_nothing() {
    let dir = temp_dir("chat-slow");
    let s = server(&dir, None);
    let mut a = client(&s, "wire", &dir, "a");
    say(&mut a, "/create sender pw", "ok: created");
    say(&mut a, "/create sleepy pw", "ok: created");
    say(&mut a, "/login sender pw", "ok: logged in");
    // sleepy logs in over a raw connection and never reads again.
    let mut sleepy = raw(&s.wire);
    sleepy
        .write_all(&frame(
            0x02,
            1,
            &[str_field("sleepy"), str_field("pw")].concat(),
        ))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let n = 20_000;
    let text = "y".repeat(1000);
    let script: String = (0..n).map(|i| format!("@sleepy {i} {text}\n")).collect();
    let before = a.count("ok: sent to sleepy");
    a.send(script.trim_end());
    a.expect_n("ok: sent to sleepy", before + n, 60);
    let queued = a.count("ok: sent to sleepy (queued");
    assert!(
        queued > 0,
        "past sleepy's buffers, messages went to its queue"
    );
    drop(sleepy);
    // A new connection for sleepy finds the queued ones.
    let mut z = client(&s, "wire", &dir, "z");
    say(
        &mut z,
        "/login sleepy pw",
        &format!("ok: logged in as sleepy; {queued} queued"),
    );
}

#[test]
fn kill_9_of_the_server_loses_no_acknowledged_message_and_clients_come_back() {
    let dir = temp_dir("chat-kill");
    let mut s = server(&dir, None);
    let mut a = client(&s, "wire", &dir, "a");
    say(&mut a, "/create ann pw", "ok: created");
    say(&mut a, "/create ben pw", "ok: created");
    say(&mut a, "/login ann pw", "ok: logged in");
    let n = 500;
    let script: String = (0..n).map(|i| format!("@ben note {i}\n")).collect();
    a.send(script.trim_end());
    // Kill it mid-stream: whatever was acknowledged must be there after.
    a.expect_n("ok: sent to ben (queued", 100, 30);
    s.proc.kill9();
    let acked = a.count("ok: sent to ben (queued");
    let s2 = server(&dir, Some(s.ports()));
    // The client reconnects and logs in again by itself.
    a.expect("note: logged in again as ann", 30);
    let mut b = client(&s2, "grpc", &dir, "b");
    say(&mut b, "/login ben pw", "ok: logged in as ben");
    let line = b
        .lines()
        .into_iter()
        .find(|l| l.contains("logged in as ben"))
        .unwrap();
    let queued: usize = line
        .split("; ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        queued >= acked,
        "{queued} queued after the restart, {acked} acknowledged before"
    );
    say(&mut b, "/deliver 1000", "ok: delivered");
    for i in 0..acked {
        assert!(
            b.lines()
                .iter()
                .any(|l| l.ends_with(&format!(": note {i}"))),
            "note {i} lost"
        );
    }
}

#[test]
fn the_terminal_client_hides_passwords_and_shows_messages() {
    let dir = temp_dir("chat-tui");
    let s = server(&dir, None);
    let t = common::tmux::Tmux::new("chat", &dir, 90, 18);
    for (w, proto) in [("a", "wire"), ("b", "grpc")] {
        t.window(
            w,
            &dir,
            &format!(
                "{} chat client --protocol {proto} --server {}",
                common::BIN,
                s.addr(proto)
            ),
        );
    }
    assert!(t.wait_for("a", "connected").contains("not logged in"));
    t.keys("a", &["/create tess", "Enter"]);
    let screen = t.wait_for("a", "password for the new account tess");
    assert!(
        screen.contains("password for the new account tess"),
        "{screen}"
    );
    t.keys("a", &["hunter2"]);
    let screen = t.wait_for("a", "*******");
    assert!(
        screen.contains("*******") && !screen.contains("hunter2"),
        "not echoed: {screen}"
    );
    t.keys("a", &["Enter"]);
    t.wait_for("a", "created account tess");
    t.keys("a", &["/login tess", "Enter", "hunter2", "Enter"]);
    assert!(
        t.wait_for("a", "logged in as tess")
            .contains("logged in as tess")
    );
    t.keys("b", &["/create tom pw", "Enter"]);
    t.wait_for("b", "created account tom");
    t.keys("b", &["/login tom pw", "Enter"]);
    t.wait_for("b", "logged in as tom");
    t.keys("b", &["@tess hello over grpc", "Enter"]);
    let screen = t.wait_for("a", "hello over grpc");
    assert!(
        screen.contains("tom") && screen.contains("hello over grpc"),
        "{screen}"
    );
    assert!(
        !screen.contains("hunter2"),
        "the password never shows: {screen}"
    );
    t.keys("a", &["C-d"]);
    assert!(t.closed("a", 10), "Ctrl-D on an empty line quits");
}

#[test]
fn the_benchmark_runs_and_reports_both_protocols() {
    let dir = temp_dir("chat-bench");
    let (code, out, err) = common::run(
        &[
            "bench",
            "chat",
            "--duration",
            "300ms",
            "--clients",
            "1",
            "--window",
            "4",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    for needle in [
        "| send, online (10-byte text) |",
        "| pushed message",
        "| wire | 1 |",
        "| gRPC | 1 |",
        "| wire | src/chat/wire.rs",
    ] {
        assert!(out.contains(needle), "{needle} in {out}");
    }
}
