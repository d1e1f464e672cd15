//! `dsys check clocks`: the Lamport rules, verified from the logs.
//!
//! * Every `receive` sets the clock to max(local clock, message clock) + 1.
//! * Every other action (a send, an internal event) moves it by exactly
//!   one; the copies of one send to all carry the same clock.
//! * At most one action per tick (and each tick has one), ticks numbered
//!   1, 2, 3, ... without gaps.
//! * The tick count matches the rate: n ticks take (n - 1) / rate seconds
//!   of system time, within a tick.
//! * Every message received was sent: a `receive` from a machine whose
//!   log is among the files matches a `send` of that clock to it.
//!
//! A machine's new life (`setup` again after a restart) starts afresh.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::events::Event;
use crate::check::{Checker, Property, Report, verdict_line};
use crate::events::{Common, Entry, Record};

/// What a tick has done so far.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    None,
    Receive,
    Internal,
    /// Sent copies carrying this clock.
    Send(u64),
}

#[derive(Debug, Default)]
struct Life {
    rate: u32,
    clock: u64,
    /// The clock before the current tick, and what it did.
    tick: Option<(u64, u64, Action)>,
    /// The clock the current tick's line says it ended with.
    tick_clock: u64,
    ticks: u64,
    first_us: u64,
    last_us: u64,
    /// Ticks skipped after a pause (`ticks_skipped`): they count towards
    /// the rate, as the ticks the schedule had.
    skipped: u64,
    /// The times of the last [`BURST`] + 1 ticks.
    recent: std::collections::VecDeque<u64>,
    /// A burst was already reported for this life.
    burst: bool,
}

/// [`BURST`] tick intervals must take at least [`BURST`] − 2 intervals: a
/// timer may fire up to two intervals late and the next one on time, but a
/// machine that catches up missed ticks at once (more than one action per
/// interval, over several) is not ticking at its rate.
const BURST: usize = 4;

#[derive(Debug, Default)]
pub struct ClocksCheck {
    lives: BTreeMap<String, Life>,
    /// Machines whose logs are here.
    seen: BTreeMap<String, u64>,
    /// (from, to, clock) → sends minus receives.
    in_flight: BTreeMap<(String, String, u64), i64>,
    receives: u64,
    others: u64,
    ticks: u64,
    violations: Vec<String>,
    /// (machine, rate, ticks, seconds) per finished life.
    rates: Vec<(String, u32, u64, f64)>,
}

#[derive(Debug)]
pub struct ClocksReport {
    pub machines: usize,
    pub ticks: u64,
    pub receives: u64,
    pub others: u64,
    pub violations: Vec<String>,
    pub rates: Vec<(String, u32, u64, f64)>,
}

/// At most this many violations are listed (all are counted).
const LISTED: usize = 20;

impl ClocksCheck {
    fn violation(&mut self, v: String) {
        self.violations.push(v);
    }

    fn end_life(&mut self, node: &str) {
        // The very last tick of a life may lack its action (a kill -9
        // between the two lines): not a violation.
        if let Some(l) = self.lives.remove(node) {
            if l.ticks > 0 {
                let secs = (l.last_us - l.first_us) as f64 / 1e6;
                // n ticks span (n - 1) / rate seconds; a tick's worth of slack.
                let expected = secs * l.rate as f64 + 1.0;
                let had = (l.ticks + l.skipped) as f64;
                if (had - expected).abs() > 1.0 + expected * 0.01 {
                    let skipped = match l.skipped {
                        0 => String::new(),
                        k => format!(" (and {k} skipped)"),
                    };
                    self.violations.push(format!(
                        "{node}: {} ticks{skipped} in {secs:.2} s, but {} ticks/s gives {expected:.0}",
                        l.ticks, l.rate
                    ));
                }
                self.rates.push((node.to_string(), l.rate, l.ticks, secs));
            }
        }
    }

