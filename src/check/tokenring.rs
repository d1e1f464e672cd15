//! The token ring's invariants: no two nodes in the critical section at once
//! (safety), and every `lock` eventually followed by entry (liveness, for
//! runs whose faults have stopped).
//!
//! A node's time in the critical section runs from `cs_enter` to `cs_exit`.
//! A node that stops logging while inside (killed, crashed) is counted as
//! inside until its `crash` event if there is one, else until its lease ran
//! out: the lease's end is the latest moment it could still have been inside.

use std::collections::BTreeMap;
use std::fmt;

use super::Record;

#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub node: String,
    pub enter_us: u64,
    pub exit_us: u64,
    /// True when the end is inferred (crash or lease end), not logged.
    pub inferred_end: bool,
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} in the critical section from t={}us to t={}us{}",
            self.node,
            self.enter_us,
            self.exit_us,
            if self.inferred_end {
                " (end inferred)"
            } else {
                ""
            }
        )
    }
}

#[derive(Debug, Default)]
struct NodeState {
    open: Option<(u64, u64)>, // (enter, latest possible end)
    lock_since: Option<u64>,
    last_t: u64,
}

/// Feed events in time order, then [`MutexCheck::finish`].
#[derive(Debug, Default)]
pub struct MutexCheck {
    nodes: BTreeMap<String, NodeState>,
    intervals: Vec<Interval>,
    pub entries: BTreeMap<String, u64>,
    pub regenerations: u64,
    pub lock_waits_us: Vec<u64>,
}

#[derive(Debug)]
pub struct Report {
    pub intervals: usize,
    pub entries: BTreeMap<String, u64>,
    pub regenerations: u64,
    pub violations: Vec<(Interval, Interval)>,
    /// Locks never granted: (node, requested at).
    pub pending: Vec<(String, u64)>,
    pub lock_waits_us: Vec<u64>,
}

impl Report {
    pub fn safe(&self) -> bool {
        self.violations.is_empty()
    }
}

impl MutexCheck {
    fn node(&mut self, n: &str, t: u64) -> &mut NodeState {
        let s = self.nodes.entry(n.to_string()).or_default();
        s.last_t = s.last_t.max(t);
        s
    }

    pub fn lock(&mut self, node: &str, t: u64) {
        self.node(node, t).lock_since.get_or_insert(t);
    }

    pub fn lock_cancelled(&mut self, node: &str, t: u64) {
        self.node(node, t).lock_since = None;
    }

    pub fn enter(&mut self, node: &str, t: u64, lease_us: u64) {
        let s = self.node(node, t);
        let waited = s.lock_since.take().map(|since| t - since.min(t));
        if let Some((enter, end)) = s.open.take() {
            // Entered twice without an exit: close the first at its lease end.
            self.close(node, enter, end.min(t), true);
        }
        let s = self.node(node, t);
        s.open = Some((t, t + lease_us));
        *self.entries.entry(node.to_string()).or_default() += 1;
        if let Some(w) = waited {
            self.lock_waits_us.push(w);
        }
    }

    pub fn renewed(&mut self, node: &str, t: u64, lease_us: u64) {
        if let Some((_, end)) = &mut self.node(node, t).open {
            *end = (*end).max(t + lease_us);
        }
    }

    pub fn exit(&mut self, node: &str, t: u64) {
        if let Some((enter, _)) = self.node(node, t).open.take() {
            self.close(node, enter, t, false);
        }
    }

    /// The node crashed: it is out of the CS and its pending lock is gone.
    pub fn crash(&mut self, node: &str, t: u64) {
        let s = self.node(node, t);
        s.lock_since = None;
        if let Some((enter, _)) = s.open.take() {
            self.close(node, enter, t, true);
        }
    }

    fn close(&mut self, node: &str, enter_us: u64, exit_us: u64, inferred_end: bool) {
        self.intervals.push(Interval {
            node: node.to_string(),
            enter_us,
            exit_us,
            inferred_end,
        });
    }

