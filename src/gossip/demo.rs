//! `dsys demo gossip`: N real gossip nodes on loopback in one process,
//! linked in a printed topology, generating words quickly; one node is
//! killed and brought back midway; the checker's coverage verdict on
//! everyone's events ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;
use rand::seq::IndexedRandom as _;
use tokio::sync::mpsc;

use super::check::GossipCheck;
use super::topology::{Topology, build};
use super::{Cmd, Gossip, Note, Params, WordId};
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
    /// Number of nodes (3 to 6 with the built-in ports)
    #[arg(short = 'n', long = "nodes", default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=6))]
    pub nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Who links with whom: line (each to the next), ring, grid (4
    /// neighbors), star (l1 the hub), tree4 (up to 4 children), random (a
    /// ring plus two random chords per node), full (everyone)
    #[arg(long, value_enum, default_value_t = Topology::Random)]
    pub topology: Topology,
    /// Write events as JSON lines to FILE (default: a temporary file)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

impl Run for DemoArgs {
    fn run(self) -> Outcome {
        block_on(run(self))?
    }
}

async fn run(o: DemoArgs) -> Outcome {
    let cluster =
        Arc::new(local_cluster(o.nodes as usize).map_err(|e| CliError::Failed(e.to_string()))?);
    let mut rng = Rng::from_os_rng();
    let graph = build(o.topology, o.nodes as usize, &mut rng);
    let path = o.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dsys-demo-gossip-{}.jsonl", std::process::id()))
    });
    let file = SharedFile::create(&path).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    let mut demo_log = file.log();
    let params = Params {
        mean_interval: Duration::from_millis(1000),
        anti_entropy: Duration::from_secs(1),
        ..Params::default()
    };
    let stage = Stage::new();
    let (tx, mut notes) = mpsc::channel::<(NodeId, Note)>(4096);
    println!(
        "demo: {} gossip nodes on loopback, {} topology, each making a word about every {:.1}s; {:.0}s",
        o.nodes,
        clap::ValueEnum::to_possible_value(&o.topology)
            .map_or_else(|| format!("{:?}", o.topology), |v| v.get_name().to_string()),
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
    let mut nodes: Nodes<Gossip> = Nodes::new(cluster.clone());
    let start = async |nodes: &mut Nodes<Gossip>, id: NodeId| {
        let tx = tx.clone();
        let present = move |note: &Note, _: &mut dyn Write| {
            let _ = tx.blocking_send((id, note.clone()));
        };
        let neighbors: Vec<NodeId> = graph[id.index()].iter().copied().collect();
        let machine = Gossip::new(
            id,
            neighbors,
            wall_us(),
            params.clone(),
            crate::words::all(),
            Rng::from_os_rng(),
        );
        nodes
            .start(
                id,
                machine,
                Output::start(cluster.clone(), id, Some(file.log()), present),
            )
            .await
    };
    for id in cluster.ids() {
        start(&mut nodes, id).await?;
    }

    let kill_at = o.duration.mul_f64(0.35);
    let restart_at = o.duration.mul_f64(0.55);
    let quiet_at = o.duration.saturating_sub(Duration::from_secs(5));
    let victim = *cluster
        .ids()
        .collect::<Vec<_>>()
        .choose(&mut rng)
        .ok_or(CliError::Failed("no nodes".into()))?;
    let mut phase = 0;
    let mut known: BTreeMap<NodeId, BTreeSet<WordId>> = BTreeMap::new();
    let mut all: BTreeSet<WordId> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_report = Duration::from_secs(2);
    loop {
        tokio::select! {
            Some((id, note)) = notes.recv() => match note {
                Note::Learned { id: w, text, from } => {
                    all.insert(w);
                    known.entry(id).or_default().insert(w);
                    if from.is_none() {
                        stage.line(cluster.name(id), &format!("made {text:?}"));
                    }
                }
                other => {
                    if let Some(line) = other.line(&cluster) {
                        stage.line(cluster.name(id), &line);
                    }
                }
            },
            _ = tick.tick() => {
                let now = stage.elapsed();
                if now >= o.duration {
                    break;
                }
                if phase == 0 && now >= kill_at {
                    nodes.kill(victim).await;
                    known.remove(&victim);
                    let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Crash);
                    let _ = demo_log.flush();
                    stage.headline(&format!("killed {} (its words and links are gone with it)", cluster.name(victim)));
                    phase = 1;
                } else if phase == 1 && now >= restart_at {
                    let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Restart);
                    let _ = demo_log.flush();
                    start(&mut nodes, victim).await?;
                    stage.headline(&format!("restarted {} with no state; anti-entropy will catch it up", cluster.name(victim)));
                    phase = 2;
                } else if phase == 2 && now >= quiet_at {
                    for id in cluster.ids() {
                        nodes.send(id, Cmd::Generate(false));
                    }
                    stage.headline("generators off; letting the last words spread");
                    phase = 3;
                }
                if now >= next_report {
                    next_report += Duration::from_secs(2);
                    let live: Vec<NodeId> = cluster.ids().filter(|&i| nodes.is_up(i)).collect();
                    let everywhere = all
                        .iter()
                        .filter(|w| live.iter().all(|n| known.get(n).is_some_and(|k| k.contains(w))))
                        .count();
                    stage.line(
                        "demo",
                        &format!("{} words so far; {} of them known at all {} live nodes", all.len(), everywhere, live.len()),
                    );
                }
            }
        }
    }
    nodes.stop_all().await;
    drop(demo_log);
    let records =
        read_files(std::slice::from_ref(&path)).map_err(|e| CliError::Failed(e.to_string()))?;
    let coverage = check::<GossipCheck>(&records);
    stage.flush();
    println!("--- verdict ---");
    print!("{}", coverage.render());
    println!(
        "events: {} (check again with `dsys check gossip {}`)",
        path.display(),
        path.display()
    );
    Ok(coverage.verdict().passed(false))
}
