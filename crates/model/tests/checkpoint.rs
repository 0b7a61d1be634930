//! Checkpoint directories: random init, save, load (single file, sharded, bf16, extra `mtp.*` tensors) and the
//! errors for bad checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sgvlm_model::{checkpoint, Config, Error, ModelInput, Qwen35};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("sgvlm-model-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn logits(model: &Qwen35) -> Tensor {
    let ids = Tensor::new(&[[3u32, 17, 1000, 2047, 5, 9]], &Device::Cpu).unwrap();
    model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap().logits
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

fn write(dir: &Path, cfg: &Config, tensors: &HashMap<String, Tensor>, dtype: DType) {
    checkpoint::save(dir, cfg, tensors, dtype).unwrap();
}

#[test]
fn random_init_is_seeded_and_follows_the_init_rules() {
    let cfg = Config::tiny();
    let a = checkpoint::random_weights(&cfg, 7, &Device::Cpu).unwrap();
    let b = checkpoint::random_weights(&cfg, 7, &Device::Cpu).unwrap();
    let c = checkpoint::random_weights(&cfg, 8, &Device::Cpu).unwrap();
    let e = "model.language_model.embed_tokens.weight";
    assert_eq!(max_abs_diff(&a[e], &b[e]), 0.0);
    assert!(max_abs_diff(&a[e], &c[e]) > 0.0);
    assert_eq!(a.len(), 85);
    let params: usize = a.values().map(|t| t.elem_count()).sum();
    assert_eq!(params, 394_960);
    let std: f32 = a[e].sqr().unwrap().mean_all().unwrap().sqrt().unwrap().to_scalar().unwrap();
    assert!((std - 0.02).abs() < 0.001, "embedding std {std}");
    let alog: Vec<f32> = a["model.language_model.layers.0.linear_attn.A_log"].to_vec1().unwrap();
    assert!(alog.iter().all(|x| *x >= 0.01f32.ln() && *x <= 16f32.ln()));
    let norm: Vec<f32> = a["model.language_model.norm.weight"].to_vec1().unwrap();
    assert!(norm.iter().all(|x| *x == 0.0));
    // A fresh model predicts close to uniformly: loss ≈ ln(V).
    let model = Qwen35::from_tensors(&cfg, a, DType::F32, &Device::Cpu).unwrap();
    let lp = candle_nn::ops::log_softmax(&logits(&model), 2).unwrap();
    let mean_nll: f32 = lp.mean_all().unwrap().neg().unwrap().to_scalar().unwrap();
    assert!((mean_nll - (2112f32).ln()).abs() < 0.05, "{mean_nll}");
}

#[test]
fn save_then_load_reproduces_the_model() {
    let cfg = Config::tiny();
    let w = checkpoint::random_weights(&cfg, 1, &Device::Cpu).unwrap();
    let before = logits(&Qwen35::from_tensors(&cfg, w.clone(), DType::F32, &Device::Cpu).unwrap());
    let dir = TempDir::new("roundtrip");
    write(&dir.0, &cfg, &w, DType::F32);
    let loaded = Qwen35::from_dir(&dir.0, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, cfg);
    assert_eq!(max_abs_diff(&logits(&loaded), &before), 0.0);

    // bf16 on disk, f32 in memory: close, not equal.
    let dir16 = TempDir::new("bf16");
    write(&dir16.0, &cfg, &w, DType::BF16);
    let l16 = logits(&Qwen35::from_dir(&dir16.0, DType::F32, &Device::Cpu).unwrap());
    let d = max_abs_diff(&l16, &before);
    assert!(d > 0.0 && d < 0.05, "bf16 logits differ by {d}");
}

