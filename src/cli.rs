//! The binary's edge: the error type every command returns (with its exit
//! code), the tokio runtime, and where logs go.
//!
//! Exit codes ([`EXIT_CODES`], shown by `dsys --help`): 0 done, 1 a check
//! failed or a run broke, 2 the user's input (command line, config, file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::events::EventLog;

/// Connections the kernel holds for a server before it accepts them: a
/// burst of connects (a flood, or a server descheduled for a moment on a
/// busy machine) waits here instead of being dropped and retried a second
/// later. (The kernel caps it at `net.core.somaxconn`.)
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a server's listening socket; an error names the address, what it
/// was for (`for gRPC`, or empty) and, when the port is taken, `in_use`:
/// a hint at what is probably holding it and the flag that picks another.
pub async fn listen(
    addr: std::net::SocketAddr,
    what: &str,
    in_use: &str,
) -> Result<tokio::net::TcpListener, CliError> {
    let bind = || -> std::io::Result<tokio::net::TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    bind().map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(" ({in_use})")
        } else {
            String::new()
        };
        CliError::Usage(format!("cannot listen on {addr}{what}: {e}{hint}"))
    })
}

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
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    /// Something broke while running (not the user's input).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            _ => 2,
        }
    }

    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }
}

/// How a command that ran to its end ended: exit 0 or exit 1. (An error,
/// [`CliError`], carries its own code.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Done, and every check passed: exit 0.
    Passed,
    /// A check failed, or the run exercised nothing: exit 1.
    CheckFailed,
}

impl Ended {
    pub fn passed_if(passed: bool) -> Ended {
        if passed {
            Ended::Passed
        } else {
            Ended::CheckFailed
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Ended::Passed => 0,
            Ended::CheckFailed => 1,
        }
    }
}

/// What a command returns: how it ended, or the error that stopped it.
pub type Outcome = Result<Ended, CliError>;

/// The exit codes, as `dsys --help` lists them.
pub const EXIT_CODES: &str = "Exit codes:
  0  done (and every check passed)
  1  a check failed (a property was violated, or the run exercised nothing),
     or something broke while running
  2  your input: the command line, a config or peers file, an events file, an
     address (the message names it)";

/// Runs `fut` on a single-threaded tokio runtime (a node's work is one
/// state machine; one thread avoids cross-thread wakeups on every message).
pub fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    Ok(rt.block_on(fut))
}

/// Runs `fut` on a two-worker tokio runtime: for servers and load
/// generators, which serve many connections at once.
pub fn block_on_threads<F: std::future::Future>(fut: F) -> Result<F::Output, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    Ok(rt.block_on(fut))
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

/// Opens FILE for appending (a log several processes may share).
pub fn open_append(path: &Path) -> Result<std::fs::File, CliError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| CliError::File {
            file: path.to_path_buf(),
            source,
        })
}

/// Where log lines go: stderr until a terminal UI takes the screen over and
/// redirects them to a file.
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.lock().ok().as_mut().and_then(|f| f.as_mut()) {
            Some(f) => f.write_all(buf)?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the log subscriber (`RUST_LOG`, default warnings) once.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

/// From now on, log lines go to `path` (a UI owns the terminal).
pub fn log_to_file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    if let Ok(mut slot) = LOG_FILE.lock() {
        *slot = Some(f);
    }
    Ok(())
}
