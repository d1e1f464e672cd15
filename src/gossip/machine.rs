//! The gossip state machine: rumor mongering with feedback plus push-pull
//! anti-entropy (Demers et al., 1987).
//!
//! * A word a node learns (or makes) is *hot*, with the set of neighbors not
//!   yet told. Every round the node picks up to `fanout` of those neighbors
//!   and sends each one message with all its hot words for it (batching).
//!   A neighbor that already knew a word says so in its next message back;
//!   then the sender loses interest in that word with probability 1/k.
//!   A word told to every neighbor is cold.
//! * Anti-entropy makes dissemination complete: every interval a node sends
//!   its digest (per origin, the ranges of sequence numbers it knows) to a
//!   neighbor (the neighbors in a shuffled cycle, so each comes up once per
//!   cycle), which answers with the words the sender lacks and its
//!   own digest, and the sender sends back what that neighbor lacks. A link
//!   coming (back) up triggers an exchange at once, so a restarted node or a
//!   healed partition catches up in one round trip.
//! * Neighbors are links both ends know: `Add` sends `Link`, the peer adds us
//!   and answers `LinkAck`. Two nodes adding each other at once both just work.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng as _;
use rand::seq::{IndexedRandom as _, SliceRandom as _};

use super::msg::{Digest, Msg, Word, WordId};
use super::note::{Learned, Note};
use crate::node::{NodeId, Out, Protocol, Rng};

/// A rumor or repair message carries at most this many bytes of words, a
/// quarter of the transport's message limit, so that long node names still
/// fit.
pub const REPAIR_BYTES: usize = crate::net::MAX_MESSAGE_BYTES / 4;
/// What a word costs in a message besides its text (its origin's name,
/// sequence number, field tags), generously.
const WORD_OVERHEAD: usize = 48;
/// Most "I knew that already" word ids in one message (each is a name and
/// a number: this many stay well under the message limit).
const MAX_FEEDBACK: usize = REPAIR_BYTES / WORD_OVERHEAD;

#[derive(Clone, Debug)]
pub struct Params {
    /// Neighbors pushed to per round; `None`: every neighbor with news.
    pub fanout: Option<usize>,
    /// Lose interest with probability 1/k on each "already knew it".
    pub k: u32,
    /// Gossip round interval.
    pub interval: Duration,
    /// Anti-entropy interval.
    pub anti_entropy: Duration,
    /// Mean time between generated words (exponential inter-arrival times).
    pub mean_interval: Duration,
    /// Whether the generator starts on (`gen on|off` switches it).
    pub generate: bool,
    /// How long a `Link` may go unanswered.
    pub link_timeout: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            fanout: None,
            k: 4,
            interval: Duration::from_millis(100),
            anti_entropy: Duration::from_secs(2),
            mean_interval: Duration::from_secs(30),
            generate: true,
            link_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Link with a peer; `persistent` keeps trying while it is down.
    Add {
        peer: NodeId,
        persistent: bool,
    },
    Remove(NodeId),
    /// Inject a word now.
    Say(String),
    /// Turn the word generator on or off.
    Generate(bool),
    Peers,
    Words,
    Status,
}

#[derive(Clone, Debug)]
pub enum Timer {
    Round,
    AntiEntropy,
    Generate { epoch: u64 },
    LinkTimeout { peer: NodeId, attempt: u64 },
}

pub struct Gossip {
    me: NodeId,
    p: Params,
    rng: Rng,
    words_list: &'static [&'static str],
    neighbors: BTreeSet<NodeId>,
    linking: BTreeMap<NodeId, (u64, bool)>,
    retrying: BTreeSet<NodeId>,
    link_attempts: u64,
    known: Digest,
    texts: BTreeMap<WordId, Learned>,
    /// Hot words and the neighbors not told yet.
    hot: BTreeMap<WordId, BTreeSet<NodeId>>,
    /// Anti-entropy partners still to come in this cycle.
    ae_cycle: Vec<NodeId>,
    /// Per neighbor: words it pushed us that we already knew.
    feedback: BTreeMap<NodeId, Vec<WordId>>,
    next_seq: u64,
    generating: bool,
    gen_epoch: u64,
    pub sent: u64,
    pub received: u64,
}

