//! Diagnosis: how strongly do image tokens differ between scenes at the demo's initialisation?
//! Prints, for the demo model at init: mean norm of text-token and image-token embeddings, the relative distance
//! between the image-token embeddings of two different scenes, the same for the final hidden state at the last
//! prompt position, and a check that a scene inside a right-padded batch gets exactly its own image rows and state.
//! Usage: `cargo run --release -p sgvlm-train --example image_signal [SIN_COS_AMPLITUDE]` (default 1; 0 = random table).
use candle_core::{Device, Tensor};
use sgvlm_model::checkpoint;
use sgvlm_train::batch::{collate, hidden_states};
use sgvlm_train::demo::{demo_encoder, init_policy, model_config, scene, user_prompt, DemoRecipe};
use sgvlm_train::policy::{Freeze, Policy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let cfg = model_config(false);
    // Argument: scale of the sine/cosine position embeddings (default 1, the demo's; 0 keeps the random init).
    let scale: f32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let policy = if scale > 0.0 {
        init_policy(&cfg, &DemoRecipe { sincos_scale: scale, ..DemoRecipe::default() }, 0, &Device::Cpu)?
    } else {
        let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu)?;
        Policy::from_tensors(cfg.clone(), weights, Freeze { vit: false, aligner: false }, &Device::Cpu)?
    };
    let model = policy.model()?;
    let enc = demo_encoder(&cfg, 128 * 96)?;
    let exs: Vec<_> = (0..2)
        .map(|i| {
            let s = scene(0, 2, i, (128, 96));
            enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap()
        })
        .collect();
    let image_id = cfg.image_token_id as u32;
    for ex in &exs {
        let b = collate(&[ex], 0, &Device::Cpu)?;
        let images = b.pixel_values.as_ref().map(|pv| sgvlm_model::ImageInput { pixel_values: pv, grids: &b.grids });
        let e = model.embed(&b.ids, images)?.squeeze(0)?;
        let ids = b.ids.squeeze(0)?.to_vec1::<u32>()?;
        let norms: Vec<f32> = e.sqr()?.sum(1)?.sqrt()?.to_vec1()?;
        let (mut ti, mut tn, mut ii, mut inn) = (0.0, 0, 0.0, 0);
        for (id, n) in ids.iter().zip(&norms) {
            if *id == image_id {
                ii += n;
                inn += 1;
            } else {
                ti += n;
                tn += 1;
            }
        }
        println!(
            "text tokens {tn}: mean norm {:.3}; image tokens {inn}: mean norm {:.3}",
            ti / tn as f32,
            ii / inn as f32
        );
    }
    // Image rows of the two scenes.
    let rows = |ex: &sgvlm_train::batch::Example| -> Result<Tensor, Box<dyn std::error::Error>> {
        let b = collate(&[ex], 0, &Device::Cpu)?;
        let images = b.pixel_values.as_ref().map(|pv| sgvlm_model::ImageInput { pixel_values: pv, grids: &b.grids });
        let e = model.embed(&b.ids, images)?.squeeze(0)?;
        let ids = b.ids.squeeze(0)?.to_vec1::<u32>()?;
        let idx: Vec<u32> = ids.iter().enumerate().filter(|(_, id)| **id == image_id).map(|(i, _)| i as u32).collect();
        let n = idx.len();
        Ok(e.index_select(&Tensor::from_vec(idx, n, &Device::Cpu)?, 0)?)
    };
    let (a, b) = (rows(&exs[0])?, rows(&exs[1])?);
    let diff = (&a - &b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    let na = a.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    println!("image rows: |a - b| / |a| = {:.4}", diff / na);
    // Mean over image rows (what is common to every image position).
    let mean = a.mean(0)?;
    let centred = a.broadcast_sub(&mean)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    println!("image rows of scene 0: |a - mean_row| / |a| = {:.4}", centred / na);
    // Last hidden state at the end of the prompt.
    let h = |ex: &sgvlm_train::batch::Example| -> Result<Tensor, Box<dyn std::error::Error>> {
        let b = collate(&[ex], 0, &Device::Cpu)?;
        let hs = hidden_states(&model, &b)?;
        Ok(hs.get(ex.prompt.len() - 1)?)
    };
    let (ha, hb) = (h(&exs[0])?, h(&exs[1])?);
    let d = (&ha - &hb)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    let n = ha.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    println!("final hidden at the last prompt position: |a - b| / |a| = {:.4}", d / n);
    // Batching: scene 1's image rows inside a batch of both must equal scene 1's rows alone.
    let both = collate(&[&exs[0], &exs[1]], 0, &Device::Cpu)?;
    let images = both.pixel_values.as_ref().map(|pv| sgvlm_model::ImageInput { pixel_values: pv, grids: &both.grids });
    let e = model.embed(&both.ids, images)?.get(1)?;
    let ids = both.ids.get(1)?.to_vec1::<u32>()?;
    let idx: Vec<u32> = ids.iter().enumerate().filter(|(_, id)| **id == image_id).map(|(i, _)| i as u32).collect();
    let n1 = idx.len();
    let in_batch = e.index_select(&Tensor::from_vec(idx, n1, &Device::Cpu)?, 0)?;
    let gap = (&in_batch - &b)?.abs()?.max_all()?.to_scalar::<f32>()?;
    let gap0 = (&in_batch - &a)?.abs()?.max_all()?.to_scalar::<f32>()?;
    println!("scene 1 in a batch of two vs alone: max |diff| {gap:.2e} (vs scene 0 alone: {gap0:.2e})");
    let hb2 = hidden_states(&model, &both)?;
    let t = both.ids.dim(1)?;
    let last1 = hb2.get(t + exs[1].prompt.len() - 1)?;
    let gh = (&last1 - &hb)?.abs()?.max_all()?.to_scalar::<f32>()?;
    println!("scene 1 final hidden in the batch vs alone: max |diff| {gh:.2e}");
    Ok(())
}
