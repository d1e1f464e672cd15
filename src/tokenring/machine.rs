//! The token-ring state machine.
//!
//! What it guarantees (the README's fault model says the same to users):
//! * **Mutual exclusion** comes from majority leases (`super::lease`), not from
//!   the token being unique, so it holds under crashes, restarts, message
//!   loss, duplication, delay and partitions.
//! * **The token** gives order and progress. It carries a generation (`Gen`)
//!   and the ring order it learned from the `start` walk. A receiver acks
//!   every token; a sender whose token is not acked in time suspects the
//!   receiver, mints the next generation and routes around it. A node that
//!   sees no token and no beacon for the loss timeout mints a new generation
//!   (the successor of the last known holder first, the others later, so one
//!   regeneration normally wins). Tokens of a lower generation are dropped
//!   wherever they meet a node that knows a higher one, so the ring converges
//!   to one token after `start` on two nodes or a false suspicion.
//! * **Membership** changes are safe because lease votes come from every
//!   machine of the machines file, not from the ring: a `start` may build a
//!   new ring while a node of an old ring is still inside, and the two
//!   rings' majorities would not need to meet, but majorities of one fixed
//!   set always do. (Every node must use the same machines file.)
//! * **A node known down** is skipped by every pass without being retried;
//!   it is probed in the background and taken back when it answers. Only a
//!   pass that may have been lost (sent, never confirmed) mints a new
//!   generation.
//! * **Progress** needs a majority of the machines file up and connected.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng as _;

use super::lease::{Grants, Outcome, Round};
use super::msg::{Gen, Msg, Token};
use super::note::{Note, Status};
use crate::node::{NodeId, Out, Protocol, Rng};

/// The knobs of the algorithm. Defaults suit people watching a ring on one
/// machine; the simulator and tests shrink or stretch them.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a node keeps the token before passing it (when not locking).
    pub hop_delay: Duration,
    /// How long to wait for a token ack before routing around the receiver.
    pub ack_timeout: Duration,
    /// How often a node that keeps the token tells the others it is alive.
    pub beacon_interval: Duration,
    /// Silence (no token, no beacon) after which a node regenerates, before
    /// the per-rank stagger and the ring-size allowance are added.
    pub loss_timeout: Duration,
    /// Extra wait per position away from the last known holder.
    pub stagger: Duration,
    /// Length of a critical-section lease.
    pub lease: Duration,
    /// How long the `start` walk may take.
    pub discover_timeout: Duration,
    /// How often a node skipped as down is asked whether it is back.
    pub probe_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            hop_delay: Duration::from_secs(1),
            ack_timeout: Duration::from_millis(500),
            beacon_interval: Duration::from_millis(200),
            loss_timeout: Duration::from_secs(1),
            stagger: Duration::from_millis(300),
            lease: Duration::from_secs(2),
            discover_timeout: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
        }
    }
}

