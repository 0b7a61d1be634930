//! Diagnosis: how much of the image reaches the decoder. Prints the norms of the merger's parameters and the
//! position table, the merger output of two scenes (its norm and its spread over positions: a huge norm with a small
//! spread is a constant that drowns the image content), and, per decoder layer, the relative difference of the
//! hidden state at the last prompt position between the two scenes. For a checkpoint, or the demo's initialisation.
//! `cargo run --release -p sgvlm-train --example layer_signal [CHECKPOINT_DIR]`
use candle_core::Device;
use sgvlm_model::ImageInput;
use sgvlm_train::batch::collate;
use sgvlm_train::demo::{checkpoint_or_init, demo_encoder, scene, user_prompt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from);
    let policy = checkpoint_or_init(dir.as_deref(), &Device::Cpu)?;
    let model = policy.model()?;
    let mut names: Vec<_> = policy.tensors().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, t) in names {
        if k.contains("merger") || k.contains("pos_embed") || k.contains("norm.weight") && k.contains("language") {
            let n = t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
            let m = t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            println!("{k:55} norm {n:9.3} max|x| {m:8.3} dims {:?}", t.dims());
        }
    }
    let enc = demo_encoder(&policy.config, 128 * 96)?;
    let mut states = Vec::new();
    for i in 0..2 {
        let s = scene(0, 2, i, (128, 96));
        let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?;
        let b = collate(&[&ex], 0, &Device::Cpu)?;
        let images = b.pixel_values.as_ref().map(|pv| ImageInput { pixel_values: pv, grids: &b.grids });
        let feats = model.vision.forward(b.pixel_values.as_ref().unwrap(), &b.grids)?;
        let mean = feats.mean(0)?;
        let spread = feats.broadcast_sub(&mean)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        let norm = feats.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        println!(
            "scene {i}: merger output |f| {norm:.3}, spread over positions {spread:.3}, first row {:?}",
            &feats.get(0)?.to_vec1::<f32>()?[..4]
        );
        let embeds = model.embed(&b.ids, images)?;
        let (pos, _) = sgvlm_model::positions::rope_index(&model.config, &b.ids.to_vec2::<u32>()?, &b.grids)?;
        let out = model.text.forward(&embeds, &pos, None, true)?;
        let p = ex.prompt.len() - 1;
        let mut v: Vec<candle_core::Tensor> =
            out.hidden_states.iter().map(|h| h.get(0).unwrap().get(p).unwrap()).collect();
        v.push(out.last_hidden.get(0)?.get(p)?);
        let logits = model.lm_head.forward(&out.last_hidden.get(0)?.get(p)?.unsqueeze(0)?)?;
        v.push(logits.squeeze(0)?);
        states.push(v);
    }
    for (k, (a, b)) in states[0].iter().zip(&states[1]).enumerate() {
        let d = (a - b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        let n = a.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
        println!("state {k}: |a| {n:.3}, |a-b|/|a| {:.2e}", d / n);
    }
    Ok(())
}
