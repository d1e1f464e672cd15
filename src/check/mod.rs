//! What every checker shares: the [`Checker`] contract, verdicts and their
//! exit codes, and `dsys check <algorithm> FILE...` itself. Each algorithm's
//! checker lives in its own folder (`src/<algorithm>/check.rs`) and is fed
//! the same typed records whether they come from event files or straight
//! from the simulator.
//!
//! * `intervals` — who was inside a critical section when, and overlaps.

pub mod intervals;

use std::path::PathBuf;

use crate::events::{Entry, Event, Record, read_files};

/// What a check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// No safety property was violated (what must never happen, did not).
    pub safe: bool,
    /// Every liveness property held (what should happen, did).
    pub live: bool,
    /// The run did what the properties are about (someone entered the
    /// critical section, a message was delivered...). A check of a run that
    /// exercised nothing proves nothing, and says so.
    pub exercised: bool,
}

impl Verdict {
    /// Passes unless a safety property failed, the run exercised nothing,
    /// or (with `strict`) a liveness property failed.
    pub fn passed(&self, strict: bool) -> bool {
        self.safe && self.exercised && (self.live || !strict)
    }
}

impl Verdict {
    /// What a list of properties concludes: safe when every safety property
    /// held, live when every liveness one did, exercised when the run did
    /// what the properties are about.
    pub fn of(props: &[Property]) -> Verdict {
        let all = |kind: Kind| props.iter().filter(|p| p.kind == kind).all(|p| p.holds);
        Verdict {
            safe: all(Kind::Safety),
            live: all(Kind::Liveness),
            exercised: all(Kind::Exercised),
        }
    }
}

/// What a property is about: something that must never happen, something
/// that should eventually happen, or the run having done anything at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Safety,
    Liveness,
    Exercised,
}

/// One named property of a run, whether it held, and if not the first
/// evidence against it.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub name: &'static str,
    pub kind: Kind,
    pub holds: bool,
    /// The first violation (or why the run exercised nothing).
    pub evidence: Option<String>,
}

impl Property {
    pub fn safety(name: &'static str, violation: Option<String>) -> Property {
        Property::new(name, Kind::Safety, violation)
    }

    pub fn liveness(name: &'static str, violation: Option<String>) -> Property {
        Property::new(name, Kind::Liveness, violation)
    }

    /// Holds when `done`; `why_not` says what never happened.
    pub fn exercised(name: &'static str, done: bool, why_not: &str) -> Property {
        Property::new(name, Kind::Exercised, (!done).then(|| why_not.to_string()))
    }

    fn new(name: &'static str, kind: Kind, violation: Option<String>) -> Property {
        Property {
            name,
            kind,
            holds: violation.is_none(),
            evidence: violation,
        }
    }
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let state = match (self.holds, self.kind) {
            (true, _) => "holds",
            (false, Kind::Safety) => "VIOLATED",
            (false, Kind::Liveness) => "did not hold",
            (false, Kind::Exercised) => "not exercised",
        };
        write!(f, "{}: {state}", self.name)?;
        if let Some(e) = &self.evidence {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// The first property that fails a run (safety first, then liveness when
/// `strict`, then exercised), as a campaign reports it.
pub fn first_failure(props: &[Property], strict: bool) -> Option<&Property> {
    let mut failing: Vec<&Property> = props
        .iter()
        .filter(|p| !p.holds && (strict || p.kind != Kind::Liveness))
        .collect();
    failing.sort_by_key(|p| p.kind);
    failing.first().copied()
}

/// A checker's result, for people.
pub trait Report {
    /// Every property the check is about, in the order the report names them.
    fn properties(&self) -> Vec<Property>;
    fn verdict(&self) -> Verdict {
        Verdict::of(&self.properties())
    }
    /// The whole report, ending with its verdict lines.
    fn render(&self) -> String;
}

/// An algorithm's checker: fed records in time order, then finished.
pub trait Checker: Default {
    type Event: Event;
    type Report: Report;
    fn record(&mut self, r: &Record<Self::Event>);
    fn finish(self) -> Self::Report;
    /// Is this record one of this algorithm's own events? (A file without
    /// any is refused with a hint, not checked.)
    fn is_own(r: &Record<Self::Event>) -> bool;
    /// Names of the events that identify this algorithm's files, for that hint.
    const OWN_EVENTS: &'static str;
    /// The `event` names this algorithm writes (besides [`Common`]'s):
    /// `dsys check` tells one algorithm's files from another's by those that
    /// no other algorithm writes.
    ///
    /// [`Common`]: crate::events::Common
    const EVENTS: &'static [&'static str];
    /// The algorithm's name (`dsys check <ALGORITHM>`).
    const ALGORITHM: &'static str;
}

/// Feeds `records` to a fresh checker.
pub fn check<C: Checker>(records: &[Record<C::Event>]) -> C::Report {
    let mut c = C::default();
    for r in records {
        c.record(r);
    }
    c.finish()
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Read(#[from] crate::events::ReadError),
    #[error("no {what} events in these files: are they from `dsys {algorithm} --events`?")]
    NotThisAlgorithm {
        what: &'static str,
        algorithm: &'static str,
    },
    #[error(
        "{}: holds {} events ({}), not {asked} events: use `dsys check {} {}`",
        file.display(), others.join(" and "), seen.join(", "), others[0], file.display()
    )]
    OtherAlgorithm {
        file: PathBuf,
        asked: &'static str,
        /// The algorithms whose own events the file holds.
        others: Vec<&'static str>,
        /// A few of those events' names.
        seen: Vec<String>,
    },
    #[error(
        "{}: holds events of {asked} and of {} ({}): check each algorithm's files on their own",
        file.display(), others.join(" and "), seen.join(", ")
    )]
    Mixed {
        file: PathBuf,
        asked: &'static str,
        others: Vec<&'static str>,
        seen: Vec<String>,
    },
}

