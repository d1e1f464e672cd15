//! A link's state as the rest of the node sees it, and the reconnect
//! backoff both transports apply: after a failed connect, messages to that
//! peer are dropped without trying until the backoff has passed (unless the
//! peer has just dialed us, which proves it is back).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::auth::{Refusal, Say};
use crate::config::NodeId;

pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A link's state as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Never used: nothing was sent to this peer yet.
    Unused,
    Up,
    Down,
    /// The peer is there, but one side refused the other (a different
    /// cookie, a certificate naming someone else, ...).
    Refused(Refusal),
}

impl fmt::Display for LinkState {
    /// The one wording every node's `status`/`peers` output uses.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            LinkState::Unused => "not contacted yet",
            LinkState::Up => "up",
            LinkState::Down => "DOWN",
            LinkState::Refused(r) => return write!(f, "REFUSED ({})", r.words()),
        })
    }
}

/// Outbound link states, shared with whoever shows `status`, and a "this
/// peer just dialed us" flag per peer that cuts a reconnect backoff short.
#[derive(Debug)]
pub struct LinkTable {
    state: Vec<AtomicU8>,
    heard_from: Vec<AtomicBool>,
    /// Links refused: ones we dialed, and ones dialed to us.
    refused_out: AtomicU64,
    refused_in: AtomicU64,
    /// Refusal lines, at most once a minute each.
    pub say: Say,
}

impl LinkTable {
    pub fn new(n: usize) -> Self {
        LinkTable {
            state: (0..n).map(|_| AtomicU8::new(0)).collect(),
            heard_from: (0..n).map(|_| AtomicBool::new(false)).collect(),
            refused_out: AtomicU64::new(0),
            refused_in: AtomicU64::new(0),
            say: Say::default(),
        }
    }

    /// Sets the state; returns the previous one.
    pub fn set(&self, peer: NodeId, s: LinkState) -> LinkState {
        let v = match s {
            LinkState::Unused => 0,
            LinkState::Up => 1,
            LinkState::Down => 2,
            LinkState::Refused(r) => 3 + r.code(),
        };
        decode_state(self.state[peer.index()].swap(v, Ordering::Relaxed))
    }

    pub fn get(&self, peer: NodeId) -> LinkState {
        decode_state(self.state[peer.index()].load(Ordering::Relaxed))
    }

    pub fn heard_from(&self, peer: NodeId) {
        self.heard_from[peer.index()].store(true, Ordering::Relaxed);
    }

    pub fn take_heard_from(&self, peer: NodeId) -> bool {
        self.heard_from[peer.index()].swap(false, Ordering::Relaxed)
    }

    /// A link we dialed was refused (by either side).
    pub fn count_refused_out(&self) {
        self.refused_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A link dialed to us was refused.
    pub fn count_refused_in(&self) {
        self.refused_in.fetch_add(1, Ordering::Relaxed);
    }

    /// (links we dialed that were refused, links to us we refused).
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_out.load(Ordering::Relaxed),
            self.refused_in.load(Ordering::Relaxed),
        )
    }

    /// `"; links refused: ..."` for a status line, or nothing.
    pub fn refused_suffix(&self) -> String {
        self.refused_line()
            .map_or(String::new(), |l| format!("; {l}"))
    }

    /// The line `status` adds when links were refused, else None.
    pub fn refused_line(&self) -> Option<String> {
        let (out, inbound) = self.refused();
        (out + inbound > 0).then(|| {
            format!(
                "links refused: {out} of ours (the peer's reason is in the log), {inbound} dialed to us"
            )
        })
    }
}

fn decode_state(v: u8) -> LinkState {
    match v {
        1 => LinkState::Up,
        2 => LinkState::Down,
        v @ 3.. => LinkState::Refused(Refusal::from_code(v - 3)),
        _ => LinkState::Unused,
    }
}

/// Exponential backoff between connection attempts to one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    delay: Duration,
    retry_at: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay: BACKOFF_MIN,
            retry_at: None,
        }
    }
}

impl Backoff {
    /// May we try to connect now? (Yes when not backing off, or when the
    /// peer has just dialed us.)
    pub fn may_try(&self, now: Instant, heard_from: bool) -> bool {
        heard_from || self.retry_at.is_none_or(|t| now >= t)
    }

    /// A connect failed or a stream broke: wait before the next try, longer
    /// each time in a row.
    pub fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
    }

    pub fn succeeded(&mut self) {
        self.delay = BACKOFF_MIN;
        self.retry_at = None;
    }

    /// The wait before the next try (for tests and status).
    pub fn current(&self) -> Duration {
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_a_dial_from_the_peer_cuts_it_short() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.may_try(t0, false));
        b.failed(t0);
        assert!(!b.may_try(t0 + Duration::from_millis(10), false));
        assert!(b.may_try(t0 + Duration::from_millis(10), true));
        assert!(b.may_try(t0 + BACKOFF_MIN, false));
        for _ in 0..10 {
            b.failed(t0);
        }
        assert_eq!(b.current(), BACKOFF_MAX);
        b.succeeded();
        assert_eq!(b.current(), BACKOFF_MIN);
        assert!(b.may_try(t0, false));
        assert_eq!(LinkState::Unused.to_string(), "not contacted yet");
    }
}
