//! What the token ring tells its user (console lines) and the event log
//! (`token`, `cs_enter`, `cs_exit`, `cs_lost`, `token_regenerated`, ...).

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
    /// `start`: the ring walk set out to `next` (try `attempt` of `tries`);
    /// on a retry, `reached` is the last node the previous walk was known
    /// to reach and the node it went on to.
    Walking {
        next: NodeId,
        attempt: u32,
        tries: u32,
        reached: Option<(NodeId, NodeId)>,
    },
    /// The `start` walk never came back, in any try.
    StartFailed {
        origin: NodeId,
        next: NodeId,
        reached: Option<(NodeId, NodeId)>,
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
    /// `lock`; `no_token`: this node has never seen a token.
    LockRequested {
        no_token: bool,
    },
    LockCancelled,
    /// A lease round failed: `granted` of `need` votes, of `voters`.
    WaitingForMajority {
        granted: usize,
        need: usize,
        voters: usize,
    },
    /// In the critical section with the token at `hop` of `generation`,
    /// lease round `round`; the lease runs `lease_left` from now unless
    /// renewed. (generation, hop, round) is the fencing token.
    CsEnter {
        hop: u64,
        generation: Gen,
        round: u64,
        lease_left: Duration,
    },
    LeaseRenewed {
        lease_left: Duration,
    },
    /// Left the critical section on purpose (`unlock`, quit).
    CsExit {
        hop: u64,
    },
    /// The lease ran out (nobody renewed it, or this process was paused):
    /// the section ended at the lease's end, `late` ago.
    CsLost {
        hop: u64,
        late: Duration,
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
    /// Who had the token when it was last heard of.
    pub last_holder: Option<NodeId>,
    pub in_cs: bool,
    pub waiting: bool,
    pub last_seen_ago: Option<Duration>,
    pub suspects: Vec<NodeId>,
    pub lease_granted_to: Option<NodeId>,
    /// Lease voters (the machines file) and the majority needed.
    pub voters: usize,
}

pub fn gen_str(c: &Cluster, g: Gen) -> String {
    format!("{}@{}", g.counter, c.name(g.minter))
}

fn names(c: &Cluster, ids: &[NodeId]) -> Vec<String> {
    ids.iter().map(|&i| c.name(i).to_string()).collect()
}

/// How far a ring walk got; `my_next` is the walking node's next.
fn walk_text(c: &Cluster, my_next: NodeId, reached: Option<(NodeId, NodeId)>) -> String {
    match reached {
        Some((at, next)) => format!(
            "it reached {}, whose next is {}, and went no further ({} is not running, not reachable, or not passing it on)",
            c.name(at),
            c.name(next),
            c.name(next)
        ),
        None => format!(
            "it did not get past the first hop: {} (this node's next) did not pass it on ({} is not running, not reachable, or has no --next yet)",
            c.name(my_next),
            c.name(my_next)
        ),
    }
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
            Note::LockRequested { .. } => Event::Lock,
            Note::LockCancelled => Event::LockCancelled,
            Note::CsEnter {
                hop,
                generation,
                round,
                lease_left,
            } => Event::CsEnter {
                hop: *hop,
                lease_us: lease_left.as_micros() as u64,
                generation: Some(gen_str(c, *generation)),
                round: Some(*round),
            },
            Note::LeaseRenewed { lease_left } => Event::LeaseRenewed {
                lease_us: lease_left.as_micros() as u64,
            },
            Note::CsExit { hop } => Event::CsExit {
                hop: *hop,
                forced: false,
            },
            Note::CsLost { hop, late } => Event::CsLost {
                hop: *hop,
                late_us: late.as_micros() as u64,
            },
            Note::PeerDown { peer } => Event::PeerDown { peer: n(*peer) },
            Note::PeerUp { peer } => Event::PeerUp { peer: n(*peer) },
            Note::StartFailed { .. } => Event::StartFailed,
            Note::WalkLoop { origin } => Event::WalkLoop { origin: n(*origin) },
            Note::WaitingForMajority { granted, need, .. } => Event::LeaseRefused {
                granted: *granted as u64,
                need: *need as u64,
            },
            Note::Walking { .. } | Note::Refused(_) | Note::Status(_) => return None,
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
            Note::Walking {
                next,
                attempt,
                tries,
                reached,
            } => {
                if *attempt <= 1 {
                    format!(
                        "walking the ring from here to {} and on along each node's --next (try {attempt} of {tries})",
                        c.name(*next)
                    )
                } else {
                    format!(
                        "the ring walk did not come back: {}; trying again ({attempt} of {tries})",
                        walk_text(c, *next, *reached)
                    )
                }
            }
            Note::StartFailed {
                origin,
                next,
                reached,
            } => format!(
                "start failed: the ring walk ({} -> {} -> ... following each node's --next) did not come back to {}: {}. Is every node of the ring running, and does following --next lead back to {}? (status on each node shows its next)",
                c.name(*origin),
                c.name(*next),
                c.name(*origin),
                walk_text(c, *next, *reached),
                c.name(*origin)
            ),
            Note::WalkLoop { origin } => format!(
                "{}'s ring walk came back here without reaching {}: following --next from here loops without {}; check the --next of the nodes in between",
                c.name(*origin),
                c.name(*origin),
                c.name(*origin)
            ),
            Note::TokenRegenerated {
                generation,
                silent_for,
                ..
            } => format!(
                "token lost (nothing heard for {:.1}s): regenerated it as generation {}",
                silent_for.as_secs_f64(),
                gen_str(c, *generation)
            ),
            Note::TokenRerouted {
                skipped,
                generation,
            } => format!(
                "{} did not take the token: routing around it (generation {})",
                c.name(*skipped),
                gen_str(c, *generation)
            ),
            Note::TokenDropped { generation, reason } => {
                format!(
                    "dropped a {reason} token (generation {})",
                    gen_str(c, *generation)
                )
            }
            Note::LockRequested { no_token: false } => {
                "waiting for the token to enter the critical section".into()
            }
            Note::LockRequested { no_token: true } => {
                "waiting for the token to enter the critical section (no token has been seen yet: type `start` on one node of the ring)".into()
            }
            Note::LockCancelled => "lock request cancelled".into(),
            Note::WaitingForMajority {
                granted,
                need,
                voters,
            } => format!(
                "waiting for a majority of the {voters} machines to let us in: {granted} of the {need} votes needed (some are not running, cut off, or another node is inside); will keep trying"
            ),
            Note::CsEnter {
                hop,
                generation,
                round,
                lease_left,
            } => format!(
                "entered the critical section (token hop {hop}, generation {}; fencing token {}/{hop}/{round}; lease {:.1}s unless renewed); type `unlock` to leave",
                gen_str(c, *generation),
                gen_str(c, *generation),
                lease_left.as_secs_f64()
            ),
            Note::CsExit { .. } => "left the critical section".into(),
            Note::CsLost { late, .. } => format!(
                "LOST the critical section: the lease ran out {:.1}s ago (no majority renewed it: network trouble, or this process was paused); will re-enter when possible",
                late.as_secs_f64()
            ),
            Note::PeerDown { peer } => format!("{} looks down: the ring skips it", c.name(*peer)),
            Note::PeerUp { peer } => format!("{} is back", c.name(*peer)),
            Note::Refused(why) => why.clone(),
            Note::LeaseRenewed { .. } => return None,
            Note::Status(s) => status_text(c, s),
        })
    }
}

fn status_text(c: &Cluster, s: &Status) -> String {
    let ago = s
        .last_seen_ago
        .map(|d| format!("{:.1}s ago", d.as_secs_f64()))
        .unwrap_or_else(|| "?".into());
    let token = match (s.generation, s.holding, s.last_holder) {
        (None, _, _) => "never seen (type `start` on one node)".to_string(),
        (Some(g), true, _) => format!("held here (generation {}, hop {})", gen_str(c, g), s.hop),
        (Some(g), false, Some(h)) => format!(
            "last seen at {} {ago} (generation {}, hop {})",
            c.name(h),
            gen_str(c, g),
            s.hop
        ),
        (Some(g), false, None) => format!(
            "last seen {ago} (generation {}, hop {})",
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
        "node: {} ({})\nnext: {}\nring: {ring}\ntoken: {token}\ncritical section: {cs}\nskipped as down: {suspects}\nlease votes: every machine of {} votes ({} needed); mine is {}",
        c.name(s.me),
        c.addr(s.me),
        c.name(s.next),
        c.source().display(),
        s.voters / 2 + 1,
        s.lease_granted_to
            .map_or("free".to_string(), |n| format!("given to {}", c.name(n))),
    )
}
