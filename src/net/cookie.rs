//! The cluster cookie: a shared secret that proves a peer is a member, the
//! way Erlang distribution does it. It is never sent: each side of a link
//! proves it holds the cookie with a MAC over both sides' fresh nonces and
//! the names they claim, so a proof cannot be replayed on another link,
//! reflected back at its sender, or moved to another pair of names.
//!
//! Where a node finds its cookie ([`Cookie::resolve`]): the file given
//! (`--cookie FILE`), else the `DSYS_COOKIE` environment variable (the
//! cookie itself), else `./.dsys-cookie`, else `~/.dsys-cookie`, which is
//! created (random, mode 0600) on first use. So nodes started by one user
//! on one machine share a cookie without being told, and nodes on several
//! hosts share one once the file is copied.
//!
//! The MAC is BLAKE3 in keyed mode (a PRF, used here as HMAC would be),
//! keyed by a key derived from the cookie. Comparisons are constant-time.
//!
//! This module owns the secret and the proofs only; the transport carries
//! the nonces and proofs in its hello.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use subtle::ConstantTimeEq;

/// The environment variable that holds a cookie.
pub const ENV: &str = "DSYS_COOKIE";
/// The file name looked for in the current and the home directory.
pub const FILE: &str = ".dsys-cookie";
/// Random bytes in a new cookie (printed as hex).
pub const NEW_COOKIE_BYTES: usize = 32;
/// A cookie shorter than this is refused: it could be guessed.
pub const MIN_COOKIE_BYTES: usize = 16;
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 16;

/// Who speaks a proof: the side that dialed, or the side that answered.
/// Each has its own domain, so a proof is never valid the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Dialer,
    Listener,
}

/// Where a cookie came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env,
    /// Created now, at this path.
    Created(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env => write!(f, "${ENV}"),
            Source::Created(p) => write!(f, "{} (created now)", p.display()),
        }
    }
}

/// What went wrong, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    #[error("cannot read the cookie {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the cookie {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cookie {from} is {len} bytes; a cookie is at least {MIN_COOKIE_BYTES} (a new one is made if no cookie file exists)"
    )]
    TooShort { from: Source, len: usize },
    #[error("the cookie file {} can be read by others (mode {mode:o}): `chmod 600 {}`", path.display(), path.display())]
    Readable { path: PathBuf, mode: u32 },
    #[error(
        "no cookie given, none in ./{FILE}, and no home directory to make ~/{FILE} in (set HOME, or use --cookie FILE or ${ENV})"
    )]
    NoHome,
}

/// The cluster's shared secret, as the key the proofs use.
#[derive(Clone)]
pub struct Cookie {
    key: [u8; 32],
    pub source: Source,
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(f, "Cookie({})", self.source)
    }
}

fn key_of(secret: &[u8]) -> [u8; 32] {
    blake3::derive_key("dsys cluster cookie v1", secret)
}

/// The secret in a file's text: surrounding white space does not count.
fn secret_in(text: &[u8]) -> &[u8] {
    text.trim_ascii()
}

impl Cookie {
    /// A cookie from its secret bytes.
    pub fn from_secret(secret: &[u8], source: Source) -> Result<Cookie, CookieError> {
        let secret = secret_in(secret);
        if secret.len() < MIN_COOKIE_BYTES {
            return Err(CookieError::TooShort {
                from: source,
                len: secret.len(),
            });
        }
        Ok(Cookie {
            key: key_of(secret),
            source,
        })
    }

