//! `download FILE`: from the peers that have it, piece by piece, each piece
//! checked against its hash before it is written.
//!
//! The tracker says who has the file. Each holder is asked its load, and
//! ranked by latency + 10 × load (latency from `--latency-file`, or the
//! measured round trip); the best `--sources` are used at once, each taking
//! the next missing piece whenever it has finished one, so faster and less
//! loaded peers carry more. A peer that fails is dropped and its piece goes
//! back to the others; a peer whose piece does not match its hash is
//! avoided for the rest of the download. Pieces land in
//! `.dsys-share/partial/FILE.part`, with a record of the pieces done, so a
//! download stopped any way (kill -9 too) resumes; the file takes its name
//! only once it is whole and checked.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Notify;

use super::client;
use super::files::{Library, Shared, mtime_of, write_atomic};
use super::hash::{self, Hash};
use super::latency::Latencies;
use super::names::{check_name, shown};
use super::partial::{DownloadLock, Partial, check_room, partial_paths};
use super::pb;
use super::schedule::{Failure, Next, Schedule, SourceIx};
use super::versions::{self, Version};

/// Pieces asked of one source at once (one in flight while the next is
/// asked for, so the link does not idle between pieces).
const PER_SOURCE: usize = 4;
/// A source that sends nothing for this long is given up.
const STALL: Duration = Duration::from_secs(10);

/// What a download needs from its peer.
#[derive(Clone)]
pub struct Ctx {
    pub me: String,
    pub my_addr: String,
    pub lib: Arc<RwLock<Library>>,
    pub tracker: String,
    pub latency: Option<Arc<Latencies>>,
    pub max_sources: usize,
    pub plain: bool,
    /// Told when the list changed (a download finished): announce now.
    pub announce: Arc<Notify>,
    /// This run's secret, sent with every announce (`proof`).
    pub token: super::proof::Token,
}

/// Lines for the user: above the progress bar while it shows.
#[derive(Clone, Default)]
pub struct Say {
    bar: Option<ProgressBar>,
}

impl Say {
    pub fn line(&self, s: impl AsRef<str>) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(s.as_ref()),
            _ => println!("{}", s.as_ref()),
        }
    }
}

struct Candidate {
    name: String,
    addr: String,
    client: client::PeerConn,
    latency_ms: f64,
    why: &'static str,
    load: u32,
}

impl Candidate {
    fn cost(&self) -> f64 {
        self.latency_ms + 10.0 * f64::from(self.load)
    }
}

fn started_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn mib_s(bytes: u64, d: Duration) -> String {
    format!(
        "{:.1} MiB/s",
        bytes as f64 / 1048576.0 / d.as_secs_f64().max(1e-6)
    )
}

/// What `download FILE [--hash PREFIX] [--overwrite]` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub name: String,
    /// The version's hash prefix (`--hash`): needed when the name has
    /// several live versions.
    pub hash: Option<String>,
    pub overwrite: bool,
}

/// Which version to fetch: the one asked for by hash, or the only one, or
/// the only one with a holder that answers. Never the one with the most
/// holders: holders are announcements, and announcements are cheap.
fn choose(
    name: &str,
    versions: &[Version],
    answers: &[Vec<Result<Answer, String>>],
    prefix: Option<&str>,
    say: &Say,
) -> Result<usize, String> {
    let live = |i: usize| answers[i].iter().any(Result::is_ok);
    if let Some(p) = prefix {
        let v = versions::pick(name, versions, p)?;
        let i = versions
            .iter()
            .position(|x| x.hash == v.hash)
            .ok_or("version")?;
        if !live(i) {
            return Err(format!(
                "none of the peers that have {name} with hash {} answers",
                hash::short(&v.hash)
            ));
        }
        return Ok(i);
    }
    let alive: Vec<usize> = (0..versions.len()).filter(|&i| live(i)).collect();
    match alive.as_slice() {
        [] => Err(format!("none of the peers that have {name} answers")),
        [i] if versions.len() == 1 => Ok(*i),
        [i] => {
            say.line(format!(
                "{name} has {} versions on the network, but only one has a holder that answers ({}): taking it",
                versions.len(),
                hash::short(&versions[*i].hash)
            ));
            Ok(*i)
        }
        _ => {
            say.line(format!(
                "{name} has {} versions on the network, {} of them with holders that answer:",
                versions.len(),
                alive.len()
            ));
            for (v, a) in versions.iter().zip(answers) {
                say.line(format!("  {}", v.title()));
                for (h, r) in v.holders.iter().zip(a) {
                    say.line(format!(
                        "    {}: {}",
                        versions::holder_line(h),
                        match r {
                            Ok(_) => "answers".to_string(),
                            Err(e) => format!("does not answer ({e})"),
                        }
                    ));
                }
            }
            let example = hash::short(&versions[alive[0]].hash);
            Err(format!(
                "none taken: a version is not right because more peers list it. Choose one by its hash: `download {name} --hash PREFIX` (e.g. --hash {example})"
            ))
        }
    }
}

