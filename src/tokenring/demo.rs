//! `dsys demo tokenring`: N real nodes on loopback gRPC in one process, the
//! `scenario` workload, the token holder killed midway and restarted, and
//! the checker's verdict on everyone's events at the end.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;

use super::check::TokenRingCheck;
use super::scenario::Workload;
use super::{Note, Timing, TokenRing};
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};
use crate::events::wall_us;
use crate::node::{Note as _, Rng};
use crate::scenario::{Demo, DemoDefaults, RealArgs, Spectator, Staging};
use crate::sim::Happening;

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub real: RealArgs,
}

/// Who had the token last: the demo kills that node.
struct LastHolder(NodeId);

impl Spectator<TokenRing> for LastHolder {
    fn see(&mut self, h: &Happening<Note>) {
        if let Happening::Note(node, Note::Token { .. }) = h {
            self.0 = *node;
        }
    }
    fn victim(&self, _planned: NodeId) -> NodeId {
        self.0
    }
}

impl Demo for DemoArgs {
    const ALGORITHM: &'static str = "tokenring";
    const DEFAULTS: DemoDefaults = DemoDefaults {
        nodes: "5",
        min_nodes: 3,
        duration: "15s",
        duration_help: Some("How long the demo runs (nodes need about 3s before anyone can enter)"),
        crash_at: 0.4,
        restart_at: 0.5,
    };
    type P = TokenRing;
    type Check = TokenRingCheck;

    fn real(&self) -> &RealArgs {
        &self.real
    }

    fn stage(&self, cluster: &Arc<Cluster>) -> Result<Staging<TokenRing>, CliError> {
        let timing = Timing {
            hop_delay: Duration::from_millis(100),
            ..Timing::default()
        };
        let ids: Vec<NodeId> = cluster.ids().collect();
        let n = ids.len() as u32;
        let intro = format!(
            "demo: {} token-ring nodes on {}, ring {} -> {}; running {:.0}s",
            n,
            cluster.addr(ids[0]).ip(),
            ids.iter()
                .map(|&i| cluster.name(i))
                .collect::<Vec<_>>()
                .join(" -> "),
            cluster.name(ids[0]),
            self.real.duration.as_secs_f64()
        );
        let stop_locks = self.real.duration.saturating_sub(Duration::from_secs(3));
        let workload = Workload::new(wall_us(), stop_locks, timing.lease);
        Ok(Staging {
            intro,
            machine: Box::new(move |id| {
                TokenRing::new(
                    id,
                    NodeId((id.0 + 1) % n),
                    n as usize,
                    timing.clone(),
                    Rng::from_os_rng(),
                )
            }),
            workload: Box::new(workload),
            spectator: Box::new(LastHolder(ids[0])),
            victim: ids[0],
            headlines: Vec::new(),
        })
    }

    fn line(cluster: &Cluster, _id: NodeId, note: &Note) -> Option<String> {
        match note {
            Note::Token { .. }
            | Note::Status(_)
            | Note::LeaseRenewed { .. }
            | Note::LockRequested { .. } => None,
            // Nobody types in the demo: no "type unlock" hint.
            Note::CsEnter { hop, .. } => {
                Some(format!("entered the critical section (token hop {hop})"))
            }
            other => other.line(cluster),
        }
    }

    fn killed(name: &str) -> String {
        // The default schedule kills the last holder: the token may go down with it.
        format!("killed {name} (kill -9; the token may be lost with it); its state is lost")
    }

    fn restarted(name: &str) -> String {
        format!("restarted {name} with no state; the ring takes it back")
    }
}
