//! One model machine as a sans-IO state machine: a Lamport clock, a network
//! queue that fills whenever messages arrive, and a tick at the machine's
//! own rate that takes one message off the queue or, if there is none,
//! sends its clock or does an internal event.
//!
//! Before the first tick a machine says hello to every other until each
//! has heard the other (connecting is not limited by the tick rate); then
//! it ticks at `rate` per second, on a schedule fixed from the first tick
//! (tick n at start + n/rate), so the tick count matches the rate however
//! late a timer fires. Every tick is one action and moves the clock by one,
//! or to max(clock, message) + 1 for a receive; a send to every other
//! machine is one action, so each copy carries the same clock.

use std::collections::VecDeque;
use std::time::Duration;

use super::model::{Action, Draw};
use super::msg::Msg;
use super::note::{Note, Status, TickAction};
use crate::config::NodeId;
use crate::node::{Out, Protocol, Rng};

/// Messages waiting at most in a machine's network queue. A slow machine's
/// queue grows without bound in the model; here, past this many, a message
/// is dropped and logged (`queue_full`) so memory stays bounded.
pub const QUEUE_CAP: usize = 1_000_000;
/// How often a machine that is still waiting for others says hello again.
pub const HELLO_EVERY: Duration = Duration::from_millis(200);
/// How often a waiting machine tells its user whom it waits for.
const WAIT_NOTE_EVERY: u32 = 25;

#[derive(Clone, Debug)]
pub enum Timer {
    Tick,
    Hello,
}

#[derive(Debug)]
pub enum Cmd {
    Status,
}

/// A machine's fixed parameters.
#[derive(Clone, Debug)]
pub struct Params {
    /// Ticks per second.
    pub rate: u32,
    pub draw: Draw,
    /// Stop ticking after this long (from the first tick); `None`: never.
    pub duration: Option<Duration>,
}

/// A message waiting in the network queue.
#[derive(Clone, Copy, Debug)]
struct Queued {
    from: NodeId,
    clock: u64,
}

pub struct Machine {
    me: NodeId,
    /// The others, starting with the one after this machine in the config.
    others: Vec<NodeId>,
    params: Params,
    rng: Rng,
    clock: u64,
    queue: VecDeque<Queued>,
    /// Per machine (by index): has it said anything to us?
    heard: Vec<bool>,
    /// Per machine: has it said it heard us?
    heard_us: Vec<bool>,
    /// When the first tick was due (`None` while still connecting).
    started: Option<Duration>,
    ticks: u64,
    /// The schedule slot of the next tick (slot s is due at start + s/rate):
    /// one more than the last, unless the machine fell behind.
    next_slot: u64,
    /// Ticks this machine takes in all (`duration × rate`), if bounded.
    last_tick: Option<u64>,
    hellos: u32,
    done: bool,
}

impl Machine {
    pub fn new(me: NodeId, machines: usize, params: Params, rng: Rng) -> Machine {
        let others = (1..machines)
            .map(|k| NodeId(((me.index() + k) % machines) as u32))
            .collect();
        let last_tick = params
            .duration
            .map(|d| (d.as_secs_f64() * params.rate as f64).round() as u64);
        Machine {
            me,
            others,
            params,
            rng,
            clock: 0,
            queue: VecDeque::new(),
            heard: vec![false; machines],
            heard_us: vec![false; machines],
            started: None,
            ticks: 0,
            next_slot: 1,
            last_tick,
            hellos: 0,
            done: false,
        }
    }

