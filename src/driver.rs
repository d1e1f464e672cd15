//! The tokio driver: one task owns one node's state machine and `select!`s
//! over inbound messages, link changes, user commands, its timers and
//! shutdown; after every input it carries out the effects (send through the
//! transport, arm timers, hand notes to the output thread).
//!
//! The driver owns no protocol state and knows no algorithm; it runs on any
//! [`Transport`] (gRPC for real nodes, channels in tests). Nothing slow
//! happens here: sends only queue, output goes to a writer thread.
//!
//! Fairness: inbound messages are taken in bursts of at most [`BURST`];
//! between bursts every due timer fires and one waiting user command is
//! taken. A flooded inbox therefore starves neither timers (a lease still
//! expires on time) nor the user, and a zero-delay timer set while handling
//! a burst runs once the burst is done, which is how a machine batches work
//! ("ack when the inbox is drained").

use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::config::{Cluster, NodeId};
use crate::events::{Common, wall_us};
use crate::net::grpc::{GrpcTransport, stopped};
use crate::net::{Inbound, LinkTable, NetError, Transport, Wire};
use crate::node::{Effect, Note, Out, Protocol};
use crate::output::{Item, Output};

/// Most inbound messages handled before due timers get their turn.
pub const BURST: usize = 64;
/// User commands waiting for the node, at most (the reader waits past it).
pub const COMMAND_CAPACITY: usize = 256;
/// How long a stopping node leaves its links open for its last messages.
const LAST_WORDS: Duration = Duration::from_millis(150);

