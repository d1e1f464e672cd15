//! Accepting inbound connections without letting strangers hurt the node.
//!
//! * An accept error (out of file descriptors: EMFILE/ENFILE) backs off
//!   (10 ms doubling to 1 s) instead of retrying in a hot loop.
//! * At most `cap` inbound connections are open at once. A connection is
//!   *validated* once the server says so ([`ConnInfo::validate`]: a
//!   cluster member's hello, a chat login); when the cap is reached, the
//!   unvalidated connection silent the longest is closed to make room (and
//!   a newcomer is turned away if every connection is validated).
//! * What else closes a connection is the server's [`Policy`], chosen where
//!   the server is built: cluster links close a connection that is not
//!   validated within [`HELLO_TIMEOUT`] ([`Policy::CLUSTER`]); servers close
//!   one that has sent nothing for an idle timeout ([`Policy::server`]),
//!   never a working one. (gRPC servers ping their clients, so a live
//!   client always has something to answer.)

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::warn;

/// How long a cluster connection may stay open without a valid hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What closes a connection besides the connection cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Closed if not validated within this long of being accepted.
    pub validate_within: Option<Duration>,
    /// Closed once it has sent nothing for this long.
    pub idle: Option<Duration>,
    /// Written (if the socket takes it at once) to a connection turned
    /// away because every one open is validated: the server's "full".
    pub turn_away: Option<&'static [u8]>,
}

impl Policy {
    /// Cluster links: a member says hello within [`HELLO_TIMEOUT`].
    pub const CLUSTER: Policy = Policy {
        validate_within: Some(HELLO_TIMEOUT),
        idle: None,
        turn_away: None,
    };

    /// Servers: a connection silent for `idle` is closed; a working one,
    /// however long it lives, never is.
    pub const fn server(idle: Duration) -> Policy {
        Policy {
            validate_within: None,
            idle: Some(idle),
            turn_away: None,
        }
    }
}

/// Milliseconds since the first connection of this process: the clock the
/// connections' last-heard stamps share.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Shared between a connection and the acceptor that may close it.
#[derive(Debug, Default)]
pub struct ConnCtl {
    validated: AtomicBool,
    killed: AtomicBool,
    closed: AtomicBool,
    /// When it last sent a byte ([`now_ms`]).
    heard_ms: AtomicU64,
    /// When it was killed ([`now_ms`]): writes still go out for
    /// [`KILL_GRACE`] after, so the server can say why.
    killed_ms: AtomicU64,
    waker: AtomicWaker,
    write_waker: AtomicWaker,
}

/// How long a killed connection may still write (its last words).
pub const KILL_GRACE: Duration = Duration::from_secs(1);

impl ConnCtl {
    fn kill(&self) {
        // The stamp first: a writer that sees `killed` sees its time.
        if !self.killed.load(Ordering::Acquire) {
            self.killed_ms.store(now_ms(), Ordering::Relaxed);
            self.killed.store(true, Ordering::Release);
        }
        self.waker.wake();
        self.write_waker.wake();
    }

    /// Killed, and past its grace: writes fail.
    fn mute(&self) -> bool {
        self.killed.load(Ordering::Acquire)
            && now_ms().saturating_sub(self.killed_ms.load(Ordering::Relaxed))
                > KILL_GRACE.as_millis() as u64
    }

    fn silent_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.heard_ms.load(Ordering::Relaxed))
    }
}

/// What a request handler can see of its connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: Option<std::net::SocketAddr>,
    /// Unique in this process: requests that carry the same id came on the
    /// same connection.
    pub id: u64,
    ctl: Arc<ConnCtl>,
}

impl ConnInfo {
    /// The connection a request came on, with TLS or without.
    pub fn of(ext: &tonic::Extensions) -> Option<ConnInfo> {
        use tonic::transport::server::TlsConnectInfo;
        ext.get::<TlsConnectInfo<ConnInfo>>()
            .map(|t| t.get_ref().clone())
            .or_else(|| ext.get::<ConnInfo>().cloned())
    }

    /// The server trusts this connection (a member's hello, a login): it
    /// is not closed to make room, nor for not being validated in time.
    pub fn validate(&self) {
        self.ctl.validated.store(true, Ordering::Relaxed);
    }

    /// The server no longer trusts it (a logout): it may be closed to
    /// make room again.
    pub fn invalidate(&self) {
        self.ctl.validated.store(false, Ordering::Relaxed);
    }

    /// Closes the connection: the server's next read sees its end, and
    /// its writes fail after [`KILL_GRACE`].
    pub fn close(&self) {
        self.ctl.kill();
    }

    /// Was it closed by [`ConnInfo::close`] or to make room?
    pub fn closed_by_server(&self) -> bool {
        self.ctl.killed.load(Ordering::Relaxed)
    }
}

/// An accepted connection that the acceptor can close.
pub struct Conn {
    inner: TcpStream,
    info: ConnInfo,
}

