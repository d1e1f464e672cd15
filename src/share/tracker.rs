//! `dsys share tracker`: which peer has which file. It keeps nothing on
//! disk: every peer re-sends its whole list with each heartbeat, so a
//! tracker that restarts knows everything again within one interval, and a
//! peer not heard from for `--forget-after` is forgotten.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::files::check_name;
use super::hash::{self, Hash};
use super::pb::tracker_server::{Tracker, TrackerServer};
use super::{pb, plural};
use crate::cli::{CliError, Outcome};

/// The tracker's address when none is given, for the tracker and the peers.
pub const DEFAULT_TRACKER: &str = "127.0.0.1:7300";
/// The most files one peer may announce.
pub const MAX_FILES: usize = 100_000;
/// Largest message either service takes.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Args, Debug)]
#[command(
    after_help = "Peers register with the tracker and re-send their lists as a \
heartbeat; the tracker keeps nothing on disk, so a restarted tracker knows every \
live peer again after one heartbeat. Ctrl-C or SIGTERM stops it."
)]
pub struct TrackerArgs {
    /// Address to listen on
    #[arg(long, default_value = DEFAULT_TRACKER, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Forget a peer not heard from for this long
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub forget_after: Duration,
}

impl crate::registry::Run for TrackerArgs {
    fn run(self) -> Outcome {
        crate::cli::block_on_threads(tracker(self))??;
        Ok(true)
    }
}

struct PeerRec {
    name: String,
    files: Vec<pb::FileEntry>,
    seen: Instant,
}

#[derive(Clone, Default)]
pub struct TrackerState {
    peers: Arc<Mutex<HashMap<String, PeerRec>>>,
}

/// Checks one announced file: a plain name, a 32-byte hash, a piece size
/// BLAKE3's tree allows, one value per piece, and values that combine into
/// the hash (so a holder's list cannot disagree with its own hash).
pub fn check_entry(f: &pb::FileEntry) -> Result<Hash, String> {
    check_name(&f.name)?;
    let hash: Hash = f
        .hash
        .as_ref()
        .try_into()
        .map_err(|_| format!("{}: the hash is {} bytes, not 32", f.name, f.hash.len()))?;
    if !hash::valid_piece_size(f.piece_size) {
        return Err(format!(
            "{}: piece size {} is not a power of two in 1 KiB..16 MiB",
            f.name, f.piece_size
        ));
    }
    let want = hash::piece_count(f.size, f.piece_size);
    if f.pieces.len() as u64 != want {
        return Err(format!(
            "{}: {} piece hashes for {want} pieces",
            f.name,
            f.pieces.len()
        ));
    }
    let pieces: Vec<Hash> = f
        .pieces
        .iter()
        .map(|p| p.as_ref().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{}: a piece hash is not 32 bytes", f.name))?;
    if hash::combine(&pieces, f.piece_size, f.size) != Some(hash) {
        return Err(format!("{}: its piece hashes do not make its hash", f.name));
    }
    Ok(hash)
}

fn names(files: &[pb::FileEntry]) -> String {
    if files.is_empty() {
        return "no files".into();
    }
    let shown: Vec<&str> = files.iter().take(8).map(|f| f.name.as_str()).collect();
    let more = files.len().saturating_sub(shown.len());
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(", and {more} more"));
    }
    format!("{} ({s})", plural(files.len(), "file"))
}