impl Timing {
    fn renew_every(&self) -> Duration {
        self.lease / 4
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cmd {
    Start,
    Lock,
    Unlock,
    Status,
}

#[derive(Clone, Debug)]
pub enum Timer {
    /// The hop delay of hold `seq` is over: pass the token on.
    Pass { seq: u64 },
    /// Is the token we passed on still unconfirmed after the ack timeout?
    /// (One such check is pending at a time, re-armed as needed.)
    AckCheck,
    /// Still holding in hold `seq`: tell the ring.
    Beacon { seq: u64 },
    /// Has there been no sign of a token for the loss timeout? (One watchdog
    /// is pending at a time, re-armed for the time left; `seq` numbers the
    /// arming.)
    Watchdog { seq: u64 },
    /// Lease round `round` got no majority in time.
    RoundTimeout { round: u64 },
    /// Time to renew the lease (CS entered with `round` or later).
    Renew { round: u64 },
    /// Check whether the lease ran out.
    LeaseExpiry,
    /// The `start` walk number `attempt` did not come back.
    Discover { attempt: u64 },
    /// Try to get the lease again after a lost round.
    Reacquire { round: u64 },
    /// Ask the nodes skipped as down whether they are back.
    Probe,
}

#[derive(Debug)]
enum Cs {
    Idle,
    Acquiring(Round),
    In {
        hop: u64,
        /// The holder-side end of the lease: never later than any voter's.
        lease_until: Duration,
        renewing: Option<Round>,
    },
}

#[derive(Debug)]
struct InFlight {
    token: Token,
    to: NodeId,
    /// When it was sent (or asked about again).
    sent_at: Duration,
    /// We asked the receiver for an explicit ack.
    asked_ack: bool,
}

pub struct TokenRing {
    me: NodeId,
    next: NodeId,
    cluster_size: usize,
    t: Timing,
    rng: Rng,
    /// Highest generation (and its hop) this node has heard of.
    best: Option<(Gen, u64)>,
    ring: Vec<NodeId>,
    holding: Option<Token>,
    in_flight: Option<InFlight>,
    /// When the token last arrived here, and how long its last round took.
    last_arrival: Option<Duration>,
    last_round: Option<Duration>,
    last_holder: Option<NodeId>,
    last_sighting: Option<Duration>,
    hold_seq: u64,
    watchdog_seq: u64,
    watchdog_armed: bool,
    ack_check_armed: bool,
    /// Nodes skipped as down until they answer a probe (or anything).
    suspects: BTreeSet<NodeId>,
    probe_armed: bool,
    want_cs: bool,
    cs: Cs,
    grants: Grants,
    round: u64,
    /// The walk attempt under way, if any.
    discovering: Option<u64>,
    discover_attempts: u64,
    walks_left: u32,
    /// `start`s begun here (a walk and its retries share the number).
    walks: u64,
    /// How far the current walk attempt is known to have got: (hops, at, at's next).
    reached: Option<(usize, NodeId, NodeId)>,
    /// The last walk said to loop here, so it is said once, not per retry.
    loop_said: Option<(NodeId, u64)>,
    /// Said "waiting for a majority" for the current lock already.
    warned_majority: bool,
}

/// How many times `start` walks the ring again when a walk does not return.
const WALK_RETRIES: u32 = 2;

/// A `Discover` message's fields.
struct Walk {
    origin: NodeId,
    attempt: u64,
    walk: u64,
    ring: Vec<NodeId>,
    newest: Option<Gen>,
}

impl TokenRing {
    pub fn new(me: NodeId, next: NodeId, cluster_size: usize, timing: Timing, rng: Rng) -> Self {
        TokenRing {
            me,
            next,
            cluster_size,
            grants: Grants::new(timing.lease, Duration::ZERO),
            t: timing,
            rng,
            best: None,
            ring: Vec::new(),
            holding: None,
            in_flight: None,
            last_arrival: None,
            last_round: None,
            last_holder: None,
            last_sighting: None,
            hold_seq: 0,
            watchdog_seq: 0,
            watchdog_armed: false,
            ack_check_armed: false,
            suspects: BTreeSet::new(),
            probe_armed: false,
            want_cs: false,
            cs: Cs::Idle,
            round: 0,
            discovering: None,
            discover_attempts: 0,
            walks_left: 0,
            walks: 0,
            reached: None,
            loop_said: None,
            warned_majority: false,
        }
    }

    pub fn in_cs(&self) -> bool {
        matches!(self.cs, Cs::In { .. })
    }

    pub fn holds_token(&self) -> bool {
        self.holding.is_some()
    }

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.ring.iter().copied().filter(move |&n| n != self.me)
    }

    fn broadcast(&self, msg: Msg, out: &mut Out<Self>) {
        for n in self.others() {
            out.send(n, msg.clone());
        }
    }

    /// Is `(generation, hop)` at least as new as anything this node has seen?
    /// A beacon repeats its hop while the token stays put, so equal is fine;
    /// a token must be strictly newer (see [`Self::is_new_token`]).
    fn is_current(&self, generation: Gen, hop: u64) -> bool {
        match self.best {
            None => true,
            Some((bg, bh)) => generation > bg || (generation == bg && hop >= bh),
        }
    }

    /// A token at a hop this node has already seen is a duplicate (the
    /// network delivered it twice): taking it would fork the token.
    fn is_new_token(&self, generation: Gen, hop: u64) -> bool {
        match self.best {
            None => true,
            Some((bg, bh)) => generation > bg || (generation == bg && hop > bh),
        }
    }

    fn learn(&mut self, token: &Token, holder: NodeId, now: Duration, out: &mut Out<Self>) {
        self.best = Some((token.generation, token.hop));
        if !token.ring.is_empty() {
            self.ring = token.ring.clone();
        }
        self.last_holder = Some(holder);
        self.sighting(now, out);
        // A token we keep but which is now superseded must not travel on.
        if let Some(held) = &self.holding
            && held.generation < token.generation
        {
            out.note(Note::TokenDropped {
                generation: held.generation,
                reason: "superseded",
            });
            self.holding = None;
            // Without the token there is no point collecting votes for it.
            if matches!(self.cs, Cs::Acquiring(_)) {
                self.cs = Cs::Idle;
                self.release(out);
            }
        }
        // The token we passed on was taken: it moved on (or is held) at
        // our hop or later, or a newer generation exists anyway.
        if let Some(f) = &self.in_flight
            && (f.token.generation < token.generation
                || (f.token.generation == token.generation && token.hop >= f.token.hop))
        {
            self.in_flight = None;
        }
    }

    /// Is the token coming round fast enough that its own return (or the
    /// holder's beacons) will confirm a pass well before the ack timeout?
    /// Then no explicit ack is asked for: half the messages per hop.
    fn fast_ring(&self) -> bool {
        self.last_round.is_some_and(|r| r * 4 < self.t.ack_timeout)
    }

    fn sighting(&mut self, now: Duration, out: &mut Out<Self>) {
        self.last_sighting = Some(now);
        if !self.watchdog_armed {
            self.arm_watchdog(self.loss_wait(), out);
        }
    }

    /// Arms the one pending watchdog (timers are cheap, but one per token
    /// hop is thousands a second of them).
    fn arm_watchdog(&mut self, after: Duration, out: &mut Out<Self>) {
        self.watchdog_seq += 1;
        self.watchdog_armed = true;
        out.timer(
            after,
            Timer::Watchdog {
                seq: self.watchdog_seq,
            },
        );
    }

    /// Arms the one pending ack check, unless one is pending already.
    fn arm_ack_check(&mut self, after: Duration, out: &mut Out<Self>) {
        if !self.ack_check_armed {
            self.ack_check_armed = true;
            out.timer(after, Timer::AckCheck);
        }
    }

    /// How long silence must last before this node regenerates: the base
    /// timeout, room for one slow round, and a stagger by ring distance from
    /// the last holder so that its successor acts first.
    fn loss_wait(&self) -> Duration {
        let n = self.ring.len().max(1) as u32;
        let per_hop = self.t.hop_delay.min(self.t.beacon_interval);
        let rank = match (self.last_holder, self.pos(self.me)) {
            (Some(h), Some(me)) => match self.pos(h) {
                Some(hp) => (me + self.ring.len() - hp - 1) % self.ring.len(),
                None => 0,
            },
            _ => 0,
        };
        self.t.loss_timeout + per_hop * n * 2 + self.t.stagger * rank as u32
    }

    fn pos(&self, n: NodeId) -> Option<usize> {
        self.ring.iter().position(|&x| x == n)
    }

    fn suspect(&mut self, n: NodeId, out: &mut Out<Self>) {
        if n != self.me && self.suspects.insert(n) {
            out.note(Note::PeerDown { peer: n });
            if !self.probe_armed {
                self.probe_armed = true;
                out.timer(self.t.probe_interval, Timer::Probe);
            }
        }
    }

    fn unsuspect(&mut self, n: NodeId, out: &mut Out<Self>) {
        if self.suspects.remove(&n) {
            out.note(Note::PeerUp { peer: n });
        }
    }

    fn on_probe_timer(&mut self, out: &mut Out<Self>) {
        self.probe_armed = false;
        if self.suspects.is_empty() {
            return;
        }
        for &n in &self.suspects {
            out.send(n, Msg::Probe);
        }
        self.probe_armed = true;
        out.timer(self.t.probe_interval, Timer::Probe);
    }

    /// The node the token goes to next: the first ring member after this one
    /// that is not skipped as down.
    fn successor(&self) -> Option<NodeId> {
        let n = self.ring.len();
        let start = self.pos(self.me)?;
        (1..n)
            .map(|i| self.ring[(start + i) % n])
            .find(|c| !self.suspects.contains(c))
    }

    /// This node now keeps `token`: lock it for the CS or pass it on later.
    fn hold(&mut self, token: Token, out: &mut Out<Self>) {
        self.hold_seq += 1;
        let seq = self.hold_seq;
        self.last_holder = Some(self.me);
        self.holding = Some(token);
        if self.want_cs {
            self.acquire(out);
        } else if self.t.hop_delay.is_zero() && self.ring.len() > 1 {
            self.pass(out);
            return;
        } else {
            // (A ring of one waits at least 1ms per hop rather than spin.)
            let delay = self.t.hop_delay.max(Duration::from_millis(1));
            out.timer(delay, Timer::Pass { seq });
        }
        if self.want_cs || self.t.hop_delay >= self.t.beacon_interval {
            out.timer(self.t.beacon_interval, Timer::Beacon { seq });
        }
    }

    fn pass(&mut self, out: &mut Out<Self>) {
        if self.want_cs || self.in_cs() {
            return;
        }
        let Some(mut token) = self.holding.take() else {
            return;
        };
        let now = out.now();
        if self.ring.len() <= 1 {
            // A ring of one: the token comes straight back.
            token.hop += 1;
            self.best = Some((token.generation, token.hop));
            self.sighting(now, out);
            out.note(Note::Token {
                generation: token.generation,
                hop: token.hop,
                from: self.me,
            });
            self.hold(token, out);
            return;
        }
        match self.successor() {
            Some(to) => {
                token.hop += 1;
                self.hold_seq += 1;
                let ack = !self.fast_ring();
                out.send(
                    to,
                    Msg::Token {
                        token: token.clone(),
                        ack,
                    },
                );
                self.in_flight = Some(InFlight {
                    token,
                    to,
                    sent_at: now,
                    asked_ack: ack,
                });
                self.arm_ack_check(self.t.ack_timeout, out);
            }
            None => {
                // Everyone else looks down: keep the token and try again.
                self.hold_seq += 1;
                let seq = self.hold_seq;
                self.holding = Some(token);
                out.timer(self.t.ack_timeout, Timer::Pass { seq });
                out.timer(self.t.beacon_interval, Timer::Beacon { seq });
            }
        }
    }

    /// A generation above every one this node has heard of (and above
    /// `floor`, the newest a `start` walk met on its way).
    fn mint(&self, floor: Option<Gen>) -> Gen {
        let known = self.best.map(|(g, _)| g).max(floor);
        let counter = known.map_or(0, |g| g.counter) + 1;
        Gen {
            counter,
            minter: self.me,
        }
    }

    fn on_token(&mut self, from: NodeId, token: Token, ack: bool, out: &mut Out<Self>) {
        if ack {
            out.send(
                from,
                Msg::TokenAck {
                    generation: token.generation,
                    hop: token.hop,
                },
            );
        }
        if self.best == Some((token.generation, token.hop)) {
            // A copy of the token we took last (the network repeated it, or
            // the sender asked again for the ack we answered above).
            return;
        }
        let stale = !self.is_new_token(token.generation, token.hop)
            || self
                .holding
                .as_ref()
                .is_some_and(|h| h.generation >= token.generation);
        if stale {
            out.note(Note::TokenDropped {
                generation: token.generation,
                reason: "stale",
            });
            return;
        }
        let mut token = token;
        if !token.ring.contains(&self.me) {
            // We were not in the walk (e.g. joined later): sit after the sender.
            let at = token
                .ring
                .iter()
                .position(|&x| x == from)
                .map_or(0, |p| p + 1);
            token.ring.insert(at, self.me);
        }
        let now = out.now();
        self.last_round = self.last_arrival.map(|t| now.saturating_sub(t));
        self.last_arrival = Some(now);
        self.learn(&token, self.me, now, out);
        out.note(Note::Token {
            generation: token.generation,
            hop: token.hop,
            from,
        });
        self.hold(token, out);
    }

    fn on_ack(&mut self, from: NodeId, generation: Gen, hop: u64, out: &mut Out<Self>) {
        if let Some(f) = &self.in_flight
            && f.to == from
            && f.token.generation == generation
            && f.token.hop == hop
        {
            self.in_flight = None;
            self.last_holder = Some(from);
            let now = out.now();
            self.sighting(now, out);
        }
    }

    fn on_ack_check(&mut self, out: &mut Out<Self>) {
        self.ack_check_armed = false;
        let now = out.now();
        let Some(due) = self
            .in_flight
            .as_ref()
            .map(|f| f.sent_at + self.t.ack_timeout)
        else {
            return;
        };
        if now < due {
            self.arm_ack_check(due - now, out);
            return;
        }
        let Some(mut f) = self.in_flight.take() else {
            return;
        };
        if !f.asked_ack {
            // No sign of the token since: ask the receiver whether it has
            // it before routing around it.
            f.asked_ack = true;
            f.sent_at = now;
            out.send(
                f.to,
                Msg::Token {
                    token: f.token.clone(),
                    ack: true,
                },
            );
            self.in_flight = Some(f);
            self.arm_ack_check(self.t.ack_timeout, out);
            return;
        }
        self.suspect(f.to, out);
        self.reroute(f, out);
    }

    /// The receiver of `f` did not take the token: it may or may not have
    /// it, so the token we keep becomes a new generation that supersedes any
    /// copy there.
    fn reroute(&mut self, f: InFlight, out: &mut Out<Self>) {
        let mut token = f.token;
        token.generation = self.mint(None);
        out.note(Note::TokenRerouted {
            skipped: f.to,
            generation: token.generation,
        });
        let now = out.now();
        self.learn(&token, self.me, now, out);
        token.hop = token.hop.saturating_sub(1); // the hop to the dead node did not happen
        self.hold(token, out);
        // It has waited long enough: on to the next live node now.
        self.pass(out);
    }

    fn on_beacon(&mut self, from: NodeId, token: Token, out: &mut Out<Self>) {
        if self.is_current(token.generation, token.hop) {
            let now = out.now();
            self.learn(&token, from, now, out);
        }
    }

    fn on_watchdog(&mut self, seq: u64, out: &mut Out<Self>) {
        if seq != self.watchdog_seq {
            return;
        }
        self.watchdog_armed = false;
        if self.best.is_none() {
            return;
        }
        if self.holding.is_some() || self.in_flight.is_some() {
            self.arm_watchdog(self.loss_wait(), out);
            return;
        }
        let now = out.now();
        // The latest sighting may be recent: wait out the time left.
        let due = self.last_sighting.unwrap_or_default() + self.loss_wait();
        if now < due {
            self.arm_watchdog(due - now, out);
            return;
        }
        let generation = self.mint(None);
        let hop = self.best.map_or(0, |(_, h)| h);
        let token = Token {
            generation,
            hop,
            ring: self.ring.clone(),
        };
        out.note(Note::TokenRegenerated {
            generation,
            hop,
            silent_for: now.saturating_sub(self.last_sighting.unwrap_or_default()),
        });
        self.learn(&token, self.me, now, out);
        self.broadcast(Msg::Beacon(token.clone()), out);
        self.hold(token, out);
    }

    fn start(&mut self, out: &mut Out<Self>) {
        let now = out.now();
        let alive = self
            .last_sighting
            .is_some_and(|t| now < t + self.loss_wait());
        if alive || self.holding.is_some() {
            out.note(Note::Refused(
                "a token is already circulating; `start` is for a ring without one".into(),
            ));
            return;
        }
        if self.discovering.is_some() {
            out.note(Note::Refused("already walking the ring".into()));
            return;
        }
        if self.next == self.me {
            self.finish_discovery(vec![self.me], None, out);
            return;
        }
        self.walks += 1;
        self.walks_left = WALK_RETRIES;
        self.reached = None;
        self.walk(out);
    }

    /// Sends one ring walk; a lost walk is retried by the `Discover` timer.
    fn walk(&mut self, out: &mut Out<Self>) {
        out.note(Note::Walking {
            next: self.next,
            attempt: WALK_RETRIES - self.walks_left + 1,
            tries: WALK_RETRIES + 1,
            reached: self.reached.map(|(_, at, next)| (at, next)),
        });
        self.reached = None;
        self.discover_attempts += 1;
        let attempt = self.discover_attempts;
        self.discovering = Some(attempt);
        out.send(
            self.next,
            Msg::Discover {
                origin: self.me,
                attempt,
                walk: self.walks,
                ring: vec![self.me],
                newest: None,
            },
        );
        out.timer(self.t.discover_timeout, Timer::Discover { attempt });
    }

    fn on_discover_timeout(&mut self, out: &mut Out<Self>) {
        self.discovering = None;
        if self.walks_left > 0 {
            self.walks_left -= 1;
            self.walk(out);
        } else {
            out.note(Note::StartFailed {
                origin: self.me,
                next: self.next,
                reached: self.reached.map(|(_, at, next)| (at, next)),
            });
        }
    }

    fn on_discover(&mut self, d: Walk, out: &mut Out<Self>) {
        let Walk {
            origin,
            attempt,
            walk,
            mut ring,
            newest,
        } = d;
        if origin == self.me {
            if self.discovering == Some(attempt) {
                self.discovering = None;
                self.finish_discovery(ring, newest, out);
            }
            return;
        }
        if ring.contains(&self.me) || ring.len() >= self.cluster_size {
            if self.loop_said != Some((origin, walk)) {
                self.loop_said = Some((origin, walk));
                out.note(Note::WalkLoop { origin });
            }
            return;
        }
        ring.push(self.me);
        let hops = ring.len() as u64;
        out.send(
            self.next,
            Msg::Discover {
                origin,
                attempt,
                walk,
                ring,
                newest: newest.max(self.best.map(|(g, _)| g)),
            },
        );
        // So that a walk that does not come back can say how far it got.
        out.send(
            origin,
            Msg::Walked {
                attempt,
                hops,
                at: self.me,
                next: self.next,
            },
        );
    }

    fn on_walked(&mut self, attempt: u64, hops: u64, at: NodeId, next: NodeId) {
        if self.discovering == Some(attempt)
            && self.reached.is_none_or(|(h, _, _)| (h as u64) < hops)
        {
            self.reached = Some((hops as usize, at, next));
        }
    }

    /// The walk came back: a new token for the ring it found, above every
    /// generation the walk met (so that old tokens die where they meet it).
    fn finish_discovery(&mut self, ring: Vec<NodeId>, newest: Option<Gen>, out: &mut Out<Self>) {
        let generation = self.mint(newest);
        let hop = self.best.map_or(0, |(_, h)| h);
        let token = Token {
            generation,
            hop,
            ring,
        };
        let now = out.now();
        self.learn(&token, self.me, now, out);
        out.note(Note::TokenStarted {
            generation,
            ring: token.ring.clone(),
        });
        self.broadcast(Msg::Beacon(token.clone()), out);
        self.hold(token, out);
    }

    // ---- the critical section ------------------------------------------

    /// Every machine of the machines file votes on leases.
    fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.cluster_size as u32)
            .map(NodeId)
            .filter(move |&n| n != self.me)
    }

    fn to_voters(&self, msg: Msg, out: &mut Out<Self>) {
        for n in self.voters() {
            out.send(n, msg.clone());
        }
    }

    fn acquire(&mut self, out: &mut Out<Self>) {
        if !matches!(self.cs, Cs::Idle) {
            return;
        }
        let round = self.new_round(out);
        self.cs = Cs::Acquiring(round);
        self.check_round(out);
    }

    /// Sends a lease request to every other machine and votes for itself.
    fn new_round(&mut self, out: &mut Out<Self>) -> Round {
        self.round += 1;
        let now = out.now();
        let mut round = Round::new(self.round, now, self.cluster_size.max(1));
        let mine = self.grants.request(self.me, self.round, now);
        round.answer(self.me, mine);
        self.to_voters(Msg::LeaseRequest { round: self.round }, out);
        out.timer(
            self.t.ack_timeout,
            Timer::RoundTimeout { round: self.round },
        );
        round
    }

    fn on_lease_reply(&mut self, from: NodeId, id: u64, granted: bool, out: &mut Out<Self>) {
        match &mut self.cs {
            Cs::Acquiring(r) if r.id == id => {
                r.answer(from, granted);
            }
            Cs::In {
                renewing: Some(r), ..
            } if r.id == id => {
                r.answer(from, granted);
            }
            // A late or duplicated answer. Never hand a grant back from here:
            // a duplicate of a counted grant would free a vote the lease
            // stands on. Rounds we gave up were released to everyone already.
            _ => return,
        }
        self.check_round(out);
    }

    fn check_round(&mut self, out: &mut Out<Self>) {
        let now = out.now();
        match &mut self.cs {
            Cs::Acquiring(r) => match r.outcome() {
                Outcome::Pending => {}
                Outcome::Won if r.sent_at + self.t.lease <= now => {
                    // The majority came too late: the lease it grants is
                    // over already (a slow network, or a paused process).
                    // Never enter on an expired lease; ask again.
                    self.cs = Cs::Idle;
                    self.release(out);
                    self.reacquire_later(out);
                }
                Outcome::Won => {
                    let lease_until = r.sent_at + self.t.lease;
                    let round = r.id;
                    let (generation, hop) = match self.best {
                        Some((g, h)) => (g, h),
                        None => (self.mint(None), 0),
                    };
                    self.cs = Cs::In {
                        hop,
                        lease_until,
                        renewing: None,
                    };
                    out.note(Note::CsEnter {
                        hop,
                        generation,
                        round,
                        lease_left: lease_until.saturating_sub(now),
                    });
                    out.timer(self.t.renew_every(), Timer::Renew { round });
                    out.timer(lease_until.saturating_sub(now), Timer::LeaseExpiry);
                }
                Outcome::Lost => {
                    let (granted, need) = (r.granted(), r.majority());
                    let round = r.id;
                    self.cs = Cs::Idle;
                    self.give_up_round(granted, need, round, out);
                }
            },
            Cs::In {
                renewing: Some(r),
                lease_until,
                ..
            } => match r.outcome() {
                Outcome::Pending => {}
                Outcome::Won => {
                    // `lapse` has run first, so the lease is still valid
                    // now: the new votes continue it without a gap.
                    *lease_until = (*lease_until).max(r.sent_at + self.t.lease);
                    let until = *lease_until;
                    out.note(Note::LeaseRenewed {
                        lease_left: until.saturating_sub(now),
                    });
                    if let Cs::In { renewing, .. } = &mut self.cs {
                        *renewing = None;
                    }
                    out.timer(until.saturating_sub(now), Timer::LeaseExpiry);
                }
                Outcome::Lost => {
                    if let Cs::In { renewing, .. } = &mut self.cs {
                        *renewing = None;
                    }
                }
            },
            _ => {}
        }
    }

    /// A round failed: release what we got, and try again after a random
    /// pause (so two competing holders do not collide forever).
    fn give_up_round(&mut self, granted: usize, need: usize, round: u64, out: &mut Out<Self>) {
        self.release(out);
        if !self.warned_majority {
            self.warned_majority = true;
            out.note(Note::WaitingForMajority {
                granted,
                need,
                voters: self.cluster_size,
            });
        }
        let ms = self.rng.random_range(50..250);
        out.timer(Duration::from_millis(ms), Timer::Reacquire { round });
    }

    fn reacquire_later(&mut self, out: &mut Out<Self>) {
        let ms = self.rng.random_range(50..250);
        out.timer(
            Duration::from_millis(ms),
            Timer::Reacquire { round: self.round },
        );
    }

    /// Frees every vote given for our latest round.
    fn release(&mut self, out: &mut Out<Self>) {
        self.grants.release(self.me, self.round);
        self.to_voters(Msg::LeaseRelease { round: self.round }, out);
    }

    fn on_round_timeout(&mut self, id: u64, out: &mut Out<Self>) {
        match &self.cs {
            Cs::Acquiring(r) if r.id == id => {
                let (granted, need) = (r.granted(), r.majority());
                self.cs = Cs::Idle;
                self.give_up_round(granted, need, id, out);
            }
            Cs::In {
                renewing: Some(r), ..
            } if r.id == id => {
                if let Cs::In { renewing, .. } = &mut self.cs {
                    *renewing = None;
                }
            }
            _ => {}
        }
    }

    fn on_renew(&mut self, out: &mut Out<Self>) {
        let Cs::In { renewing: None, .. } = &self.cs else {
            return;
        };
        let round = self.new_round(out);
        let id = round.id;
        if let Cs::In { renewing, .. } = &mut self.cs {
            *renewing = Some(round);
        }
        self.check_round(out);
        out.timer(self.t.renew_every(), Timer::Renew { round: id });
    }

    /// If the lease has run out, the section is over, and it ended at the
    /// lease's end however late this node finds out (it may have been
    /// paused, or its timer late). Runs before anything else a node does,
    /// so nothing it does after the lease end counts as inside.
    fn lapse(&mut self, out: &mut Out<Self>) {
        let now = out.now();
        if let Cs::In {
            lease_until, hop, ..
        } = self.cs
            && now >= lease_until
        {
            self.cs = Cs::Idle;
            out.note(Note::CsLost {
                hop,
                late: now - lease_until,
            });
            self.release(out);
            // The user still wants in: try again while we have the token.
            if self.holding.is_some() {
                self.reacquire_later(out);
            }
        }
    }

    fn lock(&mut self, out: &mut Out<Self>) {
        if self.in_cs() {
            out.note(Note::Refused("already in the critical section".into()));
            return;
        }
        if self.want_cs {
            out.note(Note::Refused(
                "already waiting for the critical section".into(),
            ));
            return;
        }
        self.want_cs = true;
        self.warned_majority = false;
        out.note(Note::LockRequested {
            no_token: self.best.is_none(),
        });
        if self.holding.is_some() {
            self.hold_seq += 1;
            out.timer(self.t.beacon_interval, Timer::Beacon { seq: self.hold_seq });
            self.acquire(out);
        }
    }

    fn unlock(&mut self, out: &mut Out<Self>) {
        if let Cs::In { hop, .. } = self.cs {
            self.want_cs = false;
            self.cs = Cs::Idle;
            out.note(Note::CsExit { hop });
            self.release(out);
            self.pass(out);
        } else if self.want_cs {
            self.want_cs = false;
            if matches!(self.cs, Cs::Acquiring(_)) {
                self.cs = Cs::Idle;
                self.release(out);
            }
            out.note(Note::LockCancelled);
            self.pass(out);
        } else {
            out.note(Note::Refused("not in the critical section".into()));
        }
    }

    fn status(&self, out: &mut Out<Self>) {
        let now = out.now();
        out.note(Note::Status(Status {
            me: self.me,
            next: self.next,
            ring: self.ring.clone(),
            generation: self.best.map(|(g, _)| g),
            hop: self.best.map_or(0, |(_, h)| h),
            holding: self.holding.is_some(),
            last_holder: self.last_holder,
            in_cs: self.in_cs(),
            waiting: self.want_cs && !self.in_cs(),
            last_seen_ago: self.last_sighting.map(|t| now.saturating_sub(t)),
            suspects: self.suspects.iter().copied().collect(),
            lease_granted_to: self.grants.holder(now),
            voters: self.cluster_size,
        }));
    }
}

