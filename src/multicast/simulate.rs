//! `dsys sim multicast`: every node chats at random (Poisson) times on the
//! simulator, with the faults asked for; the order checker judges the run.
//! Also the campaigns' random scenarios.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{OrderCheck, Report};
use super::machine::MAX_TEXT;
use super::{Cmd, Multicast, Note};
use crate::check::{Checker, Property};
use crate::cli::CliError;
use crate::config::NodeId;
use crate::node::Rng;
use crate::scenario::sim::Setup;
use crate::scenario::{Defaults, Plan, Scenario, ScenarioArgs, SimRun, Simulated, Watch};
use crate::sim::campaign;
use crate::sim::{Happening, Sim};
use crate::stats;

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Nodes are l1..lN; --crash/--restart/--partition/--pause are written as for \
`dsys sim tokenring`. A restarted node loses its state and rejoins; the checker verifies that \
every node life delivered a contiguous piece of one total order, with no duplicates and \
per-sender FIFO. The same seed gives the same run, byte for byte."
)]
pub struct SimArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Messages per second, per node
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// Fraction of messages that are big (0.5 to 1 MiB, up to the limit a
    /// line may have): relays of several must still fit the frame limit
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub big: f64,
    /// Also fail (exit 1) when a message was not delivered everywhere (a
    /// node that crashed for good leaves messages waiting for it)
    #[arg(long)]
    pub strict: bool,
}

/// The order checker, fed every life's start, and the latency of every
/// delivery.
pub struct MulticastWatch {
    check: OrderCheck,
    sent_at: BTreeMap<(NodeId, u64), Duration>,
    latencies: Vec<Duration>,
    sent: u64,
    delivered: u64,
}

/// The order checker's report, with the run's throughput and latency, and
/// whether every live node reached the same last message.
pub struct MulticastSim {
    pub report: Report,
    /// Lives still running at the end that did not reach the common end.
    pub behind: Vec<String>,
    pub sent: u64,
    pub delivered: u64,
    /// Multicast-to-delivery times, over every delivery.
    pub latencies: Vec<Duration>,
    /// Each live node's status at the end (what its holdback queue waits for).
    pub status: Vec<String>,
    /// Messages on the wire, and the virtual time and node count, for the
    /// per-delivery and per-node figures.
    messages: u64,
    per_node_second: f64,
}

impl std::ops::Deref for MulticastSim {
    type Target = Report;
    fn deref(&self) -> &Report {
        &self.report
    }
}

impl crate::check::Report for MulticastSim {
    fn properties(&self) -> Vec<Property> {
        let mut p = self.report.properties();
        p.push(Property::liveness(
            "every live node reached the common end",
            (!self.behind.is_empty()).then(|| {
                format!(
                    "{:?} did not reach the common end\n{}",
                    self.behind,
                    self.status.join("\n")
                )
            }),
        ));
        p
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "messages multicast: {}; deliveries: {}; {:.0} deliveries per simulated second per node",
            self.sent,
            self.delivered,
            self.delivered as f64 / self.per_node_second
        );
        let _ = writeln!(
            s,
            "delivery latency (multicast to delivery): {}",
            stats::summary(&self.latencies, &[0.5, 0.99, 1.0])
        );
        let _ = writeln!(
            s,
            "messages on the wire: {} = {:.2} per delivery",
            self.messages,
            self.messages as f64 / self.delivered.max(1) as f64
        );
        s.push_str(&self.report.render());
        if !self.behind.is_empty() {
            let _ = writeln!(
                s,
                "STUCK: {} did not reach the common end",
                self.behind.join(", ")
            );
        }
        if !self.behind.is_empty() || !self.report.ok() || !self.report.undelivered.is_empty() {
            let _ = writeln!(s, "what each node's queue waits for at the end:");
            for status in self.status.iter().filter(|l| !l.contains("'s peers:")) {
                for line in status.lines() {
                    match line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
                        Some(inner) => _ = writeln!(s, "  {inner}"),
                        None => _ = writeln!(s, "  {line}"),
                    }
                }
            }
            if std::env::var_os("DSYS_DEBUG").is_some() {
                for line in self.status.iter().filter(|l| l.contains("'s peers:")) {
                    let _ = writeln!(s, "  {line}");
                }
            }
        }
        s
    }
}

impl Watch<Multicast> for MulticastWatch {
    type Report = MulticastSim;

    fn see(&mut self, sim: &Sim<Multicast>, h: &Happening<Note>) {
        let now = sim.now();
        match h {
            Happening::Note(n, Note::Multicast { seq, .. }) => {
                self.sent += 1;
                self.sent_at.insert((*n, *seq), now);
            }
            Happening::Note(_, Note::Deliver { origin, seq, .. }) => {
                self.delivered += 1;
                if let Some(&t) = self.sent_at.get(&(*origin, *seq)) {
                    self.latencies.push(now - t);
                }
            }
            _ => {}
        }
        match h {
            // A restart begins a new life (the checker's `Start`).
            Happening::Restart(n) => {
                self.check.new_life(sim.cluster().name(*n));
            }
            h => {
                if let Some(r) = h.record(sim.cluster(), now) {
                    self.check.record(&r);
                }
            }
        }
    }