    pub fn record(&mut self, r: &Record) {
        let lease = r.u64("lease_us").unwrap_or(0);
        match r.event.as_str() {
            "lock" => self.lock(&r.node, r.t_us),
            "lock_cancelled" => self.lock_cancelled(&r.node, r.t_us),
            "cs_enter" => self.enter(&r.node, r.t_us, lease),
            "lease_renewed" => self.renewed(&r.node, r.t_us, lease),
            "cs_exit" => self.exit(&r.node, r.t_us),
            "crash" => self.crash(&r.node, r.t_us),
            "token_regenerated" => self.regenerations += 1,
            _ => {
                self.node(&r.node, r.t_us);
            }
        }
    }

    pub fn finish(mut self) -> Report {
        let open: Vec<_> = self
            .nodes
            .iter_mut()
            .filter_map(|(n, s)| s.open.take().map(|(e, end)| (n.clone(), e, end)))
            .collect();
        for (n, enter, end) in open {
            self.close(&n, enter, end, true);
        }
        let mut iv = self.intervals;
        iv.sort_by_key(|i| (i.enter_us, i.exit_us));
        let mut violations = Vec::new();
        // Sweep: compare each interval with the one reaching furthest so far.
        let mut reach: Option<usize> = None;
        for i in 0..iv.len() {
            if let Some(r) = reach {
                if iv[i].enter_us < iv[r].exit_us && iv[i].node != iv[r].node {
                    violations.push((iv[r].clone(), iv[i].clone()));
                }
                if iv[i].exit_us > iv[r].exit_us {
                    reach = Some(i);
                }
            } else {
                reach = Some(i);
            }
        }
        let pending = self
            .nodes
            .iter()
            .filter_map(|(n, s)| s.lock_since.map(|t| (n.clone(), t)))
            .collect();
        Report {
            intervals: iv.len(),
            entries: self.entries,
            regenerations: self.regenerations,
            violations,
            pending,
            lock_waits_us: self.lock_waits_us,
        }
    }
}

/// Checks a whole log.
pub fn check(records: &[Record]) -> Report {
    let mut c = MutexCheck::default();
    for r in records {
        c.record(r);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_intervals_pass_and_overlap_is_named() {
        let mut c = MutexCheck::default();
        c.enter("a", 0, 100);
        c.exit("a", 10);
        c.enter("b", 10, 100);
        c.exit("b", 20);
        let r = c.finish();
        assert!(r.safe(), "{:?}", r.violations);
        assert_eq!(r.intervals, 2);

        let mut c = MutexCheck::default();
        c.enter("a", 0, 100);
        c.enter("b", 5, 100);
        c.exit("a", 10);
        c.exit("b", 20);
        let r = c.finish();
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].0.node, "a");
        assert_eq!(r.violations[0].1.node, "b");
    }

    #[test]
    fn an_interval_that_is_never_closed_lasts_until_its_lease_ends() {
        let mut c = MutexCheck::default();
        c.enter("a", 0, 100);
        c.renewed("a", 50, 100); // inside until 150 at the latest
        c.enter("b", 140, 100);
        c.exit("b", 160);
        let r = c.finish();
        assert_eq!(r.violations.len(), 1);
        assert!(r.violations[0].0.inferred_end);

        let mut c = MutexCheck::default();
        c.enter("a", 0, 100);
        c.crash("a", 20);
        c.enter("b", 30, 100);
        assert!(c.finish().safe());
    }

    #[test]
    fn pending_locks_are_reported() {
        let mut c = MutexCheck::default();
        c.lock("a", 0);
        c.lock("b", 0);
        c.enter("a", 5, 100);
        c.exit("a", 6);
        let r = c.finish();
        assert_eq!(r.pending, vec![("b".to_string(), 0)]);
        assert_eq!(r.lock_waits_us, vec![5]);
    }
}
