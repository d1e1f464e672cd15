//! `dsys demo gossip`: N real gossip nodes on loopback in one process,
//! linked in a printed topology, generating words quickly; one node is
//! killed and brought back midway; the checker's coverage verdict on
//! everyone's events ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;
use rand::seq::IndexedRandom as _;

use super::check::GossipCheck;
use super::topology::{Topology, build};
use super::{Cmd, Gossip, Note, Params, WordId};
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};
use crate::events::wall_us;
use crate::node::{Note as _, Rng};
use crate::scenario::{Demo, DemoDefaults, Plan, RealArgs, Spectator, Staging};
use crate::sim::Happening;

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub real: RealArgs,
    /// Who links with whom: line (each to the next), ring, grid (4
    /// neighbors), star (l1 the hub), tree4 (up to 4 children), random (a
    /// ring plus two random chords per node), full (everyone)
    #[arg(long, value_enum, default_value_t = Topology::Random)]
    pub topology: Topology,
}

/// Which words each live node knows: the demo's tally every two seconds.
#[derive(Default)]
struct Tally {
    known: BTreeMap<NodeId, BTreeSet<WordId>>,
    all: BTreeSet<WordId>,
}

impl Spectator<Gossip> for Tally {
    fn see(&mut self, h: &Happening<Note>) {
        match h {
            Happening::Note(node, Note::Learned { id, .. }) => {
                self.all.insert(*id);
                self.known.entry(*node).or_default().insert(*id);
            }
            Happening::Crash(node) => {
                self.known.remove(node);
            }
            _ => {}
        }
    }

    fn progress(&self, live: &[NodeId]) -> Option<String> {
        let everywhere = self
            .all
            .iter()
            .filter(|w| {
                live.iter()
                    .all(|n| self.known.get(n).is_some_and(|k| k.contains(w)))
            })
            .count();
        Some(format!(
            "{} words so far; {} of them known at all {} live nodes",
            self.all.len(),
            everywhere,
            live.len()
        ))
    }
}

impl Demo for DemoArgs {
    const ALGORITHM: &'static str = "gossip";
    const DEFAULTS: DemoDefaults = DemoDefaults {
        nodes: "5",
        min_nodes: 3,
        duration: "20s",
        duration_help: None,
        crash_at: 0.35,
        restart_at: 0.55,
    };
    type P = Gossip;
    type Check = GossipCheck;

    fn real(&self) -> &RealArgs {
        &self.real
    }

    fn stage(&self, cluster: &Arc<Cluster>) -> Result<Staging<Gossip>, CliError> {
        let mut rng = Rng::from_os_rng();
        let graph = build(self.topology, cluster.len(), &mut rng);
        let params = Params {
            mean_interval: Duration::from_millis(1000),
            anti_entropy: Duration::from_secs(1),
            ..Params::default()
        };
        let duration = self.real.duration;
        let mut intro = format!(
            "demo: {} gossip nodes on loopback, {} topology, each making a word about every {:.1}s; {:.0}s",
            cluster.len(),
            clap::ValueEnum::to_possible_value(&self.topology).map_or_else(
                || format!("{:?}", self.topology),
                |v| v.get_name().to_string()
            ),
            params.mean_interval.as_secs_f64(),
            duration.as_secs_f64()
        );
        for id in cluster.ids() {
            let ns: Vec<&str> = graph[id.index()].iter().map(|&n| cluster.name(n)).collect();
            let _ = write!(
                intro,
                "\n  {} ({}) -- {}",
                cluster.name(id),
                cluster.addr(id),
                ns.join(", ")
            );
        }
        let ids: Vec<NodeId> = cluster.ids().collect();
        let victim = *ids
            .choose(&mut rng)
            .ok_or(CliError::Failed("no nodes".into()))?;
        let quiet_at = duration.saturating_sub(Duration::from_secs(5));
        let stop = ids.iter().map(|&id| (quiet_at, id, Cmd::Generate(false)));
        Ok(Staging {
            intro,
            machine: Box::new(move |id| {
                Gossip::new(
                    id,
                    graph[id.index()].iter().copied().collect::<Vec<_>>(),
                    wall_us(),
                    params.clone(),
                    crate::words::all(),
                    Rng::from_os_rng(),
                )
            }),
            workload: Box::new(Plan(stop.collect())),
            spectator: Box::new(Tally::default()),
            victim,
            headlines: vec![(
                quiet_at,
                "generators off; letting the last words spread".into(),
            )],
        })
    }

    fn line(cluster: &Cluster, _id: NodeId, note: &Note) -> Option<String> {
        match note {
            Note::Learned {
                text, from: None, ..
            } => Some(format!("made {text:?}")),
            Note::Learned { .. } => None,
            other => other.line(cluster),
        }
    }

    fn killed(name: &str) -> String {
        format!("killed {name} (its words and links are gone with it)")
    }

    fn restarted(name: &str) -> String {
        format!("restarted {name} with no state; anti-entropy will catch it up")
    }
}
