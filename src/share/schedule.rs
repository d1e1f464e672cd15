//! Which piece goes to which source, what is retried, and when a download
//! gives up on its sources: the download's decisions, with no socket, file
//! or clock in them (the async workers in `download` do the IO and tell the
//! schedule what came of it).
//!
//! The rules: a source takes the lowest missing piece whenever it has
//! finished one (so a faster or less loaded source carries more). A piece
//! whose source failed goes back to the others, and the source is dropped;
//! a source whose piece did not match its hash is avoided for the rest of
//! the download. A source with nothing to take waits while other pieces are
//! in flight (they may come back); once nothing is missing or in flight,
//! or every source is out, the workers stop and the download asks the
//! tracker for new holders. A disk error stops everything.

use std::collections::BTreeSet;

use super::hash::Hash;
use super::partial::Partial;

/// A source of this download, by its index in the order it was added.
pub type SourceIx = usize;

/// What a source should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Fetch this piece.
    Fetch(u64),
    /// Nothing to take now, but pieces are in flight: ask again when one
    /// is done or handed back.
    Wait,
    /// Stop: nothing is left for this source (all done, it is out, or the
    /// download stopped).
    Stop,
}

/// What came of a piece a source did not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The source failed (connection, timeout, refusal): dropped, its
    /// piece goes to the others.
    Failed(String),
    /// The source sent data that does not hash right: avoided for the rest
    /// of the download.
    Bad,
    /// This download cannot go on (the disk).
    Fatal(String),
}

#[derive(Clone, Debug)]
struct Source {
    name: String,
    addr: String,
    pieces: usize,
    /// Why it is no longer used (None: in use).
    out: Option<String>,
}

/// The state of one download's pieces and sources.
#[derive(Debug)]
pub struct Schedule {
    todo: BTreeSet<u64>,
    record: Partial,
    /// Bumped on every piece done: a saved record with a lower one is older.
    version: u64,
    values: Vec<Option<Hash>>,
    sources: Vec<Source>,
    fatal: Option<String>,
    in_flight: usize,
}

impl Schedule {
    /// A schedule for the pieces `record` does not call done; `values`
    /// holds the values of those it does.
    pub fn new(record: Partial, values: Vec<Option<Hash>>) -> Schedule {
        let todo = (0..values.len() as u64)
            .filter(|&i| !record.is_done(i))
            .collect();
        Schedule {
            todo,
            record,
            version: 0,
            values,
            sources: Vec::new(),
            fatal: None,
            in_flight: 0,
        }
    }

    pub fn add_source(&mut self, name: &str, addr: &str) -> SourceIx {
        self.sources.push(Source {
            name: name.to_string(),
            addr: addr.to_string(),
            pieces: 0,
            out: None,
        });
        self.sources.len() - 1
    }

    /// What source `ix` does next.
    pub fn next(&mut self, ix: SourceIx) -> Next {
        if self.fatal.is_some() || self.sources.get(ix).is_none_or(|s| s.out.is_some()) {
            return Next::Stop;
        }
        match self.todo.pop_first() {
            Some(p) => {
                self.in_flight += 1;
                Next::Fetch(p)
            }
            None if self.in_flight == 0 => Next::Stop,
            None => Next::Wait,
        }
    }

    /// Source `ix` delivered `piece`, checked, with `value`. Returns the
    /// record to save and its version.
    pub fn delivered(&mut self, ix: SourceIx, piece: u64, value: Hash) -> (Partial, u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(v) = self.values.get_mut(piece as usize) {
            *v = Some(value);
        }
        self.record.mark(piece, true);
        if let Some(s) = self.sources.get_mut(ix) {
            s.pieces += 1;
        }
        self.version += 1;
        (self.record.clone(), self.version)
    }

    /// Source `ix` did not deliver `piece`: the piece is missing again, and
    /// the source is out (or the download, for a disk error). Returns what
    /// to tell the user, the first time a source goes out.
    pub fn failed(&mut self, ix: SourceIx, piece: u64, why: Failure) -> Option<String> {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.todo.insert(piece);
        let others: Vec<&str> = self
            .sources
            .iter()
            .enumerate()
            .filter(|(i, x)| *i != ix && x.out.is_none())
            .map(|(_, x)| x.name.as_str())
            .collect();
        let to = if others.is_empty() {
            "no other source now".to_string()
        } else {
            format!("its pieces go to {}", others.join(", "))
        };
        if let Failure::Fatal(e) = why {
            self.fatal.get_or_insert(e);
            return None;
        }
        let s = self.sources.get_mut(ix)?;
        if s.out.is_some() {
            return None;
        }
        let source = s.name.clone();
        match why {
            Failure::Bad => {
                s.out = Some("sent data that failed its hash".into());
                Some(format!(
                    "piece {piece} from {source} does not match its hash: {source} is avoided for the rest of this download; {to}"
                ))
            }
            Failure::Failed(e) => {
                let line = format!("{source} at {} failed ({e}): {to}", s.addr);
                s.out = Some(e);
                Some(line)
            }
            Failure::Fatal(_) => None,
        }
    }

    /// Pieces not delivered yet: missing, or in flight.
    pub fn left(&self) -> usize {
        self.todo.len() + self.in_flight
    }

