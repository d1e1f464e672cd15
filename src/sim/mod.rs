//! The deterministic simulator: N instances of any `Protocol` in virtual
//! time, on a seeded network with faults.
//!
//! Everything random (latency, loss, duplication, each node's own RNG) comes
//! from one seed, and events at the same virtual instant run in the order
//! they were scheduled, so a seed replays the same run byte for byte.
//!
//! The network mirrors the real transport (`crate::net`): links are FIFO
//! (unless `NetModel::reorder`), every message goes through its algorithm's
//! codec size check (over the limit it is refused, as the real transport
//! refuses it), and a link *breaks* when a message cannot arrive (the peer
//! crashed, a partition, or random loss). A broken link drops everything
//! sent on it until the sender has heard "link down" (after two latencies,
//! as a gRPC client would); its next message then reconnects ("link up")
//! if the peer can be reached. A crash throws the node's state away; a
//! restart builds a fresh instance.
//!
//! This module owns time and delivery. What the nodes are asked to do (the
//! workload) and what is checked afterwards belong to the caller.

pub mod campaign;
pub mod faults;
pub mod net;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::io;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};

use crate::config::{Cluster, NodeId};
use crate::events::{Common, Entry, EventLog, Record};
use crate::net::{MAX_MESSAGE_BYTES, Wire};
use crate::node::{Effect, Note as _, Out, Protocol, Rng};
pub use faults::{FaultArgs, Faults, NetArgs, Partition};
pub use net::{Latency, NetModel};

/// Something that happened in a step, for the caller's workload and checks.
#[derive(Debug)]
pub enum Happening<N> {
    Note(NodeId, N),
    Crash(NodeId),
    Restart(NodeId),
}

impl<N: crate::node::Note> Happening<N> {
    /// The event record of this happening at `now`, as a checker reads it
    /// (notes without an event have none).
    pub fn record(&self, cluster: &Cluster, now: Duration) -> Option<Record<N::Event>> {
        let (node, entry) = match self {
            Happening::Note(n, note) => (*n, Entry::Algo(note.event(cluster)?)),
            Happening::Crash(n) => (*n, Entry::Common(Common::Crash)),
            Happening::Restart(n) => (*n, Entry::Common(Common::Restart)),
        };
        Some(Record {
            t_us: now.as_micros() as u64,
            node: cluster.name(node).to_string(),
            entry,
        })
    }
}

enum Item<P: Protocol> {
    Deliver {
        from: NodeId,
        to: NodeId,
        incarnation: u32,
        msg: P::Msg,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        timer: P::Timer,
    },
    /// The sender of a broken link hears that it is down.
    LinkDown {
        node: NodeId,
        incarnation: u32,
        peer: NodeId,
    },
    /// The sender's next message got through: the link is up again.
    LinkUp {
        node: NodeId,
        incarnation: u32,
        peer: NodeId,
    },
    Command(NodeId, P::Cmd),
    /// A node's first start (time zero).
    Boot(NodeId),
    Crash(NodeId),
    Restart(NodeId),
    Cut(Vec<(NodeId, NodeId)>),
    Heal(Vec<(NodeId, NodeId)>),
    /// The node stops (SIGSTOP) until the given time.
    Pause(NodeId, Duration),
}

impl<P: Protocol> Item<P> {
    /// The node that handles this item, for the ones a paused node cannot.
    fn for_node(&self) -> Option<NodeId> {
        match self {
            Item::Deliver { to, .. } => Some(*to),
            Item::Timer { node, .. }
            | Item::LinkDown { node, .. }
            | Item::LinkUp { node, .. }
            | Item::Command(node, _) => Some(*node),
            _ => None,
        }
    }
}

struct Scheduled<P: Protocol> {
    at: Duration,
    seq: u64,
    item: Item<P>,
}

impl<P: Protocol> PartialEq for Scheduled<P> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<P: Protocol> Eq for Scheduled<P> {}
impl<P: Protocol> PartialOrd for Scheduled<P> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<P: Protocol> Ord for Scheduled<P> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Slot<P> {
    machine: Option<P>,
    incarnation: u32,
    /// Stopped until then: everything for it waits (a crash ends it).
    paused_until: Option<Duration>,
}

/// A directed link, as its sender's transport sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkSt {
    /// Messages flow (or would be tried).
    Up,
    /// The stream broke; the sender has not heard yet, and everything it
    /// sends on this link is lost until it does.
    Breaking,
    /// The sender knows; its next message tries to reconnect.
    Down,
}

