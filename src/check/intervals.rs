//! Mutual exclusion over time: the intervals each node spent in a critical
//! section, and every pair that overlapped. Shared by the checkers of the
//! mutual-exclusion algorithms.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub node: String,
    pub enter_us: u64,
    pub exit_us: u64,
    /// How the end is known: logged, or inferred (lease end, crash...).
    pub end: End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The node logged its exit.
    Logged,
    /// The node found its lease had run out; the section ended at the lease end.
    LeaseEnd,
    /// The node stopped logging (killed) or crashed: its lease end, or the
    /// crash, is the latest it could still have been inside.
    Inferred,
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} in the critical section from t={}us to t={}us{}",
            self.node,
            self.enter_us,
            self.exit_us,
            match self.end {
                End::Logged => "",
                End::LeaseEnd => " (its lease end)",
                End::Inferred => " (end inferred)",
            }
        )
    }
}

/// Every pair of intervals of different nodes that overlap (sharing only an
/// end point is not an overlap).
pub fn overlaps(intervals: &[Interval]) -> Vec<(Interval, Interval)> {
    let mut iv = intervals.to_vec();
    iv.sort_by_key(|i| (i.enter_us, i.exit_us));
    let mut out = Vec::new();
    // Sweep: compare each interval with the ones still open when it starts.
    let mut open: Vec<&Interval> = Vec::new();
    for i in &iv {
        open.retain(|o| o.exit_us > i.enter_us);
        for o in &open {
            if o.node != i.node {
                out.push(((*o).clone(), i.clone()));
            }
        }
        open.push(i);
    }
    out
}

/// `critical-section entries: N (a 3, b 2)`, or just 0.
pub fn entries_line(entries: &std::collections::BTreeMap<String, u64>) -> String {
    let total: u64 = entries.values().sum();
    if entries.is_empty() {
        return "critical-section entries: 0".into();
    }
    let per_node = entries
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("critical-section entries: {total} ({per_node})")
}

/// The mutual-exclusion lines of a report: the overlaps (up to 10), or
/// NOT EXERCISED, or OK over `intervals`.
pub fn exclusion_lines(violations: &[(Interval, Interval)], intervals: usize) -> String {
    if !violations.is_empty() {
        let mut s = format!("mutual exclusion: VIOLATED {} time(s)\n", violations.len());
        for (a, b) in violations.iter().take(10) {
            s.push_str(&format!("  {a}\n  overlaps {b}\n"));
        }
        s
    } else if intervals == 0 {
        "mutual exclusion: NOT EXERCISED (no node entered the critical section, so there was nothing to check)\n".into()
    } else {
        format!(
            "mutual exclusion: OK ({intervals} critical-section intervals, never two at once)\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(node: &str, a: u64, b: u64) -> Interval {
        Interval {
            node: node.into(),
            enter_us: a,
            exit_us: b,
            end: End::Logged,
        }
    }

    #[test]
    fn touching_intervals_pass_and_every_overlap_is_named() {
        assert!(overlaps(&[iv("a", 0, 10), iv("b", 10, 20)]).is_empty());
        let o = overlaps(&[iv("a", 0, 100), iv("b", 10, 20), iv("c", 30, 40)]);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].0.node, "a");
        assert_eq!(o[1].1.node, "c");
        // The same node twice is not a violation of mutual exclusion.
        assert!(overlaps(&[iv("a", 0, 10), iv("a", 5, 20)]).is_empty());
    }
}
