//! `dsys share tracker`: which peer has which file. It keeps nothing on
//! disk: every peer re-sends its whole list with each heartbeat, so a
//! tracker that restarts knows everything again within one interval, and a
//! peer not heard from for `--forget-after` is forgotten.
//!
//! Every announce is hostile until shown otherwise. The tracker lists a
//! peer only at an address on the IP its announce came from, and only once
//! it has called that address back and the peer there proved it knows the
//! announce's token (`proof`); a verified (address, token) is remembered,
//! so a heartbeat costs no call back. Its memory is bounded: files per
//! peer, pieces per file, bytes per announce, peers, and a budget for all
//! it tracks. The state is behind one lock, held only for map look-ups and
//! inserts: checking entries, calling back and building replies happen
//! outside it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tonic::{Request, Response, Status};

use super::hash::{self, Hash};
use super::names::{check_name, check_peer_name, shown};
use super::pb::tracker_server::{Tracker, TrackerServer};
use super::proof::{self, Token};
use super::{client, pb, plural};
use crate::cli::{CliError, Outcome};
use crate::net::listener::ConnInfo;

/// The tracker's address when none is given, for the tracker and the peers.
pub const DEFAULT_TRACKER: &str = "127.0.0.1:7300";
/// The most files one peer may announce. More: `ResourceExhausted`, "N
/// files; a peer may announce at most 10000", and nothing of the list is
/// taken (the peer's previous list, if any, stands).
pub const MAX_FILES_PER_PEER: usize = 10_000;
/// The most pieces one announced file may have (2 TiB in 16 MiB pieces,
/// 512 GiB in the 4 MiB pieces owners use past 256 MiB). More:
/// `ResourceExhausted`, "FILE has N pieces; the most is 131072".
pub const MAX_PIECES_PER_FILE: usize = 131_072;
/// The most peers the tracker lists. A new address past it:
/// `ResourceExhausted`, "the tracker lists 1024 peers already"; listed
/// peers go on. A forgotten peer frees its place.
pub const MAX_PEERS: usize = 1_024;
/// Largest announce the tracker decodes (about 240,000 piece hashes). More:
/// tonic refuses the message (`OutOfRange`, "decoded message length too
/// large ... the limit is 8388608 bytes"); a peer checks its own list first
/// and says so without sending it.
pub const MAX_ANNOUNCE: usize = 8 * 1024 * 1024;
/// What the tracker keeps for all peers together, in bytes (names, hashes,
/// piece hashes, and an estimate of each record's overhead). An announce
/// that would pass it: `ResourceExhausted`, "the tracker holds N of its
/// 268435456 bytes"; what is tracked stays.
pub const MAX_TRACKED_BYTES: usize = 256 * 1024 * 1024;
/// Call backs in progress at once. More: `ResourceExhausted`, "the tracker
/// is checking 16 peers already: try again"; the peer's heartbeat does.
pub const MAX_VERIFYING: usize = 16;
/// Calls the tracker serves at once, from everyone; past it a call waits
/// (its body unread, held back by HTTP/2 flow control). So at most this
/// many announces are being decoded at once: 8 × [`MAX_ANNOUNCE`] bytes
/// (twice that while a message is decoded), and a waiting connection holds
/// at most [`WINDOW`] of its body.
pub const MAX_CALLS_AT_ONCE: usize = 8;
/// HTTP/2 flow-control window of a tracker connection and of each of its
/// calls: what a sender may have in flight before the tracker reads it.
/// Small, because the tracker's calls are small but for announces, which
/// it reads a few at a time.
pub const WINDOW: u32 = 256 * 1024;
/// How long a call back may take (connect and answer). Longer: the
/// announce fails with `FailedPrecondition`, "did not answer within 2 s".
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest `Find` or `Peers` reply the tracker builds, in bytes. Past
/// it, holders (newest records first) or file names are left out and the
/// reply says how many (`left_out`, `names_left_out`).
pub const MAX_REPLY: usize = 16 * 1024 * 1024;
/// Largest message a peer's client takes from the tracker or another peer.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Estimated bytes of a record beyond its names and hashes (map entries,
/// `Arc`s, the record itself), counted in [`MAX_TRACKED_BYTES`].
const RECORD_OVERHEAD: usize = 256;
/// The same for each file of a record.
const FILE_OVERHEAD: usize = 160;

