//! Simulator campaigns for the token ring: many seeds, each with its own
//! random faults (crashes, restarts, loss, duplication, latency,
//! partitions). On every seed the checker must find mutual exclusion intact,
//! and once the faults have stopped every lock must have been granted. A
//! failing seed is reported with the `dsys sim tokenring ...` command that
//! replays it.

use dsys::registry::parse_args;
use dsys::sim::campaign;
use dsys::tokenring::simulate::{SimArgs, judge, scenario, simulate};

fn args(a: &[&str]) -> SimArgs {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    parse_args("sim", "tokenring", &a).expect("valid arguments")
}

#[test]
fn smoke_one_seed_without_faults() {
    let s = simulate(&args(&["--nodes", "5", "--duration", "10s"])).unwrap();
    assert!(s.report.safe());
    assert!(s.report.pending.is_empty());
    assert_eq!(s.report.regenerations, 0);
    assert_eq!(s.report.entries.len(), 5, "every node entered");
}

/// 1,200 seeds of random faults: mutual exclusion on every one, every lock
/// granted once the faults are over.
#[test]
fn campaign_1200_seeds_with_crashes_restarts_loss_duplication_and_partitions() {
    let r = campaign::run("tokenring", 0..1200, scenario, judge);
    assert!(r.passed(), "{r}");
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    let r = campaign::run("tokenring", 1200..6200, scenario, judge);
    assert!(r.passed(), "{r}");
}
