//! What the token ring tells its user (console lines) and the event log
//! (`token`, `cs_enter`, `cs_exit`, `token_regenerated`, ...).

use std::time::Duration;

use super::events::Event;
use super::msg::Gen;
use crate::config::Cluster;
use crate::node::NodeId;

#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// The token arrived here.
    Token {
        generation: Gen,
        hop: u64,
        from: NodeId,
    },
    TokenStarted {
        generation: Gen,
        ring: Vec<NodeId>,
    },
    /// The `start` walk from `origin` via `next` never came back.
    StartFailed {
        origin: NodeId,
        next: NodeId,
    },
    /// A walk from `origin` came back here: the `next` links loop without it.
    WalkLoop {
        origin: NodeId,
    },
    TokenRegenerated {
        generation: Gen,
        hop: u64,
        silent_for: Duration,
    },
    TokenRerouted {
        skipped: NodeId,
        generation: Gen,
    },
    TokenDropped {
        generation: Gen,
        reason: &'static str,
    },
    LockRequested,
    LockCancelled,
    WaitingForMajority {
        granted: usize,
        need: usize,
    },
    /// `lease_left`: how long the lease runs from now, unless renewed.
    CsEnter {
        hop: u64,
        lease_left: Duration,
    },
    LeaseRenewed {
        lease_left: Duration,
    },
    CsExit {
        hop: u64,
        forced: bool,
    },
    PeerDown {
        peer: NodeId,
    },
    PeerUp {
        peer: NodeId,
    },
    Refused(String),
    Status(Status),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub me: NodeId,
    pub next: NodeId,
    pub ring: Vec<NodeId>,
    pub generation: Option<Gen>,
    pub hop: u64,
    pub holding: bool,
    pub in_cs: bool,
    pub waiting: bool,
    pub last_seen_ago: Option<Duration>,
    pub suspects: Vec<NodeId>,
    pub lease_granted_to: Option<NodeId>,
}

fn gen_str(c: &Cluster, g: Gen) -> String {
    format!("{}@{}", g.counter, c.name(g.minter))
}

fn names(c: &Cluster, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|&i| c.name(i).to_string()).collect()
}

impl crate::node::Note for Note {
    type Event = Event;

    fn routine(&self) -> bool {
        matches!(self, Note::Token { .. } | Note::LeaseRenewed { .. })
    }

    fn event(&self, c: &Cluster) -> Option<Event> {
        let n = |id: NodeId| c.name(id).to_string();
        Some(match self {
            Note::Token {
                generation,
                hop,
                from,
            } => Event::Token {
                hop: *hop,
                generation: gen_str(c, *generation),
                from: n(*from),
            },
            Note::TokenStarted { generation, ring } => Event::TokenStarted {
                generation: gen_str(c, *generation),
                ring: names(c, ring),
            },
            Note::TokenRegenerated {
                generation,
                hop,
                silent_for,
            } => Event::TokenRegenerated {
                generation: gen_str(c, *generation),
                hop: *hop,
                silent_ms: silent_for.as_millis() as u64,
            },
            Note::TokenRerouted {
                skipped,
                generation,
            } => Event::TokenRerouted {
                skipped: n(*skipped),
                generation: gen_str(c, *generation),
            },
            Note::TokenDropped { generation, reason } => Event::TokenDropped {
                generation: gen_str(c, *generation),
                reason: reason.to_string(),
            },
            Note::LockRequested => Event::Lock,
            Note::LockCancelled => Event::LockCancelled,
            Note::CsEnter { hop, lease_left } => Event::CsEnter {
                hop: *hop,
                lease_us: lease_left.as_micros() as u64,
            },
            Note::LeaseRenewed { lease_left } => Event::LeaseRenewed {
                lease_us: lease_left.as_micros() as u64,
            },
            Note::CsExit { hop, forced } => Event::CsExit {
                hop: *hop,
                forced: *forced,
            },
            Note::PeerDown { peer } => Event::PeerDown { peer: n(*peer) },
            Note::PeerUp { peer } => Event::PeerUp { peer: n(*peer) },
            Note::StartFailed { .. } => Event::StartFailed,
            Note::WalkLoop { origin } => Event::WalkLoop { origin: n(*origin) },
            Note::WaitingForMajority { granted, need } => Event::LeaseRefused {
                granted: *granted as u64,
                need: *need as u64,
            },
            Note::Refused(_) | Note::Status(_) => return None,
        })
    }

