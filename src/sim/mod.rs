//! The deterministic simulator: N instances of any `Protocol` in virtual
//! time, on a seeded network with faults.
//!
//! Everything random (latency, loss, duplication, each node's own RNG) comes
//! from one seed, and events at the same virtual instant run in the order
//! they were scheduled, so a seed replays the same run byte for byte.
//!
//! The network mirrors the real transport: links are FIFO (unless
//! `NetModel::reorder`), a message to a crashed node or across a cut link is
//! lost, and the sender learns of it the way a gRPC client does — a "link
//! down" input — and later "link up" when a send gets through again.
//! A crash throws the node's state away; a restart builds a fresh instance.
//!
//! This module owns time and delivery. What the nodes are asked to do (the
//! workload) and what is checked afterwards belong to the caller.

pub mod net;

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::io;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};

use crate::config::Cluster;
use crate::events::EventLog;
use crate::node::{Effect, NodeId, Note as _, Out, Protocol, Rng, WireKind};
pub use net::{Latency, NetModel};

/// Something that happened in a step, for the caller's workload and checks.
#[derive(Debug)]
pub enum Happening<N> {
    Note(NodeId, N),
    Crash(NodeId),
    Restart(NodeId),
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
    Link {
        node: NodeId,
        incarnation: u32,
        peer: NodeId,
        up: bool,
    },
    Command(NodeId, P::Cmd),
    Crash(NodeId),
    Restart(NodeId),
    Cut(Vec<(NodeId, NodeId)>),
    Heal(Vec<(NodeId, NodeId)>),
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
}

/// Message counts of a run.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub by_kind: HashMap<&'static str, u64>,
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
    /// Per directed link: whether the sender believes it is down.
    believed_down: BTreeSet<(NodeId, NodeId)>,
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
                })
                .collect(),
            factory: Box::new(factory),
            link_tail: HashMap::new(),
            cut: BTreeSet::new(),
            believed_down: BTreeSet::new(),
            log: None,
            traffic: Traffic::default(),
            out: Out::new(Duration::ZERO),
        };
        for id in 0..n as u32 {
            sim.boot(NodeId(id));
        }
        sim
    }

    /// Writes every event (virtual `t_us`) to `log`.
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
                    // The stream broke under it: like a gRPC client, the
                    // sender hears the link went down.
                    self.traffic.lost += 1;
                    self.link_broke(from, to);
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
            Item::Link {
                node,
                incarnation,
                peer,
                up,
            } => {
                if self.slots[node.index()].incarnation == incarnation {
                    self.drive(node, &mut happened, |m, out| m.on_link(peer, up, out));
                }
            }
            Item::Command(node, cmd) => {
                self.drive(node, &mut happened, |m, out| m.on_command(cmd, out));
            }
            Item::Crash(node) => {
                let slot = &mut self.slots[node.index()];
                if slot.machine.take().is_some() {
                    slot.incarnation += 1;
                    self.log_sim_event(node, "crash");
                    happened.push(Happening::Crash(node));
                }
            }
            Item::Restart(node) => {
                if self.slots[node.index()].machine.is_none() {
                    self.log_sim_event(node, "restart");
                    happened.push(Happening::Restart(node));
                    self.boot(node);
                    // Its peers' streams to the old process are gone.
                    for peer in self.cluster.ids() {
                        self.believed_down.remove(&(node, peer));
                    }
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

    fn boot(&mut self, node: NodeId) {
        let rng = Rng::seed_from_u64(self.rng.random());
        let slot = &mut self.slots[node.index()];
        slot.incarnation += 1;
        slot.machine = Some((self.factory)(node, rng, self.now));
        let mut happened = Vec::new();
        self.drive(node, &mut happened, |m, out| m.on_start(out));
        debug_assert!(happened.iter().all(|h| matches!(h, Happening::Note(..))));
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
                        let _ = log.write(
                            self.now.as_micros() as u64,
                            self.cluster.name(node),
                            ev.name,
                            &ev.fields,
                        );
                    }
                    happened.push(Happening::Note(node, note));
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        self.traffic.sent += 1;
        *self.traffic.by_kind.entry(msg.kind()).or_default() += 1;
        if let Some(log) = &mut self.log {
            let _ = log.write_send(
                self.now.as_micros() as u64,
                self.cluster.name(from),
                self.cluster.name(to),
                msg.kind(),
            );
        }
        let reachable = self.slots[to.index()].machine.is_some() && !self.cut.contains(&(from, to));
        if !reachable {
            // Like a failed connect: the sender hears "link down" once.
            self.traffic.lost += 1;
            self.link_broke(from, to);
            return;
        }
        if self.believed_down.remove(&(from, to)) {
            let incarnation = self.slots[from.index()].incarnation;
            self.push(
                self.now,
                Item::Link {
                    node: from,
                    incarnation,
                    peer: to,
                    up: true,
                },
            );
        }
        if self.net.loss > 0.0 && self.rng.random_bool(self.net.loss) {
            self.traffic.lost += 1;
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

    /// `from` learns (once per outage) that its link to `to` is down.
    fn link_broke(&mut self, from: NodeId, to: NodeId) {
        if self.slots[from.index()].machine.is_none() || !self.believed_down.insert((from, to)) {
            return;
        }
        let at = self.now + self.net.latency.sample(&mut self.rng) * 2;
        let incarnation = self.slots[from.index()].incarnation;
        self.push(
            at,
            Item::Link {
                node: from,
                incarnation,
                peer: to,
                up: false,
            },
        );
    }

    fn log_sim_event(&mut self, node: NodeId, event: &str) {
        if let Some(log) = &mut self.log {
            let _ = log.write(
                self.now.as_micros() as u64,
                self.cluster.name(node),
                event,
                &Default::default(),
            );
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
