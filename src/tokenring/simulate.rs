//! `dsys sim tokenring`: the workload of `scenario` on the simulator, with
//! the faults the user asks for, judged by the token ring's checker; and the
//! random fault scenarios of the test campaigns.

use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{TokenRingCheck, TokenRingReport};
use super::scenario::Workload;
use super::{Note, Timing, TokenRing};
use crate::check::{Property, Report};
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};
use crate::node::Rng;
use crate::scenario::sim::Setup;
use crate::scenario::{Checked, Defaults, Scenario, ScenarioArgs, SimRun, Simulated, Watch};
use crate::sim::campaign;
use crate::sim::{Happening, Sim};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Faults:\n  \
--crash l2@5s --restart l2@8s       kill l2 at 5s (state lost), back at 8s\n  \
--partition 'l1,l2|l3,l4,l5@4s-9s'  cut l1,l2 from l3,l4,l5, 4s to 9s\n  \
--partition 'l1@4s-9s'              isolate l1 from everyone else\n\
Ring changes:\n  \
--next l3=l1        l3's next is l1 (so l4, l5 start outside the ring)\n  \
--rewire l3@5s:l4   l3 restarts at 5s with next l4\n  \
--start l4@7s       l4 walks its ring and starts a token\n\
Latency: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms\n\
(exponential with that mean, after a floor).\n\
Nodes are l1..lN; each node's next is the following one (lN's is l1) unless\n\
--next says otherwise. The same seed gives the same run, byte for byte.")]
pub struct SimArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Token hop delay of every node
    #[arg(long, default_value = "5ms", value_parser = crate::duration::parse)]
    pub hop_delay: Duration,
    /// How long a node stays in the critical section: 50ms, or a range 20ms..200ms
    #[arg(long, default_value = "20ms..200ms", value_name = "DURATION")]
    pub hold: String,
    /// A node's next other than the default ring order: A=B,C=D (repeatable)
    #[arg(long, value_delimiter = ',', value_name = "NODE=NEXT")]
    pub next: Vec<String>,
    /// Kill a node and restart it at once with another next: NODE@TIME:NEXT (repeatable)
    #[arg(long, value_name = "NODE@TIME:NEXT")]
    pub rewire: Vec<String>,
    /// Type `start` on a node (besides l1 at the beginning): NODE@TIME (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    pub start: Vec<String>,
}

fn parse_hold(s: &str) -> Result<(Duration, Duration), String> {
    let d = |x: &str| crate::duration::parse(x).map_err(|e| format!("--hold {s:?}: {e}"));
    match s.split_once("..") {
        Some((lo, hi)) if d(lo)? <= d(hi)? => Ok((d(lo)?, d(hi)?)),
        Some(_) => Err(format!(
            "--hold {s:?}: the upper bound is below the lower one"
        )),
        None => Ok((d(s)?, d(s)?)),
    }
}

/// Who is whose next, over time: the initial pointers and the rewires.
#[derive(Clone, Debug)]
struct Wiring {
    initial: Vec<NodeId>,
    rewires: Vec<(NodeId, Duration, NodeId)>,
    starts: Vec<(NodeId, Duration)>,
}

impl Wiring {
    fn parse(c: &Cluster, a: &SimArgs) -> Result<Wiring, String> {
        let n = c.len() as u32;
        let mut initial: Vec<NodeId> = (0..n).map(|i| NodeId((i + 1) % n)).collect();
        let node = |s: &str, flag: &str, whole: &str| {
            c.require(s.trim())
                .map_err(|e| format!("{flag} {whole:?}: {e}"))
        };
        for spec in &a.next {
            let (from, to) = spec
                .split_once('=')
                .ok_or_else(|| format!("--next {spec:?}: write NODE=NEXT, e.g. l3=l1"))?;
            initial[node(from, "--next", spec)?.index()] = node(to, "--next", spec)?;
        }
        let at = |spec: &str, flag: &str| -> Result<(NodeId, Duration, String), String> {
            let (who, rest) = spec
                .split_once('@')
                .ok_or_else(|| format!("{flag} {spec:?}: write NODE@TIME..."))?;
            let (time, tail) = rest.split_once(':').unwrap_or((rest, ""));
            let t = crate::duration::parse(time).map_err(|e| format!("{flag} {spec:?}: {e}"))?;
            Ok((node(who, flag, spec)?, t, tail.to_string()))
        };
        let mut rewires = Vec::new();
        for spec in &a.rewire {
            let (who, t, next) = at(spec, "--rewire")?;
            if next.is_empty() {
                return Err(format!(
                    "--rewire {spec:?}: write NODE@TIME:NEXT, e.g. l3@5s:l4"
                ));
            }
            rewires.push((who, t, node(&next, "--rewire", spec)?));
        }
        let mut starts = Vec::new();
        for spec in &a.start {
            let (who, t, _) = at(spec, "--start")?;
            starts.push((who, t));
        }
        Ok(Wiring {
            initial,
            rewires,
            starts,
        })
    }