    fn finish(mut self, sim: &mut Sim<Multicast>, end: Duration) -> MulticastSim {
        let members: Vec<NodeId> = sim.cluster().ids().collect();
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
                    m.describe_peers(sim.cluster())
                ));
            }
        }
        let report = self.check.report();
        // Every life still running must have reached the same last message.
        let lives = self.check.lives();
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
            .filter(|l| sim.cluster().id(&l.node).is_some_and(|id| sim.is_up(id)))
            .map(|l| l.node.clone())
            .collect();
        self.latencies.sort_unstable();
        MulticastSim {
            report,
            behind,
            sent: self.sent,
            delivered: self.delivered,
            latencies: self.latencies,
            status,
            messages: sim.traffic.sent,
            per_node_second: sim.now().as_secs_f64().max(1e-9) * members.len() as f64,
        }
    }
}

impl Simulated for SimArgs {
    const ALGORITHM: &'static str = "multicast";
    const DEFAULTS: Defaults = Defaults {
        nodes: "3",
        max_nodes: 64,
        duration: "10s",
        latency: None,
        duration_help: "How long nodes send (virtual time)",
    };
    type P = Multicast;
    type Watch = MulticastWatch;

    fn scenario(&self) -> &ScenarioArgs {
        &self.scenario
    }

    fn strict(&self) -> bool {
        self.strict
    }

    fn validate(&self) -> Result<(), CliError> {
        let o = &self.scenario;
        if !(0.0..=1.0).contains(&self.big) {
            return Err(CliError::usage(format!(
                "--big {}: a fraction of the messages, from 0 to 1",
                self.big
            )));
        }
        if !(self.rate > 0.0 && self.rate.is_finite())
            || self.rate * o.duration.as_secs_f64() * o.nodes as f64 > 1_000_000.0
        {
            return Err(CliError::usage(format!(
                "--rate {}: messages per second must be above 0, and a run may send at most 1,000,000",
                self.rate
            )));
        }
        Ok(())
    }

    fn setup(&self, s: &mut Scenario) -> Result<Setup<Self>, CliError> {
        let members = s.ids();
        let ms = members.clone();
        let machine = move |me, _rng, now: Duration| {
            Multicast::new(me, ms.iter().copied(), now.as_micros() as u64 + 1)
        };
        Ok(Setup::new(
            machine,
            Plan(self.chatter(s)),
            MulticastWatch::new(s),
        ))
    }
}

impl SimArgs {
    /// Every node's messages at Poisson times until the duration; some big.
    fn chatter(&self, s: &Scenario) -> Vec<(Duration, NodeId, Cmd)> {
        let mut rng = Rng::seed_from_u64(s.seed ^ 0x6d75_6c74);
        let mut plan = Vec::new();
        for n in s.ids() {
            let mut t = Duration::ZERO;
            let mut i = 0;
            loop {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                t += Duration::from_secs_f64(-u.ln() / self.rate);
                if t >= s.duration {
                    break;
                }
                i += 1;
                let mut text = format!("{}-{i}", s.cluster.name(n));
                if self.big > 0.0 && rng.random_bool(self.big.min(1.0)) {
                    let size = rng.random_range(MAX_TEXT / 2..=MAX_TEXT);
                    text.push(' ');
                    text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
                }
                plan.push((t, n, Cmd::Send(text)));
            }
        }
        plan
    }
}

impl MulticastWatch {
    /// Every node begins its first life at the start.
    fn new(s: &Scenario) -> Self {
        let mut check = OrderCheck::default().exact_ends();
        for n in s.ids() {
            check.new_life(s.cluster.name(n));
        }
        MulticastWatch {
            check,
            sent_at: BTreeMap::new(),
            latencies: Vec::new(),
            sent: 0,
            delivered: 0,
        }
    }
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimRun<MulticastSim>, CliError> {
    crate::scenario::sim::simulate(a)
}

/// A random faulty scenario: 2-5 nodes, latency that lets messages
/// overtake each other across links, loss (which breaks links, so nodes
/// resend) and duplication, up to two crash/restarts, a partition that
/// heals, a pause of one node (SIGSTOP/SIGCONT), and sometimes big
/// messages (up to the 1 MiB line limit) that must share frames.
pub fn scenario(seed: u64) -> Vec<String> {
    let mut r = Rng::seed_from_u64(seed);
    let nodes = r.random_range(2..=5usize);
    let mut a = campaign::Args::default();
    a.flag("--nodes", nodes)
        .flag("--seed", seed)
        .flag("--duration", "4s")
        .flag("--rate", format!("{:.1}", r.random_range(5.0..40.0)))
        .random_latency(&mut r, 30)
        .flag("--loss", [0.0, 0.0, 0.01, 0.03][r.random_range(0..4)])
        .flag("--duplicate", [0.0, 0.01][r.random_range(0..2)]);
    let crashes = r.random_range(0..=2);
    a.random_crashes(
        &mut r,
        nodes,
        crashes,
        (Duration::from_millis(200), Duration::from_millis(3_500)),
        Duration::from_millis(1_500),
    );
    if r.random_bool(0.4) {
        a.random_partition(
            &mut r,
            nodes,
            (Duration::ZERO, Duration::from_millis(3_500)),
            Duration::from_secs(2),
        );
    }
    if r.random_bool(0.3) {
        a.random_pause(
            &mut r,
            nodes,
            (Duration::from_millis(200), Duration::from_millis(3_000)),
            Duration::from_millis(1_500),
        );
    }
    if r.random_bool(0.1) {
        a.flag("--big", 0.05);
    }
    a.0
}

/// A campaign's judgement: one total order, nothing lost, every live node
/// at the same end.
pub fn judge(args: &[String]) -> Result<(), String> {
    crate::scenario::sim::judge::<SimArgs>(args)
}
