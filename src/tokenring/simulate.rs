//! `dsys sim tokenring`: the workload of `scenario` on the simulator, with
//! the faults the user asks for, judged by the token ring's checker; and the
//! random fault scenarios of the test campaigns.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{TokenRingCheck, TokenRingReport};
use super::scenario::Workload;
use super::{Note, Timing, TokenRing};
use crate::check::{Checker, Report};
use crate::cli::{CliError, Outcome};
use crate::config::{Cluster, NodeId};
use crate::events::EventLog;
use crate::node::Rng;
use crate::registry::Run;
use crate::sim::campaign;
use crate::sim::{FaultArgs, Happening, NetArgs, Sim, Traffic};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Faults:\n  \
--crash l2@5s --restart l2@8s            kill l2 at 5s (state lost), restart it at 8s\n  \
--partition 'l1,l2|l3,l4,l5@4s-9s'       cut l1,l2 from l3,l4,l5 from 4s, heal at 9s\n  \
--partition 'l1@4s-9s'                   isolate l1 from everyone else\n\
Latency: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms (exponential with that mean, after a floor).\n\
Nodes are l1..lN; the ring is l1 -> l2 -> ... -> lN -> l1. The same seed gives the same run, byte for byte.")]
pub struct SimArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub nodes: u32,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long nodes keep asking for the critical section (virtual time)
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Extra virtual time after the workload and the last fault, for pending locks
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub settle: Duration,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
    /// Token hop delay of every node
    #[arg(long, default_value = "5ms", value_parser = crate::duration::parse)]
    pub hop_delay: Duration,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

pub struct SimSummary {
    pub report: TokenRingReport,
    pub traffic: Traffic,
    pub virtual_time: Duration,
    pub hops: u64,
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimSummary, CliError> {
    let n = a.nodes;
    let cluster = Cluster::loopback(n as usize, 50051);
    let faults = a.faults.parse(&cluster)?;
    let net = a.net.model()?;
    let timing = Timing {
        hop_delay: a.hop_delay,
        ..Timing::default()
    };
    let lease = timing.lease;
    let mut sim = Sim::new(cluster, net, a.seed, move |me, rng, _| {
        TokenRing::new(me, NodeId((me.0 + 1) % n), n as usize, timing.clone(), rng)
    });
    if let Some(path) = &a.events {
        sim.log_to(EventLog::create(path).map_err(|source| CliError::File {
            file: path.clone(),
            source,
        })?);
    }
    faults.apply(&mut sim);
    let mut workload = Workload::new(a.seed, a.duration, lease);
    let ids: Vec<NodeId> = sim.cluster().ids().collect();
    for (at, node, cmd) in workload.begin(&ids) {
        sim.command_at(at, node, cmd);
    }
    let end = a.duration.max(faults.last()) + a.settle;
    let mut check = TokenRingCheck::default();
    let mut hops = 0;
    sim.run_until(end, |sim, h| {
        let now = sim.now();
        if let Happening::Note(_, Note::Token { .. }) = &h {
            hops += 1;
        }
        if let Some(r) = h.record(sim.cluster(), now) {
            check.record(&r);
        }
        for (at, node, cmd) in workload.react(now, &h) {
            sim.command_at(at, node, cmd);
        }
    });
    sim.finish_log()
        .map_err(|e| CliError::Failed(format!("cannot write events: {e}")))?;
    Ok(SimSummary {
        report: check.finish(),
        traffic: sim.traffic.clone(),
        virtual_time: sim.now(),
        hops,
    })
}

impl Run for SimArgs {
    fn run(self) -> Outcome {
        let wall = std::time::Instant::now();
        let s = simulate(&self)?;
        println!(
            "simulated {} nodes for {:.1}s of virtual time in {:.2}s (seed {})",
            self.nodes,
            s.virtual_time.as_secs_f64(),
            wall.elapsed().as_secs_f64(),
            self.seed
        );
        println!("token hops: {}", s.hops);
        println!("{}", s.traffic.summary());
        print!("{}", s.report.render());
        Ok(s.report.verdict().passed(true))
    }
}

/// A random faulty scenario for seed `seed`: 3-6 nodes, a random network
/// (latency, loss, duplication), one or two crash/restart pairs and
/// sometimes a partition of a minority, all over by 12 s.
pub fn scenario(seed: u64) -> Vec<String> {
    let mut r = Rng::seed_from_u64(seed);
    let nodes = r.random_range(3..=6usize);
    let mut a = campaign::Args::default();
    a.flag("--nodes", nodes)
        .flag("--seed", seed)
        .flag("--duration", "12s")
        .random_latency(&mut r, 20)
        .flag("--loss", [0.0, 0.01, 0.05][r.random_range(0..3)])
        .flag("--duplicate", [0.0, 0.01][r.random_range(0..2)])
        .flag("--hop-delay", format!("{}ms", r.random_range(0..20)));
    let crashes = r.random_range(1..=2);
    a.random_crashes(
        &mut r,
        nodes,
        crashes,
        (Duration::from_secs(1), Duration::from_secs(8)),
        Duration::from_secs(3),
    );
    if r.random_bool(0.3) {
        let minority = (nodes - 1) / 2;
        let from = r.random_range(1_000..8_000u64);
        let to = from + r.random_range(500..3_000u64);
        let side_a: Vec<String> = (1..=minority).map(|i| format!("l{i}")).collect();
        let side_b: Vec<String> = (minority + 1..=nodes).map(|i| format!("l{i}")).collect();
        a.flag(
            "--partition",
            format!("{}|{}@{from}ms-{to}ms", side_a.join(","), side_b.join(",")),
        );
    }
    a.0
}

/// A campaign's judgement of one run: mutual exclusion held, every lock was
/// granted once the faults were over, and somebody entered.
pub fn judge(args: &[String]) -> Result<(), String> {
    let a = crate::registry::parse_args::<SimArgs>("sim", "tokenring", args)?;
    let s = simulate(&a).map_err(|e| e.to_string())?;
    let r = &s.report;
    if let Some((x, y)) = r.violations.first() {
        return Err(format!("mutual exclusion violated: {x} and {y}"));
    }
    if !r.pending.is_empty() {
        return Err(format!(
            "locks never granted after the faults stopped: {:?}",
            r.pending
        ));
    }
    if r.total_entries() == 0 {
        return Err("nobody ever entered the critical section".into());
    }
    if s.traffic.too_large > 0 {
        return Err(format!(
            "{} messages over the size limit",
            s.traffic.too_large
        ));
    }
    Ok(())
}
