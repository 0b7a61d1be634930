//! Where does the GRPO gradient point, measured over many prompts? (an experiment tool, not a test)
//!
//! Loads a finished demo `sft` folder and, with the demo's GRPO settings, computes the GRPO loss gradient on
//! `--prompts` training prompts in chunks of `--chunk` (each chunk is one GRPO step's worth: `--chunk` prompts ×
//! `--group` constrained rollouts at `--temperature`), without updating anything. It prints:
//!
//! - the noise of one step's gradient: from the chunk gradients `g_i` (i.i.d. estimates of the true gradient `μ`),
//!   `|μ|² ≈ mean_{i≠j} g_i·g_j` and `tr Σ ≈ mean |g_i|² − |μ|²`, so the expected cosine between a `k`-chunk
//!   average and `μ` is `sqrt(|μ|² / (|μ|² + tr Σ / k))` (`cos_one_step`, `cos_all_chunks`); and the cosine between
//!   the averages of the two halves of the chunks (`cos_halves`, a direct check);
//! - a line search along the averaged gradient: the weights moved by `−ρ·d` for each `ρ` of `--scales`, where `d`
//!   is the averaged gradient scaled to unit RMS per parameter (`grad`), its sign (`sign`: the direction of Adam's
//!   first steps) or a seeded random normal direction (`random`: how much a move of that size changes the greedy
//!   answers by chance); after each move the greedy validation reward on `--val` validation scenes and its paired
//!   gain over the unmoved weights (mean ± standard error of the per-scene differences).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p sgvlm-train --example grpo_direction -- --from-sft DIR --seed S
//! [--prompts 128] [--chunk 4] [--group 8] [--temperature 0.7] [--val 128] [--scales 1e-5,3e-5,1e-4,3e-4,1e-3]
//! [--size 128x96] [--row-credit 0]`; one JSON line per result on stdout, progress on stderr.

