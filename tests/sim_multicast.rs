//! Simulator campaigns for totally ordered multicast: many seeds, each with
//! its own latency (messages overtake each other across links), duplication,
//! crash/restart of members and partitions that heal. On every seed every
//! node life delivers a contiguous piece of one total order, nothing is
//! lost, and once the faults are over every live node reaches the same end.

use std::time::Duration;

use dsys::multicast::simulate::{SimOptions, run};
use dsys::node::NodeId;
use dsys::sim::{Latency, NetModel};
use dsys::tokenring::simulate::Partition;
use rand::{Rng, SeedableRng};

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn faulty(seed: u64) -> SimOptions {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let nodes = r.random_range(2..=5);
    let mut o = SimOptions::new(nodes, seed, Duration::from_secs(4));
    o.rate = r.random_range(5.0..40.0);
    o.net = NetModel {
        latency: match r.random_range(0..3) {
            0 => Latency::Constant(ms(r.random_range(1..10))),
            1 => Latency::Uniform(ms(0), ms(r.random_range(1..30))),
            _ => Latency::Exponential {
                min: ms(0),
                mean: ms(r.random_range(1..15)),
            },
        },
        loss: 0.0,
        duplicate: [0.0, 0.01][r.random_range(0..2)],
        reorder: false,
    };
    for _ in 0..r.random_range(0..=2) {
        let node = NodeId(r.random_range(0..nodes as u32));
        let at = ms(r.random_range(200..3_500));
        if o.crashes.iter().any(|&(n, _)| n == node) {
            continue;
        }
        o.crashes.push((node, at));
        o.restarts.push((node, at + ms(r.random_range(50..1_500))));
    }
    if r.random_bool(0.4) {
        let cut = r.random_range(1..nodes as u32);
        let from = ms(r.random_range(0..3_500));
        o.partitions.push(Partition {
            side_a: (0..cut).map(NodeId).collect(),
            side_b: (cut..nodes as u32).map(NodeId).collect(),
            from,
            to: from + ms(r.random_range(50..2_000)),
        });
    }
    o
}

fn campaign(seeds: std::ops::Range<u64>) {
    let mut delivered = 0;
    for seed in seeds {
        let o = faulty(seed);
        let s = run(&o).expect("simulation runs");
        assert!(
            s.report.ok(),
            "seed {seed}: {} ({o:?})",
            s.report.problems[..s.report.problems.len().min(3)].join("; ")
        );
        assert!(
            s.behind.is_empty(),
            "seed {seed}: {:?} did not reach the common end ({o:?})\n{}",
            s.behind,
            s.status.join("\n")
        );
        delivered += s.delivered;
    }
    assert!(delivered > 0);
}

#[test]
fn campaign_1000_seeds_with_latency_crashes_restarts_and_partitions() {
    campaign(0..1000);
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    campaign(1000..6000);
}
