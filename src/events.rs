//! The JSON-lines event log behind `--events FILE`, typed.
//!
//! One object per line: `t_us` (wall-clock µs since the Unix epoch, or
//! virtual time in the simulator), `node`, `event` (the name), then the
//! event's own fields. Each algorithm has one serde-tagged enum of its events
//! (its `Note::Event`); the same enum writes the log, reads it back in the
//! algorithm's checker and feeds the simulator's report. The few events every
//! algorithm shares (`start`, `crash`, `restart`, `send`, `events_lost`) are
//! [`Common`].
//!
//! Files are opened for appending and written in whole lines only (each
//! flush is one write of complete lines), so a restarted node adds its new
//! life after its old one, and several nodes may share one file without
//! tearing each other's lines.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What an algorithm's event enum is: serializable to one JSON object with
/// an `event` tag, and back. (Give it `#[serde(tag = "event")]` and an
/// `#[serde(other, skip_serializing)] Other` variant, so events it does not
/// know, such as another algorithm's, read as `Other`.)
pub trait Event: Serialize + DeserializeOwned + Clone + Debug + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Debug + Send + 'static> Event for T {}

/// The events every node writes, whatever its algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Common {
    /// A node process (or simulated node) began a life.
    Start,
    /// The node stopped on purpose (quit, Ctrl-C, SIGTERM).
    Stop,
    /// The simulator (or a demo) killed the node: its state is gone.
    Crash,
    /// The simulator (or a demo) brought the node back with no state.
    Restart,
    /// A message put on the wire: to whom, and its kind.
    Send { to: String, kind: String },
    /// The node could not write `count` events (its disk or pipe was too
    /// slow for the bounded output queue): the log is incomplete here.
    EventsLost { count: u64 },
    #[serde(other, skip_serializing)]
    NotCommon,
}

/// The `event` names of [`Common`] (an algorithm may reuse one for an event
/// of its own, as the clock model's `send`: such a name tells no algorithm's
/// files from another's).
pub const COMMON_EVENTS: &[&str] = &["start", "stop", "crash", "restart", "send", "events_lost"];

/// One line of an event log, read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<E> {
    pub t_us: u64,
    pub node: String,
    pub entry: Entry<E>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Entry<E> {
    Common(Common),
    Algo(E),
}

/// Flush by itself past this much buffered text.
const FLUSH_AT: usize = 64 * 1024;

/// Writes event lines into a buffer, and the buffer to a file or writer on
/// [`EventLog::flush`] (one write of whole lines).
pub struct EventLog {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    out: Box<dyn Write + Send>,
}

impl EventLog {
    /// Opens `path` for appending (creating it if needed).
    pub fn create(path: &Path) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog::to_writer(Box::new(file)))
    }

    /// Creates `path` afresh (truncating it): for a simulated run, whose
    /// virtual clock starts at 0 again, appending would mix two runs.
    pub fn replace(path: &Path) -> io::Result<EventLog> {
        Ok(EventLog::to_writer(Box::new(File::create(path)?)))
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> EventLog {
        EventLog {
            buf: Vec::with_capacity(FLUSH_AT),
            scratch: Vec::with_capacity(256),
            out,
        }
    }

    /// Adds one line: `{"t_us":..,"node":..,` then the event's own object.
    pub fn write<E: Serialize>(&mut self, t_us: u64, node: &str, event: &E) -> io::Result<()> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, event)?;
        // The event is an object: splice its members after ours.
        let body = self
            .scratch
            .strip_prefix(b"{")
            .ok_or_else(|| io::Error::other("an event must serialize to a JSON object"))?;
        let w = &mut self.buf;
        write!(w, "{{\"t_us\":{t_us},\"node\":")?;
        serde_json::to_writer(&mut *w, node)?;
        if body != b"}" {
            w.push(b',');
        }
        w.extend_from_slice(body);
        w.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every buffered line at once.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.out.flush()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Wall-clock microseconds since the Unix epoch.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One file written by several nodes of one process (the demos): each
/// node's log hands over whole lines under a lock.
#[derive(Clone)]
pub struct SharedFile(std::sync::Arc<std::sync::Mutex<File>>);

impl SharedFile {
    pub fn create(path: &Path) -> io::Result<SharedFile> {
        Ok(SharedFile(std::sync::Arc::new(std::sync::Mutex::new(
            File::create(path)?,
        ))))
    }

    /// An event log for one node that writes into this file.
    pub fn log(&self) -> EventLog {
        EventLog::to_writer(Box::new(self.clone()))
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut f = self
            .0
            .lock()
            .map_err(|_| io::Error::other("event file lock poisoned"))?;
        f.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {detail}")]
    Bad {
        file: PathBuf,
        line: usize,
        detail: String,
    },
}

#[derive(Deserialize)]
struct Head {
    t_us: u64,
    node: String,
}

/// Reads and merges event files, ordered by time (ties keep file order).
/// A torn line (a node killed mid-write) is skipped; any other line that is
/// not an event is an error naming the file and line.
pub fn read_files<E: Event>(paths: &[PathBuf]) -> Result<Vec<Record<E>>, ReadError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_file(p)?);
    }
    all.sort_by_key(|r| r.t_us);
    Ok(all)
}

