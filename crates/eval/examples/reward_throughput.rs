//! Reward throughput on a shared machine, one thread, all 13 functions over every oracle reward row (both
//! schemas), with and without the solution cache.
//!
//! "cached" scores through a [`Scorer`], which parses each distinct solution once and keeps it: over the passes
//! every solution is parsed once and then reused, as GRPO reuses it for the G completions of one prompt (with
//! G = 8 a solution is parsed once per 8 cases; here once per run). "uncached" parses the solution again for
//! every case. The completion is always gated, parsed and scored anew.
//!
//! How it copes with a loaded machine: the rows are timed in chunks of 32, and each chunk's fastest time over all
//! passes counts (a chunk takes well under a millisecond, so most of its passes run without being preempted).
//! The figure is the throughput of an undisturbed core; the same harness measures every build compared. Inputs
//! go through `black_box` and every score feeds a checksum, so no work can be skipped across passes.
//!
//! Run: `cargo run --release -p sgvlm-eval --example reward_throughput [passes]` (default 200).

use sgvlm_eval::rewards::{score, RewardConfig, Scorer};
use sgvlm_graph::Schema;
use sgvlm_testdata::best_chunk_throughput;
use std::hint::black_box;

fn rows(file: &str) -> Vec<(String, String)> {
    let text = sgvlm_testdata::oracle_text(file);
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["completion"].as_str().unwrap().to_string(), v["solution"].as_str().unwrap().to_string())
        })
        .collect()
}

fn main() {
    let passes = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let cfg = RewardConfig::default();
    for (file, schema) in [("rewards_triplet.jsonl", Schema::Triplet), ("rewards_ag.jsonl", Schema::Ag)] {
        let rows = rows(file);
        let mut scorer = Scorer::new(schema, cfg.clone());
        let mut acc = 0.0;
        let cached = best_chunk_throughput(&rows, passes, |rows| {
            for (c, s) in rows {
                acc += scorer.score(black_box(c), black_box(s)).iter().sum::<f64>();
            }
        });
        let uncached = best_chunk_throughput(&rows, passes, |rows| {
            for (c, s) in rows {
                acc += score(black_box(c), black_box(s), schema, &cfg).iter().sum::<f64>();
            }
        });
        println!("{}: cached {cached:.0} cases/s, uncached {uncached:.0} cases/s (checksum {acc:.3})", schema.as_str());
    }
}
