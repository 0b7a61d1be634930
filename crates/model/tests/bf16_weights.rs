//! `Qwen35::keep_bf16` (CPU inference with bf16 projection weights and f32 activations) computes what an f32 model
//! whose projection weights and head were rounded to bf16 computes: the rounding is the only change, the bf16
//! kernel sums in f32 like the gemm it replaces.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use sgvlm_model::checkpoint::random_weights;
use sgvlm_model::ops::Linear;
use sgvlm_model::text::TextCache;
use sgvlm_model::{Config, ModelInput, MropePositions, Qwen35};

fn round(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap()
}

/// What `keep_bf16` stores in bf16: the decoder's projections and the embedding table (the tied head).
fn kept_bf16(name: &str) -> bool {
    let projection =
        name.contains("language_model.layers.") && (name.ends_with("_proj.weight") || name.contains(".in_proj_"));
    projection || name.ends_with("embed_tokens.weight")
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    d / b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn bf16_weights_equal_an_f32_model_with_rounded_weights() {
    let cpu = Device::Cpu;
    let cfg = Config::tiny();
    assert!(cfg.tie_word_embeddings, "the head below is the rounded embedding table");
    let weights = random_weights(&cfg, 11, &cpu).unwrap();
    let kept = weights.keys().filter(|k| kept_bf16(k)).count();
    assert!(kept > 7 * cfg.text_config.layer_types.len() / 2, "{kept} tensors kept in bf16");
    let rounded: HashMap<String, Tensor> =
        weights.iter().map(|(k, t)| (k.clone(), if kept_bf16(k) { round(t) } else { t.clone() })).collect();
    let embed = weights.iter().find(|(k, _)| k.ends_with("embed_tokens.weight")).unwrap().1;
    let head = Linear { weight: round(embed), bias: None };

    let mut fast = Qwen35::from_tensors(&cfg, weights.clone(), DType::F32, &cpu).unwrap();
    fast.keep_bf16().unwrap();
    assert_eq!(fast.lm_head.weight.dtype(), DType::BF16);
    assert_eq!(fast.text.embed_tokens.dtype(), DType::BF16, "the tied head is the bf16 table");
    assert_eq!(fast.text.dtype(), DType::F32);
    let slow = Qwen35::from_tensors(&cfg, rounded, DType::F32, &cpu).unwrap();
    let unrounded = Qwen35::from_tensors(&cfg, weights, DType::F32, &cpu).unwrap();

    // 1×5 rows take the bf16 loop, 2×12 the widened weight and gemm.
    for (b, t) in [(1usize, 5usize), (2, 12)] {
        let ids: Vec<u32> = (0..b * t).map(|i| (i as u32 * 37 + 5) % cfg.text_config.vocab_size as u32).collect();
        let ids = Tensor::from_vec(ids, (b, t), &cpu).unwrap();
        let got = fast.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
        let embeds = slow.embed(&ids, None).unwrap();
        let hidden = slow.text.forward(&embeds, &MropePositions::text(b, t, 0), None, false).unwrap().last_hidden;
        let want = head.forward(&hidden).unwrap();
        let err = max_rel(&got, &want);
        assert!(err < 1e-5, "{b}×{t}: {err}");
        // And the rounding is a real change: the f32 weights give other logits.
        let full = unrounded.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap();
        assert!(max_rel(&got, &full.logits) > 1e-4, "{b}×{t}: the bf16 weights changed nothing");
    }

    // Cached decoding: prefill 6 tokens, then 3 one-token steps through the bf16 loop.
    let ids = Tensor::from_vec((0..9u32).map(|i| i * 11 + 3).collect::<Vec<_>>(), (1, 9), &cpu).unwrap();
    let mut cache = TextCache::new(&cfg.text_config);
    let step = |m: &Qwen35, cache: &mut TextCache, from: usize, len: usize| {
        let e = m.text.embed(&ids.narrow(1, from, len).unwrap()).unwrap();
        m.text.forward(&e, &MropePositions::text(1, len, from as i64), Some(cache), false).unwrap().last_hidden
    };
    step(&fast, &mut cache, 0, 6);
    let whole = slow.text.forward(&slow.embed(&ids, None).unwrap(), &MropePositions::text(1, 9, 0), None, false);
    let whole = whole.unwrap().last_hidden;
    for i in 6..9 {
        let h = step(&fast, &mut cache, i, 1);
        let err = max_rel(&h, &whole.narrow(1, i, 1).unwrap());
        assert!(err < 1e-4, "decode step {i}: {err}");
    }
}

#[test]
fn keeping_bf16_on_a_bf16_model_changes_nothing() {
    // A bf16 model's projections are already bf16; `keep_bf16` leaves it a bf16 model whose f32-input path is never
    // taken (its activations are bf16), so the outputs are those of the unchanged model.
    let cpu = Device::Cpu;
    let cfg = Config::tiny();
    let weights = random_weights(&cfg, 12, &cpu).unwrap();
    let plain = Qwen35::from_tensors(&cfg, weights.clone(), DType::BF16, &cpu).unwrap();
    let mut kept = Qwen35::from_tensors(&cfg, weights, DType::BF16, &cpu).unwrap();
    kept.keep_bf16().unwrap();
    let ids = Tensor::from_vec(vec![1u32, 2, 3, 4], (1, 4), &cpu).unwrap();
    let a = plain.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
    let b = kept.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
    let (a, b) = (a.to_dtype(DType::F32).unwrap(), b.to_dtype(DType::F32).unwrap());
    assert_eq!(max_rel(&b, &a), 0.0);
}
