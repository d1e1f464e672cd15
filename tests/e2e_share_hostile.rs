//! `dsys share` against hostile clients, end to end: a real tracker and real
//! peers on loopback, and forgers speaking gRPC straight at the tracker (a
//! small tonic client here) or answering as fake peers (a tonic server
//! here that knows its token, so the tracker lists it, and serves nothing).
//! Forged majorities, addresses that are not the announcer's, names that
//! fool the eye, floods past every bound, and what a failed download leaves
//! behind.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::share::{Net, data, served_at};
use common::{Proc, free_port, run};
use dsys::share::hash::{self, Hash};
use dsys::share::{pb, proof};
use tokio::runtime::Runtime;
use tonic::transport::Channel;

/// The token every fake peer here knows.
const TOKEN: [u8; 16] = [42; 16];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A peer that proves TOKEN for any port it is reached on (as `fakePORT`),
/// answers its load, and serves no piece. It counts the tracker's calls.
#[derive(Clone, Default)]
struct Fake {
    proves: Arc<AtomicUsize>,
}

fn fake_name(port: u16) -> String {
    format!("fake{port}")
}

#[tonic::async_trait]
impl pb::peer_server::Peer for Fake {
    async fn load(
        &self,
        _: tonic::Request<pb::LoadRequest>,
    ) -> Result<tonic::Response<pb::LoadReply>, tonic::Status> {
        Ok(tonic::Response::new(pb::LoadReply {
            load: 0,
            name: "fake".into(),
        }))
    }

    async fn prove(
        &self,
        req: tonic::Request<pb::ProveRequest>,
    ) -> Result<tonic::Response<pb::ProveReply>, tonic::Status> {
        self.proves.fetch_add(1, Ordering::Relaxed);
        let port = req.local_addr().map_or(0, |a| a.port());
        let name = fake_name(port);
        let p = proof::prove(
            &TOKEN,
            &req.into_inner().nonce,
            &name,
            &format!("127.0.0.1:{port}"),
        );
        Ok(tonic::Response::new(pb::ProveReply {
            name,
            proof: p.to_vec().into(),
        }))
    }

    type FetchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::Chunk, tonic::Status>>;

    async fn fetch(
        &self,
        _: tonic::Request<pb::FetchRequest>,
    ) -> Result<tonic::Response<Self::FetchStream>, tonic::Status> {
        Err(tonic::Status::unavailable("this fake peer serves nothing"))
    }
}

/// `n` loopback ports (bound here, so no one else takes them), all served
/// by one fake peer.
fn fake_peers(rt: &Runtime, n: usize) -> Vec<u16> {
    fake_peers_counted(rt, n).0
}

/// The same, with the count of call backs the fake peer has answered.
fn fake_peers_counted(rt: &Runtime, n: usize) -> (Vec<u16>, Arc<AtomicUsize>) {
    let fake = Fake::default();
    let proves = fake.proves.clone();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<tokio::net::TcpStream>>(64);
        let mut ports = Vec::with_capacity(n);
        for _ in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a fake peer");
            ports.push(l.local_addr().expect("addr").port());
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    if tx.send(Ok(s)).await.is_err() {
                        return;
                    }
                }
            });
        }
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::peer_server::PeerServer::new(fake))
                .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
        );
        (ports, proves)
    })
}

async fn tracker_client(net: &Net) -> pb::tracker_client::TrackerClient<Channel> {
    pb::tracker_client::TrackerClient::connect(format!("http://{}", net.tracker_addr()))
        .await
        .expect("connect to the tracker")
        .max_decoding_message_size(64 << 20)
}

async fn announce(
    t: &mut pb::tracker_client::TrackerClient<Channel>,
    name: &str,
    addr: &str,
    files: Vec<pb::FileEntry>,
    token: &[u8],
) -> Result<u32, tonic::Status> {
    t.announce(pb::AnnounceRequest {
        name: name.into(),
        addr: addr.into(),
        files,
        token: token.to_vec().into(),
    })
    .await
    .map(|r| r.into_inner().peers)
}

/// An entry whose piece hashes make its hash, for content that exists
/// nowhere (`count` pieces of `piece_size`, the last one `last` bytes).
fn made_up(name: &str, piece_size: u64, count: usize, seed: u8) -> pb::FileEntry {
    let values: Vec<Hash> = (0..count)
        .map(|i| {
            let mut v = [seed; 32];
            v[..8].copy_from_slice(&(i as u64).to_le_bytes());
            v
        })
        .collect();
    let size = piece_size * count as u64;
    let h = hash::combine(&values, piece_size, size).expect("combine");
    pb::FileEntry {
        name: name.into(),
        size,
        hash: h.to_vec().into(),
        piece_size,
        pieces: values.iter().map(|v| v.to_vec().into()).collect(),
    }
}

