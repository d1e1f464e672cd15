//! `dsys demo tokenring`: N real nodes on loopback gRPC in one process, the
//! `scenario` workload, the token holder killed midway and restarted, and
//! the checker's verdict on everyone's events at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;
use tokio::sync::mpsc;

use super::check::TokenRingCheck;
use super::scenario::Workload;
use super::{Cmd, Note, Timing, TokenRing};
use crate::check::{Report, check};
use crate::cli::{CliError, Outcome, block_on};
use crate::config::NodeId;
use crate::demo::{Nodes, Stage, local_cluster};
use crate::events::{Common, SharedFile, read_files, wall_us};
use crate::node::{Note as _, Rng};
use crate::output::Output;
use crate::registry::Run;
use crate::scenario::Workload as _;
use crate::sim::Happening;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes (3 to 6)
    #[arg(short = 'n', long = "nodes", default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=6))]
    pub nodes: u32,
    /// How long the demo runs (nodes need about 3s before anyone can enter)
    #[arg(long, default_value = "15s", value_parser = crate::duration::parse)]
    pub duration: Duration,
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
        std::env::temp_dir().join(format!("dsys-demo-tokenring-{}.jsonl", std::process::id()))
    });
    let file = SharedFile::create(&path).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    let timing = Timing {
        hop_delay: Duration::from_millis(100),
        ..Timing::default()
    };
    let ids: Vec<NodeId> = cluster.ids().collect();
    let n = ids.len() as u32;
    let stage = Stage::new();
    let (notes_tx, mut notes) = mpsc::channel::<(NodeId, Note)>(4096);
    println!(
        "demo: {} token-ring nodes on {}, ring {} -> {}; running {:.0}s",
        n,
        cluster.addr(ids[0]).ip(),
        ids.iter()
            .map(|&i| cluster.name(i))
            .collect::<Vec<_>>()
            .join(" -> "),
        cluster.name(ids[0]),
        o.duration.as_secs_f64()
    );
    let mut nodes: Nodes<TokenRing> = Nodes::new(cluster.clone());
    let start = async |nodes: &mut Nodes<TokenRing>, id: NodeId| {
        let c = cluster.clone();
        let tx = notes_tx.clone();
        let present = move |note: &Note, _: &mut dyn Write| {
            let line = match note {
                Note::Token { .. }
                | Note::Status(_)
                | Note::LeaseRenewed { .. }
                | Note::LockRequested { .. } => None,
                // Nobody types in the demo: no "type unlock" hint.
                Note::CsEnter { hop, .. } => {
                    Some(format!("entered the critical section (token hop {hop})"))
                }
                other => other.line(&c),
            };
            if let Some(line) = line {
                stage.line(c.name(id), &line);
            }
            let _ = tx.blocking_send((id, note.clone()));
        };
        let machine = TokenRing::new(
            id,
            NodeId((id.0 + 1) % n),
            n as usize,
            timing.clone(),
            Rng::from_os_rng(),
        );
        let output = Output::start(cluster.clone(), id, Some(file.log()), present);
        nodes.start(id, machine, output).await
    };
    for &id in &ids {
        start(&mut nodes, id).await?;
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
    let mut done_crash = false;
    let mut last_holder = ids[0];
    let mut demo_log = file.log();
    loop {
        let now = stage.elapsed();
        if now >= o.duration {
            break;
        }
        let next_cmd = plan.peek().map(|Reverse((at, ..))| *at);
        let next_fault = match (done_crash, crashed) {
            (false, _) => crash_at,
            (true, Some(_)) => restart_at,
            _ => o.duration,
        };
        let wake = next_cmd
            .unwrap_or(o.duration)
            .min(next_fault)
            .min(o.duration);
        tokio::select! {
            h = notes.recv() => {
                let Some((node, note)) = h else { break };
                if let Note::Token { .. } = note {
                    last_holder = node;
                }
                for (at, node, cmd) in workload.react(stage.elapsed(), &Happening::Note(node, note)) {
                    schedule(&mut plan, at, node, cmd);
                }
            }
            _ = tokio::time::sleep(wake.saturating_sub(now)) => {
                let now = stage.elapsed();
                while let Some(Reverse((at, _, node, cmd))) = plan.peek().cloned() {
                    if at > now {
                        break;
                    }
                    plan.pop();
                    nodes.send(NodeId(node), cmd);
                }
                if !done_crash && now >= crash_at {
                    let victim = last_holder;
                    // A crash, not a stop: no goodbye, the token goes down with it.
                    nodes.kill(victim).await;
                    let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Crash);
                    let _ = demo_log.flush();
                    stage.headline(&format!("killed {} (it had the token last); its state is lost", cluster.name(victim)));
                    for (at, node, cmd) in workload.react(now, &Happening::Crash(victim)) {
                        schedule(&mut plan, at, node, cmd);
                    }
                    crashed = Some(victim);
                    done_crash = true;
                } else if let Some(victim) = crashed.filter(|_| now >= restart_at) {
                    start(&mut nodes, victim).await?;
                    stage.headline(&format!("restarted {} with no state; the ring takes it back", cluster.name(victim)));
                    for (at, node, cmd) in workload.react(now, &Happening::Restart(victim)) {
                        schedule(&mut plan, at, node, cmd);
                    }
                    crashed = None;
                }
            }
        }
    }
    nodes.stop_all().await;
    drop(demo_log);
    let records =
        read_files(std::slice::from_ref(&path)).map_err(|e| CliError::Failed(e.to_string()))?;
    let report = check::<TokenRingCheck>(&records);
    stage.flush();
    println!("--- verdict ---");
    print!("{}", report.render());
    println!(
        "events: {} (check again with `dsys check tokenring {}`)",
        path.display(),
        path.display()
    );
    Ok(report.verdict().passed(false))
}
