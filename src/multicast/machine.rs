//! Totally ordered multicast: Lamport clocks, a holdback queue ordered by
//! (stamp, sender), and acknowledgements.
//!
//! * Every node sends each message to every member; links are FIFO (one
//!   stream per direction), and a node resends what a peer has not acked
//!   when the link comes back, so a reconnect loses nothing.
//! * A message is delivered when it is at the head of the holdback queue and
//!   every member has acked it. Acks are cumulative sets per (sender,
//!   incarnation) and carry the acker's own last sequence number: an ack is
//!   used only once everything its sender sent before it has arrived, so a
//!   member's ack of `m` proves we hold all of its messages stamped below `m`.
//! * Joining (every start is a join: a restart has lost all state): the node
//!   asks every member for its clock and the stamp of its last delivery. Each
//!   member relays the undelivered messages it holds, plus, to everyone, any
//!   it holds from the joiner's earlier lives, then says `FlushDone`. The
//!   joiner takes a clock above every clock it heard and a *cut*, the highest
//!   delivery stamp it heard: it delivers exactly the messages stamped above
//!   the cut, which is a suffix of everyone's order. Members need the
//!   joiner's ack only above the cut; below it they need only that every
//!   member finished relaying the joiner's earlier life (`FlushDone`).
//! * A member that is down blocks delivery (messages wait, nothing is lost);
//!   when it is back, everything is delivered everywhere in the same order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::msg::{Data, Msg, MsgId};
use super::note::Note;
use crate::node::{NodeId, Out, Protocol};
use crate::seqset::SeqSet;

/// The longest chat message, in bytes: refused at input, before it gets a
/// stamp (a message must fit in one frame, even relayed with others).
pub const MAX_TEXT: usize = 1024 * 1024;

/// Our own messages not yet delivered, at most. Past it the node takes no
/// new messages from the user (input waits, and the user is told which
/// member holds things up) until members catch up: memory stays bounded
/// while a member is slow or down.
pub const WINDOW: usize = 10_000;

/// Send an ack at once after this many unacked arrivals (else when idle).
const ACK_BATCH: usize = 64;
const SYNC_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Send(String),
    Status,
}

#[derive(Clone, Debug)]
pub enum Timer {
    AckFlush,
    SyncRetry,
    /// The link to `peer` is down: probe it (number `attempt` of this outage).
    Probe {
        peer: NodeId,
        attempt: u32,
    },
    /// Is the head of the holdback queue stuck?
    Tick,
}

/// How long the head of the queue may sit still before we nudge.
const TICK: Duration = Duration::from_millis(250);

/// While a peer is down, one small probe after this long, doubling up to
/// [`PROBE_MAX`]: the probe is what finds out that the link is back (the
/// transport then reports it up, and everything it lacks is resent once).
const PROBE_FIRST: Duration = Duration::from_millis(300);
const PROBE_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Peer {
    inc: Option<u64>,
    /// Its data seqs (current incarnation) that arrived.
    received: SeqSet,
    /// A newer ack waiting for data it vouches for.
    stash: Option<Stashed>,
    /// Its join cut (current incarnation).
    cut: Option<u64>,
    /// Its answer to our join: (clock, delivered stamp, messages relayed).
    reply: Option<(u64, u64, Vec<MsgId>)>,
    /// It (re)joined while we were up: its earlier lives must be flushed
    /// (relayed by everyone) before its acks mean anything.
    rejoined: bool,
    /// The incarnation we relayed its earlier lives for (once each).
    flushed_for: Option<u64>,
}

type Key = (u64, NodeId, u64);

/// The holdback queue, in delivery order (stamp, sender, seq), counting
/// what it holds of each sender's life (acks name only the lives that
/// still matter).
#[derive(Debug, Default)]
struct Holdback {
    queue: BTreeMap<Key, Data>,
    lives: BTreeMap<(NodeId, u64), usize>,
}

impl Holdback {
    fn insert(&mut self, d: Data) {
        let life = (d.sender, d.inc);
        if self.queue.insert((d.lamport, d.sender, d.seq), d).is_none() {
            *self.lives.entry(life).or_default() += 1;
        }
    }

    fn first(&self) -> Option<(&Key, &Data)> {
        self.queue.first_key_value()
    }

    fn get(&self, k: &Key) -> Option<&Data> {
        self.queue.get(k)
    }

    fn pop_first(&mut self) -> Option<Data> {
        let (_, d) = self.queue.pop_first()?;
        if let Some(n) = self.lives.get_mut(&(d.sender, d.inc)) {
            *n -= 1;
            if *n == 0 {
                self.lives.remove(&(d.sender, d.inc));
            }
        }
        Some(d)
    }

