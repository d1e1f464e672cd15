//! Simulator campaigns for totally ordered multicast: many seeds, each with
//! its own latency (messages overtake each other across links), loss (which
//! breaks a link, so nodes resend), duplication, crash/restart of members
//! and partitions that heal. On every seed every node life delivers a
//! contiguous piece of one total order, nothing is lost, and once the faults
//! are over every live node reaches the same end.

use dsys::multicast::simulate::{judge, scenario};
use dsys::sim::campaign;

#[test]
fn campaign_1000_seeds_with_latency_loss_crashes_restarts_and_partitions() {
    let r = campaign::run("multicast", 0..1000, scenario, judge);
    assert!(r.passed(), "{r}");
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    let r = campaign::run("multicast", 1000..6000, scenario, judge);
    assert!(r.passed(), "{r}");
}
