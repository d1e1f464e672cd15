//! The study of a run: from its event logs, per machine, the counts, clock
//! jumps, queue lengths and their trend, arrival against service rate
//! (measured, and what the model predicts), and the drift between clocks.
//! Pure: records in, numbers out; `report` turns them into words and
//! pictures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::events::Event;
use crate::events::{Entry, Record, read_files};

/// One machine over one run.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub name: String,
    pub rate: u32,
    /// The others, the next one first (from `setup`).
    pub others: Vec<String>,
    pub event_range: Option<u32>,
    pub internal_prob: f64,
    pub ticks: u64,
    /// Ticks whose action was a send (to one, the other, or all).
    pub send_ticks: u64,
    /// Messages sent (a send to all counts one per receiver).
    pub messages_sent: u64,
    pub receives: u64,
    pub internals: u64,
    pub arrivals: u64,
    pub dropped: u64,
    /// Each tick's clock jump (new clock - old clock), in tick order.
    pub jumps: Vec<u64>,
    /// (seconds since the run began, clock) after each tick.
    pub clock_at: Vec<(f64, u64)>,
    /// (seconds, queue length) at each tick and arrival.
    pub queue_at: Vec<(f64, u64)>,
    /// Seconds from the run's start to this machine's first and last tick.
    pub first_tick: f64,
    pub last_tick: f64,
    pub final_clock: u64,
    pub final_queue: u64,
    pub max_queue: u64,
    /// Messages received per second of ticking (measured).
    pub arrival_rate: f64,
    /// The queue's growth in messages per second over the second half of
    /// the run (least squares).
    pub queue_slope: f64,
    /// What the model predicts for the arrival rate, given every machine's
    /// rate and draw: senders only send on ticks that find their own queue
    /// empty (a fixed point over all machines).
    pub expected_arrival: f64,
    /// The same prediction if every sender always found its queue empty.
    pub naive_arrival: f64,
}

impl Machine {
    pub fn mean_jump(&self) -> f64 {
        if self.jumps.is_empty() {
            return 0.0;
        }
        self.jumps.iter().sum::<u64>() as f64 / self.jumps.len() as f64
    }

    pub fn max_jump(&self) -> u64 {
        self.jumps.iter().copied().max().unwrap_or(0)
    }

    /// Ticking time in seconds.
    pub fn active(&self) -> f64 {
        (self.last_tick - self.first_tick).max(0.0)
    }

    /// Does the queue grow without bound? (More arrives than one message
    /// per tick can take, and it visibly grew.)
    pub fn queue_grows(&self) -> bool {
        self.queue_slope > 0.05 && self.arrival_rate > self.rate as f64 && self.final_queue >= 5
    }

    /// The clock at `t` seconds (the last tick's clock at or before it).
    pub fn clock_at_time(&self, t: f64) -> Option<u64> {
        let i = self.clock_at.partition_point(|(s, _)| *s <= t);
        (i > 0).then(|| self.clock_at[i - 1].1)
    }
}

/// One run: every machine, and the drift between them.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// `run-1`, or the folder's name.
    pub name: String,
    pub machines: Vec<Machine>,
    /// Seconds from the start until the first machine stopped ticking: the
    /// span in which every machine was running.
    pub common_end: f64,
    /// (seconds, max clock - min clock) once every machine ticks.
    pub drift_at: Vec<(f64, u64)>,
    pub final_drift: u64,
}

impl Run {
    pub fn slowest(&self) -> Option<&Machine> {
        self.machines
            .iter()
            .min_by_key(|m| (m.rate, m.name.clone()))
    }

    pub fn fastest(&self) -> Option<&Machine> {
        self.machines
            .iter()
            .max_by_key(|m| (m.rate, std::cmp::Reverse(m.name.clone())))
    }

    /// Max rate - min rate.
    pub fn spread(&self) -> u32 {
        let r = self.machines.iter().map(|m| m.rate);
        r.clone().max().unwrap_or(0) - r.min().unwrap_or(0)
    }

    pub fn internal_prob(&self) -> f64 {
        self.machines.first().map_or(0.0, |m| m.internal_prob)
    }

    pub fn draw_label(&self) -> String {
        match self.machines.first() {
            Some(Machine {
                event_range: Some(r),
                internal_prob,
                ..
            }) => format!("event range {r} (internal {:.0}%)", internal_prob * 100.0),
            Some(m) => format!("internal {:.0}%", m.internal_prob * 100.0),
            None => String::new(),
        }
    }

