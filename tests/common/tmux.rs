//! A tmux session for tests that need a real terminal: windows run
//! commands, keys are sent with `send-keys`, the screen is read with
//! `capture-pane`. The session is killed when the value is dropped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub session: String,
}

impl Tmux {
    /// A new detached session of `cols` x `rows` in `dir`.
    pub fn new(tag: &str, dir: &Path, cols: u16, rows: u16) -> Tmux {
        let t = Tmux {
            session: format!("dsys-{tag}-{}", std::process::id()),
        };
        let (x, y) = (cols.to_string(), rows.to_string());
        let d = dir.display().to_string();
        t.cmd(&[
            "new-session",
            "-d",
            "-s",
            &t.session,
            "-x",
            &x,
            "-y",
            &y,
            "-c",
            &d,
            "sleep 600",
        ]);
        t
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("this test needs tmux (apt-get install tmux; .ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A window `name` running the shell command `cmd` in `dir`; it closes
    /// when the command ends.
    pub fn window(&self, name: &str, dir: &Path, cmd: &str) {
        let target = format!("{}:", self.session);
        let d = dir.display().to_string();
        let env = format!("{}={}", dsys::net::cookie::ENV, super::cookie());
        self.cmd(&[
            "new-window",
            "-d",
            "-t",
            &target,
            "-n",
            name,
            "-c",
            &d,
            "-e",
            &env,
            cmd,
        ]);
    }

    pub fn screen(&self, name: &str) -> String {
        self.cmd(&[
            "capture-pane",
            "-p",
            "-t",
            &format!("{}:{name}", self.session),
        ])
    }

    pub fn keys(&self, name: &str, keys: &[&str]) {
        let target = format!("{}:{name}", self.session);
        let mut args = vec!["send-keys", "-t", target.as_str()];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// The screen once it shows `needle`, or after 15 s (the caller asserts).
    pub fn wait_for(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen(name);
            if s.contains(needle) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn has_window(&self, name: &str) -> bool {
        self.cmd(&["list-windows", "-t", &self.session, "-F", "#W"])
            .lines()
            .any(|l| l == name)
    }

    /// Waits up to `secs` for window `name` to close (its command ended).
    pub fn closed(&self, name: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.has_window(name) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-session", "-t", &self.session]);
    }
}
