//! The wire protocol's server side: plain TCP, one reader and one writer
//! task per connection. The reader takes frames one at a time, in order,
//! and hands each to the service; the writer sends responses and pushes,
//! batching what is waiting into one write. A bad frame gets an error frame
//! and the connection is closed; nobody else notices.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::StreamExt;

use super::service::{ChatError, ChatService, Push, Sent, Session};
use super::wire::{self, FrameError, Request, Response, code, count};
use crate::net::listener::{Conn, ConnInfo, Policy, guarded};

/// Connections open at once, at most. When full, the connection silent the
/// longest of those not logged in is closed (ERROR 8) to make room; when
/// every one is logged in, a newcomer gets ERROR 5 and is closed.
pub const MAX_CONNECTIONS: usize = 4096;
/// A connection not logged in this long after it opened (or after its
/// logout) gets ERROR 6 and is closed.
pub const LOGIN_WITHIN: Duration = Duration::from_secs(30);
/// A connection that sends nothing (not even PING) this long gets ERROR 7
/// and is closed. The dsys client pings every [`KEEPALIVE`].
pub const IDLE: Duration = Duration::from_secs(300);
/// How often the dsys client pings an otherwise quiet connection.
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// A connection that takes none of what the server writes for this long
/// is closed (it stopped reading; its pushes already go to its queue).
pub const WRITE_STALL: Duration = Duration::from_secs(60);
/// The kernel's send buffer per connection: with the push buffer
/// (`service::PUSH_BYTES`), what a client that stopped reading is told
/// "delivered" but never reads stays small.
pub const SEND_BUFFER: usize = 32 * 1024;
/// Batches of responses waiting for a connection's writer, at most (its
/// reader waits).
const OUT_QUEUE: usize = 64;
/// Encoded responses a reader collects before handing them over.
const OUT_BATCH: usize = 32 * 1024;

/// What the writer sends: encoded responses, or the last ones before
/// closing.
enum Out {
    Bytes(Vec<u8>),
    Close(Vec<u8>),
}

fn goodbye(code: u16, message: String) -> Vec<u8> {
    let mut buf = Vec::new();
    Response::Error { code, message }.encode(0, &mut buf);
    buf
}

/// ERROR 5, for a newcomer when every connection is logged in.
fn full_frame() -> &'static [u8] {
    static FULL: OnceLock<Vec<u8>> = OnceLock::new();
    FULL.get_or_init(|| {
        goodbye(
            code::FULL,
            format!("the server is full ({MAX_CONNECTIONS} connections, all logged in); closing"),
        )
    })
}

/// Serves the wire protocol on `listener` (over TLS with `tls`'s
/// certificate when given) until `stop`.
pub async fn serve(
    listener: TcpListener,
    service: ChatService,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // Accepted sockets inherit the listener's buffer size.
    if let Err(e) =
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER)
    {
        tracing::warn!(error = %e, "cannot set the send buffer size");
    }
    let policy = Policy {
        validate_within: None,
        idle: None,
        turn_away: Some(full_frame()),
    };
    let mut incoming = guarded(listener, MAX_CONNECTIONS, policy, stop.clone());
    let mut stop = stop;
    loop {
        let conn = tokio::select! {
            c = incoming.next() => match c {
                Some(Ok(c)) => c,
                Some(Err(_)) => continue,
                None => return,
            },
            _ = crate::net::grpc::stopped(&mut stop) => return,
        };
        let service = service.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let info = conn.info().clone();
            match acceptor {
                None => connection(conn, info.clone(), service).await,
                Some(acceptor) => {
                    if let Some(tls) = handshake(conn, &info, acceptor).await {
                        connection(tls, info.clone(), service).await;
                    }
                }
            }
            tracing::debug!(peer = ?info.remote, "connection closed");
        });
    }
}

