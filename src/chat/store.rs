//! Where accounts and queued messages live: one SQLite database in WAL
//! mode, owned by one writer thread that commits in groups.
//!
//! Every operation is a request on a bounded channel to that thread; it
//! takes whatever requests are waiting (up to [`GROUP`]), runs them in one
//! transaction, commits once, and only then answers each. So a message is
//! reported queued only once it is in the database's log (`synchronous =
//! NORMAL` in WAL mode: a committed transaction survives the server being
//! killed; `--sync full` also survives the machine losing power), and many
//! senders share the cost of one commit. Nothing here runs on a network
//! task: callers await the answer.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::service::{ChatError, Message};

/// Requests waiting for the writer, at most (senders wait past it).
pub const PENDING: usize = 65_536;
/// Requests in one transaction, at most.
pub const GROUP: usize = 4096;

/// How hard a commit holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sync {
    /// Survives the server being killed (kill -9), not a power loss.
    Normal,
    /// fsync on every commit: survives a power loss too.
    Full,
}

type Reply<T> = oneshot::Sender<Result<T, ChatError>>;
/// Answers a request once its group's commit is known (`Some(error)`: the
/// commit failed).
type Answer = Box<dyn FnOnce(Option<&str>)>;

enum Op {
    Create {
        name: String,
        hash: String,
        reply: Reply<()>,
    },
    Hash {
        name: String,
        reply: Reply<Option<String>>,
    },
    Delete {
        name: String,
        reply: Reply<u64>,
    },
    Enqueue {
        msg: Message,
        reply: Reply<()>,
    },
    Queued {
        name: String,
        max: usize,
        reply: Reply<(Vec<Message>, u64)>,
    },
    Ack {
        name: String,
        ids: Vec<u64>,
        reply: Reply<u64>,
    },
    Count {
        name: String,
        reply: Reply<u64>,
    },
}

/// The database as the service sees it.
#[derive(Clone)]
pub struct Store {
    tx: std_mpsc::SyncSender<Op>,
}

/// What the database holds when the server starts.
pub struct Loaded {
    pub accounts: Vec<String>,
    pub max_id: u64,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Store {
    /// Opens (or creates) the database at `path` and starts its writer.
    pub fn open(path: &Path, sync: Sync) -> Result<(Store, Loaded), String> {
        let conn = Connection::open(path).map_err(db_err(path))?;
        let sync_sql = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync_sql};
             PRAGMA foreign_keys = OFF;
             PRAGMA cache_size = -65536;
             PRAGMA wal_autocheckpoint = 16384;
             CREATE TABLE IF NOT EXISTS accounts (
                 name TEXT PRIMARY KEY,
                 hash TEXT NOT NULL,
                 created_ms INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS messages (
                 id INTEGER PRIMARY KEY,
                 recipient TEXT NOT NULL,
                 sender TEXT NOT NULL,
                 sender_deleted INTEGER NOT NULL DEFAULT 0,
                 sent_ms INTEGER NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, id);"
        ))
        .map_err(db_err(path))?;
        let accounts = {
            let mut st = conn
                .prepare("SELECT name FROM accounts ORDER BY name")
                .map_err(db_err(path))?;
            st.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(db_err(path))?
        };
        let max_id: i64 = conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
                r.get(0)
            })
            .map_err(db_err(path))?;
        let (tx, rx) = std_mpsc::sync_channel(PENDING);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("chat-db".into())
            .spawn(move || writer(conn, rx, path))
            .map_err(|e| format!("cannot start the database thread: {e}"))?;
        Ok((
            Store { tx },
            Loaded {
                accounts,
                max_id: max_id.max(0) as u64,
            },
        ))
    }

    async fn ask<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, ChatError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.clone();
        let op = op(reply);
        // A full queue means the disk is behind: wait off the async thread.
        match tx.try_send(op) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(op)) => {
                tokio::task::spawn_blocking(move || tx.send(op))
                    .await
                    .map_err(|_| ChatError::Storage("the database thread is gone".into()))?
                    .map_err(|_| ChatError::Storage("the database thread is gone".into()))?;
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => {
                return Err(ChatError::Storage("the database thread is gone".into()));
            }
        }
        rx.await
            .map_err(|_| ChatError::Storage("the database thread is gone".into()))?
    }

    pub async fn create(&self, name: &str, hash: String) -> Result<(), ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Create { name, hash, reply }).await
    }

    pub async fn hash(&self, name: &str) -> Result<Option<String>, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Hash { name, reply }).await
    }

    /// Deletes the account; returns how many of its queued messages went.
    pub async fn delete(&self, name: &str) -> Result<u64, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Delete { name, reply }).await
    }

    /// Returns once `msg` is committed.
    pub async fn enqueue(&self, msg: Message) -> Result<(), ChatError> {
        self.ask(|reply| Op::Enqueue { msg, reply }).await
    }

    /// Up to `max` queued messages for `name`, oldest first, and how many
    /// are queued in all.
    pub async fn queued(&self, name: &str, max: usize) -> Result<(Vec<Message>, u64), ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Queued { name, max, reply }).await
    }

    /// Removes `name`'s messages `ids` (the client has them); returns how
    /// many there were.
    pub async fn ack(&self, name: &str, ids: Vec<u64>) -> Result<u64, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Ack { name, ids, reply }).await
    }

    pub async fn count(&self, name: &str) -> Result<u64, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Count { name, reply }).await
    }
}

