//! Simulator campaigns for gossip: many seeds, each with its own topology,
//! network and faults (loss, duplication, crash/restart, partitions that
//! heal). After the faults end and a bounded number of anti-entropy rounds,
//! every word must be at every live node.

use std::time::Duration;

use dsys::gossip::simulate::{SimOptions, run};
use dsys::gossip::topology::Topology;
use dsys::node::NodeId;
use dsys::sim::{Latency, NetModel};
use dsys::tokenring::simulate::Partition;
use rand::{Rng, SeedableRng};

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn faulty(seed: u64) -> SimOptions {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let topologies = [
        Topology::Line,
        Topology::Ring,
        Topology::Grid,
        Topology::Star,
        Topology::Tree4,
        Topology::Random,
        Topology::Full,
    ];
    let nodes = r.random_range(2..=10);
    let mut o = SimOptions::new(nodes, topologies[r.random_range(0..topologies.len())], seed);
    o.rate = 20.0;
    o.duration = Duration::from_secs(5);
    // Bounded: anti-entropy every 500ms, so 10s is 20 rounds.
    o.grace = Duration::from_secs(10);
    o.params.interval = ms(50);
    o.params.anti_entropy = ms(500);
    o.params.fanout = [None, Some(1), Some(2)][r.random_range(0..3)];
    o.params.k = r.random_range(1..=3);
    o.net = NetModel {
        latency: match r.random_range(0..3) {
            0 => Latency::Constant(ms(r.random_range(1..30))),
            1 => Latency::Uniform(ms(0), ms(r.random_range(1..50))),
            _ => Latency::Exponential {
                min: ms(1),
                mean: ms(r.random_range(1..20)),
            },
        },
        loss: [0.0, 0.02, 0.1][r.random_range(0..3)],
        duplicate: [0.0, 0.02][r.random_range(0..2)],
        reorder: false,
    };
    if r.random_bool(0.5) {
        let node = NodeId(r.random_range(0..nodes as u32));
        let at = ms(r.random_range(500..4_000));
        o.crashes.push((node, at));
        o.restarts.push((node, at + ms(r.random_range(100..2_000))));
    }
    if r.random_bool(0.5) {
        let cut = r.random_range(1..nodes as u32);
        let from = ms(r.random_range(0..4_000));
        o.partitions.push(Partition {
            side_a: (0..cut).map(NodeId).collect(),
            side_b: (cut..nodes as u32).map(NodeId).collect(),
            from,
            to: from + ms(r.random_range(100..3_000)),
        });
    }
    o
}

fn campaign(seeds: std::ops::Range<u64>) {
    let mut words = 0;
    for seed in seeds {
        let o = faulty(seed);
        let s = run(&o).expect("simulation runs");
        assert!(
            s.lost.is_empty(),
            "seed {seed}: {} word(s) missing at some live node, e.g. {:?} ({o:?})",
            s.lost.len(),
            s.lost[0]
        );
        words += s.words;
    }
    assert!(words > 0, "the generators made words");
}

#[test]
fn campaign_1000_seeds_with_loss_crashes_and_partitions() {
    campaign(0..1000);
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    campaign(1000..6000);
}

/// The benchmark setting of the issue (Gossip Glomers 3d/3e), as a check
/// that the design still reaches every node under the partition nemesis.
#[test]
fn glomers_setting_loses_nothing_under_the_partition_nemesis() {
    let mut o = SimOptions::new(25, Topology::Star, 7);
    o.net.latency = Latency::Constant(ms(100));
    o.partition_nemesis = true;
    let s = run(&o).unwrap();
    assert!(s.words > 1500, "{}", s.words);
    assert!(s.lost.is_empty(), "{:?}", s.lost.len());
    assert_eq!(s.died_with_node, 0);
}