    pub fn clock(&self) -> u64 {
        self.clock
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    fn missing(&self) -> Vec<NodeId> {
        self.others
            .iter()
            .copied()
            .filter(|p| !self.heard[p.index()])
            .collect()
    }

    /// The moment tick `n` (1-based) is due.
    fn due(&self, start: Duration, n: u64) -> Duration {
        start + Duration::from_nanos(n.saturating_mul(1_000_000_000) / self.params.rate as u64)
    }

    fn say_hello(&mut self, out: &mut Out<Self>) {
        for &p in &self.others {
            if !(self.heard[p.index()] && self.heard_us[p.index()]) {
                out.send(
                    p,
                    Msg::Hello {
                        heard_you: self.heard[p.index()],
                    },
                );
            }
        }
    }

    fn maybe_start(&mut self, out: &mut Out<Self>) {
        if self.started.is_some() || !self.missing().is_empty() {
            return;
        }
        let now = out.now();
        self.started = Some(now);
        out.note(Note::Ticking {
            rate: self.params.rate,
            others: self.others.clone(),
        });
        out.timer(self.due(now, 1) - now, Timer::Tick);
    }

    fn tick(&mut self, out: &mut Out<Self>) {
        let Some(start) = self.started else { return };
        if self.done {
            return;
        }
        self.ticks += 1;
        let n = self.ticks;
        let slot = self.next_slot;
        let before = self.clock;
        let action = match self.queue.pop_front() {
            Some(q) => {
                self.clock = self.clock.max(q.clock) + 1;
                TickAction::Received {
                    from: q.from,
                    msg_clock: q.clock,
                }
            }
            None => {
                self.clock += 1;
                let to = match self.params.draw.draw(&mut self.rng) {
                    Action::SendNext => self.others.first().copied().into_iter().collect(),
                    Action::SendOther => self.other_one().into_iter().collect(),
                    Action::SendAll => self.others.clone(),
                    Action::Internal => Vec::new(),
                };
                if to.is_empty() {
                    TickAction::Internal
                } else {
                    TickAction::Sent { to }
                }
            }
        };
        let queue_len = self.queue.len() as u64;
        let clock = self.clock;
        out.note(Note::Tick {
            n,
            queue_len,
            clock,
            jump: clock - before,
            action: action.clone(),
        });
        match action {
            TickAction::Received { from, msg_clock } => out.note(Note::Receive {
                from,
                msg_clock,
                queue_len,
                clock,
            }),
            TickAction::Sent { to } => {
                for p in to {
                    out.send(
                        p,
                        Msg::Clock {
                            clock,
                            sender: self.me,
                        },
                    );
                    out.note(Note::Send { to: p, clock });
                }
            }
            TickAction::Internal => out.note(Note::Internal { clock }),
        }
        if self.last_tick.is_some_and(|last| slot >= last) {
            self.done = true;
            out.note(Note::Done {
                ticks: n,
                clock,
                queue_len,
            });
            return;
        }
        let now = out.now();
        let mut next = slot + 1;
        // A machine that was paused (or starved) finds whole ticks past due:
        // a model machine does not run faster than its rate to catch up, so
        // it skips them and says so; the slot due now runs next.
        let due_now = ((now.saturating_sub(start)).as_nanos() * self.params.rate as u128
            / 1_000_000_000) as u64;
        if due_now > next {
            let missed = due_now - next;
            out.note(Note::TicksSkipped {
                missed,
                late: now.saturating_sub(self.due(start, next)),
            });
            next = due_now;
        }
        self.next_slot = next;
        out.timer(self.due(start, next).saturating_sub(now), Timer::Tick);
    }

    /// Event 2's receiver: with three machines the other one (not the next);
    /// with more, one of the rest at random; with two, the only other.
    fn other_one(&mut self) -> Option<NodeId> {
        match self.others.len() {
            0 => None,
            1 => Some(self.others[0]),
            2 => Some(self.others[1]),
            n => {
                use rand::Rng as _;
                Some(self.others[self.rng.random_range(1..n)])
            }
        }
    }
}

impl Protocol for Machine {
    type Msg = Msg;
    type Timer = Timer;
    type Cmd = Cmd;
    type Note = Note;

