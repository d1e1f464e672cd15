//! The algorithms `dsys` knows: one line each in [`ALGORITHMS`]. Each
//! algorithm implements [`Algorithm`] in its own folder, naming the tools it
//! offers (its node, demo, simulator, checker, benchmark) as clap argument
//! types with a `run`; the command line (`dsys <algorithm>`, `dsys demo
//! <algorithm>`, `dsys sim <algorithm>`, ...) and `dsys --help` are built
//! from this list, so a new algorithm is its folder plus one line here.

use std::path::PathBuf;

use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};

use crate::check::Checker;
use crate::cli::{CliError, Outcome};

/// Every algorithm, in the order `dsys --help` lists them.
pub static ALGORITHMS: &[&dyn Algorithm] = &[
    &crate::tokenring::TokenRingAlgorithm,
    &crate::mutex::MutexAlgorithm,
    &crate::gossip::GossipAlgorithm,
    &crate::multicast::MulticastAlgorithm,
    &crate::clocks::ClocksAlgorithm,
    &crate::chat::ChatAlgorithm,
    &crate::share::ShareAlgorithm,
];

/// An algorithm as the command line sees it.
pub trait Algorithm: Sync {
    /// Its subcommand name everywhere (`tokenring`).
    fn name(&self) -> &'static str;
    /// One line for `dsys --help`.
    fn about(&self) -> &'static str;
    /// Quick-start lines for `dsys --help`: (command, what it shows).
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// `dsys <name>`: one node (or the algorithm's own subcommands).
    fn node(&self) -> Option<Tool> {
        None
    }
    /// `dsys demo <name>`: a cluster in one process, with faults, checked.
    fn demo(&self) -> Option<Tool> {
        None
    }
    /// `dsys sim <name>`: the algorithm in the deterministic simulator.
    fn sim(&self) -> Option<Tool> {
        None
    }
    /// `dsys check <name> FILE...`: its invariants over event logs.
    fn check(&self) -> Option<Tool> {
        None
    }
    /// `dsys bench <name>`: measurements with real processes.
    fn bench(&self) -> Option<Tool> {
        None
    }
}

/// A command an algorithm offers: its clap arguments and what running it does.
pub trait Run: Args + FromArgMatches {
    fn run(self) -> Outcome;
}

/// One subcommand: how to build it and how to run it.
#[derive(Clone, Copy)]
pub struct Tool {
    about: &'static str,
    build: fn(Command) -> Command,
    tweak: Option<fn(Command) -> Command>,
    run: fn(&ArgMatches) -> Outcome,
}

fn build_args<A: Args>(c: Command) -> Command {
    A::augment_args(c)
}

fn run_args<A: Run>(m: &ArgMatches) -> Outcome {
    A::from_arg_matches(m)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .run()
}

/// `dsys check <algorithm>`'s arguments, the same for every algorithm.
#[derive(Args)]
pub struct CheckArgs {
    /// Event files (--events of each node, one per node or one with all nodes)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also fail (exit 1) when a liveness property did not hold
    #[arg(long)]
    pub strict: bool,
}

fn run_check<C: Checker>(m: &ArgMatches) -> Outcome {
    let a = CheckArgs::from_arg_matches(m).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(crate::check::run_files::<C>(
        C::ALGORITHM,
        &a.files,
        a.strict,
    )?)
}

fn run_sim<S: crate::scenario::Simulated>(m: &ArgMatches) -> Outcome {
    crate::scenario::sim::run(S::from_arg_matches(m).map_err(|e| CliError::Usage(e.to_string()))?)
}

fn run_demo<D: crate::scenario::Demo>(m: &ArgMatches) -> Outcome {
    crate::scenario::real::run(D::from_arg_matches(m).map_err(|e| CliError::Usage(e.to_string()))?)
}

impl Tool {
    /// A tool whose arguments and behaviour are `A`.
    pub fn of<A: Run>(about: &'static str) -> Tool {
        Tool {
            about,
            build: build_args::<A>,
            tweak: None,
            run: run_args::<A>,
        }
    }

    /// `dsys sim <algorithm>`: the scenario `S` on the simulator.
    pub fn sim<S: crate::scenario::Simulated>(about: &'static str) -> Tool {
        Tool {
            about,
            build: crate::scenario::sim::command::<S>,
            tweak: None,
            run: run_sim::<S>,
        }
    }

    /// `dsys demo <algorithm>`: the demo `D` on real nodes in this process.
    pub fn demo<D: crate::scenario::Demo>(about: &'static str) -> Tool {
        Tool {
            about,
            build: crate::scenario::real::command::<D>,
            tweak: None,
            run: run_demo::<D>,
        }
    }

