//! The multicast invariants over delivery logs (`dsys check multicast`).
//!
//! Each node's *life* (from a start to a crash, a quit, or the end of the
//! log) delivers a sequence of messages `(origin, seq)`, each with its
//! Lamport stamp. The protocol delivers in (stamp, sender) order, so the
//! common order is every delivered message sorted by (stamp, sender), within
//! an *epoch*: if every member that had joined is gone at once (all crashed
//! or quit), the group starts again from nothing and stamps start again, so
//! the next epoch's messages come after all of the last one's.
//!
//! **Safety** (what must never happen; a failure exits 1):
//! * every life's deliveries are a contiguous run of the common order (a
//!   node that stopped early delivered a prefix of its run, a node that
//!   rejoined a suffix from its join on; no gaps, nothing out of order);
//! * no life delivers a message twice, and each keeps every sender's
//!   messages in send order (FIFO);
//! * a message delivered anywhere carries the same stamp everywhere, and
//!   was multicast by its sender (checked for senders whose events are in
//!   the files).
//!
//! **Liveness** (what should happen; a failure exits 1 only with
//! `--strict`): every message multicast was delivered by every life that
//! was running until the end. A message can go undelivered because a
//! member left (it quit, was killed, or never came): the report says which
//! members had left, and when they were last heard of.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::events::Event;
use crate::check::{Checker, Property, verdict_line};
use crate::events::{Common, Entry, Record};

/// A message's identity: (origin, seq).
pub type Id = (String, u64);

#[derive(Debug, Default)]
pub struct Life {
    pub node: String,
    /// Deliveries in order: (id, stamp).
    pub delivered: Vec<Id>,
    pub stamps: Vec<u64>,
    pub crashed: bool,
    /// The epoch it joined in.
    pub epoch: u64,
}

#[derive(Debug, Default)]
pub struct OrderCheck {
    lives: Vec<Life>,
    current: BTreeMap<String, usize>,
    /// Messages multicast: id -> (sender's life, when).
    sent: BTreeMap<Id, (usize, u64)>,
    /// When each node was last heard of, and the last time in the log.
    last_seen: BTreeMap<String, u64>,
    end_us: u64,
    /// Nodes that stopped on purpose (their last life ended).
    stopped: BTreeSet<String>,
    /// Real logs: a node quiet for long before the end is taken as gone
    /// (killed). The simulator knows every crash and turns this off.
    exact_ends: bool,
    /// Nodes whose current life has joined and not ended.
    joined: BTreeSet<String>,
    epoch: u64,
    /// Something was delivered in the current epoch.
    epoch_used: bool,
}

/// A message some life should have delivered and did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    pub id: Id,
    /// The nodes, running to the end, that never delivered it.
    pub missing_at: Vec<String>,
    /// Members that had left by the end: (node, last heard of at t_us).
    pub gone: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub lives: usize,
    pub messages: usize,
    pub deliveries: usize,
    /// Safety violations.
    pub problems: Vec<String>,
    /// Liveness: messages not delivered everywhere they should have been.
    pub undelivered: Vec<Undelivered>,
    /// Senders whose `multicast` events are not in the files (their
    /// deliveries cannot be matched to sends).
    pub unknown_senders: Vec<String>,
}

impl Report {
    /// Safety held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn show(id: &Id) -> String {
    format!("{}#{}", id.0, id.1)
}

impl OrderCheck {
    fn life(&mut self, node: &str) -> usize {
        if let Some(&i) = self.current.get(node) {
            return i;
        }
        self.new_life(node)
    }

    /// The node (re)started: what it delivers now is a new life.
    pub fn new_life(&mut self, node: &str) -> usize {
        self.joined.remove(node);
        self.lives.push(Life {
            node: node.to_string(),
            epoch: self.epoch,
            ..Life::default()
        });
        let i = self.lives.len() - 1;
        self.current.insert(node.to_string(), i);
        i
    }

    /// For the simulator: every end of a life is logged (crashes), so a
    /// quiet node is not taken for a gone one.
    pub fn exact_ends(mut self) -> Self {
        self.exact_ends = true;
        self
    }

