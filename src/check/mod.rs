//! `dsys check`: invariants over event logs.
//!
//! The readers here turn event files (one node each, or all nodes in one)
//! into time-ordered [`Record`]s; each algorithm's checker is a typed core
//! that the simulator tests feed directly and `dsys check` feeds from files.

pub mod gossip;
pub mod multicast;
pub mod tokenring;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{file}: cannot read: {source}")]
    Read {
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

/// One line of an event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub t_us: u64,
    pub node: String,
    pub event: String,
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.fields.get(key).and_then(Value::as_bool)
    }
}

/// Reads and merges event files, ordered by time (ties keep file order).
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<Record>, CheckError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_file(p)?);
    }
    all.sort_by_key(|r| r.t_us);
    Ok(all)
}

fn read_file(path: &Path) -> Result<Vec<Record>, CheckError> {
    let file = std::fs::File::open(path).map_err(|source| CheckError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| CheckError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| CheckError::Bad {
            file: path.to_path_buf(),
            line: i + 1,
            detail,
        };
        let mut fields: Map<String, Value> = match serde_json::from_str(&line) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad("not a JSON object".into())),
            // A node killed mid-write leaves a torn last line: skip it.
            Err(e) if e.is_eof() => continue,
            Err(e) => return Err(bad(format!("not JSON: {e}"))),
        };
        let t_us = fields
            .remove("t_us")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("missing numeric field \"t_us\"".into()))?;
        let node = match fields.remove("node") {
            Some(Value::String(s)) => s,
            _ => return Err(bad("missing string field \"node\"".into())),
        };
        let event = match fields.remove("event") {
            Some(Value::String(s)) => s,
            _ => return Err(bad("missing string field \"event\"".into())),
        };
        out.push(Record {
            t_us,
            node,
            event,
            fields,
        });
    }
    Ok(out)
}
