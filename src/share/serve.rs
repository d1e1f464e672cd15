//! A peer serving its directory: its load, and pieces as streams of chunks.
//! A piece is read from the file as it is on disk now; a file that changed
//! since the last scan is refused (its hash no longer holds), and the
//! downloader checks every piece anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::files::Library;
use super::hash;
use super::names::{check_name, shown};
use super::pb;
use super::pb::peer_server::{Peer, PeerServer};
use super::proof::{self, Token};
use super::tracker::MAX_MESSAGE;

/// Bytes per chunk of a piece's stream.
pub const CHUNK: usize = 256 * 1024;
/// Transfers served at once (more wait for a slot).
const MAX_TRANSFERS: usize = 64;
/// The largest request a peer decodes (a fetch, a load, a proof: names
/// and hashes). More: tonic refuses it (`OutOfRange`).
const MAX_REQUEST: usize = 64 * 1024;

/// Downloads being served: one counts while it has a piece in flight, or
/// had one within the last second (between two of its pieces).
#[derive(Default)]
pub struct Load {
    active: Mutex<HashMap<String, (u32, Instant)>>,
}

pub struct LoadGuard {
    load: Arc<Load>,
    id: String,
}

impl Load {
    pub fn start(self: &Arc<Self>, id: &str) -> LoadGuard {
        if let Ok(mut m) = self.active.lock() {
            let e = m.entry(id.to_string()).or_insert((0, Instant::now()));
            e.0 += 1;
            e.1 = Instant::now();
        }
        LoadGuard {
            load: self.clone(),
            id: id.to_string(),
        }
    }

    pub fn now(&self) -> u32 {
        let Ok(mut m) = self.active.lock() else {
            return 0;
        };
        m.retain(|_, (n, last)| *n > 0 || last.elapsed() < Duration::from_secs(1));
        m.len() as u32
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.load.active.lock()
            && let Some(e) = m.get_mut(&self.id)
        {
            e.0 = e.0.saturating_sub(1);
            e.1 = Instant::now();
        }
    }
}

/// `--upload-limit`: one budget for all transfers.
pub struct Limit {
    bytes_per_sec: f64,
    next: Mutex<Instant>,
}

impl Limit {
    pub fn new(bytes_per_sec: u64) -> Limit {
        Limit {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            next: Mutex::new(Instant::now()),
        }
    }
    async fn take(&self, n: usize) {
        let at = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
            start
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

#[derive(Clone)]
pub struct Serving {
    pub name: String,
    pub lib: Arc<RwLock<Library>>,
    pub load: Arc<Load>,
    pub limit: Option<Arc<Limit>>,
    /// The test hook: flip a byte in every piece sent.
    pub corrupt: bool,
    slots: Arc<tokio::sync::Semaphore>,
    /// What the tracker's call back checks: this run's token, and the
    /// address as announced.
    token: Token,
    addr: String,
}

impl Serving {
    pub fn new(
        name: String,
        lib: Arc<RwLock<Library>>,
        limit: Option<u64>,
        corrupt: bool,
        (token, addr): (Token, String),
    ) -> Serving {
        Serving {
            name,
            lib,
            load: Arc::new(Load::default()),
            limit: limit.map(|l| Arc::new(Limit::new(l))),
            corrupt,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_TRANSFERS)),
            token,
            addr,
        }
    }
}

#[tonic::async_trait]
impl Peer for Serving {
    async fn load(&self, _: Request<pb::LoadRequest>) -> Result<Response<pb::LoadReply>, Status> {
        Ok(Response::new(pb::LoadReply {
            load: self.load.now(),
            name: self.name.clone(),
        }))
    }

