//! The chat over gRPC (`proto/chat.proto`): the same service, as a tonic
//! server. A session is a server stream (`Open`): its first event names
//! the session, pushed messages follow, and when the client goes away the
//! stream is dropped and the session logged out. Errors are gRPC statuses
//! whose message is the service's, with its code in `chat-error`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rand::{RngCore, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::service::{ChatError, ChatService, Message, Push, Sent, Session};
use crate::net::listener::ConnInfo;

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.chat.v1");
}

use pb::chat_server::{Chat, ChatServer};

/// Sessions one connection may have open at once; past it `Open` is
/// refused (RESOURCE_EXHAUSTED).
pub const MAX_SESSIONS_PER_CONNECTION: usize = 16;

/// An open session and the connection it belongs to.
struct Entry {
    conn: u64,
    session: Arc<AsyncMutex<Session>>,
}

type Sessions = Arc<Mutex<HashMap<u64, Entry>>>;

#[derive(Clone)]
pub struct GrpcChat {
    service: ChatService,
    sessions: Sessions,
}

pub fn status(e: ChatError) -> Status {
    use tonic::Code;
    let code = match &e {
        ChatError::BadName(_)
        | ChatError::BadPassword
        | ChatError::TooLarge(_)
        | ChatError::Empty
        | ChatError::BadPattern(_) => Code::InvalidArgument,
        ChatError::NameTaken(_) => Code::AlreadyExists,
        ChatError::NoSuchAccount(_) => Code::NotFound,
        ChatError::WrongPassword(_) => Code::PermissionDenied,
        ChatError::NotLoggedIn | ChatError::LoggedOut(_) => Code::Unauthenticated,
        ChatError::AlreadyLoggedIn(_) => Code::FailedPrecondition,
        ChatError::TooManyFailures { .. } | ChatError::Busy => Code::ResourceExhausted,
        ChatError::Storage(_) => Code::Internal,
    };
    let mut s = Status::new(code, e.to_string());
    if let Ok(v) = e.code().to_string().parse() {
        s.metadata_mut().insert("chat-error", v);
    }
    s
}

pub fn to_pb(m: Message) -> pb::ChatMessage {
    pb::ChatMessage {
        id: m.id,
        from: m.from,
        from_deleted: m.from_deleted,
        sent_ms: m.sent_ms,
        text: m.text,
    }
}

/// The session stream: pushes, and the session's end when dropped.
struct SessionStream {
    first: Option<u64>,
    rx: mpsc::UnboundedReceiver<Push>,
    id: u64,
    sessions: Sessions,
    service: ChatService,
}

impl Stream for SessionStream {
    type Item = Result<pb::Event, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(id) = self.first.take() {
            return Poll::Ready(Some(Ok(pb::Event {
                kind: Some(pb::event::Kind::Session(id)),
            })));
        }
        self.rx.poll_recv(cx).map(|p| {
            p.map(|p| {
                let kind = match p {
                    // Its room in the push buffer is free once it is
                    // handed to the stream.
                    Push::Message(m, _permit) => pb::event::Kind::Message(to_pb(m)),
                    Push::LoggedOut(why) => pb::event::Kind::LoggedOut(why),
                };
                Ok(pb::Event { kind: Some(kind) })
            })
        })
    }
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        let s = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        if let Some(s) = s {
            let service = self.service.clone();
            // The session may be busy in a call: log it out when that ends.
            tokio::spawn(async move {
                service.disconnect(&mut *s.session.lock().await);
            });
        }
    }
}

/// The connection a request came on.
fn caller<T>(r: &Request<T>) -> Option<ConnInfo> {
    ConnInfo::of(r.extensions())
}

