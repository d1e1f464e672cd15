//! The multicast invariants over delivery logs (`dsys check multicast`).
//!
//! Each node's *life* (from a start to a crash, or the end) delivers a
//! sequence of messages `(origin, seq)`. All lives must be contiguous pieces
//! of one total order: a node that stopped early delivered a prefix, a node
//! that restarted delivers a suffix from its join on. No life delivers a
//! message twice, each keeps every sender's messages in send order, and no
//! message multicast by a sender that did not crash goes undelivered.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::events::Event;
use crate::check::{Checker, Report as _, Verdict, verdict_line};
use crate::events::{Common, Entry, Record};

pub type Id = (String, u64);

#[derive(Debug, Default)]
pub struct Life {
    pub node: String,
    pub delivered: Vec<Id>,
    pub crashed: bool,
}

#[derive(Debug, Default)]
pub struct OrderCheck {
    lives: Vec<Life>,
    current: BTreeMap<String, usize>,
    /// Messages multicast, and whether their sender's life later crashed.
    sent: Vec<(Id, String, usize)>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub lives: usize,
    pub messages: usize,
    pub deliveries: usize,
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl OrderCheck {
    fn life(&mut self, node: &str) -> usize {
        if let Some(&i) = self.current.get(node) {
            return i;
        }
        self.new_life(node)
    }

    /// The node (re)started: what it delivers now is a new life.
    pub fn new_life(&mut self, node: &str) -> usize {
        self.lives.push(Life {
            node: node.to_string(),
            ..Life::default()
        });
        let i = self.lives.len() - 1;
        self.current.insert(node.to_string(), i);
        i
    }

    pub fn crash(&mut self, node: &str) {
        if let Some(i) = self.current.remove(node) {
            self.lives[i].crashed = true;
        }
    }

    pub fn multicast(&mut self, node: &str, seq: u64) {
        let life = self.life(node);
        self.sent
            .push(((node.to_string(), seq), node.to_string(), life));
    }

    pub fn deliver(&mut self, node: &str, origin: &str, seq: u64) {
        let i = self.life(node);
        self.lives[i].delivered.push((origin.to_string(), seq));
    }

    pub fn lives(&self) -> &[Life] {
        &self.lives
    }

    pub fn report(&self) -> Report {
        let mut problems = Vec::new();
        let show = |id: &Id| format!("{}#{}", id.0, id.1);
        for l in &self.lives {
            let mut seen = BTreeSet::new();
            let mut last: HashMap<&str, u64> = HashMap::new();
            for id in &l.delivered {
                if !seen.insert(id) {
                    problems.push(format!("{} delivered {} twice", l.node, show(id)));
                }
                if let Some(&prev) = last.get(id.0.as_str())
                    && prev > id.1
                {
                    problems.push(format!(
                        "{} delivered {}'s message {} after its later message {}",
                        l.node, id.0, id.1, prev
                    ));
                }
                last.insert(&id.0, id.1);
            }
        }
        // Merge the lives, longest first, into one order.
        let mut order: Vec<&Life> = self
            .lives
            .iter()
            .filter(|l| !l.delivered.is_empty())
            .collect();
        order.sort_by_key(|l| std::cmp::Reverse(l.delivered.len()));
        let mut global: Vec<Id> = Vec::new();
        for l in order {
            let pos: HashMap<Id, usize> = global
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect();
            let Some((q, p)) = l
                .delivered
                .iter()
                .enumerate()
                .find_map(|(q, id)| pos.get(id).map(|&p| (q, p)))
            else {
                global.extend(l.delivered.iter().cloned());
                continue;
            };
            if q > 0 && p > 0 {
                problems.push(format!(
                    "{} delivered {} before {}, which others delivered after {}",
                    l.node,
                    show(&l.delivered[q - 1]),
                    show(&l.delivered[q]),
                    show(&global[p - 1])
                ));
                continue;
            }
            // Either the life starts inside the order (q == 0: align at p),
            // or it starts before it (p == 0: its first q messages go first).
            let base = if q > 0 {
                let mut merged = l.delivered[..q].to_vec();
                merged.append(&mut global);
                global = merged;
                0
            } else {
                p
            };
            for (i, id) in l.delivered.iter().enumerate() {
                let g = base + i;
                if g < global.len() {
                    if &global[g] != id {
                        problems.push(format!(
                            "order diverges: {} delivered {} as its message #{}, where the common order has {}",
                            l.node,
                            show(id),
                            i + 1,
                            show(&global[g])
                        ));
                        break;
                    }
                } else if pos.contains_key(id) {
                    problems.push(format!(
                        "order diverges: {} delivered {} as its message #{}, after messages the common order has after it",
                        l.node,
                        show(id),
                        i + 1
                    ));
                    break;
                } else {
                    global.push(id.clone());
                }
            }
        }
        let everywhere: BTreeSet<&Id> = global.iter().collect();
        for (id, node, life) in &self.sent {
            if !self.lives[*life].crashed && !everywhere.contains(id) {
                problems.push(format!("{node}'s message {} was never delivered", show(id)));
            }
        }
        Report {
            lives: self.lives.len(),
            messages: global.len(),
            deliveries: self.lives.iter().map(|l| l.delivered.len()).sum(),
            problems,
        }
    }
}

impl Checker for OrderCheck {
    type Event = Event;
    type Report = Report;
    const OWN_EVENTS: &'static str = "`deliver` or `multicast`";
    const ALGORITHM: &'static str = "multicast";