/// The TLS handshake of a connection, in its time. A client that speaks
/// plain frames to a TLS-only server is told so in a plain frame (ERROR 9)
/// before the connection closes.
async fn handshake(
    mut conn: Conn,
    info: &ConnInfo,
    acceptor: tokio_rustls::TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<Conn>> {
    use crate::net::tls::HANDSHAKE_TIMEOUT;
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.peek(&mut first)).await;
    // A TLS connection opens with a handshake record (type 22).
    if matches!(peeked, Ok(Ok(1))) && first[0] != 22 {
        let bye = goodbye(
            code::TLS_REQUIRED,
            "this server speaks TLS only: connect with --tls-ca FILE (its CA's ca.pem)".into(),
        );
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.write_all(&bye)).await;
        return None;
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(peer = ?info.remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// Why a connection's reader stops.
enum End {
    /// The client closed it, or it broke.
    Gone,
    /// The server closes it, with these last words.
    Say(Vec<u8>),
}

async fn connection<S>(conn: S, info: ConnInfo, service: ChatService)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(conn);
    let (mut session, pushes) = service.connect(info.remote.map(|a| a.ip()));
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(writer(wr, out_rx, pushes, info.clone()));
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // Responses are encoded here and handed to the writer in batches: one
    // hand-over per read, not per request.
    let mut out = Vec::with_capacity(OUT_BATCH);
    let mut login_by = Some(Instant::now() + LOGIN_WITHIN);
    let mut heard = Instant::now();
    let end = 'read: loop {
        // Every whole frame in the buffer, in order; what is left (part of
        // a frame) moves to the front once.
        let mut at = 0;
        loop {
            let len = match wire::frame_len(&buf[at..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    protocol_error(&e, &mut out);
                    break 'read End::Say(std::mem::take(&mut out));
                }
            };
            let decoded = Request::decode(&buf[at + 4..at + 4 + len]);
            at += 4 + len;
            match decoded {
                Ok((id, req)) => {
                    handle(&service, &mut session, req)
                        .await
                        .encode(id, &mut out);
                    // Logged in: kept (never closed to make room); logged
                    // out: the clock to log in again starts.
                    match (
                        service.logged_in(&mut session).is_some(),
                        login_by.is_some(),
                    ) {
                        (true, true) => {
                            login_by = None;
                            info.validate();
                        }
                        (false, false) => {
                            login_by = Some(Instant::now() + LOGIN_WITHIN);
                            info.invalidate();
                        }
                        _ => {}
                    }
                    if out.len() >= OUT_BATCH {
                        let full = std::mem::replace(&mut out, Vec::with_capacity(OUT_BATCH));
                        if out_tx.send(Out::Bytes(full)).await.is_err() {
                            break 'read End::Gone;
                        }
                    }
                }
                Err(e) => {
                    protocol_error(&e, &mut out);
                    break 'read End::Say(std::mem::take(&mut out));
                }
            }
        }
        buf.drain(..at);
        if !out.is_empty() {
            let batch = std::mem::replace(&mut out, Vec::with_capacity(OUT_BATCH));
            if out_tx.send(Out::Bytes(batch)).await.is_err() {
                break End::Gone;
            }
        }
        let idle_at = heard + IDLE;
        let deadline = login_by.map_or(idle_at, |l| l.min(idle_at));
        match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
            Err(_) if login_by.is_some_and(|l| l <= idle_at) => {
                break End::Say(goodbye(
                    code::LOGIN_TIMEOUT,
                    format!("not logged in within {} s; closing", LOGIN_WITHIN.as_secs()),
                ));
            }
            Err(_) => {
                break End::Say(goodbye(
                    code::IDLE,
                    format!(
                        "nothing received for {} s (PING keeps a quiet connection open); closing",
                        IDLE.as_secs()
                    ),
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) if info.closed_by_server() => {
                break End::Say(goodbye(
                    code::EVICTED,
                    "closed to make room for a new connection (this one was not logged in)".into(),
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => break End::Gone,
            Ok(Ok(n)) => {
                heard = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    };
    service.disconnect(&mut session);
    if let End::Say(last) = end {
        // The writer has a moment to say it; a client that does not read
        // does not hold the connection open.
        let _ = tokio::time::timeout(Duration::from_secs(1), out_tx.send(Out::Close(last))).await;
    }
    drop(out_tx);
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        info.close();
    }
}

fn protocol_error(e: &FrameError, out: &mut Vec<u8>) {
    Response::Error {
        code: e.code(),
        message: format!("{e}; closing the connection"),
    }
    .encode(0, out);
}

fn error(e: ChatError) -> Response {
    Response::Error {
        code: e.code(),
        message: e.to_string(),
    }
}

/// Carries out one request.
pub async fn handle(service: &ChatService, s: &mut Session, req: Request) -> Response {
    let r = match req {
        Request::Create { name, password } => {
            service.create(&name, &password).await.map(|_| Response::Ok)
        }
        Request::Login { name, password } => service
            .login(s, &name, &password)
            .await
            .map(|q| Response::LoggedIn { queued: count(q) }),
        Request::Logout => service.logout_request(s).map(|()| Response::Ok),
        Request::List {
            pattern,
            offset,
            limit,
        } => service
            .list(&pattern, offset as usize, limit as usize)
            .map(|p| Response::Accounts {
                total: count(p.total),
                accounts: p.accounts,
            }),
        Request::Send { to, text } => {
            service
                .send(s, &to, &text)
                .await
                .map(|(id, sent)| Response::Sent {
                    id,
                    delivered: sent == Sent::Delivered,
                })
        }
        Request::Deliver { max } => {
            service
                .deliver(s, max as usize)
                .await
                .map(|(messages, queued)| Response::Messages {
                    queued: count(queued),
                    messages,
                })
        }
        Request::Ack { ids } => service
            .ack(s, ids)
            .await
            .map(|n| Response::Acked { removed: count(n) }),
        Request::Delete { password } => service
            .delete(s, &password)
            .await
            .map(|n| Response::Deleted { dropped: count(n) }),
        Request::Ping => Ok(Response::Ok),
    };
    r.unwrap_or_else(error)
}

/// Writes responses and pushes; everything waiting goes out in one write.
/// A push's room in the push buffer is given back once it is written.
async fn writer<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    mut out: mpsc::Receiver<Out>,
    mut pushes: mpsc::UnboundedReceiver<Push>,
    info: ConnInfo,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
    let mut out_open = true;
    let push = |p: Push, buf: &mut Vec<u8>, held: &mut Vec<OwnedSemaphorePermit>| match p {
        Push::Message(m, permit) => {
            Response::Push(m).encode(0, buf);
            held.extend(permit);
        }
        Push::LoggedOut(why) => Response::LoggedOut(why).encode(0, buf),
    };
    loop {
        let mut closing = false;
        tokio::select! {
            o = out.recv(), if out_open => match o {
                Some(Out::Bytes(b)) => buf.extend_from_slice(&b),
                Some(Out::Close(b)) => { buf.extend_from_slice(&b); closing = true; }
                None => out_open = false,
            },
            p = pushes.recv() => match p {
                Some(p) => push(p, &mut buf, &mut held),
                None => return,
            },
        }
        if !out_open {
            let _ = wr.shutdown().await;
            return;
        }
        // Let the tasks that are ready run first: what they produce for
        // this connection joins this write (fewer, bigger writes when busy).
        tokio::task::yield_now().await;
        // Whatever else is waiting joins this write.
        while buf.len() < 64 * 1024 && !closing {
            if let Ok(o) = out.try_recv() {
                match o {
                    Out::Bytes(b) => buf.extend_from_slice(&b),
                    Out::Close(b) => {
                        buf.extend_from_slice(&b);
                        closing = true;
                    }
                }
            } else if let Ok(p) = pushes.try_recv() {
                push(p, &mut buf, &mut held);
            } else {
                break;
            }
        }
        match tokio::time::timeout(WRITE_STALL, wr.write_all(&buf)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                // It stopped reading (so it would not read why either):
                // close it; its reader sees the end.
                tracing::debug!(peer = ?info.remote, "a client stopped reading: closed");
                info.close();
                return;
            }
        }
        buf.clear();
        held.clear();
        if closing {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
