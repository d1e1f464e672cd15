//! The token ring's events, as `--events` writes them and `dsys check
//! tokenring` reads them back (names and fields are a stable format).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The token arrived here; `generation` is `counter@minter`.
    Token {
        hop: u64,
        generation: String,
        from: String,
    },
    TokenStarted {
        generation: String,
        ring: Vec<String>,
    },
    TokenRegenerated {
        generation: String,
        hop: u64,
        silent_ms: u64,
    },
    TokenRerouted {
        skipped: String,
        generation: String,
    },
    TokenDropped {
        generation: String,
        reason: String,
    },
    /// The user asked for the critical section.
    Lock,
    LockCancelled,
    /// In the critical section; the lease runs `lease_us` from now unless
    /// renewed.
    CsEnter {
        hop: u64,
        lease_us: u64,
        /// The token's generation and the lease round: with `hop`, the
        /// fencing token (absent in logs of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generation: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round: Option<u64>,
    },
    LeaseRenewed {
        lease_us: u64,
    },
    /// Left on purpose (`unlock`, quit). (`forced: true` is written by
    /// older versions for a lost lease.)
    CsExit {
        hop: u64,
        #[serde(default)]
        forced: bool,
    },
    /// The lease ran out while inside: the section ended `late_us` before
    /// this event's time, at the lease's end (the node may have been paused).
    CsLost {
        hop: u64,
        late_us: u64,
    },
    PeerDown {
        peer: String,
    },
    PeerUp {
        peer: String,
    },
    StartFailed,
    WalkLoop {
        origin: String,
    },
    LeaseRefused {
        granted: u64,
        need: u64,
    },
    #[serde(other, skip_serializing)]
    Other,
}
