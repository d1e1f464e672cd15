//! The faults a simulation runs with: crashes, restarts, pauses and
//! partitions on a schedule, plus the network's latency, loss and duplication. One
//! [`Faults`] for every algorithm's simulator, one set of flags
//! ([`FaultArgs`], [`NetArgs`]) for every `dsys sim` command.

use std::time::Duration;

use clap::Args;

use super::{Latency, NetModel, Sim};
use crate::config::{Cluster, NodeId};
use crate::node::Protocol;

/// A cut between two sides of the cluster for a while.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub side_a: Vec<NodeId>,
    pub side_b: Vec<NodeId>,
    pub from: Duration,
    pub to: Duration,
}

/// A fault schedule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    pub crashes: Vec<(NodeId, Duration)>,
    pub restarts: Vec<(NodeId, Duration)>,
    /// A node stopped (SIGSTOP) from `.1` to `.2`: it does nothing, and
    /// what reached it meanwhile is handled when it resumes.
    pub pauses: Vec<(NodeId, Duration, Duration)>,
    pub partitions: Vec<Partition>,
}

impl Faults {
    /// When the last fault ends (a restart, a heal).
    pub fn last(&self) -> Duration {
        let c = self.crashes.iter().chain(&self.restarts).map(|&(_, t)| t);
        let p = self.partitions.iter().map(|p| p.to);
        let z = self.pauses.iter().map(|p| p.2);
        c.chain(p).chain(z).max().unwrap_or_default()
    }

    /// Schedules every fault on `sim`.
    pub fn apply<P: Protocol>(&self, sim: &mut Sim<P>) {
        for &(node, t) in &self.crashes {
            sim.crash_at(t, node);
        }
        for &(node, t) in &self.restarts {
            sim.restart_at(t, node);
        }
        for p in &self.partitions {
            sim.partition_at(p.from, &p.side_a, &p.side_b);
            sim.heal_at(p.to, &p.side_a, &p.side_b);
        }
        for &(node, from, to) in &self.pauses {
            sim.pause_at(from, node, to);
        }
    }

    /// Is `node` down at the end of the schedule (crashed, never restarted)?
    pub fn down_at_end(&self, node: NodeId) -> bool {
        let last =
            |v: &[(NodeId, Duration)]| v.iter().filter(|(n, _)| *n == node).map(|&(_, t)| t).max();
        match (last(&self.crashes), last(&self.restarts)) {
            (Some(c), Some(r)) => c > r,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// The fault flags every `dsys sim` command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct FaultArgs {
    /// Kill a node: NODE@TIME, e.g. l2@5s (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    pub crash: Vec<String>,
    /// Restart a killed node with no state: NODE@TIME (repeatable)
    #[arg(long, value_name = "NODE@TIME")]
    pub restart: Vec<String>,
    /// Cut links between two sides for a while: 'A,B|C,D@FROM-TO', or 'A@FROM-TO' to isolate A (repeatable)
    #[arg(long, value_name = "SPEC")]
    pub partition: Vec<String>,
    /// Pause a node as SIGSTOP would, and resume it: NODE@FROM-TO, e.g. l2@5s-8s (repeatable)
    #[arg(long, value_name = "NODE@FROM-TO")]
    pub pause: Vec<String>,
}

impl FaultArgs {
    /// The schedule, checked against the cluster: names exist, times
    /// parse, every restart follows a crash of the same node.
    pub fn parse(&self, c: &Cluster) -> Result<Faults, String> {
        let crashes = parse_node_times(c, &self.crash, "--crash")?;
        let restarts = parse_node_times(c, &self.restart, "--restart")?;
        check_story(c, &crashes, &restarts)?;
        let partitions = self
            .partition
            .iter()
            .map(|s| parse_partition(c, s).map_err(|e| format!("--partition {s:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let pauses = self
            .pause
            .iter()
            .map(|s| parse_pause(c, s).map_err(|e| format!("--pause {s:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Faults {
            crashes,
            restarts,
            pauses,
            partitions,
        })
    }
}

/// The network flags every `dsys sim` command takes. Each command sets its
/// own default latency (see `with_default_latency`).
#[derive(Args, Clone, Debug)]
pub struct NetArgs {
    /// One-way message delay: 2ms (constant), 1ms..10ms (uniform), exp:2ms or exp:1ms+2ms (exponential, after a floor)
    #[arg(long, default_value = "200us..2ms", value_name = "LATENCY")]
    pub latency: String,
    /// Probability that a message is lost; as with a broken TCP stream, the sender then hears its link went down, and its next message reconnects
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_name = "P"
    )]
    pub loss: f64,
    /// Probability that a message is delivered twice
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_name = "P"
    )]
    pub duplicate: f64,
}

impl NetArgs {
    pub fn model(&self) -> Result<NetModel, String> {
        for (flag, p) in [("--loss", self.loss), ("--duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{flag} {p}: a probability is between 0 and 1"));
            }
        }
        Ok(NetModel {
            latency: Latency::parse(&self.latency).map_err(|e| format!("--latency: {e}"))?,
            loss: self.loss,
            duplicate: self.duplicate,
            ..NetModel::default()
        })
    }

