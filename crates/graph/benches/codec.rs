//! Strict TOON parse and paper-layout encode of a 50-object / 100-relation graph, against serde_json parsing and
//! serialising the same graph in R1-SGG JSON form into equivalent typed structs.
//!
//! Run: `cargo bench -p sgvlm-graph --bench codec`. The ratios (serde_json time / ours) are what matters.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use sgvlm_graph::{strict, toon, BBox, Object, Relation, StrictConfig, TripletGraph};

#[derive(Serialize, Deserialize)]
struct JObject {
    id: String,
    bbox: [i64; 4],
}

#[derive(Serialize, Deserialize)]
struct JRelation {
    subject: String,
    predicate: String,
    object: String,
}

#[derive(Serialize, Deserialize)]
struct JGraph {
    objects: Vec<JObject>,
    relationships: Vec<JRelation>,
}

const NAMES: [&str; 10] = [
    "person",
    "umbrella",
    "tree-merged",
    "sky-other-merged",
    "car",
    "dining-table",
    "chair",
    "building-other-merged",
    "pavement-merged",
    "traffic-light",
];
const PREDS: [&str; 8] = ["on", "in-front-of", "beside", "holding", "sitting-on", "over", "attached-to", "looking-at"];

/// A deterministic 50-object / 100-relation scene.
fn scene() -> TripletGraph {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    let objects: Vec<Object> = (0..50)
        .map(|i| {
            let (x1, y1) = (rnd(600) as i64, rnd(440) as i64);
            let (x2, y2) = (x1 + 1 + rnd((640 - x1) as u64) as i64, y1 + 1 + rnd((480 - y1) as u64) as i64);
            Object { id: i + 1, name: NAMES[rnd(10) as usize].to_string(), bbox: BBox::new(x1, y1, x2, y2) }
        })
        .collect();
    let mut relations: Vec<Relation> = Vec::new();
    while relations.len() < 100 {
        let (s, o) = (rnd(50) as u32 + 1, rnd(50) as u32 + 1);
        let r = Relation { subj: s, pred: PREDS[rnd(8) as usize].to_string(), obj: o };
        if s != o && !relations.contains(&r) {
            relations.push(r);
        }
    }
    TripletGraph { objects, relations }
}

fn to_json(g: &TripletGraph) -> JGraph {
    let key = |id: u32| format!("{}.{}", g.objects[id as usize - 1].name, id);
    JGraph {
        objects: g.objects.iter().map(|o| JObject { id: key(o.id), bbox: o.bbox.to_array() }).collect(),
        relationships: g
            .relations
            .iter()
            .map(|r| JRelation { subject: key(r.subj), predicate: r.pred.clone(), object: key(r.obj) })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    let g = scene();
    let toon_text = toon::encode_paper(&g.clone().into());
    let jg = to_json(&g);
    let json_text = serde_json::to_string(&jg).expect("serialise");
    let cfg = StrictConfig::default();
    assert!(strict::parse_triplet(&toon_text, &cfg).is_ok());
    eprintln!("TOON {} bytes, JSON {} bytes", toon_text.len(), json_text.len());

    let mut p = c.benchmark_group("parse_50x100");
    p.throughput(Throughput::Elements(1));
    p.bench_function("toon_strict", |b| b.iter(|| strict::parse_triplet(black_box(&toon_text), &cfg)));
    p.bench_function("serde_json_typed", |b| b.iter(|| serde_json::from_str::<JGraph>(black_box(&json_text))));
    p.finish();

    let mut e = c.benchmark_group("encode_50x100");
    e.throughput(Throughput::Elements(1));
    let mut buf = String::with_capacity(4096);
    e.bench_function("toon_paper", |b| {
        b.iter(|| {
            buf.clear();
            toon::write_triplet(&mut buf, black_box(&g), &toon::Layout::PAPER_TRIPLET);
            buf.len()
        })
    });
    let mut jbuf = Vec::with_capacity(8192);
    e.bench_function("serde_json_typed", |b| {
        b.iter(|| {
            jbuf.clear();
            serde_json::to_writer(&mut jbuf, black_box(&jg)).expect("serialise");
            jbuf.len()
        })
    });
    e.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
