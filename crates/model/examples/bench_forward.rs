//! Benchmark (not a test): forward (inference, no gradient graph) and forward+backward (training) time of the model
//! on random weights, for two shapes:
//!
//! * `demo`: the tiny training model of `sgvlm demo` (~1.6M parameters, 128×96 images with patch 8 = 48 merged
//!   image tokens, 256-token sequences, batch 16);
//! * `0.8b`: the Qwen3.5-0.8B shape, one 1,007-token image+text prompt (a 640×480 image = 300 merged tokens), or
//!   text only with `--text-only` (faster to repeat).
//!
//! ```sh
//! cargo run --release -p sgvlm-model --example bench_forward -- demo [--reps 3] [--no-backward]
//! cargo run --release -p sgvlm-model --example bench_forward -- 0.8b [--tokens 1007] [--no-backward]
//! ```
//! Prints one JSON line per measurement (median over `--reps`).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use sgvlm_model::{checkpoint, Config, ImageInput, ModelInput, Qwen35};

/// The demo's tiny training model: the tiny preset widened to ~1.6M parameters, vision patch 8.
fn demo_config() -> Config {
    let mut v: serde_json::Value =
        serde_json::from_str(&Config::tiny().to_json_string()).expect("the tiny config serialises to JSON");
    let t = &mut v["text_config"];
    t["hidden_size"] = 128.into();
    t["intermediate_size"] = 512.into();
    t["num_attention_heads"] = 4.into();
    t["num_key_value_heads"] = 2.into();
    t["linear_num_key_heads"] = 4.into();
    t["linear_num_value_heads"] = 8.into();
    let vc = &mut v["vision_config"];
    vc["hidden_size"] = 64.into();
    vc["intermediate_size"] = 128.into();
    vc["patch_size"] = 8.into();
    vc["out_hidden_size"] = 128.into();
    vc["num_position_embeddings"] = 256.into();
    Config::from_json_str(&v.to_string()).expect("the demo config is valid")
}

struct Case {
    cfg: Config,
    ids: Tensor,
    pixels: Tensor,
    grids: Vec<[usize; 3]>,
}

/// `batch` sequences of `len` tokens, each with one image of `grid` placed after 8 text tokens.
fn make_case(cfg: Config, batch: usize, len: usize, grid: [usize; 3], with_image: bool, dev: &Device) -> Case {
    let merge = cfg.vision_config.spatial_merge_size;
    let n_img = grid.iter().product::<usize>() / (merge * merge);
    let vocab = cfg.text_config.vocab_size as u32;
    let mut ids = Vec::with_capacity(batch * len);
    for b in 0..batch {
        let mut row: Vec<u32> = (0..8).map(|i| (100 + i * 7 + b as u32) % 2000).collect();
        if with_image {
            row.push(cfg.vision_start_token_id);
            row.extend(std::iter::repeat_n(cfg.image_token_id, n_img));
            row.push(cfg.vision_end_token_id);
        }
        let mut i = 0u32;
        while row.len() < len {
            row.push((1000 + i * 13 + b as u32 * 31) % vocab.min(2000));
            i += 1;
        }
        ids.extend(row);
    }
    let vc = &cfg.vision_config;
    let patch_dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size * vc.patch_size;
    let n_patches = if with_image { batch * grid.iter().product::<usize>() } else { 0 };
    let pixels = Tensor::randn(0f32, 1.0, (n_patches.max(1), patch_dim), dev).expect("random pixels");
    let grids = if with_image { vec![grid; batch] } else { Vec::new() };
    Case { cfg, ids: Tensor::from_vec(ids, (batch, len), dev).expect("ids"), pixels, grids }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let which = args.first().cloned().unwrap_or_else(|| "demo".into());
    let reps: usize = opt("--reps").map_or(Ok(3), |s| s.parse())?;
    let dev = Device::Cpu;
    let case = match which.as_str() {
        "demo" => make_case(demo_config(), 16, 256, [1, 12, 16], true, &dev),
        "0.8b" => {
            let tokens: usize = opt("--tokens").map_or(Ok(1007), |s| s.parse())?;
            make_case(Config::qwen35_0_8b(), 1, tokens, [1, 30, 40], !flag("--text-only"), &dev)
        }
        other => return Err(format!("unknown shape {other:?} (demo | 0.8b)").into()),
    };
    let weights = checkpoint::random_weights(&case.cfg, 0, &dev)?;
    let params: usize = weights.values().map(|t| t.elem_count()).sum();
    let (batch, len) = case.ids.dims2()?;
    let images = (!case.grids.is_empty()).then_some(ImageInput { pixel_values: &case.pixels, grids: &case.grids });
    let input = ModelInput { input_ids: Some(&case.ids), images, ..Default::default() };
    let report = |what: &str, times: Vec<f64>| {
        let s = median(times);
        println!(
            "{}",
            serde_json::json!({"shape": which, "what": what, "params": params, "batch": batch, "len": len,
                               "seconds": s, "tokens_per_s": (batch * len) as f64 / s})
        );
    };

    // Inference: plain tensors, no gradient graph.
    let model = Qwen35::from_tensors(&case.cfg, weights.clone(), DType::F32, &dev)?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let out = model.forward(&input, None)?;
        out.logits.sum_all()?.to_scalar::<f32>()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    report("forward", times);
    drop(model);
    if flag("--no-backward") {
        return Ok(());
    }

    // Training: every weight a Var, next-token cross-entropy, backward.
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| "varmap lock")?;
        for (name, t) in weights {
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    let model = Qwen35::new(&case.cfg, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let logits = model.forward(&input, None)?.logits;
        let vocab = logits.dim(D::Minus1)?;
        let pred = logits.narrow(1, 0, len - 1)?.reshape(((len - 1) * batch, vocab))?;
        let target = case.ids.narrow(1, 1, len - 1)?.flatten_all()?;
        let loss = candle_nn::loss::cross_entropy(&pred, &target)?;
        let grads = loss.backward()?;
        std::hint::black_box(grads);
        times.push(t0.elapsed().as_secs_f64());
    }
    report("forward_backward", times);
    Ok(())
}
