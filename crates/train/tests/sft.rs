//! SFT correctness: one step's loss and gradients equal transformers' (the model crate's recorded fixtures), and a
//! run resumed from a checkpoint ends with bit-identical weights to an uninterrupted one (CPU).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use common::toy_examples;
use sgvlm_model::{checkpoint, Config};
use sgvlm_train::batch::{hidden_states, Batch};
use sgvlm_train::loss::logprob_surrogate;
use sgvlm_train::policy::{Freeze, Policy};
use sgvlm_train::report::Silent;
use sgvlm_train::sft::{self, Output, Schedule, SftOptions};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny")
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// Loss and gradients of one masked-CE step through the chunked head, against the fixture's `prefix` entries.
fn check_against_fixture(prefix: &str, with_image: bool) {
    let fx = candle_core::safetensors::load(fixture_dir().join("fixtures.safetensors"), &Device::Cpu).unwrap();
    let policy = Policy::load(&fixture_dir(), Freeze { vit: false, aligner: false }, &Device::Cpu).unwrap();
    let model = policy.model().unwrap();
    let ids = fx[&format!("{prefix}.input_ids")].to_dtype(DType::U32).unwrap();
    let mask = fx[&format!("{prefix}.loss_mask")].to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
    let id_rows = ids.to_vec2::<u32>().unwrap();
    let t = id_rows[0].len();
    let (mut rows, mut targets, mut seq_of) = (Vec::new(), Vec::new(), Vec::new());
    for (b, (r, m)) in id_rows.iter().zip(&mask).enumerate() {
        for p in 1..t {
            if m[p] == 1.0 {
                rows.push((b * t + p - 1) as u32);
                targets.push(r[p]);
                seq_of.push(b);
            }
        }
    }
    let (pixel_values, grids) = if with_image {
        (Some(fx[&format!("{prefix}.pixel_values")].clone()), vec![[1usize, 4, 6]])
    } else {
        (None, vec![])
    };
    let batch = Batch { ids, pixel_values, grids, rows, targets, seq_of };
    let all = hidden_states(&model, &batch).unwrap();
    let h = all.index_select(&Tensor::new(batch.rows.as_slice(), &Device::Cpu).unwrap(), 0).unwrap();
    let n = batch.targets.len() as f32;
    // A chunk of 500 splits the 2,112-token vocabulary into five chunks (the last one short).
    let head =
        logprob_surrogate(&h, &model.lm_head.weight, &batch.targets, 500, |lp| vec![-1.0 / n; lp.len()]).unwrap();
    let loss = -head.logp.iter().sum::<f32>() / n;
    let want = fx[&format!("{prefix}.loss")].to_vec1::<f32>().unwrap()[0];
    assert!((loss - want).abs() < 1e-5, "loss {loss} vs transformers {want}");
    let grads = head.surrogate.backward().unwrap();
    let vars: HashMap<String, candle_core::Var> = policy.varmap.data().lock().unwrap().clone();
    let gp = format!("{prefix}.grad.");
    let mut checked = 0;
    for (key, want) in fx.iter().filter(|(k, _)| k.starts_with(&gp)) {
        let name = &key[gp.len()..];
        let got = grads.get(vars[name].as_tensor()).unwrap_or_else(|| panic!("no gradient reached {name}"));
        let rel = max_abs(&(got - want).unwrap()) / max_abs(want).max(1e-12);
        assert!(rel < 1e-3, "gradient of {name} differs by {rel} (relative)");
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} gradients compared");
}

#[test]
fn one_text_step_reproduces_transformers_loss_and_gradients() {
    check_against_fixture("text", false);
}

#[test]
fn one_image_text_step_reproduces_transformers_loss_and_gradients() {
    check_against_fixture("image", true);
}

fn weights(p: &Policy) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> =
        p.tensors().into_iter().map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1().unwrap())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn random_policy(cfg: &Config, seed: u64) -> Policy {
    let weights = checkpoint::random_weights(cfg, seed, &Device::Cpu).unwrap();
    Policy::from_tensors(cfg.clone(), weights, Freeze::default(), &Device::Cpu).unwrap()
}

#[test]
fn resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    let cfg = Config::tiny();
    let init = || random_policy(&cfg, 7);
    let data = toy_examples(10);
    let o = SftOptions {
        lr: 1e-3,
        warmup_ratio: 0.25,
        schedule: Schedule::Steps(4),
        batch_size: 2,
        grad_accum: 2,
        vocab_chunk: 1000,
        ..SftOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let full = init();
    let out_a = Output { dir: Some(dir.path().join("a")), pixels: (4096, 65536), tokenizer_from: None };
    let a = sft::run(&full, &data, &data[..2], &o, &out_a, None, &Silent).unwrap();
    assert_eq!(a.steps, 4);

    let first = init();
    let out_b = Output { dir: Some(dir.path().join("b")), ..out_a.clone() };
    let b =
        sft::run(&first, &data, &[], &SftOptions { stop_after: Some(2), ..o.clone() }, &out_b, None, &Silent).unwrap();
    assert_eq!(b.steps, 2);
    let ck = dir.path().join("b/checkpoint-2");
    let resumed = Policy::load(&ck, Freeze::default(), &Device::Cpu).unwrap();
    let c = sft::run(&resumed, &data, &[], &o, &out_b, Some(&ck), &Silent).unwrap();
    assert_eq!(c.steps, 4);
    assert_eq!(c.last_loss, a.last_loss, "the last step's loss differs");
    assert!(weights(&resumed) == weights(&full), "resumed weights differ from the uninterrupted run's");
    assert_ne!(weights(&full), weights(&init()), "training changed nothing");
}

#[test]
fn threaded_shards_give_the_single_thread_step_up_to_rounding_and_are_deterministic() {
    let cfg = Config::tiny();
    let init = || random_policy(&cfg, 11);
    let data = toy_examples(6);
    let o = SftOptions {
        lr: 1e-3,
        warmup_ratio: 0.0,
        schedule: Schedule::Steps(2),
        batch_size: 6,
        grad_accum: 1,
        vocab_chunk: 1000,
        ..SftOptions::default()
    };
    let run = |threads: usize| {
        let p = init();
        let s =
            sft::run(&p, &data, &[], &SftOptions { threads, ..o.clone() }, &Output::default(), None, &Silent).unwrap();
        (s.last_loss.unwrap(), weights(&p))
    };
    let (one, w1) = run(1);
    let (three, w3) = run(3);
    assert!((one - three).abs() < 1e-5 * one.abs().max(1.0), "loss {one} vs {three}");
    let mut worst = 0f32;
    for ((n1, a), (n3, b)) in w1.iter().zip(&w3) {
        assert_eq!(n1, n3);
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs());
        }
    }
    // Adam divides by the root of the second moment, so a rounding difference in a near-zero gradient moves a
    // weight by a visible part of one step (lr 1e-3); a missing or doubled shard would move many by ~lr.
    assert!(worst < 1e-4, "weights differ by {worst} between 1 and 3 threads");
    assert_ne!(w1, weights(&init()), "training changed nothing");
    let (again, w3b) = run(3);
    assert_eq!(again, three, "threaded steps are not deterministic");
    assert!(w3 == w3b, "threaded weights are not deterministic");
}
