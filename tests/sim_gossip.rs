//! Simulator campaigns for gossip: many seeds, each with its own topology,
//! network and faults (loss, duplication, crash/restart, partitions that
//! heal). After the faults end and a bounded number of anti-entropy rounds,
//! every word must be at every live node.

use dsys::gossip::simulate::{SimArgs, judge, scenario, simulate};
use dsys::sim::campaign;

fn args(a: &[&str]) -> SimArgs {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    dsys::scenario::sim::parse::<SimArgs>(&a).expect("valid arguments")
}

#[test]
fn campaign_1000_seeds_with_loss_crashes_and_partitions() {
    let r = campaign::run("gossip", 0..1000, scenario, judge);
    assert!(r.passed(), "{r}");
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    let r = campaign::run("gossip", 1000..6000, scenario, judge);
    assert!(r.passed(), "{r}");
}

/// The campaign can fail: without anti-entropy, lossy rumor mongering
/// misses words, and the judge says so.
#[test]
fn without_anti_entropy_words_go_missing_and_the_judge_notices() {
    let a: Vec<String> = [
        "--nodes",
        "10",
        "--topology",
        "line",
        "--fanout",
        "1",
        "--k",
        "1",
        "--loss",
        "0.1",
        "--anti-entropy-interval",
        "1h",
        "--duration",
        "5s",
        "--rate",
        "20",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let err = judge(&a).expect_err("words must go missing");
    assert!(err.contains("missing at some live node"), "{err}");
}

/// The benchmark setting (Gossip Glomers 3d/3e), as a check that the design
/// still reaches every node under the partition nemesis.
#[test]
fn glomers_setting_loses_nothing_under_the_partition_nemesis() {
    let s = simulate(&args(&[
        "--nodes",
        "25",
        "--latency",
        "100ms",
        "--seed",
        "7",
        "--partition-nemesis",
    ]))
    .unwrap();
    assert!(s.report.words > 1500, "{}", s.report.words);
    assert!(s.report.lost.is_empty(), "{:?}", s.report.lost.len());
    assert_eq!(s.report.died_with_node, 0);
}

/// A node that missed more than the transport's message limit of words
/// still catches up: repairs are cut into messages under the limit (the
/// simulator refuses anything over it, as the real transport does).
#[test]
fn a_node_restarted_after_more_than_4_mib_of_words_catches_up() {
    use std::time::Duration;

    use dsys::config::{Cluster, NodeId};
    use dsys::gossip::{Cmd, Gossip, Params};
    use dsys::sim::{NetModel, Sim};

    let params = Params {
        generate: false,
        anti_entropy: Duration::from_millis(500),
        ..Params::default()
    };
    let all = |me: NodeId| (0..3).map(NodeId).filter(move |&n| n != me);
    let mut sim = Sim::new(
        Cluster::loopback(3, 50051),
        NetModel::default(),
        9,
        move |me, rng, now| {
            Gossip::new(
                me,
                all(me),
                now.as_micros() as u64 + 1,
                params.clone(),
                dsys::words::all(),
                rng,
            )
        },
    );
    let (l1, l3) = (NodeId(0), NodeId(2));
    sim.crash_at(Duration::from_millis(10), l3);
    // 25,000 words of 200 bytes: 5 MB the others learn while l3 is down.
    let word = "w".repeat(200);
    for i in 0..25_000u64 {
        sim.command_at(
            Duration::from_millis(20) + Duration::from_micros(i * 40),
            l1,
            Cmd::Say(word.clone()),
        );
    }
    sim.restart_at(Duration::from_secs(3), l3);
    sim.run_until(Duration::from_secs(15), |_, _| {});
    assert_eq!(sim.traffic.too_large, 0, "no message over the limit");
    assert!(sim.traffic.largest <= dsys::net::MAX_MESSAGE_BYTES);
    let knows = |n: NodeId| sim.machine(n).map_or(0, |m| m.word_count());
    assert_eq!(knows(NodeId(1)), 25_000);
    assert_eq!(knows(l3), 25_000, "the restarted node caught up");
}
