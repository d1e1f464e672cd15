//! The tokio driver: one task owns one node's state machine and `select!`s
//! over inbound messages, link changes, user commands, its timers and
//! shutdown; after every input it carries out the effects (send through the
//! transport, arm timers, hand notes to the user-facing sink, write events).
//!
//! The driver owns no protocol state and knows no algorithm: anything a user
//! sees comes from the `Note`s, through the sink the caller provides.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, warn};

use crate::config::Cluster;
use crate::events::{EventLog, wall_us};
use crate::net::transport::stopped;
use crate::net::{Inbound, Transport, Wire};
use crate::node::{Effect, NodeId, Note as _, Out, Protocol, WireKind};

/// Where a node's notes go (console lines, the critical-section log, ...).
pub type Sink<N> = Box<dyn FnMut(&N) + Send>;

/// Timers in deadline order; ties in the order they were set.
struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: std::collections::HashMap<u64, T>,
    seq: u64,
}

impl<T> Timers<T> {
    fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            pending: Default::default(),
            seq: 0,
        }
    }

    fn set(&mut self, at: Instant, t: T) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, t);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<T> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                let Reverse((_, seq)) = self.heap.pop()?;
                self.pending.remove(&seq)
            }
            _ => None,
        }
    }
}

/// Everything one node needs to run.
pub struct NodeRun<P: Protocol>
where
    P::Msg: Wire,
{
    pub machine: P,
    pub me: NodeId,
    pub cluster: Arc<Cluster>,
    pub transport: Transport<P::Msg>,
    pub inbox: mpsc::UnboundedReceiver<Inbound<P::Msg>>,
    pub commands: mpsc::UnboundedReceiver<P::Cmd>,
    pub sink: Sink<P::Note>,
    pub events: Option<EventLog>,
    /// Turns true for a graceful stop.
    pub shutdown: watch::Receiver<bool>,
    /// Stops the transport, once the last messages had a moment to leave.
    pub net_stop: watch::Sender<bool>,
}

/// How long a stopping node leaves its links open for its last messages.
const LAST_WORDS: Duration = Duration::from_millis(150);

/// Runs the node until shutdown; returns its state machine.
pub async fn run<P: Protocol>(mut node: NodeRun<P>) -> P
where
    P::Msg: Wire,
{
    let started = Instant::now();
    let mut timers: Timers<P::Timer> = Timers::new();
    let mut out: Out<P> = Out::new(Duration::ZERO);
    let mut flush = tokio::time::interval(Duration::from_millis(100));
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut commands_open = true;
    let name = node.cluster.name(node.me).to_string();

    if let Some(log) = &mut node.events {
        let _ = log.write(wall_us(), &name, "start", &Default::default());
    }
    node.machine.on_start(&mut out);
    apply(&mut node, &name, &mut out, &mut timers);
    loop {
        let deadline = timers.next_deadline();
        // A timer already due fires without a trip through tokio's timer
        // wheel (millisecond granularity), but only after pending inbound
        // messages (the select is biased), so zero-delay timers batch work.
        let sleep = async move {
            if let Some(d) = deadline
                && d > Instant::now()
            {
                tokio::time::sleep_until(d).await;
            }
        };
        tokio::select! {
            biased;
            _ = stopped(&mut node.shutdown) => break,
            inbound = node.inbox.recv() => {
                let Some(inbound) = inbound else { break };
                out.set_now(started.elapsed());
                match inbound {
                    Inbound::Msg { from, msg } => node.machine.on_message(from, msg, &mut out),
                    Inbound::Link { peer, up } => node.machine.on_link(peer, up, &mut out),
                }
            }
            cmd = node.commands.recv(), if commands_open => match cmd {
                Some(cmd) => {
                    out.set_now(started.elapsed());
                    node.machine.on_command(cmd, &mut out);
                }
                // End of input does not stop a node; quit, Ctrl-C, SIGTERM do.
                None => commands_open = false,
            },
            _ = sleep, if deadline.is_some() => {
                let now = Instant::now();
                while let Some(t) = timers.pop_due(now) {
                    out.set_now(started.elapsed());
                    node.machine.on_timer(t, &mut out);
                    apply(&mut node, &name, &mut out, &mut timers);
                }
            }
            _ = flush.tick() => {
                if let Some(log) = &mut node.events
                    && let Err(e) = log.flush()
                {
                    error!(error = %e, "cannot write the event log; events stop here");
                    node.events = None;
                }
            }
        }
        apply(&mut node, &name, &mut out, &mut timers);
    }
    out.set_now(started.elapsed());
    node.machine.on_stop(&mut out);
    let had_last_words = !out.is_empty();
    apply(&mut node, &name, &mut out, &mut timers);
    if let Some(log) = &mut node.events {
        let _ = log.flush();
    }
    if had_last_words {
        tokio::time::sleep(LAST_WORDS).await;
    }
    let _ = node.net_stop.send(true);
    node.machine
}

fn apply<P: Protocol>(
    node: &mut NodeRun<P>,
    name: &str,
    out: &mut Out<P>,
    timers: &mut Timers<P::Timer>,
) where
    P::Msg: Wire,
{
    if out.is_empty() {
        return;
    }
    for effect in out.drain() {
        match effect {
            Effect::Send { to, msg } => {
                let kind = msg.kind();
                if let Some(log) = &mut node.events {
                    let _ = log.write_send(wall_us(), name, node.cluster.name(to), kind);
                }
                if let Err(e) = node.transport.send(to, &msg, kind) {
                    warn!(error = %e, "send failed");
                }
            }
            Effect::Timer { after, timer } => timers.set(Instant::now() + after, timer),
            Effect::Note(note) => {
                if let Some(log) = &mut node.events
                    && let Some(ev) = note.event(&node.cluster)
                {
                    let _ = log.write(wall_us(), name, ev.name, &ev.fields);
                    if note.urgent() {
                        let _ = log.flush();
                    }
                }
                (node.sink)(&note);
            }
        }
    }
}

/// A node started by [`launch`].
pub struct Running<P: Protocol> {
    pub commands: mpsc::UnboundedSender<P::Cmd>,
    pub links: Arc<crate::net::LinkTable>,
    pub task: tokio::task::JoinHandle<P>,
}

/// Binds `me`'s address and runs `machine` there until `shutdown`; fails
/// only if it cannot listen.
pub async fn launch<P: Protocol + Send + 'static>(
    machine: P,
    cluster: Arc<Cluster>,
    me: NodeId,
    sink: Sink<P::Note>,
    events: Option<EventLog>,
    shutdown: watch::Receiver<bool>,
) -> Result<Running<P>, crate::net::NetError>
where
    P::Msg: Wire,
{
    // The transport outlives the driver's own shutdown by a moment (see
    // `LAST_WORDS`); dropping `net_stop` (an aborted node) stops it at once.
    let (net_stop, net_stop_rx) = watch::channel(false);
    let (transport, inbox) = Transport::bind(cluster.clone(), me, net_stop_rx).await?;
    let links = transport.links();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(NodeRun {
        machine,
        me,
        cluster,
        transport,
        inbox,
        commands: command_rx,
        sink,
        events,
        shutdown,
        net_stop,
    }));
    Ok(Running {
        commands,
        links,
        task,
    })
}
