//! Gossip wire messages as plain Rust values (their encoding is in `wire.rs`).

use std::collections::BTreeMap;

use crate::node::NodeId;
use crate::seqset::SeqSet;

/// Per-origin sets of sequence numbers: a node's knowledge, or a digest of it.
pub type Digest = BTreeMap<NodeId, SeqSet>;

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
    /// on) the sender's digest so the receiver can repair it in turn. A
    /// large repair travels as several of these, each under the size limit.
    Repair {
        words: Vec<Word>,
        have: Option<Digest>,
    },
    /// "Add me as a neighbor" (both ends of a link know each other).
    Link,
    LinkAck,
    Unlink,
}

impl Msg {
    pub fn kind(&self) -> &'static str {
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
