//! Parity with Hugging Face transformers on a tiny random checkpoint.
//!
//! `tests/fixtures/tiny` holds the checkpoint and the outputs recorded by `tools/make_qwen35_fixtures.py`
//! (transformers 5.24.0, torch 2.15.0, f32 CPU). Tolerances: logits and hidden states 1e-4 absolute, processor
//! outputs 1e-6, loss 1e-5, gradients 1e-3 relative to the largest reference entry.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use sgvlm_model::positions::rope_index;
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::{Config, ImageInput, ModelInput, MropePositions, Qwen35};

const LOGIT_TOL: f32 = 1e-4;
const GRAD_REL_TOL: f32 = 1e-3;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

fn fixtures() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture_dir().join("fixtures.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn max_abs(a: &Tensor) -> f32 {
    a.to_dtype(DType::F32).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn ids_u32(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap()
}

fn load_model() -> Qwen35 {
    Qwen35::from_dir(&fixture_dir(), DType::F32, &Device::Cpu).unwrap()
}

/// The checkpoint's tensors as trainable variables, and the model built over them.
fn trainable_model() -> (Qwen35, VarMap) {
    let cfg = Config::from_json_file(&fixture_dir().join("config.json")).unwrap();
    let tensors = candle_core::safetensors::load(fixture_dir().join("model.safetensors"), &Device::Cpu).unwrap();
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (k, v) in tensors {
            data.insert(k, Var::from_tensor(&v).unwrap());
        }
    }
    let model = Qwen35::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap();
    (model, varmap)
}

/// Mean next-token cross-entropy over target positions whose mask is 1 (as the fixture script computes it).
fn masked_ce(logits: &Tensor, ids: &Tensor, mask: &Tensor) -> Tensor {
    let (b, t, v) = logits.dims3().unwrap();
    let lp = candle_nn::ops::log_softmax(&logits.narrow(1, 0, t - 1).unwrap(), D::Minus1).unwrap();
    let targets = ids.narrow(1, 1, t - 1).unwrap().to_dtype(DType::U32).unwrap();
    let picked = lp.reshape((b * (t - 1), v)).unwrap().gather(&targets.reshape((b * (t - 1), 1)).unwrap(), 1).unwrap();
    let m = mask.narrow(1, 1, t - 1).unwrap().to_dtype(DType::F32).unwrap().reshape((b * (t - 1), 1)).unwrap();
    let total = (picked * &m).unwrap().sum_all().unwrap().neg().unwrap();
    total.broadcast_div(&m.sum_all().unwrap()).unwrap()
}

#[test]
fn text_logits_and_hidden_states_match_transformers() {
    let fx = fixtures();
    let model = load_model();
    let ids = ids_u32(&fx["text.input_ids"]);
    let out = model
        .forward(&ModelInput { input_ids: Some(&ids), keep_hidden_states: true, ..Default::default() }, None)
        .unwrap();
    let d = max_abs_diff(&out.hidden_states[0], &fx["text.embeds"]);
    assert!(d < 1e-6, "embeddings differ by {d}");
    for i in 0..4 {
        let d = max_abs_diff(&out.hidden_states[i + 1], &fx[&format!("text.layer_out.{i}")]);
        assert!(d < LOGIT_TOL, "layer {i} output differs by {d}");
    }
    let head = out.logits.narrow(2, 0, 128).unwrap();
    let d = max_abs_diff(&head, &fx["text.logits_head"]);
    assert!(d < LOGIT_TOL, "logits differ by {d}");
    let t = out.logits.dim(1).unwrap();
    let last = out.logits.narrow(1, t - 1, 1).unwrap().squeeze(1).unwrap();
    let d = max_abs_diff(&last, &fx["text.logits_last"]);
    assert!(d < LOGIT_TOL, "last-position logits differ by {d}");
}

fn check_grads(fx: &HashMap<String, Tensor>, varmap: &VarMap, grads: &candle_core::backprop::GradStore, prefix: &str) {
    let data = varmap.data().lock().unwrap();
    let mut checked = 0;
    for (key, want) in fx.iter().filter(|(k, _)| k.starts_with(prefix)) {
        let name = &key[prefix.len()..];
        let var = data.get(name).unwrap_or_else(|| panic!("no variable {name}"));
        let got = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient reached {name}"));
        let rel = max_abs_diff(got, want) / max_abs(want).max(1e-12);
        assert!(rel < GRAD_REL_TOL, "gradient of {name} differs by {rel} (relative)");
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} gradients checked");
}

