//! `dsys clocks run`: the model on real processes. Each run starts one
//! `dsys clocks NAME` process per machine on loopback (free ports, a peers
//! file of its own), each with its log and events under `DIR/run-K/`, waits
//! for them to tick their duration and stop, and goes on to the next run;
//! a progress bar shows where it is. Then it writes the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng as _, SeedableRng};

use super::analysis;
use super::simulate::{RunsArgs, clear_runs, summary_line};
use crate::bench::{Proc, loopback_config};
use crate::cli::{CliError, Outcome};
use crate::node::Rng;

#[derive(Args, Debug)]
#[command(
    after_help = "Each machine is a real `dsys clocks NAME` process on 127.0.0.1, talking\n\
gRPC to the others. Logs go to DIR/run-K/NAME.jsonl (events) and NAME.log (a\n\
line per event); the report to DIR/report.md. `dsys clocks sim` runs the\n\
same model in virtual time, in a fraction of a second."
)]
pub struct RunArgs {
    #[command(flatten)]
    pub runs: RunsArgs,
    /// Where the logs and the report go (earlier runs there are replaced)
    #[arg(long, default_value = "clocks-run", value_name = "DIR")]
    pub out: PathBuf,
    /// Seed of the machines' draws (rates, actions); default: random
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

/// How long machines may take to connect and to stop, beyond their ticking.
const SLACK: Duration = Duration::from_secs(30);

fn model_flags(a: &RunsArgs) -> Vec<String> {
    let mut f = vec!["--rates".to_string(), a.model.rates.to_string()];
    match a.model.internal_prob {
        Some(p) => f.extend(["--internal-prob".to_string(), p.to_string()]),
        None => f.extend(["--event-range".to_string(), a.model.event_range.to_string()]),
    }
    f
}

/// One run: starts the machines, waits for every one to finish.
fn one_run(
    a: &RunsArgs,
    dir: &Path,
    k: u32,
    rng: &mut Rng,
    bar: &ProgressBar,
) -> Result<(), CliError> {
    let names: Vec<String> = (1..=a.machines).map(|i| format!("l{i}")).collect();
    let (tmp, peers) = loopback_config(&format!("clocks-{k}"), &names).map_err(CliError::Failed)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        file: dir.to_path_buf(),
        source,
    })?;
    let mut procs = Vec::new();
    for name in &names {
        let mut args: Vec<String> = [
            "clocks",
            name,
            "--quiet",
            "--peers",
            &peers.display().to_string(),
            "--duration",
            &format!("{}ms", a.duration.as_millis()),
            "--events",
            &dir.join(format!("{name}.jsonl")).display().to_string(),
            "--log",
            &dir.join(format!("{name}.log")).display().to_string(),
            "--seed",
            &rng.random::<u64>().to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(model_flags(a));
        procs.push((name.clone(), Proc::spawn(&args).map_err(CliError::Failed)?));
    }
    let started = Instant::now();
    let limit = a.duration + SLACK;
    let mut left: Vec<usize> = (0..procs.len()).collect();
    while !left.is_empty() {
        let elapsed = started.elapsed();
        bar.set_position(
            ((k - 1) as u64 * a.duration.as_millis() as u64 + elapsed.as_millis() as u64)
                .min(k as u64 * a.duration.as_millis() as u64),
        );
        let mut still = Vec::new();
        for i in left {
            let (name, p) = &mut procs[i];
            match p.wait_exit(Duration::from_millis(20)) {
                Some(s) if s.success() => {}
                Some(s) => {
                    return Err(CliError::Failed(format!(
                        "run {k}: machine {name} exited with {s}; its log is {}",
                        dir.join(format!("{name}.log")).display()
                    )));
                }
                None if elapsed > limit => {
                    return Err(CliError::Failed(format!(
                        "run {k}: machine {name} did not finish within {} (did the machines connect?)",
                        humantime::format_duration(limit)
                    )));
                }
                None => still.push(i),
            }
        }
        left = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(tmp);
    Ok(())
}

impl crate::tool::Run for RunArgs {
    fn run(self) -> Outcome {
        let a = &self.runs;
        clear_runs(&self.out)?;
        let mut rng = match self.seed {
            Some(s) => Rng::seed_from_u64(s),
            None => Rng::from_os_rng(),
        };
        let total_ms = a.runs as u64 * a.duration.as_millis() as u64;
        let bar = ProgressBar::new(total_ms);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {elapsed} of about {duration}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        println!(
            "{} run(s) of {} machines, {} each, on real processes (logs in {}/run-K/)",
            a.runs,
            a.machines,
            humantime::format_duration(a.duration),
            self.out.display()
        );
        for k in 1..=a.runs {
            bar.set_message(format!("run {k}/{}", a.runs));
            let dir = self.out.join(format!("run-{k}"));
            one_run(a, &dir, k, &mut rng, &bar)?;
            let name = format!("run-{k}");
            let files = analysis::find_runs(&dir)
                .map_err(|e| CliError::Failed(e.to_string()))?
                .pop()
                .map(|(_, f)| f)
                .unwrap_or_default();
            let run =
                analysis::read_run(&name, &files).map_err(|e| CliError::Failed(e.to_string()))?;
            bar.suspend(|| println!("{}", summary_line(&run)));
        }
        bar.finish_and_clear();
        let report = super::report::write(&self.out)?;
        println!("report: {}", report.display());
        Ok(crate::cli::Ended::Passed)
    }
}
