//! Mask computation per token per sequence: one trie walk with the validator's probe over a 248k-token vocabulary,
//! at validator states met while writing a PSG graph (after `<answer>\n`, inside an object label, inside a
//! coordinate, at a relation row start).
//!
//! The vocabulary is the real Qwen3.5 one when `SGVLM_TOKENIZER` names its `tokenizer.json`
//! (`tools/make_qwen35_tokenizer.py`), else a synthetic 248,320-token byte vocabulary with a similar make-up
//! (ASCII words with and without a leading space, digit runs, punctuation clusters, non-ASCII byte strings).

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use sgvlm_graph::incremental::{Validator, ValidatorConfig};
use sgvlm_graph::Schema;
use sgvlm_infer::constrain::TokenConstraint;
use sgvlm_model::tokenizer::{TokenBytes, Tokenizer};

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

fn bench(c: &mut Criterion) {
    let vocab = vocabulary();
    let tc = TokenConstraint::new(&vocab, &[]);
    eprintln!("{} tokens, {} trie nodes", vocab.len(), tc.trie().node_count());
    let bytes_of = |id: u32| vocab[id as usize].bytes.clone();
    let states = [
        ("start", "<answer>\n"),
        ("label", "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,pers"),
        ("coordinate", "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,person,12"),
        (
            "relation_row",
            "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\n2,dog,3,4,50,60\nrel[1]{subj,pred,obj}:\n",
        ),
    ];
    let mut out = Vec::new();
    for (name, prefix) in states {
        let mut v = Validator::new(Schema::Triplet, ValidatorConfig::default()).unwrap();
        v.feed_str(prefix).unwrap();
        tc.allowed(&v, &bytes_of, &mut out);
        eprintln!("{name}: {} allowed tokens", out.len());
        c.bench_function(&format!("mask_{name}"), |b| b.iter(|| tc.allowed(&v, &bytes_of, &mut out)));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
