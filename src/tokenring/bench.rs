//! `dsys bench tokenring`: the README's benchmark. Starts N real
//! `dsys tokenring` processes on free loopback ports with `--hop-delay 0ms`,
//! measures token hops per second from one node's `token N` lines, then
//! lock-to-enter latency as a user sees it (from writing `lock` to reading
//! "entered the critical section") on another node.

use std::time::{Duration, Instant};

use clap::Args;

use crate::bench::{Proc, loopback_config};
use crate::cli::{CliError, Outcome};
use crate::registry::Run;
use crate::stats::summary;

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
}

impl Run for BenchArgs {
    fn run(self) -> Outcome {
        bench(Options {
            nodes: self.nodes as usize,
            seconds: self.seconds,
            locks: self.locks,
        })
        .map_err(CliError::Failed)?;
        Ok(true)
    }
}

struct Options {
    nodes: usize,
    seconds: f64,
    locks: usize,
}

fn bench(o: Options) -> Result<(), String> {
    let names: Vec<String> = (1..=o.nodes).map(|i| format!("b{i}")).collect();
    let (dir, machines) = loopback_config("tokenring", &names)?;
    let machines = machines.display().to_string();
    let mut nodes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let next = &names[(i + 1) % names.len()];
        let args = [
            "tokenring",
            n,
            "--next",
            next,
            "--hop-delay",
            "0ms",
            "--machines",
            &machines,
        ];
        nodes.push(Proc::spawn(&args.map(String::from))?);
    }
    for n in &nodes {
        n.wait("Type `help`", Duration::from_secs(10))?;
    }
    // Past every node's lease quiet period (2s) before anyone locks.
    let born = Instant::now();
    nodes[0].say("start")?;

    // Hops per second, read off node 1's `token N` lines.
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
    println!(
        "token ring, {} processes on loopback, --hop-delay 0ms: {:.0} hops/s ({} hops in {:.2}s)",
        o.nodes,
        rate,
        h1 - h0,
        (t1 - t0).as_secs_f64()
    );

    // Lock-to-enter latency on the second node.
    if let Some(wait) = Duration::from_millis(2300).checked_sub(born.elapsed()) {
        std::thread::sleep(wait);
    }
    let locker = &mut nodes[1 % o.nodes];
    let mut waits = Vec::with_capacity(o.locks);
    for _ in 0..o.locks {
        while locker.lines.try_recv().is_ok() {}
        let asked = Instant::now();
        locker.say("lock")?;
        let entered = locker.wait("entered the critical section", Duration::from_secs(10))?;
        waits.push(entered.saturating_duration_since(asked));
        locker.say("unlock")?;
        locker.wait("left the critical section", Duration::from_secs(10))?;
    }
    waits.sort_unstable();
    if !waits.is_empty() {
        println!(
            "lock-to-enter ({} locks, token moving): {}",
            waits.len(),
            summary(&waits, &[0.5, 0.9, 0.99, 1.0])
        );
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