    /// `me`'s next for a life that begins at `now`.
    fn next_of(&self, me: NodeId, now: Duration) -> NodeId {
        self.rewires
            .iter()
            .filter(|(n, t, _)| *n == me && *t <= now)
            .max_by_key(|(_, t, _)| *t)
            .map_or(self.initial[me.index()], |(_, _, next)| *next)
    }
}

/// The checker, counting token hops on the way.
#[derive(Default)]
pub struct RingWatch {
    check: Checked<TokenRingCheck>,
    hops: u64,
}

/// The token ring checker's report, after the hop count and the traffic.
pub struct RingSim {
    pub report: TokenRingReport,
    pub hops: u64,
    traffic: String,
}

impl std::ops::Deref for RingSim {
    type Target = TokenRingReport;
    fn deref(&self) -> &TokenRingReport {
        &self.report
    }
}

impl Report for RingSim {
    fn properties(&self) -> Vec<Property> {
        self.report.properties()
    }
    fn render(&self) -> String {
        format!(
            "token hops: {}\n{}\n{}",
            self.hops,
            self.traffic,
            self.report.render()
        )
    }
}

impl Watch<TokenRing> for RingWatch {
    type Report = RingSim;
    fn see(&mut self, sim: &Sim<TokenRing>, h: &Happening<Note>) {
        if let Happening::Note(_, Note::Token { .. }) = h {
            self.hops += 1;
        }
        self.check.see(sim, h);
    }
    fn finish(self, sim: &mut Sim<TokenRing>, end: Duration) -> RingSim {
        RingSim {
            report: self.check.finish(sim, end),
            hops: self.hops,
            traffic: sim.traffic.summary(),
        }
    }
}

impl Simulated for SimArgs {
    const ALGORITHM: &'static str = "tokenring";
    const DEFAULTS: Defaults = Defaults {
        nodes: "5",
        max_nodes: 64,
        duration: "30s",
        latency: None,
        duration_help: "How long nodes keep asking for the critical section (virtual time)",
    };
    type P = TokenRing;
    type Watch = RingWatch;

    fn scenario(&self) -> &ScenarioArgs {
        &self.scenario
    }

    fn setup(&self, s: &mut Scenario) -> Result<Setup<Self>, CliError> {
        let n = s.cluster.len();
        let timing = Timing {
            hop_delay: self.hop_delay,
            ..Timing::default()
        };
        let lease = timing.lease;
        let wiring = Wiring::parse(&s.cluster, self).map_err(CliError::Usage)?;
        let nexts = wiring.clone();
        let machine =
            move |me, rng, now| TokenRing::new(me, nexts.next_of(me, now), n, timing.clone(), rng);
        let mut workload = Workload::new(s.seed, s.duration, lease).with_starts(&wiring.starts);
        workload.hold = parse_hold(&self.hold).map_err(CliError::Usage)?;
        let mut setup = Setup::new(machine, workload, RingWatch::default());
        setup.busy_until = wiring
            .rewires
            .iter()
            .map(|r| r.1)
            .chain(wiring.starts.iter().map(|s| s.1))
            .max()
            .unwrap_or_default();
        // A rewire is the node restarted at once with another next.
        let rewires = wiring.rewires;
        setup.schedule = Some(Box::new(move |sim: &mut Sim<TokenRing>| {
            for &(node, at, _) in &rewires {
                sim.crash_at(at, node);
                sim.restart_at(at, node);
            }
        }));
        Ok(setup)
    }
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimRun<RingSim>, CliError> {
    crate::scenario::sim::simulate(a)
}

/// A random faulty scenario for seed `seed`: 3-6 nodes, a random network
/// (latency, loss, duplication), one or two crash/restart pairs, sometimes
/// a partition of a minority, and sometimes a ring change (the ring starts
/// as l1..lK with the other nodes outside; lK is restarted with next
/// l(K+1) and l(K+1) types `start`, while l1..lK may be inside), and
/// sometimes a pause of one node (SIGSTOP/SIGCONT), all over by 12 s.
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
    if nodes >= 3 && r.random_bool(0.35) {
        let k = r.random_range(2..nodes);
        let at = r.random_range(2_000..7_000u64);
        let start = at + r.random_range(0..3_000u64);
        a.flag("--next", format!("l{k}=l1"))
            .flag("--rewire", format!("l{k}@{at}ms:l{}", k + 1))
            .flag("--start", format!("l{}@{start}ms", k + 1));
    }
    if r.random_bool(0.3) {
        a.random_pause(
            &mut r,
            nodes,
            (Duration::from_secs(1), Duration::from_secs(8)),
            Duration::from_secs(4),
        );
    }
    a.0
}

/// A campaign's judgement of one run: mutual exclusion held, every lock was
/// granted once the faults were over, and somebody entered.
pub fn judge(args: &[String]) -> Result<(), String> {
    crate::scenario::sim::judge::<SimArgs>(args)
}
