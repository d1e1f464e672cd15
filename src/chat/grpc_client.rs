//! The gRPC client side: a session stream (`Open`) whose pushes go to a
//! channel, and each request mapped to its call and back.

use tokio::sync::mpsc;

use super::client::{ClientTls, Conn, Lost, PUSHES, Pushed};
use super::grpc_server::pb;
use super::service::Message;
use super::wire::{Request, Response, count};

pub struct GrpcConn {
    client: pb::chat_client::ChatClient<tonic::transport::Channel>,
    session: u64,
}

pub async fn connect(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<(Conn, mpsc::Receiver<Pushed>), Lost> {
    let bare = addr.rsplit_once("://").map_or(addr, |(_, a)| a);
    let cannot = |e: &dyn std::fmt::Display| Lost(format!("cannot connect to {addr}: {e}"));
    let tls = tls.map(|t| t.ca.grpc(&t.name));
    let endpoint = crate::net::tls::endpoint(bare, tls).map_err(|e| cannot(&e))?;
    let channel = endpoint.connect().await.map_err(|e| {
        let why = crate::net::tls::tls_failure(&e).unwrap_or_else(|| crate::net::cause(&e));
        cannot(&why)
    })?;
    let mut client = pb::chat_client::ChatClient::new(channel);
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
            let pushed = match ev.kind {
                Some(pb::event::Kind::Message(m)) => Pushed::Message(from_pb(m)),
                Some(pb::event::Kind::LoggedOut(why)) => Pushed::LoggedOut(why),
                _ => continue,
            };
            if push_tx.send(pushed).await.is_err() {
                break;
            }
        }
    });
    Ok((Conn::Grpc(GrpcConn { client, session }), push_rx))
}

fn from_status(s: tonic::Status) -> Result<Response, Lost> {
    // A server restarted under us has forgotten our session: as good as lost.
    let no_session =
        s.code() == tonic::Code::Unauthenticated && s.message().starts_with("no session");
    if no_session || matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Cancelled) {
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

impl GrpcConn {
    pub async fn call(&self, req: Request) -> Result<Response, Lost> {
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
