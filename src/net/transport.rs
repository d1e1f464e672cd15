//! Links between nodes: a tonic server for inbound streams and one client
//! task per peer for outbound ones.
//!
//! Each direction of each link is one long-lived client-streaming `Link`
//! call, so messages on a link arrive in the order they were sent. Links are
//! opened lazily, on the first message to a peer. When a peer cannot be
//! reached, the messages queued for it are dropped and the state machine is
//! told the link is down (`Inbound::Link`); the next message after the
//! backoff tries again, and a success is reported as the link coming up.
//! Reliability beyond that (acks, resends) is each algorithm's business, and
//! is visible to the simulator, which models exactly this behaviour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::codec::Wire;
use super::pb;
use super::pb::node_client::NodeClient;
use super::pb::node_server::{Node, NodeServer};
use crate::config::Cluster;
use crate::node::NodeId;

/// Largest message (one frame of envelopes) a node sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most envelopes batched into one frame.
const MAX_BATCH: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot listen on {addr} (node {name} in {file}): {source}{hint}")]
    Bind {
        addr: SocketAddr,
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
}

/// What the transport hands the driver.
#[derive(Debug)]
pub enum Inbound<M> {
    Msg { from: NodeId, msg: M },
    Link { peer: NodeId, up: bool },
}

/// A link's state as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Never used: nothing was sent to this peer yet.
    Unused,
    Up,
    Down,
}

/// Outbound link states, shared with whoever shows `status`, and a "this
/// peer just dialed us" flag per peer that cuts a reconnect backoff short.
#[derive(Debug)]
pub struct LinkTable {
    state: Vec<AtomicU8>,
    heard_from: Vec<AtomicBool>,
}

impl LinkTable {
    fn new(n: usize) -> Self {
        LinkTable {
            state: (0..n).map(|_| AtomicU8::new(0)).collect(),
            heard_from: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn set(&self, peer: NodeId, s: LinkState) -> LinkState {
        let v = match s {
            LinkState::Unused => 0,
            LinkState::Up => 1,
            LinkState::Down => 2,
        };
        decode_state(self.state[peer.index()].swap(v, Ordering::Relaxed))
    }

    pub fn get(&self, peer: NodeId) -> LinkState {
        decode_state(self.state[peer.index()].load(Ordering::Relaxed))
    }

    fn heard_from(&self, peer: NodeId) {
        self.heard_from[peer.index()].store(true, Ordering::Relaxed);
    }

    fn take_heard_from(&self, peer: NodeId) -> bool {
        self.heard_from[peer.index()].swap(false, Ordering::Relaxed)
    }
}

fn decode_state(v: u8) -> LinkState {
    match v {
        1 => LinkState::Up,
        2 => LinkState::Down,
        _ => LinkState::Unused,
    }
}

pub struct Transport<M: Wire> {
    cluster: Arc<Cluster>,
    me: NodeId,
    links: Vec<Option<mpsc::UnboundedSender<pb::Envelope>>>,
    events: mpsc::UnboundedSender<Inbound<M>>,
    table: Arc<LinkTable>,
    shutdown: watch::Receiver<bool>,
}

impl<M: Wire> Transport<M> {
    /// Listens on `me`'s address and returns the transport plus the stream
    /// of everything that arrives. Stops when `shutdown` turns true.
    pub async fn bind(
        cluster: Arc<Cluster>,
        me: NodeId,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Inbound<M>>), NetError> {
        let addr = cluster.addr(me);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NetError::Bind {
                addr,
                name: cluster.name(me).to_string(),
                file: cluster.source().display().to_string(),
                hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                    " (is another node already running under this name?)"
                } else {
                    ""
                },
                source,
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let table = Arc::new(LinkTable::new(cluster.len()));
        let service = LinkService::<M> {
            cluster: cluster.clone(),
            inbox: tx.clone(),
            table: table.clone(),
        };
        let incoming = TcpListenerStream::new(listener).map(|s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        });
        let mut stop = shutdown.clone();
        // At shutdown the server future is dropped, not drained: that frees
        // the port at once (an in-process restart can bind it again) and
        // peers see their streams end, as they would if the process died.
        tokio::spawn(async move {
            let server = Server::builder()
                .add_service(NodeServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES))
                .serve_with_incoming(incoming);
            tokio::select! {
                r = server => if let Err(e) = r {
                    warn!(error = %e, "server stopped");
                },
                _ = stopped(&mut stop) => {}
            }
        });
        let n = cluster.len();
        Ok((
            Transport {
                cluster,
                me,
                links: (0..n).map(|_| None).collect(),
                events: tx,
                table,
                shutdown,
            },
            rx,
        ))
    }

    pub fn links(&self) -> Arc<LinkTable> {
        self.table.clone()
    }

    /// Queues `msg` for `to`. A message over the size limit is refused here,
    /// with an error naming it, rather than breaking the link.
    pub fn send(&mut self, to: NodeId, msg: &M, kind: &'static str) -> Result<(), NetError> {
        let envelope = msg.encode(&self.cluster);
        let size = envelope.encoded_len();
        if size > MAX_MESSAGE_BYTES - 64 {
            return Err(NetError::TooLarge {
                to: self.cluster.name(to).to_string(),
                kind,
                size,
                max: MAX_MESSAGE_BYTES,
            });
        }
        let link = self.links[to.index()].get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(link_task::<M>(
                LinkCtx {
                    peer: to,
                    addr: self.cluster.addr(to),
                    hello: pb::Hello {
                        from: self.cluster.name(self.me).to_string(),
                        algorithm: M::ALGORITHM.to_string(),
                    },
                    events: self.events.clone(),
                    table: self.table.clone(),
                    shutdown: self.shutdown.clone(),
                },
                rx,
            ));
            tx
        });
        // The link task only goes away at shutdown; then dropping is right.
        let _ = link.send(envelope);
        Ok(())
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

