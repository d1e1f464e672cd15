//! `dsys share peer DIR`: shares DIR, serves it to other peers the whole
//! time, keeps the tracker told (a heartbeat with the whole list), and
//! takes the original's commands at its prompt.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::HumanBytes;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::client;
use super::download::{self, Ctx, Want};
use super::files::{Library, ScanReport};
use super::hash;
use super::latency::Latencies;
use super::names::{check_name, check_peer_name, shown};
use super::serve::{self, Serving};
use super::tracker::{DEFAULT_TRACKER, MAX_ANNOUNCE};
use super::versions;
use super::{pb, plural};
use crate::cli::{CliError, Outcome, block_on_threads};
use crate::ui::commands::Commands;
use crate::ui::input::Stdin;

#[derive(Args, Debug)]
#[command(
    after_help = "Commands at the prompt: updatelist, getload PEER, find [FILE], \
download FILE [--hash PREFIX] [--overwrite], files, status, help, exit.\n\n\
The peer registers with the tracker on start and re-sends its list every --heartbeat; \
if the tracker is not up yet it keeps trying. Downloads go to DIR, through \
DIR/.dsys-share/partial/ (a stopped download resumes); nothing outside DIR is \
ever read or written."
)]
pub struct PeerArgs {
    /// The directory to share (and to download into)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to serve the directory on (port 0: the port it had last time if
    /// free, else any free port)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The tracker's address
    #[arg(long, default_value = DEFAULT_TRACKER, value_name = "ADDR")]
    pub tracker: String,
    /// Talk to the tracker over TLS, trusting its certificate if this CA
    /// (ca.pem from `dsys certs init`) signed it
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The name the tracker's certificate must carry [default: the host of --tracker]
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_name: Option<String>,
    /// This peer's name (default: the directory's name)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Delays between peers, `PEER PEER MS` per line (100 ms for pairs not listed);
    /// without it, the measured round trip is the latency
    #[arg(long, value_name = "FILE")]
    pub latency_file: Option<PathBuf>,
    /// How often the list is re-sent to the tracker
    #[arg(long, default_value = "3s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub heartbeat: Duration,
    /// Download from at most this many peers at once
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub sources: u16,
    /// Let downloads replace a different file of the same name
    #[arg(long)]
    pub overwrite: bool,
    /// Share regular files that have other names too (hard links); off, they
    /// are not shared, as such a file may be one outside DIR
    #[arg(long)]
    pub follow_hardlinks: bool,
    /// Serve at most this many bytes per second in all (e.g. 2MiB, 500K)
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    pub upload_limit: Option<u64>,
    /// Lines only: no progress bar
    #[arg(long)]
    pub plain: bool,
    /// For tests: flip a byte in every piece this peer serves
    #[arg(long)]
    pub corrupt_uploads: bool,
}

/// `2MiB`, `500K`, `10MB`, `1048576`: bytes (per second).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches("/s");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 2MiB or 500K"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1048576.0,
        "g" | "gb" => 1e9,
        "gib" => 1073741824.0,
        u => return Err(format!("{u:?} is not a unit (B, K, KiB, M, MiB, G, GiB)")),
    };
    let v = n * mult;
    if !(1.0..=1e13).contains(&v) {
        return Err(format!("{s:?}: between 1 byte and 10 TB per second"));
    }
    Ok(v as u64)
}

impl crate::tool::Run for PeerArgs {
    fn run(self) -> Outcome {
        block_on_threads(peer(self))??;
        Ok(crate::cli::Ended::Passed)
    }
}

/// What the peer knows of its tracker, for `status`.
#[derive(Default)]
struct TrackerLink {
    last_ok: Option<Instant>,
    error: Option<String>,
    peers: u32,
}

#[derive(Debug)]
enum Cmd {
    UpdateList,
    GetLoad(String),
    Find(Option<String>),
    Download(Want),
    Files,
    Status,
}

