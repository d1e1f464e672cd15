//! The `dsys` command line: parses arguments, loads configs and hands over
//! to the library. Exit codes: 0 fine, 1 a check failed or a run broke,
//! 2 bad command line or config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use dsys::config::{Cluster, DEFAULT_MACHINES};
use dsys::gossip::topology::Topology;
use dsys::tokenring::{self, Timing};

#[derive(Parser)]
#[command(
    name = "dsys",
    version,
    about = "Distributed algorithms run by real nodes over gRPC, a deterministic simulator, and checkers",
    long_about = "Distributed algorithms run by real nodes over gRPC, a deterministic simulator, and checkers.\n\n\
Quick start:\n  dsys demo tokenring              a 5-node ring in one process, with a crash, checked at the end\n  \
dsys tokenring l1 --next l2       one node of a ring (start l2, l3... in other terminals)\n  \
dsys sim tokenring --nodes 5      the same algorithm in virtual time, with faults\n  \
dsys demo gossip                  words spreading through 5 nodes, with a crash, checked at the end\n  \
dsys gossip                       one gossip node: asks for its name and neighbors\n  \
dsys sim gossip                   the Gossip Glomers broadcast benchmark in virtual time\n\n\
Durations are written like 250ms, 1s, 2m. Logs go to stderr; RUST_LOG=debug shows more."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node of a token ring (mutual exclusion)
    Tokenring(TokenringArgs),
    /// Run one gossip node: words spread by rumor mongering and anti-entropy
    Gossip(GossipArgs),
    /// Run one chat node: every node delivers every message in the same total order
    Multicast(MulticastArgs),
    /// Run a self-contained cluster in this process, with faults, and check it
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Run an algorithm in the deterministic simulator
    #[command(subcommand)]
    Sim(SimCommand),
    /// Verify the event logs (--events files) of a run
    #[command(subcommand)]
    Check(CheckCommand),
    /// Measure an algorithm with real processes on loopback
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ordered deliveries per second and light-load latency with real processes
    Multicast {
        #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=8))]
        nodes: u32,
        /// Messages each node sends at once for the throughput run
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Messages per second over the group for the latency run
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// How long the latency run lasts, in seconds
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Token hops per second with --hop-delay 0ms, and lock-to-enter latency
    Tokenring {
        /// Number of node processes
        #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=16))]
        nodes: u32,
        /// How long to count hops
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// How many lock/unlock cycles to time
        #[arg(long, default_value_t = 200)]
        locks: usize,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    dsys::duration::parse(s)
}

#[derive(Args)]
#[command(
    after_help = "Commands at the prompt: start, lock, unlock, status, help, quit.\n\
Example (three terminals):\n  dsys tokenring l1 --next l2\n  dsys tokenring l2 --next l3\n  dsys tokenring l3 --next l1\nthen type `start` on one of them and `lock` / `unlock` anywhere."
)]
struct TokenringArgs {
    /// This node's name in the machines file (asked for when omitted on a terminal)
    name: Option<String>,
    /// The next node in the ring (asked for when omitted on a terminal)
    #[arg(long)]
    next: Option<String>,
    /// JSON file {"name": "host:port", ...}; without it, ./machines.txt, else the built-in l1..l6 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// How long a node keeps the token before passing it on (0ms for speed)
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    hop_delay: Duration,
    /// Append one line (time, node, token hop) to FILE on each critical-section entry
    #[arg(long, value_name = "FILE")]
    cs_log: Option<PathBuf>,
    /// Write events as JSON lines to FILE (for `dsys check tokenring`)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Do not print a `token N` line for every hop
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
#[command(
    after_help = "Without NAME it lists the machines and asks for this node's name, how many\n\
neighbors to add and each one's name (answers may also come from a pipe).\n\
Commands afterwards: add NAME, remove NAME, peers, words, say WORD, gen on|off, status, help, quit.\n\
Example (three terminals):\n  dsys gossip l1\n  dsys gossip l2 --neighbors l1\n  dsys gossip l3 --neighbors l1,l2"
)]
struct GossipArgs {
    /// This node's name in the machines file (asked for when omitted)
    name: Option<String>,
    /// JSON file {"name": "host:port", ...}; without it, ./machines.txt, else the built-in l1..l6 on 127.0.0.1
    #[arg(long, value_name = "FILE")]
    machines: Option<PathBuf>,
    /// Link with these nodes at start (comma-separated); nodes that are down are retried
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    neighbors: Option<Vec<String>>,
    /// Mean time between generated words (exponential inter-arrival times)
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    mean_interval: Duration,
    /// Do not generate words (say WORD still makes one)
    #[arg(long)]
    no_generate: bool,
    /// Write events as JSON lines to FILE (for `dsys check gossip`)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    #[command(flatten)]
    gossip: GossipTuning,
}

