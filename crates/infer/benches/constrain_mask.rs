//! Mask computation per token per sequence over a 248k-token vocabulary, at validator states met while writing a PSG
//! graph: after `<answer>\n`, inside an object label and inside a predicate (open vocabulary, and the closed PSG
//! lists of 133 objects / 56 predicates), inside a coordinate, at a relation row start, after a complete answer.
//! Each state is timed filling the `TokenMask` bitset the engine uses, and filling it then listing the ids (what a
//! `Vec<u32>` interface would cost). Before timing, each state's mask is checked against the full trie walk and
//! both first-call and full-walk times are printed (the first call inside an open label builds that state's cache).
//!
//! The vocabulary is the real Qwen3.5 one when `SGVLM_TOKENIZER` names its `tokenizer.json`
//! (`tools/make_qwen35_tokenizer.py`), else a synthetic 248,320-token byte vocabulary with a similar make-up
//! (ASCII words with and without a leading space, digit runs, punctuation clusters, non-ASCII byte strings).

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use sgvlm_graph::vocab::{PSG_OBJECT_CLASSES, PSG_PREDICATES};
use sgvlm_graph::Schema;
use sgvlm_infer::backend::Constraint;
use sgvlm_infer::constrain::{validator_for, TokenConstraint};
use sgvlm_model::tokenizer::{TokenBytes, Tokenizer};
use std::sync::Arc;
use std::time::Instant;

fn vocabulary() -> Vec<TokenBytes> {
    if let Ok(path) = std::env::var("SGVLM_TOKENIZER") {
        let t = Tokenizer::from_file(std::path::Path::new(&path)).expect("SGVLM_TOKENIZER is a tokenizer.json");
        return t.token_bytes();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let mut v: Vec<TokenBytes> = (0u8..=255).map(|b| TokenBytes { bytes: vec![b], special: false }).collect();
    while v.len() < 248_320 {
        let kind = rng.random_range(0..10);
        let mut t = Vec::new();
        match kind {
            0..=3 => {
                if rng.random_bool(0.5) {
                    t.push(b' ');
                }
                let n = rng.random_range(2..9);
                t.extend((0..n).map(|_| letters[rng.random_range(0..26)]));
                if rng.random_bool(0.1) {
                    t[0] = t[0].to_ascii_uppercase();
                }
            }
            4 => t.extend((0..rng.random_range(1..4)).map(|_| b'0' + rng.random_range(0..10))),
            5 => t.extend((0..rng.random_range(1..4)).map(|_| b",:[]{}()\n-_./<>"[rng.random_range(0..15)])),
            _ => t.extend((0..rng.random_range(2..7)).map(|_| rng.random_range(0x80..=0xff))),
        }
        v.push(TokenBytes { bytes: t, special: false });
    }
    v
}

const OBJS: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,12,30,200,400\n2,horse,100,50,600,470\n\
                    3,sky-other-merged,0,0,640,120\n";

/// (name, closed PSG lists, answer prefix): the validator states the benchmark covers.
fn states() -> Vec<(&'static str, bool, String)> {
    let obj_label = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,pers".to_string();
    let pred = format!("{OBJS}rel[3]{{subj,pred,obj}}:\n1,riding,2\n2,in-front-o");
    let used = "1,on,2\n1,on,3\n1,over,2\n1,over,3\n1,in,2\n1,riding,2\n1,looking-at,3\n1,sitting-on,2\n";
    vec![
        ("start", false, "<answer>\n".to_string()),
        ("object_label_open", false, obj_label.clone()),
        ("coordinate", false, "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,12".to_string()),
        ("relation_row", false, format!("{OBJS}rel[3]{{subj,pred,obj}}:\n1,riding,2\n")),
        ("predicate_open", false, pred.clone()),
        ("complete", false, format!("{OBJS}rel[1]{{subj,pred,obj}}:\n1,riding,2\n</answer>")),
        ("object_label_psg", true, obj_label),
        ("predicate_psg", true, pred),
        // Subject 1 has used pairs, so every predicate prefix is checked for a still-unused (predicate, object).
        ("predicate_psg_used_subject", true, format!("{OBJS}rel[9]{{subj,pred,obj}}:\n{used}1,")),
    ]
}

fn bench(c: &mut Criterion) {
    let vocab = vocabulary();
    let tc = TokenConstraint::new(&vocab, &[]);
    eprintln!("{} tokens, {} trie nodes", vocab.len(), tc.trie().node_count());
    let bytes_of = |id: u32| vocab[id as usize].bytes.clone();
    let list = |l: &[&str]| Some(Arc::new(l.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    let mut mask = tc.new_mask();
    let mut ids = Vec::new();
    for (name, closed, p) in states() {
        let constraint = Constraint {
            schema: Schema::Triplet,
            canvas: (640, 480),
            objects: if closed { list(&PSG_OBJECT_CLASSES) } else { None },
            predicates: if closed { list(&PSG_PREDICATES) } else { None },
        };
        let mut v = validator_for(&constraint).expect("constraint");
        v.feed_str(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = Instant::now();
        tc.allowed(&v, &bytes_of, &mut mask);
        let first = t.elapsed();
        let t = Instant::now();
        tc.allowed_by_full_walk(&v, &bytes_of, &mut ids);
        let walk = t.elapsed();
        assert_eq!(mask.iter().collect::<Vec<_>>(), ids, "{name}: cached mask differs from the full walk");
        eprintln!(
            "{name}: {} allowed tokens; first call {:.3} ms (builds a label cache if any), full walk {:.3} ms",
            mask.count(),
            first.as_secs_f64() * 1e3,
            walk.as_secs_f64() * 1e3
        );
        c.bench_function(&format!("mask_{name}"), |b| b.iter(|| tc.allowed(&v, &bytes_of, &mut mask)));
        c.bench_function(&format!("mask_{name}_as_ids"), |b| {
            b.iter(|| {
                tc.allowed(&v, &bytes_of, &mut mask);
                ids.clear();
                ids.extend(mask.iter());
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
