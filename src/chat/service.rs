//! The chat service both protocol front-ends call: accounts, who is logged
//! in on which connection, online delivery and the durable queues. It
//! knows no socket and no encoding; a front-end opens a [`Session`] per
//! connection, calls the operations with it, and writes out what arrives
//! on the session's push channel.
//!
//! Delivery: a message to an account with a logged-in connection is put in
//! that connection's push buffer ("delivered"), which is bounded in bytes
//! ([`PUSH_BYTES`]) and drained to the socket by the front-end, so what a
//! server crash can lose is that much per connection; when no connection
//! of the recipient takes it (none logged in, or every buffer full: a
//! client that stopped reading), it is queued in the database and only
//! then reported queued. Queued messages go to a client on `deliver`, and
//! leave the queue when the client acknowledges them.
//!
//! Identity: an account is its id, not its name. Queues and logins are
//! keyed by the id, and every operation of a logged-in session checks that
//! its account still exists under that id, so a name deleted and created
//! again is a new account that inherits nothing: not the old queue, not
//! the old sessions.
//!
//! Hostile clients: LIST matches in linear time on a snapshot of the names
//! (no lock held while matching); password hashes are bounded and repeated
//! failures slowed down ([`super::guard`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::{RngCore, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::guard::{Hashers, Throttle};
use super::pattern::{Pattern, PatternError};
use super::store::{Store, now_ms};

/// Longest account name, in characters.
pub const MAX_NAME: usize = 32;
/// Longest password, in bytes (CREATE and LOGIN alike: a longer one is
/// refused before anything is hashed).
pub const MAX_PASSWORD: usize = 1024;
/// Longest message text, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Bytes of pushed messages a connection may have waiting to be written
/// (counted as their text and sender's name plus 32); past this the
/// connection is too slow and misses pushes (they go to the queue when no
/// other connection of the account takes them). A message bigger than the
/// whole buffer still goes into an empty one.
pub const PUSH_BYTES: usize = 16 * 1024;
/// Most accounts one `list` returns.
pub const MAX_PAGE: usize = 1000;
/// Most messages one `deliver` returns.
pub const MAX_DELIVER: usize = 1000;
/// Bytes of messages one `deliver` returns at most (as the wire protocol
/// encodes them): a MESSAGES frame stays within the 64 KiB frame limit.
/// What does not fit stays queued, and `queued` says so.
pub const DELIVER_BYTES: usize = 64 * 1024 - 12;

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

impl Message {
    /// Its size as the wire protocol encodes it.
    pub fn wire_size(&self) -> usize {
        8 + 2 + self.from.len() + 1 + 8 + 2 + self.text.len()
    }
}

/// What a session's push channel carries.
#[derive(Debug)]
pub enum Push {
    /// A message for the logged-in account; the permit is its room in the
    /// connection's push buffer, to be dropped once it is written.
    Message(Message, Option<OwnedSemaphorePermit>),
    /// The session was logged out by the server (why, for people).
    LoggedOut(String),
}

/// What went wrong, in the user's terms. Every one leaves the connection
/// usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("{:?} is not a valid account name: 1-32 letters, digits, '_', '-' or '.'", clip(.0))]
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
    #[error("logged out: {0}")]
    LoggedOut(String),
    #[error("this connection is already logged in as {0:?} (log out first)")]
    AlreadyLoggedIn(String),
    #[error("a message is at most {MAX_TEXT} bytes; this one is {0}")]
    TooLarge(usize),
    #[error("an empty message is not sent")]
    Empty,
    #[error("{0}")]
    BadPattern(String),
    #[error("too many wrong passwords for {name:?}: try again in {:.1} s", *retry_ms as f64 / 1000.0)]
    TooManyFailures { name: String, retry_ms: u64 },
    #[error("the server is busy checking passwords: try again in a moment")]
    Busy,
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
            ChatError::NotLoggedIn | ChatError::LoggedOut(_) => 15,
            ChatError::AlreadyLoggedIn(_) => 16,
            ChatError::TooLarge(_) => 17,
            ChatError::Empty => 18,
            ChatError::BadPattern(_) => 19,
            ChatError::TooManyFailures { .. } => 20,
            ChatError::Busy => 21,
            ChatError::Storage(_) => 50,
        }
    }
}

/// At most 40 characters of `s`, for quoting what a client sent in an
/// error (an error frame stays far below the frame limit).
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
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

/// Who a session is logged in as.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Login {
    id: u64,
    name: String,
}