    fn is_own(r: &Record<Event>) -> bool {
        matches!(
            r.entry,
            Entry::Algo(Event::Deliver { .. } | Event::Multicast { .. })
        )
    }

    fn record(&mut self, r: &Record<Event>) {
        match &r.entry {
            Entry::Common(Common::Start | Common::Restart) => {
                self.new_life(&r.node);
            }
            Entry::Common(Common::Crash) => self.crash(&r.node),
            Entry::Algo(Event::Multicast { seq, .. }) => self.multicast(&r.node, *seq),
            Entry::Algo(Event::Deliver { origin, seq, .. }) => self.deliver(&r.node, origin, *seq),
            _ => {}
        }
    }

    fn finish(self) -> Report {
        self.report()
    }
}

impl crate::check::Report for Report {
    fn verdict(&self) -> Verdict {
        Verdict {
            safe: self.problems.is_empty(),
            live: true,
            exercised: self.deliveries > 0,
        }
    }

    fn render(&self) -> String {
        render(self)
    }
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "messages in the total order: {}; deliveries: {} by {} node lives",
        r.messages, r.deliveries, r.lives
    );
    for p in r.problems.iter().take(10) {
        let _ = writeln!(s, "  {p}");
    }
    let what = if r.ok() {
        "every life delivered a contiguous piece of one total order, no duplicates, per-sender FIFO, nothing lost".to_string()
    } else {
        format!("{} problem(s), the first above", r.problems.len())
    };
    let _ = writeln!(s, "{}", verdict_line(r.verdict(), &what));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut OrderCheck)) -> Report {
        let mut c = OrderCheck::default();
        f(&mut c);
        c.report()
    }

    #[test]
    fn same_order_prefixes_and_suffixes_pass() {
        let r = run(|c| {
            for n in ["a", "b"] {
                for (o, s) in [("a", 1), ("b", 1), ("a", 2)] {
                    c.deliver(n, o, s);
                }
            }
            c.deliver("c", "a", 1); // stopped early: a prefix
            c.new_life("d");
            c.deliver("d", "a", 2); // joined late: a suffix
            c.multicast("a", 1);
        });
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.messages, 3);
    }

    #[test]
    fn divergence_duplicates_fifo_and_loss_are_named() {
        let r = run(|c| {
            c.deliver("a", "x", 1);
            c.deliver("a", "y", 1);
            c.deliver("b", "y", 1);
            c.deliver("b", "x", 1);
        });
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("diverges") || p.contains("before")),
            "{:?}",
            r.problems
        );
        let r = run(|c| {
            c.deliver("a", "x", 2);
            c.deliver("a", "x", 1);
            c.deliver("a", "x", 2);
            c.multicast("z", 9);
        });
        assert!(r.problems.iter().any(|p| p.contains("twice")));
        assert!(r.problems.iter().any(|p| p.contains("after its later")));
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("z#9") && p.contains("never delivered"))
        );
    }
}