    /// `dsys check <algorithm> FILE... [--strict]` with checker `C`.
    pub fn check<C: Checker>(about: &'static str) -> Tool {
        Tool {
            about,
            build: build_args::<CheckArgs>,
            tweak: None,
            run: run_check::<C>,
        }
    }

    /// Adjusts the built command (a default that differs, more help).
    pub fn tweak(self, f: fn(Command) -> Command) -> Tool {
        Tool {
            tweak: Some(f),
            ..self
        }
    }

    fn command(&self, name: &'static str) -> Command {
        // After the arguments: a flattened struct's doc comment must not
        // become the command's description.
        let c = (self.build)(Command::new(name)).about(self.about);
        match self.tweak {
            Some(f) => f(c),
            None => c,
        }
    }
}

const GROUPS: [(&str, &str); 4] = [
    (
        "demo",
        "Run a self-contained cluster in this process, with faults, and check it",
    ),
    (
        "sim",
        "Run an algorithm in the deterministic simulator, with the faults you choose",
    ),
    ("check", "Verify the event logs (--events files) of a run"),
    (
        "bench",
        "Measure an algorithm with real processes on loopback",
    ),
];

fn tool_of(a: &dyn Algorithm, group: &str) -> Option<Tool> {
    match group {
        "demo" => a.demo(),
        "sim" => a.sim(),
        "check" => a.check(),
        "bench" => a.bench(),
        _ => a.node(),
    }
}

/// The whole command line, from the registry.
pub fn command(algorithms: &[&dyn Algorithm]) -> Command {
    let mut quick = String::from(
        "Distributed algorithms run by real nodes over gRPC, a deterministic simulator, and checkers.\n\nQuick start:\n",
    );
    let width = algorithms
        .iter()
        .flat_map(|a| a.examples())
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(0);
    for a in algorithms {
        for (cmd, what) in a.examples() {
            quick.push_str(&format!("  {cmd:<width$}  {what}\n"));
        }
    }
    quick.push_str(
        "\nDurations are written like 250ms, 1s, 2m. Logs go to stderr; RUST_LOG=debug shows more.",
    );
    let mut root = Command::new("dsys")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Distributed algorithms run by real nodes over gRPC, a deterministic simulator, and checkers")
        .long_about(quick)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .max_term_width(80);
    for a in algorithms {
        if let Some(t) = a.node() {
            root = root.subcommand(t.command(a.name()));
        }
    }
    for (group, about) in GROUPS {
        let mut g = Command::new(group)
            .about(about)
            .subcommand_required(true)
            .arg_required_else_help(true);
        for a in algorithms {
            if let Some(t) = tool_of(*a, group) {
                g = g.subcommand(t.command(a.name()));
            }
        }
        root = root.subcommand(g);
    }
    root = root.subcommand(
        crate::certs::CertsCmd::augment_subcommands(Command::new("certs"))
            .about("Make the certificates for --tls: a cluster CA and one per member")
            .subcommand_required(true)
            .arg_required_else_help(true),
    );
    narrow(root)
}

/// Help wraps at 80 columns on every command, however wide the terminal.
fn narrow(c: Command) -> Command {
    c.max_term_width(80).mut_subcommands(narrow)
}

/// Prints `--help` or `--version` output without trailing spaces (clap
/// indents the blank lines of long help); any other error as clap would.
pub fn exit_on_parse_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let text = e.render().to_string();
        for line in text.lines() {
            println!("{}", line.trim_end());
        }
        std::process::exit(0);
    }
    e.exit()
}

/// Runs what `matches` asks for.
pub fn dispatch(algorithms: &[&dyn Algorithm], matches: &ArgMatches) -> Outcome {
    let Some((sub, m)) = matches.subcommand() else {
        return Err(CliError::usage("no command given (dsys --help lists them)"));
    };
    if sub == "certs" {
        use clap::FromArgMatches as _;
        let cmd = crate::certs::CertsCmd::from_arg_matches(m)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        return crate::certs::run(cmd);
    }
    let (group, name, m) = match m.subcommand() {
        Some((name, inner)) if GROUPS.iter().any(|(g, _)| *g == sub) => (sub, name, inner),
        _ => ("", sub, m),
    };
    let tool = algorithms
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| tool_of(*a, group))
        .ok_or_else(|| CliError::usage(format!("unknown command {name:?}")))?;
    (tool.run)(m)
}
