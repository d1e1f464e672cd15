//! The JSON-lines event log behind `--events FILE`.
//!
//! One object per line: `t_us` (wall-clock µs since the Unix epoch, or virtual
//! time in the simulator), `node`, `event`, then the event's own fields.
//!
//! Files are opened for appending and written in whole lines only (each flush
//! is one write of complete lines), so a restarted node adds its new life
//! after its old one, and several nodes may share one file without tearing
//! each other's lines. Writing is buffered; callers flush on events that must
//! survive a `kill -9` (critical-section entry and exit) and periodically.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Flush by itself past this much buffered text.
const FLUSH_AT: usize = 64 * 1024;

pub struct EventLog {
    buf: Vec<u8>,
    out: Box<dyn Write + Send>,
}

impl EventLog {
    /// Opens `path` for appending (creating it if needed).
    pub fn create(path: &Path) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog::to_writer(Box::new(file)))
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> EventLog {
        EventLog {
            buf: Vec::with_capacity(FLUSH_AT),
            out,
        }
    }

    pub fn write(
        &mut self,
        t_us: u64,
        node: &str,
        event: &str,
        fields: &Map<String, Value>,
    ) -> io::Result<()> {
        let w = &mut self.buf;
        write!(w, "{{\"t_us\":{t_us},\"node\":")?;
        serde_json::to_writer(&mut *w, node)?;
        w.extend_from_slice(b",\"event\":");
        serde_json::to_writer(&mut *w, event)?;
        for (k, v) in fields {
            w.push(b',');
            serde_json::to_writer(&mut *w, k)?;
            w.push(b':');
            serde_json::to_writer(&mut *w, v)?;
        }
        w.extend_from_slice(b"}\n");
        self.maybe_flush()
    }

    /// The `send` event the drivers write for every message put on the wire.
    pub fn write_send(&mut self, t_us: u64, node: &str, to: &str, kind: &str) -> io::Result<()> {
        let w = &mut self.buf;
        write!(w, "{{\"t_us\":{t_us},\"node\":")?;
        serde_json::to_writer(&mut *w, node)?;
        w.extend_from_slice(b",\"event\":\"send\",\"to\":");
        serde_json::to_writer(&mut *w, to)?;
        w.extend_from_slice(b",\"kind\":");
        serde_json::to_writer(&mut *w, kind)?;
        w.extend_from_slice(b"}\n");
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_append_whole_lines_and_several_writers_share_a_file() {
        let dir = std::env::temp_dir().join(format!("dsys-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut a = EventLog::create(&path).unwrap();
        let mut b = EventLog::create(&path).unwrap();
        for i in 0..2000 {
            a.write(i, "a", "x", &Map::new()).unwrap();
            b.write_send(i, "b", "a", "token").unwrap();
        }
        drop(a);
        drop(b);
        // A restarted node appends.
        let mut c = EventLog::create(&path).unwrap();
        c.write(9, "a", "start", &Map::new()).unwrap();
        drop(c);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4001);
        for l in &lines {
            let v: Value = serde_json::from_str(l).expect("every line is whole JSON");
            assert!(v["t_us"].is_u64() && v["node"].is_string());
        }
        assert!(lines[4000].contains("\"start\""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