#[test]
fn sharded_checkpoint_with_extra_mtp_tensors_loads() {
    let cfg = Config::tiny();
    let mut w = checkpoint::random_weights(&cfg, 2, &Device::Cpu).unwrap();
    let before = logits(&Qwen35::from_tensors(&cfg, w.clone(), DType::F32, &Device::Cpu).unwrap());
    w.insert("mtp.fc.weight".into(), Tensor::zeros((4, 4), DType::F32, &Device::Cpu).unwrap());
    let dir = TempDir::new("sharded");
    std::fs::write(dir.0.join("config.json"), cfg.to_json_string()).unwrap();
    let mut names: Vec<&String> = w.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [first, second].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let map: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), w[*n].clone())).collect();
        candle_core::safetensors::save(&map, dir.0.join(&file)).unwrap();
        for n in part.iter() {
            weight_map.insert((*n).clone(), serde_json::Value::from(file.clone()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.0.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let loaded = Qwen35::from_dir(&dir.0, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(max_abs_diff(&logits(&loaded), &before), 0.0);
}

#[test]
fn missing_tensor_and_shape_mismatch_name_the_tensor() {
    let cfg = Config::tiny();
    let w = checkpoint::random_weights(&cfg, 3, &Device::Cpu).unwrap();
    let name = "model.language_model.layers.1.self_attn.k_norm.weight";

    let mut missing = w.clone();
    missing.remove(name);
    let dir = TempDir::new("missing");
    write(&dir.0, &cfg, &missing, DType::F32);
    match Qwen35::from_dir(&dir.0, DType::F32, &Device::Cpu) {
        Err(Error::MissingTensor { name: n, expected, .. }) => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![32]);
        }
        other => panic!("expected MissingTensor, got {:?}", other.map(|_| ())),
    }

    let mut wrong = w.clone();
    wrong.insert(name.into(), Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap());
    let dir2 = TempDir::new("shape");
    write(&dir2.0, &cfg, &wrong, DType::F32);
    let err = Qwen35::from_dir(&dir2.0, DType::F32, &Device::Cpu).map(|_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("tensor `{name}` has shape [16], the config expects [32] (in {})", dir2.0.display())
    );
}

#[test]
fn missing_weights_file_names_the_path() {
    let dir = TempDir::new("empty");
    std::fs::write(dir.0.join("config.json"), Config::tiny().to_json_string()).unwrap();
    let err = Qwen35::from_dir(&dir.0, DType::F32, &Device::Cpu).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

/// A bf16 checkpoint read for bf16 weights with f32 activations gives the model that loading in f32 and narrowing
/// afterwards gives, to the bit; an f32 checkpoint read the same way stays f32.
#[test]
fn bf16_tensors_are_read_as_bf16_without_widening() {
    let cfg = Config::tiny();
    let weights = checkpoint::random_weights(&cfg, 21, &Device::Cpu).unwrap();
    for stored in [DType::BF16, DType::F32] {
        let dir = TempDir::new(&format!("keep-bf16-{stored:?}"));
        checkpoint::save(&dir.0, &cfg, &weights, stored).unwrap();
        let direct = Qwen35::from_dir_keeping_bf16(&dir.0).unwrap();
        assert_eq!(direct.text.dtype(), DType::F32);
        assert_eq!(direct.lm_head.weight.dtype(), stored, "the tied head is the table as stored");
        assert_eq!(direct.text.embed_tokens.dtype(), stored);
        let mut narrowed = Qwen35::from_dir(&dir.0, DType::F32, &Device::Cpu).unwrap();
        if stored == DType::BF16 {
            narrowed.keep_bf16().unwrap();
        }
        let (a, b) = (logits(&direct), logits(&narrowed));
        let d: f32 = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert_eq!(d, 0.0, "{stored:?}");
    }
    for name in [
        "model.language_model.layers.3.mlp.down_proj.weight",
        "model.language_model.layers.0.linear_attn.in_proj_qkv.weight",
        "model.language_model.layers.3.self_attn.o_proj.weight",
        "model.language_model.embed_tokens.weight",
    ] {
        assert!(checkpoint::kept_in_bf16(name), "{name}");
    }
    for name in [
        "model.language_model.layers.0.linear_attn.conv1d.weight",
        "model.language_model.layers.0.input_layernorm.weight",
        "model.visual.blocks.0.mlp.linear_fc1.weight",
        "model.visual.merger.linear_fc2.weight",
    ] {
        assert!(!checkpoint::kept_in_bf16(name), "{name}");
    }
}
