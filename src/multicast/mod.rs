//! `dsys multicast`: a chat in which every node delivers every message in
//! the same total order (Lamport clocks, holdback queue, acknowledgements).
//!
//! * `msg`      — the wire messages (plain Rust; protobuf mapping in `net`).
//! * `machine`  — the sans-IO state machine.
//! * `note`     — deliveries and status, as console lines and events.
//! * `simulate` — the chat workload on the simulator, checked.
//! * `cli`      — the node: chat UI on a terminal, else plain mode.
//! * `tui`      — the chat UI (ratatui).
//! * `bench`    — `dsys bench multicast`: throughput and latency.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod machine;
pub mod msg;
pub mod note;
pub mod simulate;
pub mod tui;

pub use machine::{Cmd, Multicast, Timer};
pub use msg::{Data, Msg};
pub use note::Note;