/// The writer thread: groups of requests, one transaction each.
fn writer(mut conn: Connection, rx: std_mpsc::Receiver<Op>, path: PathBuf) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(db = %path.display(), error = %e, "cannot begin a transaction");
                fail_all(group, &e.to_string());
                continue;
            }
        };
        // Results wait for the commit: nothing is answered before it holds.
        let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
        for op in group {
            answers.push(run(&tx, op));
        }
        let failed = tx.commit().err().map(|e| e.to_string());
        if let Some(e) = &failed {
            tracing::error!(db = %path.display(), error = %e, "commit failed");
        }
        for a in answers {
            a(failed.as_deref());
        }
    }
}

fn fail_all(group: Vec<Op>, why: &str) {
    let e = || ChatError::Storage(why.to_string());
    for op in group {
        match op {
            Op::Create { reply, .. } | Op::Enqueue { reply, .. } => {
                let _ = reply.send(Err(e()));
            }
            Op::Hash { reply, .. } => {
                let _ = reply.send(Err(e()));
            }
            Op::Delete { reply, .. } | Op::Ack { reply, .. } | Op::Count { reply, .. } => {
                let _ = reply.send(Err(e()));
            }
            Op::Queued { reply, .. } => {
                let _ = reply.send(Err(e()));
            }
        }
    }
}

/// Runs one request inside the group's transaction; returns what answers it
/// once the commit is known (`Some(error)`: the commit failed).
fn run(tx: &rusqlite::Transaction, op: Op) -> Answer {
    fn answer<T: Send + 'static>(reply: Reply<T>, r: Result<T, ChatError>) -> Answer {
        Box::new(move |failed| {
            let r = match failed {
                Some(e) => Err(ChatError::Storage(e.to_string())),
                None => r,
            };
            let _ = reply.send(r);
        })
    }
    let storage = |e: rusqlite::Error| ChatError::Storage(e.to_string());
    match op {
        Op::Create { name, hash, reply } => {
            let r = tx
                .execute(
                    "INSERT INTO accounts (name, hash, created_ms) VALUES (?1, ?2, ?3)",
                    params![name, hash, now_ms() as i64],
                )
                .map(|_| ())
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        ChatError::NameTaken(name.clone())
                    }
                    e => storage(e),
                });
            answer(reply, r)
        }
        Op::Hash { name, reply } => {
            let r = tx
                .query_row(
                    "SELECT hash FROM accounts WHERE name = ?1",
                    params![name],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(storage);
            answer(reply, r)
        }
        Op::Delete { name, reply } => {
            let r = (|| {
                let dropped =
                    tx.execute("DELETE FROM messages WHERE recipient = ?1", params![name])?;
                tx.execute(
                    "UPDATE messages SET sender_deleted = 1 WHERE sender = ?1",
                    params![name],
                )?;
                tx.execute("DELETE FROM accounts WHERE name = ?1", params![name])?;
                Ok(dropped as u64)
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Enqueue { msg, reply } => {
            let r = tx
                .prepare_cached(
                    "INSERT INTO messages (id, recipient, sender, sender_deleted, sent_ms, body) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        msg.id as i64,
                        msg.to,
                        msg.from,
                        msg.sent_ms as i64,
                        msg.text
                    ])
                })
                .map(|_| ())
                .map_err(storage);
            answer(reply, r)
        }
        Op::Queued { name, max, reply } => {
            let r = (|| {
                let mut st = tx.prepare_cached(
                    "SELECT id, sender, sender_deleted, sent_ms, body FROM messages WHERE recipient = ?1 ORDER BY id LIMIT ?2",
                )?;
                let msgs = st
                    .query_map(params![name, max as i64], |r| {
                        Ok(Message {
                            id: r.get::<_, i64>(0)? as u64,
                            from: r.get(1)?,
                            from_deleted: r.get::<_, i64>(2)? != 0,
                            to: name.clone(),
                            sent_ms: r.get::<_, i64>(3)? as u64,
                            text: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let total: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM messages WHERE recipient = ?1",
                    params![name],
                    |r| r.get(0),
                )?;
                Ok((msgs, total as u64))
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Ack { name, ids, reply } => {
            let r = (|| {
                let mut st =
                    tx.prepare_cached("DELETE FROM messages WHERE recipient = ?1 AND id = ?2")?;
                let mut n = 0;
                for id in ids {
                    n += st.execute(params![name, id as i64])? as u64;
                }
                Ok(n)
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Count { name, reply } => {
            let r = tx
                .query_row(
                    "SELECT COUNT(*) FROM messages WHERE recipient = ?1",
                    params![name],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(storage);
            answer(reply, r)
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
