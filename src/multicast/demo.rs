//! `dsys demo multicast`: N real nodes on loopback gRPC in one process, each
//! sending random words at random (Poisson) times; one node's deliveries are
//! printed as they happen; it ends by itself with the order checker's
//! verdict over every node's deliveries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Cmd, Multicast, Note};
use crate::driver;
use crate::events::{SharedFile, wall_us};
use crate::node::{NodeId, Note as _, Rng};

pub struct Options {
    pub nodes: usize,
    pub duration: Duration,
    /// Messages per second, per node.
    pub rate: f64,
    pub events: Option<PathBuf>,
}

pub async fn run(o: Options) -> Result<bool, Box<dyn std::error::Error>> {
    let cluster = Arc::new(crate::tokenring::demo::demo_cluster(o.nodes)?);
    let path = o.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dsys-demo-multicast-{}.jsonl", std::process::id()))
    });
    let file = SharedFile::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let started = Instant::now();
    let watched = NodeId(0);
    let (tx, mut notes) = mpsc::unbounded_channel::<(NodeId, Note)>();
    println!(
        "demo: {} multicast nodes on loopback, each sending about {} random words/s for {:.0}s; showing {}'s deliveries",
        o.nodes,
        o.rate,
        o.duration.as_secs_f64(),
        cluster.name(watched)
    );
    let mut stops = Vec::new();
    let mut nodes = Vec::new();
    for id in cluster.ids() {
        let (stop, stop_rx) = watch::channel(false);
        let tx = tx.clone();
        let sink = Box::new(move |n: &Note| {
            let _ = tx.send((id, n.clone()));
        });
        let m = Multicast::new(id, cluster.ids(), wall_us());
        nodes.push(driver::launch(m, cluster.clone(), id, sink, Some(file.log()), stop_rx).await?);
        stops.push(stop);
    }
    let words = crate::gossip::word_list();
    let mut rng = Rng::from_os_rng();
    let mut next: Vec<Duration> = (0..o.nodes)
        .map(|_| Duration::from_secs_f64(-rng.random_range(f64::EPSILON..1.0f64).ln() / o.rate))
        .collect();
    let quiet = o.duration.saturating_sub(Duration::from_secs(3));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sent = 0;
    loop {
        tokio::select! {
            Some((id, n)) = notes.recv() => {
                if id == watched
                    && let Note::Deliver { .. } = n
                    && let Some(line) = n.line(&cluster)
                {
                    println!("[{:5.1}s] {line}", started.elapsed().as_secs_f64());
                }
            }
            _ = tick.tick() => {
                let now = started.elapsed();
                if now >= o.duration {
                    break;
                }
                for (i, at) in next.iter_mut().enumerate() {
                    while *at <= now && now < quiet {
                        let w = words[rng.random_range(0..words.len())];
                        let _ = nodes[i].commands.send(Cmd::Send(format!("{w} #{sent}")));
                        sent += 1;
                        *at += Duration::from_secs_f64(-rng.random_range(f64::EPSILON..1.0f64).ln() / o.rate);
                    }
                }
            }
        }
    }
    for s in &stops {
        let _ = s.send(true);
    }
    for n in nodes {
        let _ = n.task.await;
    }
    let records = crate::check::read_files(std::slice::from_ref(&path))?;
    let (report, _) = crate::check::multicast::check(&records);
    println!("--- verdict (all {} nodes) ---", o.nodes);
    print!("{}", crate::check::multicast::render(&report));
    println!(
        "events: {} (check again with `dsys check multicast {}`)",
        path.display(),
        path.display()
    );
    Ok(report.ok() && report.deliveries > 0)
}
