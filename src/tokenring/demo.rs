//! `dsys demo tokenring`: N real nodes on loopback gRPC in one process, the
//! `scenario` workload, the token holder killed midway and restarted, and
//! the checker's verdict at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::run::{Launch, Running, launch};
use super::scenario::Workload;
use super::{Cmd, Note, Timing};
use crate::check::tokenring::MutexCheck;
use crate::config::{Cluster, DEFAULT_MACHINES};
use crate::events::{SharedFile, wall_us};
use crate::node::{NodeId, Note as _};
use crate::sim::Happening;

pub struct Options {
    pub nodes: usize,
    pub duration: Duration,
    pub events: Option<PathBuf>,
}

/// The first `n` machines of the built-in config, or the same names on free
/// ports if those are taken (another demo, or nodes started by hand).
pub fn demo_cluster(n: usize) -> std::io::Result<Cluster> {
    let builtin = Cluster::parse(Path::new("<built-in machines.txt>"), DEFAULT_MACHINES)
        .map_err(std::io::Error::other)?;
    let free = builtin
        .ids()
        .take(n)
        .all(|id| TcpListener::bind(builtin.addr(id)).is_ok());
    let mut obj = serde_json::Map::new();
    for id in builtin.ids().take(n) {
        let addr = if free {
            builtin.addr(id).to_string()
        } else {
            let l = TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.to_string()
        };
        obj.insert(builtin.name(id).to_string(), addr.into());
    }
    if !free {
        println!("(ports 50051.. are busy: using free ports instead)");
    }
    Cluster::parse(
        Path::new("<demo machines>"),
        &serde_json::Value::Object(obj).to_string(),
    )
    .map_err(std::io::Error::other)
}

struct Node {
    running: Option<Running>,
    stop: watch::Sender<bool>,
}