    fn line(&self, c: &Cluster) -> Option<String> {
        Some(match self {
            Note::Token { hop, .. } => format!("token {hop}"),
            Note::TokenStarted { generation, ring } => format!(
                "started token {} on ring {}",
                gen_str(c, *generation),
                names(c, ring).join(" -> ")
            ),
            Note::StartFailed { origin, next } => format!(
                "start failed: the ring walk ({} -> {} -> ... following each node's --next) did not come back to {} in 3 tries. Is every node of the ring running, and does following --next from {} lead back to it? (status on each node shows its next)",
                c.name(*origin),
                c.name(*next),
                c.name(*origin),
                c.name(*origin)
            ),
            Note::WalkLoop { origin } => format!(
                "{}'s ring walk came back here without reaching {}: following --next from here loops without {}; check the --next of the nodes in between",
                c.name(*origin),
                c.name(*origin),
                c.name(*origin)
            ),
            Note::TokenRegenerated { generation, silent_for, .. } => format!(
                "token lost (nothing heard for {:.1}s): regenerated it as generation {}",
                silent_for.as_secs_f64(),
                gen_str(c, *generation)
            ),
            Note::TokenRerouted { skipped, generation } => format!(
                "{} did not take the token: routing around it (generation {})",
                c.name(*skipped),
                gen_str(c, *generation)
            ),
            Note::TokenDropped { generation, reason } => {
                format!("dropped a {reason} token (generation {})", gen_str(c, *generation))
            }
            Note::LockRequested => "waiting for the token to enter the critical section".into(),
            Note::LockCancelled => "lock request cancelled".into(),
            Note::WaitingForMajority { granted, need } => format!(
                "waiting for a majority of the ring to let us in: {granted} of the {need} votes needed (some nodes are down, cut off, or another node is inside); will keep trying"
            ),
            Note::CsEnter { hop, .. } => {
                format!("entered the critical section (token hop {hop}); type `unlock` to leave")
            }
            Note::CsExit { forced: false, .. } => "left the critical section".into(),
            Note::CsExit { forced: true, .. } => "LOST the critical section: no majority renewed the lease (network trouble); will re-enter when possible".into(),
            Note::PeerDown { peer } => format!("{} looks down", c.name(*peer)),
            Note::PeerUp { peer } => format!("{} is back", c.name(*peer)),
            Note::Refused(why) => why.clone(),
            Note::LeaseRenewed { .. } => return None,
            Note::Status(s) => status_text(c, s),
        })
    }
}

fn status_text(c: &Cluster, s: &Status) -> String {
    let token = match (s.generation, s.holding) {
        (None, _) => "never seen (type `start` on one node)".to_string(),
        (Some(g), true) => format!("HELD here, generation {}, hop {}", gen_str(c, g), s.hop),
        (Some(g), false) => format!(
            "seen {} ago, generation {}, hop {}",
            s.last_seen_ago
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "?".into()),
            gen_str(c, g),
            s.hop
        ),
    };
    let cs = if s.in_cs {
        "IN the critical section"
    } else if s.waiting {
        "waiting for it"
    } else {
        "not in it"
    };
    let ring = if s.ring.is_empty() {
        "unknown until a token passes".to_string()
    } else {
        names(c, &s.ring).join(" -> ")
    };
    let suspects = if s.suspects.is_empty() {
        "none".to_string()
    } else {
        names(c, &s.suspects).join(", ")
    };
    format!(
        "node: {} ({})\nnext: {}\nring: {ring}\ntoken: {token}\ncritical section: {cs}\nskipped as down: {suspects}\nmy lease vote: {}",
        c.name(s.me),
        c.addr(s.me),
        c.name(s.next),
        s.lease_granted_to.map_or("free", |n| c.name(n)),
    )
}