    /// Changes the default of `--latency` in a command built from these args.
    pub fn with_default_latency(cmd: clap::Command, latency: &'static str) -> clap::Command {
        cmd.mut_arg("latency", |a| a.default_value(latency))
    }
}

/// Every restart must follow a crash of the same node (and come before
/// that node's next crash): a schedule that is not a story is an error.
fn check_story(
    c: &Cluster,
    crashes: &[(NodeId, Duration)],
    restarts: &[(NodeId, Duration)],
) -> Result<(), String> {
    for node in c.ids() {
        let mut steps: Vec<(Duration, bool)> = crashes
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|&(_, t)| (t, true))
            .chain(
                restarts
                    .iter()
                    .filter(|(n, _)| *n == node)
                    .map(|&(_, t)| (t, false)),
            )
            .collect();
        steps.sort();
        let mut down = false;
        for (t, crash) in steps {
            let name = c.name(node);
            let at = format!("{:.3}s", t.as_secs_f64());
            match (crash, down) {
                (true, true) => {
                    return Err(format!(
                        "--crash {name}@{at}: {name} is down already (restart it first)"
                    ));
                }
                (false, false) => {
                    return Err(format!(
                        "--restart {name}@{at}: {name} is not down then (crash it earlier with --crash)"
                    ));
                }
                _ => down = crash,
            }
        }
    }
    Ok(())
}

fn parse_node_times(
    c: &Cluster,
    specs: &[String],
    flag: &str,
) -> Result<Vec<(NodeId, Duration)>, String> {
    specs
        .iter()
        .map(|s| {
            let (node, at) = s
                .split_once('@')
                .ok_or_else(|| format!("{flag} {s:?}: write NODE@TIME, e.g. l2@5s"))?;
            let id = c.require(node).map_err(|e| format!("{flag} {s:?}: {e}"))?;
            let t = crate::duration::parse(at).map_err(|e| format!("{flag} {s:?}: {e}"))?;
            Ok((id, t))
        })
        .collect()
}

/// Parses `FROM-TO`, e.g. `4s-9s`.
fn parse_window(times: &str) -> Result<(Duration, Duration), String> {
    let (from, to) = times
        .split_once('-')
        .ok_or("the time is FROM-TO, e.g. 4s-9s")?;
    let (from, to) = (crate::duration::parse(from)?, crate::duration::parse(to)?);
    if to <= from {
        return Err(format!("{times}: the end must come after the start"));
    }
    Ok((from, to))
}

/// Parses `NODE@FROM-TO`.
fn parse_pause(c: &Cluster, spec: &str) -> Result<(NodeId, Duration, Duration), String> {
    let (node, times) = spec
        .split_once('@')
        .ok_or("write NODE@FROM-TO, e.g. l2@5s-8s")?;
    let id = c.require(node.trim()).map_err(|e| e.to_string())?;
    let (from, to) = parse_window(times)?;
    Ok((id, from, to))
}

/// Parses `A,B|C,D@FROM-TO` (cut A,B from C,D) or `A@FROM-TO` (cut A from
/// everyone else).
pub fn parse_partition(c: &Cluster, spec: &str) -> Result<Partition, String> {
    let (sides, times) = spec
        .rsplit_once('@')
        .ok_or("write SIDE|SIDE@FROM-TO, e.g. l1,l2|l3@4s-9s")?;
    let (from, to) = parse_window(times)?;
    let side = |s: &str| -> Result<Vec<NodeId>, String> {
        s.split(',')
            .map(|n| c.require(n.trim()).map_err(|e| e.to_string()))
            .collect()
    };
    let (side_a, side_b) = match sides.split_once('|') {
        Some((a, b)) => (side(a)?, side(b)?),
        None => {
            let a = side(sides)?;
            let b = c.ids().filter(|i| !a.contains(i)).collect();
            (a, b)
        }
    };
    if side_a.is_empty() || side_b.is_empty() {
        return Err("both sides need at least one node".into());
    }
    Ok(Partition {
        side_a,
        side_b,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_bad_stories_are_refused() {
        let c = Cluster::loopback(3, 40000);
        let f = FaultArgs {
            crash: vec!["l2@1s".into()],
            restart: vec!["l2@2s".into()],
            partition: vec!["l1|l2,l3@3s-4s".into(), "l3@5s-6s".into()],
            pause: vec!["l1@6s-7s".into()],
        }
        .parse(&c)
        .unwrap();
        assert_eq!(f.last(), Duration::from_secs(7));
        assert_eq!(
            f.pauses,
            vec![(NodeId(0), Duration::from_secs(6), Duration::from_secs(7))]
        );
        assert_eq!(f.partitions[1].side_b, vec![NodeId(0), NodeId(1)]);
        assert!(!f.down_at_end(NodeId(1)));
        let bad = FaultArgs {
            restart: vec!["l2@2s".into()],
            ..Default::default()
        };
        assert!(bad.parse(&c).unwrap_err().contains("not down then"));
        let bad = FaultArgs {
            partition: vec!["l1|l2@4s-3s".into()],
            ..Default::default()
        };
        assert!(bad.parse(&c).unwrap_err().contains("must come after"));
        let bad = FaultArgs {
            pause: vec!["l9@1s-2s".into()],
            ..Default::default()
        };
        assert!(bad.parse(&c).unwrap_err().contains("l9"));
    }
}
