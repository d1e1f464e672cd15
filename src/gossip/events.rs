//! Gossip's events, as `--events` writes them and `dsys check gossip` reads
//! them back.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A word learned here: made here (`from` null) or told by `from`.
    Learn {
        word: String,
        origin: String,
        seq: u64,
        from: Option<String>,
    },
    Link {
        peer: String,
    },
    Unlink {
        peer: String,
    },
    LinkFailed {
        peer: String,
    },
    PeerDown {
        peer: String,
    },
    PeerUp {
        peer: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}
