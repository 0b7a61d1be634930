//! All 13 reward functions over every oracle reward row (both schemas), on one thread.
//! Run: `cargo bench -p sgvlm-eval --bench rewards`; throughput is reported in cases (rows) per second.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sgvlm_eval::rewards::{score, RewardConfig, Scorer};
use sgvlm_graph::Schema;

fn rows(file: &str) -> Vec<(String, String)> {
    let text = sgvlm_testdata::oracle_text(file);
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (v["completion"].as_str().unwrap().to_string(), v["solution"].as_str().unwrap().to_string())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cfg = RewardConfig::default();
    let mut g = c.benchmark_group("rewards_13_functions");
    for (file, schema) in [("rewards_triplet.jsonl", Schema::Triplet), ("rewards_ag.jsonl", Schema::Ag)] {
        let rows = rows(file);
        g.throughput(Throughput::Elements(rows.len() as u64));
        let mut scorer = Scorer::new(schema, cfg.clone());
        g.bench_function(format!("{}_cached_solutions", schema.as_str()), |b| {
            b.iter(|| {
                let mut acc = 0.0;
                for (comp, sol) in &rows {
                    acc += scorer.score(black_box(comp), black_box(sol))[0];
                }
                acc
            })
        });
        g.bench_function(schema.as_str(), |b| {
            b.iter(|| {
                let mut acc = 0.0;
                for (comp, sol) in &rows {
                    acc += score(black_box(comp), black_box(sol), schema, &cfg)[0];
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