    /// The node's current life joined the group.
    pub fn joined(&mut self, node: &str) {
        if self.joined.is_empty() && self.epoch_used {
            // Nobody who had joined was left: the group starts again.
            self.epoch += 1;
            self.epoch_used = false;
        }
        self.joined.insert(node.to_string());
        let i = self.life(node);
        self.lives[i].epoch = self.epoch;
    }

    pub fn crash(&mut self, node: &str) {
        self.joined.remove(node);
        if let Some(i) = self.current.remove(node) {
            self.lives[i].crashed = true;
        }
    }

    pub fn multicast(&mut self, node: &str, seq: u64, t_us: u64) {
        let life = self.life(node);
        self.sent.insert((node.to_string(), seq), (life, t_us));
    }

    pub fn deliver(&mut self, node: &str, origin: &str, seq: u64, lamport: u64) {
        let i = self.life(node);
        self.lives[i].delivered.push((origin.to_string(), seq));
        self.lives[i].stamps.push(lamport);
        self.epoch_used = true;
    }

    fn seen(&mut self, node: &str, t_us: u64) {
        self.last_seen.insert(node.to_string(), t_us);
        self.end_us = self.end_us.max(t_us);
    }

    pub fn lives(&self) -> &[Life] {
        &self.lives
    }

    pub fn report(&self) -> Report {
        let mut problems = Vec::new();
        // One stamp per message, wherever it was delivered; the key of the
        // common order is (epoch, stamp).
        let mut stamp: BTreeMap<&Id, (u64, u64)> = BTreeMap::new();
        for l in &self.lives {
            for (id, &s) in l.delivered.iter().zip(&l.stamps) {
                if let Some(&(_, other)) = stamp.get(id)
                    && other != s
                {
                    problems.push(format!(
                        "{} was delivered with stamp {other} somewhere and {s} at {}",
                        show(id),
                        l.node
                    ));
                }
                stamp.entry(id).or_insert((l.epoch, s));
            }
        }
        // The common order: (stamp, sender), as the protocol delivers.
        let mut order: Vec<&Id> = stamp.keys().copied().collect();
        order.sort_by(|a, b| (stamp[a], &a.0).cmp(&(stamp[b], &b.0)));
        let pos: HashMap<&Id, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for l in &self.lives {
            let mut seen = BTreeSet::new();
            let mut last: HashMap<&str, u64> = HashMap::new();
            for id in &l.delivered {
                if !seen.insert(id) {
                    problems.push(format!("{} delivered {} twice", l.node, show(id)));
                }
                if let Some(&prev) = last.get(id.0.as_str())
                    && prev > id.1
                {
                    problems.push(format!(
                        "{} delivered {}'s message {} after its later message {}",
                        l.node, id.0, id.1, prev
                    ));
                }
                last.insert(&id.0, id.1);
            }
            // Contiguous: the i-th delivery is the common order's (p+i)-th.
            let Some(first) = l.delivered.first() else {
                continue;
            };
            let p = pos[first];
            for (i, id) in l.delivered.iter().enumerate() {
                let want = order.get(p + i).copied();
                if want != Some(id) {
                    problems.push(match want {
                        Some(w) => format!(
                            "order diverges: {} delivered {} as its message #{}, where the common order (by stamp, then sender) has {}",
                            l.node,
                            show(id),
                            i + 1,
                            show(w)
                        ),
                        None => format!("{} delivered {} out of order", l.node, show(id)),
                    });
                    break;
                }
            }
        }
        // Nothing delivered that was never sent (for senders we have).
        let senders: BTreeSet<&str> = self.sent.keys().map(|(s, _)| s.as_str()).collect();
        let mut unknown = BTreeSet::new();
        for id in &order {
            if !senders.contains(id.0.as_str()) {
                unknown.insert(id.0.clone());
            } else if !self.sent.contains_key(*id) {
                problems.push(format!("{} was delivered but never multicast", show(id)));
            }
        }
        Report {
            lives: self.lives.len(),
            messages: order.len(),
            deliveries: self.lives.iter().map(|l| l.delivered.len()).sum(),
            undelivered: self.liveness(&pos),
            problems,
            unknown_senders: unknown.into_iter().collect(),
        }
    }