pub async fn download(ctx: &Ctx, asked: &Want) -> Result<(), String> {
    let name = asked.name.as_str();
    let overwrite = asked.overwrite;
    check_name(name)?;
    let say = Say::default();
    let (holders, left_out) = client::find(&ctx.tracker, name).await.map_err(|e| {
        format!(
            "cannot ask the tracker at {} who has {name}: {e}",
            ctx.tracker
        )
    })?;
    let holders: Vec<pb::Holder> = holders
        .into_iter()
        .filter(|h| h.addr != ctx.my_addr)
        .collect();
    if holders.is_empty() {
        return Err(format!(
            "no other peer has {name} (`find {name}` asks the tracker)"
        ));
    }
    if left_out > 0 {
        say.line(format!(
            "(the tracker left out {} of {name} to keep its answer small)",
            super::plural(left_out as usize, "holder")
        ));
    }
    let (versions, problems) = versions::group(holders);
    for p in problems {
        say.line(format!("  {p}"));
    }
    if versions.is_empty() {
        return Err(format!(
            "the tracker's answer for {name} has no entry that checks"
        ));
    }
    // Who answers, for every version: a version no holder answers for is
    // not live.
    let mut answers = Vec::with_capacity(versions.len());
    for v in &versions {
        answers.push(probe(&v.holders).await);
    }
    let chosen = choose(name, &versions, &answers, asked.hash.as_deref(), &say)?;
    let version = &versions[chosen];
    let entry = version.entry.clone();
    let want = version.hash;
    let expected: Vec<Hash> = entry
        .pieces
        .iter()
        .filter_map(|p| p.as_ref().try_into().ok())
        .collect();

    // What is here already under that name.
    let final_path = ctx.lib.read().map_err(|_| "library")?.dir.join(name);
    if let Ok(meta) = std::fs::symlink_metadata(&final_path) {
        if !meta.is_file() {
            return Err(format!(
                "{} is {} here: not replaced",
                final_path.display(),
                if meta.is_dir() {
                    "a directory"
                } else {
                    "a link"
                }
            ));
        }
        let same = {
            let lib = ctx.lib.read().map_err(|_| "library")?;
            lib.files
                .get(name)
                .is_some_and(|s| s.hash == want && lib.unchanged(s).is_ok())
        };
        let same = same || {
            let p = final_path.clone();
            tokio::task::spawn_blocking(move || hash::digest_file(&p, |_| {}))
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|d| d.hash == want)
        };
        if same {
            say.line(format!(
                "{name} is here already, with the same content (hash {})",
                hash::short(&want)
            ));
            return Ok(());
        }
        if !overwrite {
            return Err(format!(
                "{} exists here with other content: not overwritten (`download {name} --overwrite` replaces it)",
                final_path.display()
            ));
        }
    }

    let mut tried: BTreeSet<String> = BTreeSet::new();
    let pairs: Vec<(&pb::Holder, Result<Answer, String>)> = version
        .holders
        .iter()
        .zip(answers.swap_remove(chosen))
        .collect();
    let ranked = rank(ctx, &say, pairs, &mut tried);
    if ranked.is_empty() {
        return Err(format!("none of the peers that have {name} answers"));
    }

    // One download of a name into a directory at a time (this peer, or
    // another process sharing the directory).
    let dir = ctx.lib.read().map_err(|_| "library")?.dir.clone();
    let _lock = DownloadLock::take(&dir, name)?;

    // The partial file and its record.
    let (part, rec_path) = partial_paths(&dir, name);
    let count = hash::piece_count(entry.size, entry.piece_size);
    let old: Option<Partial> = std::fs::read(&rec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let resume = old
        .filter(|p| p.hash == want && p.size == entry.size && p.piece_size == entry.piece_size)
        .filter(|_| part.exists());
    let had_bytes = resume.as_ref().map_or(0, |r| done_bytes(r, &entry, count));
    // Room for what is left, before anything is written. The file grows as
    // pieces arrive (no space taken up front for what may never come).
    let partial_dir = part.parent().map(Path::to_path_buf).unwrap_or(dir.clone());
    check_room(&partial_dir, name, entry.size - had_bytes.min(entry.size))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(resume.is_none())
        .open(&part)
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    if file.metadata().is_ok_and(|m| m.len() > entry.size) {
        file.set_len(entry.size)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    }
    let file = Arc::new(file);
    let mut values = vec![None; count as usize];
    let record = match resume {
        Some(mut rec) => {
            let had = rec.count_done();
            let (f, exp, ps) = (file.clone(), expected.clone(), entry.piece_size);
            let size = entry.size;
            let checked = tokio::task::spawn_blocking(move || {
                recheck(&f, &mut rec, &exp, size, ps);
                rec
            })
            .await
            .map_err(|e| e.to_string())?;
            for (i, v) in values.iter_mut().enumerate() {
                if checked.is_done(i as u64) {
                    *v = Some(expected[i]);
                }
            }
            let ok = checked.count_done();
            say.line(format!(
                "resuming {name}: {ok} of {count} pieces are here already{}",
                if ok < had {
                    format!(" ({} failed their check and are fetched again)", had - ok)
                } else {
                    String::new()
                }
            ));
            checked
        }
        None => {
            let rec = Partial::new(want, entry.size, entry.piece_size);
            let _ = write_atomic(&rec_path, &serde_json::to_vec(&rec).unwrap_or_default());
            rec
        }
    };
    let done_bytes = done_bytes(&record, &entry, count);

    let bar = if ctx.plain {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(Some(entry.size), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_message(name.to_string());
        b
    };
    bar.set_position(done_bytes);
    bar.reset_eta();
    let say = Say {
        bar: Some(bar.clone()),
    };
    let sched = Arc::new(Mutex::new(Schedule::new(record, values)));
    let job = Arc::new(Job {
        name: name.to_string(),
        hash: want,
        size: entry.size,
        piece_size: entry.piece_size,
        expected,
        file,
        part: part.clone(),
        rec_path,
        saved: Mutex::new(0),
        wake: Notify::new(),
        id: format!(
            "{}/{}",
            ctx.me,
            std::process::id() ^ (started_nanos() as u32)
        ),
        bar: bar.clone(),
        say: say.clone(),
    });
    let _stopped = Stopped {
        job: job.clone(),
        sched: sched.clone(),
    };
    let started = Instant::now();
    let mut ranked = ranked;
    loop {
        start_sources(ctx, &job, &sched, std::mem::take(&mut ranked)).await?;
        let (left, fatal, reasons) = {
            let s = sched.lock().map_err(|_| "download state")?;
            (s.left(), s.fatal().map(str::to_string), s.reasons())
        };
        if let Some(f) = fatal {
            bar.abandon();
            return Err(format!("{f}; {}", kept(&job, &sched)));
        }
        if left == 0 {
            break;
        }
        // Everyone we used is gone: anyone new with the file?
        let (more, _) = client::find(&ctx.tracker, name).await.unwrap_or_default();
        let fresh: Vec<pb::Holder> = more
            .into_iter()
            .filter(|h| h.addr != ctx.my_addr && !tried.contains(&h.addr))
            .filter(|h| {
                h.file.as_ref().is_some_and(|f| {
                    f.hash.as_ref() == want.as_slice()
                        && f.size == entry.size
                        && f.piece_size == entry.piece_size
                })
            })
            .collect();
        ranked = if fresh.is_empty() {
            Vec::new()
        } else {
            let answers = probe(&fresh).await;
            rank(ctx, &say, fresh.iter().zip(answers).collect(), &mut tried)
        };
        if ranked.is_empty() {
            bar.abandon();
            return Err(format!(
                "no peer left to fetch the last {left} of {count} pieces of {name} from ({}); {}",
                reasons.join("; "),
                kept(&job, &sched)
            ));
        }
    }

    // Whole: the pieces' values, as computed from the data, make the hash.
    let (values, per_source) = {
        let s = sched.lock().map_err(|_| "download state")?;
        (s.values(), s.per_source())
    };
    let values = values.unwrap_or_default();
    if hash::combine(&values, entry.piece_size, entry.size) != Some(want) {
        bar.abandon();
        let _ = std::fs::remove_file(&job.rec_path);
        return Err(format!(
            "{name}: the pieces do not make the file's hash; the partial file is dropped"
        ));
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    std::fs::rename(&part, &final_path).map_err(|e| {
        format!(
            "cannot move {name} into place at {}: {e}",
            final_path.display()
        )
    })?;
    close_record(&job);
    let mtime = std::fs::metadata(&final_path)
        .map(|m| mtime_of(&m))
        .unwrap_or(0);
    if let Ok(mut lib) = ctx.lib.write() {
        lib.add_verified(Shared {
            name: name.to_string(),
            size: entry.size,
            mtime,
            hash: want,
            piece_size: entry.piece_size,
            pieces: values,
        });
    }
    ctx.announce.notify_one();
    let fetched = entry.size - done_bytes;
    println!(
        "downloaded {name} ({}) in {:.1} s, {} from {}; hash {} checked",
        HumanBytes(entry.size),
        elapsed.as_secs_f64(),
        mib_s(fetched, elapsed),
        if per_source.is_empty() {
            "(nothing to fetch)".to_string()
        } else {
            per_source.join(", ")
        },
        hash::short(&want)
    );
    Ok(())
}

/// What is kept of a download that stops: its pieces, for a resume; or,
/// when none was fetched, nothing (the `.part` and the record go).
fn kept(job: &Job, sched: &Mutex<Schedule>) -> String {
    let done = sched.lock().map_or(1, |s| s.done());
    if done > 0 {
        return format!("the pieces done are kept: `download {}` resumes", job.name);
    }
    close_record(job);
    let _ = std::fs::remove_file(&job.part);
    "nothing was fetched, so nothing is kept".to_string()
}

/// A download dropped half way (Ctrl-C): the bar stays as it was, and the
/// user is told what is kept.
struct Stopped {
    job: Arc<Job>,
    sched: Arc<Mutex<Schedule>>,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.job.bar.is_finished() {
            self.job.bar.abandon();
            println!(
                "download {} stopped; {}",
                self.job.name,
                kept(&self.job, &self.sched)
            );
        }
    }
}

/// A holder that answered: its connection, load and round trip.
struct Answer {
    client: client::PeerConn,
    load: u32,
    rtt: Duration,
}

/// Asks each holder its load, all at once.
async fn probe(holders: &[pb::Holder]) -> Vec<Result<Answer, String>> {
    let asks = holders.iter().map(|h| {
        let addr = h.addr.clone();
        async move {
            let mut client = client::peer(&addr).await?;
            let (load, _, rtt) = client::load(&mut client).await?;
            Ok::<_, String>(Answer { client, load, rtt })
        }
    });
    let mut out = futures_join(asks).await;
    while out.len() < holders.len() {
        out.push(Err("the probe stopped".into()));
    }
    out
}

/// Ranks the holders that answered; prints the choice.
fn rank(
    ctx: &Ctx,
    say: &Say,
    answers: Vec<(&pb::Holder, Result<Answer, String>)>,
    tried: &mut BTreeSet<String>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut lines = vec!["choosing by latency + 10 × load (lower is better):".to_string()];
    for (h, a) in answers {
        let (name, addr) = (h.peer.clone(), h.addr.clone());
        match a {
            Ok(Answer { client, load, rtt }) => {
                let (latency_ms, why) = match &ctx.latency {
                    Some(l) => match l.between(
                        &super::latency::aliases(&ctx.me, &ctx.my_addr),
                        &super::latency::aliases(&name, &addr),
                    ) {
                        (ms, true) => (ms, "from the latency file"),
                        (ms, false) => (ms, "the latency file's default"),
                    },
                    None => (rtt.as_secs_f64() * 1000.0, "measured round trip"),
                };
                out.push(Candidate {
                    name,
                    addr,
                    client,
                    latency_ms,
                    why,
                    load,
                });
            }
            Err(e) => {
                tried.insert(addr.clone());
                lines.push(format!(
                    "  {} at {}: does not answer ({e}): skipped",
                    shown(&name),
                    shown(&addr)
                ));
            }
        }
    }
    out.sort_by(|a, b| a.cost().total_cmp(&b.cost()).then(a.name.cmp(&b.name)));
    for (i, c) in out.iter().enumerate() {
        lines.push(format!(
            "  {} {} at {}: latency {:.1} ms ({}), load {} -> cost {:.1}{}",
            if i < ctx.max_sources { "*" } else { " " },
            shown(&c.name),
            shown(&c.addr),
            c.latency_ms,
            c.why,
            c.load,
            c.cost(),
            if i == 0 { "  (best)" } else { "" }
        ));
    }
    // The rest stay untried: they are asked again if the chosen ones fail.
    out.truncate(ctx.max_sources.max(1));
    for c in &out {
        tried.insert(c.addr.clone());
    }
    if !out.is_empty() {
        let names: Vec<String> = out.iter().map(|c| shown(&c.name)).collect();
        lines.push(format!("downloading from {}", names.join(", ")));
    }
    for l in lines {
        say.line(l);
    }
    out
}

async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(_) => return out,
        }
    }
    out
}