fn commands() -> Commands<Cmd> {
    Commands::new()
        .quit_help("stop this peer (also `exit`, Ctrl-D, Ctrl-C)")
        .simple(
            "updatelist",
            "scan the directory and send its file list to the tracker",
            || Cmd::UpdateList,
        )
        .with(
            "getload",
            "PEER",
            "ask a peer (name or host:port) how many transfers it serves",
            |r| {
                if r.is_empty() {
                    Err("which peer? (a name from `find`, or host:port)".into())
                } else {
                    Ok(Cmd::GetLoad(r.to_string()))
                }
            },
        )
        .with(
            "find",
            "[FILE]",
            "who has FILE, with its size and hash (alone: every file)",
            |r| Ok(Cmd::Find((!r.is_empty()).then(|| r.to_string()))),
        )
        .with(
            "download",
            "FILE [--hash PREFIX] [--overwrite]",
            "fetch FILE from the best peers, checked piece by piece; --hash picks one of its versions (`find FILE` shows them)",
            |r| parse_download(r).map(Cmd::Download),
        )
        .alias(&["get"])
        .simple("files", "the files this peer shares", || Cmd::Files)
        .simple("status", "this peer, its tracker, its load", || Cmd::Status)
}

/// `FILE [--hash PREFIX] [--overwrite]`, the options before or after the
/// name, in any order; the name is the rest, inner spaces and all.
fn parse_download(r: &str) -> Result<Want, String> {
    const USAGE: &str = "download FILE [--hash PREFIX] [--overwrite]";
    let mut rest = r.trim();
    let (mut hash, mut overwrite) = (None, false);
    loop {
        let first = rest.split_whitespace().next().unwrap_or("");
        let words: Vec<&str> = rest.split_whitespace().collect();
        let last = words.last().copied().unwrap_or("");
        let before_last = words.len().checked_sub(2).map(|i| words[i]);
        if first == "--overwrite" {
            overwrite = true;
            rest = rest["--overwrite".len()..].trim_start();
        } else if first == "--hash" {
            let after = rest["--hash".len()..].trim_start();
            let p = after
                .split_whitespace()
                .next()
                .filter(|p| !p.starts_with("--"));
            let Some(p) = p else {
                return Err(format!("--hash needs a hash prefix after it ({USAGE})"));
            };
            hash = Some(p.to_string());
            rest = after[p.len()..].trim_start();
        } else if last == "--overwrite" && words.len() > 1 {
            overwrite = true;
            rest = rest[..rest.len() - last.len()].trim_end();
        } else if before_last == Some("--hash") && words.len() > 2 {
            hash = Some(last.to_string());
            rest = rest[..rest.len() - last.len()].trim_end();
            rest = rest[..rest.len() - "--hash".len()].trim_end();
        } else if last == "--hash" {
            return Err(format!("--hash needs a hash prefix after it ({USAGE})"));
        } else if first.starts_with("--") || (words.len() > 1 && last.starts_with("--")) {
            let bad = if first.starts_with("--") { first } else { last };
            return Err(format!("unknown option {bad} ({USAGE})"));
        } else {
            break;
        }
    }
    if rest.is_empty() {
        return Err(format!("which file? (`find` lists them; {USAGE})"));
    }
    Ok(Want {
        name: rest.to_string(),
        hash,
        overwrite,
    })
}

struct Peer {
    ctx: Ctx,
    serving: Serving,
    link: Arc<Mutex<TrackerLink>>,
    overwrite: bool,
    heartbeat: Duration,
}

/// The files a scan skipped, with why. (Reasons name files escaped, as
/// `names::shown` writes them; a name is added when its reason has none.)
fn print_scan(r: &ScanReport) {
    for (name, why) in &r.skipped {
        let name = shown(name);
        println!(
            "  not shared: {why}{}",
            if why.contains(&name) {
                String::new()
            } else {
                format!(" ({name})")
            }
        );
    }
}

fn total(lib: &Library) -> u64 {
    lib.files.values().map(|f| f.size).sum()
}