/// The entry an owner would announce for `bytes`.
fn real_entry(name: &str, bytes: &[u8]) -> pb::FileEntry {
    let size = bytes.len() as u64;
    let ps = hash::piece_size_for(size);
    let count = hash::piece_count(size, ps);
    let pieces: Vec<Hash> = (0..count)
        .map(|i| {
            let (s, e) = hash::piece_range(size, ps, i);
            hash::piece_value(&bytes[s as usize..e as usize], i, ps, count)
        })
        .collect();
    let h = hash::combine(&pieces, ps, size).expect("combine");
    assert_eq!(h, *blake3::hash(bytes).as_bytes());
    pb::FileEntry {
        name: name.into(),
        size,
        hash: h.to_vec().into(),
        piece_size: ps,
        pieces: pieces.iter().map(|v| v.to_vec().into()).collect(),
    }
}

fn short(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_string()
}

fn no_leftovers(net: &Net, peer: &str, file: &str) {
    let partial = net.root.join(peer).join(".dsys-share/partial");
    for ext in ["part", "json", "lock"] {
        let p = partial.join(format!("{file}.{ext}"));
        assert!(!p.exists(), "{} left behind", p.display());
    }
    assert!(net.read(peer, file).is_none(), "{file} appeared in {peer}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_forged_majority_is_refused_and_never_substitutes_the_file() {
    let net = Net::new("hostile-majority");
    let t = net.tracker_with("30s");
    let honest = data(3 * 1024 * 1024 + 5, 21);
    let evil = data(3 * 1024 * 1024 + 5, 22);
    net.put("h1", "doc.bin", &honest);
    net.put("h2", "doc.bin", &honest);
    let h1 = net.peer("h1", &[]);
    let _h2 = net.peer("h2", &[]);
    let h1_addr = served_at(&h1);
    let rt = runtime();
    rt.block_on(async {
        let mut t = tracker_client(&net).await;
        let forged = real_entry("doc.bin", &evil);
        // Two holders that are not there: the tracker calls them back.
        for name in ["h3", "h4"] {
            let dead = free_port();
            let e = announce(
                &mut t,
                name,
                &format!("127.0.0.1:{dead}"),
                vec![forged.clone()],
                &proof::random16().expect("rng"),
            )
            .await
            .expect_err("a dead address listed");
            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
            assert!(
                e.message().contains(&format!(
                    "the tracker called back 127.0.0.1:{dead} and it did not answer"
                )),
                "{e:?}"
            );
        }
        // A live honest peer's address, with a token the forger made up.
        let e = announce(&mut t, "h1", &h1_addr, vec![forged.clone()], &[9; 16])
            .await
            .expect_err("a live peer's address taken over");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
        assert!(
            e.message().contains(&format!(
                "the tracker called back {h1_addr} and it did not answer as peer h1"
            )),
            "{e:?}"
        );
        // What the tracker lists: the two honest peers, the honest content.
        let found = t
            .find(pb::FindRequest {
                name: "doc.bin".into(),
            })
            .await
            .expect("find")
            .into_inner();
        assert_eq!(found.holders.len(), 2, "{found:?}");
        for h in &found.holders {
            let f = h.file.as_ref().expect("entry");
            assert_eq!(f.hash.as_ref(), blake3::hash(&honest).as_bytes());
        }
    });
    assert_eq!(t.count("registered"), 2, "{}", t.lines().join("\n"));
    let mut me = net.peer("me", &[]);
    me.send("find doc.bin");
    me.expect("find doc.bin: 2 peers have it", 5);
    me.send("download doc.bin");
    me.expect("downloaded doc.bin", 20);
    assert_eq!(me.count("versions"), 0, "{}", me.lines().join("\n"));
    assert!(
        net.read("me", "doc.bin") == Some(honest),
        "not the honest doc.bin"
    );
}

#[test]
fn several_live_versions_are_shown_and_only_a_hash_picks_one() {
    let net = Net::new("hostile-versions");
    let _t = net.tracker_with("30s");
    let honest = data(2 * 1024 * 1024 + 9, 31);
    let evil = data(2 * 1024 * 1024 + 9, 32);
    net.put("h1", "doc.bin", &honest);
    net.put("e1", "doc.bin", &evil);
    net.put("e2", "doc.bin", &evil);
    let _h1 = net.peer("h1", &[]);
    let mut e1 = net.peer("e1", &[]);
    let mut e2 = net.peer("e2", &[]);
    let (good, bad) = (short(&honest), short(&evil));
    let mut me = net.peer("me", &[]);
    me.send("find doc.bin");
    me.expect("find doc.bin: 3 peers have it, in 2 versions", 5);
    me.expect(&format!("version blake3 {good}"), 5);
    me.expect(&format!("version blake3 {bad}"), 5);
    // The evil version has more holders; it is not taken, nor is any.
    me.send("download doc.bin");
    me.expect(
        "doc.bin has 2 versions on the network, 2 of them with holders that answer",
        10,
    );
    me.expect("none taken", 5);
    me.expect("download doc.bin --hash PREFIX", 5);
    no_leftovers(&net, "me", "doc.bin");
    // Bad prefixes say what is wrong.
    me.send("download doc.bin --hash zz");
    me.expect("a hash prefix is 1-64 hex digits", 5);
    let neither = (0..16u8)
        .map(|d| format!("{d:x}"))
        .find(|d| !good.starts_with(d.as_str()) && !bad.starts_with(d.as_str()))
        .expect("a digit neither hash starts with");
    me.send(&format!("download doc.bin --hash {neither}"));
    me.expect(
        &format!("no version of doc.bin has a hash starting with {neither}"),
        5,
    );
    no_leftovers(&net, "me", "doc.bin");
    // The chosen one, flags before the name.
    me.send(&format!("download --hash {} doc.bin", &good[..8]));
    me.expect("downloaded doc.bin", 20);
    assert!(
        net.read("me", "doc.bin") == Some(honest.clone()),
        "not the chosen version"
    );

    // Holders that do not answer make a version not live: with the evil
    // peers gone (still listed: the tracker forgets after 30 s), the one
    // live version is taken, and the user is told.
    e1.kill9();
    e2.kill9();
    let mut me2 = net.peer("me2", &[]);
    me2.send("download doc.bin");
    me2.expect("but only one has a holder that answers", 10);
    me2.expect("downloaded doc.bin", 20);
    assert!(
        net.read("me2", "doc.bin") == Some(honest),
        "not the live version"
    );
}

#[test]
fn announces_for_addresses_not_the_announcers_or_with_deceptive_names_are_refused() {
    let net = Net::new("hostile-names");
    let _t = net.tracker();
    let rt = runtime();
    let (ports, proves) = fake_peers_counted(&rt, 1);
    let port = ports[0];
    let me = fake_name(port);
    let here = format!("127.0.0.1:{port}");
    rt.block_on(async {
        let mut t = tracker_client(&net).await;
        let file = |name: &str| made_up(name, 1024, 2, 1);
        // Another IP than the announce's own: refused before any call back.
        let other = format!("127.0.0.2:{port}");
        let e = announce(&mut t, &me, &other, vec![], &TOKEN)
            .await
            .expect_err("another IP");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
        assert!(
            e.message().contains(&other) && e.message().contains("comes from 127.0.0.1"),
            "{e:?}"
        );
        for (bad, code) in [
            ("invoice\u{202e}fdp.exe", "U+202E"),
            ("one\u{2028}two", "U+2028"),
            ("doc\u{200b}.bin", "U+200B"),
        ] {
            let e = announce(&mut t, &me, &here, vec![file(bad)], &TOKEN)
                .await
                .expect_err(bad);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
            assert!(e.message().contains(code), "{e:?}");
            assert!(!e.message().contains(bad), "the raw name is echoed: {e:?}");
            let e = announce(&mut t, bad, &here, vec![], &TOKEN)
                .await
                .expect_err("a deceptive peer name");
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
            assert!(e.message().contains(code), "{e:?}");
        }
        let e = announce(&mut t, &me, &here, vec![], &[])
            .await
            .expect_err("no token");
        assert!(e.message().contains("token"), "{e:?}");
        // The same announce, plain: listed (the refusals were the names').
        // Refused before any call back: the tracker never called.
        assert_eq!(proves.load(Ordering::Relaxed), 0);
        let n = announce(&mut t, &me, &here, vec![file("plain.bin")], &TOKEN)
            .await
            .expect("a plain announce from a peer that proves its token");
        assert_eq!(n, 1);
        assert_eq!(proves.load(Ordering::Relaxed), 1);
        // A heartbeat from a verified (address, token): no call back.
        for _ in 0..3 {
            announce(&mut t, &me, &here, vec![file("plain.bin")], &TOKEN)
                .await
                .expect("a heartbeat");
        }
        assert_eq!(proves.load(Ordering::Relaxed), 1);
        // A new token for that address is checked again, and while it
        // fails the old record stands.
        let e = announce(&mut t, &me, &here, vec![file("other.bin")], &[7; 16])
            .await
            .expect_err("a token the peer there does not know");
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
        assert_eq!(proves.load(Ordering::Relaxed), 2);
        let found = t
            .find(pb::FindRequest {
                name: "plain.bin".into(),
            })
            .await
            .expect("find")
            .into_inner();
        assert_eq!(found.holders.len(), 1, "{found:?}");
        assert_eq!(found.holders[0].addr, here);
    });
    // At the command line, and on disk.
    let (code, _, err) = run(
        &["share", "peer", ".", "--name", "bad\u{202e}name"],
        &net.root,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("U+202E") && !err.contains('\u{202e}'), "{err}");
    net.put("p1", "photo\u{202e}gpj.exe", b"x");
    net.put("p1", "fine.txt", b"fine");
    let p1 = net.peer("p1", &[]);
    p1.expect("not shared: \"photo\\u{202e}gpj.exe\" is refused", 5);
    assert!(
        p1.lines().iter().all(|l| !l.contains('\u{202e}')),
        "{}",
        p1.lines().join("\n")
    );
}

#[test]
fn the_tracker_bounds_what_it_keeps_and_serves_honest_peers_through_a_flood() {
    use dsys::share::tracker::{
        MAX_ANNOUNCE, MAX_FILES_PER_PEER, MAX_PEERS, MAX_PIECES_PER_FILE, MAX_TRACKED_BYTES,
    };
    let started = Instant::now();
    let net = Net::new("hostile-flood");
    let t = net.tracker_with("300s");
    let bytes = data(3 * 1024 * 1024, 41);
    net.put("h1", "f.bin", &bytes);
    let h1 = net.peer("h1", &[]);
    let mut h2 = net.peer("h2", &[]);
    let rt = runtime();
    let ports = fake_peers(&rt, MAX_PEERS + 8);
    let before = rss_kib(t.pid());
    eprintln!(
        "the tracker's VmRSS before the flood: {} MiB",
        before / 1024
    );
    // The budget counts what is tracked; the process itself (about 12 MiB)
    // and the buffers of an announce being decoded (reused, not growing
    // with the flood) come on top: measured 297 MiB at the end.
    let rss_limit_kib = (MAX_TRACKED_BYTES / 1024 + 64 * 1024) as u64;
    rt.block_on(async {
        let mut t = tracker_client(&net).await;
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let p0 = ports[0];
        // Files per peer.
        let many: Vec<pb::FileEntry> = (0..=MAX_FILES_PER_PEER)
            .map(|i| made_up(&format!("f{i}"), 1024, 1, 2))
            .collect();
        let e = announce(&mut t, &fake_name(p0), &addr(p0), many, &TOKEN)
            .await
            .expect_err("too many files");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("MAX_FILES_PER_PEER"), "{e:?}");
        // Pieces per file.
        let long = made_up("long.bin", 1024, MAX_PIECES_PER_FILE + 1, 3);
        let e = announce(&mut t, &fake_name(p0), &addr(p0), vec![long], &TOKEN)
            .await
            .expect_err("too many pieces");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("MAX_PIECES_PER_FILE"), "{e:?}");
        // Bytes per announce: three files near the piece bound.
        let big = made_up("big.bin", 1024, MAX_PIECES_PER_FILE, 4);
        let three: Vec<pb::FileEntry> = ["a", "b", "c"]
            .iter()
            .map(|n| pb::FileEntry {
                name: (*n).into(),
                ..big.clone()
            })
            .collect();
        let e = announce(&mut t, &fake_name(p0), &addr(p0), three, &TOKEN)
            .await
            .expect_err("too large a message");
        assert!(e.message().contains(&MAX_ANNOUNCE.to_string()), "{e:?}");

        // Peers: fake peers up to the bound (two honest ones are listed).
        let mut listed = 0;
        let mut refused = None;
        for &p in &ports {
            match announce(&mut t, &fake_name(p), &addr(p), vec![], &TOKEN).await {
                Ok(n) => listed = n,
                Err(e) => {
                    refused = Some((p, e));
                    break;
                }
            }
        }
        let (extra, e) = refused.expect("the peers' bound was never hit");
        assert_eq!(listed as usize, MAX_PEERS);
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("MAX_PEERS"), "{e:?}");
        assert!(ports.contains(&extra));

        // The budget: listed fake peers re-announce 4 MiB lists each.
        let mut taken = 0usize;
        let mut refused = None;
        for &p in ports.iter().take(200) {
            match announce(&mut t, &fake_name(p), &addr(p), vec![big.clone()], &TOKEN).await {
                Ok(_) => taken += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let e = refused.expect("the budget was never hit");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        assert!(e.message().contains("MAX_TRACKED_BYTES"), "{e:?}");
        let each = 32 * MAX_PIECES_PER_FILE;
        eprintln!("{taken} lists of {each} bytes taken before the budget");
        assert!(
            taken * each <= MAX_TRACKED_BYTES && (taken + 2) * each > MAX_TRACKED_BYTES,
            "{taken} lists of {each} bytes taken"
        );
    });
    let rss = rss_kib(t.pid());
    eprintln!("the tracker's VmRSS after the flood: {} MiB", rss / 1024);
    assert!(
        rss < rss_limit_kib,
        "the tracker holds {} MiB after the flood",
        rss / 1024
    );
    // Honest peers: listed, heard, served all along.
    h2.send("download f.bin");
    h2.expect("downloaded f.bin", 20);
    assert!(net.read("h2", "f.bin") == Some(bytes), "f.bin differs");
    assert_eq!(h1.count("refuses"), 0, "{}", h1.lines().join("\n"));
    // A newcomer is told why it is not listed.
    let h3 = net.peer_on("h3", free_port(), &[]);
    h3.expect("refuses this peer's list", 10);
    h3.expect("MAX_PEERS", 5);
    let rss = rss_kib(t.pid());
    assert!(rss < rss_limit_kib, "the tracker holds {} MiB", rss / 1024);
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn a_file_that_cannot_come_or_cannot_fit_leaves_nothing_behind() {
    let net = Net::new("hostile-leftovers");
    let _t = net.tracker_with("60s");
    let rt = runtime();
    let port = fake_peers(&rt, 1)[0];
    let mut me = net.peer("me", &[]);
    let free = dsys::share::partial::free_space(&net.root).expect("free space");
    // 1 TiB in 16 MiB pieces, or 2 TiB on a disk with more than 1 TiB free.
    let count = if free < 1 << 40 { 65_536 } else { 131_072 };
    assert!(
        free < (count as u64) << 24,
        "the disk holds even the huge file"
    );
    rt.block_on(async {
        let mut t = tracker_client(&net).await;
        let files = vec![
            made_up("huge.bin", 16 << 20, count, 5),
            made_up("gone.bin", 1 << 20, 8, 6),
        ];
        announce(
            &mut t,
            &fake_name(port),
            &format!("127.0.0.1:{port}"),
            files,
            &TOKEN,
        )
        .await
        .expect("the fake peer is listed");
    });
    me.send("download huge.bin");
    me.expect("download huge.bin: huge.bin does not fit:", 10);
    no_leftovers(&net, "me", "huge.bin");
    me.send("download gone.bin");
    me.expect("download gone.bin: no peer left", 15);
    me.expect("nothing was fetched, so nothing is kept", 5);
    no_leftovers(&net, "me", "gone.bin");
    me.send("status");
    me.send("files");
    me.expect("0 files", 5);
    assert_eq!(me.count("partial download:"), 0);
}

/// A peer named `name` sharing `root/dir` (which other peers may share).
fn peer_in(net: &Net, dir: &str, name: &str) -> Proc {
    net.dir(dir);
    let (listen, tracker) = (format!("127.0.0.1:{}", free_port()), net.tracker_addr());
    let p = Proc::spawn(
        name,
        &[
            "share",
            "peer",
            dir,
            "--name",
            name,
            "--listen",
            &listen,
            "--tracker",
            &tracker,
            "--heartbeat",
            "500ms",
            "--plain",
        ],
        &net.root,
    );
    p.expect("registered with the tracker", 20);
    p
}

#[test]
fn two_downloads_of_one_name_into_one_directory_take_turns() {
    let net = Net::new("hostile-twice");
    let _t = net.tracker();
    let bytes = data(16 * 1024 * 1024, 51);
    net.put("p1", "big.bin", &bytes);
    let mut p1 = net.peer("p1", &["--upload-limit", "4MiB"]);
    let mut a = peer_in(&net, "both", "a");
    let mut b = peer_in(&net, "both", "b");
    a.send("download big.bin");
    a.expect("downloading from p1", 10);
    b.send("download big.bin");
    b.expect("download big.bin is already running (by process", 10);
    a.expect("downloaded big.bin", 40);
    assert!(
        net.read("both", "big.bin") == Some(bytes),
        "big.bin differs"
    );
    no_leftovers_but(&net, "both", "big.bin");
    b.send("download big.bin");
    b.expect("big.bin is here already, with the same content", 10);
    // A lock left by a process that is gone is taken over.
    net.put("p1", "small.bin", b"small\n");
    p1.send("updatelist");
    p1.expect("new: small.bin", 10);
    let mut gone = std::process::Command::new("true").spawn().expect("true");
    let dead = gone.id();
    gone.wait().expect("wait");
    let lock = net.root.join("both/.dsys-share/partial/small.bin.lock");
    std::fs::write(&lock, dead.to_string()).expect("a stale lock");
    b.send("download small.bin");
    b.expect("downloaded small.bin", 20);
    assert!(!lock.exists(), "the lock stays");
    assert_eq!(a.count("cannot move"), 0);
    assert_eq!(b.count("cannot move"), 0);
}

/// Nothing partial is left of `file` in `dir` (and the file is there).
fn no_leftovers_but(net: &Net, dir: &str, file: &str) {
    let partial = net.root.join(dir).join(".dsys-share/partial");
    for ext in ["part", "json", "lock"] {
        let p = partial.join(format!("{file}.{ext}"));
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn a_hard_link_to_a_file_outside_the_directory_is_shared_only_when_asked() {
    let net = Net::new("hostile-hardlink");
    let _t = net.tracker();
    let secret = net.root.join("secret.txt");
    std::fs::write(&secret, b"outside\n").expect("secret");
    std::fs::hard_link(&secret, net.dir("p1").join("secret.txt")).expect("hard link");
    let mut p1 = net.peer("p1", &[]);
    p1.expect("not shared: secret.txt: a hard link", 5);
    p1.expect("--follow-hardlinks shares such files", 5);
    let mut p2 = net.peer("p2", &[]);
    p2.send("find secret.txt");
    p2.expect("find secret.txt: no peer has it", 5);
    p1.kill9();
    let _p1 = net.peer("p1", &["--follow-hardlinks"]);
    p2.send("find secret.txt");
    p2.expect("find secret.txt: 1 peer has it", 5);
}

#[test]
fn many_large_announces_at_once_are_decoded_a_bounded_few_at_a_time() {
    use dsys::share::tracker::MAX_PIECES_PER_FILE;
    let net = Net::new("hostile-burst");
    let t = net.tracker_with("300s");
    let rt = runtime();
    let before = rss_kib(t.pid());
    // 48 connections, each with a 7 MiB announce, all at once (for a dead
    // address: each is refused once decoded and checked).
    let a = made_up("a.bin", 1024, MAX_PIECES_PER_FILE, 7);
    let b = made_up("b.bin", 1024, MAX_PIECES_PER_FILE * 3 / 4, 8);
    let pid = t.pid();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watch = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            for _ in 0..300 {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let refused = rt.block_on(async {
        let mut calls = Vec::new();
        for i in 0..48u16 {
            let mut c = tracker_client(&net).await;
            let files = vec![a.clone(), b.clone()];
            calls.push(tokio::spawn(async move {
                let port = 1 + i;
                announce(
                    &mut c,
                    &fake_name(port),
                    &format!("127.0.0.1:{port}"),
                    files,
                    &TOKEN,
                )
                .await
            }));
        }
        let mut refused = 0;
        for c in calls {
            if c.await.expect("the call").is_err() {
                refused += 1;
            }
        }
        refused
    });
    watch.join().expect("watcher");
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "the tracker's VmRSS: {} MiB before, {} MiB at the peak of 48 announces of 7 MiB at once",
        before / 1024,
        peak / 1024
    );
    assert_eq!(refused, 48, "dead addresses are never listed");
    // 48 × 7 MiB decoded at once would be over 340 MiB of messages alone.
    assert!(peak < 240 * 1024, "the tracker reached {} MiB", peak / 1024);
}
