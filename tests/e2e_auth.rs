//! End-to-end: only members get in. Real `dsys` nodes on loopback, and an
//! attacker in this test speaking the transport's own gRPC (generated
//! stubs): without the cookie, with the cookie but a start time far in the
//! future, with the cookie and another member's certificate under TLS.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use common::{Proc, machines, run, temp_dir};
use dsys::config::Cluster;
use dsys::mutex::{Msg, ReqId};
use dsys::net::Wire;
use dsys::net::cookie::{Cookie, Side, Source};
use dsys::net::pb;
use dsys::net::pb::node_client::NodeClient;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn mutex(dir: &Path, name: &str, extra: &[&str]) -> Proc {
    let events = format!("{name}-{}.jsonl", std::fs::read_dir(dir).unwrap().count());
    let mut args = vec!["mutex", name, "--events", &events];
    args.extend_from_slice(extra);
    let p = Proc::spawn(name, &args, dir);
    p.expect("Type `help`", 10);
    p
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn addr_of(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("machines.txt")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[name].as_str().unwrap().to_string()
}

fn mutex_bytes(cluster: &Cluster, msg: &Msg) -> Bytes {
    let mut buf = Vec::new();
    msg.encode(cluster, &mut buf);
    Bytes::from(buf)
}

fn cookie_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, secret).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// One hello frame (and messages) on a fresh `Link` call: what the node
/// answered.
async fn link_once(
    client: &mut NodeClient<tonic::transport::Channel>,
    hello: pb::Hello,
    messages: Vec<Bytes>,
) -> Result<(), tonic::Status> {
    let frame = pb::Frame {
        hello: Some(hello),
        messages,
    };
    client.link(tokio_stream::iter([frame])).await.map(|_| ())
}

/// A plain (no TLS) connection to a node's transport.
async fn dial(addr: &str) -> NodeClient<tonic::transport::Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    NodeClient::new(channel)
}

/// `Challenge` as a mutex node `from`, dialing `to`.
async fn challenge(
    client: &mut NodeClient<tonic::transport::Channel>,
    from: &str,
    to: &str,
    dialer_nonce: &[u8],
) -> Result<tonic::Response<pb::ChallengeReply>, tonic::Status> {
    client
        .challenge(pb::ChallengeRequest {
            from: from.into(),
            to: to.into(),
            algorithm: "mutex".into(),
            dialer_nonce: Bytes::copy_from_slice(dialer_nonce),
        })
        .await
}

fn hello(from: &str, incarnation: u64) -> pb::Hello {
    pb::Hello {
        from: from.into(),
        algorithm: "mutex".into(),
        listener_nonce: Bytes::new(),
        proof: Bytes::new(),
        incarnation,
    }
}