#[derive(Args)]
#[command(
    after_help = "Every line on stdin is sent to every node in the peers file (this one included);\n\
every delivery prints one line `[LAMPORT] SENDER: TEXT` on stdout, in the same order on every node.\n\
Other output goes to stderr. Commands: /gen on|off, /status, /peers, /help, /quit.\n\
Example (three terminals): dsys multicast l1 / dsys multicast l2 / dsys multicast l3 (peers.json has l1..l6:\n\
all listed nodes are members, so use a peers file with just the nodes you run)."
)]
struct MulticastArgs {
    /// This node's name in the peers file
    name: String,
    /// JSON file {"name": "host:port", ...} of the group; default ./peers.json, else the built-in l1..l6
    #[arg(long, value_name = "FILE")]
    peers: Option<PathBuf>,
    /// Send random words from the start (like the original's "Start generating words? y")
    #[arg(long)]
    generate: bool,
    /// Random words per second, on average (exponential inter-arrival times)
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Write events as JSON lines to FILE (for `dsys check multicast`)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Plain line mode even on a terminal (it is automatic when stdin is not a terminal)
    #[arg(long)]
    plain: bool,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Token ring: start, random lock/unlock, one node killed and restarted
    Tokenring(DemoArgs),
    /// Gossip: words spreading over a printed topology, one node killed and restarted
    Gossip(DemoGossipArgs),
    /// Multicast: every node chats at random times; one node's deliveries shown, all checked
    Multicast(DemoMulticastArgs),
}

#[derive(Args)]
struct DemoMulticastArgs {
    /// Number of nodes (2 to 6 with the built-in ports)
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=6))]
    nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "15s", value_parser = duration)]
    duration: Duration,
    /// Words per second, per node
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Write events as JSON lines to FILE (default: a temporary file)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

#[derive(Args)]
struct DemoGossipArgs {
    /// Number of nodes (3 to 6 with the built-in ports)
    #[arg(short = 'n', long = "nodes", default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=6))]
    nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "20s", value_parser = duration)]
    duration: Duration,
    #[arg(long, value_enum, default_value_t = Topology::Random)]
    topology: Topology,
    /// Write events as JSON lines to FILE (default: a temporary file)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    /// Number of nodes (3 to 6)
    #[arg(short = 'n', long = "nodes", default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=6))]
    nodes: u32,
    /// How long the demo runs
    #[arg(long, default_value = "15s", value_parser = duration)]
    duration: Duration,
    /// Write events as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Token ring workload (random lock/unlock on every node) with faults
    Tokenring(SimArgs),
    /// Broadcast workload (Maelstrom / Gossip Glomers style) with faults
    Gossip(SimGossipArgs),
    /// Chat workload (every node sends at random times) with faults
    Multicast(SimMulticastArgs),
}

#[derive(Args)]
#[command(
    after_help = "Nodes are l1..lN; --crash/--restart/--partition are written as for `dsys sim tokenring`.\n\
A restarted node loses its state and rejoins; the checker verifies that every node life delivered\n\
a contiguous piece of one total order, with no duplicates, per-sender FIFO and nothing lost."
)]
struct SimMulticastArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    nodes: u32,
    /// Messages per second, per node
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    rate: f64,
    /// How long nodes send (virtual time)
    #[arg(long, default_value = "10s", value_parser = duration)]
    duration: Duration,
    /// Extra virtual time after the workload and the last fault
    #[arg(long, default_value = "10s", value_parser = duration)]
    settle: Duration,
    /// One-way message delay (2ms, 1ms..10ms, exp:2ms)
    #[arg(long, default_value = "200us..2ms")]
    latency: String,
    /// Probability that a message is delivered twice
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    duplicate: f64,
    #[command(flatten)]
    faults: FaultArgs,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

