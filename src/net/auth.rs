//! Who may open a link to a node: the cluster cookie's challenge–response
//! (always, unless `--no-cookie`), mutual TLS naming each member (with
//! `--tls DIR`), and the checks on what a hello claims (its name is the
//! config's, its address is the config's host, its start time is not in
//! the future). `docs/architecture.md`, "Who may talk to a node", says what
//! each proves and what stays out of scope.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::cookie::{Cookie, NONCE_BYTES, Source};
use super::tls::Tls;
use crate::cli::CliError;
use crate::config::{Cluster, NodeId};

/// A hello's start time may be this far ahead of the receiver's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(30);
/// A challenge's nonce is good for one hello, for this long.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(10);
/// Challenges outstanding at once on one connection (beyond: its oldest is
/// dropped, so a flood on one connection never evicts another's)...
pub const MAX_PENDING_PER_CONNECTION: usize = 4;
/// ...and on the whole node (the listener's connection cap times that, for
/// clusters of up to 60 nodes; beyond: the oldest is dropped).
pub const MAX_PENDING: usize = 1024;

/// How a node proves itself and checks its peers (`--cookie`, `--tls`).
#[derive(Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// The cluster cookie file [default: $DSYS_COOKIE (the cookie itself),
    /// else ./.dsys-cookie, else ~/.dsys-cookie, made on first use]. Nodes
    /// link only with nodes that hold the same cookie
    #[arg(long, value_name = "FILE", help_heading = "Membership")]
    pub cookie: Option<PathBuf>,
    /// Links over mutual TLS with DIR/ca.pem and this node's DIR/NAME.pem,
    /// DIR/NAME.key (made by `dsys certs init DIR --nodes ...`): a peer must
    /// hold a certificate of the cluster's CA naming the member it claims
    #[arg(long, value_name = "DIR", help_heading = "Membership")]
    pub tls: Option<PathBuf>,
    /// Link without the cookie's challenge (to measure what it costs): then
    /// anyone who can reach the port can claim to be a member
    #[arg(long, conflicts_with = "cookie", help_heading = "Membership")]
    pub no_cookie: bool,
}

impl AuthArgs {
    /// Finds the cookie and reads the TLS files for node `me`; warns (one
    /// line) when a node listens beyond loopback without TLS.
    pub fn load(&self, cluster: &Cluster, me: NodeId) -> Result<Arc<Auth>, CliError> {
        let cookie = if self.no_cookie {
            None
        } else {
            Some(
                Cookie::resolve(self.cookie.as_deref())
                    .map_err(|e| CliError::Usage(e.to_string()))?,
            )
        };
        let tls = self
            .tls
            .as_ref()
            .map(|dir| Tls::load(dir, cluster.name(me)))
            .transpose()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let ip = cluster.addr(me).ip();
        if tls.is_none() && !ip.is_loopback() {
            eprintln!(
                "warning: {} listens on {ip}, beyond this machine, without --tls: anyone on that network can read its links{}",
                cluster.name(me),
                if cookie.is_some() {
                    " and, in the middle of one, change them"
                } else {
                    ", and with --no-cookie claim to be any member"
                }
            );
        }
        Ok(Arc::new(Auth::new(cookie, tls)))
    }
}

/// A node's means of proving itself and checking its peers.
#[derive(Debug)]
pub struct Auth {
    pub cookie: Option<Cookie>,
    pub tls: Option<Tls>,
    /// When this node started (µs since the epoch): sent in its hellos.
    pub incarnation: u64,
}

impl Auth {
    pub fn new(cookie: Option<Cookie>, tls: Option<Tls>) -> Auth {
        Auth {
            cookie,
            tls,
            incarnation: now_us(),
        }
    }

    /// A fresh random cookie held in memory: for a cluster in one process
    /// (`dsys demo`), whose members need no file to agree on.
    pub fn ephemeral() -> Arc<Auth> {
        let cookie = Cookie::from_secret(super::cookie::new_secret().as_bytes(), Source::Env).ok();
        Arc::new(Auth::new(cookie, None))
    }

    /// What protects this node's links, for its start-up line and status.
    pub fn describe(&self) -> String {
        match (&self.cookie, &self.tls) {
            (Some(_), Some(t)) => format!("cookie and TLS ({})", t.dir.display()),
            (Some(c), None) => format!("cookie {}", c.source),
            (None, Some(t)) => format!("TLS ({}), no cookie", t.dir.display()),
            (None, None) => "nothing (--no-cookie)".into(),
        }
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Why a link was refused: the reason `status` shows and both sides say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The proofs over the nonces do not check: another cookie.
    Cookie,
    /// The TLS handshake failed, or the certificate names someone else.
    Tls,
    /// The hello's start time is too far in the future.
    Clock,
    /// The hello came from another host than the config's for that name.
    Address,
    /// Another algorithm, or a name the config does not have.
    Config,
    /// The peer does not do the challenge (an older dsys, or --no-cookie).
    NoChallenge,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::Cookie,
        Refusal::Tls,
        Refusal::Clock,
        Refusal::Address,
        Refusal::Config,
        Refusal::NoChallenge,
    ];

