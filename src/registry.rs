//! The command line built from a list of algorithms: `dsys <algorithm>`,
//! `dsys demo|sim|check|bench <algorithm>`, `dsys --help`, and the dispatch
//! of what was typed. The list itself is `main.rs`'s; what an algorithm
//! implements to be on it is [`crate::tool`]. Nothing here names an
//! algorithm.

use std::path::PathBuf;

use clap::{ArgMatches, Command, Subcommand as _};

use crate::check::Known;

use crate::cli::{CliError, Outcome};
use crate::tool::{Algorithm, Tool};

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
        .after_help(crate::cli::EXIT_CODES)
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
            .after_help(crate::cli::EXIT_CODES)
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
    let unknown = || CliError::usage(format!("unknown command {name:?}"));
    let algorithm = algorithms
        .iter()
        .find(|a| a.name() == name)
        .ok_or_else(unknown)?;
    let tool = tool_of(*algorithm, group).ok_or_else(unknown)?;
    if group == "check" {
        let known: Vec<Known> = algorithms
            .iter()
            .filter_map(|a| {
                a.check().map(|t| Known {
                    algorithm: a.name(),
                    events: t.events,
                })
            })
            .collect();
        let files: Vec<PathBuf> = m
            .get_many::<PathBuf>("files")
            .map(|f| f.cloned().collect())
            .unwrap_or_default();
        crate::check::refuse_foreign(&files, algorithm.name(), &known)?;
    }
    (tool.run)(m)
}