    /// Messages not delivered by every life that ran until the end (and
    /// had joined before the message was sent).
    fn liveness(&self, delivered_anywhere: &HashMap<&Id, usize>) -> Vec<Undelivered> {
        // A node is gone if its last life crashed, or it went quiet well
        // before the end of the log (it quit, was killed, or stalled).
        const QUIET_US: u64 = 2_000_000;
        let gone: Vec<(String, u64)> = self
            .last_seen
            .iter()
            .filter(|(n, t)| {
                !self.current.contains_key(*n)
                    || self.stopped.contains(*n)
                    || (!self.exact_ends && **t + QUIET_US < self.end_us)
            })
            .map(|(n, t)| (n.clone(), *t))
            .collect();
        let running: Vec<&Life> = self
            .current
            .iter()
            .filter(|(n, _)| !gone.iter().any(|(g, _)| g == *n))
            .map(|(_, &i)| &self.lives[i])
            .collect();
        let mut out = Vec::new();
        for (id, &(sender_life, _)) in &self.sent {
            if self.lives[sender_life].crashed && !delivered_anywhere.contains_key(id) {
                // It may have died with its sender before anyone had it.
                continue;
            }
            let missing_at: Vec<String> = running
                .iter()
                .filter(|l| !l.delivered.contains(id))
                // A life that started after the message may rightly not
                // see it (it was delivered before it joined).
                .filter(|l| {
                    delivered_anywhere.get(id).is_none()
                        || l.delivered.first().is_some_and(|f| {
                            delivered_anywhere.get(f) <= delivered_anywhere.get(id)
                        })
                })
                .map(|l| l.node.clone())
                .collect();
            if !missing_at.is_empty() || !delivered_anywhere.contains_key(id) {
                out.push(Undelivered {
                    id: id.clone(),
                    missing_at,
                    gone: gone.clone(),
                });
            }
        }
        out
    }
}

impl Checker for OrderCheck {
    type Event = Event;
    type Report = Report;
    const EVENTS: &'static [&'static str] =
        &["multicast", "deliver", "joined", "peer_up", "peer_down"];
    const OWN_EVENTS: &'static str = "`deliver` or `multicast`";
    const ALGORITHM: &'static str = "multicast";

    fn is_own(r: &Record<Event>) -> bool {
        matches!(
            r.entry,
            Entry::Algo(Event::Deliver { .. } | Event::Multicast { .. })
        )
    }

    fn record(&mut self, r: &Record<Event>) {
        self.seen(&r.node, r.t_us);
        match &r.entry {
            Entry::Common(Common::Start | Common::Restart) => {
                self.stopped.remove(&r.node);
                self.new_life(&r.node);
            }
            Entry::Common(Common::Stop) => {
                self.joined.remove(&r.node);
                self.stopped.insert(r.node.clone());
            }
            Entry::Algo(Event::Joined { .. }) => self.joined(&r.node),
            Entry::Common(Common::Crash) => self.crash(&r.node),
            Entry::Algo(Event::Multicast { seq, .. }) => self.multicast(&r.node, *seq, r.t_us),
            Entry::Algo(Event::Deliver {
                origin,
                seq,
                lamport,
                ..
            }) => self.deliver(&r.node, origin, *seq, *lamport),
            _ => {}
        }
    }

    fn finish(self) -> Report {
        self.report()
    }
}

