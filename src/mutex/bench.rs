//! `dsys bench mutex`: real Ricart–Agrawala processes on loopback, with and
//! without permission reuse, for each cluster size: messages per entry,
//! lock-to-enter latency at low load (one node locking alone), and entries
//! per second with every node contending and zero hold time. Then the
//! token ring's own benchmark on the same sizes, for comparison.

use std::time::Duration;

use clap::Args;

use super::check::MutexCheck;
use super::events::Event;
use crate::bench::{Proc, loopback_config, time_locks};
use crate::check::check;
use crate::cli::{CliError, Outcome};
use crate::events::{read_files, wall_us};
use crate::stats::{percentile, summary};
use crate::tool::Run;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Cluster sizes to measure
    #[arg(short = 'n', long = "nodes", value_delimiter = ',', default_value = "3,5",
          value_parser = clap::value_parser!(u32).range(2..=16))]
    pub nodes: Vec<u32>,
    /// How many lock/unlock cycles to time at low load
    #[arg(long, default_value_t = 200)]
    pub locks: usize,
    /// How long every node contends, in seconds
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Skip the token ring's benchmark
    #[arg(long)]
    pub no_tokenring: bool,
}

impl Run for BenchArgs {
    fn run(self) -> Outcome {
        if !(self.seconds > 0.0 && self.seconds <= 600.0) {
            return Err(CliError::usage(format!(
                "--seconds {}: give a time from 0 to 600 seconds",
                self.seconds
            )));
        }
        let mut ok = true;
        for &n in &self.nodes {
            for reuse in [false, true] {
                ok &= measure(&self, n as usize, reuse).map_err(CliError::Failed)?;
            }
        }
        if !self.no_tokenring {
            for &n in &self.nodes {
                println!("--- the token ring on the same machine, {n} processes ---");
                let args: Vec<String> = [
                    "bench",
                    "tokenring",
                    "--nodes",
                    &n.to_string(),
                    "--seconds",
                    "2",
                    "--locks",
                    &self.locks.to_string(),
                    "--placement",
                    "spread",
                ]
                .map(String::from)
                .to_vec();
                let mut p = Proc::spawn(&args).map_err(CliError::Failed)?;
                while let Ok((_, line)) = p.lines.recv_timeout(Duration::from_secs(120)) {
                    println!("{line}");
                }
                ok &= p
                    .wait_exit(Duration::from_secs(10))
                    .is_some_and(|s| s.success());
            }
        }
        Ok(crate::cli::Ended::passed_if(ok))
    }
}

fn measure(o: &BenchArgs, n: usize, reuse: bool) -> Result<bool, String> {
    let names: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
    let tag = format!("mutex{n}{}", if reuse { "r" } else { "" });
    let (dir, machines) = loopback_config(&tag, &names)?;
    let machines = machines.display().to_string();
    let mut nodes = Vec::new();
    for name in &names {
        let mut args: Vec<String> = [
            "mutex",
            name,
            "--machines",
            &machines,
            "--hold",
            "0ms",
            "--quiet",
            "--events",
        ]
        .map(String::from)
        .to_vec();
        args.push(dir.join(format!("{name}.jsonl")).display().to_string());
        if reuse {
            args.push("--reuse-permissions".into());
        }
        nodes.push(Proc::spawn(&args)?);
    }
    for p in &nodes {
        p.wait("Type `help`", Duration::from_secs(10))?;
    }
    // Every node greets the others; let the links come up.
    std::thread::sleep(Duration::from_millis(300));

    // Low load: one node locks and unlocks, nobody else wants in.
    let waits = time_locks(&mut nodes[0], o.locks)?;

    // Contention: every node locks again as soon as it is out.
    let contended_from = wall_us();
    for p in &mut nodes {
        p.say("auto 0ms")?;
    }
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    let contended_to = wall_us();
    for p in &mut nodes {
        p.say("auto off")?;
    }
    std::thread::sleep(Duration::from_millis(300));
    for p in &mut nodes {
        let _ = p.say("quit");
    }
    for p in &mut nodes {
        p.wait_exit(Duration::from_secs(10));
    }
    drop(nodes);

    // The logs come back sorted by time: the phases are slices of them.
    let files: Vec<_> = names
        .iter()
        .map(|n| dir.join(format!("{n}.jsonl")))
        .collect();
    let records = read_files::<Event>(&files).map_err(|e| e.to_string())?;
    let busy_from = records.partition_point(|r| r.t_us < contended_from);
    let busy_to = records.partition_point(|r| r.t_us <= contended_to);
    let whole = check::<MutexCheck>(&records);
    let low = check::<MutexCheck>(&records[..busy_from]);
    let high = check::<MutexCheck>(&records[busy_from..busy_to]);
    let entries_per_s = high.total_entries() as f64 / o.seconds;
    let mode = if reuse {
        "permissions reused"
    } else {
        "permissions per request"
    };
    println!("mutex, {n} processes on loopback, {mode}, --events on:");
    println!(
        "  low load (one node, {} locks): {:.2} messages per entry; lock-to-enter {}",
        waits.len(),
        low.messages_per_entry(),
        summary(&waits, &[0.5, 0.9, 0.99, 1.0])
    );
    let mut busy_waits = high.waits_us.clone();
    busy_waits.sort_unstable();
    println!(
        "  every node contending, hold 0: {entries_per_s:.0} entries/s ({} entries in {:.1}s), {:.2} messages per entry, request-to-enter median {:.2}ms",
        high.total_entries(),
        o.seconds,
        high.messages_per_entry(),
        percentile(&busy_waits, 0.5) as f64 / 1e3
    );
    println!(
        "  event logs: {} entries checked; mutual exclusion {}, priority {}, every request {}",
        whole.total_entries(),
        if whole.violations.is_empty() {
            "held"
        } else {
            "VIOLATED"
        },
        if whole.out_of_order.is_empty() {
            "held"
        } else {
            "VIOLATED"
        },
        if whole.pending.is_empty() {
            "granted"
        } else {
            "NOT granted"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(whole.safe() && whole.pending.is_empty())
}
