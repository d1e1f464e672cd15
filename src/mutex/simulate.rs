//! `dsys sim mutex`: every node locks at random times (`auto`), holds,
//! unlocks, on the simulator with the faults the user asks for, judged by
//! the mutex's checker; and the random fault scenarios of the campaign.

use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::{MutexCheck, MutexReport};
use super::{Cmd, Mutex, Note, Timing};
use crate::check::{Property, Report};
use crate::cli::CliError;
use crate::config::NodeId;
use crate::node::Rng;
use crate::scenario::sim::Setup;
use crate::scenario::{
    Checked, Defaults, Planned, Scenario, ScenarioArgs, SimRun, Simulated, Watch, Workload,
};
use crate::sim::campaign;
use crate::sim::{Happening, Sim};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Faults:\n  \
--crash l2@5s --restart l2@8s       kill l2 at 5s (state lost), back at 8s\n  \
--partition 'l1,l2|l3,l4,l5@4s-9s'  cut l1,l2 from l3,l4,l5, 4s to 9s\n  \
--pause l2@4s-6s                    stop l2 (SIGSTOP) from 4s to 6s\n\
Latency: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms.\n\
Nodes are l1..lN. Every node locks after a random think time (mean --think),\n\
stays inside for --hold, unlocks, until --duration. While a node is down,\n\
nobody can enter (every node's reply is needed): that is Ricart-Agrawala.\n\
The same seed gives the same run, byte for byte.")]
pub struct SimArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Mean think time between a node's exit and its next request
    #[arg(long, default_value = "200ms", value_parser = crate::duration::parse)]
    pub think: Duration,
    /// How long a node stays in the critical section
    #[arg(long, default_value = "20ms", value_parser = crate::duration::parse)]
    pub hold: Duration,
    /// Keep permissions between entries (Roucairol-Carvalho)
    #[arg(long)]
    pub reuse_permissions: bool,
}

/// The mutex's random load: every node types `auto` once all have greeted
/// each other, again after a restart (a person would), and `auto off` at
/// the end of the workload.
pub struct AutoLoad {
    pub begin: Duration,
    pub think: Duration,
    pub stop: Duration,
}

impl Workload<Mutex> for AutoLoad {
    fn begin(&mut self, nodes: &[NodeId]) -> Vec<Planned<Cmd>> {
        nodes
            .iter()
            .flat_map(|&id| {
                [
                    (self.begin, id, Cmd::Auto(Some(self.think))),
                    (self.stop, id, Cmd::Auto(None)),
                ]
            })
            .collect()
    }

    fn react(&mut self, now: Duration, h: &Happening<Note>) -> Vec<Planned<Cmd>> {
        match h {
            Happening::Restart(node) if now < self.stop => vec![
                (now, *node, Cmd::Auto(Some(self.think))),
                (self.stop, *node, Cmd::Auto(None)),
            ],
            _ => Vec::new(),
        }
    }
}

/// The checker, with the message counts taken from the simulator's traffic
/// (it sees every message; the checker only the events).
pub struct MutexWatch(Checked<MutexCheck>);

/// The mutex checker's report, after the simulator's traffic summary.
pub struct MutexSim {
    pub report: MutexReport,
    traffic: String,
}

impl std::ops::Deref for MutexSim {
    type Target = MutexReport;
    fn deref(&self) -> &MutexReport {
        &self.report
    }
}

impl Report for MutexSim {
    fn properties(&self) -> Vec<Property> {
        self.report.properties()
    }
    fn render(&self) -> String {
        format!("{}\n{}", self.traffic, self.report.render())
    }
}

impl Watch<Mutex> for MutexWatch {
    type Report = MutexSim;
    fn see(&mut self, sim: &Sim<Mutex>, h: &Happening<Note>) {
        self.0.see(sim, h);
    }
    fn finish(self, sim: &mut Sim<Mutex>, end: Duration) -> MutexSim {
        let mut report = self.0.finish(sim, end);
        let kind = |k: &str| sim.traffic.by_kind.get(k).copied().unwrap_or(0);
        report.messages = kind("request") + kind("reply");
        report.hellos = kind("hello");
        MutexSim {
            report,
            traffic: sim.traffic.summary(),
        }
    }
}

impl Simulated for SimArgs {
    const ALGORITHM: &'static str = "mutex";
    const DEFAULTS: Defaults = Defaults {
        nodes: "5",
        max_nodes: 64,
        duration: "30s",
        latency: None,
        duration_help: "How long nodes keep asking for the critical section (virtual time)",
    };
    type P = Mutex;
    type Watch = MutexWatch;

    fn scenario(&self) -> &ScenarioArgs {
        &self.scenario
    }

    fn options(&self) -> Vec<String> {
        if self.reuse_permissions {
            vec!["permissions reused".into()]
        } else {
            Vec::new()
        }
    }

    fn setup(&self, s: &mut Scenario) -> Result<Setup<Self>, CliError> {
        let n = s.cluster.len();
        let timing = Timing {
            hold: self.hold,
            ..Timing::default()
        };
        let reuse = self.reuse_permissions;
        // A later life has a larger incarnation, as a start time would give.
        let machine = move |me, rng, now: Duration| {
            Mutex::new(
                me,
                n,
                reuse,
                now.as_micros() as u64 + 1,
                timing.clone(),
                rng,
            )
        };
        // Requests begin once every node has greeted the others.
        let load = AutoLoad {
            begin: Duration::from_millis(100),
            think: self.think,
            stop: s.duration,
        };
        Ok(Setup::new(machine, load, MutexWatch(Checked::default())))
    }
}

/// Runs the simulation `a` describes.
pub fn simulate(a: &SimArgs) -> Result<SimRun<MutexSim>, CliError> {
    crate::scenario::sim::simulate(a)
}

/// A random faulty scenario: 2-6 nodes, a random network (latency, loss,
/// duplication), permission reuse or not, up to two crash/restarts,
/// sometimes a partition that heals and a pause, all over by 8 s.
pub fn scenario(seed: u64) -> Vec<String> {
    let mut r = Rng::seed_from_u64(seed);
    let nodes = r.random_range(2..=6usize);
    let mut a = campaign::Args::default();
    a.flag("--nodes", nodes)
        .flag("--seed", seed)
        .flag("--duration", "8s")
        .flag("--think", format!("{}ms", r.random_range(1..300)))
        .flag("--hold", format!("{}ms", r.random_range(0..30)))
        .random_latency(&mut r, 20)
        .flag("--loss", [0.0, 0.01, 0.05][r.random_range(0..3)])
        .flag("--duplicate", [0.0, 0.01][r.random_range(0..2)]);
    if r.random_bool(0.5) {
        a.switch("--reuse-permissions");
    }
    let crashes = r.random_range(0..=2);
    a.random_crashes(
        &mut r,
        nodes,
        crashes,
        (Duration::from_millis(500), Duration::from_secs(6)),
        Duration::from_secs(2),
    );
    if r.random_bool(0.3) {
        a.random_partition(
            &mut r,
            nodes,
            (Duration::from_millis(500), Duration::from_secs(6)),
            Duration::from_secs(2),
        );
    }
    if r.random_bool(0.2) {
        a.random_pause(
            &mut r,
            nodes,
            (Duration::from_millis(500), Duration::from_secs(6)),
            Duration::from_secs(2),
        );
    }
    a.0
}

/// A campaign's judgement: never two inside, entries in priority order,
/// every request granted once the faults were over, somebody entered.
pub fn judge(args: &[String]) -> Result<(), String> {
    crate::scenario::sim::judge::<SimArgs>(args)
}
