//! Human-readable results of gossip runs and checks.

use std::fmt::Write as _;
use std::time::Duration;

use super::simulate::SimSummary;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn latency_line(sorted: &[Duration]) -> String {
    format!(
        "spread latency (birth to last live node): median {:.0}ms, p95 {:.0}ms, max {:.0}ms",
        percentile(sorted, 0.5).as_secs_f64() * 1e3,
        percentile(sorted, 0.95).as_secs_f64() * 1e3,
        percentile(sorted, 1.0).as_secs_f64() * 1e3,
    )
}

pub fn render_sim(s: &SimSummary) -> String {
    let mut out = String::new();
    let mpw = s.msgs_per_word();
    let _ = writeln!(out, "words: {}", s.words);
    let _ = writeln!(
        out,
        "inter-node messages: {} = {:.2} per word (Maelstrom msgs-per-op: {:.2})",
        s.messages,
        mpw,
        mpw / 2.0
    );
    let _ = writeln!(out, "{}", latency_line(&s.latencies));
    if s.died_with_node > 0 {
        let _ = writeln!(
            out,
            "words that died with their node (it crashed before telling anyone): {}",
            s.died_with_node
        );
    }
    if s.lost.is_empty() {
        let _ = writeln!(out, "lost words: 0 (every word reached every live node)");
    } else {
        let _ = writeln!(
            out,
            "LOST words: {} (known to some live nodes but not all)",
            s.lost.len()
        );
    }
    out
}