impl Gossip {
    /// `first_seq` must exceed every sequence number an earlier life of this
    /// node used (the driver passes the start time in µs).
    pub fn new(
        me: NodeId,
        neighbors: impl IntoIterator<Item = NodeId>,
        first_seq: u64,
        params: Params,
        words_list: &'static [&'static str],
        rng: Rng,
    ) -> Self {
        Gossip {
            me,
            generating: params.generate,
            p: params,
            rng,
            words_list,
            neighbors: neighbors.into_iter().filter(|&n| n != me).collect(),
            linking: BTreeMap::new(),
            retrying: BTreeSet::new(),
            link_attempts: 0,
            known: Digest::new(),
            texts: BTreeMap::new(),
            hot: BTreeMap::new(),
            ae_cycle: Vec::new(),
            feedback: BTreeMap::new(),
            next_seq: first_seq.max(1),
            gen_epoch: 0,
            sent: 0,
            received: 0,
        }
    }

    pub fn neighbors(&self) -> &BTreeSet<NodeId> {
        &self.neighbors
    }

    pub fn knows(&self, id: WordId) -> bool {
        self.texts.contains_key(&id)
    }

    pub fn word_count(&self) -> usize {
        self.texts.len()
    }

    fn send(&mut self, to: NodeId, msg: Msg, out: &mut Out<Self>) {
        self.sent += 1;
        out.send(to, msg);
    }

    fn learn(&mut self, word: Word, from: Option<NodeId>, out: &mut Out<Self>) -> bool {
        if !self
            .known
            .entry(word.id.origin)
            .or_default()
            .insert(word.id.seq)
        {
            return false;
        }
        let pending: BTreeSet<NodeId> = self
            .neighbors
            .iter()
            .copied()
            .filter(|&n| Some(n) != from && n != word.id.origin)
            .collect();
        if !pending.is_empty() {
            self.hot.insert(word.id, pending);
        }
        let learned = Learned {
            text: word.text,
            from,
            at: out.now(),
        };
        out.note(Note::Learned {
            id: word.id,
            text: learned.text.clone(),
            from,
        });
        self.texts.insert(word.id, learned);
        true
    }

    fn make_word(&mut self, text: String, out: &mut Out<Self>) {
        let id = WordId {
            origin: self.me,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.learn(Word { id, text }, None, out);
    }

    fn arm_generator(&mut self, out: &mut Out<Self>) {
        self.gen_epoch += 1;
        if self.generating && !self.p.mean_interval.is_zero() {
            let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
            out.timer(
                self.p.mean_interval.mul_f64(-u.ln()),
                Timer::Generate {
                    epoch: self.gen_epoch,
                },
            );
        }
    }

    fn round(&mut self, out: &mut Out<Self>) {
        // Who has news waiting: hot words not yet told, or feedback owed.
        let mut candidates: BTreeSet<NodeId> = self.hot.values().flatten().copied().collect();
        candidates.retain(|n| self.neighbors.contains(n));
        let chosen: Vec<NodeId> = match self.p.fanout {
            None => candidates.into_iter().collect(),
            Some(f) => {
                let all: Vec<NodeId> = candidates.into_iter().collect();
                all.choose_multiple(&mut self.rng, f).copied().collect()
            }
        };
        for n in chosen {
            // At most a message's worth per neighbor per round; the rest
            // stays hot for it (a neighbor back from a long outage may be
            // owed far more than one message can carry).
            let mut words = Vec::new();
            let mut size = 0;
            for (id, pending) in &mut self.hot {
                if !pending.contains(&n) {
                    continue;
                }
                let Some(l) = self.texts.get(id) else {
                    pending.remove(&n);
                    continue;
                };
                let cost = l.text.len() + WORD_OVERHEAD;
                if !words.is_empty() && size + cost > REPAIR_BYTES {
                    break;
                }
                size += cost;
                pending.remove(&n);
                words.push(Word {
                    id: *id,
                    text: l.text.clone(),
                });
            }
            let mut known = self.feedback.remove(&n).unwrap_or_default();
            if known.len() > MAX_FEEDBACK {
                let rest = known.split_off(MAX_FEEDBACK);
                self.feedback.insert(n, rest);
            }
            self.send(n, Msg::Rumors { words, known }, out);
        }
        self.hot.retain(|_, pending| !pending.is_empty());
        // Feedback nobody carried this round goes on its own.
        for (n, mut known) in std::mem::take(&mut self.feedback) {
            if known.len() > MAX_FEEDBACK {
                let rest = known.split_off(MAX_FEEDBACK);
                self.feedback.insert(n, rest);
            }
            if !known.is_empty() {
                self.send(
                    n,
                    Msg::Rumors {
                        words: Vec::new(),
                        known,
                    },
                    out,
                );
            }
        }
        out.timer(self.p.interval, Timer::Round);
    }

    fn on_rumors(
        &mut self,
        from: NodeId,
        words: Vec<Word>,
        known: Vec<WordId>,
        out: &mut Out<Self>,
    ) {
        for w in words {
            let id = w.id;
            if !self.learn(w, Some(from), out) {
                self.feedback.entry(from).or_default().push(id);
            }
        }
        for id in known {
            if self.hot.contains_key(&id) && self.rng.random_range(0..self.p.k.max(1)) == 0 {
                self.hot.remove(&id);
            }
        }
    }

    /// Words we know that `have` lacks.
    fn missing_from(&self, have: &Digest) -> Vec<Word> {
        let mut words = Vec::new();
        for (&origin, mine) in &self.known {
            let theirs = have.get(&origin);
            for (s, e) in mine.ranges() {
                for seq in s..=e {
                    if theirs.is_some_and(|t| t.contains(seq)) {
                        continue;
                    }
                    let id = WordId { origin, seq };
                    if let Some(l) = self.texts.get(&id) {
                        words.push(Word {
                            id,
                            text: l.text.clone(),
                        });
                    }
                }
            }
        }
        words
    }

    /// Sends `words` to `to` as repairs, each under [`REPAIR_BYTES`] (the
    /// transport refuses a message over its limit, and a node that missed
    /// many words must still catch up); `have` goes with the last one.
    fn send_repairs(
        &mut self,
        to: NodeId,
        words: Vec<Word>,
        have: Option<Digest>,
        out: &mut Out<Self>,
    ) {
        let mut chunk = Vec::new();
        let mut size = 0;
        for w in words {
            let cost = w.text.len() + WORD_OVERHEAD;
            if !chunk.is_empty() && size + cost > REPAIR_BYTES {
                let words = std::mem::take(&mut chunk);
                self.send(to, Msg::Repair { words, have: None }, out);
                size = 0;
            }
            size += cost;
            chunk.push(w);
        }
        if !chunk.is_empty() || have.is_some() {
            self.send(to, Msg::Repair { words: chunk, have }, out);
        }
    }

    fn exchange_with(&mut self, peer: NodeId, out: &mut Out<Self>) {
        let have = self.known.clone();
        self.send(peer, Msg::Digest { have, reply: true }, out);
    }

    /// The next anti-entropy partner: neighbors in a shuffled cycle, so
    /// the choice is random but every neighbor comes up once per cycle
    /// (with a random pick, two neighbors can miss each other for long).
    fn next_partner(&mut self) -> Option<NodeId> {
        loop {
            if self.ae_cycle.is_empty() {
                self.ae_cycle = self.neighbors.iter().copied().collect();
                self.ae_cycle.shuffle(&mut self.rng);
                if self.ae_cycle.is_empty() {
                    return None;
                }
            }
            let n = self.ae_cycle.pop()?;
            if self.neighbors.contains(&n) {
                return Some(n);
            }
        }
    }

    fn anti_entropy(&mut self, out: &mut Out<Self>) {
        if let Some(peer) = self.next_partner() {
            self.exchange_with(peer, out);
        }
        // ±20% jitter so that nodes do not fall into lockstep.
        let jitter = self.rng.random_range(0.8..1.2);
        out.timer(self.p.anti_entropy.mul_f64(jitter), Timer::AntiEntropy);
    }

    fn add(&mut self, peer: NodeId, persistent: bool, out: &mut Out<Self>) {
        if peer == self.me {
            out.note(Note::Refused("a node cannot be its own neighbor".into()));
        } else if self.neighbors.contains(&peer) {
            out.note(Note::AlreadyLinked { peer });
        } else {
            self.link_attempts += 1;
            let attempt = self.link_attempts;
            self.linking.insert(peer, (attempt, persistent));
            self.send(peer, Msg::Link, out);
            out.timer(self.p.link_timeout, Timer::LinkTimeout { peer, attempt });
        }
    }

    /// `peer` is a neighbor now. `by_peer`: it asked (a `Link` arrived);
    /// otherwise it answered our `Link`. If we were adding it ourselves, our
    /// add is done either way (two nodes adding each other at once).
    fn linked(&mut self, peer: NodeId, by_peer: bool, out: &mut Out<Self>) {
        let was_adding = self.linking.remove(&peer).is_some();
        self.retrying.remove(&peer);
        let new = self.neighbors.insert(peer);
        if new {
            self.exchange_with(peer, out);
        }
        if was_adding || !by_peer {
            out.note(Note::Linked { peer });
        } else if new {
            out.note(Note::LinkedBy { peer });
        }
    }
}

