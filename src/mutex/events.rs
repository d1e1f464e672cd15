//! The mutex's events, as `--events` writes them and `dsys check mutex`
//! reads them back (names and fields are a stable format).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The node wants the critical section: its request's Lamport
    /// timestamp, the peers asked (with reuse, the others' permissions were
    /// still held), and whether permissions are reused.
    Request {
        ts: u64,
        #[serde(default)]
        asked: Vec<String>,
        #[serde(default)]
        reuse: bool,
    },
    /// A reply (permission) sent to `to`, for its request stamped `ts`.
    ReplySent {
        to: String,
        ts: u64,
    },
    /// A reply received for this node's current request.
    ReplyReceived {
        from: String,
    },
    /// `from`'s request stamped `ts` is answered later (this node is inside,
    /// or its own request comes first).
    Deferred {
        from: String,
        ts: u64,
    },
    /// Inside; `ts` is the request that got it in.
    CsEnter {
        #[serde(default)]
        ts: u64,
    },
    CsExit,
    /// The request was withdrawn (`unlock` while waiting, or quitting).
    Cancelled,
    PeerDown {
        peer: String,
    },
    PeerUp {
        peer: String,
    },
    /// A peer started a new life: what it knew of this node is gone.
    PeerRestarted {
        peer: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}
