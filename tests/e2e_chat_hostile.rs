//! `dsys chat` against hostile clients: each attack of the adversarial
//! pass, scripted against a real server on loopback ports, bounded in
//! count and time. A raw wire client speaks the protocol from the crate's
//! codec (the spec's bytes are checked by its unit tests); a gRPC client
//! uses the generated stubs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::chat::Server;
use common::temp_dir;
use dsys::chat::grpc_server::pb;
use dsys::chat::wire::{self, Request, Response};

fn server(dir: &Path, extra: &[&str]) -> Server {
    common::chat::server(dir, None, extra)
}

/// A raw wire-protocol connection (blocking), for scripts that do what a
/// client written from the spec could do.
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
    next: u32,
    me: String,
    /// Pushes read while waiting for a response.
    pushes: Vec<Response>,
}

impl Wire {
    fn connect(addr: &str) -> Wire {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Wire {
            s,
            buf: Vec::new(),
            next: 1,
            me: String::new(),
            pushes: Vec::new(),
        }
    }

    /// Sends `req` without waiting; returns its id.
    fn send(&mut self, req: Request) -> u32 {
        let id = self.next;
        self.next += 1;
        let mut b = Vec::new();
        req.encode(id, &mut b);
        self.s.write_all(&b).expect("write");
        id
    }

