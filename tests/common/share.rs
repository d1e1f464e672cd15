//! What the `dsys share` end-to-end tests share: a tracker and peers on
//! loopback ports, each peer in its own directory under one root.

use std::path::PathBuf;

use super::{Proc, free_port, temp_dir};

/// `n` bytes of a fixed pseudo-random sequence (one per `seed`).
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub struct Net {
    pub root: PathBuf,
    pub tracker_port: u16,
}

impl Net {
    pub fn new(tag: &str) -> Net {
        Net {
            root: temp_dir(tag),
            tracker_port: free_port(),
        }
    }

    pub fn tracker_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tracker_port)
    }

    pub fn tracker(&self) -> Proc {
        self.tracker_with("2s")
    }

    /// A tracker that forgets a silent peer after `forget_after`.
    pub fn tracker_with(&self, forget_after: &str) -> Proc {
        let addr = self.tracker_addr();
        let t = Proc::spawn(
            "tracker",
            &[
                "share",
                "tracker",
                "--listen",
                &addr,
                "--forget-after",
                forget_after,
            ],
            &self.root,
        );
        t.expect("tracker on", 10);
        t
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.join(name);
        std::fs::create_dir_all(&d).expect("peer dir");
        d
    }

    /// A peer named `name` sharing `root/name`, on `port`.
    pub fn peer_on(&self, name: &str, port: u16, extra: &[&str]) -> Proc {
        self.dir(name);
        let (listen, tracker) = (format!("127.0.0.1:{port}"), self.tracker_addr());
        let mut args = vec![
            "share",
            "peer",
            name,
            "--listen",
            &listen,
            "--tracker",
            &tracker,
            "--heartbeat",
            "500ms",
            "--plain",
        ];
        args.extend_from_slice(extra);
        let p = Proc::spawn(name, &args, &self.root);
        p.expect(&format!("{name}: sharing"), 20);
        p
    }

    pub fn peer(&self, name: &str, extra: &[&str]) -> Proc {
        let p = self.peer_on(name, free_port(), extra);
        p.expect("registered with the tracker", 10);
        p
    }

    pub fn put(&self, peer: &str, file: &str, bytes: &[u8]) {
        std::fs::write(self.dir(peer).join(file), bytes).expect("write file");
    }

    pub fn read(&self, peer: &str, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.join(peer).join(file)).ok()
    }
}

/// The address a peer serves on, from its first line
/// (`NAME: sharing ... on ADDR; tracker ...`).
pub fn served_at(p: &Proc) -> String {
    p.lines()
        .iter()
        .find_map(|l| {
            l.contains(": sharing ")
                .then(|| l.split(" on ").nth(1))
                .flatten()
                .and_then(|r| r.split(';').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("{}: no address in {:?}", p.name, p.lines()))
}
