//! A scenario on real nodes in this process, on the wall clock: `dsys demo
//! <algorithm>`. The nodes talk over loopback gRPC as separate processes
//! would; the workload is the one the simulator drives; the fault schedule
//! is a [`Faults`] as in the simulator (its default: the algorithm's victim
//! killed at about 40 % of the run and restarted a little later); the
//! algorithm's checker judges everyone's events at the end.
//!
//! An algorithm says what its demo shows ([`Demo`]); this module runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches};
use tokio::sync::mpsc;

use super::Workload;
use crate::check::{Checker, Report, check};
use crate::cli::{CliError, Ended, Outcome, block_on};
use crate::config::{Cluster, NodeId};
use crate::demo::{Nodes, Stage, local_cluster};
use crate::events::{Common, SharedFile, read_files, wall_us};
use crate::node::{Note, Protocol};
use crate::output::Output;
use crate::sim::{FaultArgs, Faults, Happening};

/// The flags every `dsys demo <algorithm>` takes. Each algorithm sets its
/// own defaults ([`DemoDefaults`]).
#[derive(Args, Debug, Clone)]
pub struct RealArgs {
    /// Number of nodes
    #[arg(short = 'n', long = "nodes", default_value_t = 3)]
    pub nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "15s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Kill a node (as kill -9): NODE@TIME, e.g. l2@5s (repeatable; replaces
    /// the demo's own crash and restart)
    #[arg(long, value_name = "NODE@TIME")]
    pub crash: Vec<String>,
    /// Restart a killed node with no state: NODE@TIME (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    pub restart: Vec<String>,
    /// Write events as JSON lines to FILE (default: a temporary file)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// An algorithm's defaults for the shared demo flags.
#[derive(Clone, Copy, Debug)]
pub struct DemoDefaults {
    pub nodes: &'static str,
    pub min_nodes: i64,
    pub duration: &'static str,
    /// What `--duration` means for this demo, if more than "how long".
    pub duration_help: Option<&'static str>,
    /// When the default schedule kills its victim and restarts it, as
    /// fractions of the duration.
    pub crash_at: f64,
    pub restart_at: f64,
}

/// The most nodes a demo runs (ports 50051.., one screen of output).
const MAX_NODES: i64 = 6;

impl DemoDefaults {
    fn apply(&self, c: Command) -> Command {
        let (nodes, min) = (self.nodes, self.min_nodes);
        let c = c
            .mut_arg("nodes", |a| {
                a.default_value(nodes)
                    .help(format!("Number of nodes ({min} to {MAX_NODES})"))
                    .value_parser(clap::value_parser!(u32).range(min..=MAX_NODES))
            })
            .mut_arg("duration", |a| a.default_value(self.duration));
        match self.duration_help {
            Some(h) => c.mut_arg("duration", |a| a.help(h)),
            None => c,
        }
    }
}

/// What a demo's run is made of (the wall-clock twin of the simulator's
/// `Setup`).
pub struct Staging<P: Protocol> {
    /// Printed first: what the demo runs.
    pub intro: String,
    /// A fresh machine for a node's start (and each restart).
    pub machine: Box<dyn FnMut(NodeId) -> P>,
    pub workload: Box<dyn Workload<P>>,
    /// Follows the run for the demo's own needs (who holds the token, how
    /// many words are everywhere).
    pub spectator: Box<dyn Spectator<P>>,
    /// The node the default schedule kills.
    pub victim: NodeId,
    /// Lines to set apart at given times (`generators off`).
    pub headlines: Vec<(Duration, String)>,
}

/// Follows a demo's run.
pub trait Spectator<P: Protocol> {
    fn see(&mut self, _h: &Happening<P::Note>) {}
    /// The node the default schedule kills when its time comes (`planned`
    /// unless the run decides: the token ring kills the last holder).
    fn victim(&self, planned: NodeId) -> NodeId {
        planned
    }
    /// A line every two seconds, if the demo has one (`live`: nodes up).
    fn progress(&self, _live: &[NodeId]) -> Option<String> {
        None
    }
}

/// A spectator that follows nothing.
pub struct Nobody;

impl<P: Protocol> Spectator<P> for Nobody {}

/// An algorithm's demo: its flags (with [`RealArgs`]) and what it shows.
pub trait Demo: Args + FromArgMatches + Sized + 'static {
    /// `dsys demo <ALGORITHM>`.
    const ALGORITHM: &'static str;
    const DEFAULTS: DemoDefaults;
    type P: Protocol;
    type Check: Checker<Event = <<Self::P as Protocol>::Note as Note>::Event>;