async fn scan(lib: &Arc<RwLock<Library>>) -> Result<ScanReport, String> {
    let mut copy = lib.read().map_err(|_| "library")?.clone();
    let (copy, report) = tokio::task::spawn_blocking(move || {
        let mut shown = String::new();
        let r = copy.scan(|name, done, total| {
            if total >= 64 * 1024 * 1024 && shown != name && done == total {
                println!("  hashed {name} ({})", HumanBytes(total));
                shown = name.to_string();
            }
        });
        (copy, r)
    })
    .await
    .map_err(|e| e.to_string())?;
    let report = report?;
    lib.write().map_err(|_| "library")?.files = copy.files;
    Ok(report)
}

/// Why an announce did not go through.
enum NotSent {
    /// The tracker is not there (or does not answer in time).
    Down(String),
    /// The tracker answered, and refused the list (or it was too large to send).
    Refused(String),
}

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotSent::Down(e) | NotSent::Refused(e) => f.write_str(e),
        }
    }
}

async fn announce(ctx: &Ctx) -> Result<u32, NotSent> {
    let files: Vec<pb::FileEntry> = {
        let lib = ctx
            .lib
            .read()
            .map_err(|_| NotSent::Refused("library".into()))?;
        lib.files
            .values()
            .map(|s| pb::FileEntry {
                name: s.name.clone(),
                size: s.size,
                hash: bytes::Bytes::copy_from_slice(&s.hash),
                piece_size: s.piece_size,
                pieces: s
                    .pieces
                    .iter()
                    .map(|p| bytes::Bytes::copy_from_slice(p))
                    .collect(),
            })
            .collect()
    };
    let req = pb::AnnounceRequest {
        name: ctx.me.clone(),
        addr: ctx.my_addr.clone(),
        files,
        token: bytes::Bytes::copy_from_slice(&ctx.token),
    };
    let len = prost::Message::encoded_len(&req);
    if len > MAX_ANNOUNCE {
        return Err(NotSent::Refused(format!(
            "this peer's list is {len} bytes, and the tracker takes {MAX_ANNOUNCE} at most (MAX_ANNOUNCE): share fewer or smaller files"
        )));
    }
    let mut t = client::tracker(&ctx.tracker).await.map_err(NotSent::Down)?;
    let r = tokio::time::timeout(client::CALL_TIMEOUT, t.announce(req))
        .await
        .map_err(|_| NotSent::Down("no answer".to_string()))?
        .map_err(|s| match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                NotSent::Down(client::status_text(&s))
            }
            _ => NotSent::Refused(client::status_text(&s)),
        })?;
    Ok(r.into_inner().peers)
}