/// The attacks of the issue, from a process without the cookie: a forged
/// `Reply` "from m2" while m2 is inside and m1 waits, and a forged `Hello`
/// "from m2" with incarnation 2^64-1. Both are refused (the node says why);
/// m1 does not enter while m2 is inside, m2 enters again afterwards, and
/// the checker agrees.
#[test]
fn forged_replies_and_hellos_without_the_cookie_are_refused_and_exclusion_holds() {
    let dir = temp_dir("auth-forge");
    let file = machines(&dir, &["m1", "m2", "m3"]);
    let cluster = Cluster::load(&file).unwrap();
    let mut m1 = mutex(&dir, "m1", &[]);
    let mut m2 = mutex(&dir, "m2", &[]);
    let mut m3 = mutex(&dir, "m3", &[]);
    m2.send("lock");
    m2.expect("entered the critical section", 10);
    m1.send("lock");
    m1.expect("request ts=", 5);

    let m1_addr = addr_of(&dir, "m1");
    let outcome = rt().block_on(async {
        let mut client = dial(&m1_addr).await;
        let mut refused = Vec::new();
        // Forged replies for every request m1 might have out, straight in.
        let replies: Vec<Bytes> = (0..4)
            .flat_map(|ts| (0..4).map(move |seq| (ts, seq)))
            .map(|(ts, seq)| {
                mutex_bytes(
                    &cluster,
                    &Msg::Reply(ReqId {
                        ts,
                        incarnation: 0,
                        seq,
                    }),
                )
            })
            .collect();
        refused.push(link_once(&mut client, hello("m2", 1), replies.clone()).await);
        // The same after a real challenge, with a proof made with a guess.
        let guess = Cookie::from_secret(b"not-the-cluster-cookie", Source::Env).unwrap();
        let dn = [7u8; 16];
        let reply = challenge(&mut client, "m2", "m1", &dn)
            .await
            .expect("the challenge itself is answered")
            .into_inner();
        let mut h = hello("m2", 1);
        h.proof = Bytes::copy_from_slice(&guess.prove(
            Side::Dialer,
            "m2",
            "m1",
            &dn,
            &reply.listener_nonce,
        ));
        h.listener_nonce = reply.listener_nonce.clone();
        refused.push(link_once(&mut client, h, replies).await);
        // A hello "from m2" with the largest incarnation.
        let forged_hello = mutex_bytes(
            &cluster,
            &Msg::Hello {
                incarnation: u64::MAX,
            },
        );
        refused.push(link_once(&mut client, hello("m2", u64::MAX), vec![forged_hello]).await);
        refused
    });
    for (i, r) in outcome.iter().enumerate() {
        let status = r.as_ref().expect_err("a forged link must be refused");
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "attack {i}: {status:?}"
        );
    }
    m1.expect("m2 (dialing from 127.0.0.1:", 5);
    m1.expect("has a different cookie (see --cookie)", 5);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        m1.count("entered the critical section"),
        0,
        "m1 entered while m2 was inside: {:?}",
        m1.lines()
    );
    // m2 leaves, m1 goes in and out, and m2 (not blocked by the forged
    // hello) enters again.
    m2.send("unlock");
    m1.expect("entered the critical section", 10);
    m1.send("unlock");
    m1.expect("left the critical section", 5);
    m2.send("lock");
    m2.expect_n("entered the critical section", 2, 10);
    m2.send("unlock");
    m2.expect_n("left the critical section", 2, 5);
    for p in [&mut m1, &mut m2, &mut m3] {
        p.send("quit");
        p.wait_exit(10);
    }
    let (code, out) = common::check_dir(&dir, "mutex");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
}

