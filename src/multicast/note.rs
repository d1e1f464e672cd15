//! What a multicast node reports: deliveries (in total order), its own
//! multicasts, joins, and status.

use super::events::Event;
use crate::config::Cluster;
use crate::node::NodeId;

#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// This node multicast a chat message.
    Multicast {
        seq: u64,
        lamport: u64,
        text: String,
    },
    /// A message delivered here, in the total order.
    Deliver {
        origin: NodeId,
        seq: u64,
        lamport: u64,
        text: String,
    },
    /// Not joined yet: the message waits for these members to answer.
    Queued {
        waiting_for: Vec<NodeId>,
    },
    Joined {
        cut: u64,
    },
    /// `holding` of our messages wait for these members: new input waits.
    Full {
        holding: usize,
        waiting_for: Vec<NodeId>,
    },
    /// Members caught up: input is taken again.
    Resumed,
    PeerJoining {
        peer: NodeId,
    },
    /// A member that (re)joined while we were up has finished joining.
    PeerJoined {
        peer: NodeId,
    },
    PeerUp {
        peer: NodeId,
    },
    PeerDown {
        peer: NodeId,
    },
    Status {
        clock: u64,
        holdback: usize,
        delivered: u64,
        joined: bool,
        /// The first held-back messages: (sender, stamp, text, acks missing).
        waiting: Vec<(NodeId, u64, String, Vec<NodeId>)>,
    },
}

impl crate::node::Note for Note {
    type Event = Event;

    fn event(&self, c: &Cluster) -> Option<Event> {
        Some(match self {
            Note::Multicast { seq, lamport, text } => Event::Multicast {
                seq: *seq,
                lamport: *lamport,
                text: text.clone(),
            },
            Note::Deliver {
                origin,
                seq,
                lamport,
                text,
            } => Event::Deliver {
                origin: c.name(*origin).to_string(),
                seq: *seq,
                lamport: *lamport,
                text: text.clone(),
            },
            Note::Joined { cut } => Event::Joined { cut: *cut },
            Note::PeerUp { peer } => Event::PeerUp {
                peer: c.name(*peer).to_string(),
            },
            Note::PeerDown { peer } => Event::PeerDown {
                peer: c.name(*peer).to_string(),
            },
            _ => return None,
        })
    }

    fn line(&self, c: &Cluster) -> Option<String> {
        let names = |v: &[NodeId]| v.iter().map(|&n| c.name(n)).collect::<Vec<_>>().join(", ");
        Some(match self {
            Note::Deliver {
                origin,
                lamport,
                text,
                ..
            } => format!("[{lamport}] {}: {text}", c.name(*origin)),
            Note::Queued { waiting_for } => format!(
                "(queued: this node has not joined yet; waiting for {} to answer)",
                names(waiting_for)
            ),
            Note::Joined { .. } => "(joined the group)".into(),
            Note::Full {
                holding,
                waiting_for,
            } => format!(
                "({} slow or down: holding {holding} of our messages until it acknowledges them; new input waits)",
                if waiting_for.is_empty() {
                    "a member is".to_string()
                } else {
                    format!("{} is", names(waiting_for))
                }
            ),
            Note::Resumed => "(caught up: taking new input again)".into(),
            Note::PeerJoining { peer } => format!("({} is joining)", c.name(*peer)),
            Note::PeerJoined { peer } => format!("({} joined)", c.name(*peer)),
            Note::PeerUp { peer } => format!("({} is up)", c.name(*peer)),
            Note::PeerDown { peer } => format!("({} is DOWN: messages wait for it)", c.name(*peer)),
            Note::Status {
                clock,
                holdback,
                delivered,
                joined,
                waiting,
            } => {
                let mut s = format!(
                    "(lamport clock {clock}; delivered {delivered}; holdback queue {holdback}{})",
                    if *joined { "" } else { "; not joined yet" }
                );
                for (sender, stamp, text, missing) in waiting {
                    s.push_str(&format!(
                        "\n(  [{stamp}] {}: {text:?} waits for acks from {})",
                        c.name(*sender),
                        names(missing)
                    ));
                }
                s
            }
            Note::Multicast { .. } => return None,
        })
    }
}
