//! bf16 compute over f32 master weights (`sgvlm_train::precision`), on the CPU with the tiny config and random
//! weights: one step's loss and gradients against the same step in f32 (text and image, vision tower training), a
//! few bf16 steps fitting a small batch about as well as f32 steps do while the weights stay f32, and the bf16
//! reference model of GRPO agreeing with the bf16 training model.

mod common;

use candle_core::{DType, Device, Tensor};
use common::toy_examples;
use sgvlm_model::{checkpoint, Config, Qwen35};
use sgvlm_train::batch::{collate, target_hidden, Example};
use sgvlm_train::loss::{logprob_surrogate, token_logprobs};
use sgvlm_train::policy::{Freeze, Policy};
use sgvlm_train::precision::{ComputeDtype, TrainModel};
use sgvlm_train::report::Silent;
use sgvlm_train::sft::{self, Output, Schedule, SftOptions};

fn policy(freeze: Freeze) -> Policy {
    policy_with(freeze, |t| t)
}

/// The tiny model's random weights passed through `f`.
fn policy_with(freeze: Freeze, f: impl Fn(Tensor) -> Tensor) -> Policy {
    let cfg = Config::tiny();
    let w = checkpoint::random_weights(&cfg, 3, &Device::Cpu).unwrap().into_iter().map(|(k, t)| (k, f(t))).collect();
    Policy::from_tensors(cfg, w, freeze, &Device::Cpu).unwrap()
}

fn to_bf16_grid(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap()
}

/// A prompt with one 4×6-patch image (six merged tokens) and a four-token answer.
fn image_example(cfg: &Config) -> Example {
    let v = &cfg.vision_config;
    let grid = [1, 4, 6];
    let width = v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size;
    let pixels: Vec<f32> = (0..24 * width).map(|i| ((i as f32) * 0.37).sin()).collect();
    let mut prompt = vec![11, 12, cfg.vision_start_token_id];
    prompt.extend([cfg.image_token_id; 6]);
    prompt.extend([cfg.vision_end_token_id, 13, 14]);
    Example { prompt, target: vec![100, 200, 300, 400], image: Some((pixels, grid)) }
}

/// Mean target cross-entropy of `examples` (one batch) and the gradient of every trainable variable, computing in
/// `dtype` (what `sft::sft_step` computes before its update).
fn loss_and_grads(p: &Policy, dtype: ComputeDtype, examples: &[Example]) -> (f32, Vec<(String, Tensor)>) {
    let tm = TrainModel::new(p, dtype, None).unwrap();
    let model = tm.model();
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = collate(&refs, 0, &Device::Cpu).unwrap();
    let h = target_hidden(model, &batch).unwrap();
    let n = batch.targets.len() as f32;
    let head =
        logprob_surrogate(&h, &model.lm_head.weight, &batch.targets, 1000, |lp| vec![-1.0 / n; lp.len()]).unwrap();
    let grads = head.surrogate.backward().unwrap();
    let named = p
        .trainable()
        .into_iter()
        .map(|(k, v)| {
            let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("no gradient reached {k}")).clone();
            (k, g)
        })
        .collect();
    (-head.logp.iter().sum::<f32>() / n, named)
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar().unwrap()
}

#[test]
fn a_bf16_step_gives_the_f32_loss_and_gradient_directions() {
    let p = policy(Freeze { vit: false, aligner: false });
    let mut examples = toy_examples(3);
    examples.push(image_example(&p.config));
    let (loss32, g32) = loss_and_grads(&p, ComputeDtype::F32, &examples);
    let (loss16, g16) = loss_and_grads(&p, ComputeDtype::Bf16, &examples);
    let rel = ((loss16 - loss32) / loss32).abs();
    assert!(rel < 1e-3, "bf16 loss {loss16} vs f32 {loss32} (relative {rel})");
    let mut worst = (1.0f64, String::new());
    for ((name, a), (_, b)) in g32.iter().zip(&g16) {
        assert_eq!(b.dtype(), DType::F32, "{name}: gradients arrive in f32 on the master weights");
        let (na, nb) = (dot(a, a).sqrt(), dot(b, b).sqrt());
        if na == 0.0 {
            assert_eq!(nb, 0.0, "{name}: a gradient where f32 has none");
            continue;
        }
        let cos = dot(a, b) / (na * nb);
        assert!((nb / na - 1.0).abs() < 0.05, "{name}: gradient norm {nb} in bf16 vs {na} in f32");
        if cos < worst.0 {
            worst = (cos, name.clone());
        }
    }
    assert!(worst.0 > 0.99, "gradient of {} has cosine {} to the f32 one", worst.1, worst.0);
    assert!(g32.iter().any(|(k, _)| k.starts_with("model.visual.blocks.")), "the vision tower's gradients compared");
}