#[test]
fn text_loss_and_gradients_match_transformers() {
    let fx = fixtures();
    let (model, varmap) = trainable_model();
    let ids = ids_u32(&fx["text.input_ids"]);
    let out = model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap();
    let loss = masked_ce(&out.logits, &fx["text.input_ids"], &fx["text.loss_mask"]);
    let want: Vec<f32> = fx["text.loss"].to_vec1().unwrap();
    let got: f32 = loss.to_scalar().unwrap();
    assert!((got - want[0]).abs() < 1e-5, "loss {got} vs {}", want[0]);
    let grads = loss.backward().unwrap();
    check_grads(&fx, &varmap, &grads, "text.grad.");
}

fn fixture_image() -> (Vec<u8>, usize, usize) {
    let fx = fixtures();
    let rgb = &fx["image.rgb"];
    let (h, w, _) = rgb.dims3().unwrap();
    let bytes: Vec<u8> = rgb.flatten_all().unwrap().to_vec1::<i64>().unwrap().into_iter().map(|x| x as u8).collect();
    (bytes, h, w)
}

fn tiny_processor() -> ImageProcessor {
    ImageProcessor { min_pixels: 4096, max_pixels: 65_536, ..ImageProcessor::default() }
}

#[test]
fn image_processor_matches_transformers() {
    let fx = fixtures();
    let (rgb, h, w) = fixture_image();
    let out = tiny_processor().preprocess_rgb(&rgb, h, w).unwrap();
    let grid: Vec<i64> = fx["image.grid_thw"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(out.grid_thw.map(|x| x as i64).to_vec(), grid);
    let want = &fx["image.pixel_values"];
    let got = Tensor::from_vec(out.pixel_values, want.dims(), &Device::Cpu).unwrap();
    let d = max_abs_diff(&got, want);
    assert!(d < 1e-6, "pixel values differ by {d}");
}

#[test]
fn rope_index_matches_transformers() {
    let fx = fixtures();
    let cfg = Config::tiny();
    let ids: Vec<Vec<u32>> = ids_u32(&fx["image.input_ids"]).to_vec2().unwrap();
    let (pos, deltas) = rope_index(&cfg, &ids, &[[1, 4, 6]]).unwrap();
    let want: Vec<Vec<Vec<i64>>> = fx["image.position_ids"].to_vec3().unwrap();
    for (axis, (got, want)) in pos.ids.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "axis {axis}");
    }
    let want_d: Vec<i64> = fx["image.rope_deltas"].to_vec1().unwrap();
    assert_eq!(deltas, want_d);
}

#[test]
fn image_features_logits_and_gradients_match_transformers() {
    let fx = fixtures();
    let (model, varmap) = trainable_model();
    let pv = &fx["image.pixel_values"];
    let grids = [[1usize, 4, 6]];
    let feats = model.vision.forward(pv, &grids).unwrap();
    let d = max_abs_diff(&feats, &fx["image.features"]);
    assert!(d < LOGIT_TOL, "vision features differ by {d}");
    let ids = ids_u32(&fx["image.input_ids"]);
    let images = Some(ImageInput { pixel_values: pv, grids: &grids });
    let out = model.forward(&ModelInput { input_ids: Some(&ids), images, ..Default::default() }, None).unwrap();
    let d = max_abs_diff(&out.logits, &fx["image.logits"]);
    assert!(d < LOGIT_TOL, "image+text logits differ by {d}");
    let loss = masked_ce(&out.logits, &fx["image.input_ids"], &fx["image.loss_mask"]);
    let want: Vec<f32> = fx["image.loss"].to_vec1().unwrap();
    assert!((loss.to_scalar::<f32>().unwrap() - want[0]).abs() < 1e-5);
    let grads = loss.backward().unwrap();
    check_grads(&fx, &varmap, &grads, "image.grad.");
}

#[test]
fn cached_decode_matches_full_forward() {
    // Prefill 67 tokens (the chunked form across two chunks), then decode 3 tokens one at a time with the
    // recurrent form and the KV cache: every step must reproduce the full forward's logits.
    let fx = fixtures();
    let model = load_model();
    let ids = ids_u32(&fx["text.input_ids"]);
    let full = model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
    let mut cache = sgvlm_model::Cache::new(&model.config);
    let prefix = ids.narrow(1, 0, 67).unwrap();
    let out = model.forward(&ModelInput { input_ids: Some(&prefix), ..Default::default() }, Some(&mut cache)).unwrap();
    let d = max_abs_diff(&out.logits, &full.narrow(1, 0, 67).unwrap());
    assert!(d < LOGIT_TOL, "prefill differs by {d}");
    for step in 67..70 {
        let tok = ids.narrow(1, step, 1).unwrap();
        let out = model.forward(&ModelInput { input_ids: Some(&tok), ..Default::default() }, Some(&mut cache)).unwrap();
        let d = max_abs_diff(&out.logits, &full.narrow(1, step, 1).unwrap());
        assert!(d < LOGIT_TOL, "decode step {step} differs by {d}");
    }
    assert_eq!(cache.text.seen, 70);
}

