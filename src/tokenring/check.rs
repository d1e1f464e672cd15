//! The token ring's invariants over its events: no two nodes in the
//! critical section at once (safety), and every `lock` eventually followed
//! by entry (liveness, for runs whose faults have stopped).
//!
//! A node's time in the critical section runs from `cs_enter` until the
//! first of: its `cs_exit`, the end of its lease (`lease_us` from entry,
//! moved on by `lease_renewed`), its `crash`/`stop`. The lease contract is
//! that a node is out when its lease ends whatever it does, so an exit
//! logged late (a paused process) counts from the lease end, and `cs_lost`
//! says when the lease ended. A node that stops logging while inside
//! (killed) is counted as inside until its lease end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::events::Event;
use crate::check::intervals::{End, Interval, entries_line, exclusion_lines, overlaps};
use crate::check::{Checker, Property, Report, verdict_line};
use crate::events::{Common, Entry, Record};
use crate::stats::percentile;

#[derive(Debug, Default)]
struct NodeState {
    /// Inside since, and the latest the lease could end.
    open: Option<(u64, u64)>,
    lock_since: Option<u64>,
}

/// Feed records in time order, then [`Checker::finish`].
#[derive(Debug, Default)]
pub struct TokenRingCheck {
    nodes: BTreeMap<String, NodeState>,
    intervals: Vec<Interval>,
    entries: BTreeMap<String, u64>,
    regenerations: u64,
    reroutes: u64,
    lost: Vec<(String, u64, u64)>,
    lock_waits_us: Vec<u64>,
}

#[derive(Debug)]
pub struct TokenRingReport {
    pub intervals: usize,
    pub entries: BTreeMap<String, u64>,
    pub regenerations: u64,
    /// Passes routed around a node that did not take the token.
    pub reroutes: u64,
    /// Sections a node found its lease had run out on (paused, cut off):
    /// (node, lease end in µs, how late it noticed in µs).
    pub lost: Vec<(String, u64, u64)>,
    pub violations: Vec<(Interval, Interval)>,
    /// Locks never granted: (node, requested at).
    pub pending: Vec<(String, u64)>,
    pub lock_waits_us: Vec<u64>,
}

impl TokenRingReport {
    pub fn safe(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn total_entries(&self) -> u64 {
        self.entries.values().sum()
    }
}

impl TokenRingCheck {
    fn node(&mut self, n: &str) -> &mut NodeState {
        self.nodes.entry(n.to_string()).or_default()
    }

    fn enter(&mut self, node: &str, t: u64, lease_us: u64) {
        let s = self.node(node);
        let waited = s.lock_since.take().map(|since| t - since.min(t));
        if let Some((enter, end)) = s.open.take() {
            // Entered twice without an exit: close the first at its lease end.
            self.close(node, enter, end.min(t), End::Inferred);
        }
        self.node(node).open = Some((t, t + lease_us));
        *self.entries.entry(node.to_string()).or_default() += 1;
        if let Some(w) = waited {
            self.lock_waits_us.push(w);
        }
    }

    /// Out at `t` by the node's word, or at its lease end if that came first.
    fn exit(&mut self, node: &str, t: u64, end: End) {
        if let Some((enter, lease_end)) = self.node(node).open.take() {
            if lease_end < t {
                self.close(node, enter, lease_end, End::LeaseEnd);
            } else {
                self.close(node, enter, t, end);
            }
        }
    }

    /// The node crashed: it is out of the CS and its pending lock is gone.
    fn crash(&mut self, node: &str, t: u64) {
        let s = self.node(node);
        s.lock_since = None;
        if let Some((enter, _)) = s.open.take() {
            self.close(node, enter, t, End::Inferred);
        }
    }

