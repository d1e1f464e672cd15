//! The real transport: a tonic server for inbound streams, and per peer a
//! bounded send queue drained by one long-lived client-streaming `Link`
//! call, so messages on a link arrive in the order they were sent.
//!
//! Links are opened lazily, on the first message to a peer. The driver's
//! `send` only encodes and queues (it never waits); the call's request
//! stream takes whatever is queued as one frame, cut so that no frame is
//! ever over [`MAX_FRAME_BYTES`]. A queue that outgrows its bounds (a peer
//! that is stalled, or far slower than us) resets the link: what it held is
//! dropped and the state machine hears the link went down, exactly as if the
//! peer had died, so memory stays bounded and protocols recover the way
//! they recover from a crash (they resend on link-up).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::link::Backoff;
use super::listener::{ConnInfo, Policy, guarded};
use super::pb::node_client::NodeClient;
use super::pb::node_server::{Node, NodeServer};
use super::{
    Inbound, LINK_QUEUE_BYTES, LINK_QUEUE_MESSAGES, LinkState, LinkTable, MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES, NetError, Transport, Wire, pb,
};
use crate::config::{Cluster, NodeId};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Most messages in one frame.
const MAX_BATCH: usize = 1024;
/// Per message in a frame: its length prefix and field tag.
const PER_MESSAGE_OVERHEAD: usize = 11;
/// HTTP/2 flow-control windows: large enough that bulk traffic rarely waits
/// for a window update.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONN_WINDOW: u32 = 4 * 1024 * 1024;

pub struct GrpcTransport<M: Wire> {
    cluster: Arc<Cluster>,
    me: NodeId,
    links: Vec<Option<Arc<LinkQueue>>>,
    inbox: mpsc::Sender<Inbound<M>>,
    table: Arc<LinkTable>,
    shutdown: watch::Receiver<bool>,
    buf: Vec<u8>,
}

/// One peer's send queue, shared by the driver (producer), the request
/// stream of the current call (consumer) and the link task (lifecycle).
struct LinkQueue {
    state: Mutex<QueueState>,
    /// Wakes the link task: there is something to send, or an overflow.
    task: Notify,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// Set by the producer when a bound was hit; the link task resets.
    overflowed: bool,
    /// A call is running and its request stream drains the queue.
    connected: bool,
    stream_waker: Option<Waker>,
}

impl QueueState {
    fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

impl<M: Wire> GrpcTransport<M> {
    /// Listens on `me`'s address and returns the transport, the stream of
    /// everything that arrives, and the link table. Stops when `shutdown`
    /// turns true (or its sender is dropped).
    pub async fn bind(
        cluster: Arc<Cluster>,
        me: NodeId,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, mpsc::Receiver<Inbound<M>>, Arc<LinkTable>), NetError> {
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
        let (tx, rx) = mpsc::channel(super::INBOX_CAPACITY);
        let table = Arc::new(LinkTable::new(cluster.len()));
        let service = LinkService::<M> {
            cluster: cluster.clone(),
            inbox: tx.clone(),
            table: table.clone(),
        };
        // Each peer needs one inbound connection (two while it reconnects);
        // the rest is room for tools and strangers, who are evicted first.
        let cap = 4 * cluster.len() + 16;
        let incoming = guarded(listener, cap, Policy::CLUSTER, shutdown.clone());
        let mut stop = shutdown.clone();
        // At shutdown the server future is dropped, not drained: that frees
        // the port at once (an in-process restart can bind it again) and
        // peers see their streams end, as they would if the process died.
        tokio::spawn(async move {
            let server = Server::builder()
                .initial_stream_window_size(Some(STREAM_WINDOW))
                .initial_connection_window_size(Some(CONN_WINDOW))
                .add_service(NodeServer::new(service).max_decoding_message_size(MAX_FRAME_BYTES))
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
            GrpcTransport {
                cluster,
                me,
                links: (0..n).map(|_| None).collect(),
                inbox: tx,
                table: table.clone(),
                shutdown,
                buf: Vec::with_capacity(256),
            },
            rx,
            table,
        ))
    }

