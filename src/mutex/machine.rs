//! Ricart–Agrawala mutual exclusion as a sans-IO state machine, with
//! Roucairol–Carvalho's permission reuse as an option.
//!
//! * **Released / Wanted / Held.** `lock` stamps a request with the
//!   Lamport clock and sends it to every other node (with reuse: to those
//!   whose permission this node does not hold); the node enters when it
//!   holds every other node's permission. `unlock` answers the requests it
//!   deferred.
//! * **Answering a request**: defer it if inside, or if waiting with a
//!   smaller (timestamp, name); otherwise reply at once. A reply hands over
//!   this node's permission: if it was waiting and held the requester's
//!   permission, it asks the requester again (with reuse this is the usual
//!   give-back; without, it only happens after a restart).
//! * **Naming requests.** A request carries (ts, incarnation, seq): the
//!   incarnation names the requester's life (it grows from life to life),
//!   `seq` the request message (a resend keeps it; a new request for the
//!   same entry gets a new one). A reply echoes them and counts only if it
//!   answers the request this node is waiting on, so a stale or duplicated
//!   reply can never hand over a permission twice.
//! * **Faults.** A node greets everyone when it starts (`Hello`): a peer
//!   that hears of a new life forgets that life's old requests and
//!   permissions and asks it again if it was waiting on it. When a link
//!   goes down, what may have been lost on it (the request this node waits
//!   on, its last reply) is sent again after a backoff, and when the link
//!   comes back. A node that is down holds everyone up: Ricart–Agrawala
//!   needs every reply (the algorithm's known limit).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng as _;

use super::msg::{Msg, ReqId};
use super::note::{Note, Status, Why};
use crate::node::{NodeId, Out, Protocol, Rng};

#[derive(Clone, Debug)]
pub struct Timing {
    /// First resend after a link went down (doubling per failure).
    pub resend_after: Duration,
    pub resend_max: Duration,
    /// How long `auto` stays inside.
    pub hold: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resend_after: Duration::from_millis(300),
            resend_max: Duration::from_secs(5),
            hold: Duration::from_millis(100),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cmd {
    Lock,
    Unlock,
    Status,
    /// `auto MEAN` (Some) or `auto off` (None).
    Auto(Option<Duration>),
}

#[derive(Clone, Debug)]
pub enum Timer {
    Resend { peer: NodeId, epoch: u64 },
    AutoLock { epoch: u64 },
    AutoUnlock { entry: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Released,
    Wanted { ts: u64 },
    Held { ts: u64 },
}

pub struct Mutex {
    me: NodeId,
    peers: Vec<NodeId>,
    t: Timing,
    reuse: bool,
    rng: Rng,
    clock: u64,
    incarnation: u64,
    seq: u64,
    state: State,
    /// Peers whose permission this node holds.
    perm: BTreeSet<NodeId>,
    /// Peers asked for the current request, and the seq of the request
    /// message each one was sent.
    awaiting: BTreeMap<NodeId, u64>,
    deferred: BTreeMap<NodeId, ReqId>,
    /// The latest life heard of each peer.
    known: BTreeMap<NodeId, u64>,
    /// The last reply sent to each peer, and whether it may have been lost
    /// (its link went down since).
    last_reply: BTreeMap<NodeId, (ReqId, bool)>,
    down: BTreeSet<NodeId>,
    /// Peers whose link has been up at least once in this life.
    reached: BTreeSet<NodeId>,
    /// Per peer: the resend timer's epoch and its next backoff.
    resend: BTreeMap<NodeId, (u64, Duration)>,
    auto: Option<Duration>,
    auto_epoch: u64,
    auto_entry: bool,
    entries: u64,
    /// Messages the current request has cost so far.
    cost: u64,
}

impl Mutex {
    /// A node of `cluster_size` nodes. `incarnation` must grow from one
    /// life of a node to the next (a start time does).
    pub fn new(
        me: NodeId,
        cluster_size: usize,
        reuse: bool,
        incarnation: u64,
        t: Timing,
        rng: Rng,
    ) -> Self {
        Mutex {
            me,
            peers: (0..cluster_size as u32)
                .map(NodeId)
                .filter(|&n| n != me)
                .collect(),
            t,
            reuse,
            rng,
            clock: 0,
            incarnation,
            seq: 0,
            state: State::Released,
            perm: BTreeSet::new(),
            awaiting: BTreeMap::new(),
            deferred: BTreeMap::new(),
            known: BTreeMap::new(),
            last_reply: BTreeMap::new(),
            down: BTreeSet::new(),
            reached: BTreeSet::new(),
            resend: BTreeMap::new(),
            auto: None,
            auto_epoch: 0,
            auto_entry: false,
            entries: 0,
            cost: 0,
        }
    }

