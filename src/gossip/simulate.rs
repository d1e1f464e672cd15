//! `dsys sim gossip`: Maelstrom's broadcast workload on the simulator, and
//! the campaigns' random scenarios.
//!
//! Every node generates words (exponential inter-arrival times, `rate` words
//! per second over the whole cluster) for `duration`; then generators stop,
//! partitions heal, and the run goes on until every word is at every live
//! node or `grace` more virtual time passes. With the partition nemesis the
//! cluster is split into random halves every other 10 s.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng};

use super::check::latency_line;
use super::topology::{Topology, build};
use super::tuning::Tuning;
use super::{Cmd, Gossip, Note, WordId};
use crate::check::{Property, Report};
use crate::cli::CliError;
use crate::config::NodeId;
use crate::node::Rng;
use crate::scenario::sim::Setup;
use crate::scenario::{Defaults, Plan, Scenario, ScenarioArgs, SimRun, Simulated, Watch};
use crate::sim::campaign;
use crate::sim::{Happening, Partition, Sim, Traffic};

#[derive(Args, Debug, Clone)]
#[command(after_help = "The Gossip Glomers challenge 3d/3e setting:\n  \
dsys sim gossip --nodes 25 --latency 100ms --rate 100 --duration 20s\n  \
(add --partition-nemesis for its partitions)\n\n\
Reports inter-node messages per word (Maelstrom's msgs-per-op is half of it, since half its \
operations are reads) and spread latency: from a word's birth until the last live node learned \
it. Faults are written as for `dsys sim tokenring` (see its --help).")]
pub struct SimArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Who links with whom: line (each to the next), ring, grid (4
    /// neighbors), star (l1 the hub), tree4 (up to 4 children), random (a
    /// ring plus two random chords per node), full (everyone)
    #[arg(long, value_enum, default_value_t = Topology::Star)]
    pub topology: Topology,
    /// Words per second over the whole cluster
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Split the cluster into random halves every other 10 s (healed at --duration)
    #[arg(long)]
    pub partition_nemesis: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// What a gossip run spread: every word, its spread latency, and the words
/// some live node never learned.
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
}

impl SimSummary {
    pub fn msgs_per_word(&self) -> f64 {
        self.messages as f64 / self.words.max(1) as f64
    }
}

impl Report for SimSummary {
    fn properties(&self) -> Vec<Property> {
        vec![
            Property::liveness(
                "every word reached every live node",
                self.lost.first().map(|w| {
                    format!(
                        "{} word(s) missing at some live node, e.g. {w:?}",
                        self.lost.len()
                    )
                }),
            ),
            Property::safety(
                "no message over the size limit",
                (self.traffic.too_large > 0)
                    .then(|| format!("{} messages over the size limit", self.traffic.too_large)),
            ),
            Property::exercised("words", self.words > 0, "no words were made"),
        ]
    }

    fn render(&self) -> String {
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

impl Simulated for SimArgs {
    const ALGORITHM: &'static str = "gossip";
    const DEFAULTS: Defaults = Defaults {
        nodes: "25",
        max_nodes: 1000,
        duration: "20s",
        // The Gossip Glomers setting.
        latency: Some("100ms"),
        duration_help: "How long nodes generate words (virtual time)",
    };
    type P = Gossip;
    type Watch = Tracker;

    fn scenario(&self) -> &ScenarioArgs {
        &self.scenario
    }

    fn options(&self) -> Vec<String> {
        let topology = clap::ValueEnum::to_possible_value(&self.topology)
            .map_or_else(String::new, |v| v.get_name().to_string());
        vec![format!("{topology} topology")]
    }

    fn validate(&self) -> Result<(), CliError> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err(CliError::usage(format!(
                "--rate {}: words per second must be above 0",
                self.rate
            )));
        }
        let duration = self.scenario.duration;
        let words = self.rate * duration.as_secs_f64();
        if words > 1_000_000.0 {
            return Err(CliError::usage(format!(
                "--rate {} for {duration:?} is about {words:.0} words; a run may make at most 1,000,000",
                self.rate
            )));
        }
        Ok(())
    }

    fn setup(&self, s: &mut Scenario) -> Result<Setup<Self>, CliError> {
        let n = s.cluster.len();
        let mut params = self.tuning.params().map_err(CliError::Usage)?;
        let mut topo_rng = Rng::seed_from_u64(s.seed ^ 0x70b0_1091);
        let graph = build(self.topology, n, &mut topo_rng);
        params.mean_interval = Duration::from_secs_f64(n as f64 / self.rate);
        let list = crate::words::all();
        let machine = move |me: NodeId, rng, now: Duration| {
            Gossip::new(
                me,
                graph[me.index()].iter().copied(),
                now.as_micros() as u64 + 1,
                params.clone(),
                list,
                rng,
            )
        };
        if self.partition_nemesis {
            s.faults
                .partitions
                .extend(nemesis(n, s.duration, &mut topo_rng));
        }
        // Generators stop at the duration, and every partition heals by then.
        for p in &mut s.faults.partitions {
            p.to = p.to.min(s.duration.max(p.from + Duration::from_millis(1)));
        }
        let stop = s
            .ids()
            .into_iter()
            .map(|id| (s.duration, id, Cmd::Generate(false)));
        let tracker = Tracker {
            born: BTreeMap::new(),
            learned: vec![BTreeMap::new(); n],
        };
        Ok(Setup::new(machine, Plan(stop.collect()), tracker))
    }
}

/// When each word was made, and when each node (in its current life) learned it.
pub struct Tracker {
    born: BTreeMap<WordId, Duration>,
    learned: Vec<BTreeMap<WordId, Duration>>,
}

fn live(sim: &Sim<Gossip>) -> Vec<NodeId> {
    sim.cluster().ids().filter(|&i| sim.is_up(i)).collect()
}

impl Watch<Gossip> for Tracker {
    type Report = SimSummary;

    fn see(&mut self, sim: &Sim<Gossip>, h: &Happening<Note>) {
        match h {
            Happening::Note(n, Note::Learned { id, from, .. }) => {
                if from.is_none() {
                    self.born.entry(*id).or_insert(sim.now());
                }
                self.learned[n.index()].insert(*id, sim.now());
            }
            Happening::Crash(n) => self.learned[n.index()].clear(),
            _ => {}
        }
    }

    /// Settled once every word is known to all live nodes or to none.
    fn settled(&self, sim: &Sim<Gossip>) -> Option<bool> {
        let live = live(sim);
        Some(self.born.keys().all(|&w| {
            let knowers = live
                .iter()
                .filter(|&&n| sim.machine(n).is_some_and(|m| m.knows(w)))
                .count();
            knowers == 0 || knowers == live.len()
        }))
    }

    fn finish(self, sim: &mut Sim<Gossip>, _end: Duration) -> SimSummary {
        let live = live(sim);
        let mut latencies = Vec::new();
        let mut lost = Vec::new();
        let mut died = 0;
        for (&w, &t0) in &self.born {
            let times: Vec<Duration> = live
                .iter()
                .filter_map(|n| self.learned[n.index()].get(&w).copied())
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
        SimSummary {
            words: self.born.len(),
            messages: sim.traffic.sent,
            traffic: sim.traffic.clone(),
            latencies,
            lost,
            died_with_node: died,
        }
    }
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimRun<SimSummary>, CliError> {
    crate::scenario::sim::simulate(a)
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
    crate::scenario::sim::judge::<SimArgs>(args)
}
