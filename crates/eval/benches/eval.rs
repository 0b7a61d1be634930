//! Evaluation throughput on one thread: strict PSG/PVSG evaluation over every row of `eval_triplet.jsonl` and AG
//! SGDET over every row of `eval_ag.jsonl` (parsing both texts included). Criterion reports rows/s.
//!
//! `cargo bench -p sgvlm-eval --bench eval`; the oracle folder is found as the tests find it (`SGVLM_SHARED`,
//! `../shared` beside the checkout, or `/work/shared`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sgvlm_eval::ag_sgdet::{self, AgConfig};
use sgvlm_eval::strict_eval::{self, TripletConfig};
use sgvlm_eval::EvalRecord;
use sgvlm_graph::eval_parse::{self, EvalGraph};

use sgvlm_testdata::shared_dir;

fn records(name: &str) -> Vec<EvalRecord> {
    let path = shared_dir().join("testdata/oracle").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split('\n').filter(|l| !l.trim().is_empty()).map(|l| EvalRecord::from_json_line(l).0).collect()
}

fn bench(c: &mut Criterion) {
    let triplet = records("eval_triplet.jsonl");
    let cfg = TripletConfig::default();
    let mut g = c.benchmark_group("strict_eval");
    g.throughput(Throughput::Elements(triplet.len() as u64));
    g.bench_function("oracle_rows", |b| {
        b.iter(|| {
            for r in &triplet {
                black_box(strict_eval::evaluate_record(black_box(r), &cfg).ok());
            }
        })
    });
    // The matching and counting alone, on pre-parsed graphs of the rows whose prediction is valid.
    let parsed: Vec<(EvalGraph, EvalGraph)> = triplet
        .iter()
        .filter_map(|r| {
            let p = eval_parse::parse(r.pred.as_deref()?)?;
            Some((eval_parse::parse(r.gt.as_deref()?).unwrap_or_default(), p))
        })
        .collect();
    g.throughput(Throughput::Elements(parsed.len() as u64));
    g.bench_function("score_parsed", |b| {
        b.iter(|| {
            for (gt, pred) in &parsed {
                black_box(strict_eval::score_graphs(black_box(gt), black_box(pred), &cfg).ok());
            }
        })
    });
    g.finish();

    let ag = records("eval_ag.jsonl");
    let cfg = AgConfig::default();
    let mut g = c.benchmark_group("ag_sgdet");
    g.throughput(Throughput::Elements(ag.len() as u64));
    g.bench_function("oracle_rows", |b| {
        b.iter(|| {
            for r in &ag {
                black_box(ag_sgdet::evaluate_record(black_box(r), &cfg));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