    pub fn code(self) -> u8 {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    pub fn from_code(c: u8) -> Refusal {
        Refusal::ALL
            .get(c as usize)
            .copied()
            .unwrap_or(Refusal::Cookie)
    }

    pub fn words(self) -> &'static str {
        match self {
            Refusal::Cookie => "different cookie",
            Refusal::Tls => "TLS refused",
            Refusal::Clock => "clock ahead",
            Refusal::Address => "wrong host",
            Refusal::Config => "different config",
            Refusal::NoChallenge => "no cookie challenge",
        }
    }

    /// The gRPC status a listener refuses with; the reason itself travels
    /// in the `dsys-refusal` header, so the dialer need not read the words.
    pub fn status(self, msg: String) -> tonic::Status {
        let mut status = match self {
            Refusal::Cookie | Refusal::NoChallenge => tonic::Status::unauthenticated(msg),
            Refusal::Config => tonic::Status::invalid_argument(msg),
            Refusal::Tls | Refusal::Clock | Refusal::Address => {
                tonic::Status::permission_denied(msg)
            }
        };
        status.metadata_mut().insert(
            REFUSAL_HEADER,
            tonic::metadata::MetadataValue::from(u16::from(self.code())),
        );
        status
    }

    /// What a dialer makes of a listener's refusal: the header's reason,
    /// else what the code says (a node that answers no challenge at all).
    pub fn of_status(s: &tonic::Status) -> Option<Refusal> {
        let said = s
            .metadata()
            .get(REFUSAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|c| usize::from(*c) < Refusal::ALL.len());
        if let Some(c) = said {
            return Some(Refusal::from_code(c));
        }
        match s.code() {
            tonic::Code::Unauthenticated => Some(Refusal::Cookie),
            tonic::Code::InvalidArgument => Some(Refusal::Config),
            tonic::Code::Unimplemented => Some(Refusal::NoChallenge),
            tonic::Code::PermissionDenied => Some(Refusal::Address),
            _ => None,
        }
    }
}

/// The header a refusal's reason travels in.
const REFUSAL_HEADER: &str = "dsys-refusal";

/// The line both sides print when the cookies differ: `who` is the peer
/// as this side knows it ("l3 at 127.0.0.1:7003", "l1 (dialing from ...)").
pub fn different_cookie(who: impl std::fmt::Display) -> String {
    format!("{who} has a different cookie (see --cookie)")
}

/// A start time too far ahead of ours: the refusal's words, or None.
pub fn clock_ahead(from: &str, incarnation: u64, me: &str) -> Option<String> {
    let now = now_us();
    let ahead = incarnation.saturating_sub(now);
    (ahead > MAX_SKEW.as_micros() as u64).then(|| {
        format!(
            "{from}'s clock is {:.0} s ahead of {me}'s (the most is {} s): fix the clock, then restart {from}",
            ahead as f64 / 1e6,
            MAX_SKEW.as_secs()
        )
    })
}

/// Does a link from `remote` fit the config's host for `from`? Always, when
/// the config puts `from` on loopback (or any address): on one machine
/// every node dials from 127.0.0.1 whatever its own address.
pub fn host_fits(cluster: &Cluster, from: NodeId, remote: Option<IpAddr>) -> Result<(), String> {
    let want = cluster.addr(from).ip().to_canonical();
    if want.is_loopback() || want.is_unspecified() {
        return Ok(());
    }
    match remote.map(|r| r.to_canonical()) {
        Some(got) if got == want => Ok(()),
        Some(got) => Err(format!(
            "{} is at {want} in {}, but this link comes from {got}",
            cluster.name(from),
            cluster.source().display()
        )),
        None => Ok(()),
    }
}

struct Pending {
    conn: u64,
    from: NodeId,
    dialer_nonce: Vec<u8>,
    issued: Instant,
}

/// The nonces a listener handed out, each good for one hello on the same
/// connection within [`CHALLENGE_TTL`]; at most [`MAX_PENDING`] at once.
#[derive(Default)]
pub struct Challenges {
    pending: Mutex<HashMap<[u8; NONCE_BYTES], Pending>>,
}