    /// Reads the cookie file at `path`; refuses one others can read.
    pub fn read(path: &Path) -> Result<Cookie, CookieError> {
        let text = std::fs::read(path).map_err(|source| CookieError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(CookieError::Readable {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
            }
        }
        Cookie::from_secret(&text, Source::File(path.to_path_buf()))
    }

    /// Makes a new random cookie file at `path` (mode 0600; never
    /// replaces one that exists: if another process made it meanwhile,
    /// that one is read). The file is written whole under a temporary name
    /// and then linked into place, so nodes starting at once never read a
    /// half-written cookie.
    pub fn create(path: &Path) -> Result<Cookie, CookieError> {
        use std::io::Write;
        let hex = new_secret();
        let create_err = |source| CookieError::Create {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_file_name(format!(
            "{FILE}.{}.{:x}.tmp",
            std::process::id(),
            u64::from_be_bytes(nonce()[..8].try_into().unwrap_or_default())
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let written = opts
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(format!("{hex}\n").as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Cookie::from_secret(hex.as_bytes(), Source::Created(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Cookie::read(path),
            Err(source) => Err(create_err(source)),
        }
    }

    /// The node's cookie: `given` (a file), else `$DSYS_COOKIE`, else
    /// `./.dsys-cookie`, else `~/.dsys-cookie`, made on first use.
    pub fn resolve(given: Option<&Path>) -> Result<Cookie, CookieError> {
        Cookie::resolve_with(
            given,
            std::env::var_os(ENV).map(|v| v.as_encoded_bytes().to_vec()),
            Path::new("."),
            std::env::var_os("HOME").map(PathBuf::from).as_deref(),
        )
    }

    /// [`Cookie::resolve`] with its inputs spelled out (for tests).
    pub fn resolve_with(
        given: Option<&Path>,
        env: Option<Vec<u8>>,
        cwd: &Path,
        home: Option<&Path>,
    ) -> Result<Cookie, CookieError> {
        if let Some(p) = given {
            return Cookie::read(p);
        }
        if let Some(secret) = env {
            return Cookie::from_secret(&secret, Source::Env);
        }
        let here = cwd.join(FILE);
        if here.exists() {
            return Cookie::read(&here);
        }
        let home = home
            .filter(|h| !h.as_os_str().is_empty())
            .ok_or(CookieError::NoHome)?;
        let there = home.join(FILE);
        if there.exists() {
            Cookie::read(&there)
        } else {
            Cookie::create(&there)
        }
    }

    /// The proof that `side` holds the cookie, for the link between
    /// `dialer` and `listener` (the names each claims), over both nonces.
    pub fn prove(
        &self,
        side: Side,
        dialer: &str,
        listener: &str,
        dialer_nonce: &[u8],
        listener_nonce: &[u8],
    ) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(match side {
            Side::Dialer => b"dialer\0",
            Side::Listener => b"listener",
        });
        // Lengths first: no two different inputs run into the same bytes.
        for part in [
            dialer.as_bytes(),
            listener.as_bytes(),
            dialer_nonce,
            listener_nonce,
        ] {
            h.update(&(part.len() as u64).to_be_bytes());
            h.update(part);
        }
        *h.finalize().as_bytes()
    }

    /// Is `proof` what [`Cookie::prove`] gives for these inputs? (In
    /// constant time.)
    pub fn check(
        &self,
        proof: &[u8],
        side: Side,
        dialer: &str,
        listener: &str,
        dialer_nonce: &[u8],
        listener_nonce: &[u8],
    ) -> bool {
        let want = self.prove(side, dialer, listener, dialer_nonce, listener_nonce);
        proof.len() == want.len() && bool::from(want.as_slice().ct_eq(proof))
    }
}

/// A new random cookie secret: [`NEW_COOKIE_BYTES`] random bytes as hex
/// (what `~/.dsys-cookie` holds; also a run's cookie in memory or in
/// `DSYS_COOKIE`).
pub fn new_secret() -> String {
    let mut bytes = [0u8; NEW_COOKIE_BYTES];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random nonce.
pub fn nonce() -> [u8; NONCE_BYTES] {
    let mut n = [0u8; NONCE_BYTES];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dsys-cookie-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn cookie(secret: &str) -> Cookie {
        Cookie::from_secret(secret.as_bytes(), Source::Env).expect("a cookie")
    }

    #[test]
    fn proofs_bind_the_side_the_names_and_both_nonces() {
        let c = cookie("a-cluster-secret-of-some-length");
        let (a, b) = (nonce(), nonce());
        let p = c.prove(Side::Dialer, "l1", "l2", &a, &b);
        assert!(c.check(&p, Side::Dialer, "l1", "l2", &a, &b));
        assert!(
            !c.check(&p, Side::Listener, "l1", "l2", &a, &b),
            "reflected"
        );
        assert!(
            !c.check(&p, Side::Dialer, "l2", "l1", &a, &b),
            "other names"
        );
        assert!(!c.check(&p, Side::Dialer, "l1", "l3", &a, &b));
        assert!(
            !c.check(&p, Side::Dialer, "l1", "l2", &b, &a),
            "nonces swapped"
        );
        assert!(
            !c.check(&p, Side::Dialer, "l1", "l2", &a, &nonce()),
            "replayed"
        );
        assert!(!c.check(&p[..31], Side::Dialer, "l1", "l2", &a, &b));
        // Names cannot slide into each other.
        let q = c.prove(Side::Dialer, "l1l", "2", &a, &b);
        assert_ne!(p, q);
        // Another cookie proves nothing.
        let other = cookie("another-cluster-secret-entirely");
        assert!(!other.check(&p, Side::Dialer, "l1", "l2", &a, &b));
    }

    #[test]
    fn the_cookie_is_found_in_order_and_made_once_with_mode_0600() {
        let d = dir("resolve");
        let (cwd, home) = (d.join("cwd"), d.join("home"));
        std::fs::create_dir_all(&cwd).expect("cwd");
        std::fs::create_dir_all(&home).expect("home");
        // Nothing anywhere: ~/.dsys-cookie is made, private.
        let made = Cookie::resolve_with(None, None, &cwd, Some(&home)).expect("made");
        assert!(matches!(made.source, Source::Created(_)));
        let file = home.join(FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("made").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Next time the same one is read.
        let again = Cookie::resolve_with(None, None, &cwd, Some(&home)).expect("read");
        assert_eq!(again.key, made.key);
        assert!(matches!(again.source, Source::File(_)));
        // ./.dsys-cookie comes before ~/, the environment before both, a
        // given file before everything.
        write_private(&cwd.join(FILE), "a-secret-in-the-working-dir");
        let here = Cookie::resolve_with(None, None, &cwd, Some(&home)).expect("here");
        assert_eq!(here.key, cookie("a-secret-in-the-working-dir").key);
        let env = Cookie::resolve_with(
            None,
            Some(b"a-secret-from-the-environment".to_vec()),
            &cwd,
            Some(&home),
        )
        .expect("env");
        assert_eq!(env.source, Source::Env);
        let given = d.join("given");
        write_private(&given, "  a-secret-in-a-given-file \n");
        let g = Cookie::resolve_with(Some(&given), Some(b"x".to_vec()), &cwd, Some(&home))
            .expect("given");
        assert_eq!(g.key, cookie("a-secret-in-a-given-file").key);
    }

    fn write_private(path: &Path, text: &str) {
        std::fs::write(path, text).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }

    #[test]
    fn short_readable_and_missing_cookies_are_refused_naming_the_file() {
        let d = dir("bad");
        let short = d.join("short");
        write_private(&short, "tooshort");
        let e = Cookie::read(&short).expect_err("short").to_string();
        assert!(e.contains("short") && e.contains("8 bytes"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = d.join("open");
            std::fs::write(&open, "a-long-enough-secret-here").expect("write");
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = Cookie::read(&open).expect_err("readable").to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
        let e = Cookie::read(&d.join("nowhere"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("nowhere"), "{e}");
        let e = Cookie::resolve_with(None, None, &d, None)
            .expect_err("no home")
            .to_string();
        assert!(e.contains("--cookie"), "{e}");
        // The secret never shows in Debug.
        let c = cookie("a-cluster-secret-of-some-length");
        assert!(!format!("{c:?}").contains("secret-of"));
    }

    #[test]
    fn nodes_starting_at_once_all_get_the_one_cookie_made() {
        let d = dir("race");
        let path = d.join(FILE);
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || Cookie::create(&p).map(|c| c.key))
            })
            .collect();
        let keys: Vec<[u8; 32]> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("thread")
                    .expect("a cookie, never a half-written one")
            })
            .collect();
        assert!(keys.iter().all(|k| *k == keys[0]), "one cookie for all");
        let left: Vec<_> = std::fs::read_dir(&d).expect("dir").flatten().collect();
        assert_eq!(left.len(), 1, "no temporary files left: {left:?}");
    }
}
