//! `dsys clocks`: a scale model of a small asynchronous system, and its lab
//! notebook. N model machines, each ticking at its own rate with a Lamport
//! clock and a network queue, send each other their clocks; dsys runs them
//! (real processes or the simulator), checks the Lamport rules from their
//! logs and writes a report with figures.
//!
//! * `model`    — the parameters: rates (`1..6`, `1,3,6`), the draw.
//! * `msg`      — the wire messages as plain Rust values.
//! * `wire`     — their encoding (`proto/clocks.proto`).
//! * `machine`  — the sans-IO state machine of one model machine.
//! * `note`     — what a machine reports: console lines and events.
//! * `events`   — the typed events (`setup`, `tick`, `send`, `receive`, ...).
//! * `check`    — `dsys check clocks`: the Lamport rules from the logs.
//! * `cli`      — `dsys clocks NAME`: one machine in a terminal.
//! * `run`      — `dsys clocks run`: runs of real processes.
//! * `simulate` — `dsys clocks sim` and `sweep`: the model in virtual time.
//! * `analysis` — the numbers of a run: jumps, queues, rates, drift.
//! * `figures`  — the report's SVG figures.
//! * `report`   — `dsys clocks report`: the lab notebook (`report.md`).

pub mod analysis;
pub mod check;
pub mod cli;
pub mod events;
pub mod figures;
pub mod machine;
pub mod model;
pub mod msg;
pub mod note;
pub mod report;
pub mod run;
pub mod simulate;
pub mod wire;

pub use machine::{Cmd, Machine, Params, Timer};
pub use msg::Msg;
pub use note::Note;

use clap::{Args, Subcommand};

use crate::cli::Outcome;
use crate::tool::{Algorithm, Run, Tool};

/// `dsys clocks`: one machine (`dsys clocks NAME`), or a tool of the model.
#[derive(Args, Debug)]
pub struct ClocksArgs {
    #[command(subcommand)]
    pub tool: Option<ClocksTool>,
    #[command(flatten)]
    pub node: cli::NodeArgs,
}

#[derive(Subcommand, Debug)]
pub enum ClocksTool {
    /// Runs of real machine processes on loopback, then the report
    Run(run::RunArgs),
    /// The same runs in the simulator's virtual time, then the report
    Sim(simulate::SimArgs),
    /// Write DIR/report.md (with SVG figures) from the logs of any runs
    Report(report::ReportArgs),
    /// A grid of rate spreads × internal-event probabilities, simulated
    Sweep(simulate::SweepArgs),
}

impl Run for ClocksArgs {
    fn run(self) -> Outcome {
        match self.tool {
            Some(ClocksTool::Run(a)) => a.run(),
            Some(ClocksTool::Sim(a)) => a.run(),
            Some(ClocksTool::Report(a)) => a.run(),
            Some(ClocksTool::Sweep(a)) => a.run(),
            None => self.node.run(),
        }
    }
}

/// The clock model on the command line (`main.rs` lists it).
pub struct ClocksAlgorithm;

const NODE_HELP: &str = "One model machine per terminal:\n  \
dsys clocks l1   (and l2, l3 in two more terminals; peers.json names them)\n\
It picks its rate, waits for the others, then prints a line per tick:\n  \
#12    clock 31     queue 2    recv l3@29 (+3)\n\
Commands: status, quit (Ctrl-D, Ctrl-C).\n\n\
Or let dsys run and study it:\n  \
dsys clocks run               5 one-minute runs of 3 real processes, a report\n  \
dsys clocks sim               the same in virtual time (well under a second)\n  \
dsys clocks report DIR        the lab notebook from any runs' logs\n  \
dsys clocks sweep             rate spread x internal probability, tabulated\n  \
dsys check clocks FILE...     the Lamport rules, verified from the logs";

fn node_tweak(c: clap::Command) -> clap::Command {
    c.args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .after_help(NODE_HELP)
}

impl Algorithm for ClocksAlgorithm {
    fn name(&self) -> &'static str {
        "clocks"
    }
    fn about(&self) -> &'static str {
        "A logical-clock scale model: machines at their own rates, and its lab report"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "dsys clocks sim",
                "5 one-minute runs in virtual time, report.md",
            ),
            ("dsys clocks l1", "one model machine; l2, l3 elsewhere"),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<ClocksArgs>(self.about()).tweak(node_tweak))
    }
    fn sim(&self) -> Option<Tool> {
        Some(Tool::of::<simulate::SimArgs>(
            "The clock model in virtual time (as `dsys clocks sim`), then the report",
        ))
    }
    fn check(&self) -> Option<Tool> {
        Some(Tool::check::<check::ClocksCheck>(
            "Receives set max + 1, other actions + 1, one action per tick, ticks match the rate",
        ))
    }
}
