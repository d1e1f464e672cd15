//! Helpers for end-to-end tests: real `dsys` processes on free loopback
//! ports, typed into through stdin, read through stdout.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod chat;
pub mod share;
pub mod tmux;

pub const BIN: &str = env!("CARGO_BIN_EXE_dsys");

/// The cluster cookie every process a test starts gets (in `DSYS_COOKIE`):
/// tests never read or make the user's `~/.dsys-cookie`. A test that wants
/// another cookie passes `--cookie FILE`, which comes first.
pub fn cookie() -> &'static str {
    static COOKIE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COOKIE.get_or_init(dsys::net::cookie::new_secret)
}

/// A fresh directory under the target dir (kept for post-mortems).
pub fn temp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Writes a machines file for `names` on free loopback ports.
pub fn machines(dir: &Path, names: &[&str]) -> PathBuf {
    let mut obj = serde_json::Map::new();
    for n in names {
        let port = free_port();
        obj.insert(n.to_string(), format!("127.0.0.1:{port}").into());
    }
    let path = dir.join("machines.txt");
    std::fs::write(&path, serde_json::Value::Object(obj).to_string()).expect("write machines");
    path
}

/// A free loopback port outside the kernel's ephemeral range, so that no
/// outgoing connection can take it before the node binds it.
pub fn free_port() -> u16 {
    dsys::net::ports::free_loopback_port().expect("free port")
}

/// A running `dsys` process.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], cwd: &Path) -> Proc {
        Proc::spawn_via(name, BIN, args, cwd)
    }

    /// `program ARGS` (a wrapper that runs dsys, such as `ip netns exec`),
    /// with the same cookie and pipes as [`Proc::spawn`].
    pub fn spawn_via(name: &str, program: &str, args: &[&str], cwd: &Path) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env(dsys::net::cookie::ENV, cookie())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dsys");
        let out = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    out.lock().unwrap().push(line);
                }
            });
        }
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            out,
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to node");
        stdin.flush().expect("flush");
    }

    /// Writes raw bytes (not necessarily UTF-8) to the node's stdin.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to node");
        stdin.flush().expect("flush");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits (up to `secs`) until `n` lines contain `needle`.
    pub fn wait_for_n(&self, needle: &str, n: usize, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.count(needle) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn wait_for(&self, needle: &str, secs: u64) -> bool {
        self.wait_for_n(needle, 1, secs)
    }

    /// Panics with the node's output when `needle` does not show up.
    pub fn expect(&self, needle: &str, secs: u64) {
        assert!(
            self.wait_for(needle, secs),
            "{}: never printed {needle:?}; output:\n{}",
            self.name,
            self.lines().join("\n")
        );
    }

    /// Panics with the node's output unless `n` lines contain `needle`.
    pub fn expect_n(&self, needle: &str, n: usize, secs: u64) {
        assert!(
            self.wait_for_n(needle, n, secs),
            "{}: printed {needle:?} fewer than {n} times; output:\n{}",
            self.name,
            self.lines().join("\n")
        );
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself (up to `secs`).
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dsys check ALGORITHM` over every `.jsonl` file in `dir`: (exit code,
/// everything it printed).
pub fn check_dir(dir: &Path, algorithm: &str) -> (i32, String) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["check", algorithm];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run(&args, dir);
    (code, format!("{out}{err}"))
}

/// Runs `dsys ARGS` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env(dsys::net::cookie::ENV, cookie())
        .stdin(Stdio::null())
        .output()
        .expect("run dsys");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The subcommands `dsys GROUP --help` lists (`demo`, `sim`, `check`): the
/// registry's own list of algorithms, for "for each algorithm" tests.
pub fn listed(group: &str, dir: &Path) -> Vec<String> {
    let (code, out, err) = run(&[group, "--help"], dir);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}