    fn close(&mut self, node: &str, enter_us: u64, exit_us: u64, end: End) {
        self.intervals.push(Interval {
            node: node.to_string(),
            enter_us,
            exit_us,
            end,
        });
    }
}

impl Checker for TokenRingCheck {
    type Event = Event;
    type Report = TokenRingReport;
    const EVENTS: &'static [&'static str] = &[
        "token",
        "token_started",
        "token_regenerated",
        "token_rerouted",
        "token_dropped",
        "lock",
        "lock_cancelled",
        "cs_enter",
        "lease_renewed",
        "cs_exit",
        "cs_lost",
        "peer_down",
        "peer_up",
        "start_failed",
        "walk_loop",
        "lease_refused",
    ];
    const OWN_EVENTS: &'static str = "token-ring (token, cs_enter, ...)";
    const ALGORITHM: &'static str = "tokenring";

    fn is_own(r: &Record<Event>) -> bool {
        crate::check::is_algo(r, |e| matches!(e, Event::Other))
    }

    fn record(&mut self, r: &Record<Event>) {
        let (node, t) = (r.node.as_str(), r.t_us);
        match &r.entry {
            Entry::Algo(Event::Lock) => {
                self.node(node).lock_since.get_or_insert(t);
            }
            Entry::Algo(Event::LockCancelled) => self.node(node).lock_since = None,
            Entry::Algo(Event::CsEnter { lease_us, .. }) => self.enter(node, t, *lease_us),
            Entry::Algo(Event::LeaseRenewed { lease_us }) => {
                if let Some((_, end)) = &mut self.node(node).open {
                    *end = (*end).max(t + lease_us);
                }
            }
            Entry::Algo(Event::CsExit { .. }) => self.exit(node, t, End::Logged),
            Entry::Algo(Event::CsLost { late_us, .. }) => {
                let end = t.saturating_sub(*late_us);
                self.lost.push((node.to_string(), end, *late_us));
                self.exit(node, end, End::LeaseEnd)
            }
            Entry::Algo(Event::TokenRegenerated { .. }) => self.regenerations += 1,
            Entry::Algo(Event::TokenRerouted { .. }) => self.reroutes += 1,
            // A node that stops (or crashes) no longer wants in.
            Entry::Common(Common::Crash | Common::Stop) => self.crash(node, t),
            _ => {}
        }
    }

    fn finish(mut self) -> TokenRingReport {
        let open: Vec<_> = self
            .nodes
            .iter_mut()
            .filter_map(|(n, s)| s.open.take().map(|(e, end)| (n.clone(), e, end)))
            .collect();
        for (n, enter, end) in open {
            self.close(&n, enter, end, End::Inferred);
        }
        let pending = self
            .nodes
            .iter()
            .filter_map(|(n, s)| s.lock_since.map(|t| (n.clone(), t)))
            .collect();
        TokenRingReport {
            intervals: self.intervals.len(),
            violations: overlaps(&self.intervals),
            entries: self.entries,
            regenerations: self.regenerations,
            reroutes: self.reroutes,
            lost: self.lost,
            pending,
            lock_waits_us: self.lock_waits_us,
        }
    }
}

