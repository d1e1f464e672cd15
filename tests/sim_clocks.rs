//! The clock model in the simulator: the Lamport rules hold over many
//! seeded runs of every shape, the same seed gives the same logs, and the
//! report on a known small run has the right numbers and real SVG figures.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{run, temp_dir};
use dsys::check::check;
use dsys::clocks::check::ClocksCheck;
use dsys::clocks::events::Event;
use dsys::clocks::model::{Draw, parse_rates};
use dsys::clocks::simulate::simulate;
use dsys::events::Entry;

#[test]
fn every_seeded_run_keeps_the_lamport_rules_and_its_rate() {
    let shapes = [
        (3, "1..6", Draw::Range(10)),
        (3, "1,6", Draw::Range(4)),
        (2, "1..3", Draw::Internal(0.0)),
        (5, "1..6", Draw::Range(3)),
        (4, "2..5", Draw::Internal(0.5)),
    ];
    let mut receives = 0;
    for seed in 0..300u64 {
        let (machines, rates, draw) = &shapes[seed as usize % shapes.len()];
        let rates = parse_rates(rates).unwrap();
        let duration = Duration::from_secs(10 + seed % 20);
        let (_, records) = simulate(
            *machines,
            &rates,
            *draw,
            duration,
            Duration::from_millis(1),
            seed,
        );
        let report = check::<ClocksCheck>(&records);
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_eq!(report.machines, *machines as usize, "seed {seed}");
        receives += report.receives;
        // Every machine ticked exactly rate × duration times.
        let mut rate_of = std::collections::BTreeMap::new();
        let mut ticks = std::collections::BTreeMap::<String, u64>::new();
        for r in &records {
            match &r.entry {
                Entry::Algo(Event::Setup { rate, .. }) => {
                    rate_of.insert(r.node.clone(), *rate);
                }
                Entry::Algo(Event::Tick { .. }) => *ticks.entry(r.node.clone()).or_default() += 1,
                _ => {}
            }
        }
        for (node, rate) in rate_of {
            assert_eq!(
                ticks.get(&node).copied().unwrap_or(0),
                rate as u64 * duration.as_secs(),
                "seed {seed}: {node} at {rate}/s"
            );
        }
    }
    assert!(receives > 10_000, "the runs exchanged messages: {receives}");
}