async fn heartbeat(ctx: Ctx, every: Duration, link: Arc<Mutex<TrackerLink>>) {
    let mut was: Option<bool> = None;
    let mut refused: Option<String> = None;
    loop {
        let r = announce(&ctx).await;
        let t = &ctx.tracker;
        // A refusal is said once per reason, not every heartbeat.
        if let Err(NotSent::Refused(e)) = &r {
            if refused.as_deref() != Some(e.as_str()) {
                println!(
                    "the tracker at {t} refuses this peer's list: {e} (trying again every {})",
                    humantime::format_duration(every)
                );
                refused = Some(e.clone());
            }
        } else if r.is_ok() && refused.take().is_some() {
            println!("the tracker at {t} takes this peer's list again");
        }
        let r = r.map_err(|e| match e {
            NotSent::Down(e) => e,
            NotSent::Refused(e) => format!("refused: {e}"),
        });
        match (&r, was) {
            (Ok(n), None) => println!(
                "registered with the tracker at {t} ({} known)",
                plural(*n as usize, "peer")
            ),
            (Ok(n), Some(false)) => println!(
                "the tracker at {t} answers again: list sent ({} known)",
                plural(*n as usize, "peer")
            ),
            (Err(e), None) if refused.is_none() => println!(
                "the tracker at {t} does not answer ({e}): waiting for it, trying every {}",
                humantime::format_duration(every)
            ),
            (Err(e), Some(true)) if refused.is_none() => println!(
                "lost the tracker at {t} ({e}): trying every {}",
                humantime::format_duration(every)
            ),
            _ => {}
        }
        was = Some(r.is_ok());
        if let Ok(mut l) = link.lock() {
            match r {
                Ok(n) => {
                    l.last_ok = Some(Instant::now());
                    l.error = None;
                    l.peers = n;
                }
                Err(e) => l.error = Some(e),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = ctx.announce.notified() => {}
        }
    }
}

async fn peer(a: PeerArgs) -> Result<(), CliError> {
    if let Some(f) = &a.tls_ca {
        let ca = crate::net::tls::TrustCa::load(f).map_err(|e| CliError::Usage(e.to_string()))?;
        let name = a
            .tls_name
            .clone()
            .unwrap_or_else(|| crate::net::tls::host_of(&a.tracker).to_string());
        super::client::use_tracker_tls(&ca, &name);
    }
    let mut lib = Library::open(&a.dir).map_err(CliError::Usage)?;
    lib.follow_hardlinks = a.follow_hardlinks;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => std::fs::canonicalize(&a.dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "peer".into()),
    };
    check_peer_name(&name).map_err(|e| {
        CliError::Usage(format!(
            "{e}{}",
            if a.name.is_none() {
                " (it is the directory's name: --name gives another)"
            } else {
                ""
            }
        ))
    })?;
    let token = super::proof::random16().map_err(CliError::Failed)?;
    let latency = match &a.latency_file {
        Some(p) => Some(Arc::new(Latencies::load(p).map_err(CliError::Usage)?)),
        None => None,
    };
    // With no port asked for, a peer takes the one it had last time (if
    // free), so a restarted peer keeps its address at the tracker.
    let port_file = a.dir.join(super::files::STATE_DIR).join("port");
    let last = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|_| a.listen.port() == 0);
    let again = match last {
        Some(p) => TcpListener::bind(SocketAddr::new(a.listen.ip(), p))
            .await
            .ok(),
        None => None,
    };
    let listener = match again {
        Some(l) => l,
        None => {
            crate::cli::listen(
                a.listen,
                "",
                "is another peer using it? --listen 127.0.0.1:0 picks a free port",
            )
            .await?
        }
    };
    let my_addr = listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?
        .to_string();
    if let Some(port) = my_addr.rsplit(':').next() {
        let _ = std::fs::write(&port_file, port);
    }
    let lib = Arc::new(RwLock::new(lib));
    let report = scan(&lib).await.map_err(CliError::Usage)?;
    let (count, bytes) = {
        let l = lib.read().map_err(|_| CliError::Failed("library".into()))?;
        (l.files.len(), total(&l))
    };
    println!(
        "{name}: sharing {} ({}) from {} on {my_addr}; tracker {}",
        plural(count, "file"),
        HumanBytes(bytes),
        a.dir.display(),
        a.tracker
    );
    print_scan(&report);
    let serving = Serving::new(
        name.clone(),
        lib.clone(),
        a.upload_limit,
        a.corrupt_uploads,
        (token, my_addr.clone()),
    );
    if a.corrupt_uploads {
        println!("(--corrupt-uploads: every piece this peer serves has a byte flipped)");
    }
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(serve::serve(listener, serving.clone(), stop));
    let ctx = Ctx {
        me: name,
        my_addr,
        lib,
        tracker: a.tracker.clone(),
        latency,
        max_sources: usize::from(a.sources),
        plain: a.plain,
        announce: Arc::new(Notify::new()),
        token,
    };
    let link = Arc::new(Mutex::new(TrackerLink::default()));
    let hb = tokio::spawn(heartbeat(ctx.clone(), a.heartbeat, link.clone()));
    let p = Peer {
        ctx,
        serving,
        link,
        overwrite: a.overwrite,
        heartbeat: a.heartbeat,
    };
    let mut input = Stdin::start();
    let table = commands();
    if input.tty {
        println!("commands: {} (`help` explains them)", table.names());
    }
    let _ended =
        crate::ui::shell::command_loop(&mut input, &table, async |cmd| p.run(cmd).await).await;
    hb.abort();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    println!("{} stopped", p.ctx.me);
    Ok(())
}

