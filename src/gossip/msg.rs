//! Gossip wire messages as plain Rust values (protobuf mapping in `net`).

use super::known::Digest;
use crate::node::{NodeId, WireKind};

/// A word's identity: who generated it and its sequence number there. Two
/// words with the same text are different words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WordId {
    pub origin: NodeId,
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub id: WordId,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// Rumor mongering: this round's hot words for the receiver, plus
    /// feedback: words the receiver pushed to us that we already knew.
    Rumors {
        words: Vec<Word>,
        known: Vec<WordId>,
    },
    /// Anti-entropy: what the sender has; `reply` asks for a repair back.
    Digest {
        have: Digest,
        reply: bool,
    },
    /// Anti-entropy: words the receiver lacked, and (when the exchange goes
    /// on) the sender's digest so the receiver can repair it in turn.
    Repair {
        words: Vec<Word>,
        have: Option<Digest>,
    },
    /// "Add me as a neighbor" (both ends of a link know each other).
    Link,
    LinkAck,
    Unlink,
}

impl WireKind for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Rumors { .. } => "rumors",
            Msg::Digest { .. } => "digest",
            Msg::Repair { .. } => "repair",
            Msg::Link => "link",
            Msg::LinkAck => "link_ack",
            Msg::Unlink => "unlink",
        }
    }
}
