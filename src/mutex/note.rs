//! What the mutex tells its user (console lines) and the event log
//! (`request`, `reply_sent`, `reply_received`, `deferred`, `cs_enter`, ...).

use std::time::Duration;

use super::events::Event;
use crate::config::Cluster;
use crate::node::NodeId;

/// Why a request was deferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// This node is inside the critical section.
    Inside,
    /// This node's own request (stamped `ts`) comes first.
    First { ts: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// `lock`: a request stamped `ts` was sent to `asked`; `kept` are peers
    /// whose permission this node still held (reuse).
    Requested {
        ts: u64,
        asked: Vec<NodeId>,
        kept: Vec<NodeId>,
        reuse: bool,
    },
    /// A reply for the current request: `got` of `need`.
    ReplyReceived {
        from: NodeId,
        got: usize,
        need: usize,
    },
    /// A reply sent (`deferred`: on leaving, to a request held back; the
    /// exit line names those).
    ReplySent {
        to: NodeId,
        ts: u64,
        deferred: bool,
    },
    Deferred {
        from: NodeId,
        ts: u64,
        why: Why,
    },
    /// Replied to `to`, whose request comes first, while waiting: its
    /// permission went with the reply, so it was asked again.
    AskedAgain {
        to: NodeId,
    },
    /// The request waits for `peer`, whose link is down (`reached`: it
    /// was up before, in this node's life).
    WaitingForDown {
        peer: NodeId,
        reached: bool,
    },
    CsEnter {
        ts: u64,
        /// Messages this entry cost (requests and replies received).
        messages: u64,
        /// Entered by `auto`, which leaves by itself after this long.
        auto_hold: Option<Duration>,
    },
    /// Left; the deferred requests answered now.
    CsExit {
        answered: Vec<NodeId>,
    },
    Cancelled {
        answered: Vec<NodeId>,
    },
    PeerDown {
        peer: NodeId,
    },
    PeerUp {
        peer: NodeId,
    },
    PeerRestarted {
        peer: NodeId,
    },
    Auto {
        mean: Option<Duration>,
        hold: Duration,
    },
    Refused(String),
    Status(Status),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub me: NodeId,
    /// `released`, `wanted` or `held`.
    pub state: &'static str,
    pub clock: u64,
    /// The current request's timestamp, if any.
    pub ts: Option<u64>,
    pub awaiting: Vec<NodeId>,
    pub down: Vec<NodeId>,
    pub deferred: Vec<(NodeId, u64)>,
    pub kept: Vec<NodeId>,
    pub reuse: bool,
    pub auto: Option<Duration>,
    pub entries: u64,
}

impl crate::node::Note for Note {
    type Event = Event;

    fn event(&self, c: &Cluster) -> Option<Event> {
        let n = |i: &NodeId| c.name(*i).to_string();
        Some(match self {
            Note::Requested {
                ts, asked, reuse, ..
            } => Event::Request {
                ts: *ts,
                asked: asked.iter().map(n).collect(),
                reuse: *reuse,
            },
            Note::ReplyReceived { from, .. } => Event::ReplyReceived { from: n(from) },
            Note::ReplySent { to, ts, .. } => Event::ReplySent { to: n(to), ts: *ts },
            Note::Deferred { from, ts, .. } => Event::Deferred {
                from: n(from),
                ts: *ts,
            },
            Note::CsEnter { ts, .. } => Event::CsEnter { ts: *ts },
            Note::CsExit { .. } => Event::CsExit,
            Note::Cancelled { .. } => Event::Cancelled,
            Note::PeerDown { peer } => Event::PeerDown { peer: n(peer) },
            Note::PeerUp { peer } => Event::PeerUp { peer: n(peer) },
            Note::PeerRestarted { peer } => Event::PeerRestarted { peer: n(peer) },
            Note::AskedAgain { .. }
            | Note::WaitingForDown { .. }
            | Note::Auto { .. }
            | Note::Refused(_)
            | Note::Status(_) => return None,
        })
    }

