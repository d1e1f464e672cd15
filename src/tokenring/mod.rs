//! `dsys tokenring`: mutual exclusion by a token passed around a logical ring.
//!
//! * `msg`     — the wire messages (plain Rust; protobuf mapping in `net`).
//! * `lease`   — majority leases that make mutual exclusion safe.
//! * `machine` — the sans-IO state machine (token, routing, regeneration).
//! * `note`    — what the machine reports: console lines and events.
//! * `cli`     — the interactive prompt and process wiring.
//! * `scenario`— the random lock/unlock workload shared by `demo` and `sim`.
//! * `simulate`— `dsys sim tokenring`: the workload on the simulator.
//! * `demo`    — `dsys demo tokenring`: real nodes in one process.
//! * `run`     — starting one real node (transport + driver + machine).
//! * `report`  — the checker's verdict for people.
//! * `bench`   — `dsys bench tokenring`: hops/s and lock latency.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod lease;
pub mod machine;
pub mod msg;
pub mod note;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulate;

pub use machine::{Cmd, Timer, Timing, TokenRing};
pub use msg::{Gen, Msg, Token};
pub use note::Note;
