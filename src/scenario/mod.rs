//! What a run of an algorithm is, whichever clock runs it: a [`Scenario`]
//! (nodes, seed, duration, settle time, network, fault schedule) and a
//! [`Workload`] (what the nodes are asked to do, and when). The simulator
//! runs it in virtual time (`dsys sim`, the campaigns: [`sim`]); real nodes
//! in this process run it on the wall clock (`dsys demo`: [`real`]). Both
//! are judged by the algorithm's checker, whose properties decide the exit
//! code.
//!
//! An algorithm provides its machine, its workload, and a small
//! [`Simulated`] (its `dsys sim` flags and what to watch) and
//! [`Demo`] (what its demo shows); this module owns the rest.
//!
//! * `sim`  — the scenario on the simulator: `dsys sim <algorithm>`, judges.
//! * `real` — the scenario on real nodes: `dsys demo <algorithm>`.

pub mod real;
pub mod sim;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{Cluster, NodeId};
use crate::node::Protocol;
use crate::sim::{FaultArgs, Faults, Happening, NetArgs, NetModel};

/// The flags every `dsys sim <algorithm>` takes. Each algorithm sets its
/// own defaults ([`Defaults`]).
#[derive(Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// Number of nodes (l1..lN)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub nodes: u32,
    /// Seed of every random choice: the same seed gives the same run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long the workload runs (virtual time)
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Extra virtual time after the workload and the last fault, for what
    /// is still under way
    #[arg(long, visible_alias = "grace", default_value = "10s", value_parser = crate::duration::parse)]
    pub settle: Duration,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
    /// Write all nodes' events (virtual t_us) as JSON lines to FILE (replaced)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// An algorithm's defaults for the shared flags.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub nodes: &'static str,
    pub max_nodes: i64,
    pub duration: &'static str,
    /// `--latency`, if not the shared default.
    pub latency: Option<&'static str>,
    /// What `--duration` is for this algorithm's workload.
    pub duration_help: &'static str,
}

impl Defaults {
    /// Applies these defaults to a command built from [`ScenarioArgs`].
    pub fn apply(&self, c: clap::Command) -> clap::Command {
        let (nodes, max, help) = (self.nodes, self.max_nodes, self.duration_help);
        let c = c
            .mut_arg("nodes", |a| {
                a.default_value(nodes)
                    .value_parser(clap::value_parser!(u32).range(1..=max))
            })
            .mut_arg("duration", |a| a.default_value(self.duration).help(help));
        match self.latency {
            Some(l) => NetArgs::with_default_latency(c, l),
            None => c,
        }
    }
}

/// A scenario, checked and ready to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub cluster: Cluster,
    pub seed: u64,
    pub duration: Duration,
    pub settle: Duration,
    pub net: NetModel,
    pub faults: Faults,
    pub events: Option<PathBuf>,
}

impl Scenario {
    /// Checks `a` against a simulated cluster of `l1..lN`.
    pub fn from_args(a: &ScenarioArgs) -> Result<Scenario, String> {
        let cluster = Cluster::loopback(a.nodes as usize, 50051);
        Ok(Scenario {
            faults: a.faults.parse(&cluster)?,
            net: a.net.model()?,
            cluster,
            seed: a.seed,
            duration: a.duration,
            settle: a.settle,
            events: a.events.clone(),
        })
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.cluster.ids().collect()
    }
}

/// A command for a node at a time of the run (virtual or since the start).
pub type Planned<C> = (Duration, NodeId, C);

/// What the nodes are asked to do: the opening commands, and what to do
/// after something happened (a node entered, crashed, came back). The same
/// workload drives the simulator and real nodes.
pub trait Workload<P: Protocol>: Send {
    fn begin(&mut self, nodes: &[NodeId]) -> Vec<Planned<P::Cmd>>;
    fn react(&mut self, _now: Duration, _h: &Happening<P::Note>) -> Vec<Planned<P::Cmd>> {
        Vec::new()
    }
}

/// A workload that is a fixed plan: nothing it does depends on the run.
pub struct Plan<P: Protocol>(pub Vec<Planned<P::Cmd>>);

impl<P: Protocol> Workload<P> for Plan<P> {
    fn begin(&mut self, _nodes: &[NodeId]) -> Vec<Planned<P::Cmd>> {
        std::mem::take(&mut self.0)
    }
}

pub use real::{Demo, DemoDefaults, RealArgs, Spectator, Staging};
pub use sim::{Checked, SimRun, Simulated, Watch};
