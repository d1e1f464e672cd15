//! The chat over gRPC (`proto/chat.proto`): the same service, as a tonic
//! server. A session is a server stream (`Open`): its first event names
//! the session, pushed messages follow, and when the client goes away the
//! stream is dropped and the session logged out. Errors are gRPC statuses
//! whose message is the service's, with its code in `chat-error`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::service::{ChatError, ChatService, Message, Sent, Session};

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.chat.v1");
}

use pb::chat_server::{Chat, ChatServer};

type Sessions = Arc<Mutex<HashMap<u64, Arc<AsyncMutex<Session>>>>>;

#[derive(Clone)]
pub struct GrpcChat {
    service: ChatService,
    sessions: Sessions,
    next: Arc<std::sync::atomic::AtomicU64>,
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
        ChatError::NotLoggedIn => Code::Unauthenticated,
        ChatError::AlreadyLoggedIn(_) => Code::FailedPrecondition,
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
    rx: mpsc::Receiver<Message>,
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
        self.rx.poll_recv(cx).map(|m| {
            m.map(|m| {
                Ok(pb::Event {
                    kind: Some(pb::event::Kind::Message(to_pb(m))),
                })
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
                service.disconnect(&mut *s.lock().await);
            });
        }
    }
}

impl GrpcChat {
    pub fn new(service: ChatService) -> GrpcChat {
        GrpcChat {
            service,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }

    fn session(&self, id: u64) -> Result<Arc<AsyncMutex<Session>>, Status> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "no session {id} (open one with Open; it ends when its stream closes)"
                ))
            })
    }
}

#[tonic::async_trait]
impl Chat for GrpcChat {
    type OpenStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn open(
        &self,
        _r: Request<pb::OpenRequest>,
    ) -> Result<Response<Self::OpenStream>, Status> {
        let (session, rx) = self.service.connect();
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(AsyncMutex::new(session)));
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
        let r = r.into_inner();
        let s = self.session(r.session)?;
        let queued = self
            .service
            .login(&mut *s.lock().await, &r.name, &r.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LoginReply { queued }))
    }

    async fn logout(&self, r: Request<pb::SessionRef>) -> Result<Response<pb::Empty>, Status> {
        let s = self.session(r.into_inner().session)?;
        if !self.service.logout(&mut *s.lock().await) {
            return Err(status(ChatError::NotLoggedIn));
        }
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
        let r = r.into_inner();
        let s = self.session(r.session)?;
        let (id, sent) = self
            .service
            .send(&*s.lock().await, &r.to, &r.text)
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
        let r = r.into_inner();
        let s = self.session(r.session)?;
        let (msgs, queued) = self
            .service
            .deliver(&*s.lock().await, r.max as usize)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Messages {
            queued,
            messages: msgs.into_iter().map(to_pb).collect(),
        }))
    }

    async fn ack(&self, r: Request<pb::AckRequest>) -> Result<Response<pb::AckReply>, Status> {
        let r = r.into_inner();
        let s = self.session(r.session)?;
        let removed = self
            .service
            .ack(&*s.lock().await, r.ids)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AckReply { removed }))
    }

    async fn delete(
        &self,
        r: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteReply>, Status> {
        let r = r.into_inner();
        let s = self.session(r.session)?;
        let dropped = self
            .service
            .delete(&mut *s.lock().await, &r.password)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteReply { dropped }))
    }
}

/// Serves the gRPC front-end on `listener` until `stop`.
pub async fn serve(listener: TcpListener, service: ChatService, stop: watch::Receiver<bool>) {
    use crate::net::listener::{Policy, SERVER_IDLE, grpc_server, guarded};
    let incoming = guarded(
        listener,
        super::wire_server::MAX_CONNECTIONS,
        Policy::server(SERVER_IDLE),
        stop.clone(),
    );
    let mut stop = stop;
    let server = grpc_server()
        .add_service(ChatServer::new(GrpcChat::new(service)))
        .serve_with_incoming(incoming);
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::warn!(error = %e, "gRPC server stopped");
        },
        _ = crate::net::grpc::stopped(&mut stop) => {}
    }
}
