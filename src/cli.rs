//! Pieces every interactive node shares: the error type of the command
//! line (exit code 2), stdin read on a thread, SIGTERM as a stream, opening
//! the event log.

use std::io::BufRead;
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::events::EventLog;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{file}: {source}")]
    File {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}

impl CliError {
    /// 2: all of these are fixed by the user (arguments, files, a busy port).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Opens `--events FILE` if given, naming the file on failure.
pub fn open_events(path: Option<&PathBuf>) -> Result<Option<EventLog>, CliError> {
    path.map(|p| {
        EventLog::create(p).map_err(|source| CliError::File {
            file: p.clone(),
            source,
        })
    })
    .transpose()
}

/// Lines from stdin, read on a thread (stdin may be a terminal or a pipe).
pub fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// SIGTERM as a stream (a never-firing one where signals are unavailable).
pub fn signal_stream() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            while s.recv().await.is_some() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
