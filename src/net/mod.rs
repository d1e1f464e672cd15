//! The transport shared by every peer-to-peer algorithm. It moves opaque
//! messages over one FIFO stream per link direction and knows no algorithm:
//! an algorithm's messages are bytes here, encoded and decoded by the
//! algorithm's own [`Wire`] impl; the link's hello names the algorithm.
//!
//! * `codec`    — the [`Wire`] trait and helpers for node names on the wire.
//! * `auth`     — who may link: the cookie's challenge, TLS names, a hello's claims.
//! * `cookie`   — the cluster cookie: finding it, making it, proofs over nonces.
//! * `link`     — a link's state and reconnect backoff, shared by both transports.
//! * `grpc`     — the real transport: tonic streams, bounded per-link queues.
//! * `listener` — accepting connections without spinning or drowning.
//! * `ports`    — free loopback ports outside the kernel's ephemeral range.
//! * `tls`      — certificates from a `dsys certs init` folder, as rustls wants them.
//! * `channel`  — an in-process transport for driver tests (no sockets).
//!
//! What every transport promises the driver: messages to a peer arrive in
//! the order they were sent, or the link breaks. When it breaks (the peer
//! cannot be reached, or its queue overflowed) the messages queued for it
//! are dropped and the state machine is told `Link { up: false }`; the next
//! message after the backoff tries again, and a success is reported as
//! `Link { up: true }`. Reliability beyond that (acks, resends) is each
//! algorithm's business; the simulator models exactly this behaviour.

pub mod auth;
pub mod channel;
pub mod codec;
pub mod cookie;
pub mod grpc;
pub mod link;
pub mod listener;
pub mod ports;
pub mod tls;

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.net.v1");
}

pub use codec::{DecodeError, Wire};
pub use link::{LinkState, LinkTable};

use crate::config::NodeId;

/// Largest single message a node sends or accepts (its encoded bytes).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest frame: one message at the limit, plus the hello and framing.
pub const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES + 64 * 1024;
/// A link's send queue holds at most this many bytes...
pub const LINK_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// ...and this many messages. Past either bound the peer is too slow (or
/// stalled): the link is reset as if the peer had gone away.
pub const LINK_QUEUE_MESSAGES: usize = 100_000;
/// Messages waiting for the state machine (per node). The transport's
/// receive side waits when it is full, which slows the senders down.
pub const INBOX_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot listen on {addr} (node {name} in {file}): {source}{hint}")]
    Bind {
        addr: std::net::SocketAddr,
        name: String,
        file: String,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("message {kind} to {to} is {size} bytes, over the {max}-byte limit: not sent")]
    TooLarge {
        to: String,
        kind: &'static str,
        size: usize,
        max: usize,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error(
        "{to} is not keeping up ({queued} messages queued): its link is reset, as if it were down"
    )]
    Overflow { to: String, queued: usize },
}

/// The innermost cause of a transport error ("Connection refused"), which
/// says more than tonic's "transport error".
pub fn cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let s = cur.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// What the transport hands the driver.
#[derive(Debug)]
pub enum Inbound<M> {
    Msg { from: NodeId, msg: M },
    Link { peer: NodeId, up: bool },
}

/// Where a node's messages go: the gRPC transport for real, the channel
/// transport in tests. Sending never waits.
pub trait Transport<M>: Send + 'static {
    /// Queues `msg` for `to`. A message over [`MAX_MESSAGE_BYTES`] is refused
    /// here (nothing else is affected); an overflowing queue resets the link.
    fn send(&mut self, to: NodeId, msg: &M) -> Result<(), NetError>;
}