    fn link(&mut self, to: NodeId) -> &Arc<LinkQueue> {
        self.links[to.index()].get_or_insert_with(|| {
            let queue = Arc::new(LinkQueue {
                state: Mutex::new(QueueState::default()),
                task: Notify::new(),
            });
            tokio::spawn(link_task::<M>(
                LinkCtx {
                    peer: to,
                    addr: self.cluster.addr(to),
                    hello: pb::Hello {
                        from: self.cluster.name(self.me).to_string(),
                        algorithm: M::ALGORITHM.to_string(),
                    },
                    inbox: self.inbox.clone(),
                    table: self.table.clone(),
                    shutdown: self.shutdown.clone(),
                },
                queue.clone(),
            ));
            queue
        })
    }
}

impl<M: Wire> Transport<M> for GrpcTransport<M> {
    fn send(&mut self, to: NodeId, msg: &M) -> Result<(), NetError> {
        self.buf.clear();
        msg.encode(&self.cluster, &mut self.buf);
        let size = self.buf.len();
        if size > MAX_MESSAGE_BYTES {
            return Err(NetError::TooLarge {
                to: self.cluster.name(to).to_string(),
                kind: msg.kind(),
                size,
                max: MAX_MESSAGE_BYTES,
            });
        }
        let bytes = Bytes::copy_from_slice(&self.buf);
        let queue = self.link(to).clone();
        let Ok(mut st) = queue.state.lock() else {
            return Ok(());
        };
        if st.overflowed {
            // The link is being reset; like everything queued, this is lost.
            return Ok(());
        }
        if st.items.len() >= LINK_QUEUE_MESSAGES || st.bytes + size > LINK_QUEUE_BYTES {
            let queued = st.items.len();
            st.overflowed = true;
            st.clear();
            drop(st);
            queue.task.notify_one();
            return Err(NetError::Overflow {
                to: self.cluster.name(to).to_string(),
                queued,
            });
        }
        st.items.push_back(bytes);
        st.bytes += size;
        if st.connected {
            let waker = st.stream_waker.take();
            drop(st);
            if let Some(w) = waker {
                w.wake();
            }
        } else {
            drop(st);
            queue.task.notify_one();
        }
        Ok(())
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

struct LinkCtx<M> {
    peer: NodeId,
    addr: std::net::SocketAddr,
    hello: pb::Hello,
    inbox: mpsc::Sender<Inbound<M>>,
    table: Arc<LinkTable>,
    shutdown: watch::Receiver<bool>,
}

impl<M> LinkCtx<M> {
    async fn mark(&self, up: bool) {
        let new = if up { LinkState::Up } else { LinkState::Down };
        if self.table.set(self.peer, new) != new {
            let _ = self
                .inbox
                .send(Inbound::Link {
                    peer: self.peer,
                    up,
                })
                .await;
        }
    }
}

/// The request stream of one call: each poll takes what is queued (under
/// the frame limit); the first frame carries the hello.
struct FrameStream {
    queue: Arc<LinkQueue>,
    hello: Option<pb::Hello>,
}

impl tokio_stream::Stream for FrameStream {
    type Item = pb::Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<pb::Frame>> {
        let this = self.get_mut();
        let Ok(mut st) = this.queue.state.lock() else {
            return Poll::Ready(None);
        };
        if st.items.is_empty() {
            if let Some(hello) = this.hello.take() {
                drop(st);
                return Poll::Ready(Some(pb::Frame {
                    hello: Some(hello),
                    messages: Vec::new(),
                }));
            }
            if !st
                .stream_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                st.stream_waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let budget = MAX_FRAME_BYTES
            - this.hello.as_ref().map_or(0, |h| h.encoded_len())
            - PER_MESSAGE_OVERHEAD;
        let mut messages = Vec::with_capacity(st.items.len().min(MAX_BATCH));
        let mut size = 0;
        while messages.len() < MAX_BATCH {
            let Some(next) = st.items.front() else { break };
            let cost = next.len() + PER_MESSAGE_OVERHEAD;
            // A single message always fits (it is at most MAX_MESSAGE_BYTES).
            if !messages.is_empty() && size + cost > budget {
                break;
            }
            size += cost;
            st.bytes -= next.len();
            if let Some(m) = st.items.pop_front() {
                messages.push(m);
            }
        }
        drop(st);
        Poll::Ready(Some(pb::Frame {
            hello: this.hello.take(),
            messages,
        }))
    }
}

async fn link_task<M: Send>(ctx: LinkCtx<M>, queue: Arc<LinkQueue>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = Backoff::default();
    loop {
        // Idle until there is something to say.
        loop {
            let work = queue
                .state
                .lock()
                .map(|mut st| {
                    if st.overflowed {
                        // Overflow while not connected: the link is down already.
                        st.overflowed = false;
                        st.clear();
                    }
                    !st.items.is_empty()
                })
                .unwrap_or(false);
            if work {
                break;
            }
            tokio::select! {
                _ = queue.task.notified() => {}
                _ = stopped(&mut shutdown) => return,
            }
        }
        if !backoff.may_try(Instant::now(), ctx.table.take_heard_from(ctx.peer)) {
            // Still backing off from a failed connect: the peer is down
            // (unless it has just dialed us, which proves it is back).
            if let Ok(mut st) = queue.state.lock() {
                st.clear();
            }
            continue;
        }
        let channel = match Endpoint::from_shared(format!("http://{}", ctx.addr)) {
            Ok(e) => {
                e.connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .initial_stream_window_size(Some(STREAM_WINDOW))
                    .initial_connection_window_size(Some(CONN_WINDOW))
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
                if let Ok(mut st) = queue.state.lock() {
                    st.clear();
                }
                ctx.mark(false).await;
                backoff.failed(Instant::now());
                continue;
            }
        };
        if let Ok(mut st) = queue.state.lock() {
            st.connected = true;
        }
        let stream = FrameStream {
            queue: queue.clone(),
            hello: Some(ctx.hello.clone()),
        };
        let mut client = NodeClient::new(channel).max_encoding_message_size(MAX_FRAME_BYTES);
        let mut call = tokio::spawn(async move { client.link(stream).await });
        ctx.mark(true).await;
        backoff.succeeded();
        let why = loop {
            tokio::select! {
                r = &mut call => {
                    break match r {
                        Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                            warn!(peer = %ctx.addr, reason = status.message(), "peer refused the link");
                            "refused"
                        }
                        _ => "call ended",
                    };
                }
                _ = queue.task.notified() => {
                    if queue.state.lock().map(|st| st.overflowed).unwrap_or(true) {
                        break "send queue overflowed";
                    }
                }
                _ = stopped(&mut shutdown) => {
                    call.abort();
                    return;
                }
            }
        };
        info!(peer = %ctx.addr, why, "link down");
        call.abort();
        if let Ok(mut st) = queue.state.lock() {
            st.connected = false;
            st.overflowed = false;
            st.stream_waker = None;
            st.clear();
        }
        ctx.mark(false).await;
        backoff.failed(Instant::now());
    }
}

struct LinkService<M> {
    cluster: Arc<Cluster>,
    inbox: mpsc::Sender<Inbound<M>>,
    table: Arc<LinkTable>,
}

#[tonic::async_trait]
impl<M: Wire> Node for LinkService<M> {
    async fn link(
        &self,
        request: Request<Streaming<pb::Frame>>,
    ) -> Result<Response<pb::LinkClosed>, Status> {
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let mut stream = request.into_inner();
        let mut first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty stream"))?;
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
        if let Some(c) = &conn {
            c.validate();
        }
        debug!(peer = %hello.from, "inbound link");
        self.table.heard_from(from);
        let mut frame = Some(first);
        while let Some(f) = frame.take() {
            for bytes in f.messages {
                match M::decode(&bytes, &self.cluster) {
                    Ok(msg) => {
                        if self.inbox.send(Inbound::Msg { from, msg }).await.is_err() {
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