/// A member that proves the cookie but starts "in the future" (a clock far
/// ahead, or a forged incarnation) is refused, and told why.
#[test]
fn a_hello_from_far_in_the_future_is_refused_even_with_the_cookie() {
    let dir = temp_dir("auth-clock");
    machines(&dir, &["m1", "m2"]);
    let mut m1 = mutex(&dir, "m1", &[]);
    let cookie = Cookie::from_secret(common::cookie().as_bytes(), Source::Env).unwrap();
    let m1_addr = addr_of(&dir, "m1");
    let (ahead, now) = rt().block_on(async {
        let mut client = dial(&m1_addr).await;
        let mut attempt = async |incarnation: u64| {
            let dn = dsys::net::cookie::nonce();
            let reply = challenge(&mut client, "m2", "m1", &dn)
                .await
                .expect("challenge")
                .into_inner();
            assert!(
                cookie.check(
                    &reply.proof,
                    Side::Listener,
                    "m2",
                    "m1",
                    &dn,
                    &reply.listener_nonce
                ),
                "m1 proves it has the cookie"
            );
            let mut h = hello("m2", incarnation);
            h.proof = Bytes::copy_from_slice(&cookie.prove(
                Side::Dialer,
                "m2",
                "m1",
                &dn,
                &reply.listener_nonce,
            ));
            h.listener_nonce = reply.listener_nonce;
            link_once(&mut client, h, Vec::new()).await
        };
        let ahead = attempt(u64::MAX).await;
        let now = attempt(dsys::net::auth::now_us()).await;
        (ahead, now)
    });
    let status = ahead.expect_err("a start time far ahead is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("clock"), "{status:?}");
    m1.expect("m2's clock is", 5);
    assert!(
        now.is_ok(),
        "a member with the cookie and a sane clock links: {now:?}"
    );
    m1.send("quit");
    m1.wait_exit(10);
}

/// Two clusters on one machine with different cookies (and configs that
/// overlap in one address) never link, and each side says why.
#[test]
fn two_clusters_with_different_cookies_never_link_and_say_why() {
    let dir = temp_dir("auth-two");
    machines(&dir, &["l1", "l2", "l3"]);
    let a = cookie_file(&dir, "a.cookie", "cluster-a-0123456789abcdef");
    let b = cookie_file(&dir, "b.cookie", "cluster-b-0123456789abcdef");
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let mut l1 = mutex(&dir, "l1", &["--cookie", &a]);
    let mut l2 = mutex(&dir, "l2", &["--cookie", &a]);
    let mut l3 = mutex(&dir, "l3", &["--cookie", &b]);
    l1.send("lock");
    l1.expect("reply from l2", 10);
    let l3_addr = addr_of(&dir, "l3");
    l1.expect(
        &format!("l3 at {l3_addr} has a different cookie (see --cookie)"),
        10,
    );
    l3.expect("l1 (dialing from", 10);
    l3.expect("has a different cookie (see --cookie)", 10);
    l1.send("status");
    l1.expect("l3 REFUSED (different cookie)", 5);
    l3.send("lock");
    l3.expect("has a different cookie", 10);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(l1.count("entered the critical section"), 0);
    assert_eq!(l3.count("entered the critical section"), 0);
    assert_eq!(l3.count("reply from"), 0, "{:?}", l3.lines());
    for p in [&mut l1, &mut l2, &mut l3] {
        p.send("quit");
        p.wait_exit(10);
    }
}

fn certs(dir: &Path, nodes: &str) -> PathBuf {
    let tls = dir.join("tls");
    let (code, out, err) = run(
        &[
            "certs",
            "init",
            &tls.display().to_string(),
            "--nodes",
            nodes,
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    tls
}

/// Under `--tls`, a process with the cookie and m1's certificate that
/// claims to be m3 is refused: the certificate must name the member.
#[test]
fn under_tls_a_member_claiming_another_name_is_refused() {
    let dir = temp_dir("auth-tls-name");
    machines(&dir, &["m1", "m2", "m3"]);
    let tls = certs(&dir, "m1,m2,m3");
    let t = tls.display().to_string();
    let mut m2 = mutex(&dir, "m2", &["--tls", &t]);
    let cookie = Cookie::from_secret(common::cookie().as_bytes(), Source::Env).unwrap();
    let m2_addr = addr_of(&dir, "m2");
    let read = |f: &str| std::fs::read(tls.join(f)).unwrap();
    let (plain, claimed) = rt().block_on(async {
        // Without a certificate, there is no TLS link at all.
        let plain = Endpoint::from_shared(format!("http://{m2_addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .map(NodeClient::new);
        let plain = match plain {
            Ok(mut c) => c
                .link(tokio_stream::iter([pb::Frame::default()]))
                .await
                .is_ok(),
            Err(_) => false,
        };
        let cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca.pem")))
            .identity(Identity::from_pem(read("m1.pem"), read("m1.key")))
            .domain_name("m2");
        let channel = Endpoint::from_shared(format!("https://{m2_addr}"))
            .unwrap()
            .tls_config(cfg)
            .unwrap()
            .connect()
            .await
            .expect("a TLS connection with a cluster certificate");
        let mut client = NodeClient::new(channel);
        let dn = dsys::net::cookie::nonce();
        let claimed = challenge(&mut client, "m3", "m2", &dn).await;
        let _ = &cookie;
        (plain, claimed)
    });
    assert!(!plain, "a link without TLS is refused by a TLS node");
    let status = claimed.expect_err("m1's certificate cannot claim m3");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    m2.expect("claims to be m3, but its certificate does not name m3", 5);
    m2.send("quit");
    m2.wait_exit(10);
}

/// `dsys certs init` output used by three TLS nodes of each peer algorithm:
/// they link and work.
#[test]
fn certs_init_gives_three_tls_nodes_of_each_algorithm_their_links() {
    let dir = temp_dir("auth-tls-all");
    machines(&dir, &["l1", "l2", "l3"]);
    std::fs::copy(dir.join("machines.txt"), dir.join("peers.json")).unwrap();
    let tls = certs(&dir, "l1,l2,l3");
    let t = tls.display().to_string();
    let tls_args = ["--tls", t.as_str()];
    // Ricart-Agrawala: an entry needs both others' replies.
    {
        let mut n: Vec<Proc> = ["l1", "l2", "l3"]
            .iter()
            .map(|x| mutex(&dir, x, &tls_args))
            .collect();
        n[0].send("lock");
        n[0].expect("entered the critical section", 10);
        for p in &mut n {
            p.send("quit");
        }
    }
    // A token ring: the token goes round.
    {
        let mut n: Vec<Proc> = [("l1", "l2"), ("l2", "l3"), ("l3", "l1")]
            .iter()
            .map(|(a, b)| {
                let p = Proc::spawn(a, &["tokenring", a, "--next", b, "--tls", &t], &dir);
                p.expect("Type `help`", 10);
                p
            })
            .collect();
        n[0].send("start");
        n[2].expect("token ", 15);
        for p in &mut n {
            p.send("quit");
        }
    }
    // Gossip: a word said at l1 reaches l3.
    {
        let mut n: Vec<Proc> = [("l1", "l2"), ("l2", "l1,l3"), ("l3", "l2")]
            .iter()
            .map(|(a, b)| {
                let p = Proc::spawn(
                    a,
                    &["gossip", a, "--no-generate", "--neighbors", b, "--tls", &t],
                    &dir,
                );
                p.expect("listening", 10);
                p
            })
            .collect();
        n[0].send("say tlsword");
        n[2].expect("\"tlsword\"", 15);
        for p in &mut n {
            p.send("quit");
        }
    }
    // Multicast: a line sent at l1 is delivered at l3.
    {
        let mut n: Vec<Proc> = ["l1", "l2", "l3"]
            .iter()
            .map(|a| {
                let p = Proc::spawn(a, &["multicast", a, "--plain", "--tls", &t], &dir);
                p.expect("l", 10);
                p
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        n[0].send("over tls");
        n[2].expect("over tls", 15);
        for p in &mut n {
            p.send("/quit");
            p.close_stdin();
        }
    }
    // The clock model: each machine starts ticking only once it has heard
    // from both others (over TLS), and at least one message is received.
    {
        let n: Vec<Proc> = ["l1", "l2", "l3"]
            .iter()
            .map(|a| Proc::spawn(a, &["clocks", a, "--duration", "5s", "--tls", &t], &dir))
            .collect();
        for p in &n {
            // "connected to l3, l1: ticking at ...", in the order heard.
            p.expect(": ticking at", 15);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while n.iter().all(|p| p.count("recv l") == 0) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            n.iter().any(|p| p.count("recv l") > 0),
            "no machine received a message: {:?}",
            n[0].lines()
        );
    }
}

/// `dsys chat server --tls DIR`: a client with `--tls-ca` works over both
/// protocols; a plain client is refused with a clear error.
#[test]
fn a_chat_server_with_tls_serves_tls_clients_and_refuses_plain_ones() {
    let dir = temp_dir("auth-chat-tls");
    let tls = certs(&dir, "server");
    let t = tls.display().to_string();
    let ca = tls.join("ca.pem").display().to_string();
    let mut s = common::chat::server(&dir, None, &["--tls", &t]);
    s.proc.expect("both over TLS", 5);
    for protocol in ["wire", "grpc"] {
        let mut c = Proc::spawn(
            "c",
            &[
                "chat",
                "client",
                "--plain",
                "--protocol",
                protocol,
                "--server",
                s.addr(protocol),
                "--tls-ca",
                &ca,
            ],
            &dir,
        );
        c.expect("note: connected to", 20);
        let name = format!("tls{protocol}");
        c.send(&format!("/create {name} pw-{protocol}"));
        c.expect(&format!("ok: created account {name}"), 20);
        c.send(&format!("/login {name} pw-{protocol}"));
        c.expect(&format!("logged in as {name}"), 20);
        c.send(&format!("@{name} to myself"));
        c.expect("to myself", 20);
        c.send("/quit");
        c.wait_exit(10);
        // The same without --tls-ca: refused, and told why.
        let (code, out, err) = run(
            &[
                "chat",
                "client",
                "--plain",
                "--protocol",
                protocol,
                "--server",
                s.addr(protocol),
            ],
            &dir,
        );
        let said = format!("{out}{err}");
        assert!(said.contains("--tls-ca"), "{protocol} ({code}): {said}");
        assert!(!said.contains("connected to"), "{protocol}: {said}");
    }
    s.proc.kill9();
}

/// `dsys share tracker --tls DIR`: peers with `--tls-ca` register and find
/// each other's files through it; a peer without it cannot reach it.
#[test]
fn a_tracker_with_tls_serves_peers_that_trust_its_ca() {
    let net = common::share::Net::new("auth-tracker-tls");
    let tls = certs(&net.root, "tracker");
    let (t, ca) = (
        tls.display().to_string(),
        tls.join("ca.pem").display().to_string(),
    );
    let addr = net.tracker_addr();
    let tracker = Proc::spawn(
        "tracker",
        &["share", "tracker", "--listen", &addr, "--tls", &t],
        &net.root,
    );
    tracker.expect("over TLS", 20);
    net.put("p1", "a.txt", b"hello over tls");
    let _p1 = net.peer("p1", &["--tls-ca", &ca]);
    let mut p2 = net.peer("p2", &["--tls-ca", &ca]);
    p2.send("find a.txt");
    p2.expect("find a.txt: 1 peer has it", 10);
    p2.send("download a.txt");
    p2.expect("downloaded a.txt", 20);
    assert_eq!(
        net.read("p2", "a.txt").as_deref(),
        Some(&b"hello over tls"[..])
    );
    let plain = net.peer_on("p3", common::free_port(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        plain.count("registered with the tracker"),
        0,
        "{:?}",
        plain.lines()
    );
}

/// In the multicast terminal UI, a member with another cookie shows as such
/// in the status bar (not as merely down); once it comes back with the
/// cluster's cookie it joins, and the message that waited for it arrives.
#[test]
fn the_multicast_ui_shows_a_refused_member_and_it_joins_once_its_cookie_is_right() {
    use common::tmux::Tmux;
    let dir = temp_dir("auth-tui");
    machines(&dir, &["l1", "l2", "l3"]);
    std::fs::copy(dir.join("machines.txt"), dir.join("peers.json")).unwrap();
    let other = cookie_file(&dir, "other.cookie", "another-cluster-0123456789");
    let t = Tmux::new("auth-tui", &dir, 100, 20);
    t.window("l1", &dir, &format!("{} multicast l1", common::BIN));
    t.window("l2", &dir, &format!("{} multicast l2", common::BIN));
    t.window(
        "l3",
        &dir,
        &format!("{} multicast l3 --cookie {}", common::BIN, other.display()),
    );
    t.wait_for("l1", "l2 up");
    t.keys("l1", &["waited for l3", "Enter"]);
    let s = t.wait_for("l1", "l3 different cookie");
    assert!(s.contains("l3 different cookie"), "{s}");
    let s = t.wait_for("l3", "l1 different cookie");
    assert!(s.contains("l1 different cookie"), "{s}");
    t.keys("l3", &["C-c"]);
    assert!(t.closed("l3", 10), "l3 quits on Ctrl-C");
    t.window("l3b", &dir, &format!("{} multicast l3", common::BIN));
    let s = t.wait_for("l3b", "waited for l3");
    assert!(s.contains("l1: waited for l3"), "{s}");
    let s = t.wait_for("l1", "l3 up");
    assert!(s.contains("l3 up"), "{s}");
}

/// A stranger hammering `Challenge` (5,000 calls on one connection, as
/// "m2") while the real m1 and m2 link: their handshakes are not evicted, m1
/// enters, and the node's table of challenges stays bounded (it answers
/// the flood and stays responsive).
#[test]
fn a_flood_of_challenges_does_not_keep_members_apart() {
    let dir = temp_dir("auth-flood");
    machines(&dir, &["m1", "m2"]);
    let mut m1 = mutex(&dir, "m1", &[]);
    let m1_addr = addr_of(&dir, "m1");
    let flood = std::thread::spawn(move || {
        rt().block_on(async {
            let mut client = dial(&m1_addr).await;
            let mut answered = 0;
            for _ in 0..5000 {
                let r = challenge(&mut client, "m2", "m1", &[1u8; 16]).await;
                answered += usize::from(r.is_ok());
            }
            answered
        })
    });
    let mut m2 = mutex(&dir, "m2", &[]);
    m1.send("lock");
    m1.expect("entered the critical section", 15);
    m1.send("unlock");
    m2.send("lock");
    m2.expect("entered the critical section", 15);
    let answered = flood.join().expect("flood thread");
    assert_eq!(answered, 5000, "every challenge is answered, none piles up");
    for p in [&mut m1, &mut m2] {
        p.send("quit");
        p.wait_exit(10);
    }
}

/// Two hosts, for real: a network namespace joined by a veth pair. h1 runs
/// here (10.N.0.1), h2 inside the namespace (10.N.0.2); they link. A
/// process here that holds the cookie and claims to be h2 is refused: its
/// link comes from h1's host, not the config's host for h2.
#[test]
fn across_network_namespaces_members_link_and_a_claim_from_the_wrong_host_is_refused() {
    struct Netns(String, String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.1])
                .status();
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let ip = |args: &[&str]| {
        let ok = std::process::Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`ip {}` failed: this test needs root and iproute2",
            args.join(" ")
        );
    };
    let k = std::process::id() % 200 + 20;
    let (ns, host_if, ns_if) = (
        format!("dsys-auth-{k}"),
        format!("dsa{k}"),
        format!("dsb{k}"),
    );
    let (a, b) = (format!("10.{k}.0.1"), format!("10.{k}.0.2"));
    ip(&["netns", "add", &ns]);
    let _guard = Netns(ns.clone(), host_if.clone());
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
    ]);
    ip(&["link", "set", &ns_if, "netns", &ns]);
    ip(&["addr", "add", &format!("{a}/24"), "dev", &host_if]);
    ip(&["link", "set", &host_if, "up"]);
    ip(&[
        "netns",
        "exec",
        &ns,
        "ip",
        "addr",
        "add",
        &format!("{b}/24"),
        "dev",
        &ns_if,
    ]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", &ns_if, "up"]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);

    let dir = temp_dir("auth-netns");
    let (pa, pb) = (common::free_port(), common::free_port());
    std::fs::write(
        dir.join("machines.txt"),
        format!("{{\"h1\": \"{a}:{pa}\", \"h2\": \"{b}:{pb}\"}}"),
    )
    .unwrap();
    let mut h1 = mutex(&dir, "h1", &[]);
    let mut h2 = Proc::spawn_via(
        "h2",
        "ip",
        &["netns", "exec", &ns, common::BIN, "mutex", "h2"],
        &dir,
    );
    h2.expect("Type `help`", 10);
    h1.send("lock");
    h1.expect("entered the critical section", 15);
    h1.send("unlock");

    let claimed = rt().block_on(async {
        let mut client = dial(&format!("{a}:{pa}")).await;
        challenge(&mut client, "h2", "h1", &dsys::net::cookie::nonce()).await
    });
    let status = claimed.expect_err("a claim to be h2 from h1's host is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("this link comes from {a}")),
        "{status:?}"
    );
    h1.expect(&format!("h2 is at {b}"), 5);
    for p in [&mut h1, &mut h2] {
        p.send("quit");
        p.wait_exit(10);
    }
}
