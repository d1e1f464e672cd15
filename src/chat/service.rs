//! The chat service both protocol front-ends call: accounts, who is logged
//! in on which connection, online delivery and the durable queues. It
//! knows no socket and no encoding; a front-end opens a [`Session`] per
//! connection, calls the operations with it, and writes out what arrives
//! on the session's push channel.
//!
//! Delivery: a message to an account with a logged-in connection is put in
//! that connection's bounded push buffer ("delivered"); when no connection
//! of the recipient takes it (none logged in, or every buffer full: a
//! client that stopped reading), it is queued in the database and only
//! then reported queued. Queued messages go to a client on `deliver`, and
//! leave the queue when the client acknowledges them.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::{RngCore, SeedableRng};
use tokio::sync::mpsc;

use super::store::{Store, now_ms};

/// Longest account name, in characters.
pub const MAX_NAME: usize = 32;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;
/// Longest message text, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Pushed messages a connection may have waiting to be written; past this
/// the connection is too slow and misses pushes (they go to the queue when
/// no other connection of the account takes them).
pub const PUSH_BUFFER: usize = 1024;
/// Most accounts one `list` returns.
pub const MAX_PAGE: usize = 1000;
/// Most messages one `deliver` returns.
pub const MAX_DELIVER: usize = 1000;

/// A message, as stored, delivered and pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    pub from: String,
    /// The sender's account was deleted after it sent this.
    pub from_deleted: bool,
    pub to: String,
    /// When the server took it, ms since the Unix epoch.
    pub sent_ms: u64,
    pub text: String,
}