/// Where a connection's pushes go: a channel whose room is counted in bytes.
#[derive(Clone)]
struct PushTx {
    tx: mpsc::UnboundedSender<Push>,
    room: Arc<Semaphore>,
}

impl PushTx {
    /// Pushes `m` if the connection has room for it.
    fn offer(&self, m: &Message) -> bool {
        let cost = (m.from.len() + m.text.len() + 32).min(PUSH_BYTES) as u32;
        match self.room.clone().try_acquire_many_owned(cost) {
            Ok(permit) => self.tx.send(Push::Message(m.clone(), Some(permit))).is_ok(),
            Err(_) => false,
        }
    }
}

/// A connection's state: who it is logged in as, and where its pushes go.
pub struct Session {
    conn: u64,
    account: Option<Login>,
    push: PushTx,
    /// The client's address, for slowing down wrong passwords.
    peer: Option<IpAddr>,
}

impl Session {
    /// The account's name, as of its login (see [`ChatService::logged_in`]).
    pub fn account(&self) -> Option<&str> {
        self.account.as_ref().map(|l| l.name.as_str())
    }
}

struct State {
    /// name → account id. Shared with LISTs in progress, which match
    /// against their snapshot without the lock; a change copies it only
    /// while one holds it.
    accounts: Arc<BTreeMap<String, u64>>,
    /// account id → its logged-in connections (connection id, pushes).
    online: HashMap<u64, Vec<(u64, PushTx)>>,
    /// Accounts being deleted: their sessions can do nothing more.
    deleting: HashSet<u64>,
}

impl State {
    /// Is `l` still a live account (not deleted, not re-created)?
    fn current(&self, l: &Login) -> bool {
        self.accounts.get(&l.name) == Some(&l.id) && !self.deleting.contains(&l.id)
    }
}

#[derive(Clone)]
pub struct ChatService {
    store: Store,
    state: Arc<Mutex<State>>,
    next_conn: Arc<AtomicU64>,
    next_msg: Arc<AtomicU64>,
    hashers: Arc<Hashers>,
    throttle: Arc<Throttle>,
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

/// Runs `f` to its end on its own task, whether or not its caller waits.
async fn finish<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, ChatError>> + Send + 'static,
) -> Result<T, ChatError> {
    tokio::spawn(f)
        .await
        .map_err(|e| ChatError::Storage(format!("the operation failed: {e}")))?
}

fn check_password(password: &str) -> Result<(), ChatError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(ChatError::BadPassword);
    }
    Ok(())
}

