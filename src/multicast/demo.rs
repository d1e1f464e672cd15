//! `dsys demo multicast`: N real nodes on loopback gRPC in one process, each
//! sending random words at random (Poisson) times; one node's deliveries are
//! printed as they happen; the last node is killed and restarted midway; it
//! ends by itself with the order checker's verdict over every node's
//! deliveries.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};
use tokio::sync::mpsc;

use super::check::OrderCheck;
use super::{Cmd, Multicast, Note};
use crate::check::{Report, check};
use crate::cli::{CliError, Outcome, block_on};
use crate::config::NodeId;
use crate::demo::{Nodes, Stage, local_cluster};
use crate::events::{Common, SharedFile, read_files, wall_us};
use crate::node::{Note as _, Rng};
use crate::output::Output;
use crate::registry::Run;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes (2 to 6)
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=6))]
    pub nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "15s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Words per second, per node (above 0, at most 10000)
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Write events as JSON lines to FILE (default: a temporary file)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

impl Run for DemoArgs {
    fn run(self) -> Outcome {
        if !(self.rate > 0.0 && self.rate <= 10_000.0) {
            return Err(CliError::usage(format!(
                "--rate {}: words per second per node, above 0 and at most 10000",
                self.rate
            )));
        }
        block_on(run(self))?
    }
}

async fn run(o: DemoArgs) -> Outcome {
    let cluster =
        Arc::new(local_cluster(o.nodes as usize).map_err(|e| CliError::Failed(e.to_string()))?);
    let path = o.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dsys-demo-multicast-{}.jsonl", std::process::id()))
    });
    let file = SharedFile::create(&path).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    let stage = Stage::new();
    let watched = NodeId(0);
    let victim = NodeId(o.nodes - 1);
    let (tx, mut notes) = mpsc::channel::<(NodeId, Note)>(4096);
    println!(
        "demo: {} multicast nodes on loopback, each sending about {} random words/s for {:.0}s; showing {}'s deliveries.\n\
         Each word is labelled with its sender and the sender's own count: the total order interleaves the senders,\n\
         so counts of different senders mix, while each sender's own counts stay in order (FIFO).",
        o.nodes,
        o.rate,
        o.duration.as_secs_f64(),
        cluster.name(watched)
    );
    let mut nodes: Nodes<Multicast> = Nodes::new(cluster.clone());
    let start = async |nodes: &mut Nodes<Multicast>, id: NodeId| {
        let tx = tx.clone();
        let present = move |n: &Note, _: &mut dyn Write| {
            let _ = tx.blocking_send((id, n.clone()));
        };
        let m = Multicast::new(id, cluster.ids(), wall_us());
        nodes
            .start(
                id,
                m,
                Output::start(cluster.clone(), id, Some(file.log()), present),
            )
            .await
    };
    for id in cluster.ids() {
        start(&mut nodes, id).await?;
    }
    let mut rng = Rng::from_os_rng();
    let gap = |rng: &mut Rng| {
        Duration::from_secs_f64(-rng.random_range(f64::EPSILON..1.0f64).ln() / o.rate)
    };
    let mut next: Vec<Duration> = (0..o.nodes).map(|_| gap(&mut rng)).collect();
    let mut counts = vec![0u64; o.nodes as usize];
    let quiet = o.duration.saturating_sub(Duration::from_secs(3));
    let (kill_at, restart_at) = (o.duration.mul_f64(0.4), o.duration.mul_f64(0.6));
    let mut phase = 0;
    let mut demo_log = file.log();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            Some((id, n)) = notes.recv() => {
                match &n {
                    Note::Deliver { .. } if id == watched => {
                        if let Some(line) = n.line(&cluster) {
                            stage.line(cluster.name(id), &line);
                        }
                    }
                    Note::Joined { .. } | Note::PeerDown { .. } if id == watched => {
                        if let Some(line) = n.line(&cluster) {
                            stage.line(cluster.name(id), &line);
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = stage.elapsed();
                if now >= o.duration {
                    break;
                }
                if phase == 0 && now >= kill_at {
                    nodes.kill(victim).await;
                    let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Crash);
                    let _ = demo_log.flush();
                    stage.headline(&format!(
                        "killed {}: messages now wait for it (nothing is delivered without every member's ack)",
                        cluster.name(victim)
                    ));
                    phase = 1;
                } else if phase == 1 && now >= restart_at {
                    start(&mut nodes, victim).await?;
                    stage.headline(&format!(
                        "restarted {} with no state: it rejoins, and everyone delivers what waited, in the same order",
                        cluster.name(victim)
                    ));
                    phase = 2;
                }
                for (i, at) in next.iter_mut().enumerate() {
                    while *at <= now && now < quiet {
                        let id = NodeId(i as u32);
                        if nodes.is_up(id) {
                            counts[i] += 1;
                            let w = crate::words::pick(&mut rng);
                            nodes.send(id, Cmd::Send(format!("{w} ({} #{})", cluster.name(id), counts[i])));
                        }
                        *at += gap(&mut rng);
                    }
                }
            }
        }
    }
    nodes.stop_all().await;
    drop(demo_log);
    let records =
        read_files(std::slice::from_ref(&path)).map_err(|e| CliError::Failed(e.to_string()))?;
    let report = check::<OrderCheck>(&records);
    stage.flush();
    println!("--- verdict (all {} nodes) ---", o.nodes);
    print!("{}", report.render());
    println!(
        "events: {} (check again with `dsys check multicast {}`)",
        path.display(),
        path.display()
    );
    Ok(report.verdict().passed(false))
}