impl Conn {
    /// What the client sent first, without taking it off the stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.info.ctl.closed.store(true, Ordering::Relaxed);
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let ctl = &self.info.ctl;
        ctl.waker.register(cx.waker());
        if ctl.killed.load(Ordering::Relaxed) {
            // End of stream: the server closes the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.info.ctl.heard_ms.store(now_ms(), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.info.ctl.write_waker.register(cx.waker());
        if self.info.ctl.mute() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.info.ctl.write_waker.register(cx.waker());
        if self.info.ctl.mute() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The stream of accepted connections tonic serves.
pub type Guarded = ReceiverStream<io::Result<Conn>>;

/// Starts accepting on `listener`; at most `cap` connections at once, each
/// closed as `policy` says.
pub fn guarded(
    listener: TcpListener,
    cap: usize,
    policy: Policy,
    shutdown: watch::Receiver<bool>,
) -> Guarded {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(listener, cap, policy, tx, shutdown));
    ReceiverStream::new(rx)
}

impl Conn {
    /// The connection as it was accepted, for servers that split it.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

async fn accept_loop(
    listener: TcpListener,
    cap: usize,
    policy: Policy,
    tx: mpsc::Sender<io::Result<Conn>>,
    mut shutdown: watch::Receiver<bool>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut open: Vec<(Instant, Arc<ConnCtl>)> = Vec::new();
    let mut backoff = Duration::from_millis(10);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut turned_away = 0u64;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = sweep.tick() => {
                let now = Instant::now();
                let ms = now_ms();
                for (at, c) in &open {
                    let late = policy.validate_within.is_some_and(|t| {
                        !c.validated.load(Ordering::Relaxed) && now.duration_since(*at) > t
                    });
                    let idle = policy
                        .idle
                        .is_some_and(|t| c.silent_ms(ms) > t.as_millis() as u64);
                    if late || idle {
                        c.kill();
                    }
                    if c.killed.load(Ordering::Relaxed) {
                        // A write stuck on a client that does not read
                        // fails once the grace is over.
                        c.write_waker.wake();
                    }
                }
                open.retain(|(_, c)| !c.closed.load(Ordering::Relaxed));
                continue;
            }
            _ = super::grpc::stopped(&mut shutdown) => return,
        };
        let (stream, remote) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                // Out of descriptors (or another transient error): do not
                // spin; connections wait in the backlog meanwhile.
                warn!(error = %e, wait_ms = backoff.as_millis() as u64, "cannot accept a connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        open.retain(|(_, c)| !c.closed.load(Ordering::Relaxed));
        if open.len() >= cap {
            // The one heard from longest ago (the first such, so the
            // oldest of several from the same millisecond).
            match open
                .iter()
                .filter(|(_, c)| {
                    !c.validated.load(Ordering::Relaxed) && !c.killed.load(Ordering::Relaxed)
                })
                .min_by_key(|(_, c)| c.heard_ms.load(Ordering::Relaxed))
            {
                Some((_, c)) => c.kill(),
                None => {
                    turned_away += 1;
                    if turned_away.is_power_of_two() {
                        warn!(cap, turned_away, %remote, "too many connections: turned one away");
                    }
                    if let Some(bytes) = policy.turn_away {
                        let _ = stream.try_write(bytes);
                    }
                    drop(stream);
                    continue;
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let ctl = Arc::new(ConnCtl {
            heard_ms: AtomicU64::new(now_ms()),
            ..ConnCtl::default()
        });
        open.push((Instant::now(), ctl.clone()));
        let conn = Conn {
            inner: stream,
            info: ConnInfo {
                remote: Some(remote),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                ctl,
            },
        };
        if tx.send(Ok(conn)).await.is_err() {
            return;
        }
    }
}

/// A server closes a connection that has sent nothing for this long.
pub const SERVER_IDLE: Duration = Duration::from_secs(60);
/// How often a gRPC server pings each client: a live client's answer is
/// what keeps a connection without calls from being silent.
pub const SERVER_PING: Duration = Duration::from_secs(20);

/// A tonic server builder for client/server systems (chat, share): it
/// pings its clients every [`SERVER_PING`] and drops one that does not
/// answer within 20 s. Serve it on [`guarded`] with
/// `Policy::server(SERVER_IDLE)`.
pub fn grpc_server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(SERVER_PING))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
}

/// [`grpc_server`] over TLS with `tls`'s certificate when given (clients
/// bring none).
pub fn grpc_server_tls(
    tls: Option<&super::tls::Tls>,
) -> Result<tonic::transport::Server, super::tls::TlsError> {
    let server = grpc_server();
    match tls {
        None => Ok(server),
        Some(t) => server
            .tls_config(t.server())
            .map_err(|e| super::tls::TlsError::Bad {
                path: t.dir.clone(),
                what: e.to_string(),
            }),
    }
}