#[tonic::async_trait]
impl Tracker for TrackerState {
    async fn announce(
        &self,
        req: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceReply>, Status> {
        let a = req.into_inner();
        if a.name.is_empty() || a.name.chars().count() > 64 || a.name.chars().any(char::is_control)
        {
            return Err(Status::invalid_argument(
                "a peer name is 1-64 printable characters",
            ));
        }
        if a.addr.parse::<SocketAddr>().is_err() {
            return Err(Status::invalid_argument(format!(
                "{}: {:?} is not a host:port address to serve on",
                a.name, a.addr
            )));
        }
        if a.files.len() > MAX_FILES {
            return Err(Status::invalid_argument(format!(
                "{}: {} files (the most is {MAX_FILES})",
                a.name,
                a.files.len()
            )));
        }
        for f in &a.files {
            check_entry(f).map_err(|e| Status::invalid_argument(format!("{}: {e}", a.name)))?;
        }
        let mut peers = self
            .peers
            .lock()
            .map_err(|_| Status::internal("tracker state"))?;
        match peers.get(&a.addr) {
            None => println!("{} at {} registered: {}", a.name, a.addr, names(&a.files)),
            Some(old) if old.files != a.files || old.name != a.name => println!(
                "{} at {} sent a new list: {}",
                a.name,
                a.addr,
                names(&a.files)
            ),
            Some(_) => {}
        }
        peers.insert(
            a.addr.clone(),
            PeerRec {
                name: a.name,
                files: a.files,
                seen: Instant::now(),
            },
        );
        Ok(Response::new(pb::AnnounceReply {
            peers: peers.len() as u32,
        }))
    }

    async fn find(&self, req: Request<pb::FindRequest>) -> Result<Response<pb::FindReply>, Status> {
        let name = req.into_inner().name;
        check_name(&name).map_err(Status::invalid_argument)?;
        let peers = self
            .peers
            .lock()
            .map_err(|_| Status::internal("tracker state"))?;
        let mut holders: Vec<pb::Holder> = peers
            .iter()
            .filter_map(|(addr, p)| {
                p.files.iter().find(|f| f.name == name).map(|f| pb::Holder {
                    peer: p.name.clone(),
                    addr: addr.clone(),
                    file: Some(f.clone()),
                })
            })
            .collect();
        holders.sort_by(|a, b| a.peer.cmp(&b.peer).then(a.addr.cmp(&b.addr)));
        Ok(Response::new(pb::FindReply { holders }))
    }

    async fn peers(
        &self,
        _: Request<pb::PeersRequest>,
    ) -> Result<Response<pb::PeersReply>, Status> {
        let peers = self
            .peers
            .lock()
            .map_err(|_| Status::internal("tracker state"))?;
        let mut list: Vec<pb::PeerSummary> = peers
            .iter()
            .map(|(addr, p)| pb::PeerSummary {
                name: p.name.clone(),
                addr: addr.clone(),
                files: p.files.iter().map(|f| f.name.clone()).collect(),
                last_seen_ms: p.seen.elapsed().as_millis() as u64,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name).then(a.addr.cmp(&b.addr)));
        Ok(Response::new(pb::PeersReply { peers: list }))
    }
}

impl TrackerState {
    /// Forgets peers not heard from for `after`; returns what it forgot.
    fn expire(&self, after: Duration) -> Vec<(String, String)> {
        let Ok(mut peers) = self.peers.lock() else {
            return Vec::new();
        };
        let gone: Vec<String> = peers
            .iter()
            .filter(|(_, p)| p.seen.elapsed() > after)
            .map(|(a, _)| a.clone())
            .collect();
        gone.into_iter()
            .filter_map(|a| peers.remove(&a).map(|p| (p.name, a)))
            .collect()
    }
}

async fn tracker(a: TrackerArgs) -> Result<(), CliError> {
    let listener = crate::cli::listen(
        a.listen,
        "",
        "is a tracker running already? --listen picks another address",
    )
    .await?;
    let state = TrackerState::default();
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(serve(listener, state.clone(), stop.clone()));
    println!(
        "tracker on {}: peers register with --tracker {}; a peer silent for {} is forgotten. Ctrl-C stops it.",
        a.listen,
        a.listen,
        humantime::format_duration(a.forget_after)
    );
    let sweeper = {
        let state = state.clone();
        let after = a.forget_after;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                for (name, addr) in state.expire(after) {
                    println!(
                        "{name} at {addr} forgotten: not heard from for {}",
                        humantime::format_duration(after)
                    );
                }
            }
        })
    };
    let mut term = crate::ui::shell::Term::new();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sweeper.abort();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    eprintln!("tracker stopped");
    Ok(())
}

/// Serves the tracker on `listener` until `stop`.
pub async fn serve(listener: TcpListener, state: TrackerState, stop: watch::Receiver<bool>) {
    use crate::net::listener::{Policy, SERVER_IDLE, grpc_server, guarded};
    let incoming = guarded(listener, 1024, Policy::server(SERVER_IDLE), stop.clone());
    let mut stop = stop;
    let svc = TrackerServer::new(state)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let server = grpc_server().add_service(svc).serve_with_incoming(incoming);
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::warn!(error = %e, "tracker server stopped");
        },
        _ = crate::net::grpc::stopped(&mut stop) => {}
    }
}
