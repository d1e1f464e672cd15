//! `dsys sim multicast`: every node chats at random (Poisson) times on the
//! simulator, with the faults asked for; the order checker judges the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};

use super::{Cmd, Multicast, Note};
use crate::check::multicast::{OrderCheck, Report};
use crate::config::Cluster;
use crate::events::EventLog;
use crate::node::{NodeId, Rng};
use crate::sim::{Happening, NetModel, Sim};
use crate::tokenring::simulate::Partition;

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub nodes: usize,
    pub seed: u64,
    /// Messages per second, per node.
    pub rate: f64,
    pub duration: Duration,
    /// After the workload and the last fault: time for everything to settle.
    pub settle: Duration,
    pub net: NetModel,
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
            rate: 20.0,
            duration,
            settle: Duration::from_secs(10),
            net: NetModel::default(),
            crashes: Vec::new(),
            restarts: Vec::new(),
            partitions: Vec::new(),
            events: None,
        }
    }
}

pub struct SimSummary {
    pub report: Report,
    /// Lives still running at the end that did not reach the common end.
    pub behind: Vec<String>,
    pub sent: u64,
    pub delivered: u64,
    /// Multicast-to-delivery times, over every delivery.
    pub latencies: Vec<Duration>,
    pub messages: u64,
    pub virtual_time: Duration,
    /// Each live node's status at the end (what its holdback queue waits for).
    pub status: Vec<String>,
}

pub fn run(o: &SimOptions) -> std::io::Result<SimSummary> {
    let cluster = Cluster::loopback(o.nodes, 50051);
    let members: Vec<NodeId> = cluster.ids().collect();
    let ms = members.clone();
    let mut sim = Sim::new(cluster, o.net.clone(), o.seed, move |me, _rng, now| {
        Multicast::new(me, ms.iter().copied(), now.as_micros() as u64 + 1)
    });
    if let Some(p) = &o.events {
        sim.log_to(EventLog::create(p)?);
    }
    for &(n, t) in &o.crashes {
        sim.crash_at(t, n);
    }
    for &(n, t) in &o.restarts {
        sim.restart_at(t, n);
    }
    for p in &o.partitions {
        sim.partition_at(p.from, &p.side_a, &p.side_b);
        sim.heal_at(p.to, &p.side_a, &p.side_b);
    }
    let mut rng = Rng::seed_from_u64(o.seed ^ 0x6d75_6c74);
    for &n in &members {
        let mut t = Duration::ZERO;
        let mut i = 0;
        loop {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            t += Duration::from_secs_f64(-u.ln() / o.rate.max(1e-9));
            if t >= o.duration {
                break;
            }
            i += 1;
            sim.command_at(t, n, Cmd::Send(format!("{}-{i}", sim.cluster().name(n))));
        }
    }
    let last_fault = o
        .crashes
        .iter()
        .chain(&o.restarts)
        .map(|&(_, t)| t)
        .chain(o.partitions.iter().map(|p| p.to))
        .max()
        .unwrap_or_default();
    let end = o.duration.max(last_fault) + o.settle;
    let mut check = OrderCheck::default();
    for &n in &members {
        check.new_life(sim.cluster().name(n));
    }
    let mut sent_at: BTreeMap<(NodeId, u64), Duration> = BTreeMap::new();
    let mut latencies = Vec::new();
    let (mut sent, mut delivered) = (0, 0);
    sim.run_until(end, |sim, h| {
        let now = sim.now();
        let name = |n: NodeId| sim.cluster().name(n).to_string();
        match h {
            Happening::Note(n, Note::Multicast { seq, .. }) => {
                sent += 1;
                sent_at.insert((n, seq), now);
                check.multicast(&name(n), seq);
            }
            Happening::Note(n, Note::Deliver { origin, seq, .. }) => {
                delivered += 1;
                if let Some(&t) = sent_at.get(&(origin, seq)) {
                    latencies.push(now - t);
                }
                check.deliver(&name(n), &name(origin), seq);
            }
            Happening::Crash(n) => check.crash(&name(n)),
            Happening::Restart(n) => {
                check.new_life(&name(n));
            }
            _ => {}
        }
    });
    for &n in &members {
        sim.command_at(end, n, Cmd::Status);
    }
    let mut status = Vec::new();
    sim.run_until(end, |sim, h| {
        if let Happening::Note(n, note @ Note::Status { .. }) = h
            && let Some(line) = crate::node::Note::line(&note, sim.cluster())
        {
            status.push(format!("{}: {line}", sim.cluster().name(n)));
        }
    });
    for &n in &members {
        if let Some(m) = sim.machine(n) {
            status.push(format!(
                "{}'s peers:\n{}",
                sim.cluster().name(n),
                m.describe_peers()
            ));
        }
    }
    sim.finish_log()?;
    let report = check.finish();
    // Every life still running must have reached the same last message.
    let lives = check.lives();
    let last = lives
        .iter()
        .filter(|l| !l.crashed)
        .filter_map(|l| l.delivered.last())
        .max_by_key(|id| {
            lives
                .iter()
                .filter(|l| l.delivered.last() == Some(id))
                .count()
        });
    let behind = lives
        .iter()
        .filter(|l| !l.crashed && !l.delivered.is_empty() && l.delivered.last() != last)
        .filter(|l| sim_is_up(&sim, &l.node))
        .map(|l| l.node.clone())
        .collect();
    latencies.sort_unstable();
    Ok(SimSummary {
        report,
        behind,
        sent,
        delivered,
        latencies,
        messages: sim.traffic.sent,
        virtual_time: sim.now(),
        status,
    })
}

fn sim_is_up(sim: &Sim<Multicast>, name: &str) -> bool {
    sim.cluster().id(name).is_some_and(|id| sim.is_up(id))
}
