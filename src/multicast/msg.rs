//! Multicast wire messages as plain Rust values (their encoding is in
//! `wire.rs`).

use crate::node::NodeId;
use crate::seqset::SeqSet;

/// A chat message: its sender's incarnation and sequence number, its
/// Lamport stamp, its text. `seq` numbers of a node grow across restarts
/// (they start at the incarnation, the start time in µs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    pub sender: NodeId,
    pub inc: u64,
    pub seq: u64,
    pub lamport: u64,
    pub text: String,
}

/// A message's identity: (sender, incarnation, seq).
pub type MsgId = (NodeId, u64, u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// A message from its own sender (`data.sender` is the link's peer).
    Data(Data),
    /// Someone else's message, passed on by the link's peer.
    Relay(Data),
    /// What the peer has received, per (sender, incarnation); `sent` is the
    /// peer's own last data seq, so a receiver can tell that it has
    /// everything the peer sent before this ack.
    Ack {
        inc: u64,
        clock: u64,
        sent: u64,
        have: Vec<(NodeId, u64, SeqSet)>,
    },
    /// A (re)started node asks to join.
    SyncReq { inc: u64 },
    /// The answer: the peer's incarnation, clock, last data seq, the stamp
    /// of the last message it delivered, and the messages it relayed to the
    /// joiner (the joiner waits for all of them before it joins).
    SyncReply {
        inc: u64,
        clock: u64,
        sent: u64,
        delivered: u64,
        relayed: Vec<MsgId>,
    },
    /// The joining node's cut: it delivers messages stamped above it; the
    /// others need its ack only for those.
    Join { inc: u64, cut: u64 },
    /// "My queue is stuck: send me your ack, and your data I lack."
    AckPlease,
    /// The peer has relayed every message it held from `of`'s earlier
    /// lives: these. (It counts once the receiver holds them all.)
    FlushDone {
        of: NodeId,
        inc: u64,
        relayed: Vec<MsgId>,
    },
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Data(_) => "data",
            Msg::Relay(_) => "relay",
            Msg::Ack { .. } => "ack",
            Msg::SyncReq { .. } => "sync_req",
            Msg::SyncReply { .. } => "sync_reply",
            Msg::Join { .. } => "join",
            Msg::FlushDone { .. } => "flush_done",
            Msg::AckPlease => "ack_please",
        }
    }
}
