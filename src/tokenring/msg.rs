//! Token-ring wire messages as plain Rust values (their encoding is in
//! `wire.rs`).

use crate::node::NodeId;

/// A token's generation. A higher generation supersedes a lower one; the
/// minter breaks ties. `NodeId`s are indices into a name-sorted cluster, so
/// comparing them compares names, and every node orders generations alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gen {
    pub counter: u64,
    pub minter: NodeId,
}

/// The token: its generation, the hop counter and the ring order it has learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub generation: Gen,
    pub hop: u64,
    pub ring: Vec<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// The token itself, passed to the next live node of the ring. With
    /// `ack`, the receiver answers `TokenAck`; without (a fast ring), the
    /// token's own progress around the ring is the acknowledgement.
    Token {
        token: Token,
        ack: bool,
    },
    /// "I have token `generation` at `hop`": the sender may forget it.
    TokenAck {
        generation: Gen,
        hop: u64,
    },
    /// Sent to every ring member while a node keeps the token for a while:
    /// the token is alive, here, with this generation.
    Beacon(Token),
    /// The ring walk of `start`: follows each node's `next` until it is back
    /// at `origin`, collecting the ring order.
    Discover {
        origin: NodeId,
        attempt: u64,
        /// The `start` this walk belongs to (its retries share it).
        walk: u64,
        ring: Vec<NodeId>,
        /// The newest generation seen on the way: the new token goes above it.
        newest: Option<Gen>,
    },
    /// To the walk's origin: the walk reached `at`, which sent it to `next`.
    /// (`hops`: the walk's length at `at`.)
    Walked {
        attempt: u64,
        hops: u64,
        at: NodeId,
        next: NodeId,
    },
    /// "Are you there?" to a node skipped as down (any answer, or the link
    /// coming up, brings it back into the ring).
    Probe,
    /// Asks for (or renews) a lease on the critical section. Every node of
    /// the machines file votes, in the ring or not.
    LeaseRequest {
        round: u64,
    },
    LeaseReply {
        round: u64,
        granted: bool,
    },
    /// The sender left the critical section (or gave up trying): frees a
    /// vote given in `round`.
    LeaseRelease {
        round: u64,
    },
    /// The sender (re)started and has lost its state.
    Rejoin,
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Token { .. } => "token",
            Msg::TokenAck { .. } => "token_ack",
            Msg::Beacon(_) => "beacon",
            Msg::Discover { .. } => "discover",
            Msg::LeaseRequest { .. } => "lease_request",
            Msg::LeaseReply { .. } => "lease_reply",
            Msg::LeaseRelease { .. } => "lease_release",
            Msg::Rejoin => "rejoin",
            Msg::Walked { .. } => "walked",
            Msg::Probe => "probe",
        }
    }
}
