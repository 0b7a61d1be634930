//! Per-stage timing of one SFT step of the demo shape (a profiling tool, not a test): real synthetic scenes, the
//! demo model from random weights, batch 16 by default. Prints the sequence lengths, then per step the seconds of
//! collation, vision tower, text decoder, LM head (loss and its hand-written gradient), backward, gradient
//! accumulation + clipping, and the AdamW update, the tokens per second, and the nodes of the step's gradient graph
//! (`Tensor::sorted_nodes`: on a GPU, where every node is at least one kernel launch, a proxy for the step's launches).
//! The batch runs as one pass, as on a GPU; the CPU trainer runs it as passes of two examples of similar length on
//! its threads (`sgvlm_train::passes`), so `B 2` is the cost of one such pass.
//!
//! `cargo run --release -p sgvlm-train --example profile_demo_step -- [BATCH] [STEPS] [WxH] [CHUNK] [small|large]
//! [kernels|composed]` — `large` is `sgvlm demo --large`'s model; `composed` switches off the CPU training kernels,
//! so the step takes the path a GPU takes (the chunked delta rule, `CHUNK` tokens per block).

use std::time::Instant;

use candle_core::Device;
use sgvlm_model::ImageInput;
use sgvlm_train::batch::{collate, Example};
use sgvlm_train::demo::{demo_encoder, model_config, scene, user_prompt};
use sgvlm_train::loss::logprob_surrogate;
use sgvlm_train::optim::{clip_global_norm, AdamW, AdamWConfig, GradAccumulator};
use sgvlm_train::policy::{Freeze, Policy};

/// CPU seconds of this process so far (user + system; Linux `/proc/self/stat`, 100 ticks per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(16);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (w, h) = args
        .get(3)
        .and_then(|s| s.split_once('x'))
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .unwrap_or((128, 96));
    let large = args.get(5).is_some_and(|s| s == "large");
    if args.get(6).is_some_and(|s| s == "composed") {
        sgvlm_model::kernels::set_enabled(false);
    }
    let cfg = model_config(large);
    let weights = sgvlm_model::checkpoint::random_weights(&cfg, 0, &Device::Cpu)?;
    let params: usize = weights.values().map(|t| t.elem_count()).sum();
    let policy = Policy::from_tensors(cfg.clone(), weights, Freeze { vit: false, aligner: false }, &Device::Cpu)?;
    let enc = demo_encoder(&cfg, (w * h) as usize)?;
    let examples: Vec<Example> = (0..batch as u64)
        .map(|i| {
            let s = scene(0, 0, i, (w, h));
            enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2)))
        })
        .collect::<Result<_, _>>()?;
    let lens: Vec<(usize, usize)> = examples.iter().map(|e| (e.prompt.len(), e.target.len())).collect();
    println!("{params} parameters; (prompt, target) lengths: {lens:?}");
    let mut model = policy.model()?;
    if let Some(c) = args.get(4).and_then(|s| s.parse().ok()) {
        model.text.chunk = c;
    }
    println!("delta-rule chunk {}", model.text.chunk);
    let mut opt = AdamW::new(policy.trainable(), AdamWConfig::default())?;
    let refs: Vec<&Example> = examples.iter().collect();
    for step in 0..steps {
        let c0 = cpu_seconds();
        let t0 = Instant::now();
        let b = collate(&refs, enc.pad, &Device::Cpu)?;
        let t1 = Instant::now();
        let images = b.pixel_values.as_ref().map(|pv| ImageInput { pixel_values: pv, grids: &b.grids });
        let embeds = model.embed(&b.ids, images)?;
        let t2 = Instant::now();
        let (positions, _) = sgvlm_model::positions::rope_index(&model.config, &b.ids.to_vec2::<u32>()?, &b.grids)?;
        let out = model.text.forward(&embeds, &positions, None, false)?;
        let (bb, tt, hh) = out.last_hidden.dims3()?;
        let all = out.last_hidden.reshape((bb * tt, hh))?;
        let hid = all.index_select(&candle_core::Tensor::new(b.rows.as_slice(), &Device::Cpu)?, 0)?;
        let t3 = Instant::now();
        let n = b.targets.len();
        let head =
            logprob_surrogate(&hid, &model.lm_head.weight, &b.targets, 4096, |lp| vec![-1.0 / n as f32; lp.len()])?;
        let nodes = head.surrogate.sorted_nodes().len();
        let t4 = Instant::now();
        let grads = head.surrogate.backward()?;
        let t5 = Instant::now();
        let mut acc = GradAccumulator::new(&opt);
        acc.add(&opt, &grads)?;
        let mut g = acc.finish(&opt)?;
        clip_global_norm(&mut g, 1.0)?;
        let t6 = Instant::now();
        opt.update(&g, 1e-3)?;
        let t7 = Instant::now();
        let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
        let total = s(t0, t7);
        let loss = -head.logp.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        println!(
            "step {step}: {total:.3} s, {:.2} CPU s ({} tokens padded, {n} targets, loss {loss:.3}) collate {:.3} \
             vision+embed {:.3} text {:.3} head {:.3} backward {:.3} accum+clip {:.3} adamw {:.3}; {:.0} tokens/s; \
             {nodes} graph nodes",
            cpu_seconds() - c0,
            bb * tt,
            s(t0, t1),
            s(t1, t2),
            s(t2, t3),
            s(t3, t4),
            s(t4, t5),
            s(t5, t6),
            s(t6, t7),
            (bb * tt) as f64 / total
        );
    }
    Ok(())
}
