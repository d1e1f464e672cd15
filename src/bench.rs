//! What the `dsys bench` commands share: a loopback config on free ports,
//! and `dsys` child processes typed into through stdin and read, with each
//! line's arrival time, through stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Writes `{name: "127.0.0.1:PORT"}` for free ports into a fresh temp
/// folder named after `tag`; returns (folder, file).
pub fn loopback_config(tag: &str, names: &[String]) -> Result<(PathBuf, PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("dsys-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut obj = serde_json::Map::new();
    for n in names {
        let port = crate::net::ports::free_loopback_port().map_err(|e| e.to_string())?;
        obj.insert(n.clone(), format!("127.0.0.1:{port}").into());
    }
    let file = dir.join("nodes.json");
    std::fs::write(&file, serde_json::Value::Object(obj).to_string()).map_err(|e| e.to_string())?;
    Ok((dir, file))
}

/// The cookie the processes of this run share (in `DSYS_COOKIE`, made up
/// for the run): a benchmark's cluster neither needs nor touches
/// `~/.dsys-cookie`, and nothing outside the run can join it.
pub fn run_cookie() -> &'static str {
    static COOKIE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COOKIE.get_or_init(crate::net::cookie::new_secret)
}

/// What protects a benchmark's links (`--links`): what membership costs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Links {
    /// `--no-cookie`: no challenge, plain TCP.
    None,
    /// The cluster cookie's challenge (what nodes do by default).
    #[default]
    Cookie,
    /// The cookie and mutual TLS (certificates made for the run).
    Tls,
}

impl Links {
    /// The node flags for this protection; makes the run's certificates
    /// in `dir` for `names` when TLS is asked for.
    pub fn node_args(self, dir: &Path, names: &[String]) -> Result<Vec<String>, String> {
        match self {
            Links::None => Ok(vec!["--no-cookie".into()]),
            Links::Cookie => Ok(Vec::new()),
            Links::Tls => {
                let tls = dir.join("tls");
                if !tls.join(crate::net::tls::CA_FILE).exists() {
                    crate::certs::make(&tls, names, &[]).map_err(|e| e.to_string())?;
                }
                Ok(vec!["--tls".into(), tls.display().to_string()])
            }
        }
    }

    /// For the result lines.
    pub fn words(self) -> &'static str {
        match self {
            Links::None => "links without the cookie (--no-cookie)",
            Links::Cookie => "links with the cookie",
            Links::Tls => "links with the cookie over mutual TLS",
        }
    }
}

/// A `dsys` child process; killed when dropped.
pub struct Proc {
    child: Child,
    pub stdin: Option<ChildStdin>,
    /// Stdout lines with the moment each was read.
    pub lines: mpsc::Receiver<(Instant, String)>,
}

impl Proc {
    /// Starts this very binary with `args`, and the cookie of this run.
    pub fn spawn(args: &[String]) -> Result<Proc, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .env(crate::net::cookie::ENV, run_cookie())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dsys {}: {e}", args.join(" ")))?;
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
        Ok(Proc {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    pub fn say(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| e.to_string())
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits for a line containing `needle`; returns when it was read.
    pub fn wait(&self, needle: &str, limit: Duration) -> Result<Instant, String> {
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

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times `count` `lock` → `entered the critical section` round trips on
/// `p` (each followed by `unlock` → `left the critical section`), as a user
/// at its prompt would see them; sorted.
pub fn time_locks(p: &mut Proc, count: usize) -> Result<Vec<Duration>, String> {
    let mut waits = Vec::with_capacity(count);
    for _ in 0..count {
        while p.lines.try_recv().is_ok() {}
        let asked = Instant::now();
        p.say("lock")?;
        let entered = p.wait("entered the critical section", Duration::from_secs(10))?;
        waits.push(entered.saturating_duration_since(asked));
        p.say("unlock")?;
        p.wait("left the critical section", Duration::from_secs(10))?;
    }
    waits.sort_unstable();
    Ok(waits)
}