    fn action(&mut self, node: &str, what: &str, action: Action, clock: u64, expected: u64) {
        let Some(l) = self.lives.get_mut(node) else {
            return;
        };
        let Some((n, before, done)) = l.tick else {
            self.violation(format!(
                "{node}: {what} with clock {clock} outside any tick"
            ));
            return;
        };
        let same_send = matches!((done, action), (Action::Send(c), Action::Send(_)) if c == clock);
        if same_send {
            return;
        }
        if done != Action::None {
            self.violation(format!(
                "{node}: tick {n} did two things ({done:?}, then {what} with clock {clock})"
            ));
            return;
        }
        l.tick = Some((n, before, action));
        l.clock = clock;
        let tick_clock = l.tick_clock;
        if clock != expected {
            let rule = match action {
                Action::Receive => "max(local, message) + 1",
                _ => "local + 1",
            };
            self.violation(format!(
                "{node}: tick {n}, {what}: clock {clock}, but {rule} is {expected} (clock before: {before})"
            ));
        }
        if clock != tick_clock {
            self.violation(format!(
                "{node}: tick {n} says clock {tick_clock}, its {what} says {clock}"
            ));
        }
    }
}

impl Checker for ClocksCheck {
    type Event = Event;
    type Report = ClocksReport;
    const EVENTS: &'static [&'static str] = &[
        "setup",
        "tick",
        "send",
        "receive",
        "internal",
        "arrive",
        "queue_full",
        "ticks_skipped",
        "done",
        "peer_down",
        "peer_up",
    ];
    const OWN_EVENTS: &'static str = "clock-model (setup, tick, send, receive, internal)";
    const ALGORITHM: &'static str = "clocks";

    fn is_own(r: &Record<Event>) -> bool {
        crate::check::is_algo(r, |e| matches!(e, Event::Other))
    }

    fn record(&mut self, r: &Record<Event>) {
        let node = r.node.as_str();
        let e = match &r.entry {
            Entry::Common(Common::Crash | Common::Stop | Common::Start) => {
                self.end_life(node);
                return;
            }
            Entry::Common(_) => return,
            Entry::Algo(e) => e,
        };
        match e {
            Event::Setup { rate, .. } => {
                self.end_life(node);
                *self.seen.entry(node.to_string()).or_default() += 1;
                self.lives.insert(
                    node.to_string(),
                    Life {
                        rate: *rate,
                        ..Life::default()
                    },
                );
            }
            Event::Tick { n, clock, .. } => {
                let Some(l) = self.lives.get_mut(node) else {
                    return;
                };
                let prev = l.tick;
                let expected_n = l.ticks + 1;
                l.ticks += 1;
                if l.ticks == 1 {
                    l.first_us = r.t_us;
                }
                l.last_us = r.t_us;
                l.recent.push_back(r.t_us);
                let mut burst = None;
                if l.recent.len() > BURST {
                    let first = l.recent.pop_front().unwrap_or(r.t_us);
                    let interval_us = 1e6 / l.rate.max(1) as f64;
                    let took = r.t_us.saturating_sub(first) as f64;
                    if took < (BURST - 2) as f64 * interval_us && !l.burst {
                        l.burst = true;
                        burst = Some(format!(
                            "{node}: ticks {} to {n} took {:.0} ms, at {} ticks/s at least {:.0} ms (it ran faster than its rate)",
                            n.saturating_sub(BURST as u64),
                            took / 1e3,
                            l.rate,
                            (BURST - 2) as f64 * interval_us / 1e3
                        ));
                    }
                }
                let before = l.clock;
                l.tick = Some((*n, before, Action::None));
                l.tick_clock = *clock;
                self.ticks += 1;
                if let Some(b) = burst {
                    self.violation(b);
                }
                if *n != expected_n {
                    self.violation(format!(
                        "{node}: tick {n} follows tick {} (ticks are numbered without gaps)",
                        expected_n - 1
                    ));
                }
                if let Some((pn, _, Action::None)) = prev {
                    self.violation(format!("{node}: tick {pn} did nothing"));
                }
            }
            Event::Receive {
                from,
                msg_clock,
                clock,
                ..
            } => {
                self.receives += 1;
                let before = self.lives.get(node).map_or(0, |l| l.clock);
                let expected = before.max(*msg_clock) + 1;
                self.action(node, "receive", Action::Receive, *clock, expected);
                *self
                    .in_flight
                    .entry((from.clone(), node.to_string(), *msg_clock))
                    .or_default() -= 1;
            }
            Event::Send { to, clock } => {
                let before = self.lives.get(node).and_then(|l| l.tick).map_or(0, |t| t.1);
                let is_first = !matches!(
                    self.lives.get(node).and_then(|l| l.tick),
                    Some((_, _, Action::Send(c))) if c == *clock
                );
                if is_first {
                    self.others += 1;
                }
                self.action(node, "send", Action::Send(*clock), *clock, before + 1);
                *self
                    .in_flight
                    .entry((node.to_string(), to.clone(), *clock))
                    .or_default() += 1;
            }
            Event::TicksSkipped { missed, .. } => {
                if let Some(l) = self.lives.get_mut(node) {
                    l.skipped += missed;
                }
            }
            Event::Internal { clock } => {
                self.others += 1;
                let before = self.lives.get(node).map_or(0, |l| l.clock);
                self.action(node, "internal event", Action::Internal, *clock, before + 1);
            }
            _ => {}
        }
    }

    fn finish(mut self) -> ClocksReport {
        let nodes: Vec<String> = self.lives.keys().cloned().collect();
        for n in nodes {
            self.end_life(&n);
        }
        // Receives that match no send, from machines whose logs are here.
        let unmatched: Vec<String> = self
            .in_flight
            .iter()
            .filter(|((from, _, _), left)| **left < 0 && self.seen.contains_key(from))
            .map(|((from, to, clock), _)| {
                format!("{to} received clock {clock} from {from}, which {from} never sent to {to}")
            })
            .collect();
        self.violations.extend(unmatched);
        ClocksReport {
            machines: self.seen.len(),
            ticks: self.ticks,
            receives: self.receives,
            others: self.others,
            violations: self.violations,
            rates: self.rates,
        }
    }
}