/// Runs the demo; `Ok(true)` when the checker finds mutual exclusion intact
/// and somebody did enter the critical section.
pub async fn run(o: Options) -> Result<bool, Box<dyn std::error::Error>> {
    let cluster = Arc::new(demo_cluster(o.nodes)?);
    let events = match &o.events {
        Some(p) => Some(SharedFile::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let timing = Timing {
        hop_delay: Duration::from_millis(100),
        ..Timing::default()
    };
    let ids: Vec<NodeId> = cluster.ids().collect();
    let n = ids.len() as u32;
    let started = Instant::now();
    let check = Arc::new(Mutex::new(MutexCheck::default()));
    let (happen_tx, mut happenings) = mpsc::unbounded_channel::<(NodeId, Note)>();

    println!(
        "demo: {} token-ring nodes on {} ({}), ring {} -> {}; running {:.0}s",
        n,
        cluster.addr(ids[0]).ip(),
        cluster.source().display(),
        ids.iter()
            .map(|&i| cluster.name(i))
            .collect::<Vec<_>>()
            .join(" -> "),
        cluster.name(ids[0]),
        o.duration.as_secs_f64()
    );
    let start_node = |id: NodeId| {
        let cluster = cluster.clone();
        let timing = timing.clone();
        let events = events.clone();
        let tx = happen_tx.clone();
        let check = check.clone();
        async move {
            let (stop, stop_rx) = watch::channel(false);
            let sink_cluster = cluster.clone();
            let sink = Box::new(move |note: &Note| {
                let name = sink_cluster.name(id);
                let t = wall_us();
                if let Ok(mut c) = check.lock() {
                    super::report::feed(&mut c, name, t, note);
                }
                let line = match note {
                    Note::Token { .. } | Note::Status(_) | Note::LeaseRenewed { .. } => None,
                    // Nobody types in the demo: no "type unlock" hint.
                    Note::CsEnter { hop, .. } => {
                        Some(format!("entered the critical section (token hop {hop})"))
                    }
                    other => other.line(&sink_cluster),
                };
                if let Some(line) = line {
                    println!("[{:5.1}s] {name}: {line}", started.elapsed().as_secs_f64());
                }
                let _ = tx.send((id, note.clone()));
            });
            let running = launch(Launch {
                cluster: cluster.clone(),
                me: id,
                next: NodeId((id.0 + 1) % n),
                timing,
                events: events.as_ref().map(SharedFile::log),
                sink,
                shutdown: stop_rx,
            })
            .await?;
            Ok::<Node, crate::net::NetError>(Node {
                running: Some(running),
                stop,
            })
        }
    };

    let mut nodes = Vec::new();
    for &id in &ids {
        nodes.push(start_node(id).await?);
    }

    let stop_locks = o.duration.saturating_sub(Duration::from_secs(3));
    let mut workload = Workload::new(wall_us(), stop_locks, timing.lease);
    let mut plan: BinaryHeap<Reverse<(Duration, u64, u32, Cmd)>> = BinaryHeap::new();
    let mut seq = 0;
    let mut schedule = |plan: &mut BinaryHeap<_>, at: Duration, node: NodeId, cmd: Cmd| {
        seq += 1;
        plan.push(Reverse((at, seq, node.0, cmd)));
    };
    for (at, node, cmd) in workload.begin(&ids) {
        schedule(&mut plan, at, node, cmd);
    }
    let crash_at = o.duration.mul_f64(0.4);
    let restart_at = o.duration.mul_f64(0.5);
    let mut crashed: Option<NodeId> = None;
    let mut last_holder = ids[0];
    let end = started + o.duration;

    loop {
        let now = started.elapsed();
        let next_cmd = plan.peek().map(|Reverse((at, ..))| *at);
        let next_fault = if crashed.is_none() && now < crash_at {
            crash_at
        } else if crashed.is_some() {
            restart_at
        } else {
            o.duration
        };
        let wake = next_cmd
            .unwrap_or(o.duration)
            .min(next_fault)
            .min(o.duration);
        tokio::select! {
            h = happenings.recv() => {
                let Some((node, note)) = h else { break };
                if let Note::Token { .. } = note {
                    last_holder = node;
                }
                for (at, node, cmd) in workload.react(started.elapsed(), &Happening::Note(node, note)) {
                    schedule(&mut plan, at, node, cmd);
                }
            }
            _ = tokio::time::sleep_until(started + wake) => {
                let now = started.elapsed();
                if Instant::now() >= end {
                    break;
                }
                while let Some(Reverse((at, _, node, cmd))) = plan.peek().cloned() {
                    if at > now {
                        break;
                    }
                    plan.pop();
                    if let Some(r) = &nodes[node as usize].running {
                        let _ = r.commands.send(cmd);
                    }
                }
                if crashed.is_none() && now >= crash_at && now < restart_at {
                    let victim = last_holder;
                    let node = &mut nodes[victim.index()];
                    // A crash, not a stop: no goodbye, the token goes down with it.
                    if let Some(r) = node.running.take() {
                        r.task.abort();
                        let _ = r.task.await;
                    }
                    if let Ok(mut c) = check.lock() {
                        c.crash(cluster.name(victim), wall_us());
                    }
                    println!("[{:5.1}s] demo: killed {} (it had the token last), state lost", now.as_secs_f64(), cluster.name(victim));
                    for (at, node, cmd) in workload.react(now, &Happening::Crash(victim)) {
                        schedule(&mut plan, at, node, cmd);
                    }
                    crashed = Some(victim);
                } else if let Some(victim) = crashed.filter(|_| now >= restart_at) {
                    nodes[victim.index()] = start_node(victim).await?;
                    println!("[{:5.1}s] demo: restarted {}", now.as_secs_f64(), cluster.name(victim));
                    for (at, node, cmd) in workload.react(now, &Happening::Restart(victim)) {
                        schedule(&mut plan, at, node, cmd);
                    }
                    crashed = None;
                }
            }
        }
    }
    for node in &mut nodes {
        let _ = node.stop.send(true);
        if let Some(r) = node.running.take() {
            let _ = r.task.await;
        }
    }
    let report = Arc::try_unwrap(check)
        .map_err(|_| "checker still shared")?
        .into_inner()
        .map_err(|_| "checker lock poisoned")?
        .finish();
    println!("--- verdict ---");
    print!("{}", super::report::render(&report));
    if let Some(p) = &o.events {
        println!(
            "events: {} (check again with `dsys check tokenring {}`)",
            p.display(),
            p.display()
        );
    }
    let entered: u64 = report.entries.values().sum();
    Ok(report.safe() && entered > 0)
}