    pub fn rates_label(&self) -> String {
        self.machines
            .iter()
            .map(|m| format!("{} {}/s", m.name, m.rate))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn max_jump(&self) -> u64 {
        self.machines
            .iter()
            .map(Machine::max_jump)
            .max()
            .unwrap_or(0)
    }

    pub fn max_queue(&self) -> u64 {
        self.machines.iter().map(|m| m.max_queue).max().unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{dir}: cannot read: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: no event logs (*.jsonl) here or in run-*/ folders below it")]
    NoLogs(PathBuf),
    #[error(transparent)]
    Read(#[from] crate::events::ReadError),
    #[error("{dir}: no clock-model events in {files}: are they from `dsys clocks --events`?")]
    NotClocks { dir: PathBuf, files: String },
}

fn jsonl_in(dir: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    let rd = std::fs::read_dir(dir).map_err(|source| AnalysisError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// The runs under `dir`: its `run-K/` folders in order of K (or any other
/// sub-folder with logs, by name), or `dir` itself if its logs lie there.
/// Each run is a list of event files.
pub fn find_runs(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, AnalysisError> {
    let rd = std::fs::read_dir(dir).map_err(|source| AnalysisError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut subs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    // run-2 before run-10.
    subs.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let num = name
            .strip_prefix("run-")
            .and_then(|k| k.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (num, name)
    });
    let mut runs = Vec::new();
    for s in subs {
        let files = jsonl_in(&s)?;
        if !files.is_empty() {
            let name = s
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            runs.push((name, files));
        }
    }
    if runs.is_empty() {
        let files = jsonl_in(dir)?;
        if files.is_empty() {
            return Err(AnalysisError::NoLogs(dir.to_path_buf()));
        }
        let name = dir
            .file_name()
            .map_or("run".to_string(), |n| n.to_string_lossy().to_string());
        runs.push((name, files));
    }
    Ok(runs)
}

/// Reads and studies one run's event files.
pub fn read_run(name: &str, files: &[PathBuf]) -> Result<Run, AnalysisError> {
    let records = read_files::<Event>(files)?;
    let run = analyse(name, &records);
    if run.machines.is_empty() {
        let dir = files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let list: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect();
        return Err(AnalysisError::NotClocks {
            dir,
            files: list.join(", "),
        });
    }
    Ok(run)
}

/// Studies one run's records (in time order). Only a machine's last life
/// counts (a restarted machine starts its clock again).
pub fn analyse(name: &str, records: &[Record<Event>]) -> Run {
    // Each machine's last `setup` starts the life that counts (a log a
    // machine appended to over several sessions holds them all), and the
    // run begins with the earliest of those.
    let mut last_setup: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if matches!(r.entry, Entry::Algo(Event::Setup { .. })) {
            last_setup.insert(&r.node, i);
        }
    }
    let records: Vec<&Record<Event>> = records
        .iter()
        .enumerate()
        .filter(|(i, r)| last_setup.get(r.node.as_str()).is_some_and(|s| i >= s))
        .map(|(_, r)| r)
        .collect();
    let t0 = records.iter().map(|r| r.t_us).min().unwrap_or(0);
    let secs = |t: u64| t.saturating_sub(t0) as f64 / 1e6;
    let mut by_name: BTreeMap<String, Machine> = BTreeMap::new();
    let mut prev_clock: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        let Entry::Algo(e) = &r.entry else { continue };
        let t = secs(r.t_us);
        if let Event::Setup {
            rate,
            event_range,
            internal_prob,
            machines,
        } = e
        {
            by_name.insert(
                r.node.clone(),
                Machine {
                    name: r.node.clone(),
                    rate: *rate,
                    others: machines.clone(),
                    event_range: *event_range,
                    internal_prob: *internal_prob,
                    ..Machine::default()
                },
            );
            prev_clock.insert(r.node.clone(), 0);
            continue;
        }
        let Some(m) = by_name.get_mut(&r.node) else {
            continue;
        };
        match e {
            Event::Tick {
                queue_len, clock, ..
            } => {
                let before = prev_clock.get(&r.node).copied().unwrap_or(0);
                if m.ticks == 0 {
                    m.first_tick = t;
                }
                m.ticks += 1;
                m.last_tick = t;
                m.jumps.push(clock.saturating_sub(before));
                m.clock_at.push((t, *clock));
                m.queue_at.push((t, *queue_len));
                m.final_clock = *clock;
                m.final_queue = *queue_len;
                m.max_queue = m.max_queue.max(*queue_len);
                prev_clock.insert(r.node.clone(), *clock);
            }
            Event::Send { .. } => m.messages_sent += 1,
            Event::Receive { .. } => m.receives += 1,
            Event::Internal { .. } => m.internals += 1,
            Event::Arrive { queue_len, .. } => {
                m.arrivals += 1;
                m.queue_at.push((t, *queue_len));
                m.max_queue = m.max_queue.max(*queue_len);
            }
            Event::QueueFull { .. } => m.dropped += 1,
            _ => {}
        }
    }
    let mut machines: Vec<Machine> = by_name.into_values().collect();
    for m in &mut machines {
        m.send_ticks = m.ticks - m.receives.min(m.ticks) - m.internals.min(m.ticks);
        let active = m.active();
        if active > 0.0 {
            m.arrival_rate = m.arrivals as f64 / active;
        }
        m.queue_slope = slope(&m.queue_at, m.first_tick + active / 2.0);
    }
    predict(&mut machines);
    let mut run = Run {
        name: name.to_string(),
        common_end: machines
            .iter()
            .map(|m| m.last_tick)
            .fold(f64::INFINITY, f64::min),
        machines,
        ..Run::default()
    };
    if !run.common_end.is_finite() {
        run.common_end = 0.0;
    }
    drift(&mut run);
    run
}

/// Least-squares slope of the points at or after `from`.
fn slope(points: &[(f64, u64)], from: f64) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|&(t, q)| (t, q as f64))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return 0.0;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 { 0.0 } else { sxy / sxx }
}

/// The chance that a tick of a machine with `n` others sends to its next
/// machine, and to each of the others.
fn send_shares(n_others: usize, each: f64) -> (f64, f64) {
    match n_others {
        0 => (0.0, 0.0),
        // 1, 2 and 3 all reach the only other machine.
        1 => (3.0 * each, 0.0),
        // 1 → next, 2 → the other, 3 → both.
        2 => (2.0 * each, 2.0 * each),
        // 2 picks one of the n - 1 others at random.
        n => (2.0 * each, each + each / (n - 1) as f64),
    }
}

/// The model's arrival rates. A machine sends only on a tick that finds
/// its queue empty, which happens on a share `1 - min(1, λ/r)` of its
/// ticks; the rates at which the machines receive (λ) and the shares are
/// solved together by iterating to a fixed point.
fn predict(machines: &mut [Machine]) {
    let idx: BTreeMap<String, usize> = machines
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.clone(), i))
        .collect();
    let each = |m: &Machine| match m.event_range {
        Some(r) => 1.0 / r as f64,
        None => (1.0 - m.internal_prob) / 3.0,
    };
    let arrivals = |idle: &[f64]| {
        let mut lambda = vec![0.0; machines.len()];
        for (j, m) in machines.iter().enumerate() {
            let (next, other) = send_shares(m.others.len(), each(m));
            for (k, o) in m.others.iter().enumerate() {
                if let Some(&i) = idx.get(o) {
                    let share = if k == 0 { next } else { other };
                    lambda[i] += m.rate as f64 * idle[j] * share;
                }
            }
        }
        lambda
    };
    let naive = arrivals(&vec![1.0; machines.len()]);
    let mut idle = vec![1.0; machines.len()];
    let mut lambda = naive.clone();
    for _ in 0..200 {
        lambda = arrivals(&idle);
        for (i, m) in machines.iter().enumerate() {
            let busy = (lambda[i] / m.rate.max(1) as f64).min(1.0);
            // Damped, so the iteration settles instead of swinging.
            idle[i] = 0.5 * idle[i] + 0.5 * (1.0 - busy);
        }
    }
    for (i, m) in machines.iter_mut().enumerate() {
        m.expected_arrival = lambda[i];
        m.naive_arrival = naive[i];
    }
}