    fn values(&self) -> impl Iterator<Item = &Data> {
        self.queue.values()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn holds_life(&self, sender: NodeId, inc: u64) -> bool {
        self.lives.contains_key(&(sender, inc))
    }
}

/// An ack kept until its sender's earlier data has arrived:
/// (incarnation, last data seq, what it has).
type Stashed = (u64, u64, Vec<(NodeId, u64, SeqSet)>);

/// A `SyncReply`'s fields.
struct Reply {
    inc: u64,
    clock: u64,
    sent: u64,
    delivered: u64,
    relayed: Vec<MsgId>,
}

pub struct Multicast {
    me: NodeId,
    members: Vec<NodeId>,
    inc: u64,
    clock: u64,
    next_seq: u64,
    joined: bool,
    cut: u64,
    outbox: Vec<String>,
    pre_join: Vec<Data>,
    peers: BTreeMap<NodeId, Peer>,
    /// (acker, sender, sender incarnation) -> seqs acked.
    acks: BTreeMap<(NodeId, NodeId, u64), SeqSet>,
    /// Everything received or sent, per (sender, incarnation).
    have: BTreeMap<(NodeId, u64), SeqSet>,
    holdback: Holdback,
    delivered_stamp: u64,
    sent_log: BTreeMap<u64, Data>,
    /// (joiner, its incarnation) -> member -> what it relayed for it.
    flushes: BTreeMap<(NodeId, u64), BTreeMap<NodeId, Vec<MsgId>>>,
    /// The flushes this node did (re-announced when a link comes back).
    my_flushes: BTreeMap<(NodeId, u64), Vec<MsgId>>,
    ack_due: usize,
    /// Peers whose link is down (as the transport last said).
    down: BTreeSet<NodeId>,
    /// The head of the queue at the last tick.
    last_head: Option<Key>,
    /// Told the user that input waits (the window is full).
    told_full: bool,
    pub delivered: u64,
}

impl Multicast {
    /// `inc` must grow across this node's lives (the driver passes the start
    /// time in µs); sequence numbers start there.
    pub fn new(me: NodeId, members: impl IntoIterator<Item = NodeId>, inc: u64) -> Self {
        let members: Vec<NodeId> = members.into_iter().collect();
        Multicast {
            me,
            peers: members
                .iter()
                .filter(|&&m| m != me)
                .map(|&m| (m, Peer::default()))
                .collect(),
            members,
            inc: inc.max(1),
            clock: 0,
            next_seq: inc.max(1),
            joined: false,
            cut: 0,
            outbox: Vec::new(),
            pre_join: Vec::new(),
            acks: BTreeMap::new(),
            have: BTreeMap::new(),
            holdback: Holdback::default(),
            delivered_stamp: 0,
            sent_log: BTreeMap::new(),
            flushes: BTreeMap::new(),
            my_flushes: BTreeMap::new(),
            ack_due: 0,
            down: BTreeSet::new(),
            last_head: None,
            told_full: false,
            delivered: 0,
        }
    }

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    fn send_all(&self, msg: Msg, out: &mut Out<Self>) {
        for n in self.others() {
            out.send(n, msg.clone());
        }
    }

    fn bump(&mut self, stamp: u64) {
        self.clock = self.clock.max(stamp) + 1;
    }

    fn multicast(&mut self, text: String, out: &mut Out<Self>) {
        if !self.joined {
            out.note(Note::Queued {
                waiting_for: self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.reply.is_none())
                    .map(|(&n, _)| n)
                    .collect(),
            });
            self.outbox.push(text);
            return;
        }
        self.clock += 1;
        let d = Data {
            sender: self.me,
            inc: self.inc,
            seq: self.next_seq,
            lamport: self.clock,
            text,
        };
        self.next_seq += 1;
        self.have
            .entry((self.me, self.inc))
            .or_default()
            .insert(d.seq);
        self.sent_log.insert(d.seq, d.clone());
        out.note(Note::Multicast {
            seq: d.seq,
            lamport: d.lamport,
            text: d.text.clone(),
        });
        self.send_all(Msg::Data(d.clone()), out);
        self.holdback.insert(d);
        self.try_deliver(out);
        if !self.told_full && self.unsent_or_undelivered() >= WINDOW {
            self.told_full = true;
            let waiting_for = self
                .sent_log
                .values()
                .next()
                .map(|d| self.missing(d))
                .unwrap_or_default();
            out.note(Note::Full {
                holding: self.sent_log.len(),
                waiting_for,
            });
        }
    }

    /// Our messages not delivered yet (sent, or waiting for the join).
    fn unsent_or_undelivered(&self) -> usize {
        self.sent_log.len() + self.outbox.len()
    }

    /// A message arrived (from its sender or relayed): keep it unless known.
    fn accept(&mut self, d: Data, out: &mut Out<Self>) {
        if !self
            .have
            .entry((d.sender, d.inc))
            .or_default()
            .insert(d.seq)
        {
            return;
        }
        self.ack_due += 1;
        if self.ack_due == 1 {
            out.timer(Duration::ZERO, Timer::AckFlush);
        } else if self.ack_due >= ACK_BATCH {
            self.send_ack(out);
        }
        if !self.joined {
            self.pre_join.push(d);
            self.maybe_join(out);
        } else if d.lamport > self.cut {
            self.holdback.insert(d);
        }
    }

    /// Our ack. A `full` one names every life of every sender we ever
    /// heard from; a routine one only the lives that still matter (each
    /// sender's current life, and lives with messages in our holdback), so
    /// acks do not grow with every restart. A member that still needs our
    /// ack of an older life asks (`AckPlease`) and gets the full one.
    fn ack_msg(&self, full: bool) -> Msg {
        let full = full || !self.joined;
        Msg::Ack {
            inc: self.inc,
            clock: self.clock,
            sent: self.next_seq - 1,
            have: self
                .have
                .iter()
                .filter(|&(&(s, i), _)| {
                    full || self.current_inc(s) == Some(i) || self.holdback.holds_life(s, i)
                })
                .map(|(&(s, i), set)| (s, i, set.clone()))
                .collect(),
        }
    }

    /// The life of `node` we know as current.
    fn current_inc(&self, node: NodeId) -> Option<u64> {
        if node == self.me {
            Some(self.inc)
        } else {
            self.peers.get(&node).and_then(|p| p.inc)
        }
    }

