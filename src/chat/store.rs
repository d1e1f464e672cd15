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
        reply: Reply<u64>,
    },
    Hash {
        name: String,
        reply: Reply<Option<(u64, String)>>,
    },
    Delete {
        account: u64,
        reply: Reply<u64>,
    },
    Enqueue {
        msg: Message,
        to: u64,
        from: u64,
        reply: Reply<()>,
    },
    Queued {
        account: u64,
        name: String,
        max: usize,
        bytes: usize,
        reply: Reply<(Vec<Message>, u64)>,
    },
    Ack {
        account: u64,
        ids: Vec<u64>,
        reply: Reply<u64>,
    },
    Count {
        account: u64,
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
    /// (name, account id)
    pub accounts: Vec<(String, u64)>,
    pub max_id: u64,
}

/// The schema's version (`PRAGMA user_version`).
const SCHEMA: i64 = 2;

/// Version 2: an account is an id; queues are keyed by it, so a name
/// deleted and created again starts empty.
const CREATE_V2: &str = "
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        recipient INTEGER NOT NULL,
        sender TEXT NOT NULL,
        sender_id INTEGER NOT NULL,
        sender_deleted INTEGER NOT NULL DEFAULT 0,
        sent_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    );";
const INDEXES_V2: &str = "
    CREATE INDEX messages_by_recipient ON messages (recipient, id);
    CREATE INDEX messages_by_sender ON messages (sender_id);";

