//! `dsys clocks report DIR`: the lab notebook. Reads the event logs of
//! every run under DIR (real or simulated), studies them (`analysis`),
//! draws the figures (`figures`) and writes `DIR/report.md`: per run the
//! pictures, a table per machine, drift over time, the Lamport check and
//! observations stated from the numbers; then a comparison across runs and
//! the variations they represent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::analysis::{self, Machine, Run};
use super::check::ClocksCheck;
use super::events::Event;
use super::figures;
use crate::cli::{CliError, Outcome};
use crate::events::read_files;

#[derive(Args, Debug)]
#[command(
    after_help = "DIR holds run-1/, run-2/, ... with one NAME.jsonl per machine (as\n\
`dsys clocks run` and `dsys clocks sim` write them), or the .jsonl files of\n\
one run. The report is DIR/report.md, its figures DIR/run-K-*.svg."
)]
pub struct ReportArgs {
    /// The folder with the runs' event logs
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

impl crate::tool::Run for ReportArgs {
    fn run(self) -> Outcome {
        let path = write(&self.dir)?;
        println!("report: {}", path.display());
        Ok(crate::cli::Ended::Passed)
    }
}

/// Studies every run under `dir` and writes the report; returns its path.
pub fn write(dir: &Path) -> Result<PathBuf, CliError> {
    let found = analysis::find_runs(dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut runs = Vec::new();
    let mut checks = Vec::new();
    for (name, files) in &found {
        let run = analysis::read_run(name, files).map_err(|e| CliError::Usage(e.to_string()))?;
        let records = read_files::<Event>(files).map_err(|e| CliError::Usage(e.to_string()))?;
        checks.push(crate::check::check::<ClocksCheck>(&records));
        runs.push(run);
    }
    let mut md = String::new();
    header(&mut md, dir, &runs);
    for (run, check) in runs.iter().zip(&checks) {
        let figs = draw(dir, run)?;
        run_section(&mut md, run, check, &figs);
    }
    comparison(&mut md, &runs);
    let path = dir.join("report.md");
    std::fs::write(&path, md).map_err(|source| CliError::File {
        file: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Draws a run's four figures next to the report; returns their file names.
fn draw(dir: &Path, run: &Run) -> Result<[String; 4], CliError> {
    let names = ["clock", "queue", "jumps", "drift"].map(|k| format!("{}-{k}.svg", run.name));
    let fail = |e: String| CliError::Failed(format!("drawing {}'s figures: {e}", run.name));
    figures::clock(run, &dir.join(&names[0])).map_err(fail)?;
    figures::queue(run, &dir.join(&names[1])).map_err(fail)?;
    figures::jumps(run, &dir.join(&names[2])).map_err(fail)?;
    figures::drift(run, &dir.join(&names[3])).map_err(fail)?;
    Ok(names)
}

fn header(md: &mut String, dir: &Path, runs: &[Run]) {
    let _ = writeln!(md, "# Logical clocks: a scale model, studied\n");
    let _ = writeln!(
        md,
        "{} run(s) from `{}`. Each machine ticks at its own rate; on a tick it takes one \
message off its network queue (clock = max(clock, message) + 1) or, if the queue is empty, \
draws what to do: send its clock to the next machine, to the other, to all, or an internal \
event (clock + 1). Messages arrive at any time. Times are system times since the run began.\n",
        runs.len(),
        dir.display()
    );
    let _ = writeln!(
        md,
        "Contents: {}, [comparison](#comparison-across-runs).\n",
        runs.iter()
            .map(|r| format!("[{0}](#{0})", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn f1(x: f64) -> String {
    format!("{x:.1}")
}

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

fn trend(m: &Machine) -> String {
    if m.queue_grows() {
        format!("grows, {:+.2}/s", m.queue_slope)
    } else if m.max_queue == 0 {
        "always empty".into()
    } else {
        format!("stable ({:+.2}/s)", m.queue_slope)
    }
}

fn run_section(md: &mut String, run: &Run, check: &super::check::ClocksReport, figs: &[String; 4]) {
    let _ = writeln!(md, "## {}\n", run.name);
    let span = run.machines.iter().map(|m| m.active()).fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "Rates: {}; {}; {} s of ticking.\n",
        run.rates_label(),
        run.draw_label(),
        f1(span)
    );
    let captions = [
        "logical clock against system time",
        "network queue length",
        "clock jumps per machine",
        "drift between the clocks",
    ];
    for (f, c) in figs.iter().zip(captions) {
        let _ = writeln!(md, "![{c}]({f})\n");
    }
    let _ = writeln!(
        md,
        "| machine | rate (ticks/s) | ticks | sends | messages sent | receives | internal | mean jump | max jump | max queue | final queue | arrivals/s measured | arrivals/s model | can take/s | queue trend |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for m in &run.machines {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.name,
            m.rate,
            m.ticks,
            m.send_ticks,
            m.messages_sent,
            m.receives,
            m.internals,
            f2(m.mean_jump()),
            m.max_jump(),
            m.max_queue,
            m.final_queue,
            f2(m.arrival_rate),
            f2(m.expected_arrival),
            m.rate,
            trend(m)
        );
    }
    let _ = writeln!(md);
    drift_table(md, run);
    let _ = writeln!(
        md,
        "Lamport check (`dsys check clocks`): {} ({} receives and {} other actions checked).\n",
        if check.violations.is_empty() {
            "every receive set max + 1, every other action + 1, one action per tick, tick counts match the rates".to_string()
        } else {
            format!(
                "**{} VIOLATION(S)**, first: {}",
                check.violations.len(),
                check.violations[0]
            )
        },
        check.receives,
        check.others
    );
    let _ = writeln!(md, "Observations:\n");
    for o in observations(run) {
        let _ = writeln!(md, "- {o}");
    }
    let _ = writeln!(md);
}

fn drift_table(md: &mut String, run: &Run) {
    if run.drift_at.is_empty() {
        return;
    }
    // About ten columns, whatever the run's length.
    let step = run.drift_at.len().div_ceil(10).max(1);
    let picks: Vec<&(f64, u64)> = run
        .drift_at
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == run.drift_at.len() - 1)
        .map(|(_, p)| p)
        .collect();
    let _ = writeln!(
        md,
        "Drift over time (max clock − min clock):\n\n| t (s) | {} |\n|---|{}\n| drift | {} |\n",
        picks
            .iter()
            .map(|p| f1(p.0))
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(picks.len()),
        picks
            .iter()
            .map(|p| p.1.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let at_end: Vec<String> = run
        .machines
        .iter()
        .filter_map(|m| {
            m.clock_at_time(run.common_end)
                .map(|c| format!("{} {c}", m.name))
        })
        .collect();
    let _ = writeln!(
        md,
        "Final drift: **{}** at {} s (clocks: {}).\n",
        run.final_drift,
        f1(run.common_end),
        at_end.join(", ")
    );
}

/// Sentences that state what the numbers of one run show.
pub fn observations(run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(slow), Some(fast)) = (run.slowest(), run.fastest()) else {
        return out;
    };
    let per = |r: u32| if r == 1 { "tick/s" } else { "ticks/s" };
    if slow.queue_grows() {
        out.push(format!(
            "The slowest machine ({}, {} {}) received {} messages/s but takes at most one per tick: its queue grew by {}/s, reaching {} (the model predicts {}/s arriving, {}/s if no sender were ever busy; it can take {}/s, so the queue grows by about {}/s).",
            slow.name,
            slow.rate,
            per(slow.rate),
            f1(slow.arrival_rate),
            f1(slow.queue_slope),
            slow.max_queue,
            f1(slow.expected_arrival),
            f1(slow.naive_arrival),
            slow.rate,
            f1((slow.expected_arrival - slow.rate as f64).max(0.0)),
        ));
    } else {
        out.push(format!(
            "The slowest machine ({}, {} {}) received {} messages/s against the {}/s it can take (the model predicts {}/s): its queue stayed bounded, at most {}.",
            slow.name,
            slow.rate,
            per(slow.rate),
            f2(slow.arrival_rate),
            slow.rate,
            f2(slow.expected_arrival),
            slow.max_queue,
        ));
    }
    for m in run
        .machines
        .iter()
        .filter(|m| m.name != slow.name && m.queue_grows())
    {
        out.push(format!(
            "{} ({} {}) cannot keep up either: {} messages/s in, {}/s out, its queue reached {}.",
            m.name,
            m.rate,
            per(m.rate),
            f1(m.arrival_rate),
            m.rate,
            m.max_queue
        ));
    }
    if slow.rate != fast.rate {
        out.push(format!(
            "Clock jumps: {}'s clock moved by {} per tick on average (largest jump {}): its receives pull it up to the faster machines' clocks. The fastest, {} ({} {}), moved by {} on average (largest {}): few clocks reach it ahead of its own.",
            slow.name,
            f2(slow.mean_jump()),
            slow.max_jump(),
            fast.name,
            fast.rate,
            per(fast.rate),
            f2(fast.mean_jump()),
            fast.max_jump(),
        ));
    } else {
        out.push(format!(
            "Every machine ticks at {} {}: mean jumps {} — with equal rates no clock runs ahead of the others for long.",
            slow.rate,
            per(slow.rate),
            run.machines
                .iter()
                .map(|m| format!("{} {}", m.name, f2(m.mean_jump())))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let lag = run
        .machines
        .iter()
        .filter_map(|m| m.clock_at_time(run.common_end).map(|c| (c, m)))
        .min_by_key(|(c, _)| *c);
    let lead = run
        .machines
        .iter()
        .filter_map(|m| m.clock_at_time(run.common_end).map(|c| (c, m)))
        .max_by_key(|(c, _)| *c);
    if let (Some((lo, lm)), Some((hi, hm))) = (lag, lead) {
        let why = if lm.queue_grows() {
            format!(
                "{} is still reading old messages from its queue ({} waiting), so its clock reflects the past",
                lm.name, lm.final_queue
            )
        } else {
            format!(
                "{} catches up only when a message from a faster machine reaches it",
                lm.name
            )
        };
        out.push(format!(
            "Drift: at the end the clocks spanned {} ({} at {}, {} at {}); {why}.",
            run.final_drift, hm.name, hi, lm.name, lo
        ));
    }
    out
}

/// The variation a run represents: its rate spread and its draw.
fn variation(run: &Run) -> (u32, String) {
    (run.spread(), run.draw_label())
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn comparison(md: &mut String, runs: &[Run]) {
    let _ = writeln!(md, "## Comparison across runs\n");
    let _ = writeln!(
        md,
        "| run | rates | spread | draw | mean jump (slowest) | max jump | final drift | max queue | growing queues |\n|---|---|---:|---|---:|---:|---:|---:|---|"
    );
    for r in runs {
        let growing: Vec<String> = r
            .machines
            .iter()
            .filter(|m| m.queue_grows())
            .map(|m| format!("{} ({:+.1}/s)", m.name, m.queue_slope))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.machines
                .iter()
                .map(|m| m.rate.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            r.spread(),
            r.draw_label(),
            f2(r.slowest().map_or(0.0, Machine::mean_jump)),
            r.max_jump(),
            r.final_drift,
            r.max_queue(),
            if growing.is_empty() {
                "none".to_string()
            } else {
                growing.join(", ")
            }
        );
    }
    let _ = writeln!(md);
    // Grouped by variation.
    let mut groups: BTreeMap<(u32, String), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        groups.entry(variation(r)).or_default().push(r);
    }
    if groups.len() > 1 {
        let _ = writeln!(
            md,
            "By variation (means over the runs of each):\n\n| rate spread | draw | runs | mean jump (slowest) | max jump | final drift | max queue |\n|---:|---|---:|---:|---:|---:|---:|"
        );
        for ((spread, draw), rs) in &groups {
            let _ = writeln!(
                md,
                "| {spread} | {draw} | {} | {} | {} | {} | {} |",
                rs.len(),
                f2(mean(
                    rs.iter()
                        .map(|r| r.slowest().map_or(0.0, Machine::mean_jump))
                )),
                f1(mean(rs.iter().map(|r| r.max_jump() as f64))),
                f1(mean(rs.iter().map(|r| r.final_drift as f64))),
                f1(mean(rs.iter().map(|r| r.max_queue() as f64))),
            );
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "Observations across runs:\n");
    for o in cross_observations(runs) {
        let _ = writeln!(md, "- {o}");
    }
}

/// What the runs show together.
pub fn cross_observations(runs: &[Run]) -> Vec<String> {
    let mut out = Vec::new();
    let growing: Vec<&Run> = runs
        .iter()
        .filter(|r| r.machines.iter().any(Machine::queue_grows))
        .collect();
    out.push(format!(
        "{} of {} runs had a queue that grew without bound: a machine falls behind when more than one message per tick arrives, which happens when it is much slower than the others.",
        growing.len(),
        runs.len()
    ));
    let wide: Vec<&Run> = runs.iter().filter(|r| r.spread() >= 3).collect();
    let narrow: Vec<&Run> = runs.iter().filter(|r| r.spread() < 3).collect();
    if !wide.is_empty() && !narrow.is_empty() {
        out.push(format!(
            "Rate spread: runs whose rates differ by 3 or more ({}) had a mean largest jump of {} and a final drift of {}; runs with a smaller spread ({}) {} and {}.",
            wide.len(),
            f1(mean(wide.iter().map(|r| r.max_jump() as f64))),
            f1(mean(wide.iter().map(|r| r.final_drift as f64))),
            narrow.len(),
            f1(mean(narrow.iter().map(|r| r.max_jump() as f64))),
            f1(mean(narrow.iter().map(|r| r.final_drift as f64))),
        ));
    }
    let mut by_prob: BTreeMap<u64, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        by_prob
            .entry((r.internal_prob() * 1000.0).round() as u64)
            .or_default()
            .push(r);
    }
    if by_prob.len() > 1 {
        let parts: Vec<String> = by_prob
            .iter()
            .map(|(p, rs)| {
                format!(
                    "internal {:.0}%: mean jump {} on the slowest machine, max queue {}",
                    *p as f64 / 10.0,
                    f2(mean(
                        rs.iter()
                            .map(|r| r.slowest().map_or(0.0, Machine::mean_jump))
                    )),
                    f1(mean(rs.iter().map(|r| r.max_queue() as f64)))
                )
            })
            .collect();
        out.push(format!(
            "Internal events: {}. Fewer internal events mean more messages: clocks are synchronised more often (smaller drift between messages), but slow machines receive more than they can take.",
            parts.join("; ")
        ));
    }
    if let Some(r) = runs.iter().max_by_key(|r| r.final_drift) {
        out.push(format!(
            "The largest final drift, {}, was in {} (rates {}).",
            r.final_drift,
            r.name,
            r.rates_label()
        ));
    }
    out
}
