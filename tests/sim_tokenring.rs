//! Simulator campaigns for the token ring: many seeds, each with its own
//! random faults (crashes, restarts, loss, duplication, latency,
//! partitions). On every seed the checker must find mutual exclusion intact,
//! and once the faults have stopped every lock must have been granted. A
//! failing seed is reported with the `dsys sim tokenring ...` command that
//! replays it.

use dsys::sim::campaign;
use dsys::tokenring::simulate::{SimArgs, judge, scenario, simulate};

fn args(a: &[&str]) -> SimArgs {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    dsys::scenario::sim::parse::<SimArgs>(&a).expect("valid arguments")
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

/// Issue 8.1: a ring change while a node of the old ring holds the
/// critical section. Machines l1..l5; the ring is l1 -> l2 -> l3 -> l1 with
/// l4 and l5 outside; l3 restarts with next l4 and l4 starts a new ring.
/// With votes from a majority of each ring view, both rings could hold a
/// lease at once (6 of these 8 seeds did); votes from every machine of the
/// file keep one holder at a time.
#[test]
fn a_ring_change_during_a_held_section_keeps_one_holder() {
    for seed in 1..=8 {
        let seed = seed.to_string();
        let s = simulate(&args(&[
            "--nodes",
            "5",
            "--seed",
            &seed,
            "--next",
            "l3=l1,l5=l1",
            "--rewire",
            "l3@5s:l4",
            "--start",
            "l4@6800ms",
            "--duration",
            "15s",
            "--hold",
            "2s..4s",
            "--settle",
            "30s",
        ]))
        .unwrap();
        assert!(s.report.safe(), "seed {seed}: {:?}", s.report.violations);
        assert!(
            s.report.pending.is_empty(),
            "seed {seed}: {:?}",
            s.report.pending
        );
        assert!(s.report.total_entries() > 0, "seed {seed}");
    }
}

/// Issue 8.2: a holder paused (SIGSTOP) past its lease logs cs_lost with
/// the lease end; the next node enters after that end, and the checker,
/// counting the paused node's interval to its lease end, finds no overlap.
#[test]
fn a_paused_holder_loses_the_section_at_its_lease_end() {
    let mut paused_holders = 0;
    for seed in 1..=10 {
        let seed = seed.to_string();
        let s = simulate(&args(&[
            "--nodes",
            "3",
            "--seed",
            &seed,
            "--hold",
            "3s",
            "--pause",
            "l2@4s-9s",
            "--duration",
            "12s",
        ]))
        .unwrap();
        assert!(s.report.safe(), "seed {seed}: {:?}", s.report.violations);
        for (node, _, late) in &s.report.lost {
            assert_eq!(node, "l2", "seed {seed}: only the paused node loses");
            assert!(*late > 0 && *late <= 5_000_000, "seed {seed}: late {late}");
            paused_holders += 1;
        }
    }
    assert!(
        paused_holders > 0,
        "no seed paused the holder: the test tests nothing"
    );
}