    fn send_ack(&mut self, out: &mut Out<Self>) {
        self.ack_due = 0;
        let msg = self.ack_msg(false);
        self.send_all(msg, out);
    }

    /// The head of the queue has not moved for a tick: give the members it
    /// waits for the message again and ask for their acks (whatever was
    /// lost on the way, a message, an ack or a sender's data, comes back).
    fn nudge(&mut self, out: &mut Out<Self>) {
        let head = self.holdback.first().map(|(k, _)| *k);
        if head.is_some()
            && head == self.last_head
            && let Some(d) = head.and_then(|k| self.holdback.get(&k))
        {
            for k in self.missing(d) {
                let msg = if d.sender == self.me {
                    Msg::Data(d.clone())
                } else {
                    Msg::Relay(d.clone())
                };
                out.send(k, msg);
                out.send(k, Msg::AckPlease);
            }
        }
        self.last_head = head;
    }

    fn on_data(&mut self, from: NodeId, d: Data, out: &mut Out<Self>) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if d.sender != from || p.inc != Some(d.inc) {
            return; // not its own, or from a life we have not heard join
        }
        p.received.insert(d.seq);
        self.bump(d.lamport);
        self.accept(d, out);
        self.use_stashed_ack(from);
        self.try_deliver(out);
    }

    fn on_ack(
        &mut self,
        from: NodeId,
        inc: u64,
        clock: u64,
        sent: u64,
        have: Vec<(NodeId, u64, SeqSet)>,
        out: &mut Out<Self>,
    ) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if p.inc != Some(inc) {
            return;
        }
        p.stash = Some((inc, sent, have));
        self.bump(clock);
        self.use_stashed_ack(from);
        self.try_deliver(out);
    }

    /// Applies `from`'s latest ack once we hold every message it sent before it.
    fn use_stashed_ack(&mut self, from: NodeId) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let Some((inc, sent, _)) = &p.stash else {
            return;
        };
        // Everything it sent before this ack must be here, whether it came
        // from it directly or relayed by someone else.
        let (inc, sent) = (*inc, *sent);
        if !self.holds_stream(from, inc, sent) {
            return;
        }
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let Some((_, _, have)) = p.stash.take() else {
            return;
        };
        for (s, i, set) in have {
            self.acks.insert((from, s, i), set);
        }
    }

    /// Has every other member relayed what it held from `k`'s earlier lives,
    /// and is all of it here? (Always, for a member that joined before us.)
    fn flushed(&self, k: NodeId) -> bool {
        let Some(p) = self.peers.get(&k) else {
            return true;
        };
        let (true, Some(inc)) = (p.rejoined, p.inc) else {
            return true;
        };
        // A life that began before ours: whatever its earlier lives left
        // undelivered was relayed to us, and named, when we joined.
        if inc < self.inc {
            return true;
        }
        let done = self.flushes.get(&(k, inc));
        // k itself, too, relays what it was given of its earlier lives when
        // it joined (the member that gave it may have died since).
        let self_flushed = done
            .and_then(|d| d.get(&k))
            .is_some_and(|ids| ids.iter().all(|&id| self.holds(id)));
        self_flushed
            && self.members.iter().filter(|&&m| m != k).all(|&m| {
                // A member whose life began after k's holds nothing of k's
                // earlier lives that the members who flush do not hold too.
                self.inc_of(m).is_some_and(|i| i > inc)
                    || done
                        .and_then(|d| d.get(&m))
                        .is_some_and(|ids| ids.iter().all(|&id| self.holds(id)))
            })
    }

    fn inc_of(&self, m: NodeId) -> Option<u64> {
        if m == self.me {
            Some(self.inc)
        } else {
            self.peers.get(&m).and_then(|p| p.inc)
        }
    }

    /// Do we hold every message of `k`'s life `inc` up to `seq` (directly,
    /// relayed, or settled when we joined)?
    fn holds_stream(&self, k: NodeId, inc: u64, seq: u64) -> bool {
        let Some(p) = self.peers.get(&k) else {
            return true;
        };
        let mut here = p.received.clone();
        if let Some(h) = self.have.get(&(k, inc)) {
            for (a, b) in h.ranges() {
                here.insert_range(a, b);
            }
        }
        here.contains_range(inc, seq)
    }

    fn holds(&self, (s, i, q): MsgId) -> bool {
        self.have.get(&(s, i)).is_some_and(|set| set.contains(q))
    }

    /// `peer` is a new life: what its earlier life acked says nothing of
    /// what it holds now.
    fn forget_acks_of(&mut self, peer: NodeId) {
        self.acks.retain(|(acker, _, _), _| *acker != peer);
    }

    /// Has `peer` acked `d`?
    fn acked_by(&self, peer: NodeId, d: &Data) -> bool {
        self.acks
            .get(&(peer, d.sender, d.inc))
            .is_some_and(|s| s.contains(d.seq))
    }

    /// May `d` be delivered as far as member `k` is concerned: `k` has it and
    /// nothing `k` sent (in any life) can still arrive below it?
    fn acked(&self, k: NodeId, d: &Data) -> bool {
        let Some(p) = self.peers.get(&k) else {
            return true;
        };
        // A rejoined member's ack (or message) says nothing of its earlier
        // lives' messages: those count only once everyone has relayed them.
        if !self.flushed(k) {
            return false;
        }
        if k == d.sender && p.inc == Some(d.inc) {
            // Its own message: fine once we hold everything it sent before.
            return self.holds_stream(k, d.inc, d.seq);
        }
        if k == d.sender
            || self
                .acks
                .get(&(k, d.sender, d.inc))
                .is_some_and(|s| s.contains(d.seq))
        {
            return true;
        }
        // Below k's join cut k does not deliver, so its ack is not needed.
        matches!(p.cut, Some(cut) if d.lamport <= cut)
    }

    /// Members whose ack the message still needs.
    fn missing(&self, d: &Data) -> Vec<NodeId> {
        self.others().filter(|&k| !self.acked(k, d)).collect()
    }

    fn try_deliver(&mut self, out: &mut Out<Self>) {
        while let Some((_, d)) = self.holdback.first() {
            if !self.others().all(|k| self.acked(k, d)) {
                break;
            }
            let Some(d) = self.holdback.pop_first() else {
                break;
            };
            self.delivered_stamp = d.lamport;
            self.delivered += 1;
            if d.sender == self.me {
                self.sent_log.remove(&d.seq);
                if self.told_full && self.unsent_or_undelivered() < WINDOW {
                    self.told_full = false;
                    out.note(Note::Resumed);
                }
            }
            out.note(Note::Deliver {
                origin: d.sender,
                seq: d.seq,
                lamport: d.lamport,
                text: d.text,
            });
        }
    }

    fn on_sync_req(&mut self, from: NodeId, inc: u64, out: &mut Out<Self>) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if p.inc.is_some_and(|i| i > inc) {
            return; // an older life's request, late
        }
        if p.inc != Some(inc) {
            *p = Peer {
                inc: Some(inc),
                reply: p.reply.take(),
                ..Peer::default()
            };
            out.note(Note::PeerJoining { peer: from });
            self.forget_acks_of(from);
        }
        let held: Vec<Data> = self
            .holdback
            .values()
            .chain(&self.pre_join)
            .cloned()
            .collect();
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        p.rejoined = true;
        // Once per incarnation, however we first heard of it (its request,
        // or its answer to ours): the others get what we hold from its
        // earlier lives, and a FlushDone naming it.
        if p.flushed_for != Some(inc) {
            p.flushed_for = Some(inc);
            let others: Vec<NodeId> = self.others().filter(|&k| k != from).collect();
            let old: Vec<&Data> = held
                .iter()
                .filter(|d| d.sender == from && d.inc < inc)
                .collect();
            for d in &old {
                for &k in &others {
                    out.send(k, Msg::Relay((*d).clone()));
                }
            }
            let ids: Vec<MsgId> = old.iter().map(|d| (d.sender, d.inc, d.seq)).collect();
            for &k in &others {
                out.send(
                    k,
                    Msg::FlushDone {
                        of: from,
                        inc,
                        relayed: ids.clone(),
                    },
                );
            }
            self.flushes
                .entry((from, inc))
                .or_default()
                .insert(self.me, Vec::new());
            self.my_flushes.insert((from, inc), ids);
        }
        // The joiner gets every message not yet delivered here, named in
        // the reply so that it waits for them all. The reply goes first
        // and only what the joiner has not acked is relayed, so a join
        // asked again after a broken link makes progress each time.
        out.send(
            from,
            Msg::SyncReply {
                inc: self.inc,
                clock: self.clock,
                sent: self.next_seq - 1,
                delivered: self.delivered_stamp,
                relayed: held.iter().map(|d| (d.sender, d.inc, d.seq)).collect(),
            },
        );
        for d in &held {
            if !self.acked_by(from, d) {
                out.send(from, Msg::Relay(d.clone()));
            }
        }
    }

    fn on_sync_reply(&mut self, from: NodeId, r: Reply, out: &mut Out<Self>) {
        if self.joined {
            return;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            if p.inc.is_none_or(|i| i < r.inc) {
                // A member that joined before us. Its messages up to now are
                // settled for us: below our cut, or relayed (and named here).
                *p = Peer {
                    inc: Some(r.inc),
                    ..Peer::default()
                };
                p.received.insert_range(r.inc, r.sent);
                p.reply = Some((r.clock, r.delivered, r.relayed));
                // (If it is joining too, its request will mark it rejoined.)
                self.forget_acks_of(from);
            } else {
                p.reply = Some((r.clock, r.delivered, r.relayed));
            }
        }
        self.maybe_join(out);
    }

    /// Joins once every member answered and everything they relayed is here.
    fn maybe_join(&mut self, out: &mut Out<Self>) {
        let ready = !self.joined
            && self.peers.values().all(|p| {
                p.reply
                    .as_ref()
                    .is_some_and(|(_, _, ids)| ids.iter().all(|&id| self.holds(id)))
            });
        if ready {
            self.join(out);
        }
    }

    fn join(&mut self, out: &mut Out<Self>) {
        let (clock, cut) = self
            .peers
            .values()
            .filter_map(|p| p.reply.as_ref())
            .fold((self.clock, 0), |(c, k), (rc, rd, _)| {
                (c.max(*rc), k.max(*rd))
            });
        self.clock = clock + 1;
        self.cut = cut;
        self.joined = true;
        self.send_all(Msg::Join { inc: self.inc, cut }, out);
        out.note(Note::Joined { cut });
        for d in std::mem::take(&mut self.pre_join) {
            if d.lamport > cut {
                self.holdback.insert(d);
            }
        }
        // Our own earlier lives' messages we were given: to everyone, named.
        let mine: Vec<Data> = self
            .holdback
            .values()
            .filter(|d| d.sender == self.me && d.inc < self.inc)
            .cloned()
            .collect();
        for d in &mine {
            self.send_all(Msg::Relay(d.clone()), out);
        }
        let ids: Vec<MsgId> = mine.iter().map(|d| (d.sender, d.inc, d.seq)).collect();
        self.send_all(
            Msg::FlushDone {
                of: self.me,
                inc: self.inc,
                relayed: ids.clone(),
            },
            out,
        );
        self.my_flushes.insert((self.me, self.inc), ids);
        for text in std::mem::take(&mut self.outbox) {
            self.multicast(text, out);
        }
        self.try_deliver(out);
    }

    /// A one-line-per-peer account of what this node knows of its peers
    /// (for diagnosing a stuck queue), with names from `c`.
    pub fn describe_peers(&self, c: &crate::config::Cluster) -> String {
        let flushes: Vec<String> = self
            .my_flushes
            .keys()
            .map(|(n, i)| format!("{}@{i}", c.name(*n)))
            .collect();
        let mut s = format!(
            "  incarnation {}; flushed for: {}\n",
            self.inc,
            flushes.join(", ")
        );
        for (k, p) in &self.peers {
            let stash = p.stash.as_ref().map(|(i, sent, _)| (*i, *sent));
            let flush: Vec<String> = p
                .inc
                .and_then(|i| self.flushes.get(&(*k, i)))
                .map(|m| m.keys().map(|n| c.name(*n).to_string()).collect())
                .unwrap_or_default();
            s.push_str(&format!(
                "  {}: incarnation {:?}, received {:?}, stashed ack {stash:?}, cut {:?}, rejoined {}, flushed by [{}], link {}\n",
                c.name(*k),
                p.inc,
                p.received.ranges().collect::<Vec<_>>(),
                p.cut,
                p.rejoined,
                flush.join(", "),
                if self.down.contains(k) { "DOWN" } else { "up" }
            ));
        }
        s
    }

    /// Our messages `peer` has not acked, in order.
    fn resend_to(&self, peer: NodeId, out: &mut Out<Self>) {
        let acked = self.acks.get(&(peer, self.me, self.inc));
        for d in self.sent_log.values() {
            if !acked.is_some_and(|a| a.contains(d.seq)) {
                out.send(peer, Msg::Data(d.clone()));
            }
        }
    }

    fn status(&self, out: &mut Out<Self>) {
        let waiting = self
            .holdback
            .values()
            .take(5)
            .map(|d| (d.sender, d.lamport, d.text.clone(), self.missing(d)))
            .collect();
        out.note(Note::Status {
            clock: self.clock,
            holdback: self.holdback.len(),
            delivered: self.delivered,
            joined: self.joined,
            waiting,
        });
    }
}

