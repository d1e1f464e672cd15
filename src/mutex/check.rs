//! Ricart–Agrawala's properties over its events.
//!
//! * **Mutual exclusion** (safety): no two nodes inside at once. A node is
//!   inside from `cs_enter` to `cs_exit`; a life that ends inside (crash,
//!   stop, kill -9) is out at its last record.
//! * **Priority** (safety): a node never enters ahead of a request it had
//!   received (logged as `reply_sent` or `deferred`) that has a smaller
//!   (timestamp, name) and is still waiting. This is the order
//!   Ricart–Agrawala promises among requests that know of each other; a
//!   request still in flight (or sent to a node's earlier life) is not
//!   known, and may be overtaken. It holds with permission reuse too.
//! * **Liveness**: every request was granted, unless its node's life ended
//!   or it withdrew it.
//! * Messages per entry: requests and replies sent, per entry.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::events::Event;
use crate::check::intervals::{End, Interval, entries_line, exclusion_lines, overlaps};
use crate::check::{Checker, Property, Report, verdict_line};
use crate::events::{Common, Entry, Record};
use crate::stats::percentile;

/// One request, from `request` to its entry (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Req {
    pub node: String,
    pub ts: u64,
    pub reuse: bool,
    pub asked_us: u64,
    pub entered_us: Option<u64>,
}

#[derive(Debug, Default)]
struct NodeState {
    /// Requests of others this node has received: node -> timestamp.
    known: BTreeMap<String, u64>,
    inside_since: Option<u64>,
    /// Index in `requests` of the pending request.
    pending: Option<usize>,
    last_us: u64,
}

#[derive(Debug, Default)]
pub struct MutexCheck {
    nodes: BTreeMap<String, NodeState>,
    intervals: Vec<Interval>,
    requests: Vec<Req>,
    entries: BTreeMap<String, u64>,
    messages: u64,
    hellos: u64,
    waits_us: Vec<u64>,
    out_of_order: Vec<(Req, Req)>,
}

#[derive(Debug)]
pub struct MutexReport {
    pub intervals: usize,
    pub entries: BTreeMap<String, u64>,
    pub violations: Vec<(Interval, Interval)>,
    /// (first in priority, entered after): a node entered ahead of a
    /// request it knew of with a smaller (timestamp, name).
    pub out_of_order: Vec<(Req, Req)>,
    /// Requests never granted: (node, ts, asked at).
    pub pending: Vec<(String, u64, u64)>,
    /// Request and reply messages sent.
    pub messages: u64,
    pub hellos: u64,
    pub waits_us: Vec<u64>,
    pub reuse: bool,
}

impl MutexReport {
    pub fn safe(&self) -> bool {
        self.violations.is_empty() && self.out_of_order.is_empty()
    }

    pub fn total_entries(&self) -> u64 {
        self.entries.values().sum()
    }

    pub fn messages_per_entry(&self) -> f64 {
        self.messages as f64 / self.total_entries().max(1) as f64
    }
}

impl MutexCheck {
    fn node(&mut self, n: &str) -> &mut NodeState {
        self.nodes.entry(n.to_string()).or_default()
    }

    /// `node` enters now: no request it knows of, still waiting, may come
    /// first.
    fn check_priority(&mut self, node: &str) {
        let Some(mine) = self.nodes.get(node).and_then(|s| s.pending) else {
            return;
        };
        let me = self.requests[mine].clone();
        let known: Vec<(String, u64)> = self
            .nodes
            .get(node)
            .map(|s| s.known.iter().map(|(n, t)| (n.clone(), *t)).collect())
            .unwrap_or_default();
        for (other, ts) in known {
            let Some(i) = self.nodes.get(&other).and_then(|s| s.pending) else {
                continue;
            };
            let theirs = &self.requests[i];
            if theirs.ts == ts && (ts, other.as_str()) < (me.ts, node) {
                self.out_of_order.push((theirs.clone(), me.clone()));
            }
        }
    }

