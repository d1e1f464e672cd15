//! What keeps password checks from taking the machine: a bound on hashes
//! running at once ([`Hashers`]), and a slowdown for repeated wrong
//! passwords, per account and per client address ([`Throttle`]).
//!
//! argon2id is slow and memory-hungry on purpose (19 MiB a hash): without a
//! bound, 200 parallel wrong LOGINs meant 200 hashes at once on the
//! blocking pool. Hashes run at most one per core, a bounded number wait,
//! and past that a request is told the server is busy. (The network tasks
//! keep their share of the cores from the kernel's scheduler: a hash is
//! one thread's work, not a busy loop on theirs.)

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::service::ChatError;

/// Password checks that may wait for a hasher or run; past this a request
/// gets [`ChatError::Busy`].
pub const HASH_WAITERS: usize = 256;
/// Wrong passwords in a row that cost nothing more, per account.
pub const FREE_FAILURES: u32 = 5;
/// Wrong passwords in a row from one client address before it is slowed
/// down (addresses are shared by many users behind one NAT).
pub const FREE_FAILURES_PER_ADDRESS: u32 = 50;
/// The longest wait after a wrong password.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Failures are forgotten after this long without one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Accounts and addresses tracked at most (past it, only expired entries
/// make room: new keys are not slowed, the per-address bound still holds).
pub const MAX_TRACKED: usize = 65_536;

/// Runs password hashes, a bounded number at once.
pub struct Hashers {
    /// One permit per hash running; it travels with the hash onto the
    /// blocking pool, so a caller that goes away does not free it early.
    running: Arc<Semaphore>,
    /// One permit per check waiting or running; dropped with its future.
    waiting: Semaphore,
}

impl Default for Hashers {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hashers {
            running: Arc::new(Semaphore::new(cores.max(1))),
            waiting: Semaphore::new(HASH_WAITERS),
        }
    }
}

impl Hashers {
    /// Runs `f` (a hash) on the blocking pool once a hasher is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ChatError> {
        self.run_if(|| Ok(()), f).await
    }

    /// Like [`Hashers::run`], but asks `ready` first once a hasher is free
    /// (a throttle decided while waiting: of 200 wrong passwords sent at
    /// once, only the free tries are hashed).
    pub async fn run_if<T: Send + 'static>(
        &self,
        ready: impl FnOnce() -> Result<(), ChatError>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ChatError> {
        // Both permits are released by Drop, also when the caller's future
        // is dropped half way (a cancelled gRPC call).
        let _waiting = self.waiting.try_acquire().map_err(|_| ChatError::Busy)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ChatError::Busy)?;
        ready()?;
        tokio::task::spawn_blocking(move || {
            let _running = running;
            f()
        })
        .await
        .map_err(|e| ChatError::Storage(format!("password check failed: {e}")))
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    in_a_row: u32,
    last: Instant,
}

/// Wrong passwords in a row per key, and the wait they have earned.
struct Tracker<K> {
    free: u32,
    map: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    fn new(free: u32) -> Self {
        Tracker {
            free,
            map: HashMap::new(),
        }
    }

    /// How long `key` must still wait before its next try.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.map.get(key)?;
        if f.in_a_row < self.free {
            return None;
        }
        let doublings = (f.in_a_row - self.free).min(16);
        let backoff = Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF);
        let ready = f.last + backoff;
        (ready > now).then(|| ready - now)
    }

    fn failed(&mut self, key: &K, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            self.map
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if self.map.len() >= MAX_TRACKED {
                return;
            }
        }
        let f = self.map.entry(key.clone()).or_insert(Failures {
            in_a_row: 0,
            last: now,
        });
        if now.duration_since(f.last) > FORGET_AFTER {
            f.in_a_row = 0;
        }
        f.in_a_row = f.in_a_row.saturating_add(1);
        f.last = now;
    }

    fn succeeded(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// Slows down repeated wrong passwords for one account and from one client
/// address: after the free tries, each wrong one doubles the wait before
/// the next is even checked (1 s, 2 s, 4 s ... up to [`MAX_BACKOFF`]).
/// A try during the wait is refused without hashing, telling how long is
/// left; a right password clears the account's and the address's count.
pub struct Throttle {
    accounts: Mutex<Tracker<String>>,
    addresses: Mutex<Tracker<std::net::IpAddr>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            accounts: Mutex::new(Tracker::new(FREE_FAILURES)),
            addresses: Mutex::new(Tracker::new(FREE_FAILURES_PER_ADDRESS)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    /// May `name`, from `addr`, try a password now?
    pub fn check(&self, name: &str, addr: Option<std::net::IpAddr>) -> Result<(), ChatError> {
        let now = Instant::now();
        let by_account = lock(&self.accounts).wait(&name.to_string(), now);
        let by_address = addr.and_then(|a| lock(&self.addresses).wait(&a, now));
        match by_account.max(by_address) {
            None => Ok(()),
            Some(wait) => Err(ChatError::TooManyFailures {
                name: name.to_string(),
                retry_ms: wait.as_millis().max(1) as u64,
            }),
        }
    }

    pub fn failed(&self, name: &str, addr: Option<std::net::IpAddr>) {
        let now = Instant::now();
        lock(&self.accounts).failed(&name.to_string(), now);
        if let Some(a) = addr {
            lock(&self.addresses).failed(&a, now);
        }
    }

    pub fn succeeded(&self, name: &str, addr: Option<std::net::IpAddr>) {
        lock(&self.accounts).succeeded(&name.to_string());
        if let Some(a) = addr {
            lock(&self.addresses).succeeded(&a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_tries_then_a_doubling_wait_and_a_success_clears_it() {
        let mut t = Tracker::new(3);
        let k = "x".to_string();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.wait(&k, t0), None);
            t.failed(&k, t0);
        }
        assert_eq!(t.wait(&k, t0), Some(Duration::from_secs(1)));
        assert_eq!(t.wait(&k, t0 + Duration::from_secs(1)), None);
        t.failed(&k, t0);
        assert_eq!(t.wait(&k, t0), Some(Duration::from_secs(2)));
        for _ in 0..40 {
            t.failed(&k, t0);
        }
        assert_eq!(t.wait(&k, t0), Some(MAX_BACKOFF));
        t.succeeded(&k);
        assert_eq!(t.wait(&k, t0), None);
    }

    #[test]
    fn old_failures_are_forgotten_and_the_map_is_bounded() {
        let mut t = Tracker::new(1);
        let t0 = Instant::now();
        t.failed(&1u32, t0);
        t.failed(&1u32, t0);
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        t.failed(&1u32, later);
        assert_eq!(t.wait(&1u32, later), Some(Duration::from_secs(1)));
        for k in 0..(MAX_TRACKED as u32 + 10) {
            t.failed(&k, t0);
        }
        assert!(t.map.len() <= MAX_TRACKED);
    }

    #[test]
    fn the_throttle_refuses_the_fiftieth_wrong_password_with_the_wait() {
        let th = Throttle::default();
        let mut refused = 0;
        for _ in 0..50 {
            match th.check("victim", None) {
                Ok(()) => th.failed("victim", None),
                Err(ChatError::TooManyFailures { retry_ms, .. }) => {
                    assert!(retry_ms > 0);
                    refused += 1
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(refused, 50 - FREE_FAILURES as usize);
        th.succeeded("victim", None);
        assert!(th.check("victim", None).is_ok());
    }
}