/// Message counts of a run.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    /// Messages over the size limit, refused at the sender.
    pub too_large: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The largest message sent, in bytes.
    pub largest: usize,
}

impl Traffic {
    /// `messages: 120 sent, 118 delivered, 2 lost; by kind: ...`
    pub fn summary(&self) -> String {
        let mut s = format!(
            "messages: {} sent, {} delivered, {} lost or undeliverable",
            self.sent, self.delivered, self.lost
        );
        if self.too_large > 0 {
            s.push_str(&format!(
                ", {} REFUSED as over the {}-byte limit",
                self.too_large, MAX_MESSAGE_BYTES
            ));
        }
        if !self.by_kind.is_empty() {
            let kinds: Vec<String> = self
                .by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("\nsent by kind: {}", kinds.join(", ")));
        }
        s
    }
}

/// Builds a node's state machine: its id, its own RNG, and the virtual time
/// it boots at (a restart boots later than the node's earlier life).
type Factory<P> = Box<dyn FnMut(NodeId, Rng, Duration) -> P>;

pub struct Sim<P: Protocol> {
    cluster: Cluster,
    net: NetModel,
    now: Duration,
    seq: u64,
    rng: Rng,
    queue: BinaryHeap<Scheduled<P>>,
    slots: Vec<Slot<P>>,
    factory: Factory<P>,
    /// Per directed link: the last scheduled arrival (FIFO order).
    link_tail: HashMap<(NodeId, NodeId), Duration>,
    /// Directed links that are cut.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Per directed link: its state (absent: up).
    links: HashMap<(NodeId, NodeId), LinkSt>,
    log: Option<EventLog>,
    pub traffic: Traffic,
    out: Out<P>,
}

impl<P: Protocol> Sim<P> {
    /// Builds a simulation of every node in `cluster`, each made by `factory`
    /// with its own RNG derived from `seed`, and starts them at time zero.
    pub fn new(
        cluster: Cluster,
        net: NetModel,
        seed: u64,
        factory: impl FnMut(NodeId, Rng, Duration) -> P + 'static,
    ) -> Self {
        let n = cluster.len();
        let mut sim = Sim {
            cluster,
            net,
            now: Duration::ZERO,
            seq: 0,
            rng: Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            slots: (0..n)
                .map(|_| Slot {
                    machine: None,
                    incarnation: 0,
                    paused_until: None,
                })
                .collect(),
            factory: Box::new(factory),
            link_tail: HashMap::new(),
            cut: BTreeSet::new(),
            links: HashMap::new(),
            log: None,
            traffic: Traffic::default(),
            out: Out::new(Duration::ZERO),
        };
        // Every node exists from time zero; each starts (its `on_start`)
        // when the run begins, so that a log set up before then sees
        // everything, and no node's first message finds a peer missing.
        for id in 0..n as u32 {
            let rng = Rng::seed_from_u64(sim.rng.random());
            let slot = &mut sim.slots[id as usize];
            slot.incarnation = 1;
            slot.machine = Some((sim.factory)(NodeId(id), rng, Duration::ZERO));
            sim.push(Duration::ZERO, Item::Boot(NodeId(id)));
        }
        sim
    }

    /// Writes every event (virtual `t_us`) to `log`; call before running.
    pub fn log_to(&mut self, log: EventLog) {
        self.log = Some(log);
    }

    pub fn finish_log(&mut self) -> io::Result<()> {
        match &mut self.log {
            Some(l) => l.flush(),
            None => Ok(()),
        }
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.slots[node.index()].machine.is_some()
    }

    pub fn machine(&self, node: NodeId) -> Option<&P> {
        self.slots[node.index()].machine.as_ref()
    }

