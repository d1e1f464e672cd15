//! The gossip invariant: every word reached every node alive at the end.
//! Also measured: coverage, messages per word, spread latency.
//!
//! A word is `(origin, seq)`. A node's knowledge dies with it (`crash`), so
//! a node alive at the end must have learned each word in its current life.
//! A word no live node knows (everyone who had it crashed) is reported apart
//! from lost words: nothing alive could have passed it on. Spread latency
//! counts the nodes that were up when the word was born.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::Record;
use crate::gossip::report::latency_line;

type WordKey = (String, u64);

#[derive(Debug, Default)]
pub struct Coverage {
    pub words: usize,
    pub live_nodes: Vec<String>,
    pub messages: u64,
    /// Spread latency of every word that reached every live node.
    pub latencies: Vec<Duration>,
    /// Words some live node never learned, with who lacks them.
    pub lost: Vec<(WordKey, Vec<String>)>,
    pub died_with_node: usize,
    /// Learned (word, live node) pairs over all pairs.
    pub coverage: f64,
}

pub fn check(records: &[Record]) -> Coverage {
    let mut born: BTreeMap<WordKey, u64> = BTreeMap::new();
    let mut first_seen: BTreeMap<WordKey, u64> = BTreeMap::new();
    let mut learned: BTreeMap<String, BTreeMap<WordKey, u64>> = BTreeMap::new();
    let mut dead: BTreeSet<String> = BTreeSet::new();
    // When each node's current life began (a restart forgets everything).
    let mut life_start: BTreeMap<String, u64> = BTreeMap::new();
    let mut messages = 0;
    for r in records {
        match r.event.as_str() {
            "learn" => {
                let (Some(origin), Some(seq)) = (r.str("origin"), r.u64("seq")) else {
                    continue;
                };
                let key = (origin.to_string(), seq);
                if r.fields.get("from").is_none_or(|f| f.is_null()) {
                    born.entry(key.clone()).or_insert(r.t_us);
                }
                first_seen.entry(key.clone()).or_insert(r.t_us);
                learned
                    .entry(r.node.clone())
                    .or_default()
                    .entry(key)
                    .or_insert(r.t_us);
            }
            "crash" => {
                dead.insert(r.node.clone());
                learned.entry(r.node.clone()).or_default().clear();
            }
            // A new life (simulator restart, or a real node starting again
            // into the same file): it knows nothing of its earlier life.
            "restart" | "start" => {
                dead.remove(&r.node);
                learned.entry(r.node.clone()).or_default().clear();
                life_start.insert(r.node.clone(), r.t_us);
            }
            "send" => messages += 1,
            _ => {
                learned.entry(r.node.clone()).or_default();
            }
        }
    }
    let live: Vec<String> = learned
        .keys()
        .filter(|n| !dead.contains(*n))
        .cloned()
        .collect();
    let mut out = Coverage {
        words: first_seen.len(),
        messages,
        ..Default::default()
    };
    let mut have_pairs = 0usize;
    for (w, &seen) in &first_seen {
        let t0 = born.get(w).copied().unwrap_or(seen);
        let mut last = t0;
        let mut missing = Vec::new();
        for n in &live {
            match learned.get(n).and_then(|m| m.get(w)) {
                Some(&t) => {
                    have_pairs += 1;
                    // A node restarted after the word was born catches up by
                    // anti-entropy; that is recovery, not spread latency.
                    if life_start.get(n).is_none_or(|&s| s <= t0) {
                        last = last.max(t);
                    }
                }
                None => missing.push(n.clone()),
            }
        }
        if missing.len() == live.len() {
            out.died_with_node += 1;
        } else if !missing.is_empty() {
            out.lost.push((w.clone(), missing));
        } else {
            out.latencies.push(Duration::from_micros(last - t0));
        }
    }
    out.latencies.sort_unstable();
    let pairs = first_seen.len() * live.len();
    out.coverage = if pairs == 0 {
        1.0
    } else {
        have_pairs as f64 / pairs as f64
    };
    out.live_nodes = live;
    out
}

pub fn render(c: &Coverage) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "words: {} at {} live nodes ({})",
        c.words,
        c.live_nodes.len(),
        c.live_nodes.join(", ")
    );
    let _ = writeln!(s, "coverage: {:.2}%", c.coverage * 100.0);
    let _ = writeln!(
        s,
        "messages between nodes: {} = {:.2} per word",
        c.messages,
        c.messages as f64 / c.words.max(1) as f64
    );
    if !c.latencies.is_empty() {
        let _ = writeln!(s, "{}", latency_line(&c.latencies));
    }
    if c.died_with_node > 0 {
        let _ = writeln!(
            s,
            "words no live node knows (died with their node): {}",
            c.died_with_node
        );
    }
    if c.lost.is_empty() {
        let _ = writeln!(s, "verdict: OK, every word reached every live node");
    } else {
        let _ = writeln!(
            s,
            "verdict: {} word(s) did NOT reach every live node",
            c.lost.len()
        );
        for ((origin, seq), missing) in c.lost.iter().take(10) {
            let _ = writeln!(s, "  word {origin}#{seq} missing at {}", missing.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(t: u64, node: &str, event: &str, fields: serde_json::Value) -> Record {
        Record {
            t_us: t,
            node: node.into(),
            event: event.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn learn(t: u64, node: &str, origin: &str, seq: u64, from: Option<&str>) -> Record {
        rec(
            t,
            node,
            "learn",
            json!({"word": "w", "origin": origin, "seq": seq, "from": from}),
        )
    }

    #[test]
    fn full_coverage_passes_with_latency() {
        let r = vec![
            learn(0, "a", "a", 1, None),
            learn(100, "b", "a", 1, Some("a")),
            learn(300, "c", "a", 1, Some("b")),
            rec(50, "a", "send", json!({"to": "b", "kind": "rumors"})),
        ];
        let c = check(&r);
        assert!(c.lost.is_empty());
        assert_eq!(c.latencies, vec![Duration::from_micros(300)]);
        assert_eq!(c.messages, 1);
        assert_eq!(c.coverage, 1.0);
    }

    #[test]
    fn a_missing_word_is_lost_and_a_crash_forgets() {
        let r = vec![
            learn(0, "a", "a", 1, None),
            learn(10, "b", "a", 1, Some("a")),
            rec(20, "c", "status", json!({})),
            // b crashes and comes back: it must learn the word again.
            rec(30, "b", "crash", json!({})),
            rec(40, "b", "restart", json!({})),
        ];
        let c = check(&r);
        assert_eq!(c.lost.len(), 1);
        assert_eq!(c.lost[0].1, vec!["b".to_string(), "c".to_string()]);
        // A word only a crashed node ever had died with it.
        let r = vec![
            learn(0, "a", "a", 1, None),
            rec(5, "b", "x", json!({})),
            rec(10, "a", "crash", json!({})),
        ];
        let c = check(&r);
        assert!(c.lost.is_empty());
        assert_eq!(c.died_with_node, 1);
    }
}