    pub fn in_cs(&self) -> bool {
        matches!(self.state, State::Held { .. })
    }

    pub fn wants(&self) -> bool {
        matches!(self.state, State::Wanted { .. })
    }

    fn req(&self, ts: u64, seq: u64) -> ReqId {
        ReqId {
            ts,
            incarnation: self.incarnation,
            seq,
        }
    }

    /// Sends a new request message for the current entry to `peer`.
    fn ask(&mut self, peer: NodeId, ts: u64, out: &mut Out<Self>) {
        self.seq += 1;
        self.awaiting.insert(peer, self.seq);
        self.cost += 1;
        out.send(peer, Msg::Request(self.req(ts, self.seq)));
        if self.down.contains(&peer) {
            // It may be lost on the broken link: keep trying until it is up.
            self.retry_later(peer, out);
        }
    }

    fn lock(&mut self, out: &mut Out<Self>) {
        match self.state {
            State::Held { .. } => {
                out.note(Note::Refused("already in the critical section".into()));
                return;
            }
            State::Wanted { ts } => {
                out.note(Note::Refused(format!(
                    "already waiting (request ts={ts}); `status` shows for whom"
                )));
                return;
            }
            State::Released => {}
        }
        if !self.reuse {
            self.perm.clear();
        }
        self.clock += 1;
        let ts = self.clock;
        self.state = State::Wanted { ts };
        self.cost = 0;
        let (kept, ask): (Vec<NodeId>, Vec<NodeId>) =
            self.peers.iter().partition(|p| self.perm.contains(p));
        for &p in &ask {
            self.ask(p, ts, out);
        }
        out.note(Note::Requested {
            ts,
            asked: ask.clone(),
            kept,
            reuse: self.reuse,
        });
        for &p in &ask {
            if self.down.contains(&p) {
                out.note(Note::WaitingForDown {
                    peer: p,
                    reached: self.reached.contains(&p),
                });
            }
        }
        self.try_enter(out);
    }

    fn try_enter(&mut self, out: &mut Out<Self>) {
        let State::Wanted { ts } = self.state else {
            return;
        };
        if self.peers.iter().all(|p| self.perm.contains(p)) {
            self.state = State::Held { ts };
            self.entries += 1;
            out.note(Note::CsEnter {
                ts,
                messages: self.cost,
                auto_hold: self.auto_entry.then_some(self.t.hold),
            });
            if self.auto_entry {
                if self.t.hold.is_zero() {
                    // Nothing to hold for: out at once (the next lock still
                    // waits for a timer, so this never loops).
                    self.release(out);
                } else {
                    out.timer(
                        self.t.hold,
                        Timer::AutoUnlock {
                            entry: self.entries,
                        },
                    );
                }
            }
        }
    }

    /// Leaves the critical section (or withdraws the request) and answers
    /// every deferred request.
    fn release(&mut self, out: &mut Out<Self>) {
        let was = self.state;
        if was == State::Released {
            out.note(Note::Refused(
                "not in the critical section, nor waiting for it".into(),
            ));
            return;
        }
        self.state = State::Released;
        self.awaiting.clear();
        self.auto_entry = false;
        if !self.reuse {
            self.perm.clear();
        }
        let deferred = std::mem::take(&mut self.deferred);
        let answered: Vec<NodeId> = deferred.keys().copied().collect();
        match was {
            State::Held { .. } => out.note(Note::CsExit { answered }),
            _ => out.note(Note::Cancelled { answered }),
        }
        for (peer, r) in deferred {
            self.reply(peer, r, true, out);
        }
        if self.auto.is_some() {
            self.schedule_auto(out);
        }
    }

    /// Answers `peer`'s request `r` (`deferred`: one answered on leaving).
    fn reply(&mut self, peer: NodeId, r: ReqId, deferred: bool, out: &mut Out<Self>) {
        self.perm.remove(&peer);
        // A copy of a request already answered gets the same answer, once
        // more on the wire but not again in the log.
        let again = self.last_reply.get(&peer).is_some_and(|(l, _)| *l == r);
        self.last_reply.insert(peer, (r, false));
        out.send(peer, Msg::Reply(r));
        if !again {
            out.note(Note::ReplySent {
                to: peer,
                ts: r.ts,
                deferred,
            });
        }
    }