impl Report for TokenRingReport {
    fn properties(&self) -> Vec<Property> {
        vec![
            Property::safety(
                "mutual exclusion",
                self.violations.first().map(|(x, y)| format!("{x} and {y}")),
            ),
            Property::liveness(
                "every lock granted",
                self.pending
                    .first()
                    .map(|(n, t)| format!("{n}'s lock of t={t}us never granted")),
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
        if !self.lock_waits_us.is_empty() {
            let mut w = self.lock_waits_us.clone();
            w.sort_unstable();
            let _ = writeln!(
                s,
                "lock-to-enter wait: median {:.1}ms, p99 {:.1}ms, max {:.1}ms",
                percentile(&w, 0.5) as f64 / 1e3,
                percentile(&w, 0.99) as f64 / 1e3,
                percentile(&w, 1.0) as f64 / 1e3,
            );
        }
        let _ = writeln!(
            s,
            "token regenerations (no token seen for the loss timeout): {}; passes routed around a node that did not take the token: {}",
            self.regenerations, self.reroutes
        );
        for (n, end, late) in &self.lost {
            let _ = writeln!(
                s,
                "{n} lost the critical section: its lease ended at t={end}us and it noticed {:.3}s later (paused or cut off); its interval ends at the lease end",
                *late as f64 / 1e6
            );
        }
        if self.pending.is_empty() {
            let _ = writeln!(
                s,
                "liveness: every lock was granted (a lock of a node that quit or crashed is not owed)"
            );
        } else {
            let list = self
                .pending
                .iter()
                .map(|(n, t)| format!("{n} (asked at t={t}us)"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "liveness: {} lock(s) never granted: {list}",
                self.pending.len()
            );
        }
        s.push_str(&exclusion_lines(&self.violations, self.intervals));
        let _ = writeln!(
            s,
            "{}",
            verdict_line(self.verdict(), "mutual exclusion; every lock granted")
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

    fn enter(t: u64, node: &str, lease_us: u64) -> Record<Event> {
        rec(
            t,
            node,
            Event::CsEnter {
                hop: 1,
                lease_us,
                generation: None,
                round: None,
            },
        )
    }

    fn exit(t: u64, node: &str) -> Record<Event> {
        rec(
            t,
            node,
            Event::CsExit {
                hop: 1,
                forced: false,
            },
        )
    }

    #[test]
    fn the_event_names_dsys_check_tells_files_by_are_its_events() {
        crate::check::assert_events_are_variants::<super::TokenRingCheck>();
    }

    #[test]
    fn disjoint_intervals_pass_and_overlap_is_named() {
        let r = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            exit(10, "a"),
            enter(10, "b", 100),
            exit(20, "b"),
        ]);
        assert!(r.safe(), "{:?}", r.violations);
        assert_eq!(r.intervals, 2);
        assert!(r.verdict().passed(true));

        let r = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            enter(5, "b", 100),
            exit(10, "a"),
            exit(20, "b"),
        ]);
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].0.node, "a");
        assert_eq!(r.violations[0].1.node, "b");
        assert!(r.render().contains("verdict: VIOLATED"));
    }

    #[test]
    fn an_interval_that_is_never_closed_lasts_until_its_lease_ends() {
        let r = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            rec(50, "a", Event::LeaseRenewed { lease_us: 100 }), // inside until 150 at the latest
            enter(140, "b", 100),
            exit(160, "b"),
        ]);
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].0.end, End::Inferred);

        let crash = Record {
            t_us: 20,
            node: "a".into(),
            entry: Entry::Common(Common::Crash),
        };
        let r = check::<TokenRingCheck>(&[enter(0, "a", 100), crash, enter(30, "b", 100)]);
        assert!(r.safe());
    }

    #[test]
    fn pending_locks_are_reported_and_an_empty_run_exercised_nothing() {
        let r = check::<TokenRingCheck>(&[
            rec(0, "a", Event::Lock),
            rec(0, "b", Event::Lock),
            enter(5, "a", 100),
            exit(6, "a"),
        ]);
        assert_eq!(r.pending, vec![("b".to_string(), 0)]);
        assert_eq!(r.lock_waits_us, vec![5]);
        assert!(r.verdict().passed(false) && !r.verdict().passed(true));
        let r = check::<TokenRingCheck>(&[rec(0, "a", Event::Lock)]);
        assert!(!r.verdict().passed(false));
        assert!(r.render().contains("NOT EXERCISED"), "{}", r.render());
    }

    #[test]
    fn a_late_exit_counts_from_the_lease_end() {
        // a is paused inside: its lease ends at 100, b enters at 110, and
        // a's exit is logged only at 500 (after SIGCONT), or as cs_lost.
        let late_exit = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            enter(110, "b", 100),
            exit(150, "b"),
            exit(500, "a"),
        ]);
        assert!(late_exit.safe(), "{:?}", late_exit.violations);
        let lost = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            enter(110, "b", 100),
            exit(150, "b"),
            rec(
                500,
                "a",
                Event::CsLost {
                    hop: 1,
                    late_us: 400,
                },
            ),
        ]);
        assert!(lost.safe(), "{:?}", lost.violations);
        // But a lost lease that ended after b entered is an overlap.
        let r = check::<TokenRingCheck>(&[
            enter(0, "a", 100),
            enter(90, "b", 100),
            rec(
                120,
                "a",
                Event::CsLost {
                    hop: 1,
                    late_us: 20,
                },
            ),
        ]);
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].0.end, End::LeaseEnd);
    }
}