#[derive(Args, Debug)]
#[command(
    after_help = "Peers register with the tracker and re-send their lists as a \
heartbeat; the tracker keeps nothing on disk, so a restarted tracker knows every \
live peer again after one heartbeat. A peer is listed only at its own IP, once the \
tracker has called it back there and it has proved its token. Ctrl-C or SIGTERM stops it."
)]
pub struct TrackerArgs {
    /// Address to listen on
    #[arg(long, default_value = DEFAULT_TRACKER, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Forget a peer not heard from for this long
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub forget_after: Duration,
    /// Serve over TLS only, with DIR/NAME.pem and DIR/NAME.key (NAME from
    /// --tls-name); peers then need --tls-ca DIR/ca.pem
    #[arg(long, value_name = "DIR")]
    pub tls: Option<std::path::PathBuf>,
    /// Which certificate in the --tls DIR is the tracker's
    #[arg(long, default_value = "tracker", value_name = "NAME", requires = "tls")]
    pub tls_name: String,
}

impl crate::tool::Run for TrackerArgs {
    fn run(self) -> Outcome {
        crate::cli::block_on_threads(tracker(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

/// One announced file, as the tracker keeps it (hashes inline, not the
/// message's buffers).
#[derive(Debug, PartialEq, Eq)]
struct TrackedFile {
    name: String,
    size: u64,
    hash: Hash,
    piece_size: u64,
    pieces: Box<[Hash]>,
}

impl TrackedFile {
    fn entry(&self, with_pieces: bool) -> pb::FileEntry {
        pb::FileEntry {
            name: self.name.clone(),
            size: self.size,
            hash: bytes::Bytes::copy_from_slice(&self.hash),
            piece_size: self.piece_size,
            pieces: if with_pieces {
                self.pieces
                    .iter()
                    .map(|p| bytes::Bytes::copy_from_slice(p))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

type Files = Arc<BTreeMap<String, Arc<TrackedFile>>>;

/// A listed peer.
struct PeerRec {
    name: String,
    token: Token,
    files: Files,
    /// A digest of the list, to tell a new list from a heartbeat without
    /// comparing lists under the lock.
    list: Hash,
    /// Bytes counted for it in the budget.
    bytes: usize,
    seen: Instant,
    /// When this (address, token) was verified: older records come first
    /// in replies.
    since: Instant,
}

#[derive(Default)]
struct Inner {
    peers: HashMap<SocketAddr, PeerRec>,
    bytes: usize,
}

impl Inner {
    /// Would a record of `bytes` for `addr` fit the limits? (Checked before
    /// the call back, and again when the record goes in.)
    fn room(&self, addr: &SocketAddr, name: &str, bytes: usize) -> Result<(), Status> {
        let old = self.peers.get(addr);
        if old.is_none() && self.peers.len() >= MAX_PEERS {
            return Err(Status::resource_exhausted(format!(
                "{}: the tracker lists {MAX_PEERS} peers already, its most (MAX_PEERS); try again once one is forgotten",
                shown(name)
            )));
        }
        let after = self.bytes - old.map_or(0, |p| p.bytes) + bytes;
        if after > MAX_TRACKED_BYTES {
            return Err(Status::resource_exhausted(format!(
                "{}: this list needs {bytes} bytes at the tracker, which holds {} of its {MAX_TRACKED_BYTES} bytes (MAX_TRACKED_BYTES) already; the list is not taken",
                shown(name),
                self.bytes
            )));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct TrackerState {
    inner: Arc<Mutex<Inner>>,
    verifying: Arc<Semaphore>,
}

impl Default for TrackerState {
    fn default() -> Self {
        TrackerState {
            inner: Arc::default(),
            verifying: Arc::new(Semaphore::new(MAX_VERIFYING)),
        }
    }
}

/// Checks one announced file: a plain name, a 32-byte hash, a piece size
/// BLAKE3's tree allows, one value per piece, and values that combine into
/// the hash (so a holder's list cannot disagree with its own hash).
pub fn check_entry(f: &pb::FileEntry) -> Result<Hash, String> {
    checked_entry(f).map(|(h, _)| h)
}

/// The same, with the piece values.
fn checked_entry(f: &pb::FileEntry) -> Result<(Hash, Vec<Hash>), String> {
    check_name(&f.name)?;
    let name = &f.name;
    let hash: Hash = f
        .hash
        .as_ref()
        .try_into()
        .map_err(|_| format!("{name}: the hash is {} bytes, not 32", f.hash.len()))?;
    if !hash::valid_piece_size(f.piece_size) {
        return Err(format!(
            "{name}: piece size {} is not a power of two in 1 KiB..16 MiB",
            f.piece_size
        ));
    }
    let want = hash::piece_count(f.size, f.piece_size);
    if f.pieces.len() as u64 != want {
        return Err(format!(
            "{name}: {} piece hashes for {want} pieces",
            f.pieces.len()
        ));
    }
    let pieces: Vec<Hash> = f
        .pieces
        .iter()
        .map(|p| p.as_ref().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{name}: a piece hash is not 32 bytes"))?;
    if hash::combine(&pieces, f.piece_size, f.size) != Some(hash) {
        return Err(format!("{name}: its piece hashes do not make its hash"));
    }
    Ok((hash, pieces))
}

/// The address a peer is listed at: the one it announced, whose IP must be
/// the IP its announce came from (an unspecified IP, 0.0.0.0 or ::, stands
/// for it). So the tracker never calls out to, nor lists, an address the
/// announcer does not own.
pub fn listed_addr(announced: SocketAddr, source: Option<IpAddr>) -> Result<SocketAddr, String> {
    let Some(src) = source.map(|s| s.to_canonical()) else {
        return Err("the tracker cannot see which address this announce comes from".into());
    };
    if announced.port() == 0 {
        return Err(format!("{announced}: port 0 is not an address to serve on"));
    }
    let ip = announced.ip().to_canonical();
    if ip.is_unspecified() {
        return Ok(SocketAddr::new(src, announced.port()));
    }
    if ip != src {
        return Err(format!(
            "the announce names {announced}, but it comes from {src}: a peer announces only an address on its own IP ({src}:PORT, or 0.0.0.0:PORT for it)"
        ));
    }
    Ok(SocketAddr::new(ip, announced.port()))
}

/// Checks every entry and copies it out of the message, with the bytes it
/// will cost and a digest of the list.
fn take_files(peer: &str, files: &[pb::FileEntry]) -> Result<(Files, usize, Hash), Status> {
    let peer = shown(peer);
    if files.len() > MAX_FILES_PER_PEER {
        return Err(Status::resource_exhausted(format!(
            "{peer}: {} files; a peer may announce at most {MAX_FILES_PER_PEER} (MAX_FILES_PER_PEER)",
            files.len()
        )));
    }
    let mut out = BTreeMap::new();
    let mut bytes = 0usize;
    let mut digest = blake3::Hasher::new();
    for f in files {
        if f.pieces.len() > MAX_PIECES_PER_FILE {
            return Err(Status::resource_exhausted(format!(
                "{peer}: {} has {} pieces; the most is {MAX_PIECES_PER_FILE} per file (MAX_PIECES_PER_FILE)",
                shown(&f.name),
                f.pieces.len()
            )));
        }
        let (hash, pieces) =
            checked_entry(f).map_err(|e| Status::invalid_argument(format!("{peer}: {e}")))?;
        if out.contains_key(&f.name) {
            return Err(Status::invalid_argument(format!(
                "{peer}: {} is listed twice",
                shown(&f.name)
            )));
        }
        bytes += FILE_OVERHEAD + 2 * f.name.len() + 32 * (1 + pieces.len());
        digest.update(&(f.name.len() as u64).to_le_bytes());
        digest.update(f.name.as_bytes());
        digest.update(&f.size.to_le_bytes());
        digest.update(&f.piece_size.to_le_bytes());
        digest.update(&hash);
        out.insert(
            f.name.clone(),
            Arc::new(TrackedFile {
                name: f.name.clone(),
                size: f.size,
                hash,
                piece_size: f.piece_size,
                pieces: pieces.into_boxed_slice(),
            }),
        );
    }
    Ok((Arc::new(out), bytes, *digest.finalize().as_bytes()))
}

/// Calls `listed` back: does the peer there know `token`?
async fn verify(
    listed: SocketAddr,
    name: &str,
    announced: &str,
    token: &Token,
) -> Result<(), Status> {
    let nonce = proof::random16().map_err(Status::internal)?;
    let who = shown(name);
    let call = async {
        let mut c = client::prover(&listed.to_string()).await?;
        c.prove(pb::ProveRequest {
            nonce: bytes::Bytes::copy_from_slice(&nonce),
        })
        .await
        .map_err(|s| client::status_text(&s))
    };
    let reply = match tokio::time::timeout(VERIFY_TIMEOUT, call).await {
        Err(_) => {
            return Err(Status::failed_precondition(format!(
                "the tracker called back {listed} and it did not answer within {} s: is {who} serving there?",
                VERIFY_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => {
            return Err(Status::failed_precondition(format!(
                "the tracker called back {listed} and it did not answer ({e}): is {who} serving there?"
            )));
        }
        Ok(Ok(r)) => r.into_inner(),
    };
    let expected = proof::prove(token, &nonce, name, announced);
    if reply.name != name || !proof::matches(&expected, &reply.proof) {
        return Err(Status::permission_denied(format!(
            "the tracker called back {listed} and it did not answer as peer {who} (it answered as {}, without the announce's token): a peer announces only the address it serves on",
            shown(&reply.name)
        )));
    }
    Ok(())
}

fn names(files: &Files) -> String {
    if files.is_empty() {
        return "no files".into();
    }
    let shown_names: Vec<String> = files.keys().take(8).map(|n| shown(n)).collect();
    let more = files.len().saturating_sub(shown_names.len());
    let mut s = shown_names.join(", ");
    if more > 0 {
        s.push_str(&format!(", and {more} more"));
    }
    format!("{} ({s})", plural(files.len(), "file"))
}

fn source_ip<T>(req: &Request<T>) -> Option<IpAddr> {
    ConnInfo::of(req.extensions())
        .and_then(|c| c.remote)
        .or_else(|| req.remote_addr())
        .map(|a| a.ip())
}

#[tonic::async_trait]
impl Tracker for TrackerState {
    async fn announce(
        &self,
        req: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceReply>, Status> {
        let source = source_ip(&req);
        let a = req.into_inner();
        check_peer_name(&a.name).map_err(Status::invalid_argument)?;
        let who = shown(&a.name);
        let announced: SocketAddr = a.addr.parse().map_err(|_| {
            Status::invalid_argument(format!(
                "{who}: {:?} is not an ip:port address to serve on",
                shown(&a.addr)
            ))
        })?;
        let listed = listed_addr(announced, source)
            .map_err(|e| Status::permission_denied(format!("{who}: {e}")))?;
        let (files, file_bytes, list) = take_files(&a.name, &a.files)?;
        let token: Token = a.token.as_ref().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "{who}: the announce's token is {} bytes, not 16 (is this peer older than the tracker?)",
                a.token.len()
            ))
        })?;
        let bytes = RECORD_OVERHEAD + a.name.len() + file_bytes;
        let verified = {
            let inner = self
                .inner
                .lock()
                .map_err(|_| Status::internal("tracker state"))?;
            inner.room(&listed, &a.name, bytes)?;
            inner.peers.get(&listed).is_some_and(|p| p.token == token)
        };
        if !verified {
            let _permit = self.verifying.try_acquire().map_err(|_| {
                Status::resource_exhausted(format!(
                    "{who}: the tracker is checking {MAX_VERIFYING} peers already (MAX_VERIFYING): try again"
                ))
            })?;
            verify(listed, &a.name, &a.addr, &token).await?;
        }
        let now = Instant::now();
        let (said, count) = {
            let mut inner = self
                .inner
                .lock()
                .map_err(|_| Status::internal("tracker state"))?;
            inner.room(&listed, &a.name, bytes)?;
            let said = match inner.peers.get(&listed) {
                None => Some("registered"),
                Some(old) if old.token != token => Some("restarted (a new token, checked)"),
                Some(old) if old.list != list || old.name != a.name => Some("sent a new list"),
                Some(_) => None,
            };
            let since = match inner.peers.get(&listed) {
                Some(old) if old.token == token => old.since,
                _ => now,
            };
            let old = inner.peers.insert(
                listed,
                PeerRec {
                    name: a.name.clone(),
                    token,
                    files: files.clone(),
                    list,
                    bytes,
                    seen: now,
                    since,
                },
            );
            inner.bytes = inner.bytes - old.map_or(0, |p| p.bytes) + bytes;
            (said, inner.peers.len())
        };
        if let Some(said) = said {
            println!("{who} at {listed} {said}: {}", names(&files));
        }
        Ok(Response::new(pb::AnnounceReply {
            peers: count as u32,
        }))
    }

    async fn find(&self, req: Request<pb::FindRequest>) -> Result<Response<pb::FindReply>, Status> {
        let name = req.into_inner().name;
        check_name(&name).map_err(Status::invalid_argument)?;
        let mut found: Vec<(SocketAddr, String, Arc<TrackedFile>, Instant, Instant)> = {
            let inner = self
                .inner
                .lock()
                .map_err(|_| Status::internal("tracker state"))?;
            inner
                .peers
                .iter()
                .filter_map(|(addr, p)| {
                    p.files
                        .get(&name)
                        .map(|f| (*addr, p.name.clone(), f.clone(), p.seen, p.since))
                })
                .collect()
        };
        found.sort_by(|a, b| a.4.cmp(&b.4).then(a.0.cmp(&b.0)));
        let mut holders = Vec::new();
        let mut with_pieces: Vec<(Hash, u64, u64)> = Vec::new();
        let mut size = 0usize;
        let mut left_out = 0u32;
        for (addr, peer, f, seen, _) in found {
            let key = (f.hash, f.size, f.piece_size);
            let first = !with_pieces.contains(&key);
            let cost =
                128 + peer.len() + f.name.len() + if first { 32 * f.pieces.len() } else { 0 };
            if size + cost > MAX_REPLY {
                left_out += 1;
                continue;
            }
            size += cost;
            if first {
                with_pieces.push(key);
            }
            holders.push(pb::Holder {
                peer,
                addr: addr.to_string(),
                file: Some(f.entry(first)),
                last_seen_ms: seen.elapsed().as_millis() as u64,
            });
        }
        Ok(Response::new(pb::FindReply { holders, left_out }))
    }

    async fn peers(
        &self,
        _: Request<pb::PeersRequest>,
    ) -> Result<Response<pb::PeersReply>, Status> {
        let mut all: Vec<(SocketAddr, String, Files, Instant)> = {
            let inner = self
                .inner
                .lock()
                .map_err(|_| Status::internal("tracker state"))?;
            inner
                .peers
                .iter()
                .map(|(addr, p)| (*addr, p.name.clone(), p.files.clone(), p.seen))
                .collect()
        };
        all.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut size = 0usize;
        let mut names_left_out = 0u64;
        let list = all
            .into_iter()
            .map(|(addr, name, files, seen)| {
                size += 128 + name.len();
                let mut listed = Vec::new();
                for f in files.keys() {
                    if size + 8 + f.len() > MAX_REPLY {
                        names_left_out += 1;
                        continue;
                    }
                    size += 8 + f.len();
                    listed.push(f.clone());
                }
                pb::PeerSummary {
                    name,
                    addr: addr.to_string(),
                    files: listed,
                    last_seen_ms: seen.elapsed().as_millis() as u64,
                }
            })
            .collect();
        Ok(Response::new(pb::PeersReply {
            peers: list,
            names_left_out,
        }))
    }
}

impl TrackerState {
    /// Forgets peers not heard from for `after`; returns what it forgot.
    fn expire(&self, after: Duration) -> Vec<(String, SocketAddr)> {
        let Ok(mut inner) = self.inner.lock() else {
            return Vec::new();
        };
        let gone: Vec<SocketAddr> = inner
            .peers
            .iter()
            .filter(|(_, p)| p.seen.elapsed() > after)
            .map(|(a, _)| *a)
            .collect();
        let mut out = Vec::new();
        for a in gone {
            if let Some(p) = inner.peers.remove(&a) {
                inner.bytes -= p.bytes;
                out.push((p.name, a));
            }
        }
        out
    }
}

async fn tracker(a: TrackerArgs) -> Result<(), CliError> {
    let tls = crate::net::tls::Tls::from_flag(a.tls.as_deref(), &a.tls_name)?;
    if tls.is_none() && !a.listen.ip().is_loopback() {
        eprintln!(
            "warning: the tracker listens on {} without --tls: anyone on that network can read and change what peers and it say",
            a.listen
        );
    }
    let listener = crate::cli::listen(
        a.listen,
        "",
        "is a tracker running already? --listen picks another address",
    )
    .await?;
    let state = TrackerState::default();
    let (stop_tx, stop) = watch::channel(false);
    let over = tls.as_ref().map_or(String::new(), |t| {
        format!(" over TLS ({})", t.dir.display())
    });
    let server = tokio::spawn(serve(listener, state.clone(), tls, stop.clone()));
    println!(
        "tracker on {}{over}: peers register with --tracker {}; a peer silent for {} is forgotten. Ctrl-C stops it.",
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
                let gone = state.expire(after);
                // Thousands at once (a flood expiring): one line for the rest.
                for (name, addr) in gone.iter().take(20) {
                    println!(
                        "{} at {addr} forgotten: not heard from for {}",
                        shown(name),
                        humantime::format_duration(after)
                    );
                }
                if gone.len() > 20 {
                    println!("and {} more peers forgotten", gone.len() - 20);
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

/// Serves the tracker on `listener` (over TLS with `tls` when given) until
/// `stop`.
pub async fn serve(
    listener: TcpListener,
    state: TrackerState,
    tls: Option<crate::net::tls::Tls>,
    stop: watch::Receiver<bool>,
) {
    use crate::net::listener::{Policy, SERVER_IDLE, grpc_server_tls, guarded};
    let server = match grpc_server_tls(tls.as_ref()) {
        Ok(s) => s
            .initial_connection_window_size(WINDOW)
            .initial_stream_window_size(WINDOW),
        Err(e) => {
            tracing::warn!(error = %e, "tracker not started");
            return;
        }
    };
    let incoming = guarded(listener, 1024, Policy::server(SERVER_IDLE), stop.clone());
    let mut stop = stop;
    let svc = TrackerServer::new(state)
        .max_decoding_message_size(MAX_ANNOUNCE)
        .max_encoding_message_size(MAX_MESSAGE);
    let server = server
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CALLS_AT_ONCE,
        ))
        .add_service(svc)
        .serve_with_incoming(incoming);
    tokio::select! {
        r = server => if let Err(e) = r {
            tracing::warn!(error = %e, "tracker server stopped");
        },
        _ = crate::net::grpc::stopped(&mut stop) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }
    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn a_peer_is_listed_only_on_the_ip_it_announces_from() {
        assert_eq!(
            listed_addr(sa("127.0.0.1:7301"), ip("127.0.0.1")),
            Ok(sa("127.0.0.1:7301"))
        );
        // 0.0.0.0 and :: stand for the source.
        assert_eq!(
            listed_addr(sa("0.0.0.0:7301"), ip("10.1.2.3")),
            Ok(sa("10.1.2.3:7301"))
        );
        assert_eq!(
            listed_addr(sa("[::]:7301"), ip("127.0.0.1")),
            Ok(sa("127.0.0.1:7301"))
        );
        // An IPv4 client seen on an IPv6 socket is the same IP.
        assert_eq!(
            listed_addr(sa("127.0.0.1:7301"), ip("::ffff:127.0.0.1")),
            Ok(sa("127.0.0.1:7301"))
        );
        let e = listed_addr(sa("127.0.0.2:7301"), ip("127.0.0.1")).expect_err("not its ip");
        assert!(
            e.contains("127.0.0.2:7301") && e.contains("comes from 127.0.0.1"),
            "{e}"
        );
        assert!(listed_addr(sa("127.0.0.1:0"), ip("127.0.0.1")).is_err());
        assert!(listed_addr(sa("127.0.0.1:7301"), None).is_err());
    }

    fn entry(name: &str, pieces: usize) -> pb::FileEntry {
        let ps = 1024u64;
        let values: Vec<Hash> = (0..pieces).map(|i| [i as u8; 32]).collect();
        let size = ps * pieces as u64;
        let hash = hash::combine(&values, ps, size).expect("combine");
        pb::FileEntry {
            name: name.into(),
            size,
            hash: bytes::Bytes::copy_from_slice(&hash),
            piece_size: ps,
            pieces: values
                .iter()
                .map(|v| bytes::Bytes::copy_from_slice(v))
                .collect(),
        }
    }

    #[test]
    fn lists_are_bounded_checked_and_counted() {
        let (files, bytes, _) = take_files("p", &[entry("a", 3), entry("b", 1)]).expect("ok");
        assert_eq!(files.len(), 2);
        assert_eq!(bytes, 2 * FILE_OVERHEAD + 4 + 32 * 6);
        let many: Vec<pb::FileEntry> = (0..=MAX_FILES_PER_PEER)
            .map(|i| entry(&format!("f{i}"), 0))
            .collect();
        let e = take_files("p", &many).expect_err("too many files");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("MAX_FILES_PER_PEER"), "{e:?}");
        let e = take_files("p", &[entry("a", 1), entry("a", 1)]).expect_err("twice");
        assert!(e.message().contains("listed twice"), "{e:?}");
        let e = take_files("p", &[entry("a\u{202e}b", 1)]).expect_err("a bidi name");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("\\u{202e}"), "{e:?}");
    }

    #[test]
    fn the_budget_refuses_a_new_list_and_keeps_what_is_tracked() {
        let mut inner = Inner::default();
        let a = sa("127.0.0.1:1");
        inner
            .room(&a, "p", MAX_TRACKED_BYTES)
            .expect("fits exactly");
        inner.bytes = MAX_TRACKED_BYTES - 10;
        let e = inner.room(&a, "p", 11).expect_err("over budget");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("MAX_TRACKED_BYTES"), "{e:?}");
        inner.room(&a, "p", 10).expect("within budget");
    }
}