impl Peer {
    async fn run(&self, cmd: Cmd) {
        match cmd {
            Cmd::UpdateList => self.update_list().await,
            Cmd::GetLoad(who) => self.get_load(&who).await,
            Cmd::Find(None) => self.find_all().await,
            Cmd::Find(Some(name)) => self.find(&name).await,
            Cmd::Download(mut want) => {
                want.overwrite |= self.overwrite;
                if let Err(e) = download::download(&self.ctx, &want).await {
                    println!("download {}: {e}", want.name);
                }
            }
            Cmd::Files => self.files(),
            Cmd::Status => self.status(),
        }
    }

    async fn update_list(&self) {
        let report = match scan(&self.ctx.lib).await {
            Ok(r) => r,
            Err(e) => {
                println!("updatelist: {e}");
                return;
            }
        };
        let (count, bytes) = match self.ctx.lib.read() {
            Ok(l) => (l.files.len(), total(&l)),
            Err(_) => (0, 0),
        };
        let mut changes = Vec::new();
        for (what, list) in [
            ("new", &report.added),
            ("changed", &report.changed),
            ("gone", &report.removed),
        ] {
            if !list.is_empty() {
                changes.push(format!("{what}: {}", list.join(", ")));
            }
        }
        let changes = if changes.is_empty() {
            "no change".to_string()
        } else {
            changes.join("; ")
        };
        match announce(&self.ctx).await {
            Err(NotSent::Refused(e)) => println!(
                "updatelist: {} scanned ({changes}), but the tracker at {} refuses the list: {e}",
                plural(count, "file"),
                self.ctx.tracker
            ),
            Ok(n) => {
                if let Ok(mut l) = self.link.lock() {
                    l.last_ok = Some(Instant::now());
                    l.error = None;
                    l.peers = n;
                }
                println!(
                    "updatelist: {} ({}) sent to the tracker ({changes})",
                    plural(count, "file"),
                    HumanBytes(bytes)
                )
            }
            Err(NotSent::Down(e)) => println!(
                "updatelist: {} scanned ({changes}), but the tracker at {} does not answer ({e}); the next heartbeat sends the list",
                plural(count, "file"),
                self.ctx.tracker
            ),
        }
        print_scan(&report);
    }