/// A timer waiting to fire; ordered by deadline, then by when it was set.
struct Pending<T> {
    at: Instant,
    seq: u64,
    timer: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Pending<T> {
    // Reversed: BinaryHeap is a max-heap and the earliest must come first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Timers<T> {
    heap: BinaryHeap<Pending<T>>,
    seq: u64,
}

impl<T> Timers<T> {
    fn set(&mut self, at: Instant, timer: T) {
        self.seq += 1;
        self.heap.push(Pending {
            at,
            seq: self.seq,
            timer,
        });
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|p| p.at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek()?.at <= now {
            self.heap.pop().map(|p| p.timer)
        } else {
            None
        }
    }
}

/// Everything one node needs to run.
pub struct Node<P: Protocol, T> {
    pub machine: P,
    pub me: NodeId,
    pub cluster: Arc<Cluster>,
    pub transport: T,
    pub inbox: mpsc::Receiver<Inbound<P::Msg>>,
    pub commands: mpsc::Receiver<P::Cmd>,
    pub output: Output<P::Note>,
    /// Turns true for a graceful stop.
    pub shutdown: watch::Receiver<bool>,
    /// Stops the transport, once the last messages had a moment to leave.
    pub net_stop: watch::Sender<bool>,
}

struct Run<P: Protocol, T> {
    node: Node<P, T>,
    started: Instant,
    timers: Timers<P::Timer>,
    out: Out<P>,
    record_sends: bool,
}

impl<P: Protocol, T: Transport<P::Msg>> Run<P, T> {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Carries out the effects of the last input.
    fn apply(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let t_us = wall_us();
        let node = &mut self.node;
        for effect in self.out.drain() {
            match effect {
                Effect::Send { to, msg } => {
                    let kind = msg.kind();
                    if self.record_sends {
                        node.output.push(Item::Send { t_us, to, kind });
                    }
                    if let Err(e) = node.transport.send(to, &msg) {
                        warn!(error = %e, "send failed");
                    }
                }
                Effect::Timer { after, timer } => self.timers.set(Instant::now() + after, timer),
                Effect::Note(note) => node.output.push(Item::Note { t_us, note }),
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.timers.pop_due(now) {
            self.out.set_now(self.now());
            self.node.machine.on_timer(t, &mut self.out);
            self.apply();
        }
    }

    fn inbound(&mut self, inbound: Inbound<P::Msg>) {
        self.out.set_now(self.now());
        match inbound {
            Inbound::Msg { from, msg } => self.node.machine.on_message(from, msg, &mut self.out),
            Inbound::Link { peer, up } => self.node.machine.on_link(peer, up, &mut self.out),
        }
        self.apply();
    }
}

/// Runs the node until shutdown; returns its state machine.
pub async fn run<P: Protocol, T: Transport<P::Msg>>(node: Node<P, T>) -> P {
    let record_sends = node.output.records_events() && !<P::Note as Note>::LOGS_OWN_SENDS;
    let mut r = Run {
        node,
        started: Instant::now(),
        timers: Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        },
        out: Out::new(Duration::ZERO),
        record_sends,
    };
    let mut commands_open = true;
    r.node.output.push(Item::Common {
        t_us: wall_us(),
        event: Common::Start,
    });
    r.node.machine.on_start(&mut r.out);
    r.apply();
    loop {
        r.fire_due_timers();
        // A flooded inbox must not starve the user either: one waiting
        // command per turn goes first.
        if commands_open && r.node.machine.accepting_commands() {
            match r.node.commands.try_recv() {
                Ok(cmd) => {
                    r.out.set_now(r.now());
                    r.node.machine.on_command(cmd, &mut r.out);
                    r.apply();
                }
                Err(mpsc::error::TryRecvError::Disconnected) => commands_open = false,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
        // Idle (nothing waiting): hand the output over now; busy: when the
        // batch is big or a couple of milliseconds old.
        if r.node.inbox.is_empty() || r.node.output.due() {
            r.node.output.flush(wall_us());
        }
        r.node.output.poke();
        let wake = r.node.output.wake_at().map(Instant::from_std);
        let deadline = match (r.timers.next_deadline(), wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let accepting = commands_open && r.node.machine.accepting_commands();
        let sleep = async move {
            match deadline {
                // Already due (a zero-delay timer): no trip through tokio's
                // timer wheel, whose millisecond ticks would add up to 1 ms;
                // but yield, so the transport's tasks run and inbound
                // messages still go first (biased).
                Some(d) if d <= Instant::now() => tokio::task::yield_now().await,
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = stopped(&mut r.node.shutdown) => break,
            inbound = r.node.inbox.recv() => {
                let Some(inbound) = inbound else { break };
                r.inbound(inbound);
                for _ in 1..BURST {
                    match r.node.inbox.try_recv() {
                        Ok(i) => r.inbound(i),
                        Err(_) => break,
                    }
                }
            }
            cmd = r.node.commands.recv(), if accepting => match cmd {
                Some(cmd) => {
                    r.out.set_now(r.now());
                    r.node.machine.on_command(cmd, &mut r.out);
                    r.apply();
                }
                // No more commands (the user's side is gone); the node runs on
                // until shutdown.
                None => commands_open = false,
            },
            _ = sleep => {}
        }
    }
    // Commands typed before the stop happen first, in order (`lock` then
    // `quit` typed at once must not lose the `lock`).
    while let Ok(cmd) = r.node.commands.try_recv() {
        r.out.set_now(r.now());
        r.node.machine.on_command(cmd, &mut r.out);
        r.apply();
    }
    r.out.set_now(r.now());
    r.node.machine.on_stop(&mut r.out);
    let had_last_words = !r.out.is_empty();
    r.apply();
    r.node.output.push(Item::Common {
        t_us: wall_us(),
        event: Common::Stop,
    });
    r.node.output.flush(wall_us());
    if had_last_words {
        tokio::time::sleep(LAST_WORDS).await;
    }
    let _ = r.node.net_stop.send(true);
    let Run { node, .. } = r;
    node.output.close(wall_us());
    node.machine
}

/// A node started by [`launch`] or [`launch_on`].
pub struct Running<P: Protocol> {
    pub commands: mpsc::Sender<P::Cmd>,
    pub links: Arc<LinkTable>,
    pub task: tokio::task::JoinHandle<P>,
}

/// Binds `me`'s address and runs `machine` there on the gRPC transport
/// (its links proven and checked with `auth`) until `shutdown`; fails only
/// if it cannot listen.
pub async fn launch<P: Protocol>(
    machine: P,
    cluster: Arc<Cluster>,
    me: NodeId,
    auth: Arc<crate::net::auth::Auth>,
    output: Output<P::Note>,
    shutdown: watch::Receiver<bool>,
) -> Result<Running<P>, NetError>
where
    P::Msg: Wire,
{
    // The transport outlives the driver's own shutdown by a moment (see
    // `LAST_WORDS`); dropping `net_stop` (an aborted node) stops it at once.
    let (net_stop, net_stop_rx) = watch::channel(false);
    let (transport, inbox, links) =
        GrpcTransport::<P::Msg>::bind(cluster.clone(), me, auth, net_stop_rx).await?;
    Ok(launch_on(
        machine, cluster, me, transport, inbox, links, output, shutdown, net_stop,
    ))
}

/// Runs `machine` on any transport.
#[allow(clippy::too_many_arguments)]
pub fn launch_on<P: Protocol, T: Transport<P::Msg>>(
    machine: P,
    cluster: Arc<Cluster>,
    me: NodeId,
    transport: T,
    inbox: mpsc::Receiver<Inbound<P::Msg>>,
    links: Arc<LinkTable>,
    output: Output<P::Note>,
    shutdown: watch::Receiver<bool>,
    net_stop: watch::Sender<bool>,
) -> Running<P> {
    let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
    let task = tokio::spawn(run(Node {
        machine,
        me,
        cluster,
        transport,
        inbox,
        commands: command_rx,
        output,
        shutdown,
        net_stop,
    }));
    Running {
        commands,
        links,
        task,
    }
}
