//! `dsys bench tokenring`: the README's benchmark. Starts N real
//! `dsys tokenring` processes on free loopback ports with `--hop-delay 0ms`,
//! measures token hops per second from one node's `token N` lines, then
//! lock-to-enter latency as a user sees it (from writing `lock` to reading
//! "entered the critical section") on another node.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Options {
    pub nodes: usize,
    pub seconds: f64,
    pub locks: usize,
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Node {
    fn say(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()
    }

    /// Waits for a line containing `needle`; returns when it was read.
    fn wait(&self, needle: &str, limit: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) if l.contains(needle) => return Ok(t),
                Ok(_) => {}
                Err(_) => return Err(format!("no {needle:?} within {limit:?}")),
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.say("quit");
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

pub fn run(o: Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let dir = std::env::temp_dir().join(format!("dsys-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let names: Vec<String> = (1..=o.nodes).map(|i| format!("b{i}")).collect();
    let mut obj = serde_json::Map::new();
    for n in &names {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        obj.insert(n.clone(), format!("127.0.0.1:{port}").into());
    }
    let machines = dir.join("machines.json");
    std::fs::write(&machines, serde_json::Value::Object(obj).to_string())
        .map_err(|e| e.to_string())?;

    let mut nodes = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let next = &names[(i + 1) % names.len()];
        let mut child = Command::new(&exe)
            .args([
                "tokenring",
                n,
                "--next",
                next,
                "--hop-delay",
                "0ms",
                "--machines",
            ])
            .arg(&machines)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {n}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        nodes.push(Node {
            child,
            stdin,
            lines,
        });
    }
    for n in &nodes {
        n.wait("Type `help`", Duration::from_secs(10))?;
    }
    // Past every node's lease quiet period (2s) before anyone locks.
    let born = Instant::now();
    nodes[0].say("start").map_err(|e| e.to_string())?;

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
        locker.say("lock").map_err(|e| e.to_string())?;
        let entered = locker.wait("entered the critical section", Duration::from_secs(10))?;
        waits.push(entered.saturating_duration_since(asked));
        locker.say("unlock").map_err(|e| e.to_string())?;
        locker.wait("left the critical section", Duration::from_secs(10))?;
    }
    waits.sort_unstable();
    if !waits.is_empty() {
        println!(
            "lock-to-enter ({} locks, token moving): median {:.2}ms, p90 {:.2}ms, p99 {:.2}ms, max {:.2}ms",
            waits.len(),
            percentile(&waits, 0.5).as_secs_f64() * 1e3,
            percentile(&waits, 0.9).as_secs_f64() * 1e3,
            percentile(&waits, 0.99).as_secs_f64() * 1e3,
            percentile(&waits, 1.0).as_secs_f64() * 1e3,
        );
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