    /// Takes note of `peer`'s life `inc`; false if the message is from a
    /// life that has already been replaced (stale).
    fn life(&mut self, peer: NodeId, inc: u64, out: &mut Out<Self>) -> bool {
        match self.known.get(&peer).copied() {
            Some(k) if inc < k => false,
            Some(k) if inc > k => {
                self.known.insert(peer, inc);
                self.forget_life(peer, out);
                true
            }
            Some(_) => true,
            None => {
                self.known.insert(peer, inc);
                true
            }
        }
    }

    /// `peer` began a new life: its old requests and the permission it had
    /// given are gone; if waiting on it, ask its new life.
    fn forget_life(&mut self, peer: NodeId, out: &mut Out<Self>) {
        out.note(Note::PeerRestarted { peer });
        self.deferred.remove(&peer);
        self.last_reply.remove(&peer);
        let had = self.perm.remove(&peer);
        if let State::Wanted { ts } = self.state
            && (had || self.awaiting.contains_key(&peer))
        {
            self.ask(peer, ts, out);
        }
    }

    fn on_request(&mut self, from: NodeId, r: ReqId, out: &mut Out<Self>) {
        if !self.life(from, r.incarnation, out) {
            return;
        }
        self.clock = self.clock.max(r.ts) + 1;
        // A request older than one already deferred is a stale copy.
        if let Some(d) = self.deferred.get(&from)
            && d.incarnation == r.incarnation
            && d.seq >= r.seq
        {
            return;
        }
        let why = match self.state {
            State::Held { .. } => Some(Why::Inside),
            State::Wanted { ts } if (ts, self.me) < (r.ts, from) => Some(Why::First { ts }),
            _ => None,
        };
        match why {
            Some(why) => {
                self.deferred.insert(from, r);
                out.note(Note::Deferred {
                    from,
                    ts: r.ts,
                    why,
                });
            }
            None => {
                let had = self.perm.contains(&from);
                self.reply(from, r, false, out);
                if let State::Wanted { ts } = self.state
                    && had
                {
                    self.ask(from, ts, out);
                    out.note(Note::AskedAgain { to: from });
                }
            }
        }
    }

    fn on_reply(&mut self, from: NodeId, r: ReqId, out: &mut Out<Self>) {
        let State::Wanted { ts } = self.state else {
            return;
        };
        if r.incarnation != self.incarnation
            || r.ts != ts
            || self.awaiting.get(&from) != Some(&r.seq)
        {
            return; // for an earlier request, an earlier life, or a copy
        }
        self.awaiting.remove(&from);
        self.perm.insert(from);
        self.cost += 1;
        let got = self.peers.iter().filter(|p| self.perm.contains(p)).count();
        out.note(Note::ReplyReceived {
            from,
            got,
            need: self.peers.len(),
        });
        self.try_enter(out);
    }

    fn schedule_auto(&mut self, out: &mut Out<Self>) {
        let Some(mean) = self.auto else { return };
        self.auto_epoch += 1;
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let wait = mean.mul_f64(-u.ln());
        out.timer(
            wait,
            Timer::AutoLock {
                epoch: self.auto_epoch,
            },
        );
    }

    /// Sends again what a broken link to `peer` may have lost; true if
    /// there was anything.
    fn resend_to(&mut self, peer: NodeId, out: &mut Out<Self>) -> bool {
        let mut any = false;
        if let (State::Wanted { ts }, Some(&seq)) = (self.state, self.awaiting.get(&peer)) {
            out.send(peer, Msg::Request(self.req(ts, seq)));
            any = true;
        }
        if let Some((r, lost)) = self.last_reply.get(&peer)
            && *lost
        {
            out.send(peer, Msg::Reply(*r));
            any = true;
        }
        any
    }

    /// Retries what `peer` may have missed after `backoff`, doubling.
    fn retry_later(&mut self, peer: NodeId, out: &mut Out<Self>) {
        let (epoch, backoff) = self
            .resend
            .get(&peer)
            .copied()
            .unwrap_or((0, self.t.resend_after));
        let epoch = epoch + 1;
        self.resend
            .insert(peer, (epoch, (backoff * 2).min(self.t.resend_max)));
        out.timer(backoff, Timer::Resend { peer, epoch });
    }

