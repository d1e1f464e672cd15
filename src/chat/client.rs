//! A chat connection, over either protocol, with one vocabulary: the wire
//! protocol's [`Request`] and [`Response`] (a gRPC call is mapped to and
//! from them). Pushed messages arrive on a channel; when the connection
//! dies, calls fail with [`Lost`] and the channel closes.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

pub use super::grpc_client::GrpcConn;
use super::service::Message;
use super::wire::{Request, Response};
pub use super::wire_client::WireConn;

/// Which protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Wire,
    Grpc,
}

impl Protocol {
    /// The server's default address for this protocol.
    pub fn default_addr(self) -> &'static str {
        match self {
            Protocol::Wire => "127.0.0.1:7070",
            Protocol::Grpc => "127.0.0.1:7071",
        }
    }
}

/// The connection is gone (the server went away, or said it closes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("connection lost: {0}")]
pub struct Lost(pub String);

/// What the server pushes to a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// A message for the logged-in account.
    Message(Message),
    /// The server logged this connection out (why, for people).
    LoggedOut(String),
}

/// Pushed messages waiting for the client's reader, at most.
pub(super) const PUSHES: usize = 4096;

pub enum Conn {
    Wire(WireConn),
    Grpc(GrpcConn),
}

/// How a client checks a TLS server (`--tls-ca FILE`): the CA, and the
/// name the server's certificate must carry (the host it is dialed by,
/// unless `--tls-name` says otherwise).
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub ca: crate::net::tls::TrustCa,
    pub name: String,
}

impl ClientTls {
    pub fn new(ca: crate::net::tls::TrustCa, addr: &str, name: Option<String>) -> ClientTls {
        let name = name.unwrap_or_else(|| crate::net::tls::host_of(addr).to_string());
        ClientTls { ca, name }
    }
}

impl Conn {
    /// Connects to `addr`; pushes arrive on the returned channel, whose
    /// end means the connection is gone.
    pub async fn connect(
        protocol: Protocol,
        addr: &str,
        me: Arc<Mutex<String>>,
        tls: Option<&ClientTls>,
    ) -> Result<(Conn, mpsc::Receiver<Pushed>), Lost> {
        let r = match protocol {
            Protocol::Wire => super::wire_client::connect(addr, me, tls).await,
            Protocol::Grpc => super::grpc_client::connect(addr, tls).await,
        };
        // What a mismatch looks like from here, said plainly: a server
        // that took the connection and then would not talk.
        r.map_err(|Lost(why)| {
            let lower = why.to_lowercase();
            let said_already = lower.contains("--tls-ca") || lower.contains("refused");
            Lost(if tls.is_none() && !said_already {
                format!("{why} (if the server runs with --tls, connect with --tls-ca FILE)")
            } else if tls.is_some()
                && (lower.contains("corrupt message")
                    || lower.contains("invalidcontenttype")
                    || lower.contains("wrong version"))
            {
                format!("{why} (the server does not seem to speak TLS: leave out --tls-ca)")
            } else {
                why
            })
        })
    }

    /// One request, its response (errors of the service are responses).
    pub async fn call(&self, req: Request) -> Result<Response, Lost> {
        match self {
            Conn::Wire(c) => c.call(req).await,
            Conn::Grpc(c) => c.call(req).await,
        }
    }
}
