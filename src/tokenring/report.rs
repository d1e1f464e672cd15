//! The human-readable verdict of a token-ring check, shared by `dsys check`,
//! `dsys sim` and `dsys demo`.

use std::fmt::Write as _;

use super::Note;
use crate::check::tokenring::{MutexCheck, Report};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let total: u64 = r.entries.values().sum();
    let per_node = r
        .entries
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "critical-section entries: {total} ({per_node})");
    if !r.lock_waits_us.is_empty() {
        let mut w = r.lock_waits_us.clone();
        w.sort_unstable();
        let _ = writeln!(
            s,
            "lock-to-enter wait: median {:.1}ms, p99 {:.1}ms, max {:.1}ms",
            percentile(&w, 0.5) as f64 / 1e3,
            percentile(&w, 0.99) as f64 / 1e3,
            percentile(&w, 1.0) as f64 / 1e3,
        );
    }
    let _ = writeln!(s, "token regenerations: {}", r.regenerations);
    if r.pending.is_empty() {
        let _ = writeln!(s, "liveness: every lock was granted");
    } else {
        let list = r
            .pending
            .iter()
            .map(|(n, t)| format!("{n} (asked at t={t}us)"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            s,
            "liveness: {} lock(s) never granted: {list}",
            r.pending.len()
        );
    }
    if r.safe() {
        let _ = writeln!(
            s,
            "mutual exclusion: OK ({} critical-section intervals, never two at once)",
            r.intervals
        );
    } else {
        let _ = writeln!(
            s,
            "mutual exclusion: VIOLATED {} time(s)",
            r.violations.len()
        );
        for (a, b) in r.violations.iter().take(10) {
            let _ = writeln!(s, "  {a}\n  overlaps {b}");
        }
    }
    s
}

/// Feeds one note of `node`, at time `t` (µs), into the checker.
pub fn feed(c: &mut MutexCheck, node: &str, t: u64, note: &Note) {
    match note {
        Note::LockRequested => c.lock(node, t),
        Note::LockCancelled => c.lock_cancelled(node, t),
        Note::CsEnter { lease_left, .. } => c.enter(node, t, lease_left.as_micros() as u64),
        Note::LeaseRenewed { lease_left } => c.renewed(node, t, lease_left.as_micros() as u64),
        Note::CsExit { .. } => c.exit(node, t),
        Note::TokenRegenerated { .. } => c.regenerations += 1,
        _ => {}
    }
}
