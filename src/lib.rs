//! dsys: distributed algorithms as pure state machines, run either by real
//! nodes talking gRPC or by a deterministic simulator, with checkers that
//! verify what happened.
//!
//! # Layout
//! * `tool`      — what an algorithm implements to be a command (`Algorithm`, `Tool`).
//! * `registry`  — the command line built from `main.rs`'s list of algorithms.
//! * `node`      — the state-machine contract: `Protocol`, `Out`, `Effect`, `Note`.
//! * `config`    — `machines.txt` / `peers.json`: the `Cluster` and its `NodeId`s.
//! * `net`       — the transport: opaque messages over FIFO links (gRPC; channels for tests).
//! * `driver`    — the tokio driver that runs one state machine on a transport.
//! * `output`    — a node's events and lines, written off its protocol task.
//! * `events`    — the typed JSON-lines event log (`--events FILE`): writing and reading.
//! * `sim`       — the deterministic simulator, its faults and campaigns.
//! * `scenario`  — `dsys sim` and `dsys demo` as one scenario on two runners.
//! * `check`     — what checkers share: verdicts, intervals, `dsys check`.
//! * `ui`        — what interactive nodes share: input, commands, prompts, the shell.
//! * `cli`       — the binary's edge: errors and exit codes, runtime, logging.
//! * `demo`      — what `dsys demo` commands share: a local cluster, a stage, nodes.
//! * `bench`     — what `dsys bench` commands share: child processes, configs.
//! * `seqset`    — sets of sequence numbers as ranges.
//! * `stats`     — percentiles and latency summaries.
//! * `words`     — the embedded word list generators draw from.
//! * `duration`  — parsing `250ms`, `1s`, `2m` on the command line.
//! * `tokenring` — token ring mutual exclusion with majority leases.
//! * `gossip`    — word dissemination by rumor mongering and anti-entropy.
//! * `multicast` — totally ordered multicast chat.
//! * `mutex`     — Ricart–Agrawala mutual exclusion (permissions, no token).
//! * `clocks`    — the logical-clock scale model and its lab report.
//! * `chat`      — an account chat server: its own wire protocol and gRPC.
//! * `share`     — peer-to-peer file sharing with a tracker, checked pieces.
#![forbid(unsafe_code)]

pub mod bench;
pub mod certs;
pub mod chat;
pub mod check;
pub mod cli;
pub mod clocks;
pub mod config;
pub mod demo;
pub mod driver;
pub mod duration;
pub mod events;
pub mod gossip;
pub mod multicast;
pub mod mutex;
pub mod net;
pub mod node;
pub mod output;
pub mod registry;
pub mod scenario;
pub mod seqset;
pub mod share;
pub mod sim;
pub mod stats;
pub mod tokenring;
pub mod tool;
pub mod ui;
pub mod words;