impl Report for ClocksReport {
    fn properties(&self) -> Vec<Property> {
        vec![
            Property::safety("Lamport clocks", self.violations.first().cloned()),
            Property::exercised("ticks", self.ticks > 0, "no machine ticked"),
        ]
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} machine(s), {} ticks: {} receives, {} sends and internal events",
            self.machines, self.ticks, self.receives, self.others
        );
        for (node, rate, ticks, secs) in &self.rates {
            let _ = writeln!(
                s,
                "  {node}: {ticks} ticks in {secs:.2} s at {rate} ticks/s"
            );
        }
        let ok = |b: bool| if b { "ok" } else { "VIOLATED" };
        let _ = writeln!(
            s,
            "Lamport rules (receive = max + 1, others + 1, one action per tick, rate, every receive sent): {}",
            ok(self.violations.is_empty())
        );
        for v in self.violations.iter().take(LISTED) {
            let _ = writeln!(s, "  {v}");
        }
        if self.violations.len() > LISTED {
            let _ = writeln!(s, "  ... and {} more", self.violations.len() - LISTED);
        }
        let _ = writeln!(s, "{}", verdict_line(self.verdict(), "Lamport clocks"));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;

    fn rec(t_us: u64, node: &str, e: Event) -> Record<Event> {
        Record {
            t_us,
            node: node.into(),
            entry: Entry::Algo(e),
        }
    }

    fn setup(node: &str, rate: u32) -> Record<Event> {
        rec(
            0,
            node,
            Event::Setup {
                rate,
                event_range: Some(10),
                internal_prob: 0.7,
                machines: vec![],
            },
        )
    }

    fn tick(t: u64, node: &str, n: u64, clock: u64) -> Record<Event> {
        rec(
            t,
            node,
            Event::Tick {
                n,
                queue_len: 0,
                clock,
            },
        )
    }

    /// a (1/s) sends 1, internal 2; b (2/s) receives it at clock 2.
    fn good() -> Vec<Record<Event>> {
        vec![
            setup("a", 1),
            setup("b", 2),
            tick(1_000_000, "a", 1, 1),
            rec(
                1_000_000,
                "a",
                Event::Send {
                    to: "b".into(),
                    clock: 1,
                },
            ),
            tick(1_500_000, "b", 1, 2),
            rec(
                1_500_000,
                "b",
                Event::Receive {
                    from: "a".into(),
                    msg_clock: 1,
                    queue_len: 0,
                    clock: 2,
                },
            ),
            tick(2_000_000, "a", 2, 2),
            rec(2_000_000, "a", Event::Internal { clock: 2 }),
            tick(2_000_000, "b", 2, 3),
            rec(2_000_000, "b", Event::Internal { clock: 3 }),
        ]
    }

    #[test]
    fn the_event_names_dsys_check_tells_files_by_are_its_events() {
        crate::check::assert_events_are_variants::<super::ClocksCheck>();
    }

    #[test]
    fn a_run_by_the_rules_passes() {
        let r = check::<ClocksCheck>(&good());
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.ticks, r.receives, r.others), (4, 1, 3));
        assert!(r.verdict().passed(true));
    }

    #[test]
    fn each_broken_rule_is_caught() {
        // A receive that does not take the max.
        let mut bad = good();
        bad[5] = rec(
            1_500_000,
            "b",
            Event::Receive {
                from: "a".into(),
                msg_clock: 1,
                queue_len: 0,
                clock: 1,
            },
        );
        let r = check::<ClocksCheck>(&bad);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("max(local, message) + 1")),
            "{:?}",
            r.violations
        );
        // An internal event that jumps by two.
        let mut bad = good();
        bad[7] = rec(2_000_000, "a", Event::Internal { clock: 3 });
        assert!(!check::<ClocksCheck>(&bad).violations.is_empty());
        // Two actions in one tick.
        let mut bad = good();
        bad.insert(8, rec(2_000_000, "a", Event::Internal { clock: 3 }));
        let r = check::<ClocksCheck>(&bad);
        assert!(
            r.violations.iter().any(|v| v.contains("did two things")),
            "{:?}",
            r.violations
        );
        // A tick with nothing, then the next.
        let mut bad = good();
        bad.remove(7);
        bad.push(tick(3_000_000, "a", 3, 3));
        bad.push(rec(3_000_000, "a", Event::Internal { clock: 3 }));
        let r = check::<ClocksCheck>(&bad);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("tick 2 did nothing")),
            "{:?}",
            r.violations
        );
        // A receive nobody sent.
        let mut bad = good();
        bad[3] = rec(1_000_000, "a", Event::Internal { clock: 1 });
        let r = check::<ClocksCheck>(&bad);
        assert!(
            r.violations.iter().any(|v| v.contains("never sent")),
            "{:?}",
            r.violations
        );
        // Too many ticks for the rate: a at 1/s ticking 4 times in 1 s.
        let mut bad = good();
        for (k, t) in [(3, 2_300_000), (4, 2_600_000)] {
            bad.push(tick(t, "a", k, k));
            bad.push(rec(t, "a", Event::Internal { clock: k }));
        }
        let r = check::<ClocksCheck>(&bad);
        assert!(
            r.violations.iter().any(|v| v.contains("ticks/s gives")),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn a_send_to_all_is_one_action_with_one_clock() {
        let recs = vec![
            setup("a", 1),
            tick(1_000_000, "a", 1, 1),
            rec(
                1_000_000,
                "a",
                Event::Send {
                    to: "b".into(),
                    clock: 1,
                },
            ),
            rec(
                1_000_000,
                "a",
                Event::Send {
                    to: "c".into(),
                    clock: 1,
                },
            ),
        ];
        let r = check::<ClocksCheck>(&recs);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.others, 1);
    }
}