    fn real(&self) -> &RealArgs;
    /// Checks what clap cannot (a rate above 0, ...).
    fn validate(&self) -> Result<(), CliError> {
        Ok(())
    }
    fn stage(&self, cluster: &Arc<Cluster>) -> Result<Staging<Self::P>, CliError>;
    /// What the stage shows of a node's note (most notes: nothing).
    fn line(cluster: &Cluster, id: NodeId, note: &<Self::P as Protocol>::Note) -> Option<String>;
    /// The headline of a crash of `name`, and of its restart.
    fn killed(name: &str) -> String;
    fn restarted(name: &str) -> String;
    /// The line before the checker's report.
    fn verdict_title(&self) -> String {
        "--- verdict ---".into()
    }
}

/// `dsys demo <algorithm>`'s command: its arguments with its defaults.
pub fn command<D: Demo>(c: Command) -> Command {
    D::DEFAULTS.apply(D::augment_args(c))
}

/// `dsys demo <algorithm>`: runs, prints the report; safety decides.
pub fn run<D: Demo>(d: D) -> Outcome {
    d.validate()?;
    block_on(run_async(d))?
}

/// What happens when: (time, order of planning) to the thing.
type Timeline<T> = BTreeMap<(Duration, u64), T>;

/// One thing the schedule does.
enum Action {
    Crash(NodeId),
    Restart(NodeId),
    Headline(String),
}

/// The schedule: the user's crashes and restarts, or the demo's own.
fn schedule<D: Demo>(d: &D, cluster: &Cluster, victim: NodeId) -> Result<(Faults, bool), CliError> {
    let r = d.real();
    if !r.crash.is_empty() || !r.restart.is_empty() {
        let f = FaultArgs {
            crash: r.crash.clone(),
            restart: r.restart.clone(),
            ..FaultArgs::default()
        };
        return Ok((f.parse(cluster).map_err(CliError::Usage)?, false));
    }
    let defaults = D::DEFAULTS;
    Ok((
        Faults {
            crashes: vec![(victim, r.duration.mul_f64(defaults.crash_at))],
            restarts: vec![(victim, r.duration.mul_f64(defaults.restart_at))],
            ..Faults::default()
        },
        true,
    ))
}

