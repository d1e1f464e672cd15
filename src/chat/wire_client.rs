//! The wire protocol's client side: requests written as frames, responses
//! matched to their requests by id (so calls may be in flight together),
//! pushes handed to a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::client::{Conn, Lost, PUSHES, Pushed};
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
}

pub async fn connect(
    addr: &str,
    me: Arc<Mutex<String>>,
) -> Result<(Conn, mpsc::Receiver<Pushed>), Lost> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Lost(format!("cannot connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
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
    let (push_tx, push_rx) = mpsc::channel(PUSHES);
    {
        let (pending, closed) = (pending.clone(), closed.clone());
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
            // Every waiting call learns the connection is gone.
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
        });
    }
    Ok((
        Conn::Wire(WireConn {
            out,
            pending,
            next: AtomicU32::new(1),
            closed,
        }),
        push_rx,
    ))
}

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
