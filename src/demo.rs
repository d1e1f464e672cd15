//! What the `dsys demo` commands share: a local cluster on loopback, a
//! stage that timestamps what happens (faults as headlines that stand out),
//! and a set of real nodes in this process that can be killed and restarted.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{Cluster, NodeId};
use crate::driver::{self, Running};
use crate::net::NetError;
use crate::node::Protocol;
use crate::output::Output;

/// Nodes `l1..ln` on 127.0.0.1:50051 and up, or on free ports if those are
/// taken (another demo, or nodes started by hand).
pub fn local_cluster(n: usize) -> std::io::Result<Cluster> {
    let fixed: Vec<String> = (0..n).map(|i| format!("127.0.0.1:{}", 50051 + i)).collect();
    let free = fixed.iter().all(|a| TcpListener::bind(a).is_ok());
    let mut obj = serde_json::Map::new();
    for (i, addr) in fixed.iter().enumerate() {
        let addr = if free {
            addr.clone()
        } else {
            format!("127.0.0.1:{}", crate::net::ports::free_loopback_port()?)
        };
        obj.insert(format!("l{}", i + 1), addr.into());
    }
    if !free {
        println!("(ports 50051.. are busy: using free ports instead)");
    }
    Cluster::parse(
        Path::new("<demo cluster>"),
        &serde_json::Value::Object(obj).to_string(),
    )
    .map_err(std::io::Error::other)
}

/// Prints what happens in a demo with the time since it began, in the
/// order it happened: each node's lines come from its own output thread,
/// so they are held for a moment and printed sorted by when they happened
/// (otherwise a node's "left" could show after the next one's "entered").
#[derive(Clone, Copy)]
pub struct Stage {
    started: Instant,
    started_us: u64,
}

impl Default for Stage {
    fn default() -> Self {
        Stage::new()
    }
}

/// How long a line waits for earlier ones from other threads.
const REORDER: std::time::Duration = std::time::Duration::from_millis(60);

type Held = std::collections::BTreeMap<(u64, u64), String>;

fn held() -> &'static std::sync::Mutex<(Held, u64)> {
    static HELD: std::sync::OnceLock<std::sync::Mutex<(Held, u64)>> = std::sync::OnceLock::new();
    HELD.get_or_init(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(REORDER / 3);
                print_older_than(
                    crate::events::wall_us().saturating_sub(REORDER.as_micros() as u64),
                );
            }
        });
        std::sync::Mutex::new((Held::new(), 0))
    })
}

fn print_older_than(t_us: u64) {
    let Ok(mut h) = held().lock() else { return };
    let keep = h.0.split_off(&(t_us, 0));
    let due = std::mem::replace(&mut h.0, keep);
    let mut out = std::io::stdout().lock();
    for line in due.values() {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

impl Stage {
    pub fn new() -> Stage {
        let _ = held();
        Stage {
            started: Instant::now(),
            started_us: crate::events::wall_us(),
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    fn at(&self, t_us: u64, text: String) {
        if let Ok(mut h) = held().lock() {
            h.1 += 1;
            let seq = h.1;
            h.0.insert((t_us, seq), text);
        }
    }

    /// `[  5.1s] l2: text`, timed by the note being shown if called from a
    /// presenter, else now.
    pub fn line(&self, who: &str, text: &str) {
        let t = match crate::output::note_time() {
            0 => crate::events::wall_us(),
            t => t,
        };
        let secs = t.saturating_sub(self.started_us) as f64 / 1e6;
        self.at(t, format!("[{secs:5.1}s] {who}: {text}"));
    }

    /// A fault or recovery, set apart so it cannot be missed.
    pub fn headline(&self, text: &str) {
        let t = crate::events::wall_us();
        let secs = t.saturating_sub(self.started_us) as f64 / 1e6;
        self.at(t, format!("[{secs:5.1}s] ==== {text} ===="));
    }

    /// Prints every line held back (before a demo's verdict).
    pub fn flush(&self) {
        print_older_than(u64::MAX);
    }
}

struct Slot<P: Protocol> {
    running: Running<P>,
    stop: watch::Sender<bool>,
}

/// Real nodes of one cluster, in this process, sharing a cookie made for
/// the run (nothing else can join them).
pub struct Nodes<P: Protocol> {
    cluster: Arc<Cluster>,
    auth: Arc<crate::net::auth::Auth>,
    slots: Vec<Option<Slot<P>>>,
}

impl<P: Protocol> Nodes<P> {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let slots = cluster.ids().map(|_| None).collect();
        Nodes {
            cluster,
            auth: crate::net::auth::Auth::ephemeral(),
            slots,
        }
    }

    /// Starts `id` (again) with `machine`, its notes going to `output`.
    pub async fn start(
        &mut self,
        id: NodeId,
        machine: P,
        output: Output<P::Note>,
    ) -> Result<(), NetError> {
        let (stop, stop_rx) = watch::channel(false);
        let running = driver::launch(
            machine,
            self.cluster.clone(),
            id,
            self.auth.clone(),
            output,
            stop_rx,
        )
        .await?;
        self.slots[id.index()] = Some(Slot { running, stop });
        Ok(())
    }

    /// Kills `id` like `kill -9`: no goodbye, its state is gone.
    pub async fn kill(&mut self, id: NodeId) {
        if let Some(s) = self.slots[id.index()].take() {
            s.running.task.abort();
            let _ = s.running.task.await;
        }
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id.index()].is_some()
    }

    pub fn commands(&self, id: NodeId) -> Option<&mpsc::Sender<P::Cmd>> {
        self.slots[id.index()].as_ref().map(|s| &s.running.commands)
    }

    /// Sends `cmd` to `id` if it is up and has room (a demo never waits).
    pub fn send(&self, id: NodeId, cmd: P::Cmd) {
        if let Some(c) = self.commands(id) {
            let _ = c.try_send(cmd);
        }
    }

    /// Stops every node gracefully and waits for them.
    pub async fn stop_all(&mut self) {
        for s in self.slots.iter().flatten() {
            let _ = s.stop.send(true);
        }
        for s in self.slots.iter_mut() {
            if let Some(s) = s.take() {
                let _ = s.running.task.await;
            }
        }
    }
}
