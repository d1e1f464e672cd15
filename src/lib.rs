//! dsys: distributed algorithms as pure state machines, run either by real
//! nodes talking gRPC or by a deterministic simulator, with checkers that
//! verify what happened.
//!
//! # Layout
//! * `node`      — the state-machine contract: `Protocol`, `Out`, `Effect`, `NodeId`.
//! * `config`    — `machines.txt` / `peers.json` loading and validation.
//! * `cli`       — what the interactive nodes share: errors, stdin, signals.
//! * `net`       — the gRPC transport: one FIFO stream per link, reconnects, codecs.
//! * `driver`    — the tokio driver that runs one state machine on the transport.
//! * `events`    — the JSON-lines event log (`--events FILE`).
//! * `sim`       — the deterministic simulator and its fault injection.
//! * `check`     — invariants over event logs (`dsys check`).
//! * `bench`     — what the `dsys bench` commands share: child processes, configs.
//! * `duration`  — parsing `250ms`, `1s`, `2m` on the command line.
//! * `tokenring` — token ring mutual exclusion.
//! * `gossip`    — word dissemination by rumor mongering and anti-entropy.

pub mod bench;
pub mod check;
pub mod cli;
pub mod config;
pub mod driver;
pub mod duration;
pub mod events;
pub mod gossip;
pub mod multicast;
pub mod net;
pub mod node;
pub mod sim;
pub mod tokenring;
