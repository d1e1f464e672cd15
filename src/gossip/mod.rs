//! `dsys gossip`: words spread through a network of peers by rumor
//! mongering and anti-entropy.
//!
//! * `msg`      — the wire messages (plain Rust; protobuf mapping in `net`).
//! * `known`    — compact per-origin sets of sequence numbers (digests).
//! * `machine`  — the sans-IO state machine.
//! * `note`     — what the machine reports: console lines and events.
//! * `topology` — the shapes `sim` and `demo` build (grid, star, tree4, ...).
//! * `simulate` — `dsys sim gossip`: the Maelstrom-style broadcast workload.
//! * `cli`      — the interactive node: prompts and commands.
//! * `demo`     — `dsys demo gossip`: real nodes in one process, with a crash.
//! * `report`   — results for people.

pub mod cli;
pub mod demo;
pub mod known;
pub mod machine;
pub mod msg;
pub mod note;
pub mod report;
pub mod simulate;
pub mod topology;

pub use machine::{Cmd, Gossip, Params, Timer};
pub use msg::{Msg, Word, WordId};
pub use note::Note;

/// The embedded word list the generator draws from.
pub fn word_list() -> &'static [&'static str] {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| include_str!("words.txt").split_whitespace().collect())
}
