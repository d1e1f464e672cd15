//! The state-machine contract every peer-to-peer algorithm implements.
//!
//! An algorithm is a *sans-IO* state machine: it consumes inputs (a message
//! from a peer, a timer it set earlier, a command from the user, a link going
//! up or down) and answers with effects collected in [`Out`] (messages to
//! send, timers to set, notes for the user and the event log). It never reads
//! a clock, touches a socket or draws from a global RNG: time arrives as
//! [`Out::now`] and as timer inputs, randomness from the RNG it was built with.
//! Two drivers run the same machines: the tokio driver (`crate::driver`) and
//! the deterministic simulator (`crate::sim`).
//!
//! Timers are plain values of the algorithm's `Timer` type; an algorithm that
//! re-arms a timer puts a token (a counter) in it and ignores stale ones, so
//! drivers never need to cancel anything.

use std::fmt::Debug;
use std::time::Duration;

use crate::config::Cluster;
pub use crate::config::NodeId;
use crate::events::Event;
use crate::net::Wire;

/// The RNG every state machine is built with: seeded by the simulator and
/// tests, from OS entropy by the real driver. ChaCha8 is portable, so a seed
/// means the same run on every machine.
pub type Rng = rand_chacha::ChaCha8Rng;

/// Something an algorithm tells the outside world: a typed event for the
/// event log (and the checker), and a line for a person, either or both.
pub trait Note: Clone + Debug + Send + 'static {
    /// The algorithm's event type (one serde-tagged enum per algorithm).
    type Event: Event;
    fn event(&self, cluster: &Cluster) -> Option<Self::Event>;
    fn line(&self, cluster: &Cluster) -> Option<String>;
    /// Frequent and nobody waits for it (a token passing by): it may be
    /// shown a moment later, batched with others. Everything else is shown
    /// at once.
    fn routine(&self) -> bool {
        false
    }
    /// The algorithm writes its own `send` events (with fields of its own),
    /// so the drivers do not log a common `send` per message for it.
    const LOGS_OWN_SENDS: bool = false;
}

/// A distributed algorithm as a pure state machine.
pub trait Protocol: Send + 'static {
    /// Wire messages; the algorithm owns their encoding (`Wire`).
    type Msg: Wire + Clone + Debug;
    type Timer: Clone + Debug + Send + 'static;
    type Cmd: Debug + Send + 'static;
    type Note: Note;

    /// Called once when the node starts (and again for a fresh instance after
    /// a restart: a restarted node has lost all state).
    fn on_start(&mut self, out: &mut Out<Self>);
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, out: &mut Out<Self>);
    fn on_timer(&mut self, timer: Self::Timer, out: &mut Out<Self>);
    fn on_command(&mut self, cmd: Self::Cmd, out: &mut Out<Self>);
    /// The transport connected to (`up`) or lost (`!up`) a peer.
    fn on_link(&mut self, _peer: NodeId, _up: bool, _out: &mut Out<Self>) {}
    /// The node is shutting down on purpose (`quit`, Ctrl-C, SIGTERM): a last
    /// chance to hand over what others need. A crash never calls this.
    fn on_stop(&mut self, _out: &mut Out<Self>) {}
    /// Whether the machine takes user commands now. A machine whose buffers
    /// are full says no, and the driver stops reading commands until it says
    /// yes again (the user's input waits; nothing grows without bound).
    fn accepting_commands(&self) -> bool {
        true
    }
}

/// An effect the driver carries out after the state machine returns.
#[derive(Debug)]
pub enum Effect<P: Protocol + ?Sized> {
    Send { to: NodeId, msg: P::Msg },
    Timer { after: Duration, timer: P::Timer },
    Note(P::Note),
}

/// The effects of one input, plus the time at which it happened.
pub struct Out<P: Protocol + ?Sized> {
    now: Duration,
    effects: Vec<Effect<P>>,
}

impl<P: Protocol + ?Sized> Out<P> {
    pub fn new(now: Duration) -> Self {
        Out {
            now,
            effects: Vec::new(),
        }
    }

    /// Monotonic time of the current input, since the driver started.
    pub fn now(&self) -> Duration {
        self.now
    }

    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
    }

    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        self.effects.push(Effect::Send { to, msg });
    }

    pub fn timer(&mut self, after: Duration, timer: P::Timer) {
        self.effects.push(Effect::Timer { after, timer });
    }

    pub fn note(&mut self, note: P::Note) {
        self.effects.push(Effect::Note(note));
    }

    /// Takes the effects collected so far, leaving the buffer empty (and its
    /// allocation in place) for the next input.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect<P>> {
        self.effects.drain(..)
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }
}
