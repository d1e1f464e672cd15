//! Multicast's events, as `--events` writes them and `dsys check
//! multicast` reads them back.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// This node multicast a chat message.
    Multicast {
        seq: u64,
        lamport: u64,
        text: String,
    },
    /// A message delivered here, in the total order.
    Deliver {
        origin: String,
        seq: u64,
        lamport: u64,
        text: String,
    },
    Joined {
        cut: u64,
    },
    PeerUp {
        peer: String,
    },
    PeerDown {
        peer: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}