impl Protocol for Multicast {
    type Msg = Msg;
    type Timer = Timer;
    type Cmd = Cmd;
    type Note = Note;

    fn on_start(&mut self, out: &mut Out<Self>) {
        out.timer(TICK, Timer::Tick);
        if self.peers.is_empty() {
            self.join(out);
            return;
        }
        self.send_all(Msg::SyncReq { inc: self.inc }, out);
        out.timer(SYNC_RETRY, Timer::SyncRetry);
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, out: &mut Out<Self>) {
        match msg {
            Msg::Data(d) => self.on_data(from, d, out),
            Msg::Relay(d) => {
                self.bump(d.lamport);
                self.accept(d, out);
                self.try_deliver(out);
            }
            Msg::Ack {
                inc,
                clock,
                sent,
                have,
            } => self.on_ack(from, inc, clock, sent, have, out),
            Msg::SyncReq { inc } => self.on_sync_req(from, inc, out),
            Msg::SyncReply {
                inc,
                clock,
                sent,
                delivered,
                relayed,
            } => self.on_sync_reply(
                from,
                Reply {
                    inc,
                    clock,
                    sent,
                    delivered,
                    relayed,
                },
                out,
            ),
            Msg::Join { inc, cut } => {
                self.bump(cut);
                if let Some(p) = self.peers.get_mut(&from)
                    && p.inc == Some(inc)
                    && p.cut.replace(cut).is_none()
                    && p.rejoined
                {
                    out.note(Note::PeerJoined { peer: from });
                }
                self.try_deliver(out);
            }
            Msg::AckPlease => {
                self.resend_to(from, out);
                out.send(from, self.ack_msg(true));
            }
            Msg::FlushDone { of, inc, relayed } => {
                self.flushes
                    .entry((of, inc))
                    .or_default()
                    .insert(from, relayed);
                self.try_deliver(out);
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Out<Self>) {
        match timer {
            Timer::AckFlush => {
                if self.ack_due > 0 {
                    self.send_ack(out);
                }
            }
            Timer::Tick => {
                self.nudge(out);
                out.timer(TICK, Timer::Tick);
            }
            Timer::Probe { peer, attempt } => {
                if self.down.contains(&peer) {
                    // Sending is what finds out whether it is back; the
                    // link coming up resends what it lacks.
                    let probe = if self.joined {
                        Msg::AckPlease
                    } else {
                        Msg::SyncReq { inc: self.inc }
                    };
                    out.send(peer, probe);
                    let next = (PROBE_FIRST * 2u32.saturating_pow(attempt)).min(PROBE_MAX);
                    out.timer(
                        next,
                        Timer::Probe {
                            peer,
                            attempt: attempt + 1,
                        },
                    );
                }
            }
            Timer::SyncRetry => {
                if !self.joined {
                    // Whoever has not answered, or whose relays have not all
                    // arrived (a broken link loses what was on it): ask
                    // again; they resend only what we have not acked.
                    let ask: Vec<NodeId> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| {
                            p.reply
                                .as_ref()
                                .is_none_or(|(_, _, ids)| !ids.iter().all(|&id| self.holds(id)))
                        })
                        .map(|(&n, _)| n)
                        .collect();
                    for n in ask {
                        out.send(n, Msg::SyncReq { inc: self.inc });
                    }
                    out.timer(SYNC_RETRY, Timer::SyncRetry);
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd, out: &mut Out<Self>) {
        match cmd {
            Cmd::Send(text) => self.multicast(text, out),
            Cmd::Status => self.status(out),
        }
    }

    /// Our window of undelivered messages is full: the user's next message
    /// waits (the driver stops reading commands) until members catch up.
    fn accepting_commands(&self) -> bool {
        self.unsent_or_undelivered() < WINDOW
    }

    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        if up {
            self.down.remove(&peer);
            out.note(Note::PeerUp { peer });
            if !self.joined {
                out.send(peer, Msg::SyncReq { inc: self.inc });
            }
            // Whatever the old link swallowed: our join, our flushes, our
            // unacked data, our acks.
            if self.joined {
                out.send(
                    peer,
                    Msg::Join {
                        inc: self.inc,
                        cut: self.cut,
                    },
                );
            }
            // Relays it may have lost go first; flushes name them. That
            // includes our own earlier lives' messages, which we relay as
            // part of our join (our current life's go as data, below).
            for d in self.holdback.values() {
                let relayed = d.sender != self.me || d.inc < self.inc;
                if relayed && d.sender != peer && !self.acked_by(peer, d) {
                    out.send(peer, Msg::Relay(d.clone()));
                }
            }
            for (&(of, inc), ids) in &self.my_flushes {
                if of != peer {
                    out.send(
                        peer,
                        Msg::FlushDone {
                            of,
                            inc,
                            relayed: ids.clone(),
                        },
                    );
                }
            }
            self.resend_to(peer, out);
            out.send(peer, self.ack_msg(true));
        } else if self.down.insert(peer) {
            out.note(Note::PeerDown { peer });
            out.timer(PROBE_FIRST, Timer::Probe { peer, attempt: 1 });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rand::{Rng as _, SeedableRng};

    use super::*;
    use crate::node::{Effect, Rng};

    const A: NodeId = NodeId(0);
    const B: NodeId = NodeId(1);
    const C: NodeId = NodeId(2);

    /// Members wired by hand: one FIFO queue per directed link, timers
    /// recorded (fired only when a test says so), notes kept per node.
    struct Group {
        m: Vec<Option<Multicast>>,
        links: BTreeMap<(NodeId, NodeId), VecDeque<Msg>>,
        /// Links whose messages are dropped (the peer is down).
        down: BTreeSet<NodeId>,
        timers: Vec<(NodeId, Timer)>,
        notes: Vec<(NodeId, Note)>,
        incs: u64,
    }

    impl Group {
        fn new(n: u32) -> Group {
            let mut g = Group {
                m: (0..n).map(|_| None).collect(),
                links: BTreeMap::new(),
                down: BTreeSet::new(),
                timers: Vec::new(),
                notes: Vec::new(),
                incs: 0,
            };
            for i in 0..n {
                g.boot(NodeId(i));
            }
            g
        }

        fn boot(&mut self, id: NodeId) {
            self.incs += 1000;
            let n = self.m.len() as u32;
            self.m[id.index()] = Some(Multicast::new(id, (0..n).map(NodeId), self.incs));
            self.step(id, |m, out| m.on_start(out));
        }

        fn step(&mut self, id: NodeId, f: impl FnOnce(&mut Multicast, &mut Out<Multicast>)) {
            let Some(m) = self.m[id.index()].as_mut() else {
                return;
            };
            let mut out = Out::new(Duration::ZERO);
            f(m, &mut out);
            for e in out.drain() {
                match e {
                    Effect::Send { to, msg } => {
                        if !self.down.contains(&to) {
                            self.links.entry((id, to)).or_default().push_back(msg);
                        }
                    }
                    Effect::Timer { timer, .. } => self.timers.push((id, timer)),
                    Effect::Note(n) => self.notes.push((id, n)),
                }
            }
        }

        /// Delivers everything, picking a random non-empty link each time
        /// (so links interleave differently per seed, each staying FIFO),
        /// and fires zero-delay ack flushes as the driver would.
        fn settle(&mut self, rng: &mut Rng) {
            loop {
                let busy: Vec<(NodeId, NodeId)> = self
                    .links
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(k, _)| *k)
                    .collect();
                if busy.is_empty() {
                    let flush: Vec<NodeId> = self
                        .timers
                        .iter()
                        .filter(|(_, t)| matches!(t, Timer::AckFlush))
                        .map(|(n, _)| *n)
                        .collect();
                    if flush.is_empty() {
                        return;
                    }
                    self.timers.retain(|(_, t)| !matches!(t, Timer::AckFlush));
                    for n in flush {
                        self.step(n, |m, out| m.on_timer(Timer::AckFlush, out));
                    }
                    continue;
                }
                let (from, to) = busy[rng.random_range(0..busy.len())];
                let Some(msg) = self.links.get_mut(&(from, to)).and_then(|q| q.pop_front()) else {
                    continue;
                };
                if !self.down.contains(&to) {
                    self.step(to, |m, out| m.on_message(from, msg, out));
                }
            }
        }

        fn delivered(&self, id: NodeId) -> Vec<(NodeId, u64)> {
            self.notes
                .iter()
                .filter(|(n, _)| *n == id)
                .filter_map(|(_, note)| match note {
                    Note::Deliver { origin, seq, .. } => Some((*origin, *seq)),
                    _ => None,
                })
                .collect()
        }

        fn send(&mut self, id: NodeId, text: &str) {
            self.step(id, |m, out| m.on_command(Cmd::Send(text.into()), out));
        }

        fn machine(&self, id: NodeId) -> &Multicast {
            self.m[id.index()].as_ref().expect("node is up")
        }
    }

    #[test]
    fn concurrent_senders_are_delivered_in_the_same_order_everywhere() {
        for seed in 0..50 {
            let mut rng = Rng::seed_from_u64(seed);
            let mut g = Group::new(3);
            g.settle(&mut rng);
            assert!(
                (0..3).all(|i| g.machine(NodeId(i)).joined),
                "seed {seed}: all joined"
            );
            for k in 0..10 {
                for id in [A, B, C] {
                    if rng.random_bool(0.7) {
                        g.send(id, &format!("{id:?}-{k}"));
                    }
                }
                // Some messages travel before the next round of sends.
                for _ in 0..rng.random_range(0..5) {
                    let busy: Vec<_> = g
                        .links
                        .iter()
                        .filter(|(_, q)| !q.is_empty())
                        .map(|(k, _)| *k)
                        .collect();
                    if let Some(&(from, to)) = busy.first() {
                        if let Some(msg) = g.links.get_mut(&(from, to)).and_then(|q| q.pop_front())
                        {
                            g.step(to, |m, out| m.on_message(from, msg, out));
                        }
                    }
                }
            }
            g.settle(&mut rng);
            let a = g.delivered(A);
            assert!(!a.is_empty());
            assert_eq!(a, g.delivered(B), "seed {seed}");
            assert_eq!(a, g.delivered(C), "seed {seed}");
            // FIFO per sender.
            for s in [A, B, C] {
                let seqs: Vec<u64> = a.iter().filter(|(o, _)| *o == s).map(|(_, q)| *q).collect();
                assert!(
                    seqs.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed}: FIFO of {s:?}"
                );
            }
        }
    }

    #[test]
    fn a_message_waits_for_a_member_that_is_down_then_everyone_delivers_it() {
        let mut rng = Rng::seed_from_u64(1);
        let mut g = Group::new(3);
        g.settle(&mut rng);
        g.down.insert(C);
        g.send(A, "hello");
        g.settle(&mut rng);
        assert!(g.delivered(A).is_empty(), "A waits for C's ack");
        g.step(A, |m, out| m.on_command(Cmd::Status, out));
        let waiting = g.notes.iter().rev().find_map(|(_, n)| match n {
            Note::Status { waiting, .. } => Some(waiting.clone()),
            _ => None,
        });
        assert_eq!(waiting.unwrap()[0].3, vec![C], "and says so");
        // C's links come back: A resends what C lacks, B its acks.
        g.down.remove(&C);
        for n in [A, B] {
            g.step(n, |m, out| m.on_link(C, false, out));
            g.step(n, |m, out| m.on_link(C, true, out));
        }
        g.settle(&mut rng);
        for id in [A, B, C] {
            assert_eq!(g.delivered(id), vec![(A, g.machine(A).inc)], "{id:?}");
        }
    }

    #[test]
    fn a_duplicated_message_is_delivered_once() {
        let mut rng = Rng::seed_from_u64(2);
        let mut g = Group::new(2);
        g.settle(&mut rng);
        g.send(A, "once");
        let dup = g.links[&(A, B)].back().cloned().unwrap();
        g.links.get_mut(&(A, B)).unwrap().push_back(dup);
        g.settle(&mut rng);
        assert_eq!(g.delivered(B).len(), 1);
        assert_eq!(g.delivered(A).len(), 1);
    }

    #[test]
    fn a_restarted_member_is_relayed_only_what_it_lacks_and_its_old_acks_are_forgotten() {
        let mut rng = Rng::seed_from_u64(3);
        let mut g = Group::new(3);
        g.settle(&mut rng);
        // C goes down; A's messages wait for it in A's and B's holdback.
        g.down.insert(C);
        g.send(A, "one");
        g.send(A, "two");
        g.settle(&mut rng);
        assert_eq!(g.machine(B).holdback.len(), 2);
        // C restarts (a new life): B must relay both messages, although C's
        // old life had acked earlier ones.
        g.down.remove(&C);
        g.boot(C);
        let req = g
            .links
            .get_mut(&(C, B))
            .and_then(|q| q.pop_front())
            .unwrap();
        assert!(matches!(req, Msg::SyncReq { .. }));
        g.step(B, |m, out| m.on_message(C, req, out));
        let to_c: Vec<&'static str> = g.links[&(B, C)].iter().map(|m| m.kind()).collect();
        assert_eq!(
            to_c.first(),
            Some(&"sync_reply"),
            "the reply goes first: {to_c:?}"
        );
        assert_eq!(
            to_c.iter().filter(|k| **k == "relay").count(),
            2,
            "{to_c:?}"
        );
        g.settle(&mut rng);
        assert!(g.machine(C).joined);
        assert_eq!(g.delivered(A), g.delivered(B));
        // C asks again (say its first reply was lost): what it has acked
        // since is not relayed again.
        g.links.clear();
        let inc = g.machine(C).inc;
        g.step(B, |m, out| m.on_message(C, Msg::SyncReq { inc }, out));
        let relays = g
            .links
            .get(&(B, C))
            .map_or(0, |q| q.iter().filter(|m| m.kind() == "relay").count());
        assert_eq!(relays, 0);
    }

    #[test]
    fn a_rejoined_nodes_earlier_life_message_reaches_a_member_its_relay_missed() {
        let mut rng = Rng::seed_from_u64(7);
        let mut g = Group::new(3);
        g.settle(&mut rng);
        // C's message waits for B, which is down; then C restarts.
        g.down.insert(B);
        g.send(C, "from C's first life");
        g.settle(&mut rng);
        g.down.remove(&B);
        g.boot(C);
        // C joins; A relays C's old message to it, and C passes it on.
        while !g.machine(C).joined {
            let busy: Vec<_> = g
                .links
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k)
                .collect();
            let (from, to) = busy[0];
            let msg = g
                .links
                .get_mut(&(from, to))
                .and_then(|q| q.pop_front())
                .unwrap();
            g.step(to, |m, out| m.on_message(from, msg, out));
        }
        // C's stream to B breaks: what C had queued for B is lost, and B,
        // which never had the message, waits for C's relay of it.
        g.links.remove(&(C, B));
        g.down.insert(B);
        g.settle(&mut rng);
        g.down.remove(&B);
        assert!(
            g.delivered(B).iter().all(|(o, _)| *o != C),
            "B cannot deliver it yet"
        );
        // The link comes back: C relays its earlier life's message again
        // (and a stuck head gets its acks asked for, tick by tick).
        g.step(C, |m, out| m.on_link(B, false, out));
        g.step(C, |m, out| m.on_link(B, true, out));
        g.settle(&mut rng);
        for _ in 0..3 {
            for n in [A, B, C] {
                g.step(n, |m, out| m.on_timer(Timer::Tick, out));
            }
            g.settle(&mut rng);
        }
        let from_c = |n| g.delivered(n).iter().filter(|(o, _)| *o == C).count();
        assert_eq!(from_c(B), 1, "B delivered C's first-life message");
        assert_eq!(g.delivered(A), g.delivered(B));
    }

    #[test]
    fn a_full_window_stops_input_until_members_catch_up() {
        let mut rng = Rng::seed_from_u64(4);
        let mut g = Group::new(2);
        g.settle(&mut rng);
        g.down.insert(B);
        for i in 0..WINDOW {
            assert!(g.machine(A).accepting_commands(), "at {i}");
            g.send(A, "x");
        }
        assert!(!g.machine(A).accepting_commands());
        let full = g
            .notes
            .iter()
            .filter(|(_, n)| matches!(n, Note::Full { waiting_for, .. } if waiting_for == &vec![B]))
            .count();
        assert_eq!(full, 1, "said once, naming the member");
        g.down.remove(&B);
        g.step(A, |m, out| m.on_link(B, true, out));
        g.settle(&mut rng);
        assert!(g.machine(A).accepting_commands());
        assert!(g.notes.iter().any(|(_, n)| matches!(n, Note::Resumed)));
        assert_eq!(g.delivered(B).len(), WINDOW);
    }

    #[test]
    fn routine_acks_do_not_grow_with_restarts() {
        let mut rng = Rng::seed_from_u64(5);
        let mut g = Group::new(3);
        g.settle(&mut rng);
        for _ in 0..20 {
            g.send(C, "before I go");
            g.settle(&mut rng);
            g.boot(C);
            g.settle(&mut rng);
        }
        g.send(A, "after all that");
        g.settle(&mut rng);
        let entries = |full| match g.machine(A).ack_msg(full) {
            Msg::Ack { have, .. } => have.len(),
            _ => 0,
        };
        assert!(
            entries(false) <= 3,
            "routine ack names {} lives",
            entries(false)
        );
        assert!(entries(true) >= 20, "the full ack still names every life");
    }

    #[test]
    fn a_down_peer_is_probed_with_one_small_message_not_flooded() {
        let mut rng = Rng::seed_from_u64(6);
        let mut g = Group::new(2);
        g.settle(&mut rng);
        g.down.insert(B);
        for _ in 0..50 {
            g.send(A, "waiting");
        }
        g.step(A, |m, out| m.on_link(B, false, out));
        let probe = g
            .timers
            .iter()
            .rposition(|(n, t)| *n == A && matches!(t, Timer::Probe { .. }))
            .unwrap();
        let (_, t) = g.timers.remove(probe);
        g.down.remove(&B);
        g.links.clear();
        g.step(A, |m, out| m.on_timer(t, out));
        let sent: Vec<&'static str> = g
            .links
            .get(&(A, B))
            .map(|q| q.iter().map(|m| m.kind()).collect())
            .unwrap_or_default();
        assert_eq!(sent, vec!["ack_please"], "one probe, not the 50 messages");
        assert!(
            g.timers
                .iter()
                .any(|(n, t)| *n == A && matches!(t, Timer::Probe { attempt: 2, .. })),
            "and the next probe later"
        );
        // When the link comes up, everything B lacks is resent once.
        g.step(A, |m, out| m.on_link(B, true, out));
        let data = g.links[&(A, B)]
            .iter()
            .filter(|m| m.kind() == "data")
            .count();
        assert_eq!(data, 50);
    }
}
