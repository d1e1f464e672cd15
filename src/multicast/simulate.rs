//! `dsys sim multicast`: every node chats at random (Poisson) times on the
//! simulator, with the faults asked for; the order checker judges the run.
//! Also the campaigns' random scenarios.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{OrderCheck, Report};
use super::machine::MAX_TEXT;
use super::{Cmd, Multicast, Note};
use crate::check::{Checker, Report as _};
use crate::cli::{CliError, Outcome};
use crate::config::{Cluster, NodeId};
use crate::events::EventLog;
use crate::node::Rng;
use crate::registry::Run;
use crate::sim::campaign;
use crate::sim::{FaultArgs, Happening, NetArgs, Sim};
use crate::stats;

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Nodes are l1..lN; --crash/--restart/--partition/--pause are written as for \
`dsys sim tokenring`. A restarted node loses its state and rejoins; the checker verifies that \
every node life delivered a contiguous piece of one total order, with no duplicates and \
per-sender FIFO. The same seed gives the same run, byte for byte."
)]
pub struct SimArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub nodes: u32,
    /// Messages per second, per node
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    pub rate: f64,
    /// How long nodes send (virtual time)
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Extra virtual time after the workload and the last fault
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    pub settle: Duration,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE (replaced)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Fraction of messages that are big (0.5 to 1 MiB, up to the limit a
    /// line may have): relays of several must still fit the frame limit
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub big: f64,
    /// Also fail (exit 1) when a message was not delivered everywhere (a
    /// node that crashed for good leaves messages waiting for it)
    #[arg(long)]
    pub strict: bool,
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
    pub too_large: u64,
    pub virtual_time: Duration,
    /// Each live node's status at the end (what its holdback queue waits for).
    pub status: Vec<String>,
}

pub fn simulate(o: &SimArgs) -> Result<SimSummary, CliError> {
    if !(0.0..=1.0).contains(&o.big) {
        return Err(CliError::usage(format!(
            "--big {}: a fraction of the messages, from 0 to 1",
            o.big
        )));
    }
    if !(o.rate > 0.0 && o.rate.is_finite())
        || o.rate * o.duration.as_secs_f64() * o.nodes as f64 > 1_000_000.0
    {
        return Err(CliError::usage(format!(
            "--rate {}: messages per second must be above 0, and a run may send at most 1,000,000",
            o.rate
        )));
    }
    let cluster = Cluster::loopback(o.nodes as usize, 50051);
    let faults = o.faults.parse(&cluster)?;
    let net = o.net.model()?;
    let members: Vec<NodeId> = cluster.ids().collect();
    let ms = members.clone();
    let mut sim = Sim::new(cluster, net, o.seed, move |me, _rng, now| {
        Multicast::new(me, ms.iter().copied(), now.as_micros() as u64 + 1)
    });
    if let Some(p) = &o.events {
        sim.log_to(EventLog::replace(p).map_err(|source| CliError::File {
            file: p.clone(),
            source,
        })?);
    }
    faults.apply(&mut sim);
    let mut rng = Rng::seed_from_u64(o.seed ^ 0x6d75_6c74);
    for &n in &members {
        let mut t = Duration::ZERO;
        let mut i = 0;
        loop {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            t += Duration::from_secs_f64(-u.ln() / o.rate);
            if t >= o.duration {
                break;
            }
            i += 1;
            let mut text = format!("{}-{i}", sim.cluster().name(n));
            if o.big > 0.0 && rng.random_bool(o.big.min(1.0)) {
                let size = rng.random_range(MAX_TEXT / 2..=MAX_TEXT);
                text.push(' ');
                text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
            }
            sim.command_at(t, n, Cmd::Send(text));
        }
    }
    let end = o.duration.max(faults.last()) + o.settle;
    let mut check = OrderCheck::default().exact_ends();
    for &n in &members {
        check.new_life(sim.cluster().name(n));
    }
    let mut sent_at: BTreeMap<(NodeId, u64), Duration> = BTreeMap::new();
    let mut latencies = Vec::new();
    let (mut sent, mut delivered) = (0, 0);
    sim.run_until(end, |sim, h| {
        let now = sim.now();
        match &h {
            Happening::Note(n, Note::Multicast { seq, .. }) => {
                sent += 1;
                sent_at.insert((*n, *seq), now);
            }
            Happening::Note(_, Note::Deliver { origin, seq, .. }) => {
                delivered += 1;
                if let Some(&t) = sent_at.get(&(*origin, *seq)) {
                    latencies.push(now - t);
                }
            }
            _ => {}
        }
        match h {
            // A restart begins a new life (the checker's `Start`).
            Happening::Restart(n) => {
                check.new_life(sim.cluster().name(n));
            }
            h => {
                if let Some(r) = h.record(sim.cluster(), now) {
                    check.record(&r);
                }
            }
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
                m.describe_peers(sim.cluster())
            ));
        }
    }
    sim.finish_log()
        .map_err(|e| CliError::Failed(format!("cannot write events: {e}")))?;
    let report = check.report();
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
        .filter(|l| sim.cluster().id(&l.node).is_some_and(|id| sim.is_up(id)))
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
        too_large: sim.traffic.too_large,
        virtual_time: sim.now(),
        status,
    })
}