impl Protocol for TokenRing {
    type Msg = Msg;
    type Timer = Timer;
    type Cmd = Cmd;
    type Note = Note;

    fn on_start(&mut self, out: &mut Out<Self>) {
        self.grants = Grants::new(self.t.lease, out.now());
        // Whoever skipped us while we were down may take us back now.
        for n in 0..self.cluster_size as u32 {
            if NodeId(n) != self.me {
                out.send(NodeId(n), Msg::Rejoin);
            }
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, out: &mut Out<Self>) {
        self.lapse(out);
        // Anything from a node skipped as down shows it is back.
        self.unsuspect(from, out);
        match msg {
            Msg::Token { token, ack } => self.on_token(from, token, ack, out),
            Msg::TokenAck { generation, hop } => self.on_ack(from, generation, hop, out),
            Msg::Beacon(t) => self.on_beacon(from, t, out),
            Msg::Discover {
                origin,
                attempt,
                walk,
                ring,
                newest,
            } => self.on_discover(
                Walk {
                    origin,
                    attempt,
                    walk,
                    ring,
                    newest,
                },
                out,
            ),
            Msg::Walked {
                attempt,
                hops,
                at,
                next,
            } => self.on_walked(attempt, hops, at, next),
            Msg::Probe => out.send(from, Msg::Rejoin),
            Msg::LeaseRequest { round } => {
                let now = out.now();
                let granted = self.grants.request(from, round, now);
                out.send(from, Msg::LeaseReply { round, granted });
            }
            Msg::LeaseReply { round, granted } => self.on_lease_reply(from, round, granted, out),
            Msg::LeaseRelease { round } => self.grants.release(from, round),
            Msg::Rejoin => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Out<Self>) {
        self.lapse(out);
        match timer {
            Timer::Pass { seq } if seq == self.hold_seq => self.pass(out),
            Timer::AckCheck => self.on_ack_check(out),
            Timer::Beacon { seq } if seq == self.hold_seq => {
                if let Some(t) = &self.holding {
                    self.broadcast(Msg::Beacon(t.clone()), out);
                    let now = out.now();
                    self.sighting(now, out);
                    out.timer(self.t.beacon_interval, Timer::Beacon { seq });
                }
            }
            Timer::Watchdog { seq } => self.on_watchdog(seq, out),
            Timer::RoundTimeout { round } => self.on_round_timeout(round, out),
            Timer::Renew { .. } => self.on_renew(out),
            // (`lapse` above has done the work.)
            Timer::LeaseExpiry => {}
            Timer::Probe => self.on_probe_timer(out),
            Timer::Discover { attempt } if self.discovering == Some(attempt) => {
                self.on_discover_timeout(out)
            }
            Timer::Reacquire { round }
                if round == self.round && self.want_cs && self.holding.is_some() =>
            {
                self.acquire(out);
            }
            _ => {}
        }
    }

    fn on_command(&mut self, cmd: Cmd, out: &mut Out<Self>) {
        self.lapse(out);
        match cmd {
            Cmd::Start => self.start(out),
            Cmd::Lock => self.lock(out),
            Cmd::Unlock => self.unlock(out),
            Cmd::Status => self.status(out),
        }
    }

    /// Leaving on purpose: out of the critical section, votes released, and
    /// the token handed on now rather than lost with us.
    fn on_stop(&mut self, out: &mut Out<Self>) {
        self.lapse(out);
        self.want_cs = false;
        match self.cs {
            Cs::In { hop, .. } => {
                out.note(Note::CsExit { hop });
                self.release(out);
            }
            Cs::Acquiring(_) => self.release(out),
            Cs::Idle => {}
        }
        self.cs = Cs::Idle;
        self.pass(out);
    }

    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        self.lapse(out);
        if up {
            self.unsuspect(peer, out);
        } else if self.ring.contains(&peer) {
            self.suspect(peer, out);
            if let Some(f) = self.in_flight.take_if(|f| f.to == peer) {
                self.reroute(f, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rand::SeedableRng;

    use super::*;
    use crate::node::Effect;

    /// Three machines wired by hand: messages queue until `deliver_all`,
    /// timers are recorded and fired only when a test says so.
    struct Ring {
        m: Vec<TokenRing>,
        now: Duration,
        wire: VecDeque<(NodeId, NodeId, Msg)>,
        timers: Vec<(NodeId, Timer)>,
        notes: Vec<(NodeId, Note)>,
    }

    const A: NodeId = NodeId(0);
    const B: NodeId = NodeId(1);
    const C: NodeId = NodeId(2);

    impl Ring {
        fn new() -> Ring {
            let t = Timing {
                hop_delay: Duration::from_millis(10),
                ..Timing::default()
            };
            let mut r = Ring {
                m: (0..3)
                    .map(|i| {
                        TokenRing::new(
                            NodeId(i),
                            NodeId((i + 1) % 3),
                            3,
                            t.clone(),
                            Rng::seed_from_u64(i as u64),
                        )
                    })
                    .collect(),
                now: Duration::ZERO,
                wire: VecDeque::new(),
                timers: Vec::new(),
                notes: Vec::new(),
            };
            for i in 0..3 {
                r.step(NodeId(i), |m, out| m.on_start(out));
            }
            r.wire.clear(); // the Rejoin greetings
            // Past the quiet period, so leases can be granted.
            r.now = Duration::from_secs(10);
            r
        }

        fn step(&mut self, n: NodeId, f: impl FnOnce(&mut TokenRing, &mut Out<TokenRing>)) {
            let mut out = Out::new(self.now);
            f(&mut self.m[n.index()], &mut out);
            for e in out.drain() {
                match e {
                    Effect::Send { to, msg } => self.wire.push_back((n, to, msg)),
                    Effect::Timer { timer, .. } => self.timers.push((n, timer)),
                    Effect::Note(note) => self.notes.push((n, note)),
                }
            }
        }

        fn deliver_all(&mut self) {
            while let Some((from, to, msg)) = self.wire.pop_front() {
                self.step(to, |m, out| m.on_message(from, msg, out));
            }
        }

        /// Delivers messages until one matching `pred` is next, and returns it.
        fn take_next(&mut self, pred: impl Fn(&Msg) -> bool) -> Option<(NodeId, NodeId, Msg)> {
            while let Some((from, to, msg)) = self.wire.pop_front() {
                if pred(&msg) {
                    return Some((from, to, msg));
                }
                self.step(to, |m, out| m.on_message(from, msg, out));
            }
            None
        }

        fn fire(&mut self, n: NodeId, pick: impl Fn(&Timer) -> bool) {
            let i = self
                .timers
                .iter()
                .rposition(|(m, t)| *m == n && pick(t))
                .expect("timer was set");
            let (_, t) = self.timers.remove(i);
            self.step(n, |m, out| m.on_timer(t, out));
        }

        fn notes_of(&self, n: NodeId) -> Vec<&Note> {
            self.notes
                .iter()
                .filter(|(m, _)| *m == n)
                .map(|(_, x)| x)
                .collect()
        }
    }

    /// A ring where A has walked the ring, minted the token and keeps it
    /// for its hop delay.
    fn started() -> Ring {
        let mut r = Ring::new();
        r.step(A, |m, out| m.on_command(Cmd::Start, out));
        r.deliver_all();
        assert!(r.m[0].holds_token());
        r
    }

    fn next_token(r: &mut Ring) -> (NodeId, NodeId, Msg) {
        r.take_next(|m| matches!(m, Msg::Token { .. }))
            .expect("a token on the wire")
    }

    #[test]
    fn start_walks_the_ring_and_mints_one_token() {
        let mut r = started();
        assert!(
            r.notes_of(A)
                .iter()
                .any(|x| matches!(x, Note::TokenStarted { ring, .. } if ring == &vec![A, B, C]))
        );
        r.fire(A, |t| matches!(t, Timer::Pass { .. }));
        let (_, to, msg) = next_token(&mut r);
        assert_eq!(to, B, "the first hop goes to A's successor");
        assert!(matches!(
            msg,
            Msg::Token {
                token: Token { hop: 1, .. },
                ..
            }
        ));
        // A second `start` is refused while the token is alive.
        r.step(C, |m, out| m.on_command(Cmd::Start, out));
        assert!(matches!(r.notes.last(), Some((_, Note::Refused(_)))));
    }

    #[test]
    fn a_duplicated_token_is_dropped_not_forked() {
        let mut r = started();
        r.fire(A, |t| matches!(t, Timer::Pass { .. }));
        let (from, to, msg) = next_token(&mut r);
        r.step(to, |m, out| m.on_message(from, msg.clone(), out));
        // B passes it on after its hop delay, then the network delivers it again.
        r.fire(B, |t| matches!(t, Timer::Pass { .. }));
        r.step(to, |m, out| m.on_message(from, msg, out));
        let b = r.notes_of(B);
        assert_eq!(
            b.iter().filter(|n| matches!(n, Note::Token { .. })).count(),
            1
        );
        // The copy is ignored quietly (it may be a sender asking again for
        // an ack), and not taken.
        assert!(!b.iter().any(|n| matches!(n, Note::TokenDropped { .. })));
        assert!(!r.m[1].holds_token());
    }

    #[test]
    fn the_critical_section_needs_a_majority_of_lease_votes() {
        let mut r = started();
        // C's vote is taken by B (say, B asked with a stale token).
        r.step(C, |m, out| {
            m.on_message(B, Msg::LeaseRequest { round: 1 }, out)
        });
        r.wire.clear();
        r.step(A, |m, out| m.on_command(Cmd::Lock, out));
        // C refuses; with only its own vote A is not inside.
        let (from, to, msg) = r
            .take_next(|m| matches!(m, Msg::LeaseRequest { .. }))
            .filter(|(_, to, _)| *to == B)
            .expect("request to B first");
        r.step(C, |m, out| {
            m.on_message(A, Msg::LeaseRequest { round: 1 }, out)
        });
        r.wire.retain(|(f, _, _)| *f != A);
        r.deliver_all(); // C's refusal
        assert!(!r.m[0].in_cs());
        // B grants: A has 2 of 3 (itself and B).
        r.step(to, |m, out| m.on_message(from, msg, out));
        r.deliver_all();
        assert!(r.m[0].in_cs(), "{:?}", r.notes_of(A));
        assert!(
            r.notes_of(A)
                .iter()
                .any(|n| matches!(n, Note::CsEnter { .. }))
        );
        // Unlock releases the votes and passes the token on.
        r.step(A, |m, out| m.on_command(Cmd::Unlock, out));
        assert!(!r.m[0].in_cs());
        assert!(
            r.wire
                .iter()
                .any(|(_, _, m)| matches!(m, Msg::LeaseRelease { .. }))
        );
        assert!(
            r.wire
                .iter()
                .any(|(_, to, m)| *to == B && matches!(m, Msg::Token { .. }))
        );
    }

    #[test]
    fn votes_that_arrive_after_the_lease_window_never_let_a_node_in() {
        let mut r = started();
        r.step(A, |m, out| m.on_command(Cmd::Lock, out));
        // The grants come back only once the lease window counted from
        // the request has passed (a slow network, or A was paused).
        r.now += Timing::default().lease + Duration::from_millis(1);
        let mut released = false;
        while let Some((from, to, msg)) = r.wire.pop_front() {
            released |= from == A && matches!(msg, Msg::LeaseRelease { .. });
            r.step(to, |m, out| m.on_message(from, msg, out));
        }
        assert!(!r.m[0].in_cs(), "{:?}", r.notes_of(A));
        assert!(
            !r.notes_of(A)
                .iter()
                .any(|n| matches!(n, Note::CsEnter { .. })),
            "entered on an expired lease: {:?}",
            r.notes_of(A)
        );
        // The votes are handed back, and A tries again later.
        assert!(released, "the late votes were kept");
        r.fire(A, |t| matches!(t, Timer::Reacquire { .. }));
        r.deliver_all();
        assert!(r.m[0].in_cs(), "{:?}", r.notes_of(A));
    }

    #[test]
    fn an_unacked_token_is_rerouted_as_a_new_generation() {
        let mut r = started();
        r.fire(A, |t| matches!(t, Timer::Pass { .. }));
        next_token(&mut r); // lost on the way to B
        r.now += Duration::from_secs(1);
        r.fire(A, |t| matches!(t, Timer::AckCheck));
        assert!(
            r.notes_of(A)
                .iter()
                .any(|n| matches!(n, Note::PeerDown { peer } if *peer == B))
        );
        let (_, to, msg) = next_token(&mut r);
        assert_eq!(to, C, "around B");
        let Msg::Token { token: t, .. } = msg else {
            unreachable!()
        };
        assert_eq!(t.generation.counter, 2);
        // If B had the old copy after all, it is dropped where it meets the new one.
        let old = Token {
            generation: Gen {
                counter: 1,
                minter: A,
            },
            hop: 1,
            ring: vec![A, B, C],
        };
        r.step(C, |m, out| {
            m.on_message(
                A,
                Msg::Token {
                    token: t.clone(),
                    ack: true,
                },
                out,
            )
        });
        r.step(C, |m, out| {
            m.on_message(
                B,
                Msg::Token {
                    token: old,
                    ack: true,
                },
                out,
            )
        });
        assert!(matches!(
            r.notes_of(C).last(),
            Some(Note::TokenDropped { .. })
        ));
    }

    #[test]
    fn when_the_holder_goes_silent_the_ring_regenerates_the_token() {
        let mut r = started();
        r.fire(A, |t| matches!(t, Timer::Pass { .. }));
        r.deliver_all(); // B has the token, and then B dies with it
        assert!(r.m[1].holds_token());
        // A stale watchdog does nothing; the latest one regenerates, once
        // the silence has lasted the loss timeout.
        r.step(C, |m, out| m.on_timer(Timer::Watchdog { seq: 0 }, out));
        assert!(!r.m[2].holds_token());
        let seq = r.m[2].watchdog_seq;
        r.step(C, |m, out| m.on_timer(Timer::Watchdog { seq }, out));
        assert!(!r.m[2].holds_token(), "too early: it re-arms");
        r.now += Duration::from_secs(10);
        let seq = r.m[2].watchdog_seq;
        r.step(C, |m, out| m.on_timer(Timer::Watchdog { seq }, out));
        assert!(r.m[2].holds_token());
        assert!(r.notes_of(C).iter().any(|n| matches!(
            n,
            Note::TokenRegenerated { generation, .. } if generation.counter == 2 && generation.minter == C
        )));
        // The others hear of it at once.
        assert!(
            r.wire
                .iter()
                .any(|(f, to, m)| *f == C && *to == A && matches!(m, Msg::Beacon(_)))
        );
    }
}
