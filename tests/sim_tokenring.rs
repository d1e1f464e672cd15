//! Simulator campaigns for the token ring: many seeds, each with its own
//! random faults (crashes, restarts, loss, duplication, latency, partitions).
//! On every seed the checker must find mutual exclusion intact, and once the
//! faults have stopped every lock must have been granted.

use std::time::Duration;

use dsys::node::NodeId;
use dsys::sim::{Latency, NetModel};
use dsys::tokenring::simulate::{Partition, SimOptions, run};
use rand::{Rng, SeedableRng};

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// A seed's scenario: 3-6 nodes, random network, one or two crash/restart
/// pairs and sometimes a partition of a minority, all over by `duration`.
fn faulty(seed: u64) -> SimOptions {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let nodes = r.random_range(3..=6);
    let duration = Duration::from_secs(12);
    let mut o = SimOptions::new(nodes, seed, duration);
    o.net = NetModel {
        latency: match r.random_range(0..3) {
            0 => Latency::Constant(ms(r.random_range(1..5))),
            1 => Latency::Uniform(ms(0), ms(r.random_range(1..20))),
            _ => Latency::Exponential {
                min: ms(1),
                mean: ms(r.random_range(1..10)),
            },
        },
        loss: [0.0, 0.01, 0.05][r.random_range(0..3)],
        duplicate: [0.0, 0.01][r.random_range(0..2)],
        reorder: false,
    };
    o.timing.hop_delay = ms(r.random_range(0..20));
    for _ in 0..r.random_range(1..=2) {
        let node = NodeId(r.random_range(0..nodes as u32));
        let at = ms(r.random_range(1_000..8_000));
        o.crashes.push((node, at));
        o.restarts.push((node, at + ms(r.random_range(100..3_000))));
    }
    if r.random_bool(0.3) {
        let minority = (nodes - 1) / 2;
        let side_a: Vec<NodeId> = (0..minority as u32).map(NodeId).collect();
        let side_b: Vec<NodeId> = (minority as u32..nodes as u32).map(NodeId).collect();
        let from = ms(r.random_range(1_000..8_000));
        o.partitions.push(Partition {
            side_a,
            side_b,
            from,
            to: from + ms(r.random_range(500..3_000)),
        });
    }
    o
}

fn campaign(seeds: std::ops::Range<u64>) {
    let mut entries = 0;
    for seed in seeds {
        let o = faulty(seed);
        if std::env::var("DSYS_PROGRESS").is_ok() {
            eprintln!("seed {seed}");
        }
        let s = run(&o).expect("simulation runs");
        let r = &s.report;
        assert!(
            r.safe(),
            "seed {seed}: mutual exclusion violated: {} and {} ({o:?})",
            r.violations[0].0,
            r.violations[0].1
        );
        assert!(
            r.pending.is_empty(),
            "seed {seed}: locks never granted after faults stopped: {:?} ({o:?})",
            r.pending
        );
        let total: u64 = r.entries.values().sum();
        assert!(total > 0, "seed {seed}: nobody ever entered ({o:?})");
        entries += total;
    }
    assert!(entries > 0);
}

#[test]
fn smoke_one_seed_without_faults() {
    let o = SimOptions::new(5, 1, Duration::from_secs(10));
    let s = run(&o).unwrap();
    eprintln!(
        "hops {} entries {:?} regen {} msgs {} pending {:?}",
        s.hops, s.report.entries, s.report.regenerations, s.traffic.sent, s.report.pending
    );
    assert!(s.report.safe());
    assert!(s.report.pending.is_empty());
    assert_eq!(s.report.regenerations, 0);
    assert_eq!(s.report.entries.len(), 5, "every node entered");
}

/// 1,200 seeds of random faults: mutual exclusion on every one, every lock
/// granted once the faults are over.
#[test]
fn campaign_1200_seeds_with_crashes_restarts_loss_duplication_and_partitions() {
    campaign(0..1200);
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    campaign(1200..6200);
}