impl Run for SimArgs {
    fn run(self) -> Outcome {
        let wall = std::time::Instant::now();
        let s = simulate(&self)?;
        println!(
            "simulated {} node(s) for {:.1}s of virtual time in {:.2}s (seed {})",
            self.nodes,
            s.virtual_time.as_secs_f64(),
            wall.elapsed().as_secs_f64(),
            self.seed
        );
        println!(
            "messages multicast: {}; deliveries: {}; {:.0} deliveries per simulated second per node",
            s.sent,
            s.delivered,
            s.delivered as f64 / s.virtual_time.as_secs_f64().max(1e-9) / self.nodes as f64
        );
        println!(
            "delivery latency (multicast to delivery): {}",
            stats::summary(&s.latencies, &[0.5, 0.99, 1.0])
        );
        println!(
            "messages on the wire: {} = {:.2} per delivery",
            s.messages,
            s.messages as f64 / s.delivered.max(1) as f64
        );
        print!("{}", s.report.render());
        if !s.behind.is_empty() {
            println!(
                "STUCK: {} did not reach the common end",
                s.behind.join(", ")
            );
        }
        if !s.behind.is_empty() || !s.report.ok() || !s.report.undelivered.is_empty() {
            println!("what each node's queue waits for at the end:");
            for status in s.status.iter().filter(|l| !l.contains("'s peers:")) {
                for line in status.lines() {
                    match line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
                        Some(inner) => println!("  {inner}"),
                        None => println!("  {line}"),
                    }
                }
            }
            if std::env::var_os("DSYS_DEBUG").is_some() {
                for line in s.status.iter().filter(|l| l.contains("'s peers:")) {
                    println!("  {line}");
                }
            }
        }
        Ok(s.report.verdict().passed(self.strict) && (s.behind.is_empty() || !self.strict))
    }
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
    let a = crate::registry::parse_args::<SimArgs>("sim", "multicast", args)?;
    let s = simulate(&a).map_err(|e| e.to_string())?;
    if !s.report.ok() {
        return Err(s.report.problems[..s.report.problems.len().min(3)].join("; "));
    }
    if let Some(u) = s.report.undelivered.first() {
        return Err(format!(
            "{} message(s) not delivered everywhere, e.g. {}#{} (missing at {:?})",
            s.report.undelivered.len(),
            u.id.0,
            u.id.1,
            u.missing_at
        ));
    }
    if !s.behind.is_empty() {
        return Err(format!(
            "{:?} did not reach the common end\n{}",
            s.behind,
            s.status.join("\n")
        ));
    }
    if s.too_large > 0 {
        return Err(format!("{} messages over the size limit", s.too_large));
    }
    Ok(())
}
