//! Diagnosis: gradient norm, weight norm and their ratio per parameter group (vision blocks, merger, each decoder
//! layer's attention/MLP/norms, embeddings) for one SFT batch of 8 demo scenes, at the demo's initialisation or for
//! a checkpoint. A vision tower whose ratio falls to ~1e-7 after training is cut off from the loss
//! (crates/train/results/demo_image_reading.md).
//! `cargo run --release -p sgvlm-train --example grad_groups [CHECKPOINT_DIR]`
use candle_core::Device;
use sgvlm_train::batch::{collate, target_hidden};
use sgvlm_train::demo::{checkpoint_or_init, demo_encoder, scene, user_prompt};
use sgvlm_train::loss::logprob_surrogate;
use std::collections::BTreeMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let policy = checkpoint_or_init(dir.as_deref(), &Device::Cpu)?;
    let model = policy.model()?;
    let enc = demo_encoder(&policy.config, 128 * 96)?;
    let exs: Vec<_> = (0..8u64)
        .map(|i| {
            let s = scene(0, 0, i, (128, 96));
            enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap()
        })
        .collect();
    let refs: Vec<_> = exs.iter().collect();
    let b = collate(&refs, 0, &Device::Cpu)?;
    let h = target_hidden(&model, &b)?;
    let n = b.targets.len() as f32;
    let head = logprob_surrogate(&h, &model.lm_head.weight, &b.targets, 4096, |lp| vec![-1.0 / n; lp.len()])?;
    let grads = head.surrogate.backward()?;
    let mut groups: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (name, var) in policy.trainable() {
        let g = match grads.get(var.as_tensor()) {
            Some(g) => g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64,
            None => 0.0,
        };
        let w = var.as_tensor().sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        let parts: Vec<&str> = name.split('.').collect();
        let key = if name.starts_with("model.visual.blocks") || name.starts_with("model.language_model.layers") {
            parts[..4.min(parts.len())].join(".") + "." + parts.get(4).unwrap_or(&"")
        } else {
            parts[..3.min(parts.len())].join(".")
        };
        let e = groups.entry(key).or_default();
        e.0 += g;
        e.1 += w;
    }
    for (k, (g, w)) in groups {
        println!("{k:50} grad {:.3e}  weight {:.3e}  ratio {:.2e}", g.sqrt(), w.sqrt(), g.sqrt() / w.sqrt().max(1e-12));
    }
    Ok(())
}
