//! A link's state as the rest of the node sees it, and the reconnect
//! backoff both transports apply: after a failed connect, messages to that
//! peer are dropped without trying until the backoff has passed (unless the
//! peer has just dialed us, which proves it is back).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

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
}

impl fmt::Display for LinkState {
    /// The one wording every node's `status`/`peers` output uses.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            LinkState::Unused => "not contacted yet",
            LinkState::Up => "up",
            LinkState::Down => "DOWN",
        })
    }
}

/// Outbound link states, shared with whoever shows `status`, and a "this
/// peer just dialed us" flag per peer that cuts a reconnect backoff short.
#[derive(Debug)]
pub struct LinkTable {
    state: Vec<AtomicU8>,
    heard_from: Vec<AtomicBool>,
}

impl LinkTable {
    pub fn new(n: usize) -> Self {
        LinkTable {
            state: (0..n).map(|_| AtomicU8::new(0)).collect(),
            heard_from: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Sets the state; returns the previous one.
    pub fn set(&self, peer: NodeId, s: LinkState) -> LinkState {
        let v = match s {
            LinkState::Unused => 0,
            LinkState::Up => 1,
            LinkState::Down => 2,
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
}

fn decode_state(v: u8) -> LinkState {
    match v {
        1 => LinkState::Up,
        2 => LinkState::Down,
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