#[derive(Args)]
#[command(
    after_help = "The Gossip Glomers challenge 3d/3e setting: \n  dsys sim gossip --nodes 25 --latency 100ms --rate 100 --duration 20s [--partition-nemesis]\n\
Reports inter-node messages per word (Maelstrom's msgs-per-op is half of it, since half its operations are reads) \n\
and spread latency: from a word's birth until the last live node learned it."
)]
struct SimGossipArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
    nodes: u32,
    /// Who links with whom (star: l1 is a hub linked to every other node)
    #[arg(long, value_enum, default_value_t = Topology::Star)]
    topology: Topology,
    /// Words per second over the whole cluster
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    rate: f64,
    /// How long nodes generate words (virtual time)
    #[arg(long, default_value = "20s", value_parser = duration)]
    duration: Duration,
    /// How long to wait after that for the last words to spread
    #[arg(long, default_value = "10s", value_parser = duration)]
    grace: Duration,
    /// One-way message delay (2ms, 1ms..10ms, exp:2ms)
    #[arg(long, default_value = "100ms")]
    latency: String,
    /// Probability that a message is lost
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    loss: f64,
    /// Probability that a message is delivered twice
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    duplicate: f64,
    /// Split the cluster into random halves every other 10 s (healed at --duration)
    #[arg(long)]
    partition_nemesis: bool,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    gossip: GossipTuning,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

/// Rumor-mongering and anti-entropy knobs, shared by `gossip` and `sim gossip`.
#[derive(Args, Clone)]
struct GossipTuning {
    /// Neighbors pushed to per round: a number, or `all`
    #[arg(long, default_value = "all")]
    fanout: String,
    /// Lose interest in a word with probability 1/K when a neighbor already knew it
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    k: u32,
    /// Gossip round interval (batching window)
    #[arg(long, default_value = "100ms", value_parser = duration, value_name = "DURATION")]
    interval: Duration,
    /// Anti-entropy interval (digest exchange with a random neighbor)
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION")]
    anti_entropy_interval: Duration,
}

impl GossipTuning {
    fn params(&self) -> Result<dsys::gossip::Params, String> {
        let fanout = match self.fanout.as_str() {
            "all" => None,
            n => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|&f| f > 0)
                    .ok_or_else(|| format!("--fanout {n:?}: a number from 1, or `all`"))?,
            ),
        };
        if self.interval.is_zero() || self.anti_entropy_interval.is_zero() {
            return Err("--interval and --anti-entropy-interval must be above zero".into());
        }
        Ok(dsys::gossip::Params {
            fanout,
            k: self.k,
            interval: self.interval,
            anti_entropy: self.anti_entropy_interval,
            ..Default::default()
        })
    }
}