    /// Why the download cannot go on, if it cannot.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// "NAME: why" for every source that is out.
    pub fn reasons(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter_map(|x| x.out.as_ref().map(|o| format!("{}: {o}", x.name)))
            .collect()
    }

    /// "NAME (N pieces)" for every source that delivered any.
    pub fn per_source(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter(|x| x.pieces > 0)
            .map(|x| format!("{} ({})", x.name, super::plural(x.pieces, "piece")))
            .collect()
    }

    /// Pieces the record calls done.
    pub fn done(&self) -> usize {
        self.record.count_done()
    }

    /// Every piece's value, when all are done.
    pub fn values(&self) -> Option<Vec<Hash>> {
        self.values.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(count: u64, done: &[u64]) -> Schedule {
        let mut rec = Partial::new([7; 32], count * 10, 10);
        let mut values = vec![None; count as usize];
        for &d in done {
            rec.mark(d, true);
            values[d as usize] = Some([d as u8; 32]);
        }
        Schedule::new(rec, values)
    }

    #[test]
    fn sources_take_the_lowest_missing_piece_in_turn() {
        let mut s = schedule(5, &[1]);
        let (a, b) = (s.add_source("a", "h:1"), s.add_source("b", "h:2"));
        assert_eq!(s.next(a), Next::Fetch(0));
        assert_eq!(s.next(b), Next::Fetch(2));
        assert_eq!(s.next(a), Next::Fetch(3));
        s.delivered(b, 2, [2; 32]);
        assert_eq!(s.next(b), Next::Fetch(4));
        assert_eq!(s.left(), 3, "0, 3 and 4 in flight");
    }

    #[test]
    fn a_source_with_nothing_to_take_waits_while_pieces_are_in_flight() {
        let mut s = schedule(1, &[]);
        let (a, b) = (s.add_source("a", "h:1"), s.add_source("b", "h:2"));
        assert_eq!(s.next(a), Next::Fetch(0));
        assert_eq!(s.next(b), Next::Wait);
        // a fails: its piece comes back, and b takes it.
        let said = s.failed(a, 0, Failure::Failed("reset".into()));
        assert_eq!(
            said.as_deref(),
            Some("a at h:1 failed (reset): its pieces go to b")
        );
        assert_eq!(s.next(a), Next::Stop, "a failed source is dropped");
        assert_eq!(s.next(b), Next::Fetch(0));
        s.delivered(b, 0, [0; 32]);
        assert_eq!(s.next(b), Next::Stop, "nothing missing, nothing in flight");
        assert_eq!(s.values(), Some(vec![[0; 32]]));
        assert_eq!(s.per_source(), vec!["b (1 piece)".to_string()]);
        assert_eq!(s.reasons(), vec!["a: reset".to_string()]);
    }

    #[test]
    fn a_source_that_sends_bad_data_is_avoided_and_said_once() {
        let mut s = schedule(3, &[]);
        let a = s.add_source("a", "h:1");
        assert_eq!(s.next(a), Next::Fetch(0));
        assert_eq!(s.next(a), Next::Fetch(1));
        let first = s.failed(a, 0, Failure::Bad);
        assert!(
            first.as_deref().is_some_and(
                |l| l.contains("does not match its hash") && l.contains("no other source now")
            ),
            "{first:?}"
        );
        assert_eq!(s.failed(a, 1, Failure::Failed("late".into())), None);
        assert_eq!(s.next(a), Next::Stop);
        assert_eq!(s.left(), 3, "every piece is missing again");
        assert_eq!(s.values(), None);
        assert_eq!(s.reasons(), vec!["a: sent data that failed its hash"]);
    }

    #[test]
    fn a_disk_error_stops_every_source() {
        let mut s = schedule(4, &[]);
        let (a, b) = (s.add_source("a", "h:1"), s.add_source("b", "h:2"));
        assert_eq!(s.next(a), Next::Fetch(0));
        assert_eq!(s.failed(a, 0, Failure::Fatal("disk full".into())), None);
        assert_eq!(s.fatal(), Some("disk full"));
        assert_eq!(s.next(b), Next::Stop);
    }

    #[test]
    fn each_delivery_gives_a_newer_record() {
        let mut s = schedule(3, &[0]);
        let a = s.add_source("a", "h:1");
        assert_eq!(s.next(a), Next::Fetch(1));
        assert_eq!(s.next(a), Next::Fetch(2));
        let (r1, v1) = s.delivered(a, 2, [2; 32]);
        let (r2, v2) = s.delivered(a, 1, [1; 32]);
        assert!(v2 > v1);
        assert!(r1.is_done(2) && !r1.is_done(1));
        assert!(r2.is_done(1) && r2.is_done(2) && r2.is_done(0));
        assert_eq!(s.done(), 3);
        assert_eq!(s.values().map(|v| v.len()), Some(3));
        assert_eq!(s.next(a), Next::Stop);
    }

    #[test]
    fn an_unknown_source_is_told_to_stop() {
        let mut s = schedule(2, &[]);
        assert_eq!(s.next(9), Next::Stop);
        assert_eq!(s.failed(9, 0, Failure::Bad), None);
    }
}