    fn push(&mut self, at: Duration, item: Item<P>) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            item,
        });
    }

    pub fn command_at(&mut self, at: Duration, node: NodeId, cmd: P::Cmd) {
        self.push(at.max(self.now), Item::Command(node, cmd));
    }

    pub fn crash_at(&mut self, at: Duration, node: NodeId) {
        self.push(at.max(self.now), Item::Crash(node));
    }

    pub fn restart_at(&mut self, at: Duration, node: NodeId) {
        self.push(at.max(self.now), Item::Restart(node));
    }

    /// Stops `node` at `at` (as SIGSTOP would) and resumes it at `until`:
    /// messages, timers and commands for it wait until then, in order.
    pub fn pause_at(&mut self, at: Duration, node: NodeId, until: Duration) {
        self.push(at.max(self.now), Item::Pause(node, until));
    }

    /// Cuts every link between the two sides (both directions) at `at`.
    pub fn partition_at(&mut self, at: Duration, side_a: &[NodeId], side_b: &[NodeId]) {
        let links = cross(side_a, side_b);
        self.push(at.max(self.now), Item::Cut(links));
    }

    pub fn heal_at(&mut self, at: Duration, side_a: &[NodeId], side_b: &[NodeId]) {
        let links = cross(side_a, side_b);
        self.push(at.max(self.now), Item::Heal(links));
    }

    /// Runs the next instant's first item, if it is not later than `until`.
    /// Returns what happened, or `None` when nothing is left before `until`
    /// (virtual time then stands at `until`).
    pub fn step(&mut self, until: Duration) -> Option<Vec<Happening<P::Note>>> {
        if self.queue.peek().is_none_or(|s| s.at > until) {
            self.now = self.now.max(until);
            return None;
        }
        let Scheduled { at, item, .. } = self.queue.pop()?;
        self.now = at;
        let mut happened = Vec::new();
        // A paused node handles nothing until it resumes; what is for it
        // waits, in the order it came.
        if let Some(node) = item.for_node()
            && let Some(until) = self.slots[node.index()].paused_until
        {
            if at < until {
                self.push(until, item);
                return Some(happened);
            }
            self.slots[node.index()].paused_until = None;
        }
        match item {
            Item::Deliver {
                from,
                to,
                incarnation,
                msg,
            } => {
                let slot = &self.slots[to.index()];
                if slot.incarnation != incarnation
                    || slot.machine.is_none()
                    || self.cut.contains(&(from, to))
                {
                    // The stream broke under it.
                    self.traffic.lost += 1;
                    self.break_link(from, to);
                } else {
                    self.traffic.delivered += 1;
                    self.drive(to, &mut happened, |m, out| m.on_message(from, msg, out));
                }
            }
            Item::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.slots[node.index()].incarnation == incarnation {
                    self.drive(node, &mut happened, |m, out| m.on_timer(timer, out));
                }
            }
            Item::LinkDown {
                node,
                incarnation,
                peer,
            } => {
                if self.slots[node.index()].incarnation == incarnation {
                    self.links.insert((node, peer), LinkSt::Down);
                    self.drive(node, &mut happened, |m, out| m.on_link(peer, false, out));
                }
            }
            Item::LinkUp {
                node,
                incarnation,
                peer,
            } => {
                if self.slots[node.index()].incarnation == incarnation {
                    self.drive(node, &mut happened, |m, out| m.on_link(peer, true, out));
                }
            }
            Item::Command(node, cmd) => {
                self.drive(node, &mut happened, |m, out| m.on_command(cmd, out));
            }
            Item::Boot(node) => {
                self.log_common(node, Common::Start);
                self.drive(node, &mut happened, |m, out| m.on_start(out));
            }
            Item::Crash(node) => {
                let slot = &mut self.slots[node.index()];
                slot.paused_until = None;
                if slot.machine.take().is_some() {
                    slot.incarnation += 1;
                    self.log_common(node, Common::Crash);
                    happened.push(Happening::Crash(node));
                }
            }
            Item::Restart(node) => {
                if self.slots[node.index()].machine.is_none() {
                    self.log_common(node, Common::Restart);
                    happened.push(Happening::Restart(node));
                    // A new process has no streams: its links start afresh.
                    for peer in self.cluster.ids() {
                        self.links.remove(&(node, peer));
                    }
                    self.boot(node, &mut happened);
                }
            }
            Item::Pause(node, until) => {
                let slot = &mut self.slots[node.index()];
                if slot.machine.is_some() {
                    slot.paused_until = Some(until.max(slot.paused_until.unwrap_or_default()));
                }
            }
            Item::Cut(links) => self.cut.extend(links),
            Item::Heal(links) => {
                for l in links {
                    self.cut.remove(&l);
                }
            }
        }
        Some(happened)
    }

    /// Runs until virtual time `until`, handing every happening to `observe`.
    pub fn run_until(
        &mut self,
        until: Duration,
        mut observe: impl FnMut(&mut Self, Happening<P::Note>),
    ) {
        while let Some(happened) = self.step(until) {
            for h in happened {
                observe(self, h);
            }
        }
    }

    fn boot(&mut self, node: NodeId, happened: &mut Vec<Happening<P::Note>>) {
        let rng = Rng::seed_from_u64(self.rng.random());
        let slot = &mut self.slots[node.index()];
        slot.incarnation += 1;
        slot.machine = Some((self.factory)(node, rng, self.now));
        self.drive(node, happened, |m, out| m.on_start(out));
    }

    fn drive(
        &mut self,
        node: NodeId,
        happened: &mut Vec<Happening<P::Note>>,
        f: impl FnOnce(&mut P, &mut Out<P>),
    ) {
        let Some(machine) = self.slots[node.index()].machine.as_mut() else {
            return;
        };
        self.out.set_now(self.now);
        f(machine, &mut self.out);
        let effects: Vec<_> = self.out.drain().collect();
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => self.send(node, to, msg),
                Effect::Timer { after, timer } => {
                    let incarnation = self.slots[node.index()].incarnation;
                    self.push(
                        self.now + after,
                        Item::Timer {
                            node,
                            incarnation,
                            timer,
                        },
                    );
                }
                Effect::Note(note) => {
                    if let Some(log) = &mut self.log
                        && let Some(ev) = note.event(&self.cluster)
                    {
                        let _ =
                            log.write(self.now.as_micros() as u64, self.cluster.name(node), &ev);
                    }
                    happened.push(Happening::Note(node, note));
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        self.traffic.sent += 1;
        *self.traffic.by_kind.entry(msg.kind()).or_default() += 1;
        let size = msg.encoded_len(&self.cluster);
        self.traffic.largest = self.traffic.largest.max(size);
        if size > MAX_MESSAGE_BYTES {
            // Refused at the sender, as the real transport refuses it.
            self.traffic.too_large += 1;
            return;
        }
        if !<P::Note as crate::node::Note>::LOGS_OWN_SENDS {
            self.log_common(
                from,
                Common::Send {
                    to: self.cluster.name(to).to_string(),
                    kind: msg.kind().to_string(),
                },
            );
        }
        let reachable = self.slots[to.index()].machine.is_some() && !self.cut.contains(&(from, to));
        match self.links.get(&(from, to)).copied().unwrap_or(LinkSt::Up) {
            LinkSt::Breaking => {
                self.traffic.lost += 1;
                return;
            }
            LinkSt::Down if reachable => {
                self.links.insert((from, to), LinkSt::Up);
                let incarnation = self.slots[from.index()].incarnation;
                self.push(
                    self.now,
                    Item::LinkUp {
                        node: from,
                        incarnation,
                        peer: to,
                    },
                );
            }
            LinkSt::Down => {
                self.traffic.lost += 1;
                return;
            }
            LinkSt::Up => {}
        }
        if !reachable || (self.net.loss > 0.0 && self.rng.random_bool(self.net.loss)) {
            self.traffic.lost += 1;
            self.break_link(from, to);
            return;
        }
        let copies = if self.net.duplicate > 0.0 && self.rng.random_bool(self.net.duplicate) {
            2
        } else {
            1
        };
        let incarnation = self.slots[to.index()].incarnation;
        for _ in 0..copies {
            let mut at = self.now + self.net.latency.sample(&mut self.rng);
            if !self.net.reorder {
                let tail = self.link_tail.entry((from, to)).or_default();
                at = at.max(*tail);
                *tail = at;
            }
            self.push(
                at,
                Item::Deliver {
                    from,
                    to,
                    incarnation,
                    msg: msg.clone(),
                },
            );
        }
    }

    /// The stream `from` → `to` broke: `from` hears of it after two
    /// latencies, and loses everything it sends on it until then.
    fn break_link(&mut self, from: NodeId, to: NodeId) {
        if self.slots[from.index()].machine.is_none() {
            return;
        }
        let st = self.links.entry((from, to)).or_insert(LinkSt::Up);
        if *st != LinkSt::Up {
            return;
        }
        *st = LinkSt::Breaking;
        let at = self.now + self.net.latency.sample(&mut self.rng) * 2;
        let incarnation = self.slots[from.index()].incarnation;
        self.push(
            at,
            Item::LinkDown {
                node: from,
                incarnation,
                peer: to,
            },
        );
    }

    fn log_common(&mut self, node: NodeId, event: Common) {
        if let Some(log) = &mut self.log {
            let _ = log.write(self.now.as_micros() as u64, self.cluster.name(node), &event);
        }
    }
}

fn cross(a: &[NodeId], b: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut links = Vec::new();
    for &x in a {
        for &y in b {
            if x != y {
                links.push((x, y));
                links.push((y, x));
            }
        }
    }
    links
}
