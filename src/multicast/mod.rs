//! `dsys multicast`: a chat in which every node delivers every message in
//! the same total order (Lamport clocks, holdback queue, acknowledgements).
//!
//! * `msg`      — the wire messages as plain Rust values.
//! * `wire`     — their encoding (`proto/multicast.proto`).
//! * `machine`  — the sans-IO state machine.
//! * `note`     — deliveries and status, as console lines and events.
//! * `events`   — the typed events (`multicast`, `deliver`, ...).
//! * `check`    — `dsys check multicast`: one total order over every life.
//! * `cli`      — `dsys multicast`: the chat UI on a terminal, else plain mode.
//! * `tui`      — the chat UI (ratatui).
//! * `simulate` — `dsys sim multicast` and the campaigns' random scenarios.
//! * `demo`     — `dsys demo multicast`: real nodes in one process, with a crash.
//! * `bench`    — `dsys bench multicast`: throughput and latency.

pub mod bench;
pub mod check;
pub mod cli;
pub mod demo;
pub mod events;
pub mod machine;
pub mod msg;
pub mod note;
pub mod simulate;
pub mod tui;
pub mod wire;

pub use machine::{Cmd, Multicast, Timer};
pub use msg::{Data, Msg};
pub use note::Note;

use crate::tool::{Algorithm, Tool};

/// Totally ordered multicast on the command line (`main.rs` lists it).
pub struct MulticastAlgorithm;

impl Algorithm for MulticastAlgorithm {
    fn name(&self) -> &'static str {
        "multicast"
    }
    fn about(&self) -> &'static str {
        "Run one chat node: every node delivers every message in the same total order"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("dsys demo multicast", "a 3-node chat with a crash, checked"),
            (
                "dsys multicast l1",
                "one chat node; l2, l3 in other terminals",
            ),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<cli::NodeArgs>(self.about()))
    }
    fn demo(&self) -> Option<Tool> {
        Some(Tool::demo::<demo::DemoArgs>(
            "Multicast: every node chats at random times; one crashes and rejoins; all checked",
        ))
    }
    fn sim(&self) -> Option<Tool> {
        Some(Tool::sim::<simulate::SimArgs>(
            "Chat workload (every node sends at random times) with faults",
        ))
    }
    fn check(&self) -> Option<Tool> {
        Some(Tool::check::<check::OrderCheck>(
            "Every node delivered one total order (prefixes and suffixes for lives), no duplicates, FIFO",
        ))
    }
    fn bench(&self) -> Option<Tool> {
        Some(Tool::of::<bench::BenchArgs>(
            "Ordered deliveries per second and light-load latency with real processes",
        ))
    }
}
