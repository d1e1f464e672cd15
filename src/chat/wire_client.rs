//! The wire protocol's client side: requests written as frames, responses
//! matched to their requests by id (so calls may be in flight together),
//! pushes handed to a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::client::{ClientTls, Conn, Lost, PUSHES, Pushed};
use super::wire::{self, Request, Response};

/// The id of the client's keep-alive pings (calls count up from 1).
const KEEPALIVE_ID: u32 = u32::MAX;

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Response>>>>;

pub struct WireConn {
    /// Encoded requests for the writer task, which sends what is waiting in
    /// one write.
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next: AtomicU32,
    /// The last error frame the server sent before closing, if any.
    closed: Arc<Mutex<Option<String>>>,
    /// The reader has stopped: no answer will come to a new call.
    gone: Arc<std::sync::atomic::AtomicBool>,
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// A TCP connection to `addr`, over TLS when `tls` says how to check the
/// server, as its two halves.
async fn open(addr: &str, tls: Option<&ClientTls>) -> Result<(Reader, Writer), Lost> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Lost(format!("cannot connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        let (rd, wr) = stream.into_split();
        return Ok((Box::new(rd), Box::new(wr)));
    };
    let config = tls.ca.rustls_client().map_err(|e| Lost(e.to_string()))?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(tls.name.clone())
        .map_err(|e| Lost(format!("{:?} cannot be a TLS server name: {e}", tls.name)))?;
    let s = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| Lost(format!("TLS with {addr} failed: {e}")))?;
    let (rd, wr) = tokio::io::split(s);
    Ok((Box::new(rd), Box::new(wr)))
}

pub async fn connect(
    addr: &str,
    me: Arc<Mutex<String>>,
    tls: Option<&ClientTls>,
) -> Result<(Conn, mpsc::Receiver<Pushed>), Lost> {
    let (mut rd, mut wr) = open(addr, tls).await?;
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(1024);
    // A quiet connection pings now and then: the server closes one that
    // sends nothing for its idle timeout. (Its answer has an id no call
    // waits for.)
    // (It holds the queue weakly: a connection dropped by its owner ends.)
    {
        let out = out.downgrade();
        tokio::spawn(async move {
            let mut ping = Vec::new();
            Request::Ping.encode(KEEPALIVE_ID, &mut ping);
            loop {
                tokio::time::sleep(super::wire_server::KEEPALIVE).await;
                let Some(out) = out.upgrade() else { return };
                if out.send(ping.clone()).await.is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(first) = out_rx.recv().await {
            batch.extend_from_slice(&first);
            while batch.len() < 64 * 1024 {
                match out_rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if wr.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    });
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let closed = Arc::new(Mutex::new(None));
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (push_tx, push_rx) = mpsc::channel(PUSHES);
    {
        let (pending, closed, gone) = (pending.clone(), closed.clone(), gone.clone());
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            'read: loop {
                let mut at = 0;
                loop {
                    let len = match wire::frame_len(&buf[at..]) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(_) => break 'read,
                    };
                    let name = me.lock().map(|n| n.clone()).unwrap_or_default();
                    let decoded = Response::decode(&buf[at + 4..at + 4 + len], &name);
                    at += 4 + len;
                    match decoded {
                        Ok((_, Response::Push(m))) => {
                            if push_tx.send(Pushed::Message(m)).await.is_err() {
                                break 'read;
                            }
                        }
                        Ok((_, Response::LoggedOut(why))) => {
                            if push_tx.send(Pushed::LoggedOut(why)).await.is_err() {
                                break 'read;
                            }
                        }
                        Ok((0, Response::Error { message, .. })) => {
                            if let Ok(mut c) = closed.lock() {
                                *c = Some(message);
                            }
                        }
                        Ok((id, r)) => {
                            let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                            if let Some(w) = waiter {
                                let _ = w.send(r);
                            }
                        }
                        Err(_) => break 'read,
                    }
                }
                buf.drain(..at);
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            // Every waiting call learns the connection is gone (and every
            // later one, from the flag, set first).
            gone.store(true, Ordering::SeqCst);
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
        });
    }
    let conn = WireConn {
        out,
        pending,
        next: AtomicU32::new(1),
        closed,
        gone,
    };
    // Connected means the server answers: a TLS-only server's refusal of
    // plain frames, or something that is not a chat server, shows here.
    match tokio::time::timeout(CONNECT_CHECK, conn.call(Request::Ping)).await {
        Ok(Ok(Response::Ok)) => {}
        Ok(Ok(_)) => {
            return Err(Lost(format!(
                "{addr} answered PING oddly: is it a dsys chat server?"
            )));
        }
        Ok(Err(Lost(why))) => return Err(Lost(format!("{addr}: {why}"))),
        Err(_) => {
            return Err(Lost(format!(
                "{addr} does not answer (is it a dsys chat server{}?)",
                if tls.is_some() { " with --tls" } else { "" }
            )));
        }
    }
    Ok((Conn::Wire(conn), push_rx))
}

/// How long a new connection's first PING may take.
const CONNECT_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

impl WireConn {
    pub async fn call(&self, req: Request) -> Result<Response, Lost> {
        let id = match self.next.fetch_add(1, Ordering::Relaxed) {
            0 => self.next.fetch_add(1, Ordering::Relaxed),
            id => id,
        };
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        if self.gone.load(Ordering::SeqCst) {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            let said = self.closed.lock().ok().and_then(|c| c.clone());
            return Err(Lost(
                said.unwrap_or_else(|| "the server closed the connection".into()),
            ));
        }
        let mut buf = Vec::new();
        req.encode(id, &mut buf);
        let lost = |why: &str| {
            let said = self.closed.lock().ok().and_then(|c| c.clone());
            Lost(said.unwrap_or_else(|| why.to_string()))
        };
        if self.out.send(buf).await.is_err() {
            return Err(lost("the server closed the connection"));
        }
        rx.await
            .map_err(|_| lost("the server closed the connection"))
    }
}