    fn on_start(&mut self, out: &mut Out<Self>) {
        out.note(Note::Setup {
            rate: self.params.rate,
            draw: self.params.draw,
            others: self.others.clone(),
        });
        self.say_hello(out);
        out.timer(HELLO_EVERY, Timer::Hello);
        self.maybe_start(out);
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, out: &mut Out<Self>) {
        if from == self.me || from.index() >= self.heard.len() {
            return;
        }
        match msg {
            Msg::Hello { heard_you } => {
                self.heard[from.index()] = true;
                self.heard_us[from.index()] |= heard_you;
                // Answer at once: the other waits for our "heard you".
                if !heard_you {
                    out.send(from, Msg::Hello { heard_you: true });
                }
                self.maybe_start(out);
            }
            Msg::Clock { clock, sender } => {
                if sender != from {
                    out.note(Note::Refused(format!(
                        "a clock message from {from:?} names {sender:?} as its sender: dropped"
                    )));
                    return;
                }
                // A ticking machine has heard from everyone, us included.
                self.heard[from.index()] = true;
                self.heard_us[from.index()] = true;
                if self.done {
                    return;
                }
                if self.queue.len() >= QUEUE_CAP {
                    out.note(Note::QueueFull { from });
                } else {
                    self.queue.push_back(Queued { from, clock });
                    out.note(Note::Arrive {
                        from,
                        msg_clock: clock,
                        queue_len: self.queue.len() as u64,
                    });
                }
                self.maybe_start(out);
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Out<Self>) {
        match timer {
            Timer::Tick => self.tick(out),
            Timer::Hello => {
                let all = self
                    .others
                    .iter()
                    .all(|p| self.heard[p.index()] && self.heard_us[p.index()]);
                if all {
                    return;
                }
                self.say_hello(out);
                self.hellos += 1;
                if self.started.is_none() && self.hellos % WAIT_NOTE_EVERY == 1 {
                    out.note(Note::Waiting {
                        missing: self.missing(),
                    });
                }
                out.timer(HELLO_EVERY, Timer::Hello);
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd, out: &mut Out<Self>) {
        match cmd {
            Cmd::Status => out.note(Note::Status(Status {
                me: self.me,
                rate: self.params.rate,
                clock: self.clock,
                queue_len: self.queue.len(),
                ticks: self.ticks,
                ticking: self.started.is_some(),
                done: self.done,
                missing: self.missing(),
            })),
        }
    }

    fn on_link(&mut self, peer: NodeId, up: bool, out: &mut Out<Self>) {
        // While connecting, a machine not started yet is expected (the
        // waiting note says whom we wait for).
        if self.started.is_none() {
            return;
        }
        out.note(if up {
            Note::PeerUp { peer }
        } else {
            Note::PeerDown { peer }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Effect;
    use rand::SeedableRng;

    fn machine(me: u32, n: usize, rate: u32, draw: Draw) -> Machine {
        let params = Params {
            rate,
            draw,
            duration: Some(Duration::from_secs(2)),
        };
        Machine::new(NodeId(me), n, params, Rng::seed_from_u64(7))
    }

    fn notes(out: &mut Out<Machine>) -> Vec<Note> {
        out.drain()
            .filter_map(|e| match e {
                Effect::Note(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn sends(out: &mut Out<Machine>) -> Vec<(NodeId, Msg)> {
        out.drain()
            .filter_map(|e| match e {
                Effect::Send { to, msg } => Some((to, msg)),
                _ => None,
            })
            .collect()
    }

    /// Both others said hello (and heard us): the machine ticks.
    fn connected(m: &mut Machine, out: &mut Out<Machine>) {
        m.on_start(out);
        for p in m.others.clone() {
            m.on_message(p, Msg::Hello { heard_you: true }, out);
        }
        out.drain().for_each(drop);
        assert!(m.started.is_some());
    }

    #[test]
    fn no_tick_before_every_other_machine_is_heard_from() {
        let mut m = machine(0, 3, 2, Draw::Range(10));
        let mut out = Out::new(Duration::ZERO);
        m.on_start(&mut out);
        let hellos = sends(&mut out);
        assert_eq!(hellos.len(), 2, "hello to both others: {hellos:?}");
        m.on_message(NodeId(1), Msg::Hello { heard_you: false }, &mut out);
        // Answers the hello at once, and still waits for l3.
        let s = sends(&mut out);
        assert_eq!(s, [(NodeId(1), Msg::Hello { heard_you: true })]);
        m.on_timer(Timer::Tick, &mut out);
        assert!(
            notes(&mut out).is_empty(),
            "a tick before connecting does nothing"
        );
        m.on_message(NodeId(2), Msg::Hello { heard_you: true }, &mut out);
        let n = notes(&mut out);
        assert!(matches!(n[..], [Note::Ticking { rate: 2, .. }]), "{n:?}");
    }

    #[test]
    fn a_receive_sets_the_clock_to_max_plus_one_and_takes_one_message_per_tick() {
        let mut m = machine(0, 3, 1, Draw::Range(10));
        let mut out = Out::new(Duration::ZERO);
        connected(&mut m, &mut out);
        for clock in [40, 3] {
            m.on_message(
                NodeId(1),
                Msg::Clock {
                    clock,
                    sender: NodeId(1),
                },
                &mut out,
            );
        }
        assert_eq!(m.queue_len(), 2);
        out.drain().for_each(drop);
        m.on_timer(Timer::Tick, &mut out);
        assert_eq!(m.clock(), 41, "max(0, 40) + 1");
        assert_eq!(m.queue_len(), 1, "one message per tick");
        let n = notes(&mut out);
        assert!(
            matches!(
                n[..],
                [
                    Note::Tick {
                        n: 1,
                        queue_len: 1,
                        clock: 41,
                        jump: 41,
                        ..
                    },
                    Note::Receive {
                        msg_clock: 40,
                        queue_len: 1,
                        clock: 41,
                        ..
                    }
                ]
            ),
            "{n:?}"
        );
        m.on_timer(Timer::Tick, &mut out);
        assert_eq!(m.clock(), 42, "an older message: local clock + 1");
        assert_eq!(m.queue_len(), 0);
    }

    #[test]
    fn an_empty_queue_sends_or_does_internal_work_each_moving_the_clock_by_one() {
        let mut m = machine(1, 3, 5, Draw::Range(3));
        let mut out = Out::new(Duration::ZERO);
        connected(&mut m, &mut out);
        let mut all_seen = false;
        for k in 1..=10u64 {
            m.on_timer(Timer::Tick, &mut out);
            assert_eq!(m.clock(), k);
            let s = sends(&mut out);
            // Range 3: every tick sends; to l3 (next), to l1 (the other), or both.
            assert!(!s.is_empty());
            for (to, msg) in &s {
                assert!(*to == NodeId(2) || *to == NodeId(0));
                assert_eq!(
                    *msg,
                    Msg::Clock {
                        clock: k,
                        sender: NodeId(1)
                    }
                );
            }
            all_seen |= s.len() == 2;
        }
        assert!(all_seen, "a send to all happened in 10 draws of 1..3");
        let mut quiet = machine(0, 3, 5, Draw::Internal(1.0));
        connected(&mut quiet, &mut out);
        quiet.on_timer(Timer::Tick, &mut out);
        let n = notes(&mut out);
        assert!(matches!(n[1], Note::Internal { clock: 1 }), "{n:?}");
    }

    #[test]
    fn ticks_keep_to_the_rate_and_stop_after_the_duration() {
        let mut m = machine(0, 2, 4, Draw::Range(10));
        let mut out = Out::new(Duration::ZERO);
        connected(&mut m, &mut out);
        // Timers fire late (5 ms each): the schedule still holds 4 per second.
        let mut now = Duration::ZERO;
        let mut fired = 0;
        out.set_now(now);
        loop {
            m.on_timer(Timer::Tick, &mut out);
            fired += 1;
            let next = out.drain().find_map(|e| match e {
                Effect::Timer {
                    after,
                    timer: Timer::Tick,
                } => Some(after),
                _ => None,
            });
            let Some(after) = next else { break };
            now += after + Duration::from_millis(5);
            out.set_now(now);
        }
        assert_eq!(fired, 8, "2 s at 4 ticks/s");
        assert!(m.is_done());
        assert!(now < Duration::from_millis(2100), "{now:?}");
    }

    #[test]
    fn a_machine_paused_for_a_while_skips_the_missed_ticks_instead_of_racing() {
        let params = Params {
            rate: 5,
            draw: Draw::Range(10),
            duration: None,
        };
        let mut m = Machine::new(NodeId(0), 3, params, Rng::seed_from_u64(7));
        let mut out = Out::new(Duration::ZERO);
        connected(&mut m, &mut out);
        let next_tick = |out: &mut Out<Machine>| {
            out.drain().find_map(|e| match e {
                Effect::Timer {
                    after,
                    timer: Timer::Tick,
                } => Some(after),
                _ => None,
            })
        };
        // Tick 1 on time (at 200 ms), then a 7.2 s pause (SIGSTOP).
        out.set_now(Duration::from_millis(200));
        m.on_timer(Timer::Tick, &mut out);
        out.drain().for_each(drop);
        out.set_now(Duration::from_millis(7_400));
        m.on_timer(Timer::Tick, &mut out);
        let n: Vec<Note> = out
            .drain()
            .filter_map(|e| match e {
                Effect::Note(n) => Some(n),
                _ => None,
            })
            .collect();
        // Slot 2 ran now; slots 3..=36 are past due: 34 skipped, and the
        // next tick is slot 37 at once, not 35 ticks in a burst.
        assert!(
            n.iter()
                .any(|x| matches!(x, Note::TicksSkipped { missed: 34, .. })),
            "{n:?}"
        );
        m.on_timer(Timer::Tick, &mut out);
        let after = next_tick(&mut out).expect("ticking");
        assert_eq!(after, Duration::from_millis(200), "back on the rate");
        assert_eq!(m.ticks, 3);
    }
}