fn sft_options(dtype: ComputeDtype) -> SftOptions {
    SftOptions {
        lr: 1e-2,
        warmup_ratio: 0.0,
        schedule: Schedule::Steps(16),
        batch_size: 4,
        grad_accum: 1,
        vocab_chunk: 1000,
        compute_dtype: dtype,
        ..SftOptions::default()
    }
}

#[test]
fn bf16_steps_fit_a_small_batch_like_f32_steps_and_keep_f32_weights() {
    let data = toy_examples(4);
    // Weights that start on the bf16 grid: had the updates been applied to bf16 weights, they would stay on it.
    let run = |dtype| {
        let p = policy_with(Freeze::default(), |t| to_bf16_grid(&t));
        let s = sft::run(&p, &data, &[], &sft_options(dtype), &Output::default(), None, &Silent).unwrap();
        (p, s)
    };
    let (p32, s32) = run(ComputeDtype::F32);
    let (p16, s16) = run(ComputeDtype::Bf16);
    let (first, last) = (s16.first_loss.unwrap(), s16.last_loss.unwrap());
    assert!(last < 0.3 * first, "16 bf16 steps took the loss from {first} to {last}");
    let last32 = s32.last_loss.unwrap();
    assert!((last - last32).abs() < 0.02 * last32, "after 16 steps: bf16 loss {last}, f32 loss {last32}");
    let w16 = p16.tensors();
    assert!(w16.values().all(|t| t.dtype() == DType::F32), "master weights stay f32");
    let name = "model.language_model.layers.0.mlp.down_proj.weight";
    let w = &w16[name];
    let off_grid = (w - to_bf16_grid(w)).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(off_grid > 0.0, "the trained master weights are all bf16 values");
    let d = (w - &p32.tensors()[name]).unwrap();
    assert!(dot(&d, &d) > 0.0, "the bf16 run trained exactly like the f32 run: it did not compute in bf16");
}

fn logprobs(model: &Qwen35, examples: &[Example]) -> Vec<f32> {
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = collate(&refs, 0, &Device::Cpu).unwrap();
    let h = target_hidden(model, &batch).unwrap();
    token_logprobs(&h, &model.lm_head.weight, &batch.targets, 1000).unwrap()
}

#[test]
fn the_bf16_reference_model_is_a_frozen_bf16_copy_that_matches_the_training_model() {
    let p = policy(Freeze::default());
    let data = toy_examples(2);
    let reference = p.frozen_model(DType::BF16).unwrap();
    assert_eq!(reference.lm_head.weight.dtype(), DType::BF16);
    assert!(!reference.lm_head.weight.track_op(), "no gradient graph through the reference");
    let train = TrainModel::new(&p, ComputeDtype::Bf16, None).unwrap();
    let (a, b) = (logprobs(&reference, &data), logprobs(train.model(), &data));
    // Same weights and dtype; the training model's graph-carrying norm and softmax round differently from the fused
    // inference kernels, so the two agree to bf16 rounding rather than bitwise.
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 0.05, "reference and training log-probabilities differ by {diff}");
    // An update of the policy does not reach the reference (a deep copy).
    let (name, var) = p.trainable().into_iter().find(|(k, _)| k.ends_with("embed_tokens.weight")).unwrap();
    var.set(&(var.as_tensor() * 2.0).unwrap()).unwrap();
    assert_eq!(logprobs(&reference, &data), a, "{name} changed the reference");
}