/// One algorithm as `dsys check` knows it: its name and its event names
/// ([`Checker::EVENTS`]).
#[derive(Clone, Copy, Debug)]
pub struct Known {
    pub algorithm: &'static str,
    pub events: &'static [&'static str],
}

/// Refuses a file written by another algorithm than `asked` (or by two),
/// before its lines are read as `asked`'s events: a token ring's file holds
/// `cs_enter` too, and must not pass a mutex check. An algorithm's own events
/// are those no other in `known` writes; a file is another's when it holds
/// some of that one's and none of `asked`'s. Lines that are not JSON objects
/// with an `event` are left to the typed reading, which names them.
pub fn refuse_foreign(
    files: &[PathBuf],
    asked: &'static str,
    known: &[Known],
) -> Result<(), CheckError> {
    for file in files {
        let names = crate::events::event_names(file)?;
        // `k`'s own events in this file, in `k`'s order (its main ones first).
        let own_of = |k: &Known| -> Vec<String> {
            k.events
                .iter()
                .filter(|e| names.contains(**e))
                .filter(|e| !crate::events::COMMON_EVENTS.contains(e))
                .filter(|e| {
                    known
                        .iter()
                        .all(|o| o.algorithm == k.algorithm || !o.events.contains(e))
                })
                .map(|e| e.to_string())
                .collect()
        };
        let mut mine = false;
        let (mut others, mut seen) = (Vec::new(), Vec::new());
        for k in known {
            let own = own_of(k);
            if own.is_empty() {
                continue;
            }
            if k.algorithm == asked {
                mine = true;
            } else {
                others.push(k.algorithm);
                seen.extend(own.into_iter().take(3));
            }
        }
        if others.is_empty() {
            continue;
        }
        let file = file.clone();
        return Err(if mine {
            CheckError::Mixed {
                file,
                asked,
                others,
                seen,
            }
        } else {
            CheckError::OtherAlgorithm {
                file,
                asked,
                others,
                seen,
            }
        });
    }
    Ok(())
}

/// `dsys check <algorithm> FILE...`: reads, checks, prints; `Ok(passed)`.
pub fn run_files<C: Checker>(
    algorithm: &'static str,
    files: &[PathBuf],
    strict: bool,
) -> Result<bool, CheckError> {
    let records = read_files::<C::Event>(files)?;
    if !records.iter().any(C::is_own) {
        return Err(CheckError::NotThisAlgorithm {
            what: C::OWN_EVENTS,
            algorithm,
        });
    }
    let report = check::<C>(&records);
    print!("{}{}", lost_warning(&records), report.render());
    Ok(report.verdict().passed(strict))
}

/// A warning line when nodes lost events while writing them (the driver's
/// `events_lost`: a node's output fell behind), for every checker alike;
/// empty otherwise.
pub fn lost_warning<E>(records: &[Record<E>]) -> String {
    let lost: u64 = records
        .iter()
        .map(|r| match r.entry {
            Entry::Common(crate::events::Common::EventsLost { count }) => count,
            _ => 0,
        })
        .sum();
    if lost == 0 {
        return String::new();
    }
    format!(
        "WARNING: {lost} events were lost while writing (a node's output fell behind): the log is incomplete\n"
    )
}

/// For each checker's unit tests: every name in [`Checker::EVENTS`] is one
/// of its event enum's variants (a misspelt name would let another
/// algorithm's file through, or refuse the algorithm's own).
#[cfg(test)]
pub fn assert_events_are_variants<C: Checker>() {
    assert!(!C::EVENTS.is_empty());
    for name in C::EVENTS {
        let line = format!("{{\"event\":\"{name}\"}}");
        match serde_json::from_str::<C::Event>(&line) {
            // The catch-all `Other` is the one variant that cannot be written.
            Ok(e) => assert!(
                serde_json::to_value(&e).is_ok(),
                "{}: {name:?} is not one of its events",
                C::ALGORITHM
            ),
            Err(e) => assert!(
                e.to_string().contains("missing field"),
                "{}: {name:?}: {e}",
                C::ALGORITHM
            ),
        }
    }
}

/// True for a record that is one of the algorithm's own (not a common or
/// unknown event): the usual [`Checker::is_own`].
pub fn is_algo<E>(r: &Record<E>, other: impl Fn(&E) -> bool) -> bool {
    matches!(&r.entry, Entry::Algo(e) if !other(e))
}

/// The closing line every report prints.
pub fn verdict_line(v: Verdict, what: &str) -> String {
    match (v.safe, v.exercised, v.live) {
        (false, _, _) => format!("verdict: VIOLATED ({what})"),
        (true, false, _) => format!("verdict: NOTHING EXERCISED ({what})"),
        (true, true, true) => format!("verdict: OK ({what})"),
        (true, true, false) => {
            format!("verdict: SAFE, but not every liveness property held ({what})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Common;

    fn rec(entry: Entry<()>) -> Record<()> {
        Record {
            t_us: 1,
            node: "l1".into(),
            entry,
        }
    }

    #[test]
    fn lost_events_of_every_node_are_summed_into_one_warning() {
        assert_eq!(lost_warning::<()>(&[]), "");
        let records = [
            rec(Entry::Common(Common::EventsLost { count: 3 })),
            rec(Entry::Algo(())),
            rec(Entry::Common(Common::EventsLost { count: 4 })),
        ];
        let w = lost_warning(&records);
        assert!(w.starts_with("WARNING: 7 events were lost"), "{w}");
        assert!(w.ends_with("the log is incomplete\n"), "{w}");
    }
}
