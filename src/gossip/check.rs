//! Gossip's invariant: every word reached every node alive at the end.
//! Also measured: coverage, messages per word, spread latency.
//!
//! A word is `(origin, seq)`. A node's knowledge dies with it (`crash`), so
//! a node alive at the end must have learned each word in its current life.
//! A node that quit (`stop`) counts with what it knew when it quit: a word
//! it knew is covered there, a word it lacked is not held against it (it
//! left; the word may have been on its way).
//! A word no live node knows (everyone who had it crashed) is reported apart
//! from lost words: nothing alive could have passed it on. Spread latency
//! counts the nodes that were up when the word was born.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::events::Event;
use crate::check::{Checker, Property, Report, verdict_line};
use crate::events::{Common, Entry, Record};
use crate::stats;

type WordKey = (String, u64);

#[derive(Debug, Default)]
pub struct GossipCheck {
    born: BTreeMap<WordKey, u64>,
    first_seen: BTreeMap<WordKey, u64>,
    learned: BTreeMap<String, BTreeMap<WordKey, u64>>,
    dead: BTreeSet<String>,
    /// Nodes that quit on purpose (and did not start again).
    stopped: BTreeSet<String>,
    /// When each node's current life began (a restart forgets everything).
    life_start: BTreeMap<String, u64>,
    messages: u64,
}

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

/// How many of `live` know `w`.
fn have_pairs_of(
    w: &WordKey,
    live: &[String],
    learned: &BTreeMap<String, BTreeMap<WordKey, u64>>,
) -> usize {
    live.iter()
        .filter(|n| learned.get(*n).is_some_and(|m| m.contains_key(w)))
        .count()
}

impl Checker for GossipCheck {
    type Event = Event;
    type Report = Coverage;
    const EVENTS: &'static [&'static str] = &[
        "learn",
        "link",
        "unlink",
        "link_failed",
        "peer_down",
        "peer_up",
    ];
    const OWN_EVENTS: &'static str = "`learn`";
    const ALGORITHM: &'static str = "gossip";

    fn is_own(r: &Record<Event>) -> bool {
        matches!(r.entry, Entry::Algo(Event::Learn { .. }))
    }

    fn record(&mut self, r: &Record<Event>) {
        let node = &r.node;
        match &r.entry {
            Entry::Algo(Event::Learn {
                origin, seq, from, ..
            }) => {
                let key = (origin.clone(), *seq);
                if from.is_none() {
                    self.born.entry(key.clone()).or_insert(r.t_us);
                }
                self.first_seen.entry(key.clone()).or_insert(r.t_us);
                self.learned
                    .entry(node.clone())
                    .or_default()
                    .entry(key)
                    .or_insert(r.t_us);
            }
            // Gone by a crash: its knowledge went with it.
            Entry::Common(Common::Crash) => {
                self.dead.insert(node.clone());
                self.learned.entry(node.clone()).or_default().clear();
            }
            // Gone on purpose: judged on what it knew then.
            Entry::Common(Common::Stop) => {
                self.stopped.insert(node.clone());
                self.learned.entry(node.clone()).or_default();
            }
            // A new life (simulator restart, or a real node starting again
            // into the same file): it knows nothing of its earlier life.
            Entry::Common(Common::Restart | Common::Start) => {
                self.dead.remove(node);
                self.stopped.remove(node);
                self.learned.entry(node.clone()).or_default().clear();
                self.life_start.insert(node.clone(), r.t_us);
            }
            Entry::Common(Common::Send { .. }) => self.messages += 1,
            _ => {
                self.learned.entry(node.clone()).or_default();
            }
        }
    }

    fn finish(self) -> Coverage {
        let live: Vec<String> = self
            .learned
            .keys()
            .filter(|n| !self.dead.contains(*n))
            .cloned()
            .collect();
        let mut out = Coverage {
            words: self.first_seen.len(),
            messages: self.messages,
            ..Default::default()
        };
        let mut have_pairs = 0usize;
        let mut pairs = 0usize;
        for (w, &seen) in &self.first_seen {
            let t0 = self.born.get(w).copied().unwrap_or(seen);
            let mut last = t0;
            let mut missing = Vec::new();
            for n in &live {
                match self.learned.get(n).and_then(|m| m.get(w)) {
                    Some(&t) => {
                        have_pairs += 1;
                        pairs += 1;
                        // A node restarted after the word was born catches up by
                        // anti-entropy; that is recovery, not spread latency.
                        if self.life_start.get(n).is_none_or(|&s| s <= t0) {
                            last = last.max(t);
                        }
                    }
                    None if self.stopped.contains(n) => {}
                    None => {
                        pairs += 1;
                        missing.push(n.clone());
                    }
                }
            }
            if have_pairs_of(w, &live, &self.learned) == 0 {
                out.died_with_node += 1;
            } else if !missing.is_empty() {
                out.lost.push((w.clone(), missing));
            } else {
                out.latencies.push(Duration::from_micros(last - t0));
            }
        }
        out.latencies.sort_unstable();
        out.coverage = if pairs == 0 {
            1.0
        } else {
            have_pairs as f64 / pairs as f64
        };
        out.live_nodes = live;
        out
    }
}

/// `spread latency (birth to last live node): median 344ms, p95 394ms, max 400ms`
pub fn latency_line(sorted: &[Duration]) -> String {
    format!(
        "spread latency (birth to last live node): {}",
        stats::summary(sorted, &[0.5, 0.95, 1.0])
    )
}