    fn status(&self) -> Status {
        let (state, ts) = match self.state {
            State::Released => ("released", None),
            State::Wanted { ts } => ("wanted", Some(ts)),
            State::Held { ts } => ("held", Some(ts)),
        };
        Status {
            me: self.me,
            state,
            clock: self.clock,
            ts,
            awaiting: self.awaiting.keys().copied().collect(),
            down: self.down.iter().copied().collect(),
            deferred: self.deferred.iter().map(|(p, r)| (*p, r.ts)).collect(),
            kept: self.perm.iter().copied().collect(),
            reuse: self.reuse,
            auto: self.auto,
            entries: self.entries,
        }
    }
}

impl Protocol for Mutex {
    type Msg = Msg;
    type Timer = Timer;
    type Cmd = Cmd;
    type Note = Note;

    fn on_start(&mut self, out: &mut Out<Self>) {
        for &p in &self.peers {
            out.send(
                p,
                Msg::Hello {
                    incarnation: self.incarnation,
                },
            );
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, out: &mut Out<Self>) {
        if from == self.me || !self.peers.contains(&from) {
            return;
        }
        match msg {
            Msg::Request(r) => self.on_request(from, r, out),
            Msg::Reply(r) => self.on_reply(from, r, out),
            Msg::Hello { incarnation } => {
                // A new life (or a first contact): whatever it should have
                // had from us, it gets now.
                if self.life(from, incarnation, out) {
                    self.resend_to(from, out);
                }
                // It is running, but our link to it failed before it was:
                // greet it back, which brings that link up now rather than
                // at our next request.
                if self.down.contains(&from) {
                    out.send(
                        from,
                        Msg::Hello {
                            incarnation: self.incarnation,
                        },
                    );
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Out<Self>) {
        match timer {
            Timer::Resend { peer, epoch } => {
                // Until the link is heard to be up again, whatever is sent
                // on it may be lost too: keep trying, less and less often.
                if self.resend.get(&peer).is_some_and(|(e, _)| *e == epoch)
                    && self.down.contains(&peer)
                    && self.resend_to(peer, out)
                {
                    self.retry_later(peer, out);
                }
            }
            Timer::AutoLock { epoch } => {
                if self.auto.is_some() && epoch == self.auto_epoch && self.state == State::Released
                {
                    self.auto_entry = true;
                    self.lock(out);
                }
            }
            Timer::AutoUnlock { entry } => {
                if self.auto_entry && self.in_cs() && entry == self.entries {
                    self.release(out);
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd, out: &mut Out<Self>) {
        match cmd {
            Cmd::Lock => {
                self.auto_entry = false;
                self.lock(out);
            }
            Cmd::Unlock => self.release(out),
            Cmd::Status => out.note(Note::Status(self.status())),
            Cmd::Auto(mean) => {
                self.auto = mean;
                self.auto_epoch += 1;
                out.note(Note::Auto {
                    mean,
                    hold: self.t.hold,
                });
                if self.state == State::Released {
                    self.schedule_auto(out);
                }
            }
        }
    }

    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        if up {
            let first = self.reached.insert(peer);
            if self.down.remove(&peer) || first {
                out.note(Note::PeerUp { peer });
            }
            let epoch = self.resend.get(&peer).map_or(0, |(e, _)| e + 1);
            self.resend.insert(peer, (epoch, self.t.resend_after));
            self.resend_to(peer, out);
            if let Some((_, lost)) = self.last_reply.get_mut(&peer) {
                *lost = false;
            }
            return;
        }
        if self.down.insert(peer) {
            let reached = self.reached.contains(&peer);
            // A peer never reached is not news: it has not started yet.
            if reached {
                out.note(Note::PeerDown { peer });
            }
            if self.awaiting.contains_key(&peer) {
                out.note(Note::WaitingForDown { peer, reached });
            }
        }
        if let Some((_, lost)) = self.last_reply.get_mut(&peer) {
            *lost = true;
        }
        self.retry_later(peer, out);
    }

    fn on_stop(&mut self, out: &mut Out<Self>) {
        self.auto = None;
        if self.state != State::Released {
            self.release(out);
        }
    }
}