/// The distinct `event` names in an event file, in name order (lines that
/// are not an object with a string `event` are skipped).
pub fn event_names(path: &Path) -> Result<std::collections::BTreeSet<String>, ReadError> {
    #[derive(Deserialize)]
    struct Name<'a> {
        #[serde(borrow)]
        event: std::borrow::Cow<'a, str>,
    }
    let io_err = |source| ReadError::Io {
        file: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut names = std::collections::BTreeSet::new();
    for line in BufReader::new(file).lines() {
        if let Ok(n) = serde_json::from_str::<Name>(&line.map_err(io_err)?) {
            if !names.contains(n.event.as_ref()) {
                names.insert(n.event.into_owned());
            }
        }
    }
    Ok(names)
}

fn read_file<E: Event>(path: &Path) -> Result<Vec<Record<E>>, ReadError> {
    let io_err = |source| ReadError::Io {
        file: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err)?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line::<E>(&line) {
            Ok(r) => out.push(r),
            // A node killed in the middle of a write leaves a torn line.
            Err(e) if e.is_eof() => {}
            Err(e) => {
                return Err(ReadError::Bad {
                    file: path.to_path_buf(),
                    line: i + 1,
                    detail: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// One line of an event log.
pub fn parse_line<E: Event>(line: &str) -> Result<Record<E>, serde_json::Error> {
    let head: Head = serde_json::from_str(line)?;
    let entry = match serde_json::from_str::<Common>(line) {
        Ok(Common::NotCommon) => Entry::Algo(serde_json::from_str::<E>(line)?),
        Ok(c) => Entry::Common(c),
        // An algorithm may write an event of its own under a common name
        // (the clock model's `send` carries a clock, not a kind).
        // Only a real event of its own, not the catch-all `Other` (which
        // cannot be serialized): a torn common line stays an error.
        Err(e) => match serde_json::from_str::<E>(line) {
            Ok(a) if serde_json::to_value(&a).is_ok() => Entry::Algo(a),
            _ => return Err(e),
        },
    };
    Ok(Record {
        t_us: head.t_us,
        node: head.node,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Ev {
        Lock,
        CsEnter {
            hop: u64,
            lease_us: u64,
        },
        #[serde(other, skip_serializing)]
        Other,
    }

    #[test]
    fn typed_events_round_trip_and_unknown_ones_read_as_other() {
        let dir = std::env::temp_dir().join(format!("dsys-events-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut log = EventLog::create(&path).unwrap();
        log.write(1, "a", &Common::Start).unwrap();
        log.write(2, "a", &Ev::Lock).unwrap();
        log.write(
            3,
            "a",
            &Ev::CsEnter {
                hop: 4,
                lease_us: 5,
            },
        )
        .unwrap();
        log.write(
            4,
            "b",
            &Common::Send {
                to: "a".into(),
                kind: "token".into(),
            },
        )
        .unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                r#"{"t_us":1,"node":"a","event":"start"}"#,
                r#"{"t_us":2,"node":"a","event":"lock"}"#,
                r#"{"t_us":3,"node":"a","event":"cs_enter","hop":4,"lease_us":5}"#,
                r#"{"t_us":4,"node":"b","event":"send","to":"a","kind":"token"}"#,
            ]
        );
        std::fs::write(
            &path,
            format!("{text}{{\"t_us\":5,\"node\":\"c\",\"event\":\"learn\",\"word\":\"x\"}}\n{{\"t_us\":6,\"no"),
        )
        .unwrap();
        let recs: Vec<Record<Ev>> = read_files(std::slice::from_ref(&path)).unwrap();
        assert_eq!(recs.len(), 5, "the torn last line is skipped");
        assert_eq!(recs[0].entry, Entry::Common(Common::Start));
        assert_eq!(
            recs[2].entry,
            Entry::Algo(Ev::CsEnter {
                hop: 4,
                lease_us: 5
            })
        );
        assert_eq!(recs[4].entry, Entry::Algo(Ev::Other));
        std::fs::write(
            &path,
            "{\"t_us\":1,\"node\":\"a\",\"event\":\"x\"}\nnot json\n{}\n",
        )
        .unwrap();
        let err = read_files::<Ev>(std::slice::from_ref(&path)).unwrap_err();
        assert!(err.to_string().contains("e.jsonl:2"), "{err}");
        let bad_fields = "{\"t_us\":1,\"node\":\"a\",\"event\":\"cs_enter\",\"hop\":\"x\"}\n{}";
        std::fs::write(&path, bad_fields).unwrap();
        assert!(read_files::<Ev>(std::slice::from_ref(&path)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logs_append_whole_lines_and_several_writers_share_a_file() {
        let dir = std::env::temp_dir().join(format!("dsys-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut a = EventLog::create(&path).unwrap();
        let mut b = EventLog::create(&path).unwrap();
        for i in 0..2000 {
            a.write(i, "a", &Ev::Lock).unwrap();
            b.write(
                i,
                "b",
                &Common::Send {
                    to: "a".into(),
                    kind: "token".into(),
                },
            )
            .unwrap();
        }
        drop(a);
        drop(b);
        // A restarted node appends.
        let mut c = EventLog::create(&path).unwrap();
        c.write(9, "a", &Common::Start).unwrap();
        drop(c);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4001);
        let recs: Vec<Record<Ev>> = read_files(std::slice::from_ref(&path)).unwrap();
        assert_eq!(recs.len(), 4001, "every line is a whole event");
        assert!(lines[4000].contains("\"start\""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
