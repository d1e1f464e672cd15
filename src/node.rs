//! The state-machine contract every algorithm implements.
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

use serde_json::{Map, Value};

use crate::config::Cluster;

/// The RNG every state machine is built with: seeded by the simulator and
/// tests, from OS entropy by the real driver. ChaCha8 is portable, so a seed
/// means the same run on every machine.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A node's index in its [`Cluster`] (names sorted). Indices are local: the
/// wire carries names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What every wire message can say about itself, for `send` events.
pub trait WireKind {
    /// A short stable name of the message kind (`token`, `lease_request`, ...).
    fn kind(&self) -> &'static str;
}

/// One line for the event log: its name and fields (`t_us` and `node` are
/// added by whoever writes it).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: &'static str,
    pub fields: Map<String, Value>,
}

impl Event {
    pub fn new(name: &'static str) -> Self {
        Event {
            name,
            fields: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

/// Something an algorithm tells the outside world.
pub trait Note: Debug {
    /// The event-log record, if this note is one.
    fn event(&self, cluster: &Cluster) -> Option<Event>;
    /// The line a person at this node's terminal should read, if any.
    fn line(&self, cluster: &Cluster) -> Option<String>;
    /// Must this note's event reach the disk at once (it matters after a
    /// `kill -9`, like entering the critical section)?
    fn urgent(&self) -> bool {
        false
    }
}

/// A distributed algorithm as a pure state machine.
pub trait Protocol {
    type Msg: Clone + Debug + WireKind + Send + 'static;
    type Timer: Clone + Debug + Send + 'static;
    type Cmd: Debug + Send + 'static;
    type Note: Note + Send + 'static;

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
