//! Compares one SFT gradient of the demo model computed through the CPU training kernels (`sgvlm_model::kernels`)
//! with the same gradient through candle's compositions (kernels switched off): real synthetic scenes, the demo
//! model from random weights, optionally after N SGD-free warm-up steps of AdamW so the weights are not at init.
//! Prints the loss both ways and, per parameter, the relative difference `|g_k − g_c| / |g_c|`, worst first.
//!
//! `cargo run --release -p sgvlm-train --example kernel_check -- [BATCH] [TRAIN_STEPS]`

use candle_core::Device;
use sgvlm_model::ImageInput;
use sgvlm_train::batch::{collate, Example};
use sgvlm_train::demo::{demo_encoder, model_config, scene, user_prompt};
use sgvlm_train::loss::logprob_surrogate;
use sgvlm_train::optim::{clip_global_norm, AdamW, AdamWConfig, GradAccumulator};
use sgvlm_train::policy::{Freeze, Policy};

type Grads = Vec<(String, candle_core::Tensor)>;

/// Loss and the gradient of every trainable weight for `examples`.
fn gradient(
    policy: &Policy,
    examples: &[Example],
    pad: u32,
) -> Result<(f64, Grads, candle_core::backprop::GradStore), Box<dyn std::error::Error>> {
    let model = policy.model()?;
    let refs: Vec<&Example> = examples.iter().collect();
    let b = collate(&refs, pad, &Device::Cpu)?;
    let images = b.pixel_values.as_ref().map(|pv| ImageInput { pixel_values: pv, grids: &b.grids });
    let embeds = model.embed(&b.ids, images)?;
    let (positions, _) = sgvlm_model::positions::rope_index(&model.config, &b.ids.to_vec2::<u32>()?, &b.grids)?;
    let out = model.text.forward(&embeds, &positions, None, false)?;
    let (bb, tt, hh) = out.last_hidden.dims3()?;
    let all = out.last_hidden.reshape((bb * tt, hh))?;
    let hid = all.index_select(&candle_core::Tensor::new(b.rows.as_slice(), &Device::Cpu)?, 0)?;
    let n = b.targets.len();
    let head = logprob_surrogate(&hid, &model.lm_head.weight, &b.targets, 4096, |lp| vec![-1.0 / n as f32; lp.len()])?;
    let grads = head.surrogate.backward()?;
    let loss = -head.logp.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let mut out = Vec::new();
    for (name, var) in policy.trainable() {
        if let Some(g) = grads.get(var.as_tensor()) {
            out.push((name, g.clone()));
        }
    }
    Ok((loss, out, grads))
}

fn norm(t: &candle_core::Tensor) -> f64 {
    t.sqr().and_then(|s| s.sum_all()).and_then(|s| s.to_scalar::<f32>()).map_or(f64::NAN, |v| (v as f64).sqrt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cfg = model_config(false);
    let weights = sgvlm_model::checkpoint::random_weights(&cfg, 0, &Device::Cpu)?;
    let policy = Policy::from_tensors(cfg.clone(), weights, Freeze { vit: false, aligner: false }, &Device::Cpu)?;
    let enc = demo_encoder(&cfg, 128 * 96)?;
    let make = |offset: u64| -> Result<Vec<Example>, Box<dyn std::error::Error>> {
        (0..batch as u64)
            .map(|i| {
                let s = scene(0, 0, offset + i, (128, 96));
                Ok(enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?)
            })
            .collect()
    };
    // Optional training first (through the kernels), so the comparison is not only at the random init.
    let mut opt = AdamW::new(policy.trainable(), AdamWConfig::default())?;
    for step in 0..steps {
        let (_, _, store) = gradient(&policy, &make(1000 + (step * batch) as u64)?, enc.pad)?;
        let mut acc = GradAccumulator::new(&opt);
        acc.add(&opt, &store)?;
        let mut gs = acc.finish(&opt)?;
        clip_global_norm(&mut gs, 1.0)?;
        opt.update(&gs, 1e-3)?;
    }
    let examples = make(0)?;
    sgvlm_model::kernels::set_enabled(true);
    let (loss_k, gk, _) = gradient(&policy, &examples, enc.pad)?;
    sgvlm_model::kernels::set_enabled(false);
    let (loss_c, gc, _) = gradient(&policy, &examples, enc.pad)?;
    println!("after {steps} steps: loss with kernels {loss_k:.7}, composed {loss_c:.7}");
    let mut rows: Vec<(f64, String, f64)> = Vec::new();
    for ((name, a), (_, b)) in gk.iter().zip(&gc) {
        let nb = norm(b);
        let rel = norm(&(a - b)?) / nb.max(1e-30);
        rows.push((rel, name.clone(), nb));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (rel, name, nb) in rows.iter().take(12) {
        println!("{rel:.2e}  |g| {nb:.3e}  {name}");
    }
    println!("{} parameters compared; median relative difference {:.2e}", rows.len(), rows[rows.len() / 2].0);
    Ok(())
}
