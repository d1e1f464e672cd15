//! Connections from a peer: to the tracker and to other peers.

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::net::cause;

use super::pb;
use super::pb::peer_client::PeerClient;
use super::pb::tracker_client::TrackerClient;
use super::serve::{CONN_WINDOW, STREAM_WINDOW};
use super::tracker::{MAX_ANNOUNCE, MAX_MESSAGE};

/// How long a call to the tracker, or a peer's load, may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How this process checks the tracker, when it speaks TLS (`--tls-ca`):
/// set once at start-up, before any call to the tracker.
static TRACKER_TLS: std::sync::OnceLock<tonic::transport::ClientTlsConfig> =
    std::sync::OnceLock::new();

/// Calls to the tracker go over TLS from now on, trusting `ca` for a
/// certificate naming `name`.
pub fn use_tracker_tls(ca: &crate::net::tls::TrustCa, name: &str) {
    let _ = TRACKER_TLS.set(ca.grpc(name));
}

async fn channel(
    addr: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<Channel, String> {
    let ep = crate::net::tls::endpoint(addr, tls.cloned())
        .map_err(|e| format!("{addr:?} is not an address: {}", cause(&e)))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW);
    ep.connect().await.map_err(|e| {
        crate::net::tls::tls_failure(&e)
            .map(|t| format!("TLS refused: {t}"))
            .unwrap_or_else(|| cause(&e))
    })
}

/// A gRPC status as a sentence: its message, or what went wrong below it.
pub fn status_text(s: &tonic::Status) -> String {
    use std::error::Error;
    if s.message().is_empty()
        || s.code() == tonic::Code::Unavailable
        || s.code() == tonic::Code::Unknown
    {
        if let Some(src) = s.source() {
            return cause(src);
        }
    }
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}

pub async fn tracker(addr: &str) -> Result<TrackerClient<Channel>, String> {
    let ch = tokio::time::timeout(CALL_TIMEOUT, channel(addr, TRACKER_TLS.get()))
        .await
        .map_err(|_| "no answer".to_string())??;
    Ok(TrackerClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_ANNOUNCE))
}

pub type PeerConn = PeerClient<Channel>;

pub async fn peer(addr: &str) -> Result<PeerConn, String> {
    peer_taking(addr, MAX_MESSAGE).await
}

/// A connection to a peer whose messages are at most `limit` bytes.
async fn peer_taking(addr: &str, limit: usize) -> Result<PeerConn, String> {
    let ch = tokio::time::timeout(CALL_TIMEOUT, channel(addr, None))
        .await
        .map_err(|_| "no answer".to_string())??;
    Ok(PeerClient::new(ch)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit))
}

/// The largest answer the tracker takes to its call back (a name and a
/// proof fit in far less); a larger one fails the check.
const MAX_PROVE_REPLY: usize = 4096;

/// A connection for the tracker's call back to a peer: it takes only a
/// small answer.
pub async fn prover(addr: &str) -> Result<PeerConn, String> {
    peer_taking(addr, MAX_PROVE_REPLY).await
}

/// Asks the tracker who has `name` (and how many holders it left out).
pub async fn find(tracker_addr: &str, name: &str) -> Result<(Vec<pb::Holder>, u32), String> {
    let mut t = tracker(tracker_addr).await?;
    let r = tokio::time::timeout(
        CALL_TIMEOUT,
        t.find(pb::FindRequest {
            name: name.to_string(),
        }),
    )
    .await
    .map_err(|_| "no answer".to_string())?
    .map_err(|s| status_text(&s))?
    .into_inner();
    Ok((r.holders, r.left_out))
}

pub async fn peers(tracker_addr: &str) -> Result<pb::PeersReply, String> {
    let mut t = tracker(tracker_addr).await?;
    let r = tokio::time::timeout(CALL_TIMEOUT, t.peers(pb::PeersRequest {}))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|s| status_text(&s))?;
    Ok(r.into_inner())
}

/// A peer's load and the round trip of asking it (over a connection
/// already open, so it is the network's time, not the connect's).
pub async fn load(client: &mut PeerConn) -> Result<(u32, String, Duration), String> {
    let started = Instant::now();
    let r = tokio::time::timeout(CALL_TIMEOUT, client.load(pb::LoadRequest {}))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|s| status_text(&s))?
        .into_inner();
    Ok((r.load, r.name, started.elapsed()))
}
