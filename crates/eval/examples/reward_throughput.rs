//! Reward throughput on a shared machine: the best of 200 passes over every oracle reward row (one thread, all 13
//! functions), with and without the solution cache. The best pass is far less sensitive to other processes than
//! criterion's mean, which is what makes before/after comparisons possible on the 2 shared cores.
//!
//! Run: `cargo run --release -p sgvlm-eval --example reward_throughput`.

use sgvlm_eval::rewards::{score, RewardConfig, Scorer};
use sgvlm_graph::Schema;
use std::time::Instant;
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
    let cfg = RewardConfig::default();
    for (file, schema) in [("rewards_triplet.jsonl", Schema::Triplet), ("rewards_ag.jsonl", Schema::Ag)] {
        let rows = rows(file);
        let mut scorer = Scorer::new(schema, cfg.clone());
        let (mut best_c, mut best_u) = (f64::MAX, f64::MAX);
        let mut acc = 0.0;
        for _ in 0..200 {
            let t = Instant::now();
            for (c, s) in &rows {
                acc += scorer.score(c, s)[0];
            }
            best_c = best_c.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for (c, s) in &rows {
                acc += score(c, s, schema, &cfg)[0];
            }
            best_u = best_u.min(t.elapsed().as_secs_f64());
        }
        let n = rows.len() as f64;
        println!("{}: cached {:.0} cases/s, uncached {:.0} cases/s ({acc})", schema.as_str(), n / best_c, n / best_u);
    }
}