impl GrpcChat {
    pub fn new(service: ChatService) -> GrpcChat {
        GrpcChat {
            service,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Session `id`, if the caller's connection opened it. A session of
    /// another connection and one that does not exist get the same answer.
    fn session(
        &self,
        conn: Option<&ConnInfo>,
        id: u64,
    ) -> Result<Arc<AsyncMutex<Session>>, Status> {
        let sessions = self.sessions();
        match (sessions.get(&id), conn) {
            (Some(e), Some(c)) if e.conn == c.id => Ok(e.session.clone()),
            _ => Err(Status::unauthenticated(format!(
                "no session {id} on this connection (open one with Open; a session belongs to the connection that opened it, and ends when its stream closes)"
            ))),
        }
    }
}

#[tonic::async_trait]
impl Chat for GrpcChat {
    type OpenStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn open(
        &self,
        r: Request<pb::OpenRequest>,
    ) -> Result<Response<Self::OpenStream>, Status> {
        let conn =
            caller(&r).ok_or_else(|| Status::internal("the connection of this call is unknown"))?;
        let (session, rx) = self.service.connect(conn.remote.map(|a| a.ip()));
        let id = {
            let mut sessions = self.sessions();
            let mine = sessions.values().filter(|e| e.conn == conn.id).count();
            if mine >= MAX_SESSIONS_PER_CONNECTION {
                return Err(Status::resource_exhausted(format!(
                    "this connection has {mine} sessions open (the most is {MAX_SESSIONS_PER_CONNECTION})"
                )));
            }
            // Unguessable, though a guess would not help: a session answers
            // only its own connection.
            let mut id = 0;
            while id == 0 || sessions.contains_key(&id) {
                id = rand::rngs::StdRng::from_os_rng().next_u64();
            }
            sessions.insert(
                id,
                Entry {
                    conn: conn.id,
                    session: Arc::new(AsyncMutex::new(session)),
                },
            );
            id
        };
        Ok(Response::new(Box::pin(SessionStream {
            first: Some(id),
            rx,
            id,
            sessions: self.sessions.clone(),
            service: self.service.clone(),
        })))
    }

    async fn create(&self, r: Request<pb::Credentials>) -> Result<Response<pb::Empty>, Status> {
        let c = r.into_inner();
        self.service
            .create(&c.name, &c.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn login(
        &self,
        r: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginReply>, Status> {
        let conn = caller(&r);
        let r = r.into_inner();
        let s = self.session(conn.as_ref(), r.session)?;
        let queued = self
            .service
            .login(&mut *s.lock().await, &r.name, &r.password)
            .await
            .map_err(status)?;
        // A connection with a logged-in session is not closed to make room.
        if let Some(c) = &conn {
            c.validate();
        }
        Ok(Response::new(pb::LoginReply { queued }))
    }

    async fn logout(&self, r: Request<pb::SessionRef>) -> Result<Response<pb::Empty>, Status> {
        let conn = caller(&r);
        let s = self.session(conn.as_ref(), r.into_inner().session)?;
        self.service
            .logout_request(&mut *s.lock().await)
            .map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list(&self, r: Request<pb::ListRequest>) -> Result<Response<pb::Accounts>, Status> {
        let r = r.into_inner();
        let page = self
            .service
            .list(&r.pattern, r.offset as usize, r.limit as usize)
            .map_err(status)?;
        Ok(Response::new(pb::Accounts {
            total: page.total,
            accounts: page
                .accounts
                .into_iter()
                .map(|(name, online)| pb::Account { name, online })
                .collect(),
        }))
    }

    async fn send(&self, r: Request<pb::SendRequest>) -> Result<Response<pb::SendReply>, Status> {
        let conn = caller(&r);
        let r = r.into_inner();
        let s = self.session(conn.as_ref(), r.session)?;
        let (id, sent) = self
            .service
            .send(&mut *s.lock().await, &r.to, &r.text)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SendReply {
            id,
            delivered: sent == Sent::Delivered,
        }))
    }

    async fn deliver(
        &self,
        r: Request<pb::DeliverRequest>,
    ) -> Result<Response<pb::Messages>, Status> {
        let conn = caller(&r);
        let r = r.into_inner();
        let s = self.session(conn.as_ref(), r.session)?;
        let (msgs, queued) = self
            .service
            .deliver(&mut *s.lock().await, r.max as usize)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Messages {
            queued,
            messages: msgs.into_iter().map(to_pb).collect(),
        }))
    }

    async fn ack(&self, r: Request<pb::AckRequest>) -> Result<Response<pb::AckReply>, Status> {
        let conn = caller(&r);
        let r = r.into_inner();
        let s = self.session(conn.as_ref(), r.session)?;
        let removed = self
            .service
            .ack(&mut *s.lock().await, r.ids)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AckReply { removed }))
    }

    async fn delete(
        &self,
        r: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteReply>, Status> {
        let conn = caller(&r);
        let r = r.into_inner();
        let s = self.session(conn.as_ref(), r.session)?;
        let dropped = self
            .service
            .delete(&mut *s.lock().await, &r.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteReply { dropped }))
    }
}

/// Serves the gRPC front-end on `listener` until `stop`.
/// Serves gRPC on `listener` (over TLS with `tls` when given) until `stop`.
pub async fn serve(
    listener: TcpListener,
    service: ChatService,
    tls: Option<crate::net::tls::Tls>,
    stop: watch::Receiver<bool>,
) {
    use crate::net::listener::{Policy, SERVER_IDLE, grpc_server_tls, guarded};
    let mut server = match grpc_server_tls(tls.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "gRPC server not started");
            return;
        }
    };
    let incoming = guarded(
        listener,
        super::wire_server::MAX_CONNECTIONS,
        Policy::server(SERVER_IDLE),
        stop.clone(),
    );
    let mut stop = stop;
    let server = server
        .add_service(ChatServer::new(GrpcChat::new(service)))
        .serve_with_incoming(incoming);
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::warn!(error = %e, "gRPC server stopped");
        },
        _ = crate::net::grpc::stopped(&mut stop) => {}
    }
}
