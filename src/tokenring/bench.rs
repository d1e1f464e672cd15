//! `dsys bench tokenring`: the benchmark of docs/tokenring.md. Starts N
//! real `dsys tokenring` processes on free loopback ports with
//! `--hop-delay 0ms` and `--events`, measures token hops per second from
//! one node's `token N` lines, then lock-to-enter latency as a user sees it
//! (from writing `lock` to reading "entered the critical section") on
//! another node, and finally checks the nodes' event logs.
//!
//! It does this twice: with every process on one core, and spread over the
//! cores as the OS likes. The token is one message in flight, so a hop's
//! time is the receiver's wake-up plus its work; on a virtual machine a
//! wake-up across cores (an interrupt through the hypervisor) costs far
//! more than the work, and the first figure shows what the software costs.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use super::check::TokenRingCheck;
use crate::bench::{Proc, loopback_config, time_locks};
use crate::check::check;
use crate::cli::{CliError, Outcome};
use crate::events::read_files;
use crate::stats::summary;
use crate::tool::Run;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    // (Plain comments: doc comments would switch --help to the long layout.)
    // Every process on one core.
    OneCore,
    // Wherever the OS puts them.
    Spread,
    // One run of each.
    Both,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Number of node processes
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=16))]
    pub nodes: u32,
    /// How long to count hops, in seconds
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// How many lock/unlock cycles to time
    #[arg(long, default_value_t = 200)]
    pub locks: usize,
    /// Run the nodes without --events (by default each writes its event log)
    #[arg(long)]
    pub no_events: bool,
    /// Where the node processes run: one-core (all on one core), spread (where
    /// the OS puts them) or both (one run of each)
    #[arg(long, value_enum, default_value_t = Placement::Both)]
    pub placement: Placement,
    /// What protects the links: none (--no-cookie), cookie (the default of
    /// every node) or tls (the cookie over mutual TLS)
    #[arg(long, value_enum, default_value_t = crate::bench::Links::Cookie)]
    pub links: crate::bench::Links,
}

impl Run for BenchArgs {
    fn run(self) -> Outcome {
        let placements = match self.placement {
            Placement::Both => vec![Placement::OneCore, Placement::Spread],
            p => vec![p],
        };
        let mut ok = true;
        for p in placements {
            ok &= bench(&self, p).map_err(CliError::Failed)?;
        }
        Ok(crate::cli::Ended::passed_if(ok))
    }
}

/// Sets the CPUs this thread (and the processes it starts) may run on;
/// returns the ones it had.
fn pin(placement: Placement) -> Result<CpuSet, String> {
    let all = sched_getaffinity(Pid::from_raw(0)).map_err(|e| format!("cpu affinity: {e}"))?;
    if placement == Placement::OneCore {
        let first = (0..CpuSet::count())
            .find(|&c| all.is_set(c).unwrap_or(false))
            .ok_or("no CPU to run on")?;
        let mut one = CpuSet::new();
        one.set(first).map_err(|e| format!("cpu affinity: {e}"))?;
        sched_setaffinity(Pid::from_raw(0), &one).map_err(|e| format!("cpu affinity: {e}"))?;
    }
    Ok(all)
}

fn bench(o: &BenchArgs, placement: Placement) -> Result<bool, String> {
    let all = pin(placement)?;
    let result = measure(o, placement);
    // This thread (and what it starts next) may run anywhere again.
    let _ = sched_setaffinity(Pid::from_raw(0), &all);
    result
}

fn measure(o: &BenchArgs, placement: Placement) -> Result<bool, String> {
    let n = o.nodes as usize;
    let names: Vec<String> = (1..=n).map(|i| format!("b{i}")).collect();
    let (dir, machines) = loopback_config("tokenring", &names)?;
    let machines = machines.display().to_string();
    let links = o.links.node_args(&dir, &names)?;
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let next = &names[(i + 1) % n];
        let mut args: Vec<String> = [
            "tokenring",
            name,
            "--next",
            next,
            "--hop-delay",
            "0ms",
            "--machines",
            &machines,
        ]
        .map(String::from)
        .to_vec();
        // Hops are counted from the first node's `token N` lines; the
        // others need not print theirs.
        if i > 0 {
            args.push("--quiet".into());
        }
        if !o.no_events {
            args.push("--events".into());
            args.push(dir.join(format!("{name}.jsonl")).display().to_string());
        }
        args.extend(links.iter().cloned());
        nodes.push(Proc::spawn(&args)?);
    }
    for p in &nodes {
        p.wait("Type `help`", Duration::from_secs(10))?;
    }
    let born = Instant::now();
    nodes[0].say("start")?;

    // Hops per second, read off the first node's `token N` lines.
    let watcher = &nodes[0];
    watcher.wait("token ", Duration::from_secs(10))?;
    let warmup = Instant::now() + Duration::from_millis(500);
    let end = warmup + Duration::from_secs_f64(o.seconds);
    let mut first: Option<(Instant, u64)> = None;
    let mut last: Option<(Instant, u64)> = None;
    while Instant::now() < end {
        let Ok((t, l)) = watcher.lines.recv_timeout(Duration::from_secs(2)) else {
            return Err("the token stopped moving".into());
        };
        let Some(hop) = l.strip_prefix("token ").and_then(|h| h.parse::<u64>().ok()) else {
            continue;
        };
        if t < warmup {
            continue;
        }
        first.get_or_insert((t, hop));
        last = Some((t, hop));
    }
    let (Some((t0, h0)), Some((t1, h1))) = (first, last) else {
        return Err("no token lines to measure".into());
    };
    let rate = (h1 - h0) as f64 / (t1 - t0).as_secs_f64();
    let place = match placement {
        Placement::OneCore => "sharing one core",
        _ => "placed by the OS",
    };
    println!(
        "token ring, {n} processes on loopback {place}, {}, --hop-delay 0ms{}: {rate:.0} hops/s ({} hops in {:.2}s)",
        o.links.words(),
        if o.no_events { "" } else { ", --events on" },
        h1 - h0,
        (t1 - t0).as_secs_f64()
    );

    // Lock-to-enter latency on the second node. Past every node's lease
    // quiet period (2s) first.
    if let Some(wait) = Duration::from_millis(2300).checked_sub(born.elapsed()) {
        std::thread::sleep(wait);
    }
    let waits = time_locks(&mut nodes[1 % n], o.locks)?;
    if !waits.is_empty() {
        println!(
            "  lock-to-enter ({} locks, token moving): {}",
            waits.len(),
            summary(&waits, &[0.5, 0.9, 0.99, 1.0])
        );
    }
    for p in &mut nodes {
        let _ = p.say("quit");
    }
    for p in &mut nodes {
        p.wait_exit(Duration::from_secs(10));
    }
    drop(nodes);
    let ok = if o.no_events {
        true
    } else {
        check_events(&dir, &names)?
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}

/// Mutual exclusion over the nodes' event logs.
fn check_events(dir: &Path, names: &[String]) -> Result<bool, String> {
    let files: Vec<_> = names
        .iter()
        .map(|n| dir.join(format!("{n}.jsonl")))
        .collect();
    let records = read_files(&files).map_err(|e| e.to_string())?;
    let r = check::<TokenRingCheck>(&records);
    println!(
        "  event logs: {} events; mutual exclusion {} over {} critical-section entries",
        records.len(),
        if r.safe() { "held" } else { "VIOLATED" },
        r.total_entries()
    );
    Ok(r.safe())
}
