//! Free loopback ports for local clusters, benchmarks and tests.
//!
//! A port the kernel picks (`bind(":0")`) comes from its ephemeral range,
//! the same range it hands to outgoing connections: between our releasing
//! such a port and a node binding it, any `connect` on the machine may take
//! it as its local port, and the node then fails with "address in use".
//! Ports below that range are never given out by the kernel, so they stay
//! free until someone binds them on purpose.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// Candidate ports: above the well-known and common service ports, below
/// Linux's default ephemeral range (32768–60999).
const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A port on 127.0.0.1 that nothing is bound to right now, outside the
/// kernel's ephemeral range. Successive calls in one process return
/// different ports; processes start at different places (their pid and the
/// time), so two of them picking at once rarely meet, and a port already
/// bound is skipped.
pub fn free_loopback_port() -> std::io::Result<u16> {
    for _ in 0..COUNT {
        let port = FIRST + next_offset() % COUNT;
        let port = u16::try_from(port).unwrap_or(u16::MAX);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // Every candidate is taken: let the kernel choose.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn next_offset() -> u32 {
    let mut cur = NEXT.load(Ordering::Relaxed);
    loop {
        let start = if cur == u32::MAX { seed() } else { cur };
        let next = start.wrapping_add(1) % COUNT;
        match NEXT.compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return start,
            Err(seen) => cur = seen,
        }
    }
}

fn seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Spread pids apart: consecutive pids start ~100 ports apart.
    (std::process::id().wrapping_mul(97) ^ (nanos >> 10)) % COUNT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let p = free_loopback_port().expect("a port");
            assert!((20_000..32_000).contains(&p), "{p}");
            assert!(seen.insert(p), "{p} twice");
            assert!(TcpListener::bind(("127.0.0.1", p)).is_ok());
        }
    }
}
