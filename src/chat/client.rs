//! A chat connection, over either protocol, with one vocabulary: the wire
//! protocol's [`Request`] and [`Response`] (a gRPC call is mapped to and
//! from them). Pushed messages arrive on a channel; when the connection
//! dies, calls fail with [`Lost`] and the channel closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use super::grpc_server::pb;
use super::service::Message;
use super::wire::{self, Request, Response};

/// Which protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Wire,
    Grpc,
}

impl Protocol {
    /// The server's default address for this protocol.
    pub fn default_addr(self) -> &'static str {
        match self {
            Protocol::Wire => "127.0.0.1:7070",
            Protocol::Grpc => "127.0.0.1:7071",
        }
    }
}

/// The connection is gone (the server went away, or said it closes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("connection lost: {0}")]
pub struct Lost(pub String);

/// Pushed messages waiting for the client's reader, at most.
const PUSHES: usize = 4096;

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Response>>>>;

pub struct WireConn {
    write: AsyncMutex<tokio::net::tcp::OwnedWriteHalf>,
    pending: Pending,
    next: AtomicU32,
    /// The last error frame the server sent before closing, if any.
    closed: Arc<Mutex<Option<String>>>,
}

pub struct GrpcConn {
    client: pb::chat_client::ChatClient<tonic::transport::Channel>,
    session: u64,
}

pub enum Conn {
    Wire(WireConn),
    Grpc(GrpcConn),
}

impl Conn {
    /// Connects to `addr`; pushes arrive on the returned channel, whose
    /// end means the connection is gone.
    pub async fn connect(
        protocol: Protocol,
        addr: &str,
        me: Arc<Mutex<String>>,
    ) -> Result<(Conn, mpsc::Receiver<Message>), Lost> {
        match protocol {
            Protocol::Wire => wire_connect(addr, me).await,
            Protocol::Grpc => grpc_connect(addr).await,
        }
    }

    /// One request, its response (errors of the service are responses).
    pub async fn call(&self, req: Request) -> Result<Response, Lost> {
        match self {
            Conn::Wire(c) => c.call(req).await,
            Conn::Grpc(c) => c.call(req).await,
        }
    }
}

async fn wire_connect(
    addr: &str,
    me: Arc<Mutex<String>>,
) -> Result<(Conn, mpsc::Receiver<Message>), Lost> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Lost(format!("cannot connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let closed = Arc::new(Mutex::new(None));
    let (push_tx, push_rx) = mpsc::channel(PUSHES);
    {
        let (pending, closed) = (pending.clone(), closed.clone());
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            'read: loop {
                loop {
                    let len = match wire::frame_len(&buf) {
                        Ok(Some(len)) => len,
                        Ok(None) => break,
                        Err(_) => break 'read,
                    };
                    let name = me.lock().map(|n| n.clone()).unwrap_or_default();
                    let decoded = Response::decode(&buf[4..4 + len], &name);
                    buf.drain(..4 + len);
                    match decoded {
                        Ok((_, Response::Push(m))) => {
                            if push_tx.send(m).await.is_err() {
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
            write: AsyncMutex::new(wr),
            pending,
            next: AtomicU32::new(1),
            closed,
        }),
        push_rx,
    ))
}

impl WireConn {
    async fn call(&self, req: Request) -> Result<Response, Lost> {
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
        if self.write.lock().await.write_all(&buf).await.is_err() {
            return Err(lost("the server closed the connection"));
        }
        rx.await
            .map_err(|_| lost("the server closed the connection"))
    }
}

async fn grpc_connect(addr: &str) -> Result<(Conn, mpsc::Receiver<Message>), Lost> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let mut client = pb::chat_client::ChatClient::connect(url)
        .await
        .map_err(|e| Lost(format!("cannot connect to {addr}: {e}")))?;
    let mut stream = client
        .open(pb::OpenRequest {})
        .await
        .map_err(|e| Lost(e.message().to_string()))?
        .into_inner();
    let session = match stream.message().await {
        Ok(Some(pb::Event {
            kind: Some(pb::event::Kind::Session(s)),
        })) => s,
        _ => return Err(Lost("the server opened no session".into())),
    };
    let (push_tx, push_rx) = mpsc::channel(PUSHES);
    tokio::spawn(async move {
        while let Ok(Some(ev)) = stream.message().await {
            if let Some(pb::event::Kind::Message(m)) = ev.kind {
                let m = Message {
                    id: m.id,
                    from: m.from,
                    from_deleted: m.from_deleted,
                    to: String::new(),
                    sent_ms: m.sent_ms,
                    text: m.text,
                };
                if push_tx.send(m).await.is_err() {
                    break;
                }
            }
        }
    });
    Ok((Conn::Grpc(GrpcConn { client, session }), push_rx))
}

fn from_status(s: tonic::Status) -> Result<Response, Lost> {
    if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Cancelled) {
        return Err(Lost(s.message().to_string()));
    }
    let code = s
        .metadata()
        .get("chat-error")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Response::Error {
        code,
        message: s.message().to_string(),
    })
}

fn from_pb(m: pb::ChatMessage) -> Message {
    Message {
        id: m.id,
        from: m.from,
        from_deleted: m.from_deleted,
        to: String::new(),
        sent_ms: m.sent_ms,
        text: m.text,
    }
}

fn count(n: u64) -> u32 {
    n.min(u32::MAX as u64) as u32
}

impl GrpcConn {
    async fn call(&self, req: Request) -> Result<Response, Lost> {
        let mut c = self.client.clone();
        let session = self.session;
        let r = match req {
            Request::Create { name, password } => c
                .create(pb::Credentials { name, password })
                .await
                .map(|_| Response::Ok),
            Request::Login { name, password } => c
                .login(pb::LoginRequest {
                    session,
                    name,
                    password,
                })
                .await
                .map(|r| Response::LoggedIn {
                    queued: count(r.into_inner().queued),
                }),
            Request::Logout => c
                .logout(pb::SessionRef { session })
                .await
                .map(|_| Response::Ok),
            Request::List {
                pattern,
                offset,
                limit,
            } => c
                .list(pb::ListRequest {
                    pattern,
                    offset,
                    limit: limit as u32,
                })
                .await
                .map(|r| {
                    let r = r.into_inner();
                    Response::Accounts {
                        total: count(r.total),
                        accounts: r.accounts.into_iter().map(|a| (a.name, a.online)).collect(),
                    }
                }),
            Request::Send { to, text } => {
                c.send(pb::SendRequest { session, to, text })
                    .await
                    .map(|r| {
                        let r = r.into_inner();
                        Response::Sent {
                            id: r.id,
                            delivered: r.delivered,
                        }
                    })
            }
            Request::Deliver { max } => c
                .deliver(pb::DeliverRequest {
                    session,
                    max: max as u32,
                })
                .await
                .map(|r| {
                    let r = r.into_inner();
                    Response::Messages {
                        queued: count(r.queued),
                        messages: r.messages.into_iter().map(from_pb).collect(),
                    }
                }),
            Request::Ack { ids } => {
                c.ack(pb::AckRequest { session, ids })
                    .await
                    .map(|r| Response::Acked {
                        removed: count(r.into_inner().removed),
                    })
            }
            Request::Delete { password } => c
                .delete(pb::DeleteRequest { session, password })
                .await
                .map(|r| Response::Deleted {
                    dropped: count(r.into_inner().dropped),
                }),
            Request::Ping => c
                .list(pb::ListRequest {
                    pattern: String::new(),
                    offset: 0,
                    limit: 1,
                })
                .await
                .map(|_| Response::Ok),
        };
        r.or_else(from_status)
    }
}
