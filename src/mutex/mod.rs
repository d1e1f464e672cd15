//! `dsys mutex`: Ricart–Agrawala mutual exclusion (permission-based, no
//! token), with Roucairol–Carvalho's permission reuse as an option.
//!
//! * `msg`      — the wire messages as plain Rust values.
//! * `wire`     — their encoding (`proto/mutex.proto`).
//! * `machine`  — the sans-IO state machine.
//! * `note`     — what the machine reports: console lines and events.
//! * `events`   — the typed events (`request`, `reply_sent`, `cs_enter`, ...).
//! * `check`    — `dsys check mutex`: mutual exclusion, priority, liveness.
//! * `cli`      — `dsys mutex`: the interactive node.
//! * `simulate` — `dsys sim mutex` and the campaign's random scenarios.
//! * `demo`     — `dsys demo mutex`: real nodes in one process.
//! * `bench`    — `dsys bench mutex`: messages, latency, throughput, next
//!   to the token ring.

pub mod bench;
pub mod check;
pub mod cli;
pub mod demo;
pub mod events;
pub mod machine;
pub mod msg;
pub mod note;
pub mod simulate;
pub mod wire;

pub use machine::{Cmd, Mutex, Timer, Timing};
pub use msg::{Msg, ReqId};
pub use note::Note;

use crate::tool::{Algorithm, Tool};

/// Ricart–Agrawala on the command line (`main.rs` lists it).
pub struct MutexAlgorithm;

impl Algorithm for MutexAlgorithm {
    fn name(&self) -> &'static str {
        "mutex"
    }
    fn about(&self) -> &'static str {
        "Run one node of Ricart-Agrawala mutual exclusion (permission-based, no token)"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("dsys mutex l1", "one node; l2, l3 elsewhere; then `lock`"),
            (
                "dsys sim mutex --nodes 5",
                "Ricart-Agrawala in virtual time, with faults",
            ),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<cli::NodeArgs>(self.about()))
    }
    fn demo(&self) -> Option<Tool> {
        Some(Tool::demo::<demo::DemoArgs>(
            "Ricart-Agrawala: random lock/unlock, one node killed and restarted",
        ))
    }
    fn sim(&self) -> Option<Tool> {
        Some(Tool::sim::<simulate::SimArgs>(
            "Ricart-Agrawala workload (random lock/unlock on every node) with faults",
        ))
    }
    fn check(&self) -> Option<Tool> {
        Some(Tool::check::<check::MutexCheck>(
            "No two nodes inside at once, entries in timestamp order, every request granted",
        ))
    }
    fn bench(&self) -> Option<Tool> {
        Some(Tool::of::<bench::BenchArgs>(
            "Messages per entry, lock-to-enter latency and entries/s, next to the token ring",
        ))
    }
}