#[derive(Args)]
#[command(
    after_help = "Faults:\n  --crash l2@5s --restart l2@8s            kill l2 at 5s (state lost), restart it at 8s\n  \
--partition 'l1,l2|l3,l4,l5@4s-9s'       cut l1,l2 from l3,l4,l5 from 4s, heal at 9s\n  \
--partition 'l1@4s-9s'                   isolate l1 from everyone else\n\
Latency: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms (exponential with that mean, after a floor).\n\
Nodes are l1..lN; the ring is l1 -> l2 -> ... -> lN -> l1."
)]
struct SimArgs {
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=64))]
    nodes: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long nodes keep asking for the critical section (virtual time)
    #[arg(long, default_value = "30s", value_parser = duration)]
    duration: Duration,
    /// Extra virtual time after the workload and the last fault, for pending locks
    #[arg(long, default_value = "10s", value_parser = duration)]
    settle: Duration,
    /// One-way message delay
    #[arg(long, default_value = "200us..2ms")]
    latency: String,
    /// Probability that a message is lost
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    loss: f64,
    /// Probability that a message is delivered twice
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    duplicate: f64,
    #[command(flatten)]
    faults: FaultArgs,
    /// Token hop delay of every node
    #[arg(long, default_value = "5ms", value_parser = duration)]
    hop_delay: Duration,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Every node delivered the same sequence (prefixes for nodes that stopped), no duplicates, FIFO, nothing lost
    Multicast {
        /// Event files (one per node, or one with all nodes)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Every word reached every live node; coverage, messages per word, spread latency
    Gossip {
        /// Event files (one per node, or one with all nodes)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// No two nodes in the critical section at once; reports locks never granted
    Tokenring {
        /// Event files (one per node, or one with all nodes)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The peers file: the one named, else ./peers.json, else built-in.
fn load_peers(path: Option<&Path>) -> Result<Cluster, dsys::config::ConfigError> {
    match path {
        Some(p) => Cluster::load(p),
        None if Path::new("peers.json").exists() => Cluster::load(Path::new("peers.json")),
        None => {
            eprintln!("no peers.json here: using the built-in l1..l6 on 127.0.0.1:50051-50056");
            Cluster::parse(Path::new("<built-in peers.json>"), DEFAULT_MACHINES)
        }
    }
}

/// The machines file: the one named, else ./machines.txt, else built-in.
fn load_machines(path: Option<&Path>) -> Result<Cluster, dsys::config::ConfigError> {
    match path {
        Some(p) => Cluster::load(p),
        None if Path::new("machines.txt").exists() => Cluster::load(Path::new("machines.txt")),
        None => {
            eprintln!("no machines.txt here: using the built-in l1..l6 on 127.0.0.1:50051-50056");
            Cluster::parse(Path::new("<built-in machines.txt>"), DEFAULT_MACHINES)
        }
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("dsys: {msg}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The chat UI owns the terminal: its logs go to a file.
    match &cli.command {
        Command::Multicast(a) if dsys::multicast::cli::use_tui(a.plain) => init_tracing(Some(
            std::env::temp_dir().join(format!("dsys-multicast-{}.log", a.name)),
        )),
        _ => init_tracing(None),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, format!("cannot start the runtime: {e}")),
    };
    match cli.command {
        Command::Tokenring(a) => {
            let cluster = match load_machines(a.machines.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(2, e),
            };
            if let (Some(n), Some(x)) = (&a.name, &a.next)
                && n == x
                && cluster.len() > 1
            {
                return fail(
                    2,
                    format!("--next {x}: the next node must be another node than this one"),
                );
            }
            let opts = tokenring::cli::Options {
                cluster,
                name: a.name,
                next: a.next,
                timing: Timing {
                    hop_delay: a.hop_delay,
                    ..Timing::default()
                },
                cs_log: a.cs_log,
                events: a.events,
                quiet: a.quiet,
            };
            match runtime.block_on(tokenring::cli::run(opts)) {
                Ok(()) => {
                    // The stdin reader thread may still be blocked in read().
                    std::process::exit(0)
                }
                Err(e) => fail(e.exit_code() as u8, e),
            }
        }
        Command::Gossip(a) => {
            let cluster = match load_machines(a.machines.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(2, e),
            };
            let mut params = match a.gossip.params() {
                Ok(p) => p,
                Err(e) => return fail(2, e),
            };
            if a.mean_interval.is_zero() {
                return fail(2, "--mean-interval must be above zero");
            }
            params.mean_interval = a.mean_interval;
            params.generate = !a.no_generate;
            let opts = dsys::gossip::cli::Options {
                cluster,
                name: a.name,
                neighbors: a.neighbors,
                params,
                events: a.events,
            };
            match runtime.block_on(dsys::gossip::cli::run(opts)) {
                Ok(()) => std::process::exit(0),
                Err(e) => fail(e.exit_code() as u8, e),
            }
        }
        Command::Multicast(a) => {
            let cluster = match load_peers(a.peers.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(2, e),
            };
            if !(a.rate > 0.0 && a.rate.is_finite()) {
                return fail(
                    2,
                    format!("--rate {}: messages per second must be above 0", a.rate),
                );
            }
            let opts = dsys::multicast::cli::Options {
                cluster,
                name: a.name,
                generate: a.generate,
                rate: a.rate,
                events: a.events,
                plain: a.plain,
            };
            match runtime.block_on(dsys::multicast::cli::run(opts)) {
                Ok(()) => std::process::exit(0),
                Err(e) => fail(e.exit_code() as u8, e),
            }
        }
        Command::Demo(DemoCommand::Tokenring(a)) => {
            let opts = tokenring::demo::Options {
                nodes: a.nodes as usize,
                duration: a.duration,
                events: a.events,
            };
            match runtime.block_on(tokenring::demo::run(opts)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(1, e),
            }
        }
        Command::Bench(BenchCommand::Multicast {
            nodes,
            messages,
            rate,
            seconds,
        }) => match dsys::multicast::bench::run(dsys::multicast::bench::Options {
            nodes: nodes as usize,
            messages,
            light_rate: rate,
            light_seconds: seconds,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, e),
        },
        Command::Bench(BenchCommand::Tokenring {
            nodes,
            seconds,
            locks,
        }) => match tokenring::bench::run(tokenring::bench::Options {
            nodes: nodes as usize,
            seconds,
            locks,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, e),
        },
        Command::Demo(DemoCommand::Multicast(a)) => {
            if !(a.rate > 0.0 && a.rate <= 10_000.0) {
                return fail(
                    2,
                    format!(
                        "--rate {}: words per second per node, above 0 and at most 10000",
                        a.rate
                    ),
                );
            }
            let opts = dsys::multicast::demo::Options {
                nodes: a.nodes as usize,
                duration: a.duration,
                rate: a.rate,
                events: a.events,
            };
            match runtime.block_on(dsys::multicast::demo::run(opts)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(1, e),
            }
        }
        Command::Demo(DemoCommand::Gossip(a)) => {
            let opts = dsys::gossip::demo::Options {
                nodes: a.nodes as usize,
                duration: a.duration,
                topology: a.topology,
                events: a.events,
            };
            match runtime.block_on(dsys::gossip::demo::run(opts)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => fail(1, e),
            }
        }
        Command::Sim(SimCommand::Multicast(a)) => match sim_multicast(a) {
            Ok(code) => code,
            Err(e) => fail(2, e),
        },
        Command::Sim(SimCommand::Gossip(a)) => match sim_gossip(a) {
            Ok(code) => code,
            Err(e) => fail(2, e),
        },
        Command::Sim(SimCommand::Tokenring(a)) => match sim_tokenring(a) {
            Ok(code) => code,
            Err(e) => fail(2, e),
        },
        Command::Check(CheckCommand::Multicast { files }) => {
            let records = match dsys::check::read_files(&files) {
                Ok(r) => r,
                Err(e) => return fail(2, e),
            };
            if !records
                .iter()
                .any(|r| r.event == "deliver" || r.event == "multicast")
            {
                return fail(
                    2,
                    "no `deliver` or `multicast` events in these files: are they from `dsys multicast --events`?",
                );
            }
            let (report, _) = dsys::check::multicast::check(&records);
            print!("{}", dsys::check::multicast::render(&report));
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Check(CheckCommand::Gossip { files }) => {
            let records = match dsys::check::read_files(&files) {
                Ok(r) => r,
                Err(e) => return fail(2, e),
            };
            if !records.iter().any(|r| r.event == "learn") {
                return fail(
                    2,
                    "no `learn` events in these files: are they from `dsys gossip --events`?",
                );
            }
            let coverage = dsys::check::gossip::check(&records);
            print!("{}", dsys::check::gossip::render(&coverage));
            if coverage.lost.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Check(CheckCommand::Tokenring { files }) => {
            let records = match dsys::check::read_files(&files) {
                Ok(r) => r,
                Err(e) => return fail(2, e),
            };
            if !records
                .iter()
                .any(|r| r.event.starts_with("cs_") || r.event == "token")
            {
                return fail(
                    2,
                    "no token-ring events (token, cs_enter, ...) in these files: are they from `dsys tokenring --events`?",
                );
            }
            let report = dsys::check::tokenring::check(&records);
            print!("{}", tokenring::report::render(&report));
            if report.safe() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn sim_tokenring(a: SimArgs) -> Result<ExitCode, String> {
    use dsys::tokenring::simulate::{self, SimOptions};
    let cluster = simulate::sim_cluster(a.nodes as usize);
    let mut o = SimOptions::new(a.nodes as usize, a.seed, a.duration);
    o.settle = a.settle;
    o.net = net_model(&a.latency, a.loss, a.duplicate)?;
    o.timing.hop_delay = a.hop_delay;
    (o.crashes, o.restarts, o.partitions) = a.faults.parse(&cluster)?;
    o.events = a.events;
    let wall = std::time::Instant::now();
    let s = simulate::run(&o).map_err(|e| format!("cannot write events: {e}"))?;
    println!(
        "simulated {} nodes for {:.1}s of virtual time in {:.2}s (seed {})",
        a.nodes,
        s.virtual_time.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        a.seed
    );
    println!("token hops: {}", s.hops);
    let mut kinds: Vec<_> = s.traffic.by_kind.iter().collect();
    kinds.sort();
    println!(
        "messages: {} sent, {} delivered, {} lost or undeliverable",
        s.traffic.sent, s.traffic.delivered, s.traffic.lost,
    );
    if !kinds.is_empty() {
        println!(
            "sent by kind: {}",
            kinds
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    print!("{}", tokenring::report::render(&s.report));
    Ok(if s.report.safe() && s.report.pending.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sim_multicast(a: SimMulticastArgs) -> Result<ExitCode, String> {
    use dsys::multicast::simulate::{self, SimOptions};
    if !(a.rate > 0.0 && a.rate.is_finite())
        || a.rate * a.duration.as_secs_f64() * a.nodes as f64 > 1_000_000.0
    {
        return Err(format!(
            "--rate {}: messages per second must be above 0, and a run may send at most 1,000,000",
            a.rate
        ));
    }
    let cluster = Cluster::loopback(a.nodes as usize, 50051);
    let mut o = SimOptions::new(a.nodes as usize, a.seed, a.duration);
    o.rate = a.rate;
    o.settle = a.settle;
    o.net = net_model(&a.latency, 0.0, a.duplicate)?;
    (o.crashes, o.restarts, o.partitions) = a.faults.parse(&cluster)?;
    o.events = a.events;
    let wall = std::time::Instant::now();
    let s = simulate::run(&o).map_err(|e| format!("cannot write events: {e}"))?;
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "simulated {} node(s) for {:.1}s of virtual time in {secs:.2}s (seed {})",
        a.nodes,
        s.virtual_time.as_secs_f64(),
        a.seed
    );
    let pct = |p: f64| {
        let l = &s.latencies;
        if l.is_empty() {
            0.0
        } else {
            l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
        }
    };
    println!(
        "messages multicast: {}; deliveries: {}; {:.0} deliveries per simulated second per node",
        s.sent,
        s.delivered,
        s.delivered as f64 / s.virtual_time.as_secs_f64().max(1e-9) / a.nodes as f64
    );
    println!(
        "delivery latency (multicast to delivery): median {:.1}ms, p99 {:.1}ms, max {:.1}ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "messages on the wire: {} = {:.2} per delivery",
        s.messages,
        s.messages as f64 / s.delivered.max(1) as f64
    );
    print!("{}", dsys::check::multicast::render(&s.report));
    if !s.behind.is_empty() {
        println!(
            "STUCK: {} did not reach the common end:",
            s.behind.join(", ")
        );
        for line in &s.status {
            println!("  {line}");
        }
    }
    Ok(if s.report.ok() && s.behind.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sim_gossip(a: SimGossipArgs) -> Result<ExitCode, String> {
    use dsys::gossip::simulate::{self, SimOptions};
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(format!(
            "--rate {}: words per second must be above 0",
            a.rate
        ));
    }
    let words = a.rate * a.duration.as_secs_f64();
    if words > 1_000_000.0 {
        return Err(format!(
            "--rate {} for {:?} is about {words:.0} words; a run may make at most 1,000,000",
            a.rate, a.duration
        ));
    }
    let cluster = Cluster::loopback(a.nodes as usize, 50051);
    let mut o = SimOptions::new(a.nodes as usize, a.topology, a.seed);
    o.rate = a.rate;
    o.duration = a.duration;
    o.grace = a.grace;
    o.net = net_model(&a.latency, a.loss, a.duplicate)?;
    o.params = a.gossip.params()?;
    o.partition_nemesis = a.partition_nemesis;
    (o.crashes, o.restarts, o.partitions) = a.faults.parse(&cluster)?;
    o.events = a.events;
    let wall = std::time::Instant::now();
    let s = simulate::run(&o).map_err(|e| format!("cannot write events: {e}"))?;
    println!(
        "simulated {} node(s) ({} topology) for {:.1}s of virtual time in {:.2}s (seed {})",
        a.nodes,
        a.topology
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string()),
        s.virtual_time.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        a.seed
    );
    print!("{}", dsys::gossip::report::render_sim(&s));
    Ok(if s.lost.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The fault flags every `dsys sim` command takes.
#[derive(Args)]
struct FaultArgs {
    /// Kill a node: NODE@TIME (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    crash: Vec<String>,
    /// Restart a killed node with no state: NODE@TIME (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    restart: Vec<String>,
    /// Cut links between two sides for a while: 'A,B|C,D@FROM-TO' (repeatable)
    #[arg(long, value_name = "SPEC")]
    partition: Vec<String>,
}

type NodeTimes = Vec<(dsys::node::NodeId, Duration)>;

impl FaultArgs {
    /// Crashes, restarts and partitions, checked against the cluster.
    fn parse(
        &self,
        c: &Cluster,
    ) -> Result<(NodeTimes, NodeTimes, Vec<tokenring::simulate::Partition>), String> {
        let crashes = parse_node_times(c, &self.crash, "--crash")?;
        let restarts = parse_node_times(c, &self.restart, "--restart")?;
        check_faults(c, &crashes, &restarts)?;
        let partitions = self
            .partition
            .iter()
            .map(|s| {
                tokenring::simulate::parse_partition(c, s)
                    .map_err(|e| format!("--partition {s:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok((crashes, restarts, partitions))
    }
}

/// The simulated network from the `--latency`, `--loss`, `--duplicate` flags.
fn net_model(latency: &str, loss: f64, duplicate: f64) -> Result<dsys::sim::NetModel, String> {
    for (flag, p) in [("--loss", loss), ("--duplicate", duplicate)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("{flag} {p}: a probability is between 0 and 1"));
        }
    }
    Ok(dsys::sim::NetModel {
        latency: dsys::sim::Latency::parse(latency).map_err(|e| format!("--latency: {e}"))?,
        loss,
        duplicate,
        reorder: false,
    })
}

/// Every restart must follow a crash of the same node (and come before
/// that node's next crash): a schedule that is not a story is an error.
fn check_faults(
    c: &Cluster,
    crashes: &[(dsys::node::NodeId, Duration)],
    restarts: &[(dsys::node::NodeId, Duration)],
) -> Result<(), String> {
    for node in c.ids() {
        let mut steps: Vec<(Duration, bool)> = crashes
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|&(_, t)| (t, true))
            .chain(
                restarts
                    .iter()
                    .filter(|(n, _)| *n == node)
                    .map(|&(_, t)| (t, false)),
            )
            .collect();
        steps.sort();
        let mut down = false;
        for (t, crash) in steps {
            let name = c.name(node);
            let at = format!("{:.3}s", t.as_secs_f64());
            match (crash, down) {
                (true, true) => {
                    return Err(format!(
                        "--crash {name}@{at}: {name} is down already (restart it first)"
                    ));
                }
                (false, false) => {
                    return Err(format!(
                        "--restart {name}@{at}: {name} is not down then (crash it earlier with --crash)"
                    ));
                }
                _ => down = crash,
            }
        }
    }
    Ok(())
}

fn parse_node_times(
    c: &Cluster,
    specs: &[String],
    flag: &str,
) -> Result<Vec<(dsys::node::NodeId, Duration)>, String> {
    specs
        .iter()
        .map(|s| {
            let (node, at) = s
                .split_once('@')
                .ok_or_else(|| format!("{flag} {s:?}: write NODE@TIME, e.g. l2@5s"))?;
            let id = c.require(node).map_err(|e| format!("{flag} {s:?}: {e}"))?;
            let t = duration(at).map_err(|e| format!("{flag} {s:?}: {e}"))?;
            Ok((id, t))
        })
        .collect()
}

/// Logs to stderr, or to `file` (when a UI owns the terminal).
fn init_tracing(file: Option<PathBuf>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match file.and_then(|p| std::fs::File::create(p).ok()) {
        Some(f) => builder
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}
