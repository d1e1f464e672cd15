//! How a peer proves to the tracker that it is the one serving at the
//! address it announced. Each peer makes a random 128-bit token at start
//! and sends it with its announces; the tracker calls the announced address
//! back with a fresh nonce, and only the process that made the token can
//! answer with the right proof. A forger who announces someone else's
//! address cannot know that peer's token (the tracker never shows tokens),
//! so its announce is refused and the address's real list stands.
//!
//! The proof is BLAKE3's keyed hash, keyed by the token stretched to 32
//! bytes (`derive_key`), of nonce ‖ name ‖ 0x00 ‖ addr: the zero byte
//! keeps a name and an address from sliding into each other (a name has no
//! control characters).

use rand::TryRngCore;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

/// A peer's secret for one run.
pub type Token = [u8; 16];
/// Bytes of a nonce the tracker sends.
pub const NONCE: usize = 16;
/// The most nonce bytes a peer hashes for anyone who asks; more is refused.
pub const MAX_NONCE: usize = 64;

const CONTEXT: &str = "dsys share token v1";

/// 16 bytes from the operating system's generator.
pub fn random16() -> Result<[u8; 16], String> {
    let mut b = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(b)
}

/// The proof the holder of `token`, named `name`, announcing `addr`, gives
/// for `nonce`.
pub fn prove(token: &Token, nonce: &[u8], name: &str, addr: &str) -> [u8; 32] {
    let key = blake3::derive_key(CONTEXT, token);
    let mut h = blake3::Hasher::new_keyed(&key);
    h.update(nonce);
    h.update(name.as_bytes());
    h.update(&[0]);
    h.update(addr.as_bytes());
    *h.finalize().as_bytes()
}

/// Is `got` the `expected` proof? In constant time: how long it takes says
/// nothing about how many bytes matched.
pub fn matches(expected: &[u8; 32], got: &[u8]) -> bool {
    got.len() == expected.len() && bool::from(expected.as_slice().ct_eq(got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_gives_the_proof_and_it_binds_nonce_name_and_addr() {
        let t = [7u8; 16];
        let n = [1u8; NONCE];
        let p = prove(&t, &n, "p1", "127.0.0.1:7301");
        assert!(matches(&p, &p));
        assert!(!matches(&p, &prove(&[8u8; 16], &n, "p1", "127.0.0.1:7301")));
        assert!(!matches(
            &p,
            &prove(&t, &[2u8; NONCE], "p1", "127.0.0.1:7301")
        ));
        assert!(!matches(&p, &prove(&t, &n, "p2", "127.0.0.1:7301")));
        assert!(!matches(&p, &prove(&t, &n, "p1", "127.0.0.1:7302")));
        // The separator: ("p1", "2...") is not ("p12", "...").
        assert!(!matches(
            &prove(&t, &n, "p1", "27.0.0.1:1"),
            &prove(&t, &n, "p12", "7.0.0.1:1")
        ));
        assert!(!matches(&p, &p[..31]));
        assert!(!matches(&p, &[]));
        assert_ne!(random16().expect("rng"), random16().expect("rng"));
    }
}
