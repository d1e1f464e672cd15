//! `dsys bench share`: how close a download comes to the machine's limit.
//!
//! In one run, on loopback, with real processes: a plain TCP copy of the
//! file from one process to another (the sender reads the file, the
//! receiver writes it: the limit), then `download` of the same file by a
//! fresh peer from one source peer, then from three. Each download is timed
//! from the command to its "downloaded" line, so it includes asking the
//! tracker, choosing sources, checking every piece and the whole file, and
//! moving it into place.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use rand::{RngCore, SeedableRng};

use crate::bench::Proc;
use crate::cli::{CliError, Outcome};

#[derive(Args, Debug)]
pub struct RawSendArgs {
    /// Where to send
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// The file
    pub file: PathBuf,
}

impl crate::tool::Run for RawSendArgs {
    fn run(self) -> Outcome {
        let mut f = std::fs::File::open(&self.file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", self.file.display())))?;
        let mut s = TcpStream::connect(&self.to)
            .map_err(|e| CliError::Failed(format!("cannot connect to {}: {e}", self.to)))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n])
                .map_err(|e| CliError::Failed(e.to_string()))?;
        }
        Ok(crate::cli::Ended::Passed)
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes the test file and the peers' directories under a temp folder \
(removed at the end). Needs about 4 × --size of free disk (the source file is hard-linked)."
)]
pub struct BenchArgs {
    /// Size of the test file
    #[arg(long, default_value = "1GiB", value_parser = super::peer::parse_rate, value_name = "BYTES")]
    pub size: u64,
    /// Times each case is run (the median is reported)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub runs: u16,
}

impl crate::tool::Run for BenchArgs {
    fn run(self) -> Outcome {
        bench(&self).map_err(CliError::Failed)?;
        Ok(crate::cli::Ended::Passed)
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn free() -> Result<u16, String> {
    crate::net::ports::free_loopback_port().map_err(|e| e.to_string())
}

fn write_test_file(path: &Path, size: u64) -> Result<(), String> {
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", path.display()))?;
        left -= n as u64;
    }
    Ok(())
}

/// One plain TCP copy: a child process sends, this one writes to `dest`
/// (or only reads, for the network's own limit).
fn raw_copy(file: &Path, dest: Option<&Path>) -> Result<Duration, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
    let mut sender = Proc::spawn(&[
        "share".into(),
        "raw-send".into(),
        "--to".into(),
        addr,
        file.display().to_string(),
    ])?;
    let (mut conn, _) = l.accept().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut out = match dest {
        Some(d) => Some(std::fs::File::create(d).map_err(|e| format!("{}: {e}", d.display()))?),
        None => None,
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = conn.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if let Some(o) = &mut out {
            o.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
    }
    let took = started.elapsed();
    let _ = sender.wait_exit(Duration::from_secs(5));
    Ok(took)
}

fn peer(dir: &Path, tracker: &str, extra: &[&str]) -> Result<Proc, String> {
    let port = free()?;
    let mut args = s(&["share", "peer"]);
    args.push(dir.display().to_string());
    args.extend(s(&[
        "--plain",
        "--heartbeat",
        "1s",
        "--tracker",
        tracker,
        "--listen",
    ]));
    args.push(format!("127.0.0.1:{port}"));
    args.extend(s(extra));
    let p = Proc::spawn(&args)?;
    p.wait("registered with the tracker", Duration::from_secs(120))
        .map_err(|e| format!("peer {}: {e}", dir.display()))?;
    Ok(p)
}

/// A fresh peer downloads the file; the time from the command to its line.
fn download(
    root: &Path,
    tag: &str,
    tracker: &str,
    sources: usize,
) -> Result<(Duration, String), String> {
    let dir = root.join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut p = peer(&dir, tracker, &["--sources", &sources.to_string()])?;
    let t0 = Instant::now();
    p.say("download big.bin")?;
    let deadline = t0 + Duration::from_secs(600);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match p.lines.recv_timeout(left) {
            Ok((t, l)) if l.starts_with("downloaded big.bin") => {
                let _ = std::fs::remove_dir_all(&dir);
                return Ok((t - t0, l));
            }
            Ok((_, l)) if l.starts_with("download big.bin:") => return Err(l),
            Ok(_) => {}
            Err(_) => return Err("no download within 600 s".into()),
        }
    }
}