struct Job {
    name: String,
    hash: Hash,
    size: u64,
    piece_size: u64,
    expected: Vec<Hash>,
    file: Arc<std::fs::File>,
    part: PathBuf,
    rec_path: PathBuf,
    saved: Mutex<u64>,
    wake: Notify,
    id: String,
    bar: ProgressBar,
    say: Say,
}

/// Runs workers for `sources` until no piece is left for them.
async fn start_sources(
    ctx: &Ctx,
    job: &Arc<Job>,
    sched: &Arc<Mutex<Schedule>>,
    sources: Vec<Candidate>,
) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for c in sources {
        let ix = sched
            .lock()
            .map_err(|_| "download state")?
            .add_source(&shown(&c.name), &shown(&c.addr));
        let delay = ctx
            .latency
            .as_ref()
            .map(|_| Duration::from_secs_f64(c.latency_ms / 1000.0));
        for _ in 0..PER_SOURCE {
            set.spawn(worker(
                job.clone(),
                sched.clone(),
                ix,
                c.client.clone(),
                delay,
            ));
        }
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

/// Fetches the pieces the schedule gives source `ix` until it says stop.
async fn worker(
    job: Arc<Job>,
    sched: Arc<Mutex<Schedule>>,
    ix: SourceIx,
    mut client: client::PeerConn,
    delay: Option<Duration>,
) {
    loop {
        let next = match sched.lock() {
            Ok(mut s) => s.next(ix),
            Err(_) => return,
        };
        let piece = match next {
            Next::Stop => return,
            Next::Wait => {
                // Woken when a piece is done or handed back (or soon anyway).
                let _ = tokio::time::timeout(Duration::from_millis(100), job.wake.notified()).await;
                continue;
            }
            Next::Fetch(p) => p,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let (start, end) = hash::piece_range(job.size, job.piece_size, piece);
        let got = fetch(&mut client, &job, piece, (end - start) as usize).await;
        let checked = match got {
            Ok(parts) => check_and_write(&job, piece, start, parts).await,
            Err(e) => Err(Failure::Failed(e)),
        };
        let Ok(mut s) = sched.lock() else { return };
        job.wake.notify_waiters();
        match checked {
            Ok(v) => {
                let (rec, version) = s.delivered(ix, piece, v);
                drop(s);
                job.bar.inc(end - start);
                let j = job.clone();
                // Off the async threads, and not awaited: a record a little
                // behind only means a piece fetched again on resume, and
                // `save` never writes an older record over a newer one.
                tokio::task::spawn_blocking(move || save(&j, &rec, version));
            }
            Err(why) => {
                if let Some(line) = s.failed(ix, piece, why) {
                    job.say.line(line);
                }
                return;
            }
        }
    }
}

/// Hashes `piece` as the chunks it came in and writes them where they lie
/// (off the async threads); its value if it matches.
async fn check_and_write(
    job: &Arc<Job>,
    piece: u64,
    start: u64,
    parts: Vec<Bytes>,
) -> Result<Hash, Failure> {
    let j = job.clone();
    let count = job.expected.len() as u64;
    tokio::task::spawn_blocking(move || {
        let v = hash::piece_value_of_parts(
            parts.iter().map(|b| b.as_ref()),
            piece,
            j.piece_size,
            count,
        );
        if v != j.expected[piece as usize] {
            return Err(Failure::Bad);
        }
        let mut at = start;
        for p in &parts {
            j.file
                .write_all_at(p, at)
                .map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", j.part.display())))?;
            at += p.len() as u64;
        }
        Ok(v)
    })
    .await
    .unwrap_or_else(|_| {
        Err(Failure::Fatal(format!(
            "cannot write {}: the writer stopped",
            job.part.display()
        )))
    })
}

/// One piece, as the chunks it came in (not joined: each is hashed and
/// written where it lies).
async fn fetch(
    client: &mut client::PeerConn,
    job: &Job,
    piece: u64,
    len: usize,
) -> Result<Vec<Bytes>, String> {
    let req = pb::FetchRequest {
        name: job.name.clone(),
        hash: Bytes::copy_from_slice(&job.hash),
        piece,
        download: job.id.clone(),
    };
    let mut stream = tokio::time::timeout(STALL, client.fetch(req))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|s| client::status_text(&s))?
        .into_inner();
    let mut parts = Vec::new();
    let mut got = 0;
    loop {
        match tokio::time::timeout(STALL, stream.message()).await {
            Err(_) => return Err(format!("sent nothing for {} s", STALL.as_secs())),
            Ok(Err(s)) => return Err(client::status_text(&s)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => {
                if got + c.data.len() > len {
                    return Err(format!("sent more than piece {piece}'s {len} bytes"));
                }
                got += c.data.len();
                parts.push(c.data);
            }
        }
    }
    if got != len {
        return Err(format!("sent {got} of piece {piece}'s {len} bytes"));
    }
    Ok(parts)
}

/// Bytes of the pieces `rec` calls done.
fn done_bytes(rec: &Partial, entry: &pb::FileEntry, count: u64) -> u64 {
    (0..count)
        .filter(|&i| rec.is_done(i))
        .map(|i| {
            let (s, e) = hash::piece_range(entry.size, entry.piece_size, i);
            e - s
        })
        .sum()
}

/// Removes the record for good: a save still on its way finds the
/// version taken and writes nothing.
fn close_record(job: &Job) {
    if let Ok(mut saved) = job.saved.lock() {
        *saved = u64::MAX;
    }
    let _ = std::fs::remove_file(&job.rec_path);
}

/// Writes the record if it is newer than the last one written.
fn save(job: &Job, rec: &Partial, version: u64) {
    let Ok(mut saved) = job.saved.lock() else {
        return;
    };
    if *saved >= version {
        return;
    }
    if let Ok(b) = serde_json::to_vec(rec)
        && write_atomic(&job.rec_path, &b).is_ok()
    {
        *saved = version;
    }
}

/// On resume: every piece the record calls done is read back and checked.
fn recheck(f: &std::fs::File, rec: &mut Partial, expected: &[Hash], size: u64, ps: u64) {
    let count = expected.len() as u64;
    let mut buf = vec![0u8; ps as usize];
    for i in 0..count {
        if !rec.is_done(i) {
            continue;
        }
        let (s, e) = hash::piece_range(size, ps, i);
        let n = (e - s) as usize;
        let ok = f.read_exact_at(&mut buf[..n], s).is_ok()
            && hash::piece_value(&buf[..n], i, ps, count) == expected[i as usize];
        if !ok {
            rec.mark(i, false);
        }
    }
}
