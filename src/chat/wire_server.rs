//! The wire protocol's server side: plain TCP, one reader and one writer
//! task per connection. The reader takes frames one at a time, in order,
//! and hands each to the service; the writer sends responses and pushes,
//! batching what is waiting into one write. A bad frame gets an error frame
//! and the connection is closed; nobody else notices.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc, watch};

use super::service::{ChatError, ChatService, Message, Sent, Session};
use super::wire::{self, FrameError, Request, Response, count};

/// Connections served at once, at most; past it a new one gets an error
/// frame and is closed.
pub const MAX_CONNECTIONS: usize = 4096;
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

pub async fn serve(listener: TcpListener, service: ChatService, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::net::grpc::stopped(&mut stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let (_, mut wr) = stream.into_split();
                let mut buf = Vec::new();
                Response::Error {
                    code: super::service::ChatError::Storage(String::new()).code(),
                    message: format!("the server is full ({MAX_CONNECTIONS} connections)"),
                }
                .encode(0, &mut buf);
                let _ = wr.write_all(&buf).await;
            });
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            connection(stream, service).await;
            tracing::debug!(%peer, "connection closed");
            drop(permit);
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, service: ChatService) {
    let (mut rd, wr) = stream.into_split();
    let (mut session, pushes) = service.connect();
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(writer(wr, out_rx, pushes));
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // Responses are encoded here and handed to the writer in batches: one
    // hand-over per read, not per request.
    let mut out = Vec::with_capacity(OUT_BATCH);
    'read: loop {
        // Every whole frame in the buffer, in order; what is left (part of
        // a frame) moves to the front once.
        let mut at = 0;
        loop {
            let len = match wire::frame_len(&buf[at..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    protocol_error(&e, &mut out);
                    let _ = out_tx.send(Out::Close(out)).await;
                    break 'read;
                }
            };
            let decoded = Request::decode(&buf[at + 4..at + 4 + len]);
            at += 4 + len;
            match decoded {
                Ok((id, req)) => {
                    handle(&service, &mut session, req)
                        .await
                        .encode(id, &mut out);
                    if out.len() >= OUT_BATCH {
                        let full = std::mem::replace(&mut out, Vec::with_capacity(OUT_BATCH));
                        if out_tx.send(Out::Bytes(full)).await.is_err() {
                            break 'read;
                        }
                    }
                }
                Err(e) => {
                    protocol_error(&e, &mut out);
                    let _ = out_tx.send(Out::Close(out)).await;
                    break 'read;
                }
            }
        }
        buf.drain(..at);
        if !out.is_empty() {
            let batch = std::mem::replace(&mut out, Vec::with_capacity(OUT_BATCH));
            if out_tx.send(Out::Bytes(batch)).await.is_err() {
                break;
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    service.disconnect(&mut session);
    drop(out_tx);
    let _ = writer.await;
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
        Request::Logout => {
            if service.logout(s) {
                Ok(Response::Ok)
            } else {
                Err(ChatError::NotLoggedIn)
            }
        }
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
async fn writer(
    mut wr: OwnedWriteHalf,
    mut out: mpsc::Receiver<Out>,
    mut pushes: mpsc::Receiver<Message>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut out_open = true;
    loop {
        let mut closing = false;
        tokio::select! {
            o = out.recv(), if out_open => match o {
                Some(Out::Bytes(b)) => buf.extend_from_slice(&b),
                Some(Out::Close(b)) => { buf.extend_from_slice(&b); closing = true; }
                None => out_open = false,
            },
            m = pushes.recv() => match m {
                Some(m) => Response::Push(m).encode(0, &mut buf),
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
            } else if let Ok(m) = pushes.try_recv() {
                Response::Push(m).encode(0, &mut buf);
            } else {
                break;
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
        if closing {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
