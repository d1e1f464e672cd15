//! `dsys bench chat`: both protocols against one server (a `dsys chat
//! server` child process on loopback), in one run:
//!
//! * bytes on the wire per operation, request and response (and a pushed
//!   message), counted by a TCP proxy between a client and the server, in
//!   steady state (after one warm-up of each call, so gRPC's header
//!   compression has its tables);
//! * operations per second and p50/p99 latency with 1, 16 and 64 clients,
//!   for online sends (every recipient logged in) and for queued sends
//!   (every recipient offline: each send waits for its commit) followed by
//!   their deliveries (deliver + ack, 1000 at a time);
//! * lines of code of each protocol's implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::client::{Conn, Protocol};
use super::wire::{Request, Response};
use crate::bench::Proc;
use crate::cli::{CliError, Outcome};
use crate::stats::{ms, percentile};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// How long each throughput phase runs
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub duration: Duration,
    /// Requests each client keeps in flight (pipelining)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub window: u32,
    /// Client counts to measure
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,64",
        value_name = "N,N,..."
    )]
    pub clients: Vec<usize>,
}

impl crate::tool::Run for BenchArgs {
    fn run(self) -> Outcome {
        crate::cli::block_on_threads(bench(self))?.map_err(CliError::Failed)?;
        Ok(crate::cli::Ended::Passed)
    }
}

fn free_port() -> Result<u16, String> {
    crate::net::ports::free_loopback_port().map_err(|e| e.to_string())
}

fn me() -> Arc<std::sync::Mutex<String>> {
    Arc::new(std::sync::Mutex::new(String::new()))
}

async fn connect(p: Protocol, addr: &str) -> Result<Conn, String> {
    Conn::connect(p, addr, me(), None)
        .await
        .map(|(c, pushes)| {
            // Pushes are drained (and dropped) as a real client would read them.
            let mut pushes = pushes;
            tokio::spawn(async move { while pushes.recv().await.is_some() {} });
            c
        })
        .map_err(|e| e.to_string())
}

async fn expect(c: &Conn, req: Request) -> Result<Response, String> {
    match c.call(req).await.map_err(|e| e.to_string())? {
        Response::Error { message, .. } => Err(message),
        r => Ok(r),
    }
}

async fn login(p: Protocol, addr: &str, name: &str) -> Result<Conn, String> {
    let c = connect(p, addr).await?;
    expect(
        &c,
        Request::Login {
            name: name.into(),
            password: "pw".into(),
        },
    )
    .await?;
    Ok(c)
}

