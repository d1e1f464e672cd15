//! `dsys demo mutex`: N real Ricart–Agrawala nodes on loopback gRPC in one
//! process, each locking at random times, one killed midway and restarted,
//! and the checker's verdict on everyone's events at the end.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;

use super::check::MutexCheck;
use super::note::Note;
use super::{Cmd, Mutex, Timing};
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
    /// Number of nodes (3 to 6)
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=6))]
    pub nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "12s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Keep permissions between entries (Roucairol-Carvalho)
    #[arg(long)]
    pub reuse_permissions: bool,
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
    let path = o.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dsys-demo-mutex-{}.jsonl", std::process::id()))
    });
    let file = SharedFile::create(&path).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    let timing = Timing {
        hold: Duration::from_millis(300),
        ..Timing::default()
    };
    let think = Duration::from_millis(1500);
    let ids: Vec<NodeId> = cluster.ids().collect();
    let n = ids.len();
    let stage = Stage::new();
    println!(
        "demo: {n} Ricart-Agrawala nodes on {}; each locks at random times (mean {:.1}s), \
         stays inside {:.1}s; running {:.0}s{}",
        cluster.addr(ids[0]).ip(),
        think.as_secs_f64(),
        timing.hold.as_secs_f64(),
        o.duration.as_secs_f64(),
        if o.reuse_permissions {
            ", permissions reused"
        } else {
            ""
        }
    );
    let mut nodes: Nodes<Mutex> = Nodes::new(cluster.clone());
    let start = async |nodes: &mut Nodes<Mutex>, id: NodeId| {
        let c = cluster.clone();
        let present = move |note: &Note, _: &mut dyn Write| {
            // The steps of each request would flood the screen: entries,
            // exits and faults only.
            let line = match note {
                Note::CsEnter { ts, messages } => Some(format!(
                    "entered the critical section (request ts={ts}, {messages} messages)"
                )),
                Note::CsExit { .. }
                | Note::WaitingForDown { .. }
                | Note::PeerRestarted { .. }
                | Note::PeerDown { .. }
                | Note::PeerUp { .. } => note.line(&c),
                _ => None,
            };
            if let Some(line) = line {
                stage.line(c.name(id), &line);
            }
        };
        let machine = Mutex::new(
            id,
            n,
            o.reuse_permissions,
            wall_us(),
            timing.clone(),
            Rng::from_os_rng(),
        );
        let output = Output::start(cluster.clone(), id, Some(file.log()), present);
        nodes.start(id, machine, output).await
    };
    for &id in &ids {
        start(&mut nodes, id).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for &id in &ids {
        nodes.send(id, Cmd::Auto(Some(think)));
    }
    let victim = ids[n - 1];
    let crash_at = o.duration.mul_f64(0.4);
    let restart_at = o.duration.mul_f64(0.55);
    let stop_at = o.duration.saturating_sub(Duration::from_secs(2));
    let mut demo_log = file.log();
    tokio::time::sleep(crash_at.saturating_sub(stage.elapsed())).await;
    nodes.kill(victim).await;
    let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Crash);
    let _ = demo_log.flush();
    stage.headline(&format!(
        "killed {} (kill -9): nobody can enter until it is back, since every node's reply is needed",
        cluster.name(victim)
    ));
    tokio::time::sleep(restart_at.saturating_sub(stage.elapsed())).await;
    start(&mut nodes, victim).await?;
    nodes.send(victim, Cmd::Auto(Some(think)));
    stage.headline(&format!(
        "restarted {} with no state; the others ask it again and go on",
        cluster.name(victim)
    ));
    tokio::time::sleep(stop_at.saturating_sub(stage.elapsed())).await;
    for &id in &ids {
        nodes.send(id, Cmd::Auto(None));
    }
    tokio::time::sleep(o.duration.saturating_sub(stage.elapsed())).await;
    nodes.stop_all().await;
    drop(demo_log);
    let records =
        read_files(std::slice::from_ref(&path)).map_err(|e| CliError::Failed(e.to_string()))?;
    let report = check::<MutexCheck>(&records);
    stage.flush();
    println!("--- verdict ---");
    print!("{}", report.render());
    println!(
        "events: {} (check again with `dsys check mutex {}`)",
        path.display(),
        path.display()
    );
    Ok(report.verdict().passed(false))
}