    async fn prove(
        &self,
        req: Request<pb::ProveRequest>,
    ) -> Result<Response<pb::ProveReply>, Status> {
        let nonce = req.into_inner().nonce;
        if !(proof::NONCE..=proof::MAX_NONCE).contains(&nonce.len()) {
            return Err(Status::invalid_argument(format!(
                "a nonce is {}-{} bytes, not {}",
                proof::NONCE,
                proof::MAX_NONCE,
                nonce.len()
            )));
        }
        Ok(Response::new(pb::ProveReply {
            name: self.name.clone(),
            proof: bytes::Bytes::copy_from_slice(&proof::prove(
                &self.token,
                &nonce,
                &self.name,
                &self.addr,
            )),
        }))
    }

    type FetchStream = ReceiverStream<Result<pb::Chunk, Status>>;

    async fn fetch(
        &self,
        req: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let r = req.into_inner();
        check_name(&r.name).map_err(Status::invalid_argument)?;
        let me = &self.name;
        let (path, size, piece_size, count) = {
            let lib = self.lib.read().map_err(|_| Status::internal("library"))?;
            let Some(s) = lib.files.get(&r.name) else {
                return Err(Status::not_found(format!(
                    "{} does not share {}",
                    shown(me),
                    r.name
                )));
            };
            if s.hash.as_slice() != r.hash.as_ref() {
                return Err(Status::not_found(format!(
                    "{me}'s {} is other content now (hash {})",
                    r.name,
                    hash::short(&s.hash)
                )));
            }
            lib.unchanged(s)
                .map_err(|e| Status::failed_precondition(format!("on {me}: {e}")))?;
            let count = hash::piece_count(s.size, s.piece_size);
            (lib.dir.join(&s.name), s.size, s.piece_size, count)
        };
        if r.piece >= count {
            return Err(Status::out_of_range(format!(
                "{} has {count} pieces, not {}",
                r.name,
                r.piece + 1
            )));
        }
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("stopping"))?;
        let guard = self.load.start(&r.download);
        let (start, end) = hash::piece_range(size, piece_size, r.piece);
        let (tx, rx) = mpsc::channel(4);
        let limit = self.limit.clone();
        let corrupt = self.corrupt;
        let name = r.name.clone();
        let me = me.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _guard = guard;
            let read = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
                use std::io::{Read, Seek};
                let mut f = std::fs::File::open(&path)?;
                f.seek(std::io::SeekFrom::Start(start))?;
                let len = (end - start) as usize;
                // Read into fresh capacity: no zeroing a piece first.
                let mut buf = Vec::with_capacity(len);
                f.take(end - start).read_to_end(&mut buf)?;
                if buf.len() != len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than it was",
                    ));
                }
                if corrupt && !buf.is_empty() {
                    let mid = buf.len() / 2;
                    buf[mid] ^= 0x5a;
                }
                Ok(Bytes::from(buf))
            })
            .await;
            let data = match read {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    let _ = tx
                        .send(Err(Status::failed_precondition(format!(
                            "{me} cannot read {name} now: {e} (changed since its updatelist?)"
                        ))))
                        .await;
                    return;
                }
                Err(_) => return,
            };
            let mut at = 0;
            while at < data.len() {
                let n = CHUNK.min(data.len() - at);
                if let Some(l) = &limit {
                    l.take(n).await;
                }
                let chunk = pb::Chunk {
                    data: data.slice(at..at + n),
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                at += n;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// HTTP/2 windows big enough for a piece in flight: the defaults (64 KiB)
/// would hold a stream to a few hundred MB/s on loopback.
pub const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
pub const CONN_WINDOW: u32 = 32 * 1024 * 1024;

/// Serves the peer's directory on `listener` until `stop`.
pub async fn serve(listener: TcpListener, serving: Serving, stop: watch::Receiver<bool>) {
    use crate::net::listener::{Policy, SERVER_IDLE, grpc_server, guarded};
    let incoming = guarded(listener, 256, Policy::server(SERVER_IDLE), stop.clone());
    let mut stop = stop;
    let svc = PeerServer::new(serving)
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_MESSAGE);
    let server = grpc_server()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .add_service(svc)
        .serve_with_incoming(incoming);
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::warn!(error = %e, "peer server stopped");
        },
        _ = crate::net::grpc::stopped(&mut stop) => {}
    }
}