/// A TCP proxy that counts the bytes each way.
struct Counter {
    addr: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

async fn counting_proxy(target: String) -> Result<Counter, String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
    let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (u, d) = (up.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let (u, d) = (u.clone(), d.clone());
            tokio::spawn(async move {
                let mut b = vec![0u8; 65536];
                while let Ok(n) = cr.read(&mut b).await {
                    if n == 0 || sw.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                    u.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
            tokio::spawn(async move {
                let mut b = vec![0u8; 65536];
                while let Ok(n) = sr.read(&mut b).await {
                    if n == 0 || cw.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                    d.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    Ok(Counter { addr, up, down })
}

impl Counter {
    fn read(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }
}

/// (operation, request bytes, response bytes) per protocol, and the push.
async fn bytes_per_op(p: Protocol, addr: &str) -> Result<Vec<(&'static str, u64, u64)>, String> {
    let a_proxy = counting_proxy(addr.to_string()).await?;
    let b_proxy = counting_proxy(addr.to_string()).await?;
    let tag = format!("{p:?}").to_lowercase();
    let (an, bn) = (format!("bytes-a-{tag}"), format!("bytes-b-{tag}"));
    let a = connect(p, &a_proxy.addr).await?;
    let b = connect(p, &b_proxy.addr).await?;
    let ops: Vec<(&'static str, Request)> = vec![
        (
            "create",
            Request::Create {
                name: format!("{an}-x"),
                password: "pw".into(),
            },
        ),
        (
            "login",
            Request::Login {
                name: an.clone(),
                password: "pw".into(),
            },
        ),
        (
            "list (2 accounts)",
            Request::List {
                pattern: format!("bytes-?-{tag}"),
                offset: 0,
                limit: 100,
            },
        ),
        (
            "send, online (10-byte text)",
            Request::Send {
                to: bn.clone(),
                text: "0123456789".into(),
            },
        ),
        (
            "send, queued (10-byte text)",
            Request::Send {
                to: format!("{an}-x"),
                text: "0123456789".into(),
            },
        ),
        ("logout", Request::Logout),
    ];
    for n in [&an, &bn] {
        expect(
            &a,
            Request::Create {
                name: n.clone(),
                password: "pw".into(),
            },
        )
        .await?;
    }
    expect(
        &b,
        Request::Login {
            name: bn.clone(),
            password: "pw".into(),
        },
    )
    .await?;
    // One of each first: connection setup and header tables are not an
    // operation's cost.
    let settle = || tokio::time::sleep(Duration::from_millis(60));
    let mut out = Vec::new();
    for round in 0..2 {
        for (name, req) in &ops {
            // The warm-up created the account: measure with a fresh name.
            let req = match (round, req) {
                (1, Request::Create { name, password }) => Request::Create {
                    name: format!("{name}2"),
                    password: password.clone(),
                },
                _ => req.clone(),
            };
            settle().await;
            let (u0, d0) = a_proxy.read();
            let (_, bd0) = b_proxy.read();
            let r = a.call(req).await.map_err(|e| e.to_string())?;
            if let Response::Error { message, .. } = r {
                return Err(format!("{name}: {message}"));
            }
            settle().await;
            let (u1, d1) = a_proxy.read();
            let (_, bd1) = b_proxy.read();
            if round == 1 {
                out.push((*name, u1 - u0, d1 - d0));
                if name.starts_with("send, online") {
                    out.push(("pushed message (to the recipient)", 0, bd1 - bd0));
                }
            }
        }
        // a is logged out (the last op): b queues one for it to deliver.
        expect(
            &b,
            Request::Send {
                to: an.clone(),
                text: "0123456789".into(),
            },
        )
        .await?;
        expect(
            &a,
            Request::Login {
                name: an.clone(),
                password: "pw".into(),
            },
        )
        .await?;
        settle().await;
        let (u0, d0) = a_proxy.read();
        let r = expect(&a, Request::Deliver { max: 1 }).await?;
        settle().await;
        let (u1, d1) = a_proxy.read();
        let ids = match r {
            Response::Messages { messages, .. } => messages.iter().map(|m| m.id).collect(),
            _ => Vec::new(),
        };
        let (u2, d2) = a_proxy.read();
        expect(&a, Request::Ack { ids }).await?;
        settle().await;
        let (u3, d3) = a_proxy.read();
        expect(&a, Request::Logout).await?;
        if round == 1 {
            out.push(("deliver (1 message)", u1 - u0, d1 - d0));
            out.push(("ack (1 id)", u3 - u2, d3 - d2));
        }
    }
    Ok(out)
}

/// Runs `clients` loops of `window` requests in flight for `duration`;
/// returns (ops/s, sorted latencies).
async fn load(
    conns: Vec<Conn>,
    window: u32,
    duration: Duration,
    req: impl Fn(usize, u64) -> Request + Send + Sync + 'static,
) -> (f64, Vec<Duration>) {
    let req = Arc::new(req);
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Vec<Arc<Conn>> = conns.into_iter().map(Arc::new).collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in conns.iter().enumerate() {
        for w in 0..window {
            let (c, req, stop) = (c.clone(), req.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut k = w as u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match c.call(req(i, k)).await {
                        Ok(Response::Error { .. }) | Err(_) => break,
                        Ok(_) => lat.push(t.elapsed()),
                    }
                    k += window as u64;
                }
                lat
            }));
        }
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    (all.len() as f64 / secs, all)
}

/// Code lines (not blank, not only a comment) of the files given.
fn loc(files: &[&str]) -> usize {
    files
        .iter()
        .flat_map(|f| f.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

async fn bench(a: BenchArgs) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("dsys-bench-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (wp, gp) = (free_port()?, free_port()?);
    let (wire, grpc) = (format!("127.0.0.1:{wp}"), format!("127.0.0.1:{gp}"));
    let db = dir.join("chat.db").display().to_string();
    let server = Proc::spawn(&[
        "chat".into(),
        "server".into(),
        "--listen".into(),
        wire.clone(),
        "--grpc-listen".into(),
        grpc.clone(),
        "--db".into(),
        db,
    ])?;
    server.wait("chat server:", Duration::from_secs(20))?;
    let addr = |p: Protocol| {
        if p == Protocol::Wire {
            wire.clone()
        } else {
            grpc.clone()
        }
    };
    let max_clients = a.clients.iter().copied().max().unwrap_or(1);
    println!(
        "dsys bench chat: one server (a child process), both protocols, loopback; {max_clients} accounts online and {max_clients} offline per protocol (creating them hashes {} passwords)...",
        4 * max_clients
    );
    // Accounts: on<i> (logged in during the online phase), off<i> (never).
    let setup = connect(Protocol::Wire, &wire).await?;
    let setup = Arc::new(setup);
    let mut creates = Vec::new();
    for p in ["w", "g"] {
        for kind in ["on", "off"] {
            for i in 0..max_clients {
                let s = setup.clone();
                let name = format!("{p}{kind}{i}");
                creates.push(tokio::spawn(async move {
                    expect(
                        &s,
                        Request::Create {
                            name,
                            password: "pw".into(),
                        },
                    )
                    .await
                }));
            }
        }
    }
    for c in creates {
        c.await.map_err(|e| e.to_string())??;
    }
    println!("\nBytes on the wire per operation (request + response), counted by a proxy:\n");
    println!("| operation | wire: request | wire: response | gRPC: request | gRPC: response |");
    println!("|---|---:|---:|---:|---:|");
    let wb = bytes_per_op(Protocol::Wire, &wire).await?;
    let gb = bytes_per_op(Protocol::Grpc, &grpc).await?;
    for ((name, wu, wd), (_, gu, gd)) in wb.iter().zip(&gb) {
        println!("| {name} | {wu} | {wd} | {gu} | {gd} |");
    }
    println!(
        "\nThroughput and latency ({} per phase, {} requests in flight per client):\n",
        humantime::format_duration(a.duration),
        a.window
    );
    println!(
        "| protocol | clients | online sends/s | p50 | p99 | queued sends/s | p50 | p99 | deliveries/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in [Protocol::Wire, Protocol::Grpc] {
        let tag = if p == Protocol::Wire { "w" } else { "g" };
        for &n in &a.clients {
            let n = n.max(1);
            // Online: client i sends to client i+1, every one logged in.
            let mut conns = Vec::new();
            for i in 0..n {
                conns.push(login(p, &addr(p), &format!("{tag}on{i}")).await?);
            }
            let t = tag.to_string();
            let (on_rate, on_lat) = load(conns, a.window, a.duration, move |i, _| Request::Send {
                to: format!("{t}on{}", (i + 1) % n),
                text: "0123456789".into(),
            })
            .await;
            // Queued: to accounts nobody is logged in as; each send waits
            // for its group's commit.
            let mut conns = Vec::new();
            for i in 0..n {
                conns.push(login(p, &addr(p), &format!("{tag}on{i}")).await?);
            }
            let t = tag.to_string();
            let (q_rate, q_lat) = load(conns, a.window, a.duration, move |i, _| Request::Send {
                to: format!("{t}off{i}"),
                text: "0123456789".into(),
            })
            .await;
            // Deliveries: each offline account takes its queue, 1000 at a
            // time (logged in first: logins are not deliveries).
            let mut readers = Vec::new();
            for i in 0..n {
                readers.push(login(p, &addr(p), &format!("{tag}off{i}")).await?);
            }
            let started = Instant::now();
            let mut tasks = Vec::new();
            for conn in readers {
                tasks.push(tokio::spawn(async move {
                    let mut got = 0u64;
                    loop {
                        let Ok(Response::Messages { messages, .. }) =
                            expect(&conn, Request::Deliver { max: 1000 }).await
                        else {
                            break;
                        };
                        if messages.is_empty() {
                            break;
                        }
                        got += messages.len() as u64;
                        let ids = messages.iter().map(|m| m.id).collect();
                        if expect(&conn, Request::Ack { ids }).await.is_err() {
                            break;
                        }
                    }
                    got
                }));
            }
            let mut delivered = 0;
            for t in tasks {
                delivered += t.await.unwrap_or(0);
            }
            let d_rate = delivered as f64 / started.elapsed().as_secs_f64();
            println!(
                "| {} | {n} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0} |",
                if p == Protocol::Wire { "wire" } else { "gRPC" },
                on_rate,
                ms(percentile(&on_lat, 0.5)),
                ms(percentile(&on_lat, 0.99)),
                q_rate,
                ms(percentile(&q_lat, 0.5)),
                ms(percentile(&q_lat, 0.99)),
                d_rate
            );
        }
    }
    let wire_loc = loc(&[
        include_str!("wire.rs"),
        include_str!("wire_server.rs"),
        include_str!("wire_client.rs"),
    ]);
    let grpc_loc = loc(&[
        include_str!("grpc_server.rs"),
        include_str!("grpc_client.rs"),
        include_str!("../../proto/chat.proto"),
    ]);
    println!(
        "\nLines of code (not blank, not comments; tests included where the file has them):\n"
    );
    println!("| protocol | files | lines |\n|---|---|---:|");
    println!("| wire | src/chat/wire.rs, wire_server.rs, wire_client.rs | {wire_loc} |");
    println!("| gRPC | src/chat/grpc_server.rs, grpc_client.rs, proto/chat.proto | {grpc_loc} |");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