    /// A life ended (crash, stop, or a new life began): out of the critical
    /// section at `t`, its pending request gone.
    fn end_life(&mut self, node: &str, t: u64) {
        // What others knew of this life's requests is about a life that is
        // gone (its next life may even reuse a timestamp).
        for other in self.nodes.values_mut() {
            other.known.remove(node);
        }
        let s = self.node(node);
        s.pending = None;
        s.known.clear();
        if let Some(since) = s.inside_since.take() {
            self.intervals.push(Interval {
                node: node.to_string(),
                enter_us: since,
                exit_us: t,
                end: End::Inferred,
            });
        }
    }
}

impl Checker for MutexCheck {
    type Event = Event;
    type Report = MutexReport;
    const EVENTS: &'static [&'static str] = &[
        "request",
        "reply_sent",
        "reply_received",
        "deferred",
        "cs_enter",
        "cs_exit",
        "cancelled",
        "peer_down",
        "peer_up",
        "peer_restarted",
    ];
    const OWN_EVENTS: &'static str = "mutex (request, reply_sent, cs_enter, ...)";
    const ALGORITHM: &'static str = "mutex";

    fn is_own(r: &Record<Event>) -> bool {
        crate::check::is_algo(r, |e| matches!(e, Event::Other))
    }

    fn record(&mut self, r: &Record<Event>) {
        let (node, t) = (r.node.as_str(), r.t_us);
        match &r.entry {
            Entry::Common(Common::Start) => {
                // A new life: whatever the last one did ended with it.
                let last = self.node(node).last_us;
                self.end_life(node, last);
            }
            Entry::Common(Common::Crash | Common::Stop) => self.end_life(node, t),
            Entry::Common(Common::Send { kind, .. }) => match kind.as_str() {
                "request" | "reply" => self.messages += 1,
                "hello" => self.hellos += 1,
                _ => {}
            },
            Entry::Algo(Event::Request { ts, reuse, .. }) => {
                self.requests.push(Req {
                    node: node.to_string(),
                    ts: *ts,
                    reuse: *reuse,
                    asked_us: t,
                    entered_us: None,
                });
                let i = self.requests.len() - 1;
                self.node(node).pending = Some(i);
            }
            Entry::Algo(Event::Cancelled) => self.node(node).pending = None,
            Entry::Algo(
                Event::ReplySent { to: other, ts } | Event::Deferred { from: other, ts },
            ) => {
                self.node(node).known.insert(other.clone(), *ts);
            }
            Entry::Algo(Event::CsEnter { .. }) => {
                self.check_priority(node);
                let s = self.node(node);
                let pending = s.pending.take();
                let before = s.inside_since.replace(t);
                if let Some(since) = before {
                    // Entered twice without an exit: the first ends here.
                    self.intervals.push(Interval {
                        node: node.to_string(),
                        enter_us: since,
                        exit_us: t,
                        end: End::Inferred,
                    });
                }
                if let Some(i) = pending {
                    self.requests[i].entered_us = Some(t);
                    self.waits_us
                        .push(t.saturating_sub(self.requests[i].asked_us));
                }
                *self.entries.entry(node.to_string()).or_default() += 1;
            }
            Entry::Algo(Event::CsExit) => {
                if let Some(since) = self.node(node).inside_since.take() {
                    self.intervals.push(Interval {
                        node: node.to_string(),
                        enter_us: since,
                        exit_us: t,
                        end: End::Logged,
                    });
                }
            }
            _ => {}
        }
        self.node(node).last_us = t;
    }

    fn finish(mut self) -> MutexReport {
        let open: Vec<(String, u64)> = self
            .nodes
            .iter()
            .filter(|(_, s)| s.inside_since.is_some())
            .map(|(n, s)| (n.clone(), s.last_us))
            .collect();
        for (n, last) in open {
            self.end_life(&n, last);
        }
        let pending = self
            .nodes
            .values()
            .filter_map(|s| s.pending)
            .map(|i| {
                let r = &self.requests[i];
                (r.node.clone(), r.ts, r.asked_us)
            })
            .collect();
        MutexReport {
            intervals: self.intervals.len(),
            violations: overlaps(&self.intervals),
            out_of_order: self.out_of_order,
            entries: self.entries,
            pending,
            messages: self.messages,
            hellos: self.hellos,
            waits_us: self.waits_us,
            reuse: self.requests.iter().any(|r| r.reuse),
        }
    }
}

