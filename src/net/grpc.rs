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

use super::auth::{self, Auth, Challenges, Refusal};
use super::cookie::{self, NONCE_BYTES, Side};
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
/// A peer that does not answer the challenge in this time is down.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(5);
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
    auth: Arc<Auth>,
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
    /// everything that arrives, and the link table. Links prove and check
    /// membership with `auth`. Stops when `shutdown` turns true (or its
    /// sender is dropped).
    pub async fn bind(
        cluster: Arc<Cluster>,
        me: NodeId,
        auth: Arc<Auth>,
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
            me,
            auth: auth.clone(),
            challenges: Challenges::default(),
            inbox: tx.clone(),
            table: table.clone(),
        };
        let mut builder = Server::builder();
        if let Some(tls) = &auth.tls {
            builder = builder
                .tls_config(tls.mutual_server())
                .map_err(|e| NetError::Tls(format!("{}: {e}", tls.dir.display())))?;
        }
        // Each peer needs one inbound connection (two while it reconnects);
        // the rest is room for tools and strangers, who are evicted first.
        let cap = 4 * cluster.len() + 16;
        let incoming = guarded(listener, cap, Policy::CLUSTER, shutdown.clone());
        let mut stop = shutdown.clone();
        // At shutdown the server future is dropped, not drained: that frees
        // the port at once (an in-process restart can bind it again) and
        // peers see their streams end, as they would if the process died.
        tokio::spawn(async move {
            let server = builder
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
                auth,
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
                    me: self.cluster.name(self.me).to_string(),
                    name: self.cluster.name(to).to_string(),
                    auth: self.auth.clone(),
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
    /// Our name, and the peer's.
    me: String,
    name: String,
    auth: Arc<Auth>,
    inbox: mpsc::Sender<Inbound<M>>,
    table: Arc<LinkTable>,
    shutdown: watch::Receiver<bool>,
}

/// How a link's opening went wrong.
enum Opening {
    /// The peer is not there (or not answering): the link is down.
    Down(String),
    /// The peer is there and one side refused the other: said, and down.
    Refused(Refusal, String),
}

impl<M: Wire> LinkCtx<M> {
    fn endpoint(&self) -> Result<Endpoint, String> {
        let tls = self.auth.tls.as_ref().map(|t| t.mutual_client(&self.name));
        Ok(super::tls::endpoint(&self.addr.to_string(), tls)
            .map_err(|e| e.to_string())?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(CONN_WINDOW)))
    }

    fn hello(&self, listener_nonce: Bytes, proof: Bytes) -> pb::Hello {
        pb::Hello {
            from: self.me.clone(),
            algorithm: M::ALGORITHM.to_string(),
            listener_nonce,
            proof,
            incarnation: self.auth.incarnation,
        }
    }

    /// The challenge–response on a fresh connection: checks the listener's
    /// proof and returns our hello (with our proof). Without a cookie
    /// (`--no-cookie`) the hello carries none.
    async fn challenge(
        &self,
        client: &mut NodeClient<tonic::transport::Channel>,
    ) -> Result<pb::Hello, Opening> {
        let Some(cookie) = &self.auth.cookie else {
            return Ok(self.hello(Bytes::new(), Bytes::new()));
        };
        let dialer_nonce = cookie::nonce();
        let asked = client.challenge(pb::ChallengeRequest {
            from: self.me.clone(),
            to: self.name.clone(),
            algorithm: M::ALGORITHM.to_string(),
            dialer_nonce: Bytes::copy_from_slice(&dialer_nonce),
        });
        let reply = match tokio::time::timeout(CHALLENGE_TIMEOUT, asked).await {
            Err(_) => return Err(Opening::Down("no answer to the challenge".into())),
            Ok(Err(status)) => return Err(self.refusal(&status)),
            Ok(Ok(r)) => r.into_inner(),
        };
        let ours = cookie.prove(
            Side::Dialer,
            &self.me,
            &self.name,
            &dialer_nonce,
            &reply.listener_nonce,
        );
        let hello = self.hello(reply.listener_nonce.clone(), Bytes::copy_from_slice(&ours));
        let theirs_ok = reply.listener_nonce.len() == NONCE_BYTES
            && cookie.check(
                &reply.proof,
                Side::Listener,
                &self.me,
                &self.name,
                &dialer_nonce,
                &reply.listener_nonce,
            );
        if !theirs_ok {
            // Our hello alone, so the peer can say it too; nothing else
            // goes to a node that may not be a member.
            let once = tokio_stream::iter([pb::Frame {
                hello: Some(hello),
                messages: Vec::new(),
            }]);
            let _ = tokio::time::timeout(CHALLENGE_TIMEOUT, client.link(once)).await;
            return Err(Opening::Refused(
                Refusal::Cookie,
                auth::different_cookie(format!("{} at {}", self.name, self.addr)),
            ));
        }
        Ok(hello)
    }

    /// A listener's refusal (a status) as an opening that went wrong.
    fn refusal(&self, status: &Status) -> Opening {
        match Refusal::of_status(status) {
            Some(Refusal::Cookie) => Opening::Refused(
                Refusal::Cookie,
                auth::different_cookie(format!("{} at {}", self.name, self.addr)),
            ),
            Some(Refusal::NoChallenge) => Opening::Refused(
                Refusal::NoChallenge,
                format!(
                    "{} at {} does not answer the cookie challenge (an older dsys, or --no-cookie): not linked",
                    self.name, self.addr
                ),
            ),
            Some(r) => Opening::Refused(
                r,
                format!(
                    "{} at {} refused the link: {}",
                    self.name,
                    self.addr,
                    status.message()
                ),
            ),
            None => Opening::Down(status.to_string()),
        }
    }

    /// Says why the link was refused (once a minute), counts it and marks
    /// it refused.
    async fn refused(&self, why: Refusal, line: String) {
        self.table.count_refused_out();
        if let Some(l) = self.table.say.line(&format!("out {}", self.name), line) {
            warn!("{l}");
        }
        let old = self.table.set(self.peer, LinkState::Refused(why));
        if old == LinkState::Up {
            let _ = self
                .inbox
                .send(Inbound::Link {
                    peer: self.peer,
                    up: false,
                })
                .await;
        }
    }

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

async fn link_task<M: Wire>(ctx: LinkCtx<M>, queue: Arc<LinkQueue>) {
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
        let endpoint = match ctx.endpoint() {
            Ok(e) => e,
            Err(e) => {
                warn!(peer = %ctx.addr, error = %e, "bad peer address");
                return;
            }
        };
        let opened = match endpoint.connect().await {
            Ok(channel) => {
                let mut client =
                    NodeClient::new(channel).max_encoding_message_size(MAX_FRAME_BYTES);
                ctx.challenge(&mut client)
                    .await
                    .map(|hello| (client, hello))
            }
            Err(e) => Err(match super::tls::tls_failure(&e) {
                Some(why) => Opening::Refused(
                    Refusal::Tls,
                    format!("{} at {}: TLS refused: {why}", ctx.name, ctx.addr),
                ),
                None => Opening::Down(e.to_string()),
            }),
        };
        let (mut client, hello) = match opened {
            Ok(c) => c,
            Err(why) => {
                if let Ok(mut st) = queue.state.lock() {
                    st.clear();
                }
                match why {
                    Opening::Down(e) => {
                        debug!(peer = %ctx.addr, error = %e, "connect failed");
                        ctx.mark(false).await;
                    }
                    Opening::Refused(r, line) => ctx.refused(r, line).await,
                }
                backoff.failed(Instant::now());
                continue;
            }
        };
        if let Ok(mut st) = queue.state.lock() {
            st.connected = true;
        }
        let stream = FrameStream {
            queue: queue.clone(),
            hello: Some(hello),
        };
        let mut call = tokio::spawn(async move { client.link(stream).await });
        ctx.mark(true).await;
        backoff.succeeded();
        let mut refused = None;
        let why = loop {
            tokio::select! {
                r = &mut call => {
                    break match r {
                        Ok(Err(status)) => match ctx.refusal(&status) {
                            Opening::Refused(r, line) => {
                                refused = Some((r, line));
                                "refused"
                            }
                            Opening::Down(_) => "call ended",
                        },
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
        match refused {
            Some((r, line)) => ctx.refused(r, line).await,
            None => ctx.mark(false).await,
        }
        backoff.failed(Instant::now());
    }
}

struct LinkService<M> {
    cluster: Arc<Cluster>,
    me: NodeId,
    auth: Arc<Auth>,
    challenges: Challenges,
    inbox: mpsc::Sender<Inbound<M>>,
    table: Arc<LinkTable>,
}

/// What a handler knows of the connection a request came on: our
/// listener's info, and the peer's certificates under TLS.
struct Caller {
    conn: Option<ConnInfo>,
    certs: Option<Arc<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>>>,
}

impl Caller {
    fn of<T>(request: &Request<T>) -> Caller {
        use tonic::transport::server::TlsConnectInfo;
        let ext = request.extensions();
        Caller {
            conn: ConnInfo::of(ext),
            certs: ext
                .get::<TlsConnectInfo<ConnInfo>>()
                .and_then(|t| t.peer_certs()),
        }
    }

    /// The connection's id (0 when the listener gave none: in-process tests).
    fn conn_id(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.id)
    }

    fn remote_ip(&self) -> Option<std::net::IpAddr> {
        self.conn.as_ref().and_then(|c| c.remote).map(|a| a.ip())
    }

    fn remote(&self) -> String {
        self.conn
            .as_ref()
            .and_then(|c| c.remote)
            .map_or_else(|| "an unknown address".to_string(), |a| a.to_string())
    }
}

impl<M: Wire> LinkService<M> {
    fn my_name(&self) -> &str {
        self.cluster.name(self.me)
    }

    /// Refuses a link dialed to us: says why (once a minute per claimed
    /// name), counts it, and gives the status the dialer reads.
    fn refuse(&self, why: Refusal, claimed: &str, line: String, reply: String) -> Status {
        self.table.count_refused_in();
        // A member we have no link with shows why in `status` (one we are
        // linked with stays up: a stranger's claim does not take it down).
        if let Some(id) = self.cluster.id(claimed)
            && self.table.get(id) != LinkState::Up
        {
            self.table.set(id, LinkState::Refused(why));
        }
        let key = format!("in {why:?} {claimed}");
        if let Some(l) = self.table.say.line(&key, line) {
            warn!("{l}");
        }
        why.status(reply)
    }

    /// The checks the challenge and the hello share: the algorithm, the
    /// name (in the config, named by the certificate, dialing from its host).
    fn check_claims(&self, from: &str, algorithm: &str, caller: &Caller) -> Result<NodeId, Status> {
        let remote = caller.remote();
        if algorithm != M::ALGORITHM {
            return Err(self.refuse(
                Refusal::Config,
                from,
                format!(
                    "{from:?} at {remote} runs {algorithm}, not {}: refused",
                    M::ALGORITHM
                ),
                format!("this node runs {}, not {algorithm}", M::ALGORITHM),
            ));
        }
        let Some(id) = self.cluster.id(from) else {
            let what = format!(
                "{from:?} is not in this node's config ({})",
                self.cluster.source().display()
            );
            return Err(self.refuse(
                Refusal::Config,
                "?",
                format!("a link from {remote} claims to be {what}: refused"),
                what,
            ));
        };
        if self.auth.tls.is_some() {
            let named = caller
                .certs
                .as_ref()
                .and_then(|c| c.first())
                .is_some_and(|c| super::tls::names(c, from));
            if !named {
                return Err(self.refuse(
                    Refusal::Tls,
                    from,
                    format!(
                        "a link from {remote} claims to be {from}, but its certificate does not name {from}: refused"
                    ),
                    format!("your certificate does not name {from}"),
                ));
            }
        }
        if let Err(e) = auth::host_fits(&self.cluster, id, caller.remote_ip()) {
            return Err(self.refuse(Refusal::Address, from, format!("{e}: refused"), e));
        }
        Ok(id)
    }
}

#[tonic::async_trait]
impl<M: Wire> Node for LinkService<M> {
    async fn challenge(
        &self,
        request: Request<pb::ChallengeRequest>,
    ) -> Result<Response<pb::ChallengeReply>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        let from = self.check_claims(&r.from, &r.algorithm, &caller)?;
        if r.to != self.my_name() {
            return Err(self.refuse(
                Refusal::Config,
                &r.from,
                format!(
                    "{} dialed {} expecting {:?}: its config differs from this one ({})",
                    r.from,
                    self.cluster.addr(self.me),
                    r.to,
                    self.cluster.source().display()
                ),
                format!(
                    "this is {} ({}), not {:?}: the configs differ",
                    self.my_name(),
                    self.cluster.addr(self.me),
                    r.to
                ),
            ));
        }
        let Some(cookie) = &self.auth.cookie else {
            return Err(Status::unimplemented("this node runs with --no-cookie"));
        };
        if r.dialer_nonce.len() != NONCE_BYTES {
            return Err(Status::invalid_argument(format!(
                "a nonce is {NONCE_BYTES} bytes"
            )));
        }
        let listener_nonce = cookie::nonce();
        let proof = cookie.prove(
            Side::Listener,
            &r.from,
            self.my_name(),
            &r.dialer_nonce,
            &listener_nonce,
        );
        self.challenges.issue(
            listener_nonce,
            caller.conn_id(),
            from,
            r.dialer_nonce.to_vec(),
        );
        Ok(Response::new(pb::ChallengeReply {
            listener_nonce: Bytes::copy_from_slice(&listener_nonce),
            proof: Bytes::copy_from_slice(&proof),
        }))
    }

    async fn link(
        &self,
        request: Request<Streaming<pb::Frame>>,
    ) -> Result<Response<pb::LinkClosed>, Status> {
        let caller = Caller::of(&request);
        let mut stream = request.into_inner();
        let mut first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty stream"))?;
        let hello = first
            .hello
            .take()
            .ok_or_else(|| Status::invalid_argument("the first frame must carry a hello"))?;
        let from = self.check_claims(&hello.from, &hello.algorithm, &caller)?;
        if let Some(cookie) = &self.auth.cookie {
            let proven = self
                .challenges
                .take(&hello.listener_nonce, caller.conn_id(), from)
                .is_some_and(|dialer_nonce| {
                    cookie.check(
                        &hello.proof,
                        Side::Dialer,
                        &hello.from,
                        self.my_name(),
                        &dialer_nonce,
                        &hello.listener_nonce,
                    )
                });
            if !proven {
                let line = auth::different_cookie(format!(
                    "{} (dialing from {})",
                    hello.from,
                    caller.remote()
                ));
                return Err(self.refuse(
                    Refusal::Cookie,
                    &hello.from,
                    line,
                    auth::different_cookie(self.my_name()),
                ));
            }
        }
        if let Some(e) = auth::clock_ahead(&hello.from, hello.incarnation, self.my_name()) {
            return Err(self.refuse(Refusal::Clock, &hello.from, format!("{e}: refused"), e));
        }
        if let Some(c) = &caller.conn {
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