struct LinkCtx<M> {
    peer: NodeId,
    addr: SocketAddr,
    hello: pb::Hello,
    events: mpsc::UnboundedSender<Inbound<M>>,
    table: Arc<LinkTable>,
    shutdown: watch::Receiver<bool>,
}

impl<M> LinkCtx<M> {
    fn mark(&self, up: bool) {
        let new = if up { LinkState::Up } else { LinkState::Down };
        if self.table.set(self.peer, new) != new {
            let _ = self.events.send(Inbound::Link {
                peer: self.peer,
                up,
            });
        }
    }
}

async fn link_task<M: Send>(ctx: LinkCtx<M>, mut queue: mpsc::UnboundedReceiver<pb::Envelope>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = Instant::now();
    loop {
        // Idle until there is something to say.
        let first = tokio::select! {
            m = queue.recv() => match m { Some(m) => m, None => return },
            _ = stopped(&mut shutdown) => return,
        };
        if Instant::now() < retry_at && !ctx.table.take_heard_from(ctx.peer) {
            // Still backing off from a failed connect: the peer is down
            // (unless it has just dialed us, which proves it is back).
            continue;
        }
        let channel = match Endpoint::from_shared(format!("http://{}", ctx.addr)) {
            Ok(e) => {
                e.connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .connect()
                    .await
            }
            Err(e) => {
                warn!(peer = %ctx.addr, error = %e, "bad peer address");
                return;
            }
        };
        let channel = match channel {
            Ok(c) => c,
            Err(e) => {
                debug!(peer = %ctx.addr, error = %e, "connect failed");
                ctx.mark(false);
                while queue.try_recv().is_ok() {}
                retry_at = Instant::now() + backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (tx, rx) = mpsc::channel::<pb::Frame>(64);
        let mut client = NodeClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut call = tokio::spawn(async move { client.link(ReceiverStream::new(rx)).await });
        let hello = pb::Frame {
            hello: Some(ctx.hello.clone()),
            envelopes: vec![first],
        };
        if tx.send(hello).await.is_err() {
            ctx.mark(false);
            continue;
        }
        ctx.mark(true);
        backoff = BACKOFF_MIN;
        let closed = loop {
            tokio::select! {
                m = queue.recv() => {
                    let Some(m) = m else { return };
                    let mut envelopes = vec![m];
                    let mut bytes = envelopes[0].encoded_len();
                    while envelopes.len() < MAX_BATCH && bytes < MAX_MESSAGE_BYTES / 2 {
                        match queue.try_recv() {
                            Ok(m) => {
                                bytes += m.encoded_len();
                                envelopes.push(m);
                            }
                            Err(_) => break,
                        }
                    }
                    if tx.send(pb::Frame { hello: None, envelopes }).await.is_err() {
                        break "stream closed";
                    }
                }
                r = &mut call => {
                    break match r {
                        Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                            warn!(peer = %ctx.addr, reason = status.message(), "peer refused the link");
                            "refused"
                        }
                        _ => "call ended",
                    };
                }
                _ = stopped(&mut shutdown) => return,
            }
        };
        info!(peer = %ctx.addr, why = closed, "link down");
        ctx.mark(false);
        call.abort();
        retry_at = Instant::now() + backoff;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

struct LinkService<M> {
    cluster: Arc<Cluster>,
    inbox: mpsc::UnboundedSender<Inbound<M>>,
    table: Arc<LinkTable>,
}

#[tonic::async_trait]
impl<M: Wire> Node for LinkService<M> {
    async fn link(
        &self,
        request: Request<Streaming<pb::Frame>>,
    ) -> Result<Response<pb::LinkClosed>, Status> {
        let remote = request.remote_addr();
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty stream"))?;
        let mut first = first;
        let hello = first
            .hello
            .take()
            .ok_or_else(|| Status::invalid_argument("the first frame must carry a hello"))?;
        if hello.algorithm != M::ALGORITHM {
            return Err(Status::invalid_argument(format!(
                "this node runs {}, not {}",
                M::ALGORITHM,
                hello.algorithm
            )));
        }
        let from = self.cluster.id(&hello.from).ok_or_else(|| {
            Status::invalid_argument(format!(
                "{:?} is not in this node's config ({})",
                hello.from,
                self.cluster.source().display()
            ))
        })?;
        debug!(peer = %hello.from, ?remote, "inbound link");
        self.table.heard_from(from);
        let mut frame = Some(first);
        while let Some(f) = frame.take() {
            for envelope in f.envelopes {
                match M::decode(envelope, &self.cluster) {
                    Ok(msg) => {
                        if self.inbox.send(Inbound::Msg { from, msg }).is_err() {
                            return Ok(Response::new(pb::LinkClosed {}));
                        }
                    }
                    Err(e) => warn!(peer = %hello.from, error = %e, "dropped a bad message"),
                }
            }
            frame = match stream.message().await {
                Ok(f) => f,
                Err(status) => {
                    debug!(peer = %hello.from, %status, "inbound link ended");
                    None
                }
            };
        }
        Ok(Response::new(pb::LinkClosed {}))
    }
}