    /// The next frame: (id, response), or None once the server closed.
    fn frame(&mut self) -> Option<(u32, Response)> {
        loop {
            if let Ok(Some(len)) = wire::frame_len(&self.buf) {
                let f = Response::decode(&self.buf[4..4 + len], &self.me).expect("a valid frame");
                self.buf.drain(..4 + len);
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The raw length of the next frame, without decoding it.
    fn next_frame_len(&mut self) -> usize {
        loop {
            if self.buf.len() >= 4 {
                return u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The response to request `id` (pushes on the way are kept).
    fn answer(&mut self, id: u32) -> Response {
        loop {
            match self.frame() {
                Some((i, r)) if i == id => return r,
                Some((0, r)) => self.pushes.push(r),
                Some((i, r)) => panic!("response {i} ({r:?}) while waiting for {id}"),
                None => panic!("the server closed the connection while waiting for {id}"),
            }
        }
    }

    fn call(&mut self, req: Request) -> Response {
        let id = self.send(req);
        self.answer(id)
    }

    fn create(&mut self, name: &str, pw: &str) {
        let r = self.call(Request::Create {
            name: name.into(),
            password: pw.into(),
        });
        assert_eq!(r, Response::Ok, "create {name}");
    }

    fn login(&mut self, name: &str, pw: &str) {
        let r = self.call(Request::Login {
            name: name.into(),
            password: pw.into(),
        });
        assert!(
            matches!(r, Response::LoggedIn { .. }),
            "login {name}: {r:?}"
        );
        self.me = name.into();
    }
}

fn code(r: &Response) -> Option<u16> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn rss_mib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

type Grpc = pb::chat_client::ChatClient<tonic::transport::Channel>;

/// A new gRPC connection (its own HTTP/2 connection), with a session open
/// on it: (client, session id, the session's event stream).
async fn grpc_session(addr: &str) -> (Grpc, u64, tonic::Streaming<pb::Event>) {
    let mut c = Grpc::connect(format!("http://{addr}")).await.expect("grpc");
    let mut events = c.open(pb::OpenRequest {}).await.expect("open").into_inner();
    let Some(pb::Event {
        kind: Some(pb::event::Kind::Session(id)),
    }) = events.message().await.expect("first event")
    else {
        panic!("the first event names the session")
    };
    (c, id, events)
}

#[test]
fn list_patterns_built_to_backtrack_stall_nobody() {
    let dir = temp_dir("chat-hostile-list");
    // 10,000 accounts: created in the database directly (hashing 10,000
    // passwords would take minutes), between two runs of the server.
    let s = server(&dir, &[]);
    drop(s);
    {
        let mut db = rusqlite::Connection::open(dir.join("chat.db")).unwrap();
        let tx = db.transaction().unwrap();
        for i in 0..10_000 {
            tx.execute(
                "INSERT INTO accounts (name, hash, created_ms) VALUES (?1, 'x', 0)",
                [format!("user{i:05}a")],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO accounts (name, hash, created_ms) VALUES ('endsinz', 'x', 0)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let s = server(&dir, &[]);
    let mut steady = Wire::connect(&s.wire);
    steady.create("steady", "pw");
    steady.login("steady", "pw");
    let mut evil = Wire::connect(&s.wire);
    let worst = [
        format!("{}b", "*".repeat(127)),
        format!("{}z", "*".repeat(12)),
        "*a".repeat(32),
        format!("{}?", "*?".repeat(40)),
        "?".repeat(32),
    ];
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(evil.send(Request::List {
            pattern: worst[i % worst.len()].clone(),
            offset: 0,
            limit: 1000,
        }));
    }
    // Meanwhile, the steady client's pings and sends.
    let mut lat = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        let t0 = Instant::now();
        let r = steady.call(if lat.len() % 2 == 0 {
            Request::Ping
        } else {
            Request::Send {
                to: "steady".into(),
                text: "still here".into(),
            }
        });
        lat.push(t0.elapsed());
        assert!(code(&r).is_none(), "{r:?}");
    }
    let p = p99(lat.clone());
    eprintln!(
        "PING/SEND p99 {p:?} over {} calls during the LIST flood",
        lat.len()
    );
    assert!(
        p < Duration::from_millis(50),
        "PING/SEND p99 {p:?} during the LIST flood ({} calls)",
        lat.len()
    );
    // Every LIST was answered, and right.
    let mut answers = Vec::new();
    for id in ids {
        answers.push(evil.answer(id));
    }
    match &answers[1] {
        Response::Accounts { total, accounts } => {
            assert_eq!(*total, 1, "only endsinz ends in z");
            assert_eq!(accounts[0].0, "endsinz");
        }
        other => panic!("{other:?}"),
    }
    match &answers[0] {
        Response::Accounts { total, .. } => assert_eq!(*total, 0),
        other => panic!("{other:?}"),
    }
    // Bad patterns are refused with 19, and say why.
    let r = evil.call(Request::List {
        pattern: "*".repeat(129),
        offset: 0,
        limit: 10,
    });
    assert_eq!(code(&r), Some(19), "{r:?}");
    drop(s);
}

#[test]
fn a_grpc_session_answers_only_the_connection_that_opened_it() {
    let dir = temp_dir("chat-hostile-session");
    let s = server(&dir, &[]);
    runtime().block_on(async {
        let (mut victim, vid, mut vevents) = grpc_session(&s.grpc).await;
        victim
            .create(pb::Credentials {
                name: "victim".into(),
                password: "pw-v".into(),
            })
            .await
            .unwrap();
        victim
            .create(pb::Credentials {
                name: "friend".into(),
                password: "pw-f".into(),
            })
            .await
            .unwrap();
        victim
            .login(pb::LoginRequest {
                session: vid,
                name: "victim".into(),
                password: "pw-v".into(),
            })
            .await
            .unwrap();
        // A stranger on another connection: the victim's id (observed
        // elsewhere) and guessed ones.
        let (mut stranger, sid, _sevents) = grpc_session(&s.grpc).await;
        for id in [vid, 1, 2, 3, sid.wrapping_add(1), sid.wrapping_sub(1), 0] {
            let send = stranger
                .send(pb::SendRequest {
                    session: id,
                    to: "friend".into(),
                    text: "forged".into(),
                })
                .await;
            assert_eq!(
                send.map(|_| ()).unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "send with session {id}"
            );
            let deliver = stranger
                .deliver(pb::DeliverRequest {
                    session: id,
                    max: 10,
                })
                .await;
            assert_eq!(
                deliver.map(|_| ()).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
            let ack = stranger
                .ack(pb::AckRequest {
                    session: id,
                    ids: vec![1, 2, 3],
                })
                .await;
            assert_eq!(
                ack.map(|_| ()).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
            let logout = stranger.logout(pb::SessionRef { session: id }).await;
            assert_eq!(
                logout.map(|_| ()).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
        }
        // Session ids are not counters.
        assert!(
            vid > 1 << 20 || sid > 1 << 20,
            "ids {vid} {sid} look sequential"
        );
        // The victim is still logged in, and nothing was sent as it.
        let (mut f, fid, mut fevents) = grpc_session(&s.grpc).await;
        let queued = f
            .login(pb::LoginRequest {
                session: fid,
                name: "friend".into(),
                password: "pw-f".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .queued;
        assert_eq!(queued, 0, "no forged message reached friend");
        victim
            .send(pb::SendRequest {
                session: vid,
                to: "friend".into(),
                text: "the real one".into(),
            })
            .await
            .expect("the victim's own session still works");
        let ev = tokio::time::timeout(Duration::from_secs(10), fevents.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev.kind {
            Some(pb::event::Kind::Message(m)) => {
                assert_eq!(
                    (m.from.as_str(), m.text.as_str()),
                    ("victim", "the real one")
                )
            }
            other => panic!("{other:?}"),
        }
        // The victim saw nothing of the stranger's tries.
        let nothing = tokio::time::timeout(Duration::from_millis(300), vevents.message()).await;
        assert!(nothing.is_err(), "the victim's stream got {nothing:?}");
    });
}

#[test]
fn a_grpc_session_stays_open_for_a_minute_idle_and_busy() {
    let dir = temp_dir("chat-hostile-minute");
    let s = server(&dir, &[]);
    runtime().block_on(async {
        let (mut idle, iid, mut ievents) = grpc_session(&s.grpc).await;
        for n in ["idle", "busy"] {
            idle.create(pb::Credentials {
                name: n.into(),
                password: "pw".into(),
            })
            .await
            .unwrap();
        }
        idle.login(pb::LoginRequest {
            session: iid,
            name: "idle".into(),
            password: "pw".into(),
        })
        .await
        .unwrap();
        let (mut busy, bid, mut bevents) = grpc_session(&s.grpc).await;
        busy.login(pb::LoginRequest {
            session: bid,
            name: "busy".into(),
            password: "pw".into(),
        })
        .await
        .unwrap();
        // busy sends to itself for 62 s; idle does nothing at all.
        let t = Instant::now();
        let mut sent = 0u64;
        while t.elapsed() < Duration::from_secs(62) {
            busy.send(pb::SendRequest {
                session: bid,
                to: "busy".into(),
                text: format!("tick {sent}"),
            })
            .await
            .unwrap_or_else(|e| panic!("busy send {sent} at {:?}: {e}", t.elapsed()));
            let ev = tokio::time::timeout(Duration::from_secs(5), bevents.message())
                .await
                .expect("the push comes")
                .expect("the stream is open")
                .expect("not ended");
            assert!(matches!(ev.kind, Some(pb::event::Kind::Message(_))));
            sent += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(sent > 100);
        // After a minute of silence, the idle session's stream and id
        // still work.
        idle.send(pb::SendRequest {
            session: iid,
            to: "idle".into(),
            text: "after a minute".into(),
        })
        .await
        .expect("the idle session is still there");
        let ev = tokio::time::timeout(Duration::from_secs(5), ievents.message())
            .await
            .expect("the push comes")
            .expect("the stream is open")
            .expect("not ended");
        match ev.kind {
            Some(pb::event::Kind::Message(m)) => assert_eq!(m.text, "after a minute"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn delete_logs_out_every_connection_and_a_new_owner_inherits_nothing() {
    let dir = temp_dir("chat-hostile-delete");
    let s = server(&dir, &[]);
    let mut other = Wire::connect(&s.wire);
    other.create("other", "pw-o");
    other.create("x", "old-pw");
    other.login("other", "pw-o");
    // Two messages wait in the old x's queue.
    for t in ["for old x 1", "for old x 2"] {
        let r = other.call(Request::Send {
            to: "x".into(),
            text: t.into(),
        });
        assert!(
            matches!(
                r,
                Response::Sent {
                    delivered: false,
                    ..
                }
            ),
            "{r:?}"
        );
    }
    other.call(Request::Logout);
    let mut a = Wire::connect(&s.wire);
    a.login("x", "old-pw");
    let mut b = Wire::connect(&s.wire);
    b.login("x", "old-pw");
    // x sends one before it goes.
    let r = a.call(Request::Send {
        to: "other".into(),
        text: "from old x".into(),
    });
    assert!(
        matches!(
            r,
            Response::Sent {
                delivered: false,
                ..
            }
        ),
        "{r:?}"
    );
    let r = a.call(Request::Delete {
        password: "old-pw".into(),
    });
    assert_eq!(r, Response::Deleted { dropped: 2 });
    // b is told, at once.
    let pushed = b.frame().expect("a push");
    assert!(
        matches!(&pushed, (0, Response::LoggedOut(why)) if why.contains("deleted")),
        "{pushed:?}"
    );
    // A new owner of the name.
    let mut n = Wire::connect(&s.wire);
    n.create("x", "new-pw");
    other.login("other", "pw-o");
    let r = other.call(Request::Send {
        to: "x".into(),
        text: "for new x".into(),
    });
    assert!(matches!(r, Response::Sent { .. }));
    // b can do nothing as x: not read, not ack, not send, not log out.
    // (LOGOUT first: the LOGGED_OUT push already logged b out.)
    for req in [
        Request::Logout,
        Request::Deliver { max: 10 },
        Request::Ack { ids: vec![1, 2, 3] },
        Request::Send {
            to: "other".into(),
            text: "as x".into(),
        },
    ] {
        let r = b.call(req.clone());
        assert_eq!(code(&r), Some(15), "{req:?} -> {r:?}");
    }
    // The new x has only its own message.
    n.login("x", "new-pw");
    match n.call(Request::Deliver { max: 100 }) {
        Response::Messages { queued, messages } => {
            assert_eq!(queued, 1);
            assert_eq!(messages[0].text, "for new x");
        }
        other => panic!("{other:?}"),
    }
    // What the old x sent is from a deleted account.
    match other.call(Request::Deliver { max: 100 }) {
        Response::Messages { messages, .. } => {
            let m = messages
                .iter()
                .find(|m| m.text == "from old x")
                .expect("kept");
            assert!(m.from_deleted);
        }
        other => panic!("{other:?}"),
    }
    // And nothing the stranger tried reached the new x.
    match n.call(Request::Deliver { max: 100 }) {
        Response::Messages { queued, .. } => assert_eq!(queued, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sends_racing_a_delete_never_reach_the_new_owner() {
    let dir = temp_dir("chat-hostile-race");
    let s = server(&dir, &["--sync", "full"]);
    let mut setup = Wire::connect(&s.wire);
    setup.create("r", "pw");
    for i in 0..4 {
        setup.create(&format!("s{i}"), "pw");
    }
    let mut senders: Vec<Wire> = (0..4)
        .map(|i| {
            let mut w = Wire::connect(&s.wire);
            w.login(&format!("s{i}"), "pw");
            w
        })
        .collect();
    let rounds = 50;
    let mut from_x_total = 0;
    for round in 0..rounds {
        setup.create("x", &format!("pw{round}"));
        let mut x = Wire::connect(&s.wire);
        x.login("x", &format!("pw{round}"));
        // A second connection of x sends while the first deletes.
        let mut x2 = Wire::connect(&s.wire);
        x2.login("x", &format!("pw{round}"));
        // 32 sends in flight to x (8 per sender), and 8 from x to r, then
        // the delete, all pipelined.
        let mut ids = Vec::new();
        for (i, w) in senders.iter_mut().enumerate() {
            for k in 0..8 {
                ids.push((
                    i,
                    w.send(Request::Send {
                        to: "x".into(),
                        text: format!("old {round} {i} {k}"),
                    }),
                ));
            }
        }
        let mut xs = Vec::new();
        for k in 0..8 {
            xs.push(x.send(Request::Send {
                to: "r".into(),
                text: format!("x{round} {k}"),
            }));
        }
        let x2s: Vec<u32> = (0..16)
            .map(|k| {
                x2.send(Request::Send {
                    to: "r".into(),
                    text: format!("x2 {round} {k}"),
                })
            })
            .collect();
        let del = x.send(Request::Delete {
            password: format!("pw{round}"),
        });
        for k in 0..8 {
            xs.push(x.send(Request::Send {
                to: "r".into(),
                text: format!("x{round} late {k}"),
            }));
        }
        for (i, id) in ids {
            let r = senders[i].answer(id);
            assert!(
                matches!(r, Response::Sent { .. }) || code(&r) == Some(12),
                "{r:?}"
            );
        }
        let mut answers = Vec::new();
        for id in xs.iter().take(8) {
            answers.push(x.answer(*id));
        }
        assert!(matches!(x.answer(del), Response::Deleted { .. }));
        for id in xs.iter().skip(8) {
            let r = x.answer(*id);
            assert_eq!(code(&r), Some(15), "a send after the delete: {r:?}");
        }
        for id in x2s {
            let r = x2.answer(id);
            assert!(
                matches!(r, Response::Sent { .. }) || code(&r) == Some(15),
                "{r:?}"
            );
            answers.push(r);
        }
        from_x_total += answers
            .iter()
            .filter(|r| matches!(r, Response::Sent { .. }))
            .count();
        // Every sender has its answers: the old x's traffic is over.
        setup.create("x", "fresh");
        let mut fresh = Wire::connect(&s.wire);
        fresh.login("x", "fresh");
        match fresh.call(Request::Deliver { max: 1000 }) {
            Response::Messages { queued, messages } => assert_eq!(
                queued,
                0,
                "round {round}: the new x inherited {:?}",
                messages.first().map(|m| &m.text)
            ),
            other => panic!("{other:?}"),
        }
        let r = fresh.call(Request::Delete {
            password: "fresh".into(),
        });
        assert!(matches!(r, Response::Deleted { .. }), "{r:?}");
    }
    // Every message from an old x in r's queue is marked from_deleted.
    let mut r = Wire::connect(&s.wire);
    r.login("r", "pw");
    let mut seen = 0;
    loop {
        let Response::Messages { messages, .. } = r.call(Request::Deliver { max: 1000 }) else {
            panic!()
        };
        if messages.is_empty() {
            break;
        }
        for m in &messages {
            assert_eq!(m.from, "x");
            assert!(m.from_deleted, "{:?} is not marked from_deleted", m.text);
        }
        seen += messages.len();
        let ids = messages.iter().map(|m| m.id).collect();
        r.call(Request::Ack { ids });
    }
    assert_eq!(seen, from_x_total, "every send x was told about is there");
}

#[test]
fn password_floods_stay_bounded_and_repeated_failures_wait() {
    let dir = temp_dir("chat-hostile-hash");
    let s = server(&dir, &[]);
    let pid = s.proc.pid();
    let mut steady = Wire::connect(&s.wire);
    steady.create("steady", "pw");
    steady.login("steady", "pw");
    let mut target = Wire::connect(&s.wire);
    target.create("target", "right");
    // 200 parallel wrong logins (long passwords, as big as allowed), each
    // on its own connection, 5 rounds.
    let addr = s.wire.clone();
    let flood = std::thread::spawn(move || {
        let mut conns: Vec<Wire> = (0..200).map(|_| Wire::connect(&addr)).collect();
        let mut codes = std::collections::BTreeMap::new();
        for round in 0..5 {
            let ids: Vec<u32> = conns
                .iter_mut()
                .map(|w| {
                    w.send(Request::Login {
                        name: "target".into(),
                        password: format!("{round}{}", "w".repeat(1000)),
                    })
                })
                .collect();
            for (w, id) in conns.iter_mut().zip(ids) {
                *codes.entry(code(&w.answer(id))).or_insert(0) += 1;
            }
        }
        codes
    });
    let mut lat = Vec::new();
    let mut peak = 0;
    while !flood.is_finished() {
        let t0 = Instant::now();
        let r = steady.call(Request::Send {
            to: "steady".into(),
            text: "hi".into(),
        });
        lat.push(t0.elapsed());
        assert!(matches!(r, Response::Sent { .. }), "{r:?}");
        peak = peak.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    let codes = flood.join().unwrap();
    assert!(peak < 300, "resident memory reached {peak} MiB");
    let p = p99(lat.clone());
    eprintln!(
        "SEND p99 {p:?} over {} calls during the flood, peak {peak} MiB",
        lat.len()
    );
    assert!(
        p < Duration::from_millis(100),
        "SEND p99 {p:?} during the flood"
    );
    // Most were refused without hashing (too many failures, or busy).
    assert!(
        codes.get(&Some(20)).copied().unwrap_or(0) + codes.get(&Some(21)).copied().unwrap_or(0)
            > 900,
        "{codes:?}"
    );
    // A password over the limit is refused before it is hashed.
    let r = target.call(Request::Login {
        name: "steady".into(),
        password: "p".repeat(5000),
    });
    assert_eq!(code(&r), Some(14), "{r:?}");
    // The 50th wrong password in a row for one account is refused, with
    // the wait; the right one after the wait gets in.
    let mut last = None;
    for i in 0..50 {
        last = Some(target.call(Request::Login {
            name: "target".into(),
            password: format!("guess{i}"),
        }));
    }
    match last {
        Some(Response::Error { code: 20, message }) => {
            assert!(message.contains("try again in"), "{message}")
        }
        other => panic!("the 50th wrong password got {other:?}"),
    }
}

#[test]
fn idle_sockets_and_slowloris_cannot_lock_everyone_out() {
    // This test holds 4,100 sockets: raise its own open-files limit to
    // what the machine allows (the server raises its own).
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.max(soft), hard);
    }
    let dir = temp_dir("chat-hostile-idle");
    let s = server(&dir, &[]);
    let started = Instant::now();
    // 4,095 sockets that never say anything, and 2 that send one byte of
    // a frame at a time.
    let mut idle: Vec<TcpStream> = (0..4095)
        .map(|i| TcpStream::connect(&s.wire).unwrap_or_else(|e| panic!("socket {i}: {e}")))
        .collect();
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&s.wire).unwrap())
        .collect();
    // (Each was accepted by now: the login deadline runs from here at the
    // latest.)
    let connected = Instant::now();
    eprintln!("4,097 sockets open after {:?}", started.elapsed());
    let mut ping = Vec::new();
    Request::Ping.encode(1, &mut ping);
    for s in &mut slow {
        s.write_all(&ping[..1]).unwrap();
    }
    // A new client gets in, and logs in, within a second.
    let t = Instant::now();
    let mut w = Wire::connect(&s.wire);
    w.create("late", "pw");
    let t_login = Instant::now();
    w.login("late", "pw");
    let took = t.elapsed();
    assert!(
        t_login.elapsed() < Duration::from_secs(1),
        "the login took {:?}",
        t_login.elapsed()
    );
    eprintln!("a new client was served after {took:?} (create + login)");
    // The oldest of the unlogged were closed to make room, and told why.
    idle[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = [0u8; 64];
    let n = idle[0].read(&mut head).unwrap_or(0);
    assert!(n >= 12, "the oldest idle socket was closed with a frame");
    assert_eq!(head[5], wire::op::ERROR);
    assert_eq!(
        u16::from_be_bytes([head[10], head[11]]),
        wire::code::EVICTED
    );
    // Past the login deadline, every socket that never logged in is gone
    // (ERROR 6), while the logged-in client stays.
    let mut at = 1;
    while connected.elapsed() < Duration::from_secs(32) {
        std::thread::sleep(Duration::from_secs(3));
        for s in &mut slow {
            let _ = s.write_all(&ping[at..at + 1]);
        }
        at = (at + 1).min(ping.len() - 1);
    }
    let sample = &mut idle[4000];
    sample
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = sample.read(&mut head);
    assert!(
        matches!(n, Ok(n) if n >= 12),
        "an idle socket got its closing frame: {n:?} after {:?}",
        connected.elapsed()
    );
    assert_eq!(
        u16::from_be_bytes([head[10], head[11]]),
        wire::code::LOGIN_TIMEOUT
    );
    assert_eq!(sample.read(&mut head).unwrap_or(0), 0, "and was closed");
    assert_eq!(
        w.call(Request::Ping),
        Response::Ok,
        "the logged-in one stays"
    );
    drop(idle);
}

#[test]
fn deliver_fits_the_frame_limit_and_says_what_remains() {
    let dir = temp_dir("chat-hostile-frame");
    let s = server(&dir, &[]);
    let mut a = Wire::connect(&s.wire);
    a.create("big", "pw");
    a.create("sender", "pw");
    a.login("sender", "pw");
    let text = "m".repeat(16 * 1024);
    for _ in 0..5 {
        let r = a.call(Request::Send {
            to: "big".into(),
            text: text.clone(),
        });
        assert!(matches!(r, Response::Sent { .. }), "{r:?}");
    }
    let mut b = Wire::connect(&s.wire);
    b.login("big", "pw");
    let mut got = 0;
    while got < 5 {
        let id = b.send(Request::Deliver { max: 5 });
        let len = b.next_frame_len();
        assert!(len <= wire::MAX_FRAME, "a MESSAGES frame of {len} bytes");
        match b.answer(id) {
            Response::Messages { queued, messages } => {
                assert_eq!(queued as usize, 5 - got, "queued counts what waits");
                assert!(!messages.is_empty() && messages.len() < 5);
                got += messages.len();
                let ids = messages.iter().map(|m| m.id).collect();
                assert!(matches!(
                    b.call(Request::Ack { ids }),
                    Response::Acked { .. }
                ));
            }
            other => panic!("{other:?}"),
        }
    }
    // A request with id 0 is a protocol error: ERROR 1, then the end.
    let mut z = Wire::connect(&s.wire);
    let mut f = Vec::new();
    Request::Ping.encode(0, &mut f);
    z.s.write_all(&f).unwrap();
    let (id, r) = z.frame().expect("an error frame");
    assert_eq!((id, code(&r)), (0, Some(1)), "{r:?}");
    assert!(z.frame().is_none(), "then it is closed");
}

#[test]
fn a_receiver_that_stops_reading_is_told_delivered_only_for_a_few() {
    let dir = temp_dir("chat-hostile-sleepy");
    let s = server(&dir, &[]);
    let mut a = Wire::connect(&s.wire);
    a.create("sender", "pw");
    a.create("sleepy", "pw");
    a.login("sender", "pw");
    let mut sleepy = Wire::connect(&s.wire);
    sleepy.login("sleepy", "pw");
    // sleepy never reads again; 20,000 messages of 1 KB come for it.
    let text = "y".repeat(1000);
    let n = 20_000;
    let mut delivered = 0;
    for chunk in 0..(n / 500) {
        let ids: Vec<u32> = (0..500)
            .map(|i| {
                a.send(Request::Send {
                    to: "sleepy".into(),
                    text: format!("{} {text}", chunk * 500 + i),
                })
            })
            .collect();
        for id in ids {
            if let Response::Sent {
                delivered: true, ..
            } = a.answer(id)
            {
                delivered += 1;
            }
        }
    }
    // What "delivered" covers is the push buffer and the socket buffers:
    // a few hundred 1 KB messages at most, never thousands.
    eprintln!("{delivered} of {n} told delivered to a client that never read");
    assert!(delivered > 0, "sleepy was online");
    assert!(
        delivered < 1000,
        "{delivered} told delivered to a client that never read"
    );
    drop(sleepy);
    // Everything else is in the queue.
    let mut z = Wire::connect(&s.wire);
    let r = z.call(Request::Login {
        name: "sleepy".into(),
        password: "pw".into(),
    });
    assert_eq!(
        r,
        Response::LoggedIn {
            queued: n - delivered
        }
    );
}

#[test]
fn a_cancelled_create_or_delete_never_leaves_a_name_stuck() {
    let dir = temp_dir("chat-hostile-cancel");
    let s = server(&dir, &[]);
    runtime().block_on(async {
        for round in 0..24u64 {
            let (mut c, sid, _events) = grpc_session(&s.grpc).await;
            let name = format!("x{round}");
            let pw = "pw".to_string();
            // A create given up after a moment (the client cancels the call).
            let wait = Duration::from_millis(round * 7 % 120);
            let create = c.create(pb::Credentials {
                name: name.clone(),
                password: pw.clone(),
            });
            let _ = tokio::time::timeout(wait, create).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The name is either free or a working account: never half made.
            let made = c
                .login(pb::LoginRequest {
                    session: sid,
                    name: name.clone(),
                    password: pw.clone(),
                })
                .await;
            if made.is_err() {
                c.create(pb::Credentials {
                    name: name.clone(),
                    password: pw.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("round {round}: {name} is stuck half created: {e}"));
                c.login(pb::LoginRequest {
                    session: sid,
                    name: name.clone(),
                    password: pw.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("round {round}: cannot log in as {name}: {e}"));
            }
            // A delete given up after a moment.
            let delete = c.delete(pb::DeleteRequest {
                session: sid,
                password: pw.clone(),
            });
            let _ = tokio::time::timeout(wait, delete).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Either still there (and deletable) or gone (and creatable).
            let (mut d, did, _devents) = grpc_session(&s.grpc).await;
            let again = d
                .login(pb::LoginRequest {
                    session: did,
                    name: name.clone(),
                    password: pw.clone(),
                })
                .await;
            match again {
                Ok(_) => {
                    d.delete(pb::DeleteRequest {
                        session: did,
                        password: pw.clone(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: {name} cannot be deleted: {e}"));
                }
                Err(_) => {
                    d.create(pb::Credentials {
                        name: name.clone(),
                        password: pw.clone(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: {name} is stuck half deleted: {e}"));
                }
            }
        }
    });
}
