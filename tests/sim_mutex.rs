//! Simulator campaigns for Ricart–Agrawala: many seeds, each with its own
//! random faults (crashes, restarts, loss, duplication, latency,
//! partitions, pauses), with and without permission reuse. On every seed:
//! never two nodes inside at once, entries in (timestamp, name) order among
//! concurrent requests (without reuse), and once the faults have stopped
//! every request granted. A failing seed comes with the `dsys sim mutex
//! ...` command that replays it.

use dsys::mutex::simulate::{SimArgs, judge, scenario, simulate};
use dsys::sim::campaign;

fn args(a: &[&str]) -> SimArgs {
    let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    dsys::scenario::sim::parse::<SimArgs>(&a).expect("valid arguments")
}

/// Without faults, every entry costs exactly 2(N-1) messages; with reuse
/// and one node asking alone, later entries cost none.
#[test]
fn messages_per_entry_are_2_n_minus_1_and_reuse_saves_them() {
    for n in [2u32, 3, 5] {
        let s = simulate(&args(&["--nodes", &n.to_string(), "--duration", "10s"])).unwrap();
        assert!(s.report.safe(), "{}", {
            use dsys::check::Report as _;
            s.report.render()
        });
        assert!(s.report.total_entries() > 10);
        assert_eq!(
            s.report.messages,
            2 * (n as u64 - 1) * s.report.total_entries(),
            "n={n}"
        );
    }
    let one = simulate(&args(&["--nodes", "1", "--duration", "2s"])).unwrap();
    assert_eq!(one.report.messages, 0);
    let reuse = simulate(&args(&[
        "--nodes",
        "5",
        "--duration",
        "10s",
        "--reuse-permissions",
    ]))
    .unwrap();
    assert!(reuse.report.safe());
    assert!(reuse.report.pending.is_empty());
    assert!(
        reuse.report.messages_per_entry() < 8.0,
        "reuse should save messages: {:.2}",
        reuse.report.messages_per_entry()
    );
}

/// A node crashed for good holds everyone up (the algorithm's known
/// limit); once it restarts, everyone goes on.
#[test]
fn a_crashed_node_holds_everyone_up_until_it_restarts() {
    let down = simulate(&args(&[
        "--nodes",
        "3",
        "--duration",
        "6s",
        "--crash",
        "l3@2s",
        "--settle",
        "5s",
    ]))
    .unwrap();
    assert!(down.report.safe());
    assert!(!down.report.pending.is_empty(), "requests wait for l3");
    let back = simulate(&args(&[
        "--nodes",
        "3",
        "--duration",
        "6s",
        "--crash",
        "l3@2s",
        "--restart",
        "l3@4s",
    ]))
    .unwrap();
    assert!(back.report.safe());
    assert!(back.report.pending.is_empty(), "{:?}", back.report.pending);
}

/// 1,200 seeds of random faults.
#[test]
fn campaign_1200_seeds_with_crashes_restarts_loss_partitions_and_pauses() {
    let r = campaign::run("mutex", 0..1200, scenario, judge);
    assert!(r.passed(), "{r}");
}

#[test]
#[ignore = "long: 5,000 more seeds"]
fn campaign_5000_more_seeds() {
    let r = campaign::run("mutex", 1200..6200, scenario, judge);
    assert!(r.passed(), "{r}");
}