impl Challenges {
    pub fn issue(&self, nonce: [u8; NONCE_BYTES], conn: u64, from: NodeId, dialer_nonce: Vec<u8>) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        let now = Instant::now();
        p.retain(|_, v| now.duration_since(v.issued) < CHALLENGE_TTL);
        let mine = p.values().filter(|v| v.conn == conn).count();
        if mine >= MAX_PENDING_PER_CONNECTION
            && let Some(oldest) = p
                .iter()
                .filter(|(_, v)| v.conn == conn)
                .min_by_key(|(_, v)| v.issued)
                .map(|(k, _)| *k)
        {
            p.remove(&oldest);
        }
        if p.len() >= MAX_PENDING
            && let Some(oldest) = p.iter().min_by_key(|(_, v)| v.issued).map(|(k, _)| *k)
        {
            p.remove(&oldest);
        }
        p.insert(
            nonce,
            Pending {
                conn,
                from,
                dialer_nonce,
                issued: now,
            },
        );
    }

    /// Takes the challenge `nonce` answered, if it was issued on `conn` to
    /// `from` and is still fresh: the dialer's nonce it was issued for.
    pub fn take(&self, nonce: &[u8], conn: u64, from: NodeId) -> Option<Vec<u8>> {
        let key: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        let mut p = self.pending.lock().ok()?;
        let got = p.remove(&key)?;
        (got.conn == conn && got.from == from && got.issued.elapsed() < CHALLENGE_TTL)
            .then_some(got.dialer_nonce)
    }

    pub fn len(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Says a line at most once a minute per key (a refused peer retries every
/// few seconds; its line should not scroll everything else away).
#[derive(Default, Debug)]
pub struct Say {
    last: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Keys remembered at most (strangers may invent names).
const SAY_KEYS: usize = 1024;

impl Say {
    /// `Some(line)` to print now (with how many were held back), or None.
    pub fn line(&self, key: &str, line: String) -> Option<String> {
        let Ok(mut m) = self.last.lock() else {
            return Some(line);
        };
        let now = Instant::now();
        if m.len() >= SAY_KEYS {
            m.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(60));
        }
        match m.get_mut(key) {
            Some((t, held)) if now.duration_since(*t) < Duration::from_secs(60) => {
                *held += 1;
                None
            }
            Some((t, held)) => {
                let n = std::mem::take(held);
                *t = now;
                Some(if n > 0 {
                    format!("{line} ({n} more times in the last minute)")
                } else {
                    line
                })
            }
            None => {
                if m.len() < SAY_KEYS {
                    m.insert(key.to_string(), (now, 0));
                }
                Some(line)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_answers_once_on_its_own_connection_for_its_own_name() {
        let c = Challenges::default();
        let a = NodeId(0);
        let b = NodeId(1);
        c.issue([1; NONCE_BYTES], 7, a, vec![9]);
        assert_eq!(c.take(&[1; NONCE_BYTES], 8, a), None, "another connection");
        c.issue([1; NONCE_BYTES], 7, a, vec![9]);
        assert_eq!(c.take(&[1; NONCE_BYTES], 7, b), None, "another name");
        c.issue([1; NONCE_BYTES], 7, a, vec![9]);
        assert_eq!(c.take(&[1; NONCE_BYTES], 7, a), Some(vec![9]));
        assert_eq!(c.take(&[1; NONCE_BYTES], 7, a), None, "used once");
        assert_eq!(c.take(&[1; 3], 7, a), None, "short nonce");
    }

    #[test]
    fn a_flood_of_challenges_keeps_the_table_bounded() {
        let c = Challenges::default();
        for i in 0..(MAX_PENDING as u32 * 4) {
            let mut n = [0u8; NONCE_BYTES];
            n[..4].copy_from_slice(&i.to_be_bytes());
            c.issue(n, u64::from(i), NodeId(0), vec![]);
        }
        assert_eq!(c.len(), MAX_PENDING);
    }

    #[test]
    fn a_flood_of_challenges_on_one_connection_leaves_another_connections_alone() {
        let c = Challenges::default();
        c.issue([9; NONCE_BYTES], 2, NodeId(1), vec![5]);
        for i in 0..10_000u32 {
            let mut n = [0u8; NONCE_BYTES];
            n[..4].copy_from_slice(&i.to_be_bytes());
            c.issue(n, 1, NodeId(0), vec![]);
        }
        assert_eq!(c.len(), 1 + MAX_PENDING_PER_CONNECTION);
        assert_eq!(c.take(&[9; NONCE_BYTES], 2, NodeId(1)), Some(vec![5]));
    }

    #[test]
    fn a_start_time_far_ahead_is_refused_and_a_near_one_is_not() {
        assert!(clock_ahead("m2", u64::MAX, "m1").is_some());
        assert!(clock_ahead("m2", now_us() + 5_000_000, "m1").is_none());
        assert!(clock_ahead("m2", 1, "m1").is_none());
    }

    #[test]
    fn a_line_is_said_once_a_minute_per_key() {
        let s = Say::default();
        assert!(s.line("l3", "x".into()).is_some());
        assert!(s.line("l3", "x".into()).is_none());
        assert!(s.line("l2", "y".into()).is_some());
    }

    #[test]
    fn refusals_round_trip_through_their_codes_and_statuses() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::from_code(r.code()), r);
            assert_eq!(Refusal::of_status(&r.status("why".into())), Some(r));
        }
    }
}