/// What went wrong, in the user's terms. Every one leaves the connection
/// usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("{0:?} is not a valid account name: 1-32 letters, digits, '_', '-' or '.'")]
    BadName(String),
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    #[error("there is no account {0:?}")]
    NoSuchAccount(String),
    #[error("wrong password for {0:?}")]
    WrongPassword(String),
    #[error("a password must be 1 to {MAX_PASSWORD} bytes")]
    BadPassword,
    #[error("not logged in (log in first)")]
    NotLoggedIn,
    #[error("this connection is already logged in as {0:?} (log out first)")]
    AlreadyLoggedIn(String),
    #[error("a message is at most {MAX_TEXT} bytes; this one is {0}")]
    TooLarge(usize),
    #[error("an empty message is not sent")]
    Empty,
    #[error("{0:?} is not a pattern: use letters, digits, '_', '-', '.', '*' and '?'")]
    BadPattern(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

impl ChatError {
    /// The error code both protocols carry (docs/chat-wire-protocol.md).
    pub fn code(&self) -> u16 {
        match self {
            ChatError::BadName(_) => 10,
            ChatError::NameTaken(_) => 11,
            ChatError::NoSuchAccount(_) => 12,
            ChatError::WrongPassword(_) => 13,
            ChatError::BadPassword => 14,
            ChatError::NotLoggedIn => 15,
            ChatError::AlreadyLoggedIn(_) => 16,
            ChatError::TooLarge(_) => 17,
            ChatError::Empty => 18,
            ChatError::BadPattern(_) => 19,
            ChatError::Storage(_) => 50,
        }
    }
}

pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Does `name` match `pattern` (`*` any run, `?` one character)?
pub fn matches(pattern: &[char], name: &[char]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some('*'), _) => {
            matches(&pattern[1..], name) || (!name.is_empty() && matches(pattern, &name[1..]))
        }
        (Some('?'), Some(_)) => matches(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => matches(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Whether a message was pushed to a logged-in connection or queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    Queued,
}

/// One page of `list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Accounts matching the pattern, in all.
    pub total: u64,
    /// (name, online) for this page, by name.
    pub accounts: Vec<(String, bool)>,
}

/// A connection's state: who it is logged in as, and where its pushes go.
pub struct Session {
    id: u64,
    account: Option<String>,
    push: mpsc::Sender<Message>,
}

impl Session {
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

struct State {
    accounts: BTreeSet<String>,
    /// account → its logged-in connections (id, push buffer).
    online: HashMap<String, Vec<(u64, mpsc::Sender<Message>)>>,
}

#[derive(Clone)]
pub struct ChatService {
    store: Store,
    state: Arc<Mutex<State>>,
    next_conn: Arc<AtomicU64>,
    next_msg: Arc<AtomicU64>,
}

fn hash_password(password: &str) -> Result<String, ChatError> {
    let mut salt = [0u8; 16];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ChatError::Storage(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ChatError::Storage(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn check_password(password: &str) -> Result<(), ChatError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(ChatError::BadPassword);
    }
    Ok(())
}

/// Hashing is slow on purpose (argon2id): off the network tasks.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ChatError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ChatError::Storage(format!("password check failed: {e}")))
}

impl ChatService {
    pub fn new(store: Store, accounts: Vec<String>, max_id: u64) -> ChatService {
        // Ids grow across restarts: past every stored one, and past the
        // clock (online messages are never stored, and must not repeat).
        let start = max_id.max(now_ms() * 1000) + 1;
        ChatService {
            store,
            state: Arc::new(Mutex::new(State {
                accounts: accounts.into_iter().collect(),
                online: HashMap::new(),
            })),
            next_conn: Arc::new(AtomicU64::new(1)),
            next_msg: Arc::new(AtomicU64::new(start)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the state as it
        // was between operations: carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection; its pushes arrive on the returned receiver.
    pub fn connect(&self) -> (Session, mpsc::Receiver<Message>) {
        let (push, rx) = mpsc::channel(PUSH_BUFFER);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        (
            Session {
                id,
                account: None,
                push,
            },
            rx,
        )
    }

    /// The connection is gone: it is logged out.
    pub fn disconnect(&self, s: &mut Session) {
        self.logout(s);
    }

    pub async fn create(&self, name: &str, password: &str) -> Result<(), ChatError> {
        if !valid_name(name) {
            return Err(ChatError::BadName(name.to_string()));
        }
        check_password(password)?;
        if self.state().accounts.contains(name) {
            return Err(ChatError::NameTaken(name.to_string()));
        }
        let pw = password.to_string();
        let hash = blocking(move || hash_password(&pw)).await??;
        self.store.create(name, hash).await?;
        self.state().accounts.insert(name.to_string());
        Ok(())
    }

    /// Logs `s` in; returns how many messages wait in the queue.
    pub async fn login(
        &self,
        s: &mut Session,
        name: &str,
        password: &str,
    ) -> Result<u64, ChatError> {
        if let Some(a) = &s.account {
            return Err(ChatError::AlreadyLoggedIn(a.clone()));
        }
        self.check(name, password).await?;
        s.account = Some(name.to_string());
        self.state()
            .online
            .entry(name.to_string())
            .or_default()
            .push((s.id, s.push.clone()));
        self.store.count(name).await
    }

    async fn check(&self, name: &str, password: &str) -> Result<(), ChatError> {
        if !valid_name(name) {
            return Err(ChatError::BadName(name.to_string()));
        }
        let hash = self
            .store
            .hash(name)
            .await?
            .ok_or_else(|| ChatError::NoSuchAccount(name.to_string()))?;
        let pw = password.to_string();
        if !blocking(move || verify_password(&pw, &hash)).await? {
            return Err(ChatError::WrongPassword(name.to_string()));
        }
        Ok(())
    }

    /// Logs `s` out (nothing if it was not logged in).
    pub fn logout(&self, s: &mut Session) -> bool {
        let Some(name) = s.account.take() else {
            return false;
        };
        let mut st = self.state();
        if let Some(conns) = st.online.get_mut(&name) {
            conns.retain(|(id, _)| *id != s.id);
            if conns.is_empty() {
                st.online.remove(&name);
            }
        }
        true
    }

    pub fn list(&self, pattern: &str, offset: usize, limit: usize) -> Result<Page, ChatError> {
        let pattern = if pattern.is_empty() { "*" } else { pattern };
        let ok = pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?'));
        if !ok || pattern.len() > 4 * MAX_NAME {
            return Err(ChatError::BadPattern(pattern.to_string()));
        }
        let p: Vec<char> = pattern.chars().collect();
        let st = self.state();
        let all: Vec<&String> = st
            .accounts
            .iter()
            .filter(|n| matches(&p, &n.chars().collect::<Vec<_>>()))
            .collect();
        Ok(Page {
            total: all.len() as u64,
            accounts: all
                .into_iter()
                .skip(offset)
                .take(limit.clamp(1, MAX_PAGE))
                .map(|n| (n.clone(), st.online.contains_key(n)))
                .collect(),
        })
    }

    /// Sends `text` from `s`'s account to `to`: pushed at once to every
    /// connection logged in as `to`, else queued durably.
    pub async fn send(&self, s: &Session, to: &str, text: &str) -> Result<(u64, Sent), ChatError> {
        let from = s.account.as_deref().ok_or(ChatError::NotLoggedIn)?;
        if text.len() > MAX_TEXT {
            return Err(ChatError::TooLarge(text.len()));
        }
        if text.is_empty() {
            return Err(ChatError::Empty);
        }
        let msg = Message {
            id: self.next_msg.fetch_add(1, Ordering::Relaxed),
            from: from.to_string(),
            from_deleted: false,
            to: to.to_string(),
            sent_ms: now_ms(),
            text: text.to_string(),
        };
        {
            let st = self.state();
            if !st.accounts.contains(from) {
                // Deleted from another connection.
                return Err(ChatError::NotLoggedIn);
            }
            if !st.accounts.contains(to) {
                return Err(ChatError::NoSuchAccount(to.to_string()));
            }
            if let Some(conns) = st.online.get(to) {
                let mut took = false;
                for (_, push) in conns {
                    took |= push.try_send(msg.clone()).is_ok();
                }
                if took {
                    return Ok((msg.id, Sent::Delivered));
                }
            }
        }
        let id = msg.id;
        self.store.enqueue(msg).await?;
        Ok((id, Sent::Queued))
    }

    /// Up to `max` queued messages, oldest first, and how many are queued
    /// in all. They stay queued until acknowledged.
    pub async fn deliver(&self, s: &Session, max: usize) -> Result<(Vec<Message>, u64), ChatError> {
        let me = s.account.as_deref().ok_or(ChatError::NotLoggedIn)?;
        self.store.queued(me, max.clamp(1, MAX_DELIVER)).await
    }

    /// The client has these delivered messages: they leave the queue.
    pub async fn ack(&self, s: &Session, ids: Vec<u64>) -> Result<u64, ChatError> {
        let me = s.account.as_deref().ok_or(ChatError::NotLoggedIn)?;
        self.store.ack(me, ids).await
    }

    /// Deletes `s`'s own account (password confirmed); returns how many of
    /// its undelivered messages were dropped. Every connection logged in as
    /// it is logged out.
    pub async fn delete(&self, s: &mut Session, password: &str) -> Result<u64, ChatError> {
        let me = s.account.clone().ok_or(ChatError::NotLoggedIn)?;
        self.check(&me, password).await?;
        let dropped = self.store.delete(&me).await?;
        let mut st = self.state();
        st.accounts.remove(&me);
        st.online.remove(&me);
        s.account = None;
        Ok(dropped)
    }

    /// Is the account still there? (A connection logged in as an account
    /// deleted elsewhere is logged out on its next operation.)
    pub fn exists(&self, name: &str) -> bool {
        self.state().accounts.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_patterns() {
        assert!(valid_name("alice") && valid_name("a.b-c_9") && valid_name(&"x".repeat(32)));
        assert!(!valid_name("") && !valid_name(&"x".repeat(33)) && !valid_name("al ice"));
        assert!(!valid_name("é") && !valid_name("a/b"));
        let m = |p: &str, n: &str| {
            matches(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("al*", "alice") && m("al*", "al") && m("*", "x") && m("a?c", "abc"));
        assert!(!m("al*", "bob") && !m("a?c", "ac") && !m("a", "ab"));
        assert!(m("*e*", "bea") && m("**", ""));
    }
}