impl Report for Coverage {
    /// Completeness is what this check is about: a lost word fails it.
    fn properties(&self) -> Vec<Property> {
        vec![
            Property::safety(
                "every word at every live node",
                self.lost.first().map(|(w, lacking)| {
                    format!(
                        "{} word(s) missing, e.g. {w:?} at {}",
                        self.lost.len(),
                        lacking.join(", ")
                    )
                }),
            ),
            Property::exercised("words made", self.words > 0, "no words were made"),
        ]
    }

    fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "words: {} at {} live nodes ({})",
            self.words,
            self.live_nodes.len(),
            self.live_nodes.join(", ")
        );
        let _ = writeln!(s, "coverage: {:.2}%", self.coverage * 100.0);
        let _ = writeln!(
            s,
            "messages between nodes: {} = {:.2} per word",
            self.messages,
            self.messages as f64 / self.words.max(1) as f64
        );
        if !self.latencies.is_empty() {
            let _ = writeln!(s, "{}", latency_line(&self.latencies));
        }
        if self.died_with_node > 0 {
            let _ = writeln!(
                s,
                "words no live node knows (died with their node): {}",
                self.died_with_node
            );
        }
        if !self.lost.is_empty() {
            let _ = writeln!(
                s,
                "{} word(s) did NOT reach every live node",
                self.lost.len()
            );
            for ((origin, seq), missing) in self.lost.iter().take(10) {
                let _ = writeln!(s, "  word {origin}#{seq} missing at {}", missing.join(", "));
            }
        }
        let what = if self.words == 0 {
            "no words were made, so nothing spread".to_string()
        } else if self.lost.is_empty() {
            "every word reached every live node".to_string()
        } else {
            "some words did not reach every live node".to_string()
        };
        let _ = writeln!(s, "{}", verdict_line(self.verdict(), &what));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;

    fn common(t: u64, node: &str, c: Common) -> Record<Event> {
        Record {
            t_us: t,
            node: node.into(),
            entry: Entry::Common(c),
        }
    }

    fn learn(t: u64, node: &str, origin: &str, seq: u64, from: Option<&str>) -> Record<Event> {
        Record {
            t_us: t,
            node: node.into(),
            entry: Entry::Algo(Event::Learn {
                word: "w".into(),
                origin: origin.into(),
                seq,
                from: from.map(String::from),
            }),
        }
    }

    fn other(t: u64, node: &str) -> Record<Event> {
        Record {
            t_us: t,
            node: node.into(),
            entry: Entry::Algo(Event::Other),
        }
    }

    #[test]
    fn the_event_names_dsys_check_tells_files_by_are_its_events() {
        crate::check::assert_events_are_variants::<super::GossipCheck>();
    }

    #[test]
    fn full_coverage_passes_with_latency() {
        let r = vec![
            learn(0, "a", "a", 1, None),
            common(
                50,
                "a",
                Common::Send {
                    to: "b".into(),
                    kind: "rumors".into(),
                },
            ),
            learn(100, "b", "a", 1, Some("a")),
            learn(300, "c", "a", 1, Some("b")),
        ];
        let c = check::<GossipCheck>(&r);
        assert!(c.lost.is_empty());
        assert_eq!(c.latencies, vec![Duration::from_micros(300)]);
        assert_eq!(c.messages, 1);
        assert_eq!(c.coverage, 1.0);
        assert!(c.render().contains("verdict: OK"), "{}", c.render());
    }

    #[test]
    fn a_missing_word_is_lost_and_a_crash_forgets() {
        let r = vec![
            learn(0, "a", "a", 1, None),
            learn(10, "b", "a", 1, Some("a")),
            other(20, "c"),
            // b crashes and comes back: it must learn the word again.
            common(30, "b", Common::Crash),
            common(40, "b", Common::Restart),
        ];
        let c = check::<GossipCheck>(&r);
        assert_eq!(c.lost.len(), 1);
        assert_eq!(c.lost[0].1, vec!["b".to_string(), "c".to_string()]);
        assert!(!c.verdict().passed(false));
        // A word only a crashed node ever had died with it.
        let r = vec![
            learn(0, "a", "a", 1, None),
            other(5, "b"),
            common(10, "a", Common::Crash),
        ];
        let c = check::<GossipCheck>(&r);
        assert!(c.lost.is_empty());
        assert_eq!(c.died_with_node, 1);
    }

    #[test]
    fn a_node_that_quit_counts_with_what_it_knew() {
        // c quits before the second word: it is not held against it, and
        // what it did know still counts; everyone quitting at the end is a
        // normal end of a run.
        let r = vec![
            learn(0, "a", "a", 1, None),
            learn(10, "b", "a", 1, Some("a")),
            learn(20, "c", "a", 1, Some("b")),
            common(30, "c", Common::Stop),
            learn(40, "a", "a", 2, None),
            learn(50, "b", "a", 2, Some("a")),
            common(60, "a", Common::Stop),
            common(61, "b", Common::Stop),
        ];
        let c = check::<GossipCheck>(&r);
        assert!(c.lost.is_empty(), "{:?}", c.lost);
        assert_eq!(c.live_nodes.len(), 3);
        assert_eq!(c.coverage, 1.0);
        assert!(c.verdict().passed(true), "{}", c.render());
        // But a node running to the end must have every word.
        let r = vec![
            learn(0, "a", "a", 1, None),
            other(5, "b"),
            common(10, "a", Common::Stop),
        ];
        let c = check::<GossipCheck>(&r);
        assert_eq!(c.lost.len(), 1);
        assert_eq!(c.lost[0].1, vec!["b".to_string()]);
    }
}
