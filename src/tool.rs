//! What an algorithm implements to be a `dsys` command: [`Algorithm`]
//! names the tools it offers (its node, demo, simulator, checker,
//! benchmark), each a [`Tool`]: clap arguments and what running them does.
//! `main.rs` lists the algorithms; `crate::registry` builds the command line
//! from that list.

use std::path::PathBuf;

use clap::{ArgMatches, Args, Command, FromArgMatches};

use crate::check::Checker;
use crate::cli::{CliError, Outcome};

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
    pub(crate) run: fn(&ArgMatches) -> Outcome,
    /// A checker's event names ([`Checker::EVENTS`]); empty for other tools.
    pub(crate) events: &'static [&'static str],
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
    let passed = crate::check::run_files::<C>(C::ALGORITHM, &a.files, a.strict)?;
    Ok(crate::cli::Ended::passed_if(passed))
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
            events: &[],
        }
    }

    /// `dsys sim <algorithm>`: the scenario `S` on the simulator.
    pub fn sim<S: crate::scenario::Simulated>(about: &'static str) -> Tool {
        Tool {
            about,
            build: crate::scenario::sim::command::<S>,
            tweak: None,
            run: run_sim::<S>,
            events: &[],
        }
    }

    /// `dsys demo <algorithm>`: the demo `D` on real nodes in this process.
    pub fn demo<D: crate::scenario::Demo>(about: &'static str) -> Tool {
        Tool {
            about,
            build: crate::scenario::real::command::<D>,
            tweak: None,
            run: run_demo::<D>,
            events: &[],
        }
    }

    /// `dsys check <algorithm> FILE... [--strict]` with checker `C`.
    pub fn check<C: Checker>(about: &'static str) -> Tool {
        Tool {
            about,
            build: build_args::<CheckArgs>,
            tweak: None,
            run: run_check::<C>,
            events: C::EVENTS,
        }
    }

    /// Adjusts the built command (a default that differs, more help).
    pub fn tweak(self, f: fn(Command) -> Command) -> Tool {
        Tool {
            tweak: Some(f),
            ..self
        }
    }

    pub(crate) fn command(&self, name: &'static str) -> Command {
        // After the arguments: a flattened struct's doc comment must not
        // become the command's description.
        let c = (self.build)(Command::new(name)).about(self.about);
        match self.tweak {
            Some(f) => f(c),
            None => c,
        }
    }
}
