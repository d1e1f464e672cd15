//! Simulator campaigns for gossip: many seeds, each with its own topology,
//! network and faults (loss, duplication, crash/restart, partitions that
//! heal). After the faults end and a bounded number of anti-entropy rounds,
//! every word must be at every live node.

use dsys::gossip::simulate::{SimArgs, judge, scenario, simulate};
use dsys::registry::parse_args;
use dsys::sim::campaign;

fn args(a: &[&str]) -> SimArgs {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    parse_args("sim", "gossip", &a).expect("valid arguments")
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
    assert!(s.words > 1500, "{}", s.words);
    assert!(s.lost.is_empty(), "{:?}", s.lost.len());
    assert_eq!(s.died_with_node, 0);
}