/// Drift (max clock - min clock) once a second while every machine ticks,
/// and at the end of that span.
fn drift(run: &mut Run) {
    let start = run
        .machines
        .iter()
        .map(|m| m.first_tick)
        .fold(0.0, f64::max);
    let end = run.common_end;
    let at = |t: f64| -> Option<u64> {
        let clocks: Vec<u64> = run
            .machines
            .iter()
            .map(|m| m.clock_at_time(t))
            .collect::<Option<Vec<_>>>()?;
        Some(clocks.iter().max()? - clocks.iter().min()?)
    };
    let mut series = Vec::new();
    let mut t = start.ceil();
    while t <= end {
        if let Some(d) = at(t) {
            series.push((t, d));
        }
        t += 1.0;
    }
    run.final_drift = at(end).unwrap_or(0);
    if end > start {
        series.push((end, run.final_drift));
    }
    run.drift_at = series;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t_us: u64, node: &str, e: Event) -> Record<Event> {
        Record {
            t_us,
            node: node.into(),
            entry: Entry::Algo(e),
        }
    }

    fn setup(node: &str, rate: u32, others: &[&str]) -> Record<Event> {
        rec(
            0,
            node,
            Event::Setup {
                rate,
                event_range: Some(10),
                internal_prob: 0.7,
                machines: others.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    #[test]
    fn jumps_queues_and_drift_come_from_the_ticks() {
        let mut r = vec![setup("a", 1, &["b"]), setup("b", 2, &["a"])];
        // b ticks twice a second with sends; a receives and jumps.
        let mut t = 0;
        for k in 1..=4u64 {
            t += 500_000;
            r.push(rec(
                t,
                "b",
                Event::Tick {
                    n: k,
                    queue_len: 0,
                    clock: k,
                },
            ));
            r.push(rec(
                t,
                "b",
                Event::Send {
                    to: "a".into(),
                    clock: k,
                },
            ));
            r.push(rec(
                t + 1,
                "a",
                Event::Arrive {
                    from: "b".into(),
                    msg_clock: k,
                    queue_len: 1,
                },
            ));
            if k % 2 == 0 {
                r.push(rec(
                    t + 2,
                    "a",
                    Event::Tick {
                        n: k / 2,
                        queue_len: 0,
                        clock: k + 1,
                    },
                ));
                r.push(rec(
                    t + 2,
                    "a",
                    Event::Receive {
                        from: "b".into(),
                        msg_clock: k,
                        queue_len: 0,
                        clock: k + 1,
                    },
                ));
            }
        }
        r.sort_by_key(|x| x.t_us);
        let run = analyse("run-1", &r);
        let a = &run.machines[0];
        assert_eq!(
            (a.name.as_str(), a.ticks, a.receives, a.arrivals),
            ("a", 2, 2, 4)
        );
        assert_eq!(a.jumps, [3, 2]);
        assert_eq!(a.max_jump(), 3);
        let b = &run.machines[1];
        assert_eq!((b.ticks, b.messages_sent, b.send_ticks), (4, 4, 4));
        // At the end of the common span (a's last tick, t = 2 s): a 5, b 4.
        assert_eq!(run.final_drift, 1);
        assert_eq!(run.spread(), 1);
        assert_eq!(run.slowest().unwrap().name, "a");
    }

    #[test]
    fn only_each_machines_last_life_counts() {
        let mut r = vec![setup("a", 1, &["b"]), setup("b", 1, &["a"])];
        r.push(rec(
            1_000_000,
            "a",
            Event::Tick {
                n: 1,
                queue_len: 0,
                clock: 1,
            },
        ));
        // a starts again an hour later, with a new rate.
        let later = 3_600_000_000;
        r.push(rec(
            later,
            "a",
            Event::Setup {
                rate: 4,
                event_range: Some(10),
                internal_prob: 0.7,
                machines: vec!["b".into()],
            },
        ));
        r.push(rec(
            later + 250_000,
            "a",
            Event::Tick {
                n: 1,
                queue_len: 0,
                clock: 1,
            },
        ));
        let run = analyse("run", &r);
        let a = &run.machines[0];
        assert_eq!((a.rate, a.ticks), (4, 1));
        // b's last life began at 0: the run starts there.
        assert!((a.first_tick - 3600.25).abs() < 1e-9, "{}", a.first_tick);
    }

    #[test]
    fn the_prediction_matches_the_model_by_hand() {
        // Three machines, range 10: each other receives 2/10 of a sender's
        // idle ticks. Rates 1, 6, 6: the slow one gets 0.2 * 12 = 2.4/s
        // from always-idle fast senders.
        let names = ["s", "f1", "f2"];
        let mut ms: Vec<Machine> = [(0, 1), (1, 6), (2, 6)]
            .iter()
            .map(|&(i, rate)| Machine {
                name: names[i].into(),
                rate,
                event_range: Some(10),
                internal_prob: 0.7,
                others: (1..3).map(|k| names[(i + k) % 3].to_string()).collect(),
                ..Machine::default()
            })
            .collect();
        predict(&mut ms);
        assert!(
            (ms[0].naive_arrival - 2.4).abs() < 1e-9,
            "{}",
            ms[0].naive_arrival
        );
        // The slow machine is always busy, so it sends nothing: a fast one
        // gets λ = 0.2 * 6 * idle from the other, idle = 1 - λ/6, so
        // idle = 5/6 and λ = 1; the slow one gets 2 * 0.2 * 6 * 5/6 = 2.
        assert!(
            (ms[0].expected_arrival - 2.0).abs() < 0.01,
            "{}",
            ms[0].expected_arrival
        );
        assert!(
            (ms[1].expected_arrival - 1.0).abs() < 0.01,
            "{}",
            ms[1].expected_arrival
        );
        assert!(ms[1].expected_arrival < ms[1].naive_arrival);
    }
}
