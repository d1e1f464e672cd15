//! `dsys demo gossip`: N real nodes on loopback gRPC in one process, linked
//! in a printed topology, generating words quickly; one node is killed and
//! brought back midway; the checker's coverage verdict ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::IndexedRandom as _;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::topology::{Topology, build};
use super::{Cmd, Gossip, Note, Params, WordId, word_list};
use crate::driver::{self, Running};
use crate::events::{SharedFile, wall_us};
use crate::node::{NodeId, Rng};

pub struct Options {
    pub nodes: usize,
    pub duration: Duration,
    pub topology: Topology,
    pub events: Option<PathBuf>,
}

struct Node {
    running: Option<Running<Gossip>>,
    stop: watch::Sender<bool>,
}

pub async fn run(o: Options) -> Result<bool, Box<dyn std::error::Error>> {
    let cluster = Arc::new(crate::tokenring::demo::demo_cluster(o.nodes)?);
    let mut rng = Rng::from_os_rng();
    let graph = build(o.topology, o.nodes, &mut rng);
    let events_path = o.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dsys-demo-gossip-{}.jsonl", std::process::id()))
    });
    let file =
        SharedFile::create(&events_path).map_err(|e| format!("{}: {e}", events_path.display()))?;
    let mut demo_log = file.log();
    let params = Params {
        mean_interval: Duration::from_millis(1000),
        anti_entropy: Duration::from_secs(1),
        ..Params::default()
    };
    let started = Instant::now();
    let (tx, mut notes) = mpsc::unbounded_channel::<(NodeId, Note)>();

    println!(
        "demo: {} gossip nodes on loopback, {:?} topology, each making a word about every {:.1}s; {:.0}s",
        o.nodes,
        o.topology,
        params.mean_interval.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    for id in cluster.ids() {
        let ns: Vec<&str> = graph[id.index()].iter().map(|&n| cluster.name(n)).collect();
        println!(
            "  {} ({}) -- {}",
            cluster.name(id),
            cluster.addr(id),
            ns.join(", ")
        );
    }
    let start_node = |id: NodeId| {
        let cluster = cluster.clone();
        let file = file.clone();
        let tx = tx.clone();
        let params = params.clone();
        let neighbors: Vec<NodeId> = graph[id.index()].iter().copied().collect();
        async move {
            let (stop, stop_rx) = watch::channel(false);
            let sink = Box::new(move |note: &Note| {
                let _ = tx.send((id, note.clone()));
            });
            let machine = Gossip::new(
                id,
                neighbors,
                wall_us(),
                params,
                word_list(),
                Rng::from_os_rng(),
            );
            let running =
                driver::launch(machine, cluster, id, sink, Some(file.log()), stop_rx).await?;
            Ok::<Node, crate::net::NetError>(Node {
                running: Some(running),
                stop,
            })
        }
    };
    let mut nodes = Vec::new();
    for id in cluster.ids() {
        nodes.push(start_node(id).await?);
    }

    let kill_at = o.duration.mul_f64(0.35);
    let restart_at = o.duration.mul_f64(0.55);
    let quiet_at = o.duration.saturating_sub(Duration::from_secs(5));
    let victim = *cluster
        .ids()
        .collect::<Vec<_>>()
        .choose(&mut rng)
        .ok_or("no nodes")?;
    let mut phase = 0;
    let mut known: BTreeMap<NodeId, BTreeSet<WordId>> = BTreeMap::new();
    let mut all: BTreeSet<WordId> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_report = Duration::from_secs(2);
    let t = |started: Instant| started.elapsed().as_secs_f64();
    loop {
        tokio::select! {
            Some((id, note)) = notes.recv() => match note {
                Note::Learned { id: w, text, from } => {
                    all.insert(w);
                    known.entry(id).or_default().insert(w);
                    if from.is_none() {
                        println!("[{:5.1}s] {} made {text:?}", t(started), cluster.name(id));
                    }
                }
                other => {
                    if let Some(line) = crate::node::Note::line(&other, &cluster) {
                        println!("[{:5.1}s] {}: {line}", t(started), cluster.name(id));
                    }
                }
            },
            _ = tick.tick() => {
                let now = started.elapsed();
                if now >= o.duration {
                    break;
                }
                if phase == 0 && now >= kill_at {
                    let n = &mut nodes[victim.index()];
                    // A crash, not a stop.
                    if let Some(r) = n.running.take() {
                        r.task.abort();
                        let _ = r.task.await;
                    }
                    known.remove(&victim);
                    let _ = demo_log.write(wall_us(), cluster.name(victim), "crash", &Default::default());
                    println!("[{:5.1}s] demo: killed {} (its words and links are gone with it)", t(started), cluster.name(victim));
                    phase = 1;
                } else if phase == 1 && now >= restart_at {
                    let _ = demo_log.write(wall_us(), cluster.name(victim), "restart", &Default::default());
                    let _ = demo_log.flush();
                    nodes[victim.index()] = start_node(victim).await?;
                    println!("[{:5.1}s] demo: restarted {} with no state; anti-entropy will catch it up", t(started), cluster.name(victim));
                    phase = 2;
                } else if phase == 2 && now >= quiet_at {
                    for n in &nodes {
                        if let Some(r) = &n.running {
                            let _ = r.commands.send(Cmd::Generate(false));
                        }
                    }
                    println!("[{:5.1}s] demo: generators off; letting the last words spread", t(started));
                    phase = 3;
                }
                if now >= next_report {
                    next_report += Duration::from_secs(2);
                    let live: Vec<NodeId> = cluster.ids().filter(|i| nodes[i.index()].running.is_some()).collect();
                    let everywhere = all.iter().filter(|w| live.iter().all(|n| known.get(n).is_some_and(|k| k.contains(w)))).count();
                    println!(
                        "[{:5.1}s] {} words so far; {} of them known at all {} live nodes",
                        t(started), all.len(), everywhere, live.len()
                    );
                }
            }
        }
    }
    for n in &mut nodes {
        let _ = n.stop.send(true);
        if let Some(r) = n.running.take() {
            let _ = r.task.await;
        }
    }
    let _ = demo_log.flush();
    drop(demo_log);
    let records = crate::check::read_files(std::slice::from_ref(&events_path))?;
    let coverage = crate::check::gossip::check(&records);
    println!("--- verdict ---");
    print!("{}", crate::check::gossip::render(&coverage));
    println!(
        "events: {} (check again with `dsys check gossip {}`)",
        events_path.display(),
        events_path.display()
    );
    Ok(coverage.lost.is_empty() && coverage.words > 0)
}
