//! The workload shared by `dsys demo tokenring` and `dsys sim tokenring`:
//! one node starts the token; every node asks for the critical section after
//! a random (exponential) think time, stays inside for a random hold time,
//! leaves, thinks again. No new locks are asked for after `stop_at`.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};

use super::{Cmd, Note, TokenRing};
use crate::node::{NodeId, Rng};
use crate::sim::Happening;

#[derive(Clone, Debug)]
pub struct Workload {
    rng: Rng,
    pub start_at: Duration,
    /// Locks begin after this (nodes grant no lease for one lease time after they start).
    pub first_lock_after: Duration,
    pub think_mean: Duration,
    pub hold: (Duration, Duration),
    pub stop_at: Duration,
    nodes: Vec<NodeId>,
    down: BTreeSet<NodeId>,
    started: bool,
    /// Later `start`s (ring changes) not yet done: (node, when).
    starts: Vec<(NodeId, Duration)>,
    /// Later `start`s not yet planned.
    later: Vec<(NodeId, Duration)>,
}

/// A command to run at an absolute time.
pub type Planned = crate::scenario::Planned<Cmd>;

impl Workload {
    pub fn new(seed: u64, stop_at: Duration, lease: Duration) -> Self {
        Workload {
            rng: Rng::seed_from_u64(seed ^ 0x5eed_0f10_ad00),
            start_at: Duration::from_millis(100),
            first_lock_after: lease + Duration::from_millis(200),
            think_mean: Duration::from_millis(400),
            hold: (Duration::from_millis(20), Duration::from_millis(200)),
            stop_at,
            nodes: Vec::new(),
            down: BTreeSet::new(),
            started: false,
            starts: Vec::new(),
            later: Vec::new(),
        }
    }

    fn think(&mut self) -> Duration {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        self.think_mean.mul_f64(-u.ln())
    }

    fn next_lock(&mut self, now: Duration, node: NodeId) -> Option<Planned> {
        let at = now + self.think();
        (at < self.stop_at).then_some((at, node, Cmd::Lock))
    }

    /// `start`s typed later on (ring changes): NODE at TIME, typed again if
    /// the node was down then, until it has started a token.
    pub fn with_starts(mut self, starts: &[(NodeId, Duration)]) -> Self {
        self.later = starts.to_vec();
        self
    }
}

impl crate::scenario::Workload<TokenRing> for Workload {
    /// The opening moves: the later `start`s planned, `start` on the first
    /// node, a first lock everywhere.
    fn begin(&mut self, nodes: &[NodeId]) -> Vec<Planned> {
        self.nodes = nodes.to_vec();
        let mut plan = Vec::new();
        for (node, at) in std::mem::take(&mut self.later) {
            self.starts.push((node, at));
            plan.push((at, node, Cmd::Start));
        }
        if let Some(&first) = nodes.first() {
            plan.push((self.start_at, first, Cmd::Start));
        }
        for &n in nodes {
            plan.extend(self.next_lock(self.first_lock_after, n));
        }
        plan
    }

    /// What the workload does next after something happened at `now`.
    fn react(&mut self, now: Duration, h: &Happening<Note>) -> Vec<Planned> {
        match h {
            Happening::Note(n, Note::CsEnter { .. }) => {
                let (lo, hi) = self.hold;
                let hold = self.rng.random_range(lo..=hi);
                vec![(now + hold, *n, Cmd::Unlock)]
            }
            Happening::Note(n, Note::CsExit { .. }) | Happening::Note(n, Note::LockCancelled) => {
                self.next_lock(now, *n).into_iter().collect()
            }
            Happening::Note(n, Note::TokenStarted { .. }) => {
                self.started = true;
                self.starts.retain(|(m, _)| m != n);
                Vec::new()
            }
            // A person would try again.
            Happening::Note(n, Note::StartFailed { .. }) => {
                vec![(now + Duration::from_secs(1), *n, Cmd::Start)]
            }
            // ... and, if the node they started from died first, from another.
            Happening::Crash(n) => {
                self.down.insert(*n);
                if self.started {
                    return Vec::new();
                }
                let up = self.nodes.iter().copied().find(|m| !self.down.contains(m));
                up.map(|m| (now + Duration::from_secs(1), m, Cmd::Start))
                    .into_iter()
                    .collect()
            }
            Happening::Restart(n) => {
                self.down.remove(n);
                let from = now + self.first_lock_after;
                let mut plan: Vec<Planned> = self.next_lock(from, *n).into_iter().collect();
                let missed = self.starts.iter().any(|(m, at)| m == n && *at <= now);
                if !self.started || missed {
                    plan.push((from, *n, Cmd::Start));
                }
                plan
            }
            _ => Vec::new(),
        }
    }
}
