//! `dsys tokenring`: mutual exclusion by a token passed around a logical
//! ring, made safe by majority leases.
//!
//! * `msg`      — the wire messages as plain Rust values.
//! * `wire`     — their encoding (`proto/tokenring.proto`).
//! * `lease`    — majority leases that make mutual exclusion safe.
//! * `machine`  — the sans-IO state machine (token, routing, regeneration).
//! * `note`     — what the machine reports: console lines and events.
//! * `events`   — the typed events (`token`, `cs_enter`, ...).
//! * `check`    — `dsys check tokenring`: mutual exclusion, locks granted.
//! * `cli`      — `dsys tokenring`: the interactive node.
//! * `scenario` — the random lock/unlock workload shared by `demo` and `sim`.
//! * `simulate` — `dsys sim tokenring` and the campaigns' random scenarios.
//! * `demo`     — `dsys demo tokenring`: real nodes in one process.
//! * `bench`    — `dsys bench tokenring`: hops/s and lock latency.

pub mod bench;
pub mod check;
pub mod cli;
pub mod demo;
pub mod events;
pub mod lease;
pub mod machine;
pub mod msg;
pub mod note;
pub mod scenario;
pub mod simulate;
pub mod wire;

pub use machine::{Cmd, Timer, Timing, TokenRing};
pub use msg::{Gen, Msg, Token};
pub use note::Note;

use crate::tool::{Algorithm, Tool};

/// The token ring on the command line (`main.rs` lists it).
pub struct TokenRingAlgorithm;

impl Algorithm for TokenRingAlgorithm {
    fn name(&self) -> &'static str {
        "tokenring"
    }
    fn about(&self) -> &'static str {
        "Run one node of a token ring (mutual exclusion)"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("dsys demo tokenring", "a 5-node ring with a crash, checked"),
            (
                "dsys tokenring l1 --next l2",
                "one ring node; l2, l3 in other terminals",
            ),
            (
                "dsys sim tokenring --nodes 5",
                "the same in virtual time, with faults",
            ),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<cli::NodeArgs>(self.about()))
    }
    fn demo(&self) -> Option<Tool> {
        Some(Tool::demo::<demo::DemoArgs>(
            "Token ring: start, random lock/unlock, one node killed and restarted",
        ))
    }
    fn sim(&self) -> Option<Tool> {
        Some(Tool::sim::<simulate::SimArgs>(
            "Token ring workload (random lock/unlock on every node) with faults",
        ))
    }
    fn check(&self) -> Option<Tool> {
        Some(Tool::check::<check::TokenRingCheck>(
            "No two nodes in the critical section at once; reports locks never granted",
        ))
    }
    fn bench(&self) -> Option<Tool> {
        Some(Tool::of::<bench::BenchArgs>(
            "Token hops per second with --hop-delay 0ms, and lock-to-enter latency",
        ))
    }
}
