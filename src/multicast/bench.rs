//! `dsys bench multicast`: the README's benchmark. Three real
//! `dsys multicast` processes on loopback. Throughput: each is handed
//! `messages` lines at once and we time until every node has printed every
//! delivery. Latency: at a light load (`light_rate` messages per second over
//! the group), the time from writing a line to a node's stdin to reading
//! its delivery on that node's stdout.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;

use crate::bench::{Proc, loopback_config};
use crate::cli::{CliError, Outcome};
use crate::stats::summary;
use crate::tool::Run;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Number of node processes
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=8))]
    pub nodes: u32,
    /// Messages each node sends at once for the throughput run
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Messages per second over the group for the latency run
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long the latency run lasts, in seconds
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// What protects the links: none (--no-cookie), cookie (the default of
    /// every node) or tls (the cookie over mutual TLS)
    #[arg(long, value_enum, default_value_t = crate::bench::Links::Cookie)]
    pub links: crate::bench::Links,
}

impl Run for BenchArgs {
    fn run(self) -> Outcome {
        bench(Options {
            nodes: self.nodes as usize,
            messages: self.messages,
            light_rate: self.rate,
            light_seconds: self.seconds,
            links: self.links,
        })
        .map_err(CliError::Failed)?;
        Ok(crate::cli::Ended::Passed)
    }
}

struct Options {
    nodes: usize,
    messages: usize,
    light_rate: f64,
    light_seconds: f64,
    links: crate::bench::Links,
}

/// `nodes` multicast processes in one group; returns them and the folder.
fn start(
    nodes: usize,
    links: crate::bench::Links,
) -> Result<(Vec<Proc>, std::path::PathBuf), String> {
    let names: Vec<String> = (1..=nodes).map(|i| format!("m{i}")).collect();
    let (dir, peers) = loopback_config("multicast", &names)?;
    let peers = peers.display().to_string();
    let extra = links.node_args(&dir, &names)?;
    let procs = names
        .iter()
        .map(|n| {
            let mut args: Vec<String> = ["multicast", n, "--plain", "--peers", &peers]
                .map(String::from)
                .to_vec();
            args.extend(extra.iter().cloned());
            Proc::spawn(&args)
        })
        .collect::<Result<_, _>>()?;
    Ok((procs, dir))
}

fn bench(o: Options) -> Result<(), String> {
    // Throughput.
    let (mut nodes, dir) = start(o.nodes, o.links)?;
    std::thread::sleep(Duration::from_secs(1)); // let them join
    let total = o.messages * o.nodes;
    let t0 = Instant::now();
    let mut writers = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        let mut stdin = n.stdin.take().ok_or("no stdin")?;
        let count = o.messages;
        writers.push(std::thread::spawn(move || {
            let mut buf = String::with_capacity(count * 12);
            for k in 0..count {
                buf.push_str(&format!("m{}-{k}\n", i + 1));
            }
            let _ = stdin.write_all(buf.as_bytes());
            let _ = stdin.flush();
            stdin
        }));
    }
    let mut done = Vec::new();
    for n in &nodes {
        let mut got = 0;
        let mut last = t0;
        while got < total {
            match n.lines.recv_timeout(Duration::from_secs(30)) {
                Ok((t, _)) => {
                    got += 1;
                    last = t;
                }
                Err(_) => return Err(format!("a node delivered only {got} of {total} messages")),
            }
        }
        done.push(last);
    }
    let slowest = done.iter().max().copied().unwrap_or(t0) - t0;
    println!(
        "throughput ({}): {} processes each sent {} messages at once; every node delivered all {total} in order in {:.2}s = {:.0} ordered deliveries/s per node",
        o.links.words(),
        o.nodes,
        o.messages,
        slowest.as_secs_f64(),
        total as f64 / slowest.as_secs_f64()
    );
    drop(writers);
    drop(nodes);

    // Latency at a light load.
    let (mut nodes, _) = start(o.nodes, o.links)?;
    std::thread::sleep(Duration::from_secs(1));
    let per_node_gap = Duration::from_secs_f64(o.nodes as f64 / o.light_rate);
    let count = (o.light_rate * o.light_seconds / o.nodes as f64) as usize;
    let mut lat = Vec::new();
    let start_t = Instant::now();
    for k in 0..count {
        for (i, n) in nodes.iter_mut().enumerate() {
            let text = format!("lat-{}-{k}", i + 1);
            let sent = Instant::now();
            if let Some(s) = n.stdin.as_mut() {
                writeln!(s, "{text}").map_err(|e| e.to_string())?;
                s.flush().map_err(|e| e.to_string())?;
            }
            // Its own delivery, on its own stdout (others' lines pass by).
            let want = format!(": {text}");
            loop {
                match n.lines.recv_timeout(Duration::from_secs(10)) {
                    Ok((t, l)) if l.ends_with(&want) => {
                        lat.push(t - sent);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => return Err(format!("no delivery of {text}")),
                }
            }
        }
        let next = start_t + per_node_gap * (k as u32 + 1);
        if let Some(w) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    lat.sort_unstable();
    println!(
        "latency at {:.0} messages/s: {} (stdin write to stdout read, {} messages)",
        o.light_rate,
        summary(&lat, &[0.5, 0.99, 1.0]),
        lat.len()
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