#[test]
fn a_tampered_log_fails_the_check() {
    let (_, mut records) = simulate(
        3,
        &parse_rates("1..6").unwrap(),
        Draw::Range(10),
        Duration::from_secs(20),
        Duration::from_millis(1),
        3,
    );
    let i = records
        .iter()
        .position(|r| matches!(r.entry, Entry::Algo(Event::Receive { .. })))
        .expect("some receive");
    if let Entry::Algo(Event::Receive { clock, .. }) = &mut records[i].entry {
        *clock += 1;
    }
    let report = check::<ClocksCheck>(&records);
    assert!(!report.violations.is_empty());
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for run in ["run-1", "run-2"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(run))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push((
                format!("{run}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn the_same_seed_gives_the_same_logs_and_a_report_with_figures() {
    let dir = temp_dir("clocks-sim");
    let args = |out: &str, seed: &str| {
        let (code, stdout, stderr) = run(
            &[
                "clocks",
                "sim",
                "--runs",
                "2",
                "--duration",
                "30s",
                "--seed",
                seed,
                "--out",
                out,
            ],
            &dir,
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        stdout
    };
    let out = args("a", "7");
    assert!(out.contains("run-1: l1 "), "{out}");
    assert!(out.contains("report: a/report.md"), "{out}");
    args("b", "7");
    args("c", "8");
    let (a, b, c) = (
        files(&dir.join("a")),
        files(&dir.join("b")),
        files(&dir.join("c")),
    );
    assert_eq!(a.len(), 6 * 2, "a .jsonl and a .log per machine per run");
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, another run");
    let report = std::fs::read_to_string(dir.join("a/report.md")).unwrap();
    for k in ["run-1", "run-2"] {
        for fig in ["clock", "queue", "jumps", "drift"] {
            let name = format!("{k}-{fig}.svg");
            assert!(report.contains(&format!("]({name})")), "{name} linked");
            let svg = std::fs::read_to_string(dir.join("a").join(&name)).unwrap();
            let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
        }
    }
    assert!(report.contains("## Comparison across runs"));
    // The report (but for the folder it names) and its figures are the
    // same bytes too.
    for f in ["report.md", "run-1-jumps.svg", "run-2-clock.svg"] {
        let read = |d: &str| {
            std::fs::read_to_string(dir.join(d).join(f))
                .unwrap()
                .replace(&format!("from `{d}`"), "from DIR")
        };
        assert!(
            read("a") == read("b"),
            "{f} differs between two runs of one seed"
        );
    }
    // `dsys sim clocks` is the same command.
    let (code, _, err) = run(
        &[
            "sim",
            "clocks",
            "--runs",
            "1",
            "--duration",
            "5s",
            "--out",
            "d",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("d/run-1/l3.jsonl").exists());
}

/// Two machines by hand: a (1/s) and b (3/s); b sends a its clock on each
/// of its 3 ticks in the first second, a receives one per tick.
fn known_run(dir: &Path) {
    let run = dir.join("run-1");
    std::fs::create_dir_all(&run).unwrap();
    let mut a = Vec::new();
    let mut b = Vec::new();
    let line = |v: &mut Vec<String>, t: f64, node: &str, rest: &str| {
        v.push(format!(
            "{{\"t_us\":{},\"node\":\"{node}\",{rest}}}",
            (t * 1e6) as u64
        ))
    };
    let setup = |rate, other| {
        format!(
            "\"event\":\"setup\",\"rate\":{rate},\"event_range\":10,\"internal_prob\":0.7,\"machines\":[\"{other}\"]"
        )
    };
    line(&mut a, 0.0, "a", &setup(1, "b"));
    line(&mut b, 0.0, "b", &setup(3, "a"));
    for k in 1..=3u64 {
        let t = k as f64 / 3.0;
        line(
            &mut b,
            t,
            "b",
            &format!("\"event\":\"tick\",\"n\":{k},\"queue_len\":0,\"clock\":{k}"),
        );
        line(
            &mut b,
            t,
            "b",
            &format!("\"event\":\"send\",\"to\":\"a\",\"clock\":{k}"),
        );
        line(
            &mut a,
            t + 0.001,
            "a",
            &format!("\"event\":\"arrive\",\"from\":\"b\",\"msg_clock\":{k},\"queue_len\":{k}"),
        );
    }
    // a's ticks at 1 s, 2 s, 3 s take 1, 2, 3: clocks 2, 3, 4 (jumps 2, 1, 1).
    for k in 1..=3u64 {
        let t = k as f64;
        let q = 3 - k;
        line(
            &mut a,
            t + 0.01,
            "a",
            &format!(
                "\"event\":\"tick\",\"n\":{k},\"queue_len\":{q},\"clock\":{}",
                k + 1
            ),
        );
        line(
            &mut a,
            t + 0.01,
            "a",
            &format!(
                "\"event\":\"receive\",\"from\":\"b\",\"msg_clock\":{k},\"queue_len\":{q},\"clock\":{}",
                k + 1
            ),
        );
    }
    // b goes on with internal events until 3 s.
    for k in 4..=9u64 {
        let t = k as f64 / 3.0;
        line(
            &mut b,
            t,
            "b",
            &format!("\"event\":\"tick\",\"n\":{k},\"queue_len\":0,\"clock\":{k}"),
        );
        line(
            &mut b,
            t,
            "b",
            &format!("\"event\":\"internal\",\"clock\":{k}"),
        );
    }
    std::fs::write(run.join("a.jsonl"), a.join("\n") + "\n").unwrap();
    std::fs::write(run.join("b.jsonl"), b.join("\n") + "\n").unwrap();
}

#[test]
fn the_report_on_a_known_run_states_its_numbers() {
    let dir = temp_dir("clocks-report");
    known_run(&dir);
    let (code, out, err) = run(&["clocks", "report", "."], &dir);
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // machine | rate | ticks | sends | messages | receives | internal | mean
    // jump | max jump | max queue | final queue | ...
    assert!(
        md.contains("| a | 1 | 3 | 0 | 0 | 3 | 0 | 1.33 | 2 | 3 | 0 |"),
        "{md}"
    );
    assert!(
        md.contains("| b | 3 | 9 | 3 | 3 | 0 | 6 | 1.00 | 1 | 0 | 0 |"),
        "{md}"
    );
    // When b stops (3.0 s), a's last tick (2.01 s) left it at 3; b is at 9.
    assert!(
        md.contains("Final drift: **6** at 3.0 s (clocks: a 3, b 9)"),
        "{md}"
    );
    assert!(
        md.contains("Lamport check (`dsys check clocks`): every receive set max + 1"),
        "{md}"
    );
    assert!(md.contains("The slowest machine (a, 1 tick/s)"), "{md}");
    let svg = std::fs::read_to_string(dir.join("run-1-jumps.svg")).unwrap();
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(
        svg.contains("a (1/s)") && svg.contains("b (3/s)"),
        "both machines drawn"
    );
    // The checker agrees.
    let (code, out, _) = run(&["check", "clocks", "run-1/a.jsonl", "run-1/b.jsonl"], &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: OK"), "{out}");
}

#[test]
fn a_sweep_tabulates_every_cell_and_bad_input_is_named() {
    let dir = temp_dir("clocks-sweep");
    let (code, out, err) = run(
        &[
            "clocks",
            "sweep",
            "--runs",
            "2",
            "--duration",
            "20s",
            "--rate-sets",
            "1..6",
            "3..3",
            "--internal-probs",
            "0.7,0",
            "--out",
            "s",
        ],
        &dir,
    );
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(dir.join("s/sweep.md")).unwrap();
    for row in [
        "| 1..6 | 5 | 70% |",
        "| 1..6 | 5 | 0% |",
        "| 3..3 | 0 | 70% |",
        "| 3..3 | 0 | 0% |",
    ] {
        assert!(md.contains(row), "{row} in {md}");
    }
    for f in ["sweep-jump.svg", "sweep-drift.svg", "sweep-growth.svg"] {
        roxmltree::Document::parse(&std::fs::read_to_string(dir.join("s").join(f)).unwrap())
            .unwrap();
    }
    let (code, _, err) = run(&["clocks", "report", "nowhere"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("nowhere"), "{err}");
    let (code, _, err) = run(&["clocks", "sim", "--rates", "6..1"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("empty"), "{err}");
    let (code, _, err) = run(&["clocks", "report", "s"], &dir);
    assert_eq!(code, 2, "a sweep folder holds no logs");
    assert!(err.contains("no event logs"), "{err}");
}