use candle_core::{DType, Device, Tensor};
use serde_json::json;
use sgvlm_eval::rewards::RewardConfig;
use sgvlm_graph::Schema;
use sgvlm_train::demo::{decode, demo_encoder, engine_rollout, scene, user_prompt};
use sgvlm_train::grpo::{self, GrpoOptions, GrpoParts, GrpoPrompt};
use sgvlm_train::optim::AdamW;
use sgvlm_train::policy::{Freeze, Policy};
use sgvlm_train::rollout::{Prompt, Sampling};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let num = |k: &str, d: f64| get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
    let dir = std::path::PathBuf::from(get("--from-sft").ok_or("--from-sft DIR (a demo's sft folder)")?);
    let seed = num("--seed", 0.0) as u64;
    let (n_prompts, chunk, n_val) =
        (num("--prompts", 128.0) as usize, num("--chunk", 4.0) as usize, num("--val", 128.0) as usize);
    let scales: Vec<f64> = get("--scales")
        .unwrap_or_else(|| "1e-5,3e-5,1e-4,3e-4,1e-3".into())
        .split(',')
        .map(|s| s.parse::<f64>())
        .collect::<Result<_, _>>()?;
    // `--sampled G`: also the mean reward of G rollouts per prompt at the rollout temperature on the first half of
    // the validation scenes after each move (same seeds every time: common random numbers for the paired gain).
    let sampled = num("--sampled", 0.0) as usize;
    let wanted: Vec<String> =
        get("--directions").unwrap_or_else(|| "grad,sign,random".into()).split(',').map(String::from).collect();
    let size = get("--size").unwrap_or_else(|| "128x96".into());
    let (w, h) = size.split_once('x').ok_or("--size WxH")?;
    let size: (u32, u32) = (w.parse()?, h.parse()?);

    let device = Device::Cpu;
    let best = dir.join("best");
    let weights = if best.join("config.json").is_file() { best } else { dir.clone() };
    let policy = Policy::load(&weights, Freeze { vit: false, aligner: false }, &device)?;
    let cfg = policy.config.clone();
    let encoder = demo_encoder(&cfg, (size.0 * size.1) as usize)?;
    let user = user_prompt();
    let prompts = |stream: u64, n: usize| -> Result<Vec<GrpoPrompt>, Error> {
        (0..n as u64)
            .map(|i| {
                let s = scene(seed, stream, i, size);
                let e = encoder.example(&user, &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?;
                Ok(GrpoPrompt { prompt: e.prompt, image: e.image, solution: s.answer })
            })
            .collect()
    };
    let train = prompts(0, n_prompts)?;
    let val = prompts(1, n_val)?;
    // As the demo: the longest reference answer plus 64 tokens.
    let mut max_new = 200;
    for p in &val {
        max_new = max_new.max(encoder.tokenizer.encode(&p.solution)?.len() + 64);
    }

    let reference = policy.frozen_model(DType::F32)?;
    let rl = Policy {
        config: cfg.clone(),
        varmap: policy.varmap.clone(),
        freeze: Freeze::default(),
        device: device.clone(),
    };
    let mut sampler = engine_rollout(&rl, &encoder, true)?;
    let stop_seq = encoder.tokenizer.encode("</answer>")?;
    let dec = |ids: &[u32]| decode(&encoder, ids);
    let mut parts = GrpoParts {
        rollout: &mut sampler,
        reference: &reference,
        decode: &dec,
        stop_ids: vec![encoder.im_end],
        stop_seq,
        schema: Schema::Triplet,
        rewards: RewardConfig::default(),
        pad: encoder.pad,
    };
    let o = GrpoOptions {
        group: num("--group", 8.0) as usize,
        prompts_per_step: chunk,
        temperature: num("--temperature", 0.7) as f32,
        max_new_tokens: max_new,
        row_credit: num("--row-credit", 0.0),
        micro_batch: 16,
        seed,
        vocab_chunk: 4096,
        ..GrpoOptions::default()
    };
    let opt = AdamW::new(rl.trainable(), Default::default())?;
    let model = rl.model()?;
    let theta0: Vec<Tensor> = opt.params.iter().map(|(_, v)| v.as_tensor().copy()).collect::<Result<_, _>>()?;
    let n_param: usize = theta0.iter().map(|t| t.elem_count()).sum();

    let (start, _) = grpo::validate(&mut parts, &val, max_new)?;
    let sample_val = |parts: &mut GrpoParts| -> Result<Vec<f64>, Error> {
        if sampled == 0 {
            return Ok(Vec::new());
        }
        let half = &val[..val.len() / 2];
        let ps: Vec<Prompt> = half.iter().map(|p| Prompt { ids: &p.prompt, image: p.image.as_ref() }).collect();
        let s = Sampling {
            temperature: o.temperature,
            max_new_tokens: max_new,
            seed: seed ^ 0x5A,
            stop_ids: parts.stop_ids.clone(),
            stop_seq: parts.stop_seq.clone(),
            unconstrained: 0,
        };
        let out = parts.rollout.generate(&ps, sampled, &s)?;
        let texts: Vec<String> = out.iter().map(|c| (parts.decode)(c)).collect();
        let sols: Vec<&str> = half.iter().flat_map(|p| std::iter::repeat_n(p.solution.as_str(), sampled)).collect();
        let (totals, _) = grpo::score(&texts, &sols, parts.schema, &parts.rewards);
        Ok(totals.chunks(sampled).map(|g| g.iter().sum::<f64>() / g.len() as f64).collect())
    };
    let start_sampled = sample_val(&mut parts)?;
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
    eprintln!(
        "start: validation reward {:.3} on {} scenes; {} trainable parameters",
        mean(&start),
        start.len(),
        n_param
    );

    // Chunk gradients, flattened.
    let mut flat: Vec<Vec<f32>> = Vec::new();
    let mut rewards = Vec::new();
    let refs: Vec<&GrpoPrompt> = train.iter().collect();
    for (c, ps) in refs.chunks(chunk.max(1)).enumerate() {
        let (grads, st) = grpo::grpo_gradients(&model, &opt, &mut parts, ps, seed.wrapping_add(c as u64 * 7919), &o)?;
        let mut v = Vec::with_capacity(n_param);
        for g in &grads {
            v.extend(g.flatten_all()?.to_vec1::<f32>()?);
        }
        rewards.push(st.reward_mean);
        eprintln!("chunk {}/{}: rollout reward {:.3}", c + 1, n_prompts.div_ceil(chunk.max(1)), st.reward_mean);
        flat.push(v);
    }
    let m = flat.len();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
    let sum = |gs: &[Vec<f32>]| -> Vec<f32> {
        let mut s = vec![0f32; n_param];
        for g in gs {
            for (a, b) in s.iter_mut().zip(g) {
                *a += b;
            }
        }
        s
    };
    let total = sum(&flat);
    let sq_each: f64 = flat.iter().map(|g| dot(g, g)).sum();
    let mu2 = (dot(&total, &total) - sq_each) / (m * (m - 1).max(1)) as f64;
    let tr = sq_each / m as f64 - mu2;
    let cos_at = |k: f64| if mu2 > 0.0 { (mu2 / (mu2 + tr / k)).sqrt() } else { 0.0 };
    let (a, b) = (sum(&flat[..m / 2]), sum(&flat[m / 2..]));
    let cos_halves = dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt().max(1e-30);
    println!(
        "{}",
        json!({"kind": "noise", "chunks": m, "prompts_per_chunk": chunk, "mu_sq": mu2, "trace_sigma": tr,
               "cos_one_step": cos_at(1.0), "cos_all_chunks": cos_at(m as f64), "cos_halves": cos_halves,
               "rollout_reward": mean(&rewards), "start_val_reward": mean(&start),
               "start_sampled_reward": mean(&start_sampled)})
    );

    // The same split per tensor: where the signal and the noise live.
    let mut per_tensor = Vec::new();
    let mut off = 0;
    for (name, var) in &opt.params {
        let n = var.elem_count();
        let part = |v: &[f32]| v[off..off + n].to_vec();
        let t_total = part(&total);
        let t_sq: f64 = flat.iter().map(|g| dot(&part(g), &part(g))).sum();
        let t_mu2 = (dot(&t_total, &t_total) - t_sq) / (m * (m - 1).max(1)) as f64;
        per_tensor.push((name.clone(), n, t_mu2, t_sq / m as f64 - t_mu2));
        off += n;
    }
    per_tensor.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (name, n, t_mu2, t_tr) in per_tensor.iter().take(12) {
        println!(
            "{}",
            json!({"kind": "tensor", "name": name, "elements": n, "mu_sq_share": t_mu2 / mu2, "trace_share": t_tr / tr})
        );
    }

    // Line search. The loss gradient points uphill in loss: the move is −ρ·d.
    let rms = |v: &[f32]| (dot(v, v) / v.len().max(1) as f64).sqrt();
    let unit = |v: Vec<f32>| -> Vec<f32> {
        let r = rms(&v).max(1e-30) as f32;
        v.into_iter().map(|x| x / r).collect()
    };
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut normal = || {
        let mut u = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (u1, u2) = (u(), u());
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let mut directions = Vec::new();
    for name in &wanted {
        let d: Vec<f32> = match name.as_str() {
            "grad" => unit(total.clone()),
            "-grad" => unit(total.iter().map(|x| -x).collect()),
            "sign" => total.iter().map(|x| x.signum()).collect(),
            "-sign" => total.iter().map(|x| -x.signum()).collect(),
            "random" => unit((0..n_param).map(|_| normal()).collect()),
            other => return Err(format!("--directions: grad, -grad, sign, -sign or random, not {other}").into()),
        };
        directions.push((name.as_str(), d));
    }
    for (name, d) in &directions {
        for &rho in &scales {
            let mut off = 0;
            for ((_, var), t0) in opt.params.iter().zip(&theta0) {
                let n = t0.elem_count();
                let step = Tensor::from_slice(&d[off..off + n], t0.shape(), &device)?;
                var.set(&(t0 - (step * rho)?)?)?;
                off += n;
            }
            let (totals, _) = grpo::validate(&mut parts, &val, max_new)?;
            let (gain, se) = grpo::paired_gain(&totals, &start);
            let now_sampled = sample_val(&mut parts)?;
            let (s_gain, s_se) = grpo::paired_gain(&now_sampled, &start_sampled);
            eprintln!(
                "{name} ρ={rho:e}: validation {:.3} ({gain:+.3} ± {se:.3}); sampled {:.3} ({s_gain:+.3} ± {s_se:.3})",
                mean(&totals),
                mean(&now_sampled)
            );
            println!(
                "{}",
                json!({"kind": "move", "direction": name, "rho": rho, "val_reward": mean(&totals), "gain": gain,
                       "gain_se": se, "sampled_reward": mean(&now_sampled), "sampled_gain": s_gain, "sampled_gain_se": s_se})
            );
        }
        for ((_, var), t0) in opt.params.iter().zip(&theta0) {
            var.set(t0)?;
        }
    }
    Ok(())
}