impl Protocol for Gossip {
    type Msg = Msg;
    type Timer = Timer;
    type Cmd = Cmd;
    type Note = Note;

    fn on_start(&mut self, out: &mut Out<Self>) {
        out.timer(self.p.interval, Timer::Round);
        let first = self.p.anti_entropy.mul_f64(self.rng.random_range(0.1..1.0));
        out.timer(first, Timer::AntiEntropy);
        self.arm_generator(out);
        // A (re)started node asks its neighbors for everything at once.
        for n in self.neighbors.clone() {
            self.exchange_with(n, out);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, out: &mut Out<Self>) {
        self.received += 1;
        match msg {
            Msg::Rumors { words, known } => self.on_rumors(from, words, known, out),
            Msg::Digest { have, reply } => {
                let words = self.missing_from(&have);
                let mine = reply.then(|| self.known.clone());
                self.send_repairs(from, words, mine, out);
            }
            Msg::Repair { words, have } => {
                for w in words {
                    self.learn(w, Some(from), out);
                }
                if let Some(have) = have {
                    let words = self.missing_from(&have);
                    self.send_repairs(from, words, None, out);
                }
            }
            Msg::Link => {
                self.send(from, Msg::LinkAck, out);
                self.linked(from, true, out);
            }
            Msg::LinkAck => {
                if self.linking.contains_key(&from) {
                    self.linked(from, false, out);
                }
            }
            Msg::Unlink => {
                if self.neighbors.remove(&from) {
                    out.note(Note::UnlinkedBy { peer: from });
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Out<Self>) {
        match timer {
            Timer::Round => self.round(out),
            Timer::AntiEntropy => self.anti_entropy(out),
            Timer::Generate { epoch } if epoch == self.gen_epoch && self.generating => {
                if let Some(&w) = self.words_list.choose(&mut self.rng) {
                    self.make_word(w.to_string(), out);
                }
                self.arm_generator(out);
            }
            Timer::LinkTimeout { peer, attempt } => {
                if let Some(&(a, persistent)) = self.linking.get(&peer)
                    && a == attempt
                {
                    if persistent {
                        // Say so once; then keep asking quietly.
                        if !self.retrying.contains(&peer) {
                            self.retrying.insert(peer);
                            out.note(Note::LinkFailed {
                                peer,
                                retrying: true,
                            });
                        }
                        self.link_attempts += 1;
                        let attempt = self.link_attempts;
                        self.linking.insert(peer, (attempt, true));
                        self.send(peer, Msg::Link, out);
                        out.timer(self.p.link_timeout, Timer::LinkTimeout { peer, attempt });
                    } else {
                        self.linking.remove(&peer);
                        out.note(Note::LinkFailed {
                            peer,
                            retrying: false,
                        });
                    }
                }
            }
            Timer::Generate { .. } => {}
        }
    }

    fn on_command(&mut self, cmd: Cmd, out: &mut Out<Self>) {
        match cmd {
            Cmd::Add { peer, persistent } => self.add(peer, persistent, out),
            Cmd::Remove(peer) => {
                if self.neighbors.remove(&peer) {
                    self.send(peer, Msg::Unlink, out);
                    for pending in self.hot.values_mut() {
                        pending.remove(&peer);
                    }
                    out.note(Note::Unlinked { peer });
                } else if self.linking.remove(&peer).is_some() {
                    self.retrying.remove(&peer);
                    out.note(Note::StoppedLinking { peer });
                } else {
                    out.note(Note::Refused("that node is not a neighbor".into()));
                }
            }
            Cmd::Say(text) => self.make_word(text, out),
            Cmd::Generate(on) => {
                self.generating = on;
                self.arm_generator(out);
                out.note(Note::Generator {
                    on,
                    mean: self.p.mean_interval,
                });
            }
            Cmd::Peers => out.note(Note::Peers {
                neighbors: self.neighbors.iter().copied().collect(),
                linking: self.linking.keys().copied().collect(),
            }),
            Cmd::Words => {
                let now = out.now();
                let mut list: Vec<_> = self
                    .texts
                    .iter()
                    .map(|(id, l)| (*id, l.text.clone(), l.from, now.saturating_sub(l.at)))
                    .collect();
                list.sort_by_key(|w| std::cmp::Reverse(w.3));
                out.note(Note::Words(list));
            }
            Cmd::Status => out.note(Note::Status {
                words: self.texts.len(),
                hot: self.hot.len(),
                sent: self.sent,
                received: self.received,
                neighbors: self.neighbors.len(),
                generating: self.generating,
            }),
        }
    }

    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        if !self.neighbors.contains(&peer) {
            return;
        }
        if up {
            out.note(Note::PeerUp { peer });
            // Back from a crash or a partition. A restarted neighbor has
            // forgotten us: link again so both ends know the link, and
            // catch up both ways now.
            self.send(peer, Msg::Link, out);
            self.exchange_with(peer, out);
        } else {
            out.note(Note::PeerDown { peer });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use rand::SeedableRng;

    use super::*;
    use crate::node::Effect;

    const A: NodeId = NodeId(0);
    const B: NodeId = NodeId(1);
    const C: NodeId = NodeId(2);
    const WORDS: &[&str] = &["otter"];

    /// Three nodes in a line A - B - C, messages delivered by hand.
    struct Net {
        m: Vec<Gossip>,
        wire: VecDeque<(NodeId, NodeId, Msg)>,
        notes: Vec<(NodeId, Note)>,
    }

    impl Net {
        fn line() -> Net {
            let p = Params {
                generate: false,
                ..Params::default()
            };
            let n = |me: NodeId, ns: &[NodeId]| {
                Gossip::new(
                    me,
                    ns.to_vec(),
                    1,
                    p.clone(),
                    WORDS,
                    Rng::seed_from_u64(me.0 as u64),
                )
            };
            Net {
                m: vec![n(A, &[B]), n(B, &[A, C]), n(C, &[B])],
                wire: VecDeque::new(),
                notes: Vec::new(),
            }
        }

        fn step(&mut self, n: NodeId, f: impl FnOnce(&mut Gossip, &mut Out<Gossip>)) {
            let mut out = Out::new(Duration::ZERO);
            f(&mut self.m[n.index()], &mut out);
            for e in out.drain() {
                match e {
                    Effect::Send { to, msg } => self.wire.push_back((n, to, msg)),
                    Effect::Note(x) => self.notes.push((n, x)),
                    Effect::Timer { .. } => {}
                }
            }
        }

        fn deliver_all(&mut self) {
            while let Some((from, to, msg)) = self.wire.pop_front() {
                self.step(to, |m, out| m.on_message(from, msg, out));
            }
        }

        fn round_all(&mut self) {
            for i in 0..3 {
                self.step(NodeId(i), |m, out| m.on_timer(Timer::Round, out));
            }
        }
    }

    #[test]
    fn a_word_crosses_the_line_in_batched_rounds_and_goes_cold() {
        let mut net = Net::line();
        net.step(A, |m, out| m.on_command(Cmd::Say("hi".into()), out));
        net.step(A, |m, out| m.on_command(Cmd::Say("there".into()), out));
        net.round_all();
        // Both words travel to B in one message.
        assert_eq!(net.wire.len(), 1);
        assert!(matches!(&net.wire[0].2, Msg::Rumors { words, .. } if words.len() == 2));
        net.deliver_all();
        net.round_all();
        net.deliver_all();
        assert_eq!(net.m[2].word_count(), 2);
        let from_b = net
            .notes
            .iter()
            .filter(|(n, x)| *n == C && matches!(x, Note::Learned { from: Some(f), .. } if *f == B))
            .count();
        assert_eq!(from_b, 2, "C learned both from B");
        // Everyone told every neighbor: nothing is hot, rounds are silent.
        net.round_all();
        assert!(net.wire.is_empty(), "{:?}", net.wire);
    }

    #[test]
    fn anti_entropy_repairs_what_rumors_missed_both_ways() {
        let mut net = Net::line();
        net.step(A, |m, out| m.on_command(Cmd::Say("a-word".into()), out));
        net.step(B, |m, out| m.on_command(Cmd::Say("b-word".into()), out));
        net.round_all();
        net.wire.clear(); // every rumor lost
        let sent = |n: &Net| n.m[0].sent + n.m[1].sent;
        let before = sent(&net);
        net.step(A, |m, out| m.exchange_with(B, out));
        net.deliver_all();
        assert_eq!(net.m[0].word_count(), 2);
        assert_eq!(net.m[1].word_count(), 2);
        // Three messages: digest, repair with digest, repair.
        assert_eq!(sent(&net) - before, 3);
    }

    #[test]
    fn feedback_makes_a_node_lose_interest_with_probability_one_over_k() {
        let p = Params {
            generate: false,
            k: 1,
            ..Params::default()
        };
        let mut g = Gossip::new(A, [B, C], 1, p, WORDS, Rng::seed_from_u64(1));
        let mut out = Out::new(Duration::ZERO);
        g.on_command(Cmd::Say("x".into()), &mut out);
        let id = WordId { origin: A, seq: 1 };
        assert!(g.hot.contains_key(&id));
        // B says it already knew it: with k = 1, interest is lost at once.
        g.on_message(
            B,
            Msg::Rumors {
                words: vec![],
                known: vec![id],
            },
            &mut out,
        );
        assert!(!g.hot.contains_key(&id));
    }

    #[test]
    fn two_nodes_adding_each_other_at_once_both_end_linked() {
        let p = Params {
            generate: false,
            ..Params::default()
        };
        let mut net = Net {
            m: vec![
                Gossip::new(A, [], 1, p.clone(), WORDS, Rng::seed_from_u64(1)),
                Gossip::new(B, [], 1, p, WORDS, Rng::seed_from_u64(2)),
            ],
            wire: VecDeque::new(),
            notes: Vec::new(),
        };
        net.step(A, |m, out| {
            m.on_command(
                Cmd::Add {
                    peer: B,
                    persistent: false,
                },
                out,
            )
        });
        net.step(B, |m, out| {
            m.on_command(
                Cmd::Add {
                    peer: A,
                    persistent: false,
                },
                out,
            )
        });
        net.deliver_all();
        assert!(net.m[0].neighbors().contains(&B) && net.m[1].neighbors().contains(&A));
        for n in [A, B] {
            assert!(
                net.notes
                    .iter()
                    .any(|(x, note)| *x == n && matches!(note, Note::Linked { .. })),
                "{n:?}'s own add is reported done: {:?}",
                net.notes
            );
        }
    }
}
