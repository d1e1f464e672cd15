//! `dsys clocks NAME`: one model machine in this terminal. It picks its
//! rate, connects to the others, prints a compact line per tick, writes a
//! human-readable line per event to `--log` and the JSON-lines events to
//! `--events`; `status` and `quit` at its prompt.

use std::io::{LineWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use rand::SeedableRng;

use super::machine::{Cmd, Machine, Params};
use super::model::{Draw, Rates, parse_prob, parse_rates};
use super::note::Note;
use crate::cli::{CliError, block_on, open_append};
use crate::config::Cluster;
use crate::node::{Note as _, Rng};
use crate::output::note_time;
use crate::ui::commands::Commands;
use crate::ui::input::Stdin;
use crate::ui::prompt::own_name;
use crate::ui::shell::{Session, command_loop};

/// The model's knobs, the same for one machine, `run`, `sim` and `sweep`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Rates machines pick from at start, in ticks per second: LO..HI (a
    /// whole number, uniformly) or a list A,B,C
    #[arg(long, default_value = "1..6", value_parser = parse_rates, value_name = "RATES")]
    pub rates: Rates,
    /// A tick with an empty queue draws 1..=N: 1 sends to the next
    /// machine, 2 to the other, 3 to all, the rest are internal events
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..=1_000_000), value_name = "N", conflicts_with = "internal_prob")]
    pub event_range: u32,
    /// Instead of --event-range: the probability of an internal event (the
    /// three sends share the rest equally)
    #[arg(long, value_parser = parse_prob, value_name = "P")]
    pub internal_prob: Option<f64>,
}

impl ModelArgs {
    pub fn draw(&self) -> Draw {
        match self.internal_prob {
            Some(p) => Draw::Internal(p),
            None => Draw::Range(self.event_range),
        }
    }
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// This machine's name in the peers file (asked for when omitted on a terminal)
    pub name: Option<String>,
    /// JSON file {"name": "host:port", ...}; default ./peers.json, else the built-in l1..l3 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// This machine's rate in ticks per second (default: drawn from --rates)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=super::model::MAX_RATE as i64), value_name = "N")]
    pub rate: Option<u32>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Append a human-readable line per event (system time, event, queue
    /// length, logical clock) to FILE [default: ./NAME.log]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Append the events as JSON lines to FILE, for `dsys check clocks` and
    /// `dsys clocks report` [default: ./NAME.jsonl]
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write neither the log nor the events
    #[arg(long, conflicts_with_all = ["log", "events"])]
    pub no_log: bool,
    /// Stop after ticking this long (default: until `quit`)
    #[arg(long, value_parser = crate::duration::parse, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// No line per tick (only the rate, problems and `status`)
    #[arg(long, short)]
    pub quiet: bool,
    /// Seed for this machine's draws (default: random)
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub auth: crate::net::auth::AuthArgs,
}

fn commands() -> Commands<Cmd> {
    Commands::new().simple(
        "status",
        "rate, tick, logical clock, queue length, whom it waits for",
        || Cmd::Status,
    )
}

/// Runs one model machine until `quit`, Ctrl-D, Ctrl-C, SIGTERM or the end
/// of `--duration`.
pub async fn run(a: NodeArgs) -> Result<(), CliError> {
    let cluster = Arc::new(Cluster::from_flag(a.peers.as_deref(), "peers.json")?);
    if cluster.len() < 2 {
        return Err(CliError::usage(format!(
            "{}: the model needs at least two machines",
            cluster.source().display()
        )));
    }
    let mut input = Stdin::start();
    let Some(me) = own_name(&mut input, &cluster, a.name.as_deref(), "machines").await? else {
        return Ok(());
    };
    let mut rng = match a.seed {
        Some(s) => Rng::seed_from_u64(s),
        None => Rng::from_os_rng(),
    };
    let rate = a.rate.unwrap_or_else(|| a.model.rates.pick(&mut rng));
    // The assignment's per-machine log and the events: written by default,
    // so that three terminals leave a run to check and report on.
    let (log_path, events_path) = if a.no_log {
        (None, None)
    } else {
        let name = cluster.name(me);
        (
            Some(
                a.log
                    .clone()
                    .unwrap_or_else(|| format!("{name}.log").into()),
            ),
            Some(
                a.events
                    .clone()
                    .unwrap_or_else(|| format!("{name}.jsonl").into()),
            ),
        )
    };
    let mut log = log_path
        .as_deref()
        .map(|p| open_append(p).map(LineWriter::new))
        .transpose()?;
    let done = Arc::new(tokio::sync::Notify::new());
    let present = {
        let (c, quiet, done) = (cluster.clone(), a.quiet, done.clone());
        move |note: &Note, out: &mut dyn Write| {
            if let Some(f) = log.as_mut()
                && let Some(line) = note.event(&c).and_then(|e| e.log_line())
            {
                let t = UNIX_EPOCH + Duration::from_micros(note_time());
                let _ = writeln!(f, "{}  {line}", humantime::format_rfc3339_micros(t));
            }
            if quiet && matches!(note, Note::Tick { .. }) {
                return;
            }
            if let Some(line) = note.line(&c) {
                let _ = writeln!(out, "{line}");
            }
            if let Note::Done { .. } = note {
                done.notify_one();
            }
        }
    };
    let params = Params {
        rate,
        draw: a.model.draw(),
        duration: a.duration,
    };
    let machine = Machine::new(me, cluster.len(), params, rng);
    let session = Session::start(
        cluster.clone(),
        me,
        &a.auth,
        machine,
        events_path.as_ref(),
        present,
    )
    .await?;
    println!(
        "{} listening on {}; {} other machine(s). Type `status` or `quit`.",
        cluster.name(me),
        cluster.addr(me),
        cluster.len() - 1,
    );
    if let (Some(l), Some(e)) = (&log_path, &events_path) {
        println!(
            "Log: {}, events: {} (appended; `dsys clocks report .` studies them, --no-log writes none).",
            l.display(),
            e.display(),
        );
    }
    let table = commands();
    tokio::select! {
        _ = command_loop(&mut input, &table, async |cmd| session.command(cmd).await) => {}
        _ = done.notified() => {}
    }
    session.stop().await;
    Ok(())
}

impl crate::tool::Run for NodeArgs {
    fn run(self) -> crate::cli::Outcome {
        block_on(run(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}
