//! Majority leases on the critical section: the part of the token ring that
//! makes mutual exclusion hold even when the token is duplicated.
//!
//! A node may be in the critical section only while it holds a lease granted
//! by a majority of the ring. A granter remembers one grant at a time, until
//! `now + lease` on *its* clock from when the request *arrived*; the holder
//! counts its lease from when it *sent* the request, so the holder's lease
//! always ends first. Any two majorities share a node, and that node grants
//! to one holder at a time, so two leases never overlap. A node that has just
//! started grants nothing for one lease time: if it is a restart, every grant
//! it made before the crash has expired by then.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::node::NodeId;

/// The granter's side: who holds this node's vote, and until when.
#[derive(Debug)]
pub struct Grants {
    lease: Duration,
    quiet_until: Duration,
    holder: Option<Grant>,
}

#[derive(Clone, Copy, Debug)]
struct Grant {
    who: NodeId,
    round: u64,
    until: Duration,
}

impl Grants {
    pub fn new(lease: Duration, started: Duration) -> Self {
        Grants {
            lease,
            quiet_until: started + lease,
            holder: None,
        }
    }

    /// Grants (or renews) `who`'s lease for its round `round` if this node's
    /// vote is free.
    pub fn request(&mut self, who: NodeId, round: u64, now: Duration) -> bool {
        if now < self.quiet_until {
            return false;
        }
        match self.holder {
            Some(g) if g.who != who && g.until > now => false,
            _ => {
                self.holder = Some(Grant {
                    who,
                    round,
                    until: now + self.lease,
                });
                true
            }
        }
    }

    /// Frees the vote if `who` holds it for exactly `round`: a release for an
    /// older round (a late grant handed back) must not end a newer lease.
    pub fn release(&mut self, who: NodeId, round: u64) {
        if matches!(self.holder, Some(g) if g.who == who && g.round == round) {
            self.holder = None;
        }
    }

    /// The live grant, if any.
    pub fn holder(&self, now: Duration) -> Option<NodeId> {
        self.holder.filter(|g| g.until > now).map(|g| g.who)
    }
}

/// The requester's side of one round of lease requests.
#[derive(Debug)]
pub struct Round {
    pub id: u64,
    pub sent_at: Duration,
    granted: BTreeSet<NodeId>,
    refused: BTreeSet<NodeId>,
    voters: usize,
}

pub enum Outcome {
    Pending,
    Won,
    Lost,
}

impl Round {
    pub fn new(id: u64, sent_at: Duration, voters: usize) -> Self {
        Round {
            id,
            sent_at,
            granted: BTreeSet::new(),
            refused: BTreeSet::new(),
            voters,
        }
    }

    pub fn majority(&self) -> usize {
        self.voters / 2 + 1
    }

    pub fn granted(&self) -> usize {
        self.granted.len()
    }

    pub fn answer(&mut self, from: NodeId, granted: bool) -> Outcome {
        if granted {
            self.granted.insert(from);
        } else {
            self.refused.insert(from);
        }
        self.outcome()
    }

    pub fn outcome(&self) -> Outcome {
        if self.granted.len() >= self.majority() {
            Outcome::Won
        } else if self.voters - self.refused.len() < self.majority() {
            Outcome::Lost
        } else {
            Outcome::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(2);
    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    #[test]
    fn one_holder_at_a_time_until_release_or_expiry() {
        let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
        let mut g = Grants::new(L, s(0));
        assert!(!g.request(a, 1, s(1)), "quiet after start");
        assert!(g.request(a, 1, s(3)));
        assert!(!g.request(b, 1, s(4)));
        assert!(g.request(a, 2, s(4)), "renewal");
        assert!(!g.request(b, 2, s(5)));
        assert!(g.request(b, 3, s(6)), "expired at 4+2");
        g.release(a, 2);
        assert_eq!(
            g.holder(s(6)),
            Some(b),
            "release by a non-holder is ignored"
        );
        g.release(b, 2);
        assert_eq!(
            g.holder(s(6)),
            Some(b),
            "release of an older round is ignored"
        );
        g.release(b, 3);
        assert!(g.request(c, 1, s(6)));
    }

    #[test]
    fn round_is_won_by_a_majority_and_lost_when_none_is_left() {
        let mut r = Round::new(1, s(0), 5);
        assert!(matches!(r.answer(NodeId(0), true), Outcome::Pending));
        assert!(matches!(r.answer(NodeId(1), false), Outcome::Pending));
        assert!(matches!(r.answer(NodeId(2), true), Outcome::Pending));
        assert!(matches!(r.answer(NodeId(3), true), Outcome::Won));
        let mut r = Round::new(2, s(0), 3);
        assert!(matches!(r.answer(NodeId(0), false), Outcome::Pending));
        assert!(matches!(r.answer(NodeId(1), false), Outcome::Lost));
    }
}
