//! `dsys chat`: an account chat server with two protocols over one
//! service: a wire protocol designed here (docs/chat-wire-protocol.md) on
//! plain TCP, and gRPC (proto/chat.proto). Accounts and queued messages
//! live in SQLite.
//!
//! * `service`     — the logic both front-ends call: accounts, sessions, delivery.
//! * `pattern`     — LIST's patterns, matched in linear time.
//! * `guard`       — bounded password hashing, backoff after wrong passwords.
//! * `store`       — SQLite (WAL), one writer thread committing in groups.
//! * `wire`        — the wire protocol's frames, byte by byte.
//! * `wire_server` — the wire protocol on TCP.
//! * `grpc_server` — the same service as a tonic server.
//! * `client`      — a connection over either protocol, one vocabulary.
//! * `wire_client` — the wire protocol's client side.
//! * `grpc_client` — the gRPC client side.
//! * `cli`         — `dsys chat server` and `dsys chat client`.
//! * `bench`       — `dsys bench chat`: both protocols, measured.

pub mod bench;
pub mod cli;
pub mod client;
pub mod grpc_client;
pub mod grpc_server;
pub mod guard;
pub mod pattern;
pub mod service;
pub mod store;
pub mod wire;
pub mod wire_client;
pub mod wire_server;

use clap::{Args, Subcommand};

use crate::cli::Outcome;
use crate::tool::{Algorithm, Run, Tool};

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(subcommand)]
    pub tool: ChatTool,
}

#[derive(Subcommand, Debug)]
pub enum ChatTool {
    /// Serve accounts and messages over the wire protocol and gRPC
    Server(cli::ServerArgs),
    /// The chat client: a terminal UI, or --plain lines for scripts
    Client(cli::ClientArgs),
}

impl Run for ChatArgs {
    fn run(self) -> Outcome {
        match self.tool {
            ChatTool::Server(a) => a.run(),
            ChatTool::Client(a) => a.run(),
        }
    }
}

/// The chat on the command line (`main.rs` lists it).
pub struct ChatAlgorithm;

impl Algorithm for ChatAlgorithm {
    fn name(&self) -> &'static str {
        "chat"
    }
    fn about(&self) -> &'static str {
        "An account chat server (own wire protocol and gRPC, SQLite) and its client"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "dsys chat server",
                "the chat server on :7070 (wire) and :7071 (gRPC)",
            ),
            (
                "dsys chat client",
                "a client; /create NAME, /login NAME, @NAME TEXT",
            ),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<ChatArgs>(self.about()))
    }
    fn bench(&self) -> Option<Tool> {
        Some(Tool::of::<bench::BenchArgs>(
            "Both protocols against one server: bytes per operation, ops/s, latency, code size",
        ))
    }
}
