//! `dsys demo multicast`: N real nodes on loopback gRPC in one process, each
//! sending random words at random (Poisson) times; one node's deliveries are
//! printed as they happen; the last node is killed and restarted midway; it
//! ends by itself with the order checker's verdict over every node's
//! deliveries.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::{Rng as _, SeedableRng};

use super::check::OrderCheck;
use super::{Cmd, Multicast, Note};
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};
use crate::events::wall_us;
use crate::node::{Note as _, Rng};
use crate::scenario::{Demo, DemoDefaults, Plan, RealArgs, Staging, real::Nobody};

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub real: RealArgs,
    /// Words per second, per node (above 0, at most 10000)
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
}

/// The node whose deliveries the demo shows.
const WATCHED: NodeId = NodeId(0);

impl Demo for DemoArgs {
    const ALGORITHM: &'static str = "multicast";
    const DEFAULTS: DemoDefaults = DemoDefaults {
        nodes: "3",
        min_nodes: 2,
        duration: "15s",
        duration_help: None,
        crash_at: 0.4,
        restart_at: 0.6,
    };
    type P = Multicast;
    type Check = OrderCheck;

    fn real(&self) -> &RealArgs {
        &self.real
    }

    fn validate(&self) -> Result<(), CliError> {
        if !(self.rate > 0.0 && self.rate <= 10_000.0) {
            return Err(CliError::usage(format!(
                "--rate {}: words per second per node, above 0 and at most 10000",
                self.rate
            )));
        }
        Ok(())
    }

    fn stage(&self, cluster: &Arc<Cluster>) -> Result<Staging<Multicast>, CliError> {
        let duration = self.real.duration;
        // Every node's words at Poisson times until 3 s before the end (a
        // word planned while its node is down is not sent); the last 3 s let
        // the last words be delivered.
        let quiet = duration.saturating_sub(Duration::from_secs(3));
        let intro = format!(
            "demo: {} multicast nodes on loopback, each sending about {} random words/s for {}, then {} for the last to be delivered; showing {}'s deliveries.\n\
             Each word is labelled with its sender and the sender's own count: the total order interleaves the senders,\n\
             so counts of different senders mix, while each sender's own counts stay in order (FIFO).",
            cluster.len(),
            self.rate,
            humantime::format_duration(quiet),
            humantime::format_duration(duration - quiet),
            cluster.name(WATCHED)
        );
        let mut rng = Rng::from_os_rng();
        let mut plan = Vec::new();
        for id in cluster.ids() {
            let mut t = Duration::ZERO;
            for count in 1.. {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                t += Duration::from_secs_f64(-u.ln() / self.rate);
                if t >= quiet {
                    break;
                }
                let w = crate::words::pick(&mut rng);
                let text = format!("{w} ({} #{count})", cluster.name(id));
                plan.push((t, id, Cmd::Send(text)));
            }
        }
        let c = cluster.clone();
        Ok(Staging {
            intro,
            machine: Box::new(move |id| Multicast::new(id, c.ids(), wall_us())),
            workload: Box::new(Plan(plan)),
            spectator: Box::new(Nobody),
            victim: NodeId(cluster.len() as u32 - 1),
            headlines: Vec::new(),
        })
    }

    fn line(cluster: &Cluster, id: NodeId, note: &Note) -> Option<String> {
        match note {
            Note::Deliver { .. } | Note::Joined { .. } | Note::PeerDown { .. } if id == WATCHED => {
                note.line(cluster)
            }
            _ => None,
        }
    }

    fn killed(name: &str) -> String {
        format!(
            "killed {name}: messages now wait for it (nothing is delivered without every member's ack)"
        )
    }

    fn restarted(name: &str) -> String {
        format!(
            "restarted {name} with no state: it rejoins, and everyone delivers what waited, in the same order"
        )
    }

    fn verdict_title(&self) -> String {
        format!("--- verdict (all {} nodes) ---", self.real.nodes)
    }
}
