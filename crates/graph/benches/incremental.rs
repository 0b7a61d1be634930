//! Token checks at mid-row states: the cost constrained decoding pays per vocabulary token per step.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgvlm_graph::{Schema, Validator, ValidatorConfig};
use std::hint::black_box;

/// About 2000 short tokens of the kind a BPE vocabulary holds: single bytes, numbers, letter pairs, label pieces,
/// separators with whitespace.
fn tokens() -> Vec<Vec<u8>> {
    let mut t: Vec<Vec<u8>> = (0x20u8..0x7f).map(|b| vec![b]).collect();
    t.extend((0..1500).map(|n| n.to_string().into_bytes()));
    for a in b'a'..=b'z' {
        for b in b"aeiourstnl" {
            t.push(vec![a, *b]);
        }
    }
    for a in b'A'..=b'Z' {
        for b in b"aeiou" {
            t.push(vec![a, *b]);
        }
    }
    for w in [
        "person",
        "table",
        "chair",
        "horse",
        "sky",
        "-other",
        "-merged",
        "on",
        "riding",
        "beside",
        "in-front-of",
        "sitting",
        "-on",
        "looking",
        "_at",
        "holding",
        "behind",
        "in_front_of",
        "cup",
        "/glass",
        "ing",
        "er",
    ] {
        t.push(w.as_bytes().to_vec());
        t.push(format!(" {w}").into_bytes());
        t.push(format!(",{w}").into_bytes());
    }
    for s in [",", ",\n", "\n", " ", "  ", "    ", "        ", "],[", "],", ",[", "]\n", "\n</", "answer", ">\n"] {
        t.push(s.as_bytes().to_vec());
    }
    t
}

fn bench(c: &mut Criterion) {
    let toks = tokens();
    let states = [
        (
            "triplet_y1_digits",
            Schema::Triplet,
            "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n3,table,350,2",
        ),
        (
            "triplet_pred",
            Schema::Triplet,
            "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
             3,table,350,200,600,450\nrel[3]{subj,pred,obj}:\n1,sitting-on,2\n1,bes",
        ),
        (
            "ag_list",
            Schema::Ag,
            "<answer>\n      obj[2]{id,name,x1,y1,x2,y2}:\n        1,person,0,0,300,400\n        2,cup,5,5,50,50\n      \
             rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n        1,[looking_at],[in_front_of],[],2\n        1,[],[be",
        ),
    ];
    let mut g = c.benchmark_group("allows");
    g.throughput(Throughput::Elements(toks.len() as u64));
    for (name, schema, prefix) in states {
        let mut v = Validator::new(schema, ValidatorConfig::default()).expect("default config");
        v.feed_str(prefix).expect("valid prefix");
        let allowed = toks.iter().filter(|t| v.allows(t)).count();
        eprintln!("{name}: {} tokens, {allowed} allowed", toks.len());
        g.bench_function(name, |b| b.iter(|| toks.iter().filter(|t| v.allows(black_box(t))).count()));
    }
    g.finish();
    let v = {
        let mut v = Validator::new(Schema::Triplet, ValidatorConfig::default()).expect("default config");
        v.feed_str(states[0].2).expect("valid prefix");
        v
    };
    c.bench_function("allowed_next_bytes", |b| b.iter(|| black_box(&v).allowed_next_bytes()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
