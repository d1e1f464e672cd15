//! What a gossip node tells its user (console lines) and the event log
//! (`learn`, `link`, ...).

use std::time::Duration;

use super::events::Event;
use super::msg::WordId;
use crate::config::Cluster;
use crate::node::NodeId;

/// A word this node knows, and how it got it.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    pub text: String,
    /// Who told us; `None` when made here (generated or `say`).
    pub from: Option<NodeId>,
    pub at: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    Learned {
        id: WordId,
        text: String,
        from: Option<NodeId>,
    },
    Linked {
        peer: NodeId,
    },
    LinkedBy {
        peer: NodeId,
    },
    AlreadyLinked {
        peer: NodeId,
    },
    LinkFailed {
        peer: NodeId,
        retrying: bool,
    },
    Unlinked {
        peer: NodeId,
    },
    UnlinkedBy {
        peer: NodeId,
    },
    /// Gave up linking with a node that never answered.
    StoppedLinking {
        peer: NodeId,
    },
    PeerDown {
        peer: NodeId,
    },
    PeerUp {
        peer: NodeId,
    },
    Generator {
        on: bool,
        mean: Duration,
    },
    Refused(String),
    Peers {
        neighbors: Vec<NodeId>,
        linking: Vec<NodeId>,
    },
    /// (word, text, told by, how long ago)
    Words(Vec<(WordId, String, Option<NodeId>, Duration)>),
    Status {
        words: usize,
        hot: usize,
        sent: u64,
        received: u64,
        neighbors: usize,
        generating: bool,
    },
}

/// Where a word came from, in the one wording every output uses:
/// `made here`, `made and told by l2`, `made by l3, told by l2`.
pub fn provenance(c: &Cluster, origin: NodeId, told_by: Option<NodeId>) -> String {
    match told_by {
        None => "made here".into(),
        Some(t) if t == origin => format!("made and told by {}", c.name(t)),
        Some(t) => format!("made by {}, told by {}", c.name(origin), c.name(t)),
    }
}

impl crate::node::Note for Note {
    type Event = Event;

    fn event(&self, c: &Cluster) -> Option<Event> {
        let n = |id: &NodeId| c.name(*id).to_string();
        Some(match self {
            Note::Learned { id, text, from } => Event::Learn {
                word: text.clone(),
                origin: n(&id.origin),
                seq: id.seq,
                from: from.as_ref().map(n),
            },
            Note::Linked { peer } | Note::LinkedBy { peer } => Event::Link { peer: n(peer) },
            Note::Unlinked { peer } | Note::UnlinkedBy { peer } => Event::Unlink { peer: n(peer) },
            Note::LinkFailed { peer, .. } => Event::LinkFailed { peer: n(peer) },
            Note::PeerDown { peer } => Event::PeerDown { peer: n(peer) },
            Note::PeerUp { peer } => Event::PeerUp { peer: n(peer) },
            _ => return None,
        })
    }

    fn line(&self, c: &Cluster) -> Option<String> {
        Some(match self {
            Note::Learned { id, text, from } => {
                format!("{text:?} ({})", provenance(c, id.origin, *from))
            }
            Note::Linked { peer } => format!("linked with {}", c.name(*peer)),
            Note::LinkedBy { peer } => format!("{} linked with us", c.name(*peer)),
            Note::AlreadyLinked { peer } => format!("{} is already a neighbor", c.name(*peer)),
            Note::LinkFailed {
                peer,
                retrying: true,
            } => format!(
                "{} does not answer; will keep trying to link",
                c.name(*peer)
            ),
            Note::LinkFailed {
                peer,
                retrying: false,
            } => format!(
                "{} does not answer (is it running?); not linked",
                c.name(*peer)
            ),
            Note::Unlinked { peer } => format!("removed {}", c.name(*peer)),
            Note::UnlinkedBy { peer } => format!("{} removed us", c.name(*peer)),
            Note::Refused(why) => why.clone(),
            Note::StoppedLinking { peer } => {
                format!("stopped trying to link with {}", c.name(*peer))
            }
            Note::PeerDown { peer } => format!(
                "neighbor {} is down: words for it wait, and it catches up when it is back",
                c.name(*peer)
            ),
            Note::PeerUp { peer } => format!("neighbor {} is up", c.name(*peer)),
            Note::Generator { on: true, mean } => format!(
                "generating words, one every {:.1}s on average",
                mean.as_secs_f64()
            ),
            Note::Generator { on: false, .. } => "not generating words".into(),
            Note::Peers { .. } | Note::Words(_) | Note::Status { .. } => return None,
        })
    }
}