impl Report for MutexReport {
    fn properties(&self) -> Vec<Property> {
        vec![
            Property::safety(
                "mutual exclusion",
                self.violations.first().map(|(x, y)| format!("{x} and {y}")),
            ),
            Property::safety(
                "priority",
                self.out_of_order.first().map(|(x, y)| {
                    format!(
                        "{} ts={} should have entered before {} ts={}",
                        x.node, x.ts, y.node, y.ts
                    )
                }),
            ),
            Property::liveness(
                "every request granted",
                self.pending
                    .first()
                    .map(|(n, ts, t)| format!("{n} ts={ts}, asked at t={t}us, never granted")),
            ),
            Property::exercised(
                "someone entered",
                self.intervals > 0,
                "nobody ever entered the critical section",
            ),
        ]
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", entries_line(&self.entries));
        let _ = writeln!(
            s,
            "messages per entry: {:.2} ({} requests and replies{}; {} hellos at start)",
            self.messages_per_entry(),
            self.messages,
            if self.reuse {
                ", permissions reused"
            } else {
                ""
            },
            self.hellos
        );
        if !self.waits_us.is_empty() {
            let mut w = self.waits_us.clone();
            w.sort_unstable();
            let _ = writeln!(
                s,
                "request-to-enter wait: median {:.2}ms, p99 {:.2}ms, max {:.2}ms",
                percentile(&w, 0.5) as f64 / 1e3,
                percentile(&w, 0.99) as f64 / 1e3,
                percentile(&w, 1.0) as f64 / 1e3,
            );
        }
        if self.pending.is_empty() {
            let _ = writeln!(
                s,
                "liveness: every request was granted (a request of a node that quit or crashed is not owed)"
            );
        } else {
            let list = self
                .pending
                .iter()
                .map(|(n, ts, t)| format!("{n} (ts={ts}, asked at t={t}us)"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "liveness: {} request(s) never granted: {list}",
                self.pending.len()
            );
        }
        if self.out_of_order.is_empty() {
            let _ = writeln!(
                s,
                "priority: OK (no node entered ahead of a waiting request it knew of with a smaller (timestamp, name))"
            );
        } else {
            let _ = writeln!(s, "priority: VIOLATED {} time(s)", self.out_of_order.len());
            for (a, b) in self.out_of_order.iter().take(10) {
                let _ = writeln!(
                    s,
                    "  {} (ts={}) should have entered before {} (ts={}), which knew of its request",
                    a.node, a.ts, b.node, b.ts
                );
            }
        }
        s.push_str(&exclusion_lines(&self.violations, self.intervals));
        let _ = writeln!(
            s,
            "{}",
            verdict_line(
                self.verdict(),
                "mutual exclusion and priority; every request granted"
            )
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;

    fn rec(t: u64, node: &str, ev: Event) -> Record<Event> {
        Record {
            t_us: t,
            node: node.into(),
            entry: Entry::Algo(ev),
        }
    }

    fn req(t: u64, node: &str, ts: u64) -> Record<Event> {
        rec(
            t,
            node,
            Event::Request {
                ts,
                asked: vec![],
                reuse: false,
            },
        )
    }

    fn enter(t: u64, node: &str) -> Record<Event> {
        rec(t, node, Event::CsEnter { ts: 0 })
    }

    fn exit(t: u64, node: &str) -> Record<Event> {
        rec(t, node, Event::CsExit)
    }

    #[test]
    fn the_event_names_dsys_check_tells_files_by_are_its_events() {
        crate::check::assert_events_are_variants::<super::MutexCheck>();
    }

    #[test]
    fn overlaps_priority_and_pending_requests_are_named() {
        // a (ts 1) and b (ts 2) ask at once; a goes first: fine.
        let ok = check::<MutexCheck>(&[
            req(0, "a", 1),
            req(1, "b", 2),
            enter(5, "a"),
            exit(10, "a"),
            enter(11, "b"),
            exit(20, "b"),
        ]);
        assert!(ok.safe(), "{}", ok.render());
        assert!(ok.verdict().passed(true));
        // b overtakes a although it had a's request: out of order.
        let r = check::<MutexCheck>(&[
            req(0, "a", 1),
            req(1, "b", 2),
            rec(
                2,
                "b",
                Event::ReplySent {
                    to: "a".into(),
                    ts: 1,
                },
            ),
            enter(5, "b"),
            exit(10, "b"),
            enter(11, "a"),
            exit(20, "a"),
        ]);
        assert_eq!(r.out_of_order.len(), 1);
        assert_eq!(r.out_of_order[0].0.node, "a");
        assert!(r.render().contains("priority: VIOLATED"), "{}", r.render());
        // ... but not if a's request had not reached b (still in flight).
        let r = check::<MutexCheck>(&[
            req(0, "a", 1),
            req(1, "b", 2),
            enter(5, "b"),
            exit(10, "b"),
            enter(11, "a"),
        ]);
        assert!(r.out_of_order.is_empty(), "{}", r.render());
        // Equal timestamps: the name decides.
        let r = check::<MutexCheck>(&[
            req(0, "b", 3),
            req(1, "a", 3),
            rec(
                2,
                "a",
                Event::Deferred {
                    from: "b".into(),
                    ts: 3,
                },
            ),
            enter(5, "a"),
            exit(10, "a"),
            enter(11, "b"),
            exit(20, "b"),
        ]);
        assert!(r.safe(), "{}", r.render());
        // Overlap, and a request never granted.
        let r = check::<MutexCheck>(&[
            enter(0, "a"),
            enter(5, "b"),
            exit(10, "a"),
            exit(20, "b"),
            req(30, "c", 9),
        ]);
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.pending, vec![("c".to_string(), 9, 30)]);
        assert!(r.render().contains("verdict: VIOLATED"));
    }

    #[test]
    fn a_request_of_an_earlier_life_is_not_knowledge_of_the_next() {
        let crash = Record {
            t_us: 20,
            node: "b".into(),
            entry: Entry::Common(Common::Crash),
        };
        // a knew b's old request ts=5; b crashed, came back and asked
        // again with ts=5 (a new clock); a entered before hearing of it.
        let r = check::<MutexCheck>(&[
            req(0, "b", 5),
            rec(
                1,
                "a",
                Event::Deferred {
                    from: "b".into(),
                    ts: 5,
                },
            ),
            crash,
            req(30, "a", 7),
            req(31, "b", 5),
            enter(32, "a"),
            exit(33, "a"),
            enter(34, "b"),
        ]);
        assert!(r.out_of_order.is_empty(), "{}", r.render());
    }

    #[test]
    fn a_life_that_ends_inside_is_out_at_its_last_record() {
        let crash = Record {
            t_us: 20,
            node: "a".into(),
            entry: Entry::Common(Common::Crash),
        };
        let r = check::<MutexCheck>(&[req(0, "a", 1), enter(5, "a"), crash, enter(30, "b")]);
        assert!(r.safe(), "{}", r.render());
        // Killed (no crash event), then a new life: out at its last record.
        let start = Record {
            t_us: 50,
            node: "a".into(),
            entry: Entry::Common(Common::Start),
        };
        let r = check::<MutexCheck>(&[
            enter(5, "a"),
            rec(
                8,
                "a",
                Event::ReplySent {
                    to: "b".into(),
                    ts: 1,
                },
            ),
            enter(40, "b"),
            start,
        ]);
        assert!(r.safe(), "{}", r.render());
        assert!(r.pending.is_empty());
    }
}