async fn run_async<D: Demo>(d: D) -> Outcome {
    let r = d.real().clone();
    let cluster =
        Arc::new(local_cluster(r.nodes as usize).map_err(|e| CliError::Failed(e.to_string()))?);
    let path = r.events.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "dsys-demo-{}-{}.jsonl",
            D::ALGORITHM,
            std::process::id()
        ))
    });
    let file = SharedFile::create(&path).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    let Staging {
        intro,
        mut machine,
        mut workload,
        mut spectator,
        victim,
        headlines,
    } = d.stage(&cluster)?;
    let (faults, default_schedule) = schedule(&d, &cluster, victim)?;
    let mut actions: Timeline<Action> = BTreeMap::new();
    let mut seq = 0;
    let mut at = |actions: &mut BTreeMap<_, _>, t: Duration, a: Action| {
        seq += 1;
        actions.insert((t, seq), a);
    };
    for &(n, t) in &faults.crashes {
        at(&mut actions, t, Action::Crash(n));
    }
    for &(n, t) in &faults.restarts {
        at(&mut actions, t, Action::Restart(n));
    }
    for (t, text) in headlines {
        at(&mut actions, t, Action::Headline(text));
    }

    println!("{intro}");
    let stage = Stage::new();
    let (notes_tx, mut notes) = mpsc::channel::<(NodeId, <D::P as Protocol>::Note)>(4096);
    let mut nodes: Nodes<D::P> = Nodes::new(cluster.clone());
    let start = async |nodes: &mut Nodes<D::P>, id: NodeId, m: D::P| {
        let c = cluster.clone();
        let tx = notes_tx.clone();
        let present = move |note: &<D::P as Protocol>::Note, _: &mut dyn std::io::Write| {
            if let Some(line) = D::line(&c, id, note) {
                stage.line(c.name(id), &line);
            }
            let _ = tx.blocking_send((id, note.clone()));
        };
        let output = Output::start(cluster.clone(), id, Some(file.log()), present);
        nodes.start(id, m, output).await
    };
    let ids: Vec<NodeId> = cluster.ids().collect();
    for &id in &ids {
        start(&mut nodes, id, machine(id)).await?;
    }

    // The workload's commands, in time order (ties in the order planned).
    let mut plan: Timeline<(NodeId, <D::P as Protocol>::Cmd)> = BTreeMap::new();
    let mut planned = 0;
    let mut add = |plan: &mut BTreeMap<_, _>, cmds: Vec<super::Planned<_>>| {
        for (t, node, cmd) in cmds {
            planned += 1;
            plan.insert((t, planned), (node, cmd));
        }
    };
    add(&mut plan, workload.begin(&ids));
    // A default crash may hit another node than planned; its restart follows.
    let mut redirected: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    let mut demo_log = file.log();
    let progress_every = Duration::from_secs(2);
    let mut next_progress = progress_every;
    loop {
        let now = stage.elapsed();
        if now >= r.duration {
            break;
        }
        let first = |m: Option<Duration>| m.unwrap_or(r.duration);
        let wake = first(plan.keys().next().map(|k| k.0))
            .min(first(actions.keys().next().map(|k| k.0)))
            .min(next_progress)
            .min(r.duration);
        tokio::select! {
            got = notes.recv() => {
                let Some((node, note)) = got else { break };
                let h = Happening::Note(node, note);
                spectator.see(&h);
                add(&mut plan, workload.react(stage.elapsed(), &h));
            }
            _ = tokio::time::sleep(wake.saturating_sub(now)) => {
                let now = stage.elapsed();
                while let Some(entry) = plan.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let (node, cmd) = entry.remove();
                    nodes.send(node, cmd);
                }
                while let Some(entry) = actions.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let h = match entry.remove() {
                        Action::Headline(text) => {
                            stage.headline(&text);
                            continue;
                        }
                        Action::Crash(planned) => {
                            let victim = if default_schedule {
                                spectator.victim(planned)
                            } else {
                                planned
                            };
                            redirected.insert(planned, victim);
                            if !nodes.is_up(victim) {
                                continue;
                            }
                            // A crash, not a stop: no goodbye, its state is lost.
                            nodes.kill(victim).await;
                            let _ = demo_log.write(wall_us(), cluster.name(victim), &Common::Crash);
                            let _ = demo_log.flush();
                            stage.headline(&D::killed(cluster.name(victim)));
                            Happening::Crash(victim)
                        }
                        Action::Restart(planned) => {
                            let node = redirected.get(&planned).copied().unwrap_or(planned);
                            if nodes.is_up(node) {
                                continue;
                            }
                            start(&mut nodes, node, machine(node)).await?;
                            stage.headline(&D::restarted(cluster.name(node)));
                            Happening::Restart(node)
                        }
                    };
                    spectator.see(&h);
                    add(&mut plan, workload.react(now, &h));
                }
                if now >= next_progress && now < r.duration {
                    next_progress += progress_every;
                    let live: Vec<NodeId> = ids.iter().copied().filter(|&i| nodes.is_up(i)).collect();
                    if let Some(line) = spectator.progress(&live) {
                        stage.line("demo", &line);
                    }
                }
            }
        }
    }
    nodes.stop_all().await;
    drop(demo_log);
    let records =
        read_files::<<<D::P as Protocol>::Note as Note>::Event>(std::slice::from_ref(&path))
            .map_err(|e| CliError::Failed(e.to_string()))?;
    let report = check::<D::Check>(&records);
    stage.flush();
    println!("{}", d.verdict_title());
    print!(
        "{}{}",
        crate::check::lost_warning(&records),
        report.render()
    );
    println!(
        "events: {} (check again with `dsys check {} {}`)",
        path.display(),
        D::ALGORITHM,
        path.display()
    );
    Ok(Ended::passed_if(report.verdict().passed(false)))
}