impl ChatService {
    /// The service over `store`, which holds `accounts` (name, id) and
    /// messages with ids up to `max_id`.
    pub fn new(store: Store, accounts: Vec<(String, u64)>, max_id: u64) -> ChatService {
        // Ids grow across restarts: past every stored one, and past the
        // clock (online messages are never stored, and must not repeat).
        let start = max_id.max(now_ms() * 1000) + 1;
        ChatService {
            store,
            state: Arc::new(Mutex::new(State {
                accounts: Arc::new(accounts.into_iter().collect()),
                online: HashMap::new(),
                deleting: HashSet::new(),
            })),
            next_conn: Arc::new(AtomicU64::new(1)),
            next_msg: Arc::new(AtomicU64::new(start)),
            hashers: Arc::new(Hashers::default()),
            throttle: Arc::new(Throttle::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the state as it
        // was between operations: carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection from `peer`; its pushes arrive on the returned
    /// receiver (bounded by [`PUSH_BYTES`] of messages: drop each
    /// message's permit once it is written).
    pub fn connect(&self, peer: Option<IpAddr>) -> (Session, mpsc::UnboundedReceiver<Push>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let push = PushTx {
            tx,
            room: Arc::new(Semaphore::new(PUSH_BYTES)),
        };
        (
            Session {
                conn: id,
                account: None,
                push,
                peer,
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
        if self.state().accounts.contains_key(name) {
            return Err(ChatError::NameTaken(name.to_string()));
        }
        let pw = password.to_string();
        let hash = self.hashers.run(move || hash_password(&pw)).await??;
        // The database and the names must agree even if the caller goes
        // away half way (a gRPC call cancelled): the rest runs on its own.
        let this = self.clone();
        let name = name.to_string();
        finish(async move {
            let id = this.store.create(&name, hash).await?;
            Arc::make_mut(&mut this.state().accounts).insert(name, id);
            Ok(())
        })
        .await
    }

    /// Logs `s` in; returns how many messages wait in the queue.
    pub async fn login(
        &self,
        s: &mut Session,
        name: &str,
        password: &str,
    ) -> Result<u64, ChatError> {
        if let Some(a) = self.logged_in(s) {
            return Err(ChatError::AlreadyLoggedIn(a));
        }
        let id = self.check(name, password, s.peer).await?;
        let login = Login {
            id,
            name: name.to_string(),
        };
        {
            let mut st = self.state();
            if !st.current(&login) {
                // Deleted while its password was checked.
                return Err(ChatError::NoSuchAccount(name.to_string()));
            }
            st.online
                .entry(id)
                .or_default()
                .push((s.conn, s.push.clone()));
        }
        s.account = Some(login);
        self.store.count(id).await
    }

    /// Checks `name`'s password (throttled, bounded); returns its id.
    async fn check(
        &self,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<u64, ChatError> {
        if !valid_name(name) {
            return Err(ChatError::BadName(name.to_string()));
        }
        check_password(password)?;
        self.throttle.check(name, peer)?;
        let (id, hash) = self
            .store
            .hash(name)
            .await?
            .ok_or_else(|| ChatError::NoSuchAccount(name.to_string()))?;
        let pw = password.to_string();
        if !self
            .hashers
            .run_if(
                || self.throttle.check(name, peer),
                move || verify_password(&pw, &hash),
            )
            .await?
        {
            self.throttle.failed(name, peer);
            return Err(ChatError::WrongPassword(name.to_string()));
        }
        self.throttle.succeeded(name, peer);
        Ok(id)
    }

    /// Who `s` is logged in as, if that account still exists; a session
    /// whose account was deleted (or deleted and re-created) is logged
    /// out here.
    pub fn logged_in(&self, s: &mut Session) -> Option<String> {
        let login = s.account.clone()?;
        if self.state().current(&login) {
            return Some(login.name);
        }
        self.logout(s);
        None
    }

    /// `s`'s account, or why it has none.
    fn me(&self, s: &mut Session) -> Result<Login, ChatError> {
        let login = s.account.clone().ok_or(ChatError::NotLoggedIn)?;
        if self.state().current(&login) {
            return Ok(login);
        }
        self.logout(s);
        Err(ChatError::LoggedOut(format!(
            "the account {:?} was deleted",
            login.name
        )))
    }

    /// LOGOUT: logs `s` out; an error if it was not logged in (or its
    /// account was deleted, which logged it out already).
    pub fn logout_request(&self, s: &mut Session) -> Result<(), ChatError> {
        self.me(s)?;
        self.logout(s);
        Ok(())
    }

    /// Logs `s` out (nothing if it was not logged in).
    pub fn logout(&self, s: &mut Session) -> bool {
        let Some(login) = s.account.take() else {
            return false;
        };
        let mut st = self.state();
        if let Some(conns) = st.online.get_mut(&login.id) {
            conns.retain(|(id, _)| *id != s.conn);
            if conns.is_empty() {
                st.online.remove(&login.id);
            }
        }
        true
    }

    /// A page of the accounts whose names match `pattern`. The matching
    /// runs on a snapshot of the names, outside the lock, in time linear
    /// in the names' length.
    pub fn list(&self, pattern: &str, offset: usize, limit: usize) -> Result<Page, ChatError> {
        let p = Pattern::new(pattern).map_err(|e| {
            ChatError::BadPattern(match e {
                PatternError::TooLong(n) => format!(
                    "a pattern is at most {} bytes; this one is {n}",
                    super::pattern::MAX_PATTERN
                ),
                PatternError::BadChar(c) => format!(
                    "{pattern:?} is not a pattern ({c:?}): use letters, digits, '_', '-', '.', '*' and '?'"
                ),
            })
        })?;
        let names = self.state().accounts.clone();
        let mut total = 0u64;
        let mut page: Vec<(&String, u64)> = Vec::new();
        let limit = limit.clamp(1, MAX_PAGE);
        for (name, id) in names.iter() {
            if p.matches(name) {
                if total as usize >= offset && page.len() < limit {
                    page.push((name, *id));
                }
                total += 1;
            }
        }
        let st = self.state();
        Ok(Page {
            total,
            accounts: page
                .into_iter()
                .map(|(n, id)| (n.clone(), st.online.contains_key(&id)))
                .collect(),
        })
    }

    /// Sends `text` from `s`'s account to `to`: pushed at once to every
    /// connection logged in as `to` that has room, else queued durably.
    pub async fn send(
        &self,
        s: &mut Session,
        to: &str,
        text: &str,
    ) -> Result<(u64, Sent), ChatError> {
        let from = self.me(s)?;
        if text.len() > MAX_TEXT {
            return Err(ChatError::TooLarge(text.len()));
        }
        if text.is_empty() {
            return Err(ChatError::Empty);
        }
        if !valid_name(to) {
            return Err(ChatError::BadName(to.to_string()));
        }
        let msg = Message {
            id: self.next_msg.fetch_add(1, Ordering::Relaxed),
            from: from.name.clone(),
            from_deleted: false,
            to: to.to_string(),
            sent_ms: now_ms(),
            text: text.to_string(),
        };
        let to_id = {
            let st = self.state();
            if !st.current(&from) {
                // Deleted from another connection meanwhile.
                return Err(ChatError::LoggedOut(format!(
                    "the account {:?} was deleted",
                    from.name
                )));
            }
            let Some(&to_id) = st.accounts.get(to) else {
                return Err(ChatError::NoSuchAccount(to.to_string()));
            };
            if let Some(conns) = st.online.get(&to_id) {
                let mut took = false;
                for (_, push) in conns {
                    took |= push.offer(&msg);
                }
                if took {
                    return Ok((msg.id, Sent::Delivered));
                }
            }
            to_id
        };
        let id = msg.id;
        // The store refuses it if `to` was deleted meanwhile, and marks it
        // from a deleted account if `from` was.
        self.store.enqueue(msg, to_id, from.id).await?;
        Ok((id, Sent::Queued))
    }

    /// The oldest queued messages (up to `max`, and up to
    /// [`DELIVER_BYTES`]), and how many are queued in all. They stay
    /// queued until acknowledged.
    pub async fn deliver(
        &self,
        s: &mut Session,
        max: usize,
    ) -> Result<(Vec<Message>, u64), ChatError> {
        let me = self.me(s)?;
        self.store
            .queued(me.id, &me.name, max.clamp(1, MAX_DELIVER), DELIVER_BYTES)
            .await
    }

    /// The client has these delivered messages: they leave the queue (ids
    /// not in this account's queue are ignored).
    pub async fn ack(&self, s: &mut Session, ids: Vec<u64>) -> Result<u64, ChatError> {
        let me = self.me(s)?;
        self.store.ack(me.id, ids).await
    }

    /// Deletes `s`'s own account (password confirmed); returns how many of
    /// its undelivered messages were dropped. Every other connection
    /// logged in as it is logged out, and told why.
    pub async fn delete(&self, s: &mut Session, password: &str) -> Result<u64, ChatError> {
        let me = self.me(s)?;
        let id = self.check(&me.name, password, s.peer).await?;
        if id != me.id {
            return Err(ChatError::LoggedOut(format!(
                "the account {:?} was deleted",
                me.name
            )));
        }
        // From here no session of the account can send, deliver or ack;
        // and the rest runs on its own, so a caller that goes away half way
        // (a cancelled gRPC call) cannot leave the account half deleted.
        let this = self.clone();
        let conn = s.conn;
        let dropped = finish(async move {
            let fresh = {
                let mut st = this.state();
                st.current(&me) && st.deleting.insert(me.id)
            };
            if !fresh {
                return Err(ChatError::LoggedOut(format!(
                    "the account {:?} is being deleted",
                    me.name
                )));
            }
            let dropped = match this.store.delete(me.id).await {
                Ok(n) => n,
                Err(e) => {
                    this.state().deleting.remove(&me.id);
                    return Err(e);
                }
            };
            let others = {
                let mut st = this.state();
                st.deleting.remove(&me.id);
                let accounts = Arc::make_mut(&mut st.accounts);
                if accounts.get(&me.name) == Some(&me.id) {
                    accounts.remove(&me.name);
                }
                st.online.remove(&me.id).unwrap_or_default()
            };
            for (c, push) in others {
                if c != conn {
                    let _ = push.tx.send(Push::LoggedOut(format!(
                        "the account {:?} was deleted on another connection",
                        me.name
                    )));
                }
            }
            Ok(dropped)
        })
        .await?;
        s.account = None;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("alice") && valid_name("a.b-c_9") && valid_name(&"x".repeat(32)));
        assert!(!valid_name("") && !valid_name(&"x".repeat(33)) && !valid_name("al ice"));
        assert!(!valid_name("é") && !valid_name("a/b"));
    }
}
