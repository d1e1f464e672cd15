//! Campaigns: many seeded simulator runs, each with its own random faults.
//!
//! A campaign is a scenario generator (seed → the arguments of a `dsys sim`
//! command) and a judge (arguments → pass, or why not). Because a scenario
//! *is* a command line, every failure comes with the exact command that
//! replays it. All seeds run (on every core), and every failing seed is
//! reported, not only the first.

use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng as _;

use crate::node::Rng;

/// One seed that did not pass.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    /// The `dsys sim <algorithm>` arguments of the run.
    pub args: Vec<String>,
    pub why: String,
}

#[derive(Debug)]
pub struct Report {
    pub algorithm: &'static str,
    pub runs: u64,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.failures.is_empty() {
            return write!(f, "{}: all {} seeds passed", self.algorithm, self.runs);
        }
        writeln!(
            f,
            "{}: {} of {} seeds FAILED",
            self.algorithm,
            self.failures.len(),
            self.runs
        )?;
        for fail in &self.failures {
            writeln!(f, "  seed {}: {}", fail.seed, fail.why)?;
            writeln!(f, "    replay: {}", replay(self.algorithm, &fail.args))?;
        }
        Ok(())
    }
}

/// The command that replays a run.
pub fn replay(algorithm: &str, args: &[String]) -> String {
    let mut s = format!("dsys sim {algorithm}");
    for a in args {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:@/=+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `judge(scenario(seed))` for every seed, on every core.
pub fn run(
    algorithm: &'static str,
    seeds: Range<u64>,
    scenario: impl Fn(u64) -> Vec<String> + Sync,
    judge: impl Fn(&[String]) -> Result<(), String> + Sync,
) -> Report {
    let next = AtomicU64::new(seeds.start);
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = std::env::var_os("DSYS_PROGRESS").is_some();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    if progress {
                        eprintln!("{algorithm} seed {seed}");
                    }
                    let args = scenario(seed);
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| judge(&args)))
                            .unwrap_or_else(|p| {
                                Err(format!(
                                    "panicked: {}",
                                    p.downcast_ref::<String>()
                                        .map(String::as_str)
                                        .or_else(|| p.downcast_ref::<&str>().copied())
                                        .unwrap_or("?")
                                ))
                            });
                    if let Err(why) = outcome
                        && let Ok(mut f) = failures.lock()
                    {
                        f.push(Failure { seed, args, why });
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort_by_key(|f| f.seed);
    Report {
        algorithm,
        runs: seeds.end - seeds.start,
        failures,
    }
}

/// Helpers for scenario generators: a command line under construction.
#[derive(Debug, Default)]
pub struct Args(pub Vec<String>);

impl Args {
    pub fn flag(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        self.0.push(name.to_string());
        self.0.push(value.to_string());
        self
    }

    pub fn switch(&mut self, name: &str) -> &mut Self {
        self.0.push(name.to_string());
        self
    }

    /// A random latency distribution (as `--latency` writes it).
    pub fn random_latency(&mut self, rng: &mut Rng, max_ms: u64) -> &mut Self {
        let max_ms = max_ms.max(2);
        let v = match rng.random_range(0..3) {
            0 => format!("{}ms", rng.random_range(1..max_ms)),
            1 => format!("0ms..{}ms", rng.random_range(1..max_ms)),
            _ => format!("exp:1ms+{}ms", rng.random_range(1..max_ms / 2 + 1)),
        };
        self.flag("--latency", v)
    }

    /// `count` crash/restart pairs of random nodes of `l1..l{nodes}`, each
    /// node at most once, crashes within `window`, down for up to `max_down`.
    pub fn random_crashes(
        &mut self,
        rng: &mut Rng,
        nodes: usize,
        count: usize,
        window: (Duration, Duration),
        max_down: Duration,
    ) -> &mut Self {
        let mut used = Vec::new();
        for _ in 0..count {
            let n = rng.random_range(1..=nodes);
            if used.contains(&n) {
                continue;
            }
            used.push(n);
            let at = ms(rng.random_range(window.0.as_millis()..window.1.as_millis()));
            let back = at + ms(rng.random_range(50..max_down.as_millis().max(51)));
            self.flag("--crash", format!("l{n}@{}", time_flag(at)));
            self.flag("--restart", format!("l{n}@{}", time_flag(back)));
        }
        self
    }

    /// A pause (SIGSTOP/SIGCONT) of one random node of `l1..l{nodes}`,
    /// starting within `window`, for up to `max_len`.
    pub fn random_pause(
        &mut self,
        rng: &mut Rng,
        nodes: usize,
        window: (Duration, Duration),
        max_len: Duration,
    ) -> &mut Self {
        let n = rng.random_range(1..=nodes.max(1));
        let from = ms(rng.random_range(window.0.as_millis()..window.1.as_millis()));
        let to = from + ms(rng.random_range(50..max_len.as_millis().max(51)));
        self.flag(
            "--pause",
            format!("l{n}@{}-{}", time_flag(from), time_flag(to)),
        )
    }

    /// A partition of `l1..l{cut}` from the rest, within `window`.
    pub fn random_partition(
        &mut self,
        rng: &mut Rng,
        nodes: usize,
        window: (Duration, Duration),
        max_len: Duration,
    ) -> &mut Self {
        if nodes < 2 {
            return self;
        }
        let cut = rng.random_range(1..nodes);
        let a: Vec<String> = (1..=cut).map(|i| format!("l{i}")).collect();
        let b: Vec<String> = (cut + 1..=nodes).map(|i| format!("l{i}")).collect();
        let from = ms(rng.random_range(window.0.as_millis()..window.1.as_millis()));
        let to = from + ms(rng.random_range(50..max_len.as_millis().max(51)));
        self.flag(
            "--partition",
            format!(
                "{}|{}@{}-{}",
                a.join(","),
                b.join(","),
                time_flag(from),
                time_flag(to)
            ),
        )
    }
}

fn ms(x: u128) -> Duration {
    Duration::from_millis(x as u64)
}

/// A time as the flags write it, exactly (e.g. `3.217s`).
pub fn time_flag(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failing_seed_is_reported_with_its_replay_command() {
        let r = run(
            "demo",
            0..20,
            |seed| {
                vec![
                    "--seed".into(),
                    seed.to_string(),
                    "--partition".into(),
                    "l1|l2@1s-2s".into(),
                ]
            },
            |args| {
                let seed: u64 = args[1].parse().map_err(|_| "bad seed")?;
                if seed % 7 == 3 {
                    Err(format!("seed {seed} is unlucky"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r.runs, 20);
        let failed: Vec<u64> = r.failures.iter().map(|f| f.seed).collect();
        assert_eq!(failed, vec![3, 10, 17]);
        let text = r.to_string();
        assert!(text.contains("3 of 20 seeds FAILED"), "{text}");
        assert!(
            text.contains("replay: dsys sim demo --seed 10 --partition 'l1|l2@1s-2s'"),
            "{text}"
        );
    }
}