impl crate::check::Report for Report {
    fn properties(&self) -> Vec<Property> {
        let undelivered = self.undelivered.first().map(|u| {
            format!(
                "{} message(s) not delivered everywhere, e.g. {}#{} (missing at {:?})",
                self.undelivered.len(),
                u.id.0,
                u.id.1,
                u.missing_at
            )
        });
        vec![
            Property::safety(
                "one total order, FIFO, no duplicates",
                (!self.problems.is_empty())
                    .then(|| self.problems[..self.problems.len().min(3)].join("; ")),
            ),
            Property::liveness("every message delivered everywhere", undelivered),
            Property::exercised("deliveries", self.deliveries > 0, "nothing was delivered"),
        ]
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "messages in the total order: {}; deliveries: {} by {} node lives",
            self.messages, self.deliveries, self.lives
        );
        if self.problems.is_empty() {
            let _ = writeln!(
                s,
                "safety: OK (every life delivered a contiguous piece of one total order; no duplicates; per-sender FIFO; nothing delivered that was not sent)"
            );
        } else {
            let _ = writeln!(
                s,
                "safety: VIOLATED ({} problem(s)); the first:",
                self.problems.len()
            );
            for p in self.problems.iter().take(10) {
                let _ = writeln!(s, "  {p}");
            }
        }
        if !self.unknown_senders.is_empty() {
            let _ = writeln!(
                s,
                "(no multicast events of {}: their messages' sends were not checked)",
                self.unknown_senders.join(", ")
            );
        }
        if self.undelivered.is_empty() {
            let _ = writeln!(
                s,
                "liveness: OK (every message reached every node running to the end)"
            );
        } else {
            let _ = writeln!(
                s,
                "liveness: {} message(s) did not reach every node running to the end (a liveness matter: --strict fails on it)",
                self.undelivered.len()
            );
            for u in self.undelivered.iter().take(5) {
                let at = if u.missing_at.is_empty() {
                    "not delivered anywhere".to_string()
                } else {
                    format!("not delivered at {}", u.missing_at.join(", "))
                };
                let why = if u.gone.is_empty() {
                    "no member had left".to_string()
                } else {
                    format!(
                        "members gone by the end: {}",
                        u.gone
                            .iter()
                            .map(|(n, t)| format!("{n} (last heard of at t={t}us)"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let _ = writeln!(s, "  {}: {at}; {why}", show(&u.id));
            }
            if self.undelivered.len() > 5 {
                let _ = writeln!(s, "  ... and {} more", self.undelivered.len() - 5);
            }
        }
        let what = if !self.problems.is_empty() {
            format!("{} safety problem(s), the first above", self.problems.len())
        } else if self.deliveries == 0 {
            "nothing was delivered, so the order was not tested".to_string()
        } else if self.undelivered.is_empty() {
            "one total order, no duplicates, per-sender FIFO, nothing lost".to_string()
        } else {
            "one total order, no duplicates, per-sender FIFO; some messages not delivered everywhere".to_string()
        };
        let _ = writeln!(
            s,
            "{}",
            verdict_line(crate::check::Report::verdict(self), &what)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lives as (node, deliveries as (origin, seq, stamp)); every message
    /// listed in `sent` is multicast by its origin at time 0.
    type Deliveries<'a> = &'a [(&'a str, u64, u64)];

    fn check(lives: &[(&str, Deliveries)], sent: &[(&str, u64)]) -> Report {
        let mut c = OrderCheck::default();
        for (o, s) in sent {
            c.multicast(o, *s, 0);
        }
        for (node, ds) in lives {
            c.new_life(node);
            for (o, s, st) in *ds {
                c.deliver(node, o, *s, *st);
            }
            c.seen(node, 10);
        }
        c.report()
    }

    #[test]
    fn the_event_names_dsys_check_tells_files_by_are_its_events() {
        crate::check::assert_events_are_variants::<super::OrderCheck>();
    }

    #[test]
    fn lives_that_are_contiguous_runs_of_the_stamp_order_pass_even_sharing_nothing() {
        let sent = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2)];
        // Stamps: a1=1, b1=2, a2=3, c1=4, b2=5.
        let r = check(
            &[
                ("x", &[("a", 1, 1), ("b", 1, 2)]),              // a prefix
                ("y", &[("c", 1, 4), ("b", 2, 5)]),              // a suffix, sharing nothing with x
                ("z", &[("b", 1, 2), ("a", 2, 3), ("c", 1, 4)]), // the middle
            ],
            &sent,
        );
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.messages, 5);
        // A life that shares nothing and sorts *before* the others: the old
        // longest-first merge appended it at the end and cried wolf.
        let r = check(
            &[("x", &[("a", 2, 3), ("c", 1, 4)]), ("y", &[("a", 1, 1)])],
            &sent[..],
        );
        assert!(r.ok(), "{:?}", r.problems);
    }

    #[test]
    fn when_every_member_is_gone_at_once_the_group_starts_a_new_epoch() {
        let mut c = OrderCheck::default();
        for n in ["a", "b"] {
            c.new_life(n);
            c.joined(n);
        }
        c.multicast("a", 1, 0);
        c.multicast("b", 1, 0);
        for n in ["a", "b"] {
            c.deliver(n, "a", 1, 5);
            c.deliver(n, "b", 1, 6);
        }
        // Both crash; both come back with fresh clocks: stamps start again.
        c.crash("a");
        c.crash("b");
        c.new_life("b");
        c.new_life("a");
        c.joined("a");
        c.joined("b");
        c.multicast("a", 100, 0);
        for n in ["a", "b"] {
            c.deliver(n, "a", 100, 2);
        }
        let r = c.report();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.messages, 3);
        // Within an epoch a low stamp after a high one is still a violation.
        let mut c = OrderCheck::default();
        c.new_life("a");
        c.joined("a");
        c.multicast("a", 1, 0);
        c.multicast("a", 2, 0);
        c.deliver("a", "a", 2, 9);
        c.deliver("a", "a", 1, 3);
        assert!(!c.report().ok());
    }

    #[test]
    fn divergence_gaps_duplicates_fifo_and_phantoms_are_safety_problems() {
        let sent = [("a", 1), ("b", 1), ("a", 2)];
        let r = check(
            &[
                ("x", &[("a", 1, 1), ("b", 1, 2)]),
                ("y", &[("b", 1, 2), ("a", 1, 1)]),
            ],
            &sent,
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("y delivered a#1 out of order")),
            "{:?}",
            r.problems
        );
        // A gap: y skips b1 between a1 and a2.
        let r = check(
            &[
                ("x", &[("a", 1, 1), ("b", 1, 2), ("a", 2, 3)]),
                ("y", &[("a", 1, 1), ("a", 2, 3)]),
            ],
            &sent,
        );
        assert!(
            r.problems.iter().any(|p| p.contains("order diverges: y")),
            "{:?}",
            r.problems
        );
        let r = check(&[("x", &[("a", 1, 1), ("a", 1, 1)])], &sent);
        assert!(r.problems.iter().any(|p| p.contains("twice")));
        let r = check(&[("x", &[("a", 2, 1), ("a", 1, 2)])], &sent);
        assert!(r.problems.iter().any(|p| p.contains("after its later")));
        let r = check(&[("x", &[("a", 9, 1)])], &sent);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("a#9 was delivered but never multicast"))
        );
        let r = check(&[("x", &[("a", 1, 1)]), ("y", &[("a", 1, 7)])], &sent);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("stamp 1 somewhere and 7"))
        );
    }

    #[test]
    fn messages_left_undelivered_because_a_member_left_are_liveness_not_safety() {
        let mut c = OrderCheck::default();
        for n in ["a", "b", "c"] {
            c.new_life(n);
        }
        c.multicast("a", 1, 100);
        for n in ["a", "b", "c"] {
            c.deliver(n, "a", 1, 1);
        }
        // c quits; a's next message can never be delivered.
        c.seen("c", 200);
        c.multicast("a", 2, 300);
        c.seen("a", 5_000_000);
        c.seen("b", 5_000_000);
        let r = c.report();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.undelivered.len(), 1);
        assert_eq!(r.undelivered[0].id, ("a".to_string(), 2));
        assert_eq!(r.undelivered[0].gone, vec![("c".to_string(), 200)]);
        let v = crate::check::Report::verdict(&r);
        assert!(v.passed(false) && !v.passed(true));
        let text = crate::check::Report::render(&r);
        assert!(text.contains("c (last heard of at t=200us)"), "{text}");
        assert!(text.contains("safety: OK"), "{text}");
    }
}
