//! `dsys sim gossip`: Maelstrom's broadcast workload on the simulator.
//!
//! Every node generates words (exponential inter-arrival times, `rate` words
//! per second over the whole cluster) for `duration`; then generators stop,
//! partitions heal, and the run goes on until every word is at every live
//! node or `grace` more virtual time passes. With the partition nemesis the
//! cluster is split into random halves every other 10 s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::SliceRandom as _;

use super::topology::{Topology, build};
use super::{Cmd, Gossip, Note, Params, WordId, word_list};
use crate::config::Cluster;
use crate::events::EventLog;
use crate::node::{NodeId, Rng};
use crate::sim::{Happening, NetModel, Sim};
use crate::tokenring::simulate::Partition;

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub nodes: usize,
    pub topology: Topology,
    pub seed: u64,
    /// Words per second, over the whole cluster.
    pub rate: f64,
    pub duration: Duration,
    /// After `duration`: how long to wait for the last words to spread.
    pub grace: Duration,
    pub net: NetModel,
    pub params: Params,
    pub partition_nemesis: bool,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<(NodeId, Duration)>,
    pub restarts: Vec<(NodeId, Duration)>,
    pub events: Option<PathBuf>,
}

impl SimOptions {
    pub fn new(nodes: usize, topology: Topology, seed: u64) -> SimOptions {
        SimOptions {
            nodes,
            topology,
            seed,
            rate: 100.0,
            duration: Duration::from_secs(20),
            grace: Duration::from_secs(10),
            net: NetModel::default(),
            params: Params::default(),
            partition_nemesis: false,
            partitions: Vec::new(),
            crashes: Vec::new(),
            restarts: Vec::new(),
            events: None,
        }
    }
}

#[derive(Debug)]
pub struct SimSummary {
    pub words: usize,
    pub messages: u64,
    /// Spread latency of each word that reached every live node.
    pub latencies: Vec<Duration>,
    /// Words some live node knows and some live node does not.
    pub lost: Vec<WordId>,
    /// Words no live node knows (every node that had them crashed).
    pub died_with_node: usize,
    pub virtual_time: Duration,
}

impl SimSummary {
    pub fn msgs_per_word(&self) -> f64 {
        self.messages as f64 / self.words.max(1) as f64
    }
}

/// The partition schedule of the nemesis: random halves for 10 s, healed
/// for 10 s, and so on, healed for good at `end`.
fn nemesis(n: usize, end: Duration, rng: &mut Rng) -> Vec<Partition> {
    let mut out = Vec::new();
    let mut t = Duration::from_secs(10);
    while t < end {
        let mut ids: Vec<NodeId> = (0..n as u32).map(NodeId).collect();
        ids.shuffle(rng);
        let b = ids.split_off(n / 2);
        out.push(Partition {
            side_a: ids,
            side_b: b,
            from: t,
            to: (t + Duration::from_secs(10)).min(end),
        });
        t += Duration::from_secs(20);
    }
    out
}

pub fn run(o: &SimOptions) -> std::io::Result<SimSummary> {
    let cluster = Cluster::loopback(o.nodes, 50051);
    let mut topo_rng = Rng::seed_from_u64(o.seed ^ 0x70b0_1091);
    let graph = build(o.topology, o.nodes, &mut topo_rng);
    let mut params = o.params.clone();
    params.mean_interval = Duration::from_secs_f64(o.nodes as f64 / o.rate.max(1e-9));
    let list = word_list();
    let mut sim = Sim::new(cluster, o.net.clone(), o.seed, move |me, rng, now| {
        Gossip::new(
            me,
            graph[me.index()].iter().copied(),
            now.as_micros() as u64 + 1,
            params.clone(),
            list,
            rng,
        )
    });
    if let Some(p) = &o.events {
        sim.log_to(EventLog::create(p)?);
    }
    let mut partitions = o.partitions.clone();
    if o.partition_nemesis {
        partitions.extend(nemesis(o.nodes, o.duration, &mut topo_rng));
    }
    for p in &partitions {
        sim.partition_at(p.from, &p.side_a, &p.side_b);
        sim.heal_at(p.to.min(o.duration), &p.side_a, &p.side_b);
    }
    for &(n, t) in &o.crashes {
        sim.crash_at(t, n);
    }
    for &(n, t) in &o.restarts {
        sim.restart_at(t, n);
    }
    for id in 0..o.nodes as u32 {
        sim.command_at(o.duration, NodeId(id), Cmd::Generate(false));
    }

    let mut t = Tracker {
        born: BTreeMap::new(),
        learned: vec![BTreeMap::new(); o.nodes],
        life_start: vec![Duration::ZERO; o.nodes],
    };
    let last_fault = o
        .crashes
        .iter()
        .chain(&o.restarts)
        .map(|&(_, t)| t)
        .max()
        .unwrap_or_default();
    sim.run_until(o.duration.max(last_fault), |sim, h| t.observe(sim.now(), h));
    let deadline = sim.now() + o.grace;
    let live = |sim: &Sim<Gossip>| -> Vec<NodeId> {
        sim.cluster().ids().filter(|&i| sim.is_up(i)).collect()
    };
    let complete = |sim: &Sim<Gossip>, born: &BTreeMap<WordId, Duration>| {
        let live = live(sim);
        born.keys().all(|&w| {
            let knowers = live
                .iter()
                .filter(|&&n| sim.machine(n).is_some_and(|m| m.knows(w)))
                .count();
            knowers == 0 || knowers == live.len()
        })
    };
    while sim.now() < deadline && !complete(&sim, &t.born) {
        let step = (sim.now() + Duration::from_millis(50)).min(deadline);
        sim.run_until(step, |sim, h| t.observe(sim.now(), h));
    }
    sim.finish_log()?;

    let live = live(&sim);
    let mut latencies = Vec::new();
    let mut lost = Vec::new();
    let mut died = 0;
    for (&w, &t0) in &t.born {
        let times: Vec<Duration> = live
            .iter()
            .filter_map(|n| t.learned[n.index()].get(&w).copied())
            .collect();
        if times.is_empty() {
            died += 1;
        } else if times.len() < live.len() {
            lost.push(w);
        } else if let Some(&last) = times.iter().max() {
            latencies.push(last.saturating_sub(t0));
        }
    }
    latencies.sort_unstable();
    Ok(SimSummary {
        words: t.born.len(),
        messages: sim.traffic.sent,
        latencies,
        lost,
        died_with_node: died,
        virtual_time: sim.now(),
    })
}

/// When each word was made, and when each node (in its current life) learned it.
struct Tracker {
    born: BTreeMap<WordId, Duration>,
    learned: Vec<BTreeMap<WordId, Duration>>,
    life_start: Vec<Duration>,
}

impl Tracker {
    fn observe(&mut self, now: Duration, h: Happening<Note>) {
        match h {
            Happening::Note(n, Note::Learned { id, from, .. }) => {
                if from.is_none() {
                    self.born.entry(id).or_insert(now);
                }
                self.learned[n.index()].insert(id, now);
            }
            Happening::Crash(n) => self.learned[n.index()].clear(),
            Happening::Restart(n) => self.life_start[n.index()] = now,
            _ => {}
        }
    }
}