/// Writes dirty pages out (`sync`) and lets the machine settle.
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(200));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(size: u64, d: Duration) -> f64 {
    size as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn bench(a: &BenchArgs) -> Result<(), String> {
    let root = std::env::temp_dir().join(format!("dsys-bench-share-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let result = run(a, &root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run(a: &BenchArgs, root: &Path) -> Result<(), String> {
    let size = a.size;
    let srcs: Vec<PathBuf> = (1..=3).map(|i| root.join(format!("src{i}"))).collect();
    for d in &srcs {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let file = srcs[0].join("big.bin");
    eprintln!("writing a {} test file...", indicatif::HumanBytes(size));
    write_test_file(&file, size)?;
    for d in &srcs[1..] {
        std::fs::hard_link(&file, d.join("big.bin")).map_err(|e| e.to_string())?;
    }

    let runs = usize::from(a.runs);
    let tport = free()?;
    let tracker = format!("127.0.0.1:{tport}");
    let _t = Proc::spawn(&s(&["share", "tracker", "--listen", &tracker]))?;
    std::thread::sleep(Duration::from_millis(300));
    eprintln!("starting three source peers (each hashes the file once)...");
    // --follow-hardlinks: the test file is one file under three names, on
    // purpose (a peer refuses hard links otherwise).
    let _sources: Vec<Proc> = srcs
        .iter()
        .map(|d| peer(d, &tracker, &["--follow-hardlinks"]))
        .collect::<Result<_, _>>()?;
    // The cases take turns, each after a `sync`, so that none inherits
    // another's dirty pages (this machine's writes are its slowest part).
    let (mut raw, mut net, mut one, mut three) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut line1, mut line3) = (String::new(), String::new());
    for i in 0..runs {
        eprintln!(
            "run {} of {runs}: plain copy, one source, three sources...",
            i + 1
        );
        let dest = root.join("raw.out");
        settle();
        raw.push(raw_copy(&file, Some(&dest))?);
        let _ = std::fs::remove_file(&dest);
        settle();
        net.push(raw_copy(&file, None)?);
        settle();
        let (d, l) = download(root, &format!("dst1-{i}"), &tracker, 1)?;
        one.push(d);
        line1 = l;
        settle();
        let (d, l) = download(root, &format!("dst3-{i}"), &tracker, 3)?;
        three.push(d);
        line3 = l;
    }
    let spread = |v: &[Duration]| -> String {
        let mb: Vec<f64> = v.iter().map(|d| rate(size, *d)).collect();
        let lo = mb.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = mb.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}–{hi:.0}")
    };
    let ratios: Vec<f64> = one
        .iter()
        .zip(&raw)
        .map(|(d, r)| 100.0 * r.as_secs_f64() / d.as_secs_f64())
        .collect();
    let ranges = [spread(&net), spread(&raw), spread(&one), spread(&three)];
    let (raw, net, one, three) = (median(raw), median(net), median(one), median(three));

    let r = rate(size, raw);
    println!(
        "dsys bench share: a {} file on loopback, median of {runs} runs",
        indicatif::HumanBytes(size)
    );
    println!();
    println!("| case | time | MB/s | MB/s, each run | of the plain copy |");
    println!("|---|---:|---:|---:|---:|");
    let rows = [
        (
            "plain TCP copy, received into memory only (the network alone)",
            net,
        ),
        (
            "plain TCP copy, process to process, written to a file (the limit)",
            raw,
        ),
        ("`download`, one source peer", one),
        ("`download`, three source peers", three),
    ];
    for ((what, d), range) in rows.iter().zip(&ranges) {
        let m = rate(size, *d);
        println!(
            "| {what} | {:.2} s | {m:.0} | {range} | {:.0} % |",
            d.as_secs_f64(),
            100.0 * m / r
        );
    }
    println!();
    let shown: Vec<String> = ratios.iter().map(|x| format!("{x:.0} %")).collect();
    println!(
        "one source against the plain copy of the same run: {}",
        shown.join(", ")
    );
    println!();
    println!("(each case after a `sync`; times from the command to the `downloaded` line)");
    println!("last one-source run:   {line1}");
    println!("last three-source run: {line3}");
    Ok(())
}
