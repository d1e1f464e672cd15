//! `dsys demo mutex`: N real Ricart–Agrawala nodes on loopback gRPC in one
//! process, each locking at random times, one killed midway and restarted,
//! and the checker's verdict on everyone's events at the end.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;

use super::check::MutexCheck;
use super::note::Note;
use super::simulate::AutoLoad;
use super::{Mutex, Timing};
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};
use crate::events::wall_us;
use crate::node::{Note as _, Rng};
use crate::scenario::{Demo, DemoDefaults, RealArgs, Staging, real::Nobody};

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub real: RealArgs,
    /// Keep permissions between entries (Roucairol-Carvalho)
    #[arg(long)]
    pub reuse_permissions: bool,
}

impl Demo for DemoArgs {
    const ALGORITHM: &'static str = "mutex";
    const DEFAULTS: DemoDefaults = DemoDefaults {
        nodes: "3",
        min_nodes: 3,
        duration: "12s",
        duration_help: None,
        crash_at: 0.4,
        restart_at: 0.55,
    };
    type P = Mutex;
    type Check = MutexCheck;

    fn real(&self) -> &RealArgs {
        &self.real
    }

    fn stage(&self, cluster: &Arc<Cluster>) -> Result<Staging<Mutex>, CliError> {
        let timing = Timing {
            hold: Duration::from_millis(300),
            ..Timing::default()
        };
        let think = Duration::from_millis(1500);
        let n = cluster.len();
        let intro = format!(
            "demo: {n} Ricart-Agrawala nodes on {}; each locks at random times (mean {:.1}s), \
             stays inside {:.1}s; running {:.0}s{}",
            cluster.addr(NodeId(0)).ip(),
            think.as_secs_f64(),
            timing.hold.as_secs_f64(),
            self.real.duration.as_secs_f64(),
            if self.reuse_permissions {
                ", permissions reused"
            } else {
                ""
            }
        );
        let reuse = self.reuse_permissions;
        Ok(Staging {
            intro,
            machine: Box::new(move |id| {
                Mutex::new(id, n, reuse, wall_us(), timing.clone(), Rng::from_os_rng())
            }),
            workload: Box::new(AutoLoad {
                begin: Duration::from_millis(200),
                think,
                stop: self.real.duration.saturating_sub(Duration::from_secs(2)),
            }),
            spectator: Box::new(Nobody),
            victim: NodeId(n as u32 - 1),
            headlines: Vec::new(),
        })
    }

    fn line(cluster: &Cluster, _id: NodeId, note: &Note) -> Option<String> {
        // The steps of each request would flood the screen: entries, exits
        // and faults only.
        match note {
            Note::CsEnter { ts, messages, .. } => Some(format!(
                "entered the critical section (request ts={ts}, {messages} messages)"
            )),
            Note::CsExit { .. }
            | Note::WaitingForDown { .. }
            | Note::PeerRestarted { .. }
            | Note::PeerDown { .. }
            | Note::PeerUp { .. } => note.line(cluster),
            _ => None,
        }
    }

    fn killed(name: &str) -> String {
        format!(
            "killed {name} (kill -9): nobody can enter until it is back, since every node's reply is needed"
        )
    }

    fn restarted(name: &str) -> String {
        format!("restarted {name} with no state; the others ask it again and go on")
    }
}