#[test]
fn cached_decode_after_image_uses_rope_delta() {
    let fx = fixtures();
    let model = load_model();
    let pv = &fx["image.pixel_values"];
    let grids = [[1usize, 4, 6]];
    let ids = ids_u32(&fx["image.input_ids"]);
    let t = ids.dim(1).unwrap();
    let images = Some(ImageInput { pixel_values: pv, grids: &grids });
    let mut cache = sgvlm_model::Cache::new(&model.config);
    let prefix = ids.narrow(1, 0, t - 2).unwrap();
    model.forward(&ModelInput { input_ids: Some(&prefix), images, ..Default::default() }, Some(&mut cache)).unwrap();
    for step in t - 2..t {
        let tok = ids.narrow(1, step, 1).unwrap();
        let out = model.forward(&ModelInput { input_ids: Some(&tok), ..Default::default() }, Some(&mut cache)).unwrap();
        let d = max_abs_diff(&out.logits, &fx["image.logits"].narrow(1, step, 1).unwrap());
        assert!(d < LOGIT_TOL, "decode step {step} differs by {d}");
    }
}

#[test]
fn explicit_text_positions_equal_default_positions() {
    let fx = fixtures();
    let model = load_model();
    let ids = ids_u32(&fx["text.input_ids"]).narrow(1, 0, 9).unwrap();
    let a = model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
    let pos = MropePositions::text(2, 9, 0);
    let b = model
        .forward(&ModelInput { input_ids: Some(&ids), positions: Some(&pos), ..Default::default() }, None)
        .unwrap()
        .logits;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

/// Compares a seeded init of `cfg` (seed 0, as `sgvlm model init --seed 0 --dtype f32` writes it) with the
/// outputs transformers recorded from that directory (the fixture script's `--record`): the log-sum-exp over the
/// whole vocabulary at every position and the logits of 64 columns spread over it.
fn check_recorded(cfg: &Config, fixture: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    let fx = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let weights = sgvlm_model::checkpoint::random_weights(cfg, 0, &Device::Cpu).unwrap();
    let model = Qwen35::from_tensors(cfg, weights, DType::F32, &Device::Cpu).unwrap();
    let ids = ids_u32(&fx["input_ids"]);
    let logits = model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits;
    let lse = logits.exp().unwrap().sum(2).unwrap().log().unwrap();
    let d = max_abs_diff(&lse, &fx["logsumexp"]);
    assert!(d < LOGIT_TOL, "{fixture}: log-sum-exp differs by {d}");
    let cols = fx["columns"].to_dtype(DType::U32).unwrap();
    let picked = logits.index_select(&cols, 2).unwrap();
    let d = max_abs_diff(&picked, &fx["logits_columns"]);
    assert!(d < LOGIT_TOL, "{fixture}: logits differ by {d}");
}

#[test]
fn real_vocabulary_preset_matches_transformers() {
    check_recorded(&Config::tiny_realvocab(), "tiny_realvocab.safetensors");
}

#[test]
fn untied_lm_head_matches_transformers() {
    let mut cfg = Config::tiny();
    cfg.tie_word_embeddings = false;
    cfg.text_config.extra.insert("tie_word_embeddings".into(), serde_json::Value::Bool(false));
    check_recorded(&cfg, "tiny_untied.safetensors");
}

#[test]
fn image_processor_resizes_like_transformers_pil_backend() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/processor.safetensors");
    let fx = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    for i in 0..2 {
        let rgb = &fx[&format!("{i}.rgb")];
        let (h, w, _) = rgb.dims3().unwrap();
        let bytes: Vec<u8> = rgb.flatten_all().unwrap().to_vec1().unwrap();
        let out = tiny_processor().preprocess_rgb(&bytes, h, w).unwrap();
        let grid: Vec<i64> = fx[&format!("{i}.grid_thw")].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(out.grid_thw.map(|x| x as i64).to_vec(), grid, "image {i}");
        let want = &fx[&format!("{i}.pixel_values")];
        let got = Tensor::from_vec(out.pixel_values, want.dims(), &Device::Cpu).unwrap();
        let d = max_abs_diff(&got, want);
        assert!(d < 1e-6, "image {i} ({h}x{w}): pixel values differ by {d}");
    }
}
