//! `dsys sim mutex`: every node locks at random times (`auto`), holds,
//! unlocks, on the simulator with the faults the user asks for, judged by
//! the mutex's checker; and the random fault scenarios of the campaign.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{MutexCheck, MutexReport};
use super::{Cmd, Mutex, Timing};
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
--crash l2@5s --restart l2@8s       kill l2 at 5s (state lost), back at 8s\n  \
--partition 'l1,l2|l3,l4,l5@4s-9s'  cut l1,l2 from l3,l4,l5, 4s to 9s\n  \
--pause l2@4s-6s                    stop l2 (SIGSTOP) from 4s to 6s\n\
Latency: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms.\n\
Nodes are l1..lN. Every node locks after a random think time (mean --think),\n\
stays inside for --hold, unlocks, until --duration. While a node is down,\n\
nobody can enter (every node's reply is needed): that is Ricart-Agrawala.\n\
The same seed gives the same run, byte for byte.")]
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
    /// Extra virtual time after the workload and the last fault, for
    /// pending requests
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub settle: Duration,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
    /// Mean think time between a node's exit and its next request
    #[arg(long, default_value = "200ms", value_parser = crate::duration::parse)]
    pub think: Duration,
    /// How long a node stays in the critical section
    #[arg(long, default_value = "20ms", value_parser = crate::duration::parse)]
    pub hold: Duration,
    /// Keep permissions between entries (Roucairol-Carvalho)
    #[arg(long)]
    pub reuse_permissions: bool,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE (replaced)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

pub struct SimSummary {
    pub report: MutexReport,
    pub traffic: Traffic,
    pub virtual_time: Duration,
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimSummary, CliError> {
    let n = a.nodes as usize;
    let cluster = Cluster::loopback(n, 50051);
    let faults = a.faults.parse(&cluster)?;
    let net = a.net.model()?;
    let timing = Timing {
        hold: a.hold,
        ..Timing::default()
    };
    let reuse = a.reuse_permissions;
    let mut sim = Sim::new(cluster, net, a.seed, move |me, rng, now| {
        // A later life has a larger incarnation, as a start time would give.
        Mutex::new(
            me,
            n,
            reuse,
            now.as_micros() as u64 + 1,
            timing.clone(),
            rng,
        )
    });
    if let Some(path) = &a.events {
        sim.log_to(EventLog::replace(path).map_err(|source| CliError::File {
            file: path.clone(),
            source,
        })?);
    }
    faults.apply(&mut sim);
    let ids: Vec<NodeId> = sim.cluster().ids().collect();
    // Requests begin once every node has greeted the others.
    let begin = Duration::from_millis(100);
    for &id in &ids {
        sim.command_at(begin, id, Cmd::Auto(Some(a.think)));
        sim.command_at(a.duration, id, Cmd::Auto(None));
    }
    let end = a.duration.max(faults.last()) + a.settle;
    let mut check = MutexCheck::default();
    let (duration, think) = (a.duration, a.think);
    sim.run_until(end, |sim, h| {
        let now = sim.now();
        if let Some(r) = h.record(sim.cluster(), now) {
            check.record(&r);
        }
        // A restarted node has forgotten `auto`: a person would type it again.
        if let Happening::Restart(node) = h
            && now < duration
        {
            sim.command_at(now, node, Cmd::Auto(Some(think)));
            sim.command_at(duration, node, Cmd::Auto(None));
        }
    });
    sim.finish_log()
        .map_err(|e| CliError::Failed(format!("cannot write events: {e}")))?;
    let mut report = check.finish();
    let kind = |k: &str| sim.traffic.by_kind.get(k).copied().unwrap_or(0);
    report.messages = kind("request") + kind("reply");
    report.hellos = kind("hello");
    Ok(SimSummary {
        report,
        traffic: sim.traffic.clone(),
        virtual_time: sim.now(),
    })
}

impl Run for SimArgs {
    fn run(self) -> Outcome {
        let wall = std::time::Instant::now();
        let s = simulate(&self)?;
        println!(
            "simulated {} nodes for {:.1}s of virtual time in {:.2}s (seed {}{})",
            self.nodes,
            s.virtual_time.as_secs_f64(),
            wall.elapsed().as_secs_f64(),
            self.seed,
            if self.reuse_permissions {
                ", permissions reused"
            } else {
                ""
            }
        );
        println!("{}", s.traffic.summary());
        print!("{}", s.report.render());
        Ok(s.report.verdict().passed(true))
    }
}

/// A random faulty scenario: 2-6 nodes, a random network (latency, loss,
/// duplication), permission reuse or not, up to two crash/restarts,
/// sometimes a partition that heals and a pause, all over by 8 s.
pub fn scenario(seed: u64) -> Vec<String> {
    let mut r = Rng::seed_from_u64(seed);
    let nodes = r.random_range(2..=6usize);
    let mut a = campaign::Args::default();
    a.flag("--nodes", nodes)
        .flag("--seed", seed)
        .flag("--duration", "8s")
        .flag("--think", format!("{}ms", r.random_range(1..300)))
        .flag("--hold", format!("{}ms", r.random_range(0..30)))
        .random_latency(&mut r, 20)
        .flag("--loss", [0.0, 0.01, 0.05][r.random_range(0..3)])
        .flag("--duplicate", [0.0, 0.01][r.random_range(0..2)]);
    if r.random_bool(0.5) {
        a.switch("--reuse-permissions");
    }
    let crashes = r.random_range(0..=2);
    a.random_crashes(
        &mut r,
        nodes,
        crashes,
        (Duration::from_millis(500), Duration::from_secs(6)),
        Duration::from_secs(2),
    );
    if r.random_bool(0.3) {
        a.random_partition(
            &mut r,
            nodes,
            (Duration::from_millis(500), Duration::from_secs(6)),
            Duration::from_secs(2),
        );
    }
    if r.random_bool(0.2) {
        a.random_pause(
            &mut r,
            nodes,
            (Duration::from_millis(500), Duration::from_secs(6)),
            Duration::from_secs(2),
        );
    }
    a.0
}

/// A campaign's judgement: never two inside, entries in priority order,
/// every request granted once the faults were over, somebody entered.
pub fn judge(args: &[String]) -> Result<(), String> {
    let a = crate::registry::parse_args::<SimArgs>("sim", "mutex", args)?;
    let s = simulate(&a).map_err(|e| e.to_string())?;
    let r = &s.report;
    if let Some((x, y)) = r.violations.first() {
        return Err(format!("mutual exclusion violated: {x} and {y}"));
    }
    if let Some((x, y)) = r.out_of_order.first() {
        return Err(format!(
            "priority violated: {} ts={} should have entered before {} ts={}",
            x.node, x.ts, y.node, y.ts
        ));
    }
    if !r.pending.is_empty() {
        return Err(format!(
            "requests never granted after the faults stopped: {:?}",
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
