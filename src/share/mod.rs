//! `dsys share`: peer-to-peer file sharing with a tracker. Each peer
//! shares a directory; the tracker knows who has what; a download takes
//! pieces from the best peers at once (latency + 10 × load), checks every
//! piece against its BLAKE3 hash, and resumes after any stop.
//!
//! * `hash`     — file and piece hashes on BLAKE3's tree.
//! * `names`    — file and peer names: what is refused, how they are printed.
//! * `files`    — a peer's directory: scans, what is not shared.
//! * `partial`  — partial downloads: records, the lock, room on the disk.
//! * `latency`  — the `--latency-file` table.
//! * `proof`    — a peer's token, and its proof to the tracker's call back.
//! * `tracker`  — `dsys share tracker`: verified peers, bounded state.
//! * `serve`    — a peer serving pieces, counting its load.
//! * `client`   — connections to the tracker and to peers.
//! * `versions` — the contents a name has on the network, picked by hash.
//! * `schedule` — which piece from which source, what is retried, when to
//!   give up: a pure type the download's workers consult.
//! * `download` — choosing sources, fetching, checking, resuming.
//! * `peer`     — `dsys share peer DIR` and its commands.
//! * `bench`    — `dsys bench share`: against a plain TCP copy.

pub mod bench;
pub mod client;
pub mod download;
pub mod files;
pub mod hash;
pub mod latency;
pub mod names;
pub mod partial;
pub mod peer;
pub mod proof;
pub mod schedule;
pub mod serve;
pub mod tracker;
pub mod versions;

pub mod pb {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("dsys.share.v1");
}

use clap::{Args, Subcommand};

use crate::cli::Outcome;
use crate::tool::{Algorithm, Run, Tool};

#[derive(Args, Debug)]
pub struct ShareArgs {
    #[command(subcommand)]
    pub tool: ShareTool,
}

#[derive(Subcommand, Debug)]
pub enum ShareTool {
    /// The tracker: which peer has which file
    Tracker(tracker::TrackerArgs),
    /// A peer sharing DIR, with commands to find and download files
    Peer(peer::PeerArgs),
    /// (for `dsys bench share`) send a file over plain TCP
    #[command(hide = true)]
    RawSend(bench::RawSendArgs),
}

impl Run for ShareArgs {
    fn run(self) -> Outcome {
        match self.tool {
            ShareTool::Tracker(a) => a.run(),
            ShareTool::Peer(a) => a.run(),
            ShareTool::RawSend(a) => a.run(),
        }
    }
}

/// `1 file`, `3 files`.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// File sharing on the command line (`main.rs` lists it).
pub struct ShareAlgorithm;

impl Algorithm for ShareAlgorithm {
    fn name(&self) -> &'static str {
        "share"
    }
    fn about(&self) -> &'static str {
        "Peer-to-peer file sharing with a tracker: checked pieces from several peers, resume"
    }
    fn examples(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("dsys share tracker", "the tracker on 127.0.0.1:7300"),
            (
                "dsys share peer DIR",
                "share DIR; then find FILE, download FILE",
            ),
        ]
    }
    fn node(&self) -> Option<Tool> {
        Some(Tool::of::<ShareArgs>(self.about()))
    }
    fn bench(&self) -> Option<Tool> {
        Some(Tool::of::<bench::BenchArgs>(
            "A 1 GiB file from one peer and from three, against a plain TCP copy",
        ))
    }
}
