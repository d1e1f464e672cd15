//! `dsys sim tokenring`: the workload of `scenario` on the simulator, with
//! the faults the user asks for, checked by `check::tokenring`.

use std::path::PathBuf;
use std::time::Duration;

use super::scenario::Workload;
use super::{Note, Timing, TokenRing};
use crate::check::tokenring::{MutexCheck, Report};
use crate::config::Cluster;
use crate::events::EventLog;
use crate::node::NodeId;
use crate::sim::{Happening, NetModel, Sim, Traffic};

/// A cut between two sides of the cluster for a while.
#[derive(Clone, Debug)]
pub struct Partition {
    pub side_a: Vec<NodeId>,
    pub side_b: Vec<NodeId>,
    pub from: Duration,
    pub to: Duration,
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub nodes: usize,
    pub seed: u64,
    /// How long the workload asks for locks.
    pub duration: Duration,
    /// Extra time after `duration` (and after the last fault) for every
    /// pending lock to be granted.
    pub settle: Duration,
    pub net: NetModel,
    pub timing: Timing,
    pub crashes: Vec<(NodeId, Duration)>,
    pub restarts: Vec<(NodeId, Duration)>,
    pub partitions: Vec<Partition>,
    pub events: Option<PathBuf>,
}

impl SimOptions {
    pub fn new(nodes: usize, seed: u64, duration: Duration) -> Self {
        SimOptions {
            nodes,
            seed,
            duration,
            settle: Duration::from_secs(10),
            net: NetModel::default(),
            timing: Timing {
                hop_delay: Duration::from_millis(5),
                ..Timing::default()
            },
            crashes: Vec::new(),
            restarts: Vec::new(),
            partitions: Vec::new(),
            events: None,
        }
    }

    fn last_fault(&self) -> Duration {
        let c = self.crashes.iter().chain(&self.restarts).map(|&(_, t)| t);
        let p = self.partitions.iter().map(|p| p.to);
        c.chain(p).max().unwrap_or_default()
    }
}

pub struct SimSummary {
    pub report: Report,
    pub traffic: Traffic,
    pub virtual_time: Duration,
    pub hops: u64,
}

/// The cluster a simulation of `n` nodes uses: `l1..ln`, ring in name order.
pub fn sim_cluster(n: usize) -> Cluster {
    Cluster::loopback(n, 50051)
}

pub fn run(opts: &SimOptions) -> std::io::Result<SimSummary> {
    let cluster = sim_cluster(opts.nodes);
    let n = opts.nodes as u32;
    let timing = opts.timing.clone();
    let mut sim = Sim::new(cluster, opts.net.clone(), opts.seed, move |me, rng, _| {
        TokenRing::new(me, NodeId((me.0 + 1) % n), n as usize, timing.clone(), rng)
    });
    if let Some(path) = &opts.events {
        sim.log_to(EventLog::create(path)?);
    }
    for &(node, t) in &opts.crashes {
        sim.crash_at(t, node);
    }
    for &(node, t) in &opts.restarts {
        sim.restart_at(t, node);
    }
    for p in &opts.partitions {
        sim.partition_at(p.from, &p.side_a, &p.side_b);
        sim.heal_at(p.to, &p.side_a, &p.side_b);
    }
    let mut workload = Workload::new(opts.seed, opts.duration, opts.timing.lease);
    let ids: Vec<NodeId> = sim.cluster().ids().collect();
    for (at, node, cmd) in workload.begin(&ids) {
        sim.command_at(at, node, cmd);
    }
    let end = opts.duration.max(opts.last_fault()) + opts.settle;
    let mut check = MutexCheck::default();
    let mut hops = 0;
    sim.run_until(end, |sim, h| {
        let now = sim.now();
        let t = now.as_micros() as u64;
        let name = |id: NodeId| sim.cluster().name(id).to_string();
        match &h {
            Happening::Note(node, note) => {
                if let Note::Token { .. } = note {
                    hops += 1;
                }
                super::report::feed(&mut check, &name(*node), t, note);
            }
            Happening::Crash(node) => check.crash(&name(*node), t),
            Happening::Restart(_) => {}
        }
        for (at, node, cmd) in workload.react(now, &h) {
            sim.command_at(at, node, cmd);
        }
    });
    sim.finish_log()?;
    Ok(SimSummary {
        report: check.finish(),
        traffic: sim.traffic.clone(),
        virtual_time: sim.now(),
        hops,
    })
}

/// Parses `A,B|C,D@FROM-TO` (cut A,B from C,D) or `A@FROM-TO` (cut A from
/// everyone else).
pub fn parse_partition(c: &Cluster, spec: &str) -> Result<Partition, String> {
    let (sides, times) = spec
        .rsplit_once('@')
        .ok_or("write SIDE|SIDE@FROM-TO, e.g. l1,l2|l3@4s-9s")?;
    let (from, to) = times
        .split_once('-')
        .ok_or("the time is FROM-TO, e.g. 4s-9s")?;
    let (from, to) = (crate::duration::parse(from)?, crate::duration::parse(to)?);
    if to <= from {
        return Err("the partition must heal after it starts".into());
    }
    let side = |s: &str| -> Result<Vec<NodeId>, String> {
        s.split(',')
            .map(|n| c.require(n.trim()).map_err(|e| e.to_string()))
            .collect()
    };
    let (side_a, side_b) = match sides.split_once('|') {
        Some((a, b)) => (side(a)?, side(b)?),
        None => {
            let a = side(sides)?;
            let b = c.ids().filter(|i| !a.contains(i)).collect();
            (a, b)
        }
    };
    if side_a.is_empty() || side_b.is_empty() {
        return Err("both sides need at least one node".into());
    }
    Ok(Partition {
        side_a,
        side_b,
        from,
        to,
    })
}
