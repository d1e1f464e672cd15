//! Ricart–Agrawala wire messages as plain Rust values (their encoding is in
//! `wire.rs`).

/// Which request a message is about: the requester's Lamport timestamp,
/// its life (`incarnation`) and the request message's number (`seq`; a
/// resend keeps it, a new request for the same entry gets a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqId {
    pub ts: u64,
    pub incarnation: u64,
    pub seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// "May I enter the critical section?"
    Request(ReqId),
    /// "Yes", to the request it names.
    Reply(ReqId),
    /// The sender started a new life: what it knew is gone.
    Hello { incarnation: u64 },
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "request",
            Msg::Reply(_) => "reply",
            Msg::Hello { .. } => "hello",
        }
    }
}
