//! What a model machine tells its user (a compact line per tick), its log
//! file (a human-readable line per event) and the event log (`setup`,
//! `tick`, `send`, `receive`, `internal`, `arrive`, ...).

use std::time::Duration;

use super::events::Event;
use super::model::Draw;
use crate::config::{Cluster, NodeId};

/// What a tick did.
#[derive(Clone, Debug, PartialEq)]
pub enum TickAction {
    Received { from: NodeId, msg_clock: u64 },
    Sent { to: Vec<NodeId> },
    Internal,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    Setup {
        rate: u32,
        draw: Draw,
        others: Vec<NodeId>,
    },
    /// Still waiting to hear from these machines (are they started?).
    Waiting {
        missing: Vec<NodeId>,
    },
    /// Connected to every other machine: the ticks begin.
    Ticking {
        rate: u32,
        others: Vec<NodeId>,
    },
    /// One tick, with what it did (the console's line); the action's own
    /// note follows it.
    Tick {
        n: u64,
        queue_len: u64,
        clock: u64,
        jump: u64,
        action: TickAction,
    },
    Send {
        to: NodeId,
        clock: u64,
    },
    Receive {
        from: NodeId,
        msg_clock: u64,
        queue_len: u64,
        clock: u64,
    },
    Internal {
        clock: u64,
    },
    Arrive {
        from: NodeId,
        msg_clock: u64,
        queue_len: u64,
    },
    QueueFull {
        from: NodeId,
    },
    /// Behind the schedule by `missed` whole ticks, `late` in all: skipped.
    TicksSkipped {
        missed: u64,
        late: Duration,
    },
    Done {
        ticks: u64,
        clock: u64,
        queue_len: u64,
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
    pub rate: u32,
    pub clock: u64,
    pub queue_len: usize,
    pub ticks: u64,
    pub ticking: bool,
    pub done: bool,
    pub missing: Vec<NodeId>,
}

impl crate::node::Note for Note {
    type Event = Event;

    /// The model logs its own `send` events (with the clock they carry).
    const LOGS_OWN_SENDS: bool = true;

    fn event(&self, c: &Cluster) -> Option<Event> {
        let n = |i: &NodeId| c.name(*i).to_string();
        Some(match self {
            Note::Setup { rate, draw, others } => {
                let (event_range, internal_prob) = draw.describe();
                Event::Setup {
                    rate: *rate,
                    event_range,
                    internal_prob,
                    machines: others.iter().map(n).collect(),
                }
            }
            Note::Tick {
                n,
                queue_len,
                clock,
                ..
            } => Event::Tick {
                n: *n,
                queue_len: *queue_len,
                clock: *clock,
            },
            Note::Send { to, clock } => Event::Send {
                to: n(to),
                clock: *clock,
            },
            Note::Receive {
                from,
                msg_clock,
                queue_len,
                clock,
            } => Event::Receive {
                from: n(from),
                msg_clock: *msg_clock,
                queue_len: *queue_len,
                clock: *clock,
            },
            Note::Internal { clock } => Event::Internal { clock: *clock },
            Note::Arrive {
                from,
                msg_clock,
                queue_len,
            } => Event::Arrive {
                from: n(from),
                msg_clock: *msg_clock,
                queue_len: *queue_len,
            },
            Note::QueueFull { from } => Event::QueueFull { from: n(from) },
            Note::TicksSkipped { missed, late } => Event::TicksSkipped {
                missed: *missed,
                late_ms: late.as_millis() as u64,
            },
            Note::Done {
                ticks,
                clock,
                queue_len,
            } => Event::Done {
                ticks: *ticks,
                clock: *clock,
                queue_len: *queue_len,
            },
            Note::PeerDown { peer } => Event::PeerDown { peer: n(peer) },
            Note::PeerUp { peer } => Event::PeerUp { peer: n(peer) },
            Note::Waiting { .. } | Note::Ticking { .. } | Note::Refused(_) | Note::Status(_) => {
                return None;
            }
        })
    }

    fn line(&self, c: &Cluster) -> Option<String> {
        Some(match self {
            Note::Setup { rate, draw, .. } => {
                format!("rate: {rate} ticks per second; {draw}")
            }
            Note::Waiting { missing } => format!(
                "waiting to hear from {} (started?); ticking begins when every machine is connected",
                c.list(missing)
            ),
            Note::Ticking { rate, others } => format!(
                "connected to {}: ticking at {rate}/s (`status`, `quit`)",
                c.list(others)
            ),
            Note::Tick {
                n,
                queue_len,
                clock,
                jump,
                action,
            } => {
                let what = match action {
                    TickAction::Received { from, msg_clock } => {
                        format!("recv {}@{msg_clock}", c.name(*from))
                    }
                    TickAction::Sent { to } => format!("send {}", c.list(to)),
                    TickAction::Internal => "internal".to_string(),
                };
                let jump = if *jump > 1 {
                    format!(" (+{jump})")
                } else {
                    String::new()
                };
                format!("#{n:<5} clock {clock:<6} queue {queue_len:<4} {what}{jump}")
            }
            Note::Done {
                ticks,
                clock,
                queue_len,
            } => format!(
                "done: {ticks} ticks, clock {clock}, {queue_len} message(s) left in the queue"
            ),
            Note::TicksSkipped { missed, late } => format!(
                "{:.1} s behind the schedule (paused, or starved of CPU): skipped {missed} tick(s) rather than run faster than the rate",
                late.as_secs_f64()
            ),
            Note::QueueFull { from } => format!(
                "queue full ({} messages): a message from {} was dropped",
                super::machine::QUEUE_CAP,
                c.name(*from)
            ),
            Note::PeerDown { peer } => {
                format!("{} is DOWN: messages to it are lost", c.name(*peer))
            }
            Note::PeerUp { peer } => format!("{} is up", c.name(*peer)),
            Note::Refused(why) => why.clone(),
            Note::Status(s) => {
                let state = if s.done {
                    "done"
                } else if s.ticking {
                    "ticking"
                } else {
                    "waiting for the others"
                };
                let mut line = format!(
                    "{}: {state} at {} ticks/s, tick {}, clock {}, queue {}",
                    c.name(s.me),
                    s.rate,
                    s.ticks,
                    s.clock,
                    s.queue_len
                );
                if !s.missing.is_empty() {
                    line.push_str(&format!("; not heard from: {}", c.list(&s.missing)));
                }
                line
            }
            Note::Send { .. }
            | Note::Receive { .. }
            | Note::Internal { .. }
            | Note::Arrive { .. } => {
                return None;
            }
        })
    }

    fn routine(&self) -> bool {
        matches!(self, Note::Arrive { .. } | Note::Send { .. })
    }
}
