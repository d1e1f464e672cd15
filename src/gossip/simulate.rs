//! `dsys sim gossip`: Maelstrom's broadcast workload on the simulator, and
//! the campaigns' random scenarios.
//!
//! Every node generates words (exponential inter-arrival times, `rate` words
//! per second over the whole cluster) for `duration`; then generators stop,
//! partitions heal, and the run goes on until every word is at every live
//! node or `grace` more virtual time passes. With the partition nemesis the
//! cluster is split into random halves every other 10 s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng};

use super::check::latency_line;
use super::topology::{Topology, build};
use super::tuning::Tuning;
use super::{Cmd, Gossip, Note, WordId};
use crate::cli::{CliError, Outcome};
use crate::config::{Cluster, NodeId};
use crate::events::EventLog;
use crate::node::Rng;
use crate::registry::Run;
use crate::sim::campaign;
use crate::sim::{FaultArgs, Happening, NetArgs, Partition, Sim, Traffic};

#[derive(Args, Debug, Clone)]
#[command(after_help = "The Gossip Glomers challenge 3d/3e setting:\n  \
dsys sim gossip --nodes 25 --latency 100ms --rate 100 --duration 20s\n  \
(add --partition-nemesis for its partitions)\n\n\
Reports inter-node messages per word (Maelstrom's msgs-per-op is half of it, since half its \
operations are reads) and spread latency: from a word's birth until the last live node learned \
it. Faults are written as for `dsys sim tokenring` (see its --help).")]
pub struct SimArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub nodes: u32,
    /// Who links with whom: line (each to the next), ring, grid (4
    /// neighbors), star (l1 the hub), tree4 (up to 4 children), random (a
    /// ring plus two random chords per node), full (everyone)
    #[arg(long, value_enum, default_value_t = Topology::Star)]
    pub topology: Topology,
    /// Words per second over the whole cluster
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// How long nodes generate words (virtual time)
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// How long to wait after that for the last words to spread
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub grace: Duration,
    #[command(flatten)]
    pub net: NetArgs,
    /// Split the cluster into random halves every other 10 s (healed at --duration)
    #[arg(long)]
    pub partition_nemesis: bool,
    #[command(flatten)]
    pub faults: FaultArgs,
    #[command(flatten)]
    pub tuning: Tuning,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE (replaced)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// `dsys sim gossip` takes 100 ms latency by default (the Glomers setting).
pub fn tweak(cmd: clap::Command) -> clap::Command {
    NetArgs::with_default_latency(cmd, "100ms")
}

#[derive(Debug)]
pub struct SimSummary {
    pub words: usize,
    pub messages: u64,
    pub traffic: Traffic,
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

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mpw = self.msgs_per_word();
        out.push_str(&format!("words: {}\n", self.words));
        out.push_str(&format!(
            "inter-node messages: {} = {:.2} per word (Maelstrom msgs-per-op: {:.2})\n",
            self.messages,
            mpw,
            mpw / 2.0
        ));
        out.push_str(&format!("{}\n", latency_line(&self.latencies)));
        if self.traffic.too_large > 0 {
            out.push_str(&format!(
                "messages REFUSED as over the size limit: {}\n",
                self.traffic.too_large
            ));
        }
        if self.died_with_node > 0 {
            out.push_str(&format!(
                "words that died with their node (it crashed before telling anyone): {}\n",
                self.died_with_node
            ));
        }
        if self.lost.is_empty() {
            out.push_str("lost words: 0 (every word reached every live node)\n");
        } else {
            out.push_str(&format!(
                "LOST words: {} (known to some live nodes but not all)\n",
                self.lost.len()
            ));
        }
        out
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

/// Runs the simulation `o` describes.
pub fn simulate(o: &SimArgs) -> Result<SimSummary, CliError> {
    if !(o.rate > 0.0 && o.rate.is_finite()) {
        return Err(CliError::usage(format!(
            "--rate {}: words per second must be above 0",
            o.rate
        )));
    }
    let words = o.rate * o.duration.as_secs_f64();
    if words > 1_000_000.0 {
        return Err(CliError::usage(format!(
            "--rate {} for {:?} is about {words:.0} words; a run may make at most 1,000,000",
            o.rate, o.duration
        )));
    }
    let n = o.nodes as usize;
    let cluster = Cluster::loopback(n, 50051);
    let mut faults = o.faults.parse(&cluster)?;
    let net = o.net.model()?;
    let mut params = o.tuning.params()?;
    let mut topo_rng = Rng::seed_from_u64(o.seed ^ 0x70b0_1091);
    let graph = build(o.topology, n, &mut topo_rng);
    params.mean_interval = Duration::from_secs_f64(n as f64 / o.rate);
    let list = crate::words::all();
    let mut sim = Sim::new(cluster, net, o.seed, move |me, rng, now| {
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
        sim.log_to(EventLog::replace(p).map_err(|source| CliError::File {
            file: p.clone(),
            source,
        })?);
    }
    if o.partition_nemesis {
        faults
            .partitions
            .extend(nemesis(n, o.duration, &mut topo_rng));
    }
    for p in &mut faults.partitions {
        p.to = p.to.min(o.duration.max(p.from + Duration::from_millis(1)));
    }
    faults.apply(&mut sim);
    for id in 0..n as u32 {
        sim.command_at(o.duration, NodeId(id), Cmd::Generate(false));
    }
    let mut t = Tracker {
        born: BTreeMap::new(),
        learned: vec![BTreeMap::new(); n],
    };
    sim.run_until(o.duration.max(faults.last()), |sim, h| {
        t.observe(sim.now(), h)
    });
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
    sim.finish_log()
        .map_err(|e| CliError::Failed(format!("cannot write events: {e}")))?;

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
        traffic: sim.traffic.clone(),
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
            _ => {}
        }
    }
}

impl Run for SimArgs {
    fn run(self) -> Outcome {
        let wall = std::time::Instant::now();
        let s = simulate(&self)?;
        println!(
            "simulated {} node(s) ({} topology) for {:.1}s of virtual time in {:.2}s (seed {})",
            self.nodes,
            clap::ValueEnum::to_possible_value(&self.topology)
                .map_or_else(String::new, |v| v.get_name().to_string()),
            s.virtual_time.as_secs_f64(),
            wall.elapsed().as_secs_f64(),
            self.seed
        );
        print!("{}", s.render());
        Ok(s.lost.is_empty() && s.traffic.too_large == 0)
    }
}

/// A random faulty scenario: 2-10 nodes, a random topology, fanout and k,
/// a random network with loss (up to 10%) and duplication, and sometimes a
/// crash/restart, a partition that heals and a pause of one
/// node. Anti-entropy every 500 ms, so
/// the 10 s of grace is 20 rounds.
pub fn scenario(seed: u64) -> Vec<String> {
    let mut r = Rng::seed_from_u64(seed);
    let topologies = ["line", "ring", "grid", "star", "tree4", "random", "full"];
    let nodes = r.random_range(2..=10usize);
    let mut a = campaign::Args::default();
    a.flag("--nodes", nodes)
        .flag(
            "--topology",
            topologies[r.random_range(0..topologies.len())],
        )
        .flag("--seed", seed)
        .flag("--rate", 20)
        .flag("--duration", "5s")
        .flag("--grace", "10s")
        .flag("--interval", "50ms")
        .flag("--anti-entropy-interval", "500ms")
        .flag("--fanout", ["all", "1", "2"][r.random_range(0..3)])
        .flag("--k", r.random_range(1..=3))
        .random_latency(&mut r, 50)
        .flag("--loss", [0.0, 0.02, 0.1][r.random_range(0..3)])
        .flag("--duplicate", [0.0, 0.02][r.random_range(0..2)]);
    if r.random_bool(0.5) {
        a.random_crashes(
            &mut r,
            nodes,
            1,
            (Duration::from_millis(500), Duration::from_secs(4)),
            Duration::from_secs(2),
        );
    }
    if r.random_bool(0.5) {
        a.random_partition(
            &mut r,
            nodes,
            (Duration::ZERO, Duration::from_secs(4)),
            Duration::from_secs(3),
        );
    }
    if r.random_bool(0.3) {
        a.random_pause(
            &mut r,
            nodes,
            (Duration::from_millis(500), Duration::from_secs(4)),
            Duration::from_secs(2),
        );
    }
    a.0
}

/// A campaign's judgement: every word reached every live node, and no
/// message was refused as too large.
pub fn judge(args: &[String]) -> Result<(), String> {
    let a = crate::registry::parse_args::<SimArgs>("sim", "gossip", args)?;
    let s = simulate(&a).map_err(|e| e.to_string())?;
    if !s.lost.is_empty() {
        return Err(format!(
            "{} word(s) missing at some live node, e.g. {:?}",
            s.lost.len(),
            s.lost[0]
        ));
    }
    if s.traffic.too_large > 0 {
        return Err(format!(
            "{} messages over the size limit",
            s.traffic.too_large
        ));
    }
    if s.words == 0 {
        return Err("no words were made".into());
    }
    Ok(())
}
