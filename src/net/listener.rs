//! Accepting inbound connections without letting strangers hurt the node.
//!
//! * An accept error (out of file descriptors: EMFILE/ENFILE) backs off
//!   (10 ms doubling to 1 s) instead of retrying in a hot loop.
//! * At most `cap` inbound connections are open at once. A connection is
//!   *validated* once a peer in the config has sent its hello on it; when
//!   the cap is reached, the oldest connection that is not validated is
//!   closed to make room (and a newcomer is turned away if every
//!   connection is validated). Connections that stay unvalidated for
//!   [`HELLO_TIMEOUT`] are closed too, so held-open sockets cannot pile up.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How long a connection may stay open without a valid hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared between a connection and the acceptor that may close it.
#[derive(Debug, Default)]
pub struct ConnCtl {
    validated: AtomicBool,
    killed: AtomicBool,
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl ConnCtl {
    fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.waker.wake();
    }
}

/// What a request handler can see of its connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: Option<std::net::SocketAddr>,
    ctl: Arc<ConnCtl>,
}

impl ConnInfo {
    /// A peer from the config said hello on this connection: keep it.
    pub fn validate(&self) {
        self.ctl.validated.store(true, Ordering::Relaxed);
    }
}

/// An accepted connection that the acceptor can close.
pub struct Conn {
    inner: TcpStream,
    info: ConnInfo,
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
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.info.ctl.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.info.ctl.killed.load(Ordering::Relaxed) {
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

/// Starts accepting on `listener`; at most `cap` connections at once.
pub fn guarded(listener: TcpListener, cap: usize, shutdown: watch::Receiver<bool>) -> Guarded {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(listener, cap, tx, shutdown));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    cap: usize,
    tx: mpsc::Sender<io::Result<Conn>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut open: Vec<(Instant, Arc<ConnCtl>)> = Vec::new();
    let mut backoff = Duration::from_millis(10);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut turned_away = 0u64;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = sweep.tick() => {
                let now = Instant::now();
                for (at, c) in &open {
                    if !c.validated.load(Ordering::Relaxed) && now.duration_since(*at) > HELLO_TIMEOUT {
                        c.kill();
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
            match open.iter().find(|(_, c)| {
                !c.validated.load(Ordering::Relaxed) && !c.killed.load(Ordering::Relaxed)
            }) {
                Some((_, c)) => c.kill(),
                None => {
                    turned_away += 1;
                    if turned_away.is_power_of_two() {
                        warn!(cap, turned_away, %remote, "too many connections: turned one away");
                    }
                    drop(stream);
                    continue;
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let ctl = Arc::new(ConnCtl::default());
        open.push((Instant::now(), ctl.clone()));
        let conn = Conn {
            inner: stream,
            info: ConnInfo {
                remote: Some(remote),
                ctl,
            },
        };
        if tx.send(Ok(conn)).await.is_err() {
            return;
        }
    }
}
