//! Prints greedy outputs of a demo checkpoint next to the targets (diagnosis of unparseable outputs).
//! Usage: `cargo run -p sgvlm-train --example demo_outputs -- DIR [N]`.

use candle_core::Device;
use sgvlm_train::demo::{demo_encoder, inference_model, scene, user_prompt};
use sgvlm_train::policy::{Freeze, Policy};
use sgvlm_train::rollout::{CachedSampler, Prompt, Rollout, Sampling};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).ok_or("usage: demo_outputs DIR [N]")?);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let policy = Policy::load(&dir, Freeze::default(), &Device::Cpu)?;
    let enc = demo_encoder(&policy.config, 128 * 96)?;
    let mut sampler = CachedSampler { model: inference_model(&policy)?, max_batch: 8 };
    let stop_seq = enc.tokenizer.encode("</answer>")?;
    for i in 0..n {
        let s = scene(0, 2, i, (128, 96));
        let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?;
        let sm = Sampling {
            temperature: 0.0,
            max_new_tokens: ex.target.len() + 64,
            seed: 0,
            stop_ids: vec![enc.im_end],
            stop_seq: stop_seq.clone(),
            unconstrained: 0,
        };
        let out = sampler.generate(&[Prompt { ids: &ex.prompt, image: ex.image.as_ref() }], 1, &sm)?;
        println!("--- scene {i}: prompt tail {:?}", enc.tokenizer.decode(&ex.prompt[ex.prompt.len() - 12..], false)?);
        println!("target ({} tok):\n{}", ex.target.len(), s.answer);
        println!(
            "output ({} tok): {:?}\n{}",
            out[0].len(),
            &out[0][..out[0].len().min(20)],
            enc.tokenizer.decode(&out[0], false)?
        );
        println!("target ids head: {:?}", &ex.target[..20.min(ex.target.len())]);
    }
    Ok(())
}
