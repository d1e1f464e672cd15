//! The JSON-lines event log behind `--events FILE`.
//!
//! One object per line: `t_us` (wall-clock µs since the Unix epoch, or virtual
//! time in the simulator), `node`, `event`, then the event's own fields. The
//! writer is buffered; callers flush on events that must survive a `kill -9`
//! (critical-section entry and exit) and periodically otherwise.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

pub struct EventLog {
    out: BufWriter<Box<dyn Write + Send>>,
}

impl EventLog {
    pub fn create(path: &Path) -> io::Result<EventLog> {
        let file = File::create(path)?;
        Ok(EventLog::to_writer(Box::new(file)))
    }

    pub fn to_writer(w: Box<dyn Write + Send>) -> EventLog {
        EventLog {
            out: BufWriter::with_capacity(64 * 1024, w),
        }
    }

    pub fn write(
        &mut self,
        t_us: u64,
        node: &str,
        event: &str,
        fields: &Map<String, Value>,
    ) -> io::Result<()> {
        let w = &mut self.out;
        write!(w, "{{\"t_us\":{t_us},\"node\":")?;
        serde_json::to_writer(&mut *w, node)?;
        w.write_all(b",\"event\":")?;
        serde_json::to_writer(&mut *w, event)?;
        for (k, v) in fields {
            w.write_all(b",")?;
            serde_json::to_writer(&mut *w, k)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, v)?;
        }
        w.write_all(b"}\n")
    }

    /// The `send` event the drivers write for every message put on the wire.
    pub fn write_send(&mut self, t_us: u64, node: &str, to: &str, kind: &str) -> io::Result<()> {
        let w = &mut self.out;
        write!(w, "{{\"t_us\":{t_us},\"node\":")?;
        serde_json::to_writer(&mut *w, node)?;
        w.write_all(b",\"event\":\"send\",\"to\":")?;
        serde_json::to_writer(&mut *w, to)?;
        w.write_all(b",\"kind\":")?;
        serde_json::to_writer(&mut *w, kind)?;
        w.write_all(b"}\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Wall-clock microseconds since the Unix epoch.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One file written by several nodes of one process (the demo): each writer
/// hands over whole lines only, so lines never interleave.
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
        EventLog::to_writer(Box::new(LineWriter {
            file: self.clone(),
            pending: Vec::new(),
        }))
    }
}

struct LineWriter {
    file: SharedFile,
    pending: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let mut f = self
            .file
            .0
            .lock()
            .map_err(|_| io::Error::other("event file lock poisoned"))?;
        f.write_all(&self.pending[..=end])?;
        self.pending.drain(..=end);
        Ok(())
    }
}
