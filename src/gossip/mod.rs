//! `dsys gossip`: words spread through a network of peers by rumor
//! mongering and anti-entropy.
//!
//! * `msg`      — the wire messages as plain Rust values.
//! * `wire`     — their encoding (`proto/gossip.proto`).
//! * `machine`  — the sans-IO state machine.
//! * `note`     — what the machine reports: console lines and events.
//! * `events`   — the typed events (`learn`, `link`, ...).
//! * `check`    — `dsys check gossip`: every word at every live node.
//! * `topology` — the shapes `sim` and `demo` build (grid, star, tree4, ...).
//! * `tuning`   — the rumor/anti-entropy flags.
//! * `cli`      — `dsys gossip`: the interactive node (questions, commands).
//! * `simulate` — `dsys sim gossip`: the Maelstrom-style broadcast workload.
//! * `demo`     — `dsys demo gossip`: real nodes in one process, with a crash.

pub mod check;
pub mod cli;
pub mod demo;
pub mod events;
pub mod machine;
pub mod msg;
pub mod note;
pub mod simulate;
pub mod topology;
pub mod tuning;
pub mod wire;

pub use machine::{Cmd, Gossip, Params, Timer};
pub use msg::{Msg, Word, WordId};
pub use note::Note;

use crate::tool::{Algorithm, Tool};

/// Gossip on the command line (`main.rs` lists it).
pub struct GossipAlgorithm;

impl Algorithm for GossipAlgorithm {
    fn name(&self) -> &'static str {
        "gossip"
    }
    fn about(&self) -> &'static str {
        "Run one gossip node: words spread by rumor mongering and anti-entropy"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "dsys demo gossip",
                "words through 5 nodes, a crash, checked",
            ),
            ("dsys gossip", "one node: asks its name and neighbors"),
            ("dsys sim gossip", "Gossip Glomers' broadcast, virtual time"),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<cli::NodeArgs>(self.about()))
    }
    fn demo(&self) -> Option<Tool> {
        Some(Tool::demo::<demo::DemoArgs>(
            "Gossip: words spreading over a printed topology, one node killed and restarted",
        ))
    }
    fn sim(&self) -> Option<Tool> {
        Some(Tool::sim::<simulate::SimArgs>(
            "Broadcast workload (Maelstrom / Gossip Glomers style) with faults",
        ))
    }
    fn check(&self) -> Option<Tool> {
        Some(Tool::check::<check::GossipCheck>(
            "Every word reached every live node; coverage, messages per word, spread latency",
        ))
    }
}
