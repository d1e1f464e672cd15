//! The simulator's promise: the same seed gives byte-identical event
//! output, for every algorithm, through the real command line.

mod common;

use common::{run, temp_dir};

#[test]
fn the_same_seed_gives_byte_identical_events() {
    let dir = temp_dir("determinism");
    let runs: [(&str, &[&str]); 4] = [
        (
            "tokenring",
            &[
                "--nodes",
                "4",
                "--duration",
                "5s",
                "--loss",
                "0.02",
                "--crash",
                "l2@2s",
                "--restart",
                "l2@3s",
            ],
        ),
        (
            "gossip",
            &[
                "--nodes",
                "6",
                "--duration",
                "3s",
                "--rate",
                "20",
                "--loss",
                "0.05",
                "--crash",
                "l3@1s",
                "--restart",
                "l3@2s",
            ],
        ),
        (
            "multicast",
            &[
                "--nodes",
                "3",
                "--duration",
                "3s",
                "--loss",
                "0.01",
                "--partition",
                "l1|l2,l3@1s-2s",
            ],
        ),
        (
            "mutex",
            &[
                "--nodes",
                "4",
                "--duration",
                "3s",
                "--loss",
                "0.02",
                "--reuse-permissions",
                "--crash",
                "l2@1s",
                "--restart",
                "l2@2s",
            ],
        ),
    ];
    for (algo, extra) in runs {
        let mut files = Vec::new();
        for (i, seed) in ["11", "11", "12"].iter().enumerate() {
            let file = format!("{algo}-{i}.jsonl");
            let mut args = vec!["sim", algo, "--seed", seed, "--events", &file];
            args.extend_from_slice(extra);
            let (code, out, err) = run(&args, &dir);
            assert!(code == 0 || code == 1, "{algo}: {out}{err}");
            files.push(std::fs::read(dir.join(&file)).expect("events written"));
        }
        assert!(files[0].len() > 1000, "{algo}: events were written");
        assert!(
            files[0] == files[1],
            "{algo}: seed 11 twice gave different events"
        );
        assert!(
            files[0] != files[2],
            "{algo}: seeds 11 and 12 gave the same events"
        );
    }
}