    fn line(&self, c: &Cluster) -> Option<String> {
        Some(match self {
            Note::Requested {
                ts, asked, kept, ..
            } => match (asked.is_empty(), kept.is_empty()) {
                (true, true) => format!("request ts={ts}: no other node to ask"),
                (true, false) => format!(
                    "request ts={ts}: every permission is still held from earlier entries ({}): no messages",
                    c.list(kept)
                ),
                (false, true) => format!("request ts={ts} sent to {}", c.list(asked)),
                (false, false) => format!(
                    "request ts={ts} sent to {} (permission still held from {})",
                    c.list(asked),
                    c.list(kept)
                ),
            },
            Note::ReplyReceived { from, got, need } => {
                format!("reply from {} ({got} of {need})", c.name(*from))
            }
            Note::ReplySent { deferred: true, .. } => return None,
            Note::ReplySent { to, ts, .. } => {
                format!("replied to {} (its request ts={ts})", c.name(*to))
            }
            Note::Deferred { from, ts, why } => match why {
                Why::Inside => format!(
                    "deferred {}'s request ts={ts}: we are inside; it gets its reply when we leave",
                    c.name(*from)
                ),
                Why::First { ts: mine } => format!(
                    "deferred {}'s request ts={ts}: ours (ts={mine}) comes first",
                    c.name(*from)
                ),
            },
            Note::AskedAgain { to } => format!(
                "{0}'s request comes first: replied, and asked {0} again",
                c.name(*to)
            ),
            Note::WaitingForDown {
                peer,
                reached: true,
            } => format!(
                "waiting for {}, which is DOWN: no node can enter until it is back (Ricart-Agrawala needs every node's reply)",
                c.name(*peer)
            ),
            Note::WaitingForDown {
                peer,
                reached: false,
            } => format!(
                "waiting for {0}, which has not answered yet (is it running?): every node's reply is needed; the request goes to {0} as soon as it is reachable",
                c.name(*peer)
            ),
            Note::CsEnter {
                ts,
                messages,
                auto_hold: None,
            } => format!(
                "entered the critical section (request ts={ts}, {messages} messages); type `unlock` to leave"
            ),
            Note::CsEnter {
                ts,
                messages,
                auto_hold: Some(hold),
            } => format!(
                "entered the critical section (request ts={ts}, {messages} messages); auto leaves it in {}",
                humantime::format_duration(*hold)
            ),
            Note::CsExit { answered } if answered.is_empty() => "left the critical section".into(),
            Note::CsExit { answered } => format!(
                "left the critical section; replied to the deferred: {}",
                c.list(answered)
            ),
            Note::Cancelled { answered } if answered.is_empty() => "request withdrawn".into(),
            Note::Cancelled { answered } => format!(
                "request withdrawn; replied to the deferred: {}",
                c.list(answered)
            ),
            Note::PeerDown { peer } => format!("{} is DOWN", c.name(*peer)),
            Note::PeerUp { peer } => format!("{} is up", c.name(*peer)),
            Note::PeerRestarted { peer } => format!(
                "{} restarted (with no memory of our requests): asking it again if needed",
                c.name(*peer)
            ),
            Note::Auto { mean: None, .. } => "auto off".into(),
            Note::Auto {
                mean: Some(m),
                hold,
            } => format!(
                "auto: lock at random times (mean {}), hold {}, unlock; `auto off` stops",
                humantime::format_duration(*m),
                humantime::format_duration(*hold)
            ),
            Note::Refused(why) => why.clone(),
            Note::Status(s) => status_text(c, s),
        })
    }

    fn routine(&self) -> bool {
        matches!(
            self,
            Note::ReplyReceived { .. } | Note::ReplySent { .. } | Note::Deferred { .. }
        )
    }
}

fn status_text(c: &Cluster, s: &Status) -> String {
    let mut out = format!(
        "{}: {}{}, Lamport clock {}, {} entries; permissions {}",
        c.name(s.me),
        s.state,
        s.ts.map(|t| format!(" (request ts={t})"))
            .unwrap_or_default(),
        s.clock,
        s.entries,
        if s.reuse { "reused" } else { "per request" }
    );
    if !s.awaiting.is_empty() {
        let list: Vec<String> = s
            .awaiting
            .iter()
            .map(|p| {
                if s.down.contains(p) {
                    format!("{} (DOWN)", c.name(*p))
                } else {
                    c.name(*p).to_string()
                }
            })
            .collect();
        out.push_str(&format!("\nreplies awaited from: {}", list.join(", ")));
    }
    if !s.deferred.is_empty() {
        let list: Vec<String> = s
            .deferred
            .iter()
            .map(|(p, ts)| format!("{} (ts={ts})", c.name(*p)))
            .collect();
        out.push_str(&format!("\nrequests deferred: {}", list.join(", ")));
    }
    if s.reuse && !s.kept.is_empty() {
        out.push_str(&format!("\npermissions held: {}", c.list(&s.kept)));
    }
    if let Some(m) = s.auto {
        out.push_str(&format!(
            "\nauto: on (mean {})",
            humantime::format_duration(m)
        ));
    }
    out
}
