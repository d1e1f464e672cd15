//! The model's events, as `--events` writes them, `dsys check clocks`
//! verifies them and `dsys clocks report` studies them (names and fields
//! are a stable format). `t_us` on every line is the system time.

use serde::{Deserialize, Serialize};

use super::model::Draw;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The machine's parameters, first thing in its life: its rate (ticks
    /// per second), the draw (`event_range`, or only `internal_prob`) and
    /// the other machines, the next one first.
    Setup {
        rate: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_range: Option<u32>,
        internal_prob: f64,
        #[serde(default)]
        machines: Vec<String>,
    },
    /// Tick `n` (from 1): the queue length and the clock after its action.
    Tick {
        n: u64,
        queue_len: u64,
        clock: u64,
    },
    /// The tick's action was a send: one line per receiver, each with the
    /// clock the message carries.
    Send {
        to: String,
        clock: u64,
    },
    /// The tick took a message off the queue: its sender, the clock it
    /// carried, the queue length after taking it, and the new clock.
    Receive {
        from: String,
        msg_clock: u64,
        queue_len: u64,
        clock: u64,
    },
    /// The tick's action was an internal event.
    Internal {
        clock: u64,
    },
    /// A message reached the network queue (at any time, not on a tick);
    /// the queue length with it.
    Arrive {
        from: String,
        msg_clock: u64,
        queue_len: u64,
    },
    /// The queue was at its bound: a message from `from` was dropped.
    QueueFull {
        from: String,
    },
    /// The machine fell behind its schedule by `missed` whole ticks (it was
    /// paused, or starved of CPU) and skipped them rather than run faster
    /// than its rate; the next tick is the one due now.
    TicksSkipped {
        missed: u64,
        late_ms: u64,
    },
    /// The machine ran its duration and stopped ticking.
    Done {
        ticks: u64,
        clock: u64,
        queue_len: u64,
    },
    PeerDown {
        peer: String,
    },
    PeerUp {
        peer: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}

impl Event {
    /// The line this event adds to a machine's `--log` file (the event, the
    /// queue length, the logical clock); the writer puts the time in front.
    pub fn log_line(&self) -> Option<String> {
        Some(match self {
            Event::Setup {
                rate,
                event_range,
                internal_prob,
                machines,
            } => {
                let draw = match event_range {
                    Some(r) => Draw::Range(*r),
                    None => Draw::Internal(*internal_prob),
                };
                format!(
                    "setup       rate {rate} ticks/s, {draw}, machines {}",
                    machines.join(", ")
                )
            }
            Event::Receive {
                from,
                msg_clock,
                queue_len,
                clock,
            } => format!(
                "receive     from {:<6} queue {queue_len:<4} clock {clock} (message {msg_clock})",
                from
            ),
            Event::Send { to, clock } => format!("send        to {to:<8} queue -    clock {clock}"),
            Event::Internal { clock } => {
                format!("internal                queue -    clock {clock}")
            }
            Event::Done {
                ticks,
                clock,
                queue_len,
            } => format!("done        {ticks} ticks      queue {queue_len:<4} clock {clock}"),
            Event::TicksSkipped { missed, late_ms } => {
                format!("skipped     {missed} ticks ({late_ms} ms behind: paused or starved)")
            }
            _ => return None,
        })
    }
}