/// Brings a database of any earlier version to [`SCHEMA`], in one
/// transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let has_accounts: bool = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'accounts'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if has_accounts {
        // Version 1 keyed everything by name.
        tx.execute_batch(&format!(
            "ALTER TABLE accounts RENAME TO accounts_v1;
             ALTER TABLE messages RENAME TO messages_v1;
             {CREATE_V2}
             INSERT INTO accounts (name, hash, created_ms)
                 SELECT name, hash, created_ms FROM accounts_v1 ORDER BY created_ms, name;
             INSERT INTO messages (id, recipient, sender, sender_id, sender_deleted, sent_ms, body)
                 SELECT m.id, a.id, m.sender, COALESCE(s.id, 0),
                        CASE WHEN s.id IS NULL THEN 1 ELSE 0 END, m.sent_ms, m.body
                 FROM messages_v1 m
                 JOIN accounts a ON a.name = m.recipient
                 LEFT JOIN accounts s ON s.name = m.sender AND m.sender_deleted = 0;
             DROP TABLE messages_v1;
             DROP TABLE accounts_v1;
             {INDEXES_V2}"
        ))?;
    } else {
        tx.execute_batch(&format!("{CREATE_V2}{INDEXES_V2}"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA)?;
    tx.commit()
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Store {
    /// Opens (or creates) the database at `path` and starts its writer.
    pub fn open(path: &Path, sync: Sync) -> Result<(Store, Loaded), String> {
        let mut conn = Connection::open(path).map_err(db_err(path))?;
        let sync_sql = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync_sql};
             PRAGMA foreign_keys = OFF;
             PRAGMA cache_size = -65536;
             PRAGMA wal_autocheckpoint = 16384;"
        ))
        .map_err(db_err(path))?;
        migrate(&mut conn).map_err(db_err(path))?;
        let accounts = {
            let mut st = conn
                .prepare("SELECT name, id FROM accounts ORDER BY name")
                .map_err(db_err(path))?;
            st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
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

    /// Creates the account; returns its id (never one used before).
    pub async fn create(&self, name: &str, hash: String) -> Result<u64, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Create { name, hash, reply }).await
    }

    /// The account named `name`: (id, password hash).
    pub async fn hash(&self, name: &str) -> Result<Option<(u64, String)>, ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Hash { name, reply }).await
    }

    /// Deletes the account; returns how many of its queued messages went.
    /// What it sent that others have not taken is marked from a deleted
    /// account.
    pub async fn delete(&self, account: u64) -> Result<u64, ChatError> {
        self.ask(|reply| Op::Delete { account, reply }).await
    }

    /// Queues `msg` for account `to`, from account `from`; returns once it
    /// is committed. Refused (no such account) if `to` no longer exists;
    /// marked from a deleted account if `from` no longer does.
    pub async fn enqueue(&self, msg: Message, to: u64, from: u64) -> Result<(), ChatError> {
        self.ask(|reply| Op::Enqueue {
            msg,
            to,
            from,
            reply,
        })
        .await
    }

    /// Up to `max` queued messages for `account` (named `name`), oldest
    /// first, together at most `bytes` as the wire protocol encodes them
    /// (at least one, if any is queued); and how many are queued in all.
    pub async fn queued(
        &self,
        account: u64,
        name: &str,
        max: usize,
        bytes: usize,
    ) -> Result<(Vec<Message>, u64), ChatError> {
        let name = name.to_string();
        self.ask(|reply| Op::Queued {
            account,
            name,
            max,
            bytes,
            reply,
        })
        .await
    }

    /// Removes `account`'s messages `ids` (the client has them); returns
    /// how many there were. Ids of other accounts' messages are ignored.
    pub async fn ack(&self, account: u64, ids: Vec<u64>) -> Result<u64, ChatError> {
        self.ask(|reply| Op::Ack {
            account,
            ids,
            reply,
        })
        .await
    }

    pub async fn count(&self, account: u64) -> Result<u64, ChatError> {
        self.ask(|reply| Op::Count { account, reply }).await
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
            Op::Create { reply, .. } => {
                let _ = reply.send(Err(e()));
            }
            Op::Enqueue { reply, .. } => {
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
                .map(|_| tx.last_insert_rowid() as u64)
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
                    "SELECT id, hash FROM accounts WHERE name = ?1",
                    params![name],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(storage);
            answer(reply, r)
        }
        Op::Delete { account, reply } => {
            let id = account as i64;
            let r = (|| {
                let dropped =
                    tx.execute("DELETE FROM messages WHERE recipient = ?1", params![id])?;
                tx.execute(
                    "UPDATE messages SET sender_deleted = 1 WHERE sender_id = ?1",
                    params![id],
                )?;
                tx.execute("DELETE FROM accounts WHERE id = ?1", params![id])?;
                Ok(dropped as u64)
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Enqueue {
            msg,
            to,
            from,
            reply,
        } => {
            // One statement, in the writer's order: a message to an account
            // deleted before it is refused; one from an account deleted
            // before it is marked so (one deleted after it is marked by
            // the delete).
            let r = tx
                .prepare_cached(
                    "INSERT INTO messages (id, recipient, sender, sender_id, sender_deleted, sent_ms, body)
                     SELECT ?1, ?2, ?3, ?4, NOT EXISTS (SELECT 1 FROM accounts WHERE id = ?4), ?5, ?6
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?2)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        msg.id as i64,
                        to as i64,
                        msg.from,
                        from as i64,
                        msg.sent_ms as i64,
                        msg.text
                    ])
                })
                .map_err(storage)
                .and_then(|n| {
                    if n == 1 {
                        Ok(())
                    } else {
                        Err(ChatError::NoSuchAccount(msg.to.clone()))
                    }
                });
            answer(reply, r)
        }
        Op::Queued {
            account,
            name,
            max,
            bytes,
            reply,
        } => {
            let r = (|| {
                let mut st = tx.prepare_cached(
                    "SELECT id, sender, sender_deleted, sent_ms, body FROM messages WHERE recipient = ?1 ORDER BY id LIMIT ?2",
                )?;
                let mut rows = st.query(params![account as i64, max as i64])?;
                let mut msgs = Vec::new();
                let mut used = 0;
                while let Some(r) = rows.next()? {
                    let m = Message {
                        id: r.get::<_, i64>(0)? as u64,
                        from: r.get(1)?,
                        from_deleted: r.get::<_, i64>(2)? != 0,
                        to: name.clone(),
                        sent_ms: r.get::<_, i64>(3)? as u64,
                        text: r.get(4)?,
                    };
                    used += m.wire_size();
                    if used > bytes && !msgs.is_empty() {
                        break;
                    }
                    msgs.push(m);
                }
                let total: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM messages WHERE recipient = ?1",
                    params![account as i64],
                    |r| r.get(0),
                )?;
                Ok((msgs, total as u64))
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Ack {
            account,
            ids,
            reply,
        } => {
            let r = (|| {
                let mut st =
                    tx.prepare_cached("DELETE FROM messages WHERE recipient = ?1 AND id = ?2")?;
                let mut n = 0;
                for id in ids {
                    n += st.execute(params![account as i64, id as i64])? as u64;
                }
                Ok(n)
            })()
            .map_err(storage);
            answer(reply, r)
        }
        Op::Count { account, reply } => {
            let r = tx
                .query_row(
                    "SELECT COUNT(*) FROM messages WHERE recipient = ?1",
                    params![account as i64],
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
