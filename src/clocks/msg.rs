//! The model's wire messages as plain Rust values (their encoding is in
//! `wire.rs`).

use crate::config::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// The model's message: the sender's logical clock at the send, and the
    /// sender (the transport knows who sent it too; the two must agree).
    Clock { clock: u64, sender: NodeId },
    /// Before ticking starts: "I am here" (`heard_you`: I have heard from
    /// you too).
    Hello { heard_you: bool },
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Clock { .. } => "clock",
            Msg::Hello { .. } => "hello",
        }
    }
}