    async fn resolve(&self, who: &str) -> Result<(String, String), String> {
        if who.parse::<SocketAddr>().is_ok() {
            return Ok((who.to_string(), who.to_string()));
        }
        if who == self.ctx.me {
            return Ok((who.to_string(), self.ctx.my_addr.clone()));
        }
        let peers = client::peers(&self.ctx.tracker)
            .await
            .map_err(|e| {
                format!(
                    "cannot ask the tracker at {} for {}'s address: {e}",
                    self.ctx.tracker,
                    shown(who)
                )
            })?
            .peers;
        peers
            .iter()
            .find(|p| p.name == who)
            .map(|p| (p.name.clone(), p.addr.clone()))
            .ok_or_else(|| {
                let names: Vec<String> = peers.iter().take(50).map(|p| shown(&p.name)).collect();
                format!(
                    "the tracker knows no peer \"{}\" (it knows: {})",
                    shown(who),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            })
    }

    async fn get_load(&self, who: &str) {
        let (name, addr) = match self.resolve(who).await {
            Ok(x) => x,
            Err(e) => {
                println!("getload: {e}");
                return;
            }
        };
        let r = async {
            let mut c = client::peer(&addr).await?;
            client::load(&mut c).await
        }
        .await;
        match r {
            Ok((load, real, rtt)) => println!(
                "load of {} at {}: {load} (transfers it serves now); round trip {:.2} ms",
                shown(if real.is_empty() { &name } else { &real }),
                shown(&addr),
                rtt.as_secs_f64() * 1000.0
            ),
            Err(e) => println!(
                "getload: {} at {} does not answer ({e})",
                shown(&name),
                shown(&addr)
            ),
        }
    }

    async fn find(&self, name: &str) {
        if let Err(e) = check_name(name) {
            println!("find: {e}");
            return;
        }
        let (h, left_out) = match client::find(&self.ctx.tracker, name).await {
            Err(e) => {
                println!(
                    "find: the tracker at {} does not answer ({e})",
                    self.ctx.tracker
                );
                return;
            }
            Ok(x) => x,
        };
        if h.is_empty() {
            println!("find {name}: no peer has it");
            return;
        }
        let (versions, problems) = versions::group(h);
        let holders: usize = versions.iter().map(|v| v.holders.len()).sum();
        let have = if holders == 1 {
            "1 peer has it".to_string()
        } else {
            format!("{holders} peers have it")
        };
        let line = |x: &pb::Holder, v: &versions::Version| {
            format!(
                "{} at {}: {} ({} bytes), blake3 {}, seen {:.1} s ago{}",
                shown(&x.peer),
                shown(&x.addr),
                HumanBytes(v.entry.size),
                v.entry.size,
                hash::hex(&v.hash),
                x.last_seen_ms as f64 / 1000.0,
                if x.addr == self.ctx.my_addr {
                    "  (this peer)"
                } else {
                    ""
                }
            )
        };
        if versions.len() <= 1 {
            println!("find {name}: {have}");
            for v in &versions {
                for x in &v.holders {
                    println!("  {}", line(x, v));
                }
            }
        } else {
            println!(
                "find {name}: {have}, in {} versions (a version is not right because more peers list it: `download {name} --hash PREFIX` takes the one you choose)",
                versions.len()
            );
            for v in &versions {
                println!(
                    "  version {}, {}:",
                    v.title(),
                    plural(v.holders.len(), "holder")
                );
                for x in &v.holders {
                    println!("    {}", line(x, v));
                }
            }
        }
        for p in problems {
            println!("  {p}");
        }
        if left_out > 0 {
            println!(
                "  (and {} the tracker left out to keep its answer small)",
                plural(left_out as usize, "holder")
            );
        }
    }

    async fn find_all(&self) {
        match client::peers(&self.ctx.tracker).await {
            Err(e) => println!(
                "find: the tracker at {} does not answer ({e})",
                self.ctx.tracker
            ),
            Ok(reply) => {
                let peers = reply.peers;
                let mut by: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
                for p in &peers {
                    for f in &p.files {
                        by.entry(f).or_default().push(shown(&p.name));
                    }
                }
                if by.is_empty() {
                    println!(
                        "find: no files on the network ({})",
                        plural(peers.len(), "peer")
                    );
                }
                for (f, who) in by {
                    println!("  {}: {}", shown(f), who.join(", "));
                }
                if reply.names_left_out > 0 {
                    println!(
                        "  (and {} names the tracker left out to keep its answer small)",
                        reply.names_left_out
                    );
                }
            }
        }
    }

    fn files(&self) {
        let Ok(lib) = self.ctx.lib.read() else { return };
        println!(
            "{} ({}) shared from {}",
            plural(lib.files.len(), "file"),
            HumanBytes(total(&lib)),
            lib.dir.display()
        );
        for f in lib.files.values() {
            println!(
                "  {}  {}  blake3 {}",
                f.name,
                HumanBytes(f.size),
                hash::short(&f.hash)
            );
        }
    }

    fn status(&self) {
        let (files, bytes, dir) = match self.ctx.lib.read() {
            Ok(l) => (l.files.len(), total(&l), l.dir.display().to_string()),
            Err(_) => return,
        };
        println!(
            "{} at {}: {} ({}) from {dir}; serving {} now",
            self.ctx.me,
            self.ctx.my_addr,
            plural(files, "file"),
            HumanBytes(bytes),
            plural(self.serving.load.now() as usize, "transfer")
        );
        if let Ok(l) = self.link.lock() {
            match (&l.error, l.last_ok) {
                (None, Some(t)) => println!(
                    "tracker {}: up, {} known, list sent {:.1} s ago (every {})",
                    self.ctx.tracker,
                    plural(l.peers as usize, "peer"),
                    t.elapsed().as_secs_f64(),
                    humantime::format_duration(self.heartbeat)
                ),
                (Some(e), _) => println!("tracker {}: not answering ({e})", self.ctx.tracker),
                (None, None) => println!("tracker {}: not reached yet", self.ctx.tracker),
            }
        }
        let partial = self
            .ctx
            .lib
            .read()
            .ok()
            .map(|l| l.state_dir().join("partial"))
            .and_then(|d| std::fs::read_dir(d).ok());
        if let Some(entries) = partial {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(name) = n.strip_suffix(".json")
                    && let Ok(b) = std::fs::read(e.path())
                    && let Ok(p) = serde_json::from_slice::<super::partial::Partial>(&b)
                {
                    // A file name from disk: escaped like any other.
                    let name = shown(name);
                    println!(
                        "partial download: {name}, {} of {} pieces (`download {name}` resumes)",
                        p.count_done(),
                        p.done.len()
                    );
                }
            }
        }
        if self.overwrite {
            println!("downloads may replace files (--overwrite)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_rate("2MiB"), Ok(2 * 1048576));
        assert_eq!(parse_rate("500K"), Ok(500_000));
        assert_eq!(parse_rate("1048576"), Ok(1048576));
        assert_eq!(parse_rate("1.5mb/s"), Ok(1_500_000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3 parsecs").is_err());
        assert!(parse_rate("0").is_err());
    }

    fn want(name: &str, hash: Option<&str>, overwrite: bool) -> Want {
        Want {
            name: name.into(),
            hash: hash.map(String::from),
            overwrite,
        }
    }

    #[test]
    fn download_takes_names_with_spaces_a_hash_and_overwrite_in_any_order() {
        let t = commands();
        match t.parse("download big file.bin --overwrite") {
            crate::ui::commands::Parsed::Run(Cmd::Download(w)) => {
                assert_eq!(w, want("big file.bin", None, true))
            }
            other => panic!("{other:?}"),
        }
        for (line, w) in [
            ("doc.bin", want("doc.bin", None, false)),
            ("doc.bin --hash 1a2b", want("doc.bin", Some("1a2b"), false)),
            ("--hash 1a2b doc.bin", want("doc.bin", Some("1a2b"), false)),
            (
                "big  file.bin --hash 1a2b --overwrite",
                want("big  file.bin", Some("1a2b"), true),
            ),
            (
                "--overwrite big file.bin --hash FF",
                want("big file.bin", Some("FF"), true),
            ),
            (
                "--hash 1a2b --overwrite big file.bin",
                want("big file.bin", Some("1a2b"), true),
            ),
        ] {
            assert_eq!(parse_download(line), Ok(w), "{line}");
        }
        for (line, why) in [
            ("doc.bin --hash", "--hash needs a hash prefix"),
            ("--hash", "--hash needs a hash prefix"),
            ("--hash --overwrite doc.bin", "--hash needs a hash prefix"),
            ("doc.bin --force", "unknown option --force"),
            ("--force doc.bin", "unknown option --force"),
            ("--overwrite", "which file?"),
            ("--hash ab", "which file?"),
        ] {
            let e = parse_download(line).expect_err(line);
            assert!(e.contains(why), "{line}: {e}");
        }
        assert!(matches!(
            t.parse("download"),
            crate::ui::commands::Parsed::Error(_)
        ));
        assert!(matches!(
            t.parse("getload"),
            crate::ui::commands::Parsed::Error(_)
        ));
    }
}
