//! A scenario on the simulator: `dsys sim <algorithm>` and the campaigns'
//! judges, for every algorithm. The run: the scenario's faults scheduled,
//! the workload's opening commands, the workload until its duration and
//! the last fault, then the settle time; everything that happens goes to
//! the algorithm's [`Watch`] (usually its checker: [`Checked`]), whose
//! report's properties decide.

use std::time::{Duration, Instant};

use clap::{Args, Command, FromArgMatches};

use super::{Defaults, Scenario, ScenarioArgs, Workload};
use crate::check::{Checker, Report, first_failure};
use crate::cli::{CliError, Ended, Outcome};
use crate::config::NodeId;
use crate::events::EventLog;
use crate::node::{Note, Protocol, Rng};
use crate::sim::{Happening, Sim, Traffic};

/// An algorithm's `dsys sim` arguments: the shared [`ScenarioArgs`] plus its
/// own, and how they make a run.
pub trait Simulated: Args + FromArgMatches + Sized {
    /// `dsys sim <ALGORITHM>`.
    const ALGORITHM: &'static str;
    const DEFAULTS: Defaults;
    type P: Protocol;
    type Watch: Watch<Self::P>;

    fn scenario(&self) -> &ScenarioArgs;
    /// Checks what clap cannot (a rate above 0, ...).
    fn validate(&self) -> Result<(), CliError> {
        Ok(())
    }
    /// What the summary line names after the seed (`permissions reused`).
    fn options(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether a liveness property that did not hold fails the run.
    fn strict(&self) -> bool {
        true
    }
    /// The run's parts. It may add to the scenario's faults (a nemesis).
    fn setup(&self, s: &mut Scenario) -> Result<Setup<Self>, CliError>;
}

/// Builds a node's state machine: its id, its own RNG, and the virtual time
/// it boots at (a restart boots later than the node's earlier life).
pub type Factory<P> = Box<dyn FnMut(NodeId, Rng, std::time::Duration) -> P>;

/// Changes an algorithm schedules on the simulator itself (a ring rewired).
pub type Schedule<P> = Box<dyn FnOnce(&mut Sim<P>)>;

/// What `dsys sim <algorithm>` reports: its watch's report.
pub type SimReport<S> = <<S as Simulated>::Watch as Watch<<S as Simulated>::P>>::Report;

/// What a simulated run is made of.
pub struct Setup<S: Simulated> {
    pub machine: Factory<S::P>,
    pub workload: Box<dyn Workload<S::P>>,
    pub watch: S::Watch,
    /// Changes of the algorithm's own, scheduled after the faults (a ring
    /// rewired), and the time the last of them (or of the workload's own
    /// plans) happens: the run goes on at least until then.
    pub schedule: Option<Schedule<S::P>>,
    pub busy_until: Duration,
}

impl<S: Simulated> Setup<S> {
    pub fn new(
        machine: impl FnMut(NodeId, Rng, Duration) -> S::P + 'static,
        workload: impl Workload<S::P> + 'static,
        watch: S::Watch,
    ) -> Self {
        Setup {
            machine: Box::new(machine),
            workload: Box::new(workload),
            watch,
            schedule: None,
            busy_until: Duration::ZERO,
        }
    }
}

/// What watches a simulated run and reports on it.
pub trait Watch<P: Protocol> {
    type Report: Report;
    fn see(&mut self, sim: &Sim<P>, h: &Happening<P::Note>);
    /// Has everything the run waits for happened? `None`: the run always
    /// takes its whole settle time; `Some(true)` ends settling early.
    fn settled(&self, _sim: &Sim<P>) -> Option<bool> {
        None
    }
    /// The run is over at `end`: a last look at the nodes, and the report.
    fn finish(self, sim: &mut Sim<P>, end: Duration) -> Self::Report;
}

/// The usual watch: the algorithm's checker, fed what the event file gets.
#[derive(Default)]
pub struct Checked<C>(pub C);

impl<P, C> Watch<P> for Checked<C>
where
    P: Protocol,
    C: Checker<Event = <P::Note as Note>::Event>,
{
    type Report = C::Report;

    fn see(&mut self, sim: &Sim<P>, h: &Happening<P::Note>) {
        if let Some(r) = h.record(sim.cluster(), sim.now()) {
            self.0.record(&r);
        }
    }

    fn finish(self, _sim: &mut Sim<P>, _end: Duration) -> C::Report {
        self.0.finish()
    }
}

/// A finished simulated run.
pub struct SimRun<R> {
    pub report: R,
    pub traffic: Traffic,
    pub virtual_time: Duration,
}

/// How often settling asks the watch whether it is done.
const SETTLE_STEP: Duration = Duration::from_millis(50);

/// Runs the simulation `a` describes.
pub fn simulate<S: Simulated>(a: &S) -> Result<SimRun<SimReport<S>>, CliError> {
    a.validate()?;
    let mut s = Scenario::from_args(a.scenario()).map_err(CliError::Usage)?;
    let Setup {
        machine,
        mut workload,
        mut watch,
        schedule,
        busy_until,
    } = a.setup(&mut s)?;
    let mut sim = Sim::new(s.cluster.clone(), s.net.clone(), s.seed, machine);
    if let Some(path) = &s.events {
        sim.log_to(EventLog::replace(path).map_err(|source| CliError::File {
            file: path.clone(),
            source,
        })?);
    }
    s.faults.apply(&mut sim);
    if let Some(f) = schedule {
        f(&mut sim);
    }
    for (at, node, cmd) in workload.begin(&s.ids()) {
        sim.command_at(at, node, cmd);
    }
    let work_end = s.duration.max(s.faults.last()).max(busy_until);
    advance(&mut sim, work_end, &mut watch, workload.as_mut());
    if watch.settled(&sim).is_some() {
        let deadline = sim.now() + s.settle;
        while sim.now() < deadline && watch.settled(&sim) != Some(true) {
            let step = (sim.now() + SETTLE_STEP).min(deadline);
            advance(&mut sim, step, &mut watch, workload.as_mut());
        }
    } else {
        advance(&mut sim, work_end + s.settle, &mut watch, workload.as_mut());
    }
    let end = sim.now();
    let report = watch.finish(&mut sim, end);
    sim.finish_log()
        .map_err(|e| CliError::Failed(format!("cannot write events: {e}")))?;
    Ok(SimRun {
        report,
        traffic: sim.traffic.clone(),
        virtual_time: sim.now(),
    })
}

/// Runs `sim` until `until`, showing the watch everything and letting the
/// workload react.
fn advance<P: Protocol, W: Watch<P>>(
    sim: &mut Sim<P>,
    until: Duration,
    watch: &mut W,
    workload: &mut dyn Workload<P>,
) {
    sim.run_until(until, |sim, h| {
        watch.see(sim, &h);
        for (at, node, cmd) in workload.react(sim.now(), &h) {
            sim.command_at(at, node, cmd);
        }
    });
}

/// `dsys sim <algorithm>`: runs, prints the summary line and the report;
/// the report's properties decide the exit code.
pub fn run<S: Simulated>(a: S) -> Outcome {
    let wall = Instant::now();
    let r = simulate(&a)?;
    let sc = a.scenario();
    let mut options = vec![format!("seed {}", sc.seed)];
    options.extend(a.options());
    // The duration asked for, then the settling time after it (the run is
    // their sum: `--duration 30s` is not a 40 s run by surprise).
    println!(
        "simulated {} nodes for {} + {} settle ({:.1}s of virtual time) in {:.2}s ({})",
        sc.nodes,
        humantime::format_duration(sc.duration),
        humantime::format_duration(sc.settle),
        r.virtual_time.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        options.join(", ")
    );
    print!("{}", r.report.render());
    Ok(Ended::passed_if(r.report.verdict().passed(a.strict())))
}

/// A campaign's judgement of one run: every property held (liveness
/// included) and no message was over the size limit.
pub fn judge<S: Simulated>(args: &[String]) -> Result<(), String> {
    let a = parse::<S>(args)?;
    let r = simulate(&a).map_err(|e| e.to_string())?;
    if r.traffic.too_large > 0 {
        return Err(format!(
            "{} messages over the size limit",
            r.traffic.too_large
        ));
    }
    match first_failure(&r.report.properties(), true) {
        Some(p) => Err(p.to_string()),
        None => Ok(()),
    }
}

/// `dsys sim <algorithm>`'s command: the algorithm's arguments with its
/// defaults, and nothing else (no other algorithm is built to parse it).
pub fn command<S: Simulated>(c: Command) -> Command {
    S::DEFAULTS.apply(S::augment_args(c))
}

/// Parses `args` as `dsys sim <algorithm> ARGS...` would: how campaigns
/// turn a scenario's command line into a run.
pub fn parse<S: Simulated>(args: &[String]) -> Result<S, String> {
    let m = command::<S>(Command::new(S::ALGORITHM).bin_name(format!("dsys sim {}", S::ALGORITHM)))
        .try_get_matches_from(std::iter::once(S::ALGORITHM.to_string()).chain(args.iter().cloned()))
        .map_err(|e| e.to_string())?;
    S::from_arg_matches(&m).map_err(|e| e.to_string())
}
