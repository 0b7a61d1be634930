//! Writes demo scenes as PNG (the 640×480 rendering and the model-sized image, upscaled for viewing) and prints each
//! answer with its token count: `cargo run -p sgvlm-train --example scene_peek -- OUT_DIR [N]`.
use sgvlm_train::demo::{demo_encoder, model_config, scene, user_prompt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).ok_or("usage: scene_peek OUT_DIR [N]")?);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    std::fs::create_dir_all(&out)?;
    let enc = demo_encoder(&model_config(false), 128 * 96)?;
    for i in 0..n {
        let s = scene(0, 2, i, (128, 96));
        s.rgb640.save(out.join(format!("scene{i}.png")))?;
        let small = image::RgbImage::from_raw(s.small.2 as u32, s.small.1 as u32, s.small.0.clone()).ok_or("size")?;
        image::imageops::resize(&small, 640, 480, image::imageops::FilterType::Nearest)
            .save(out.join(format!("scene{i}_small.png")))?;
        let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?;
        println!("--- scene {i}: prompt {} tokens, target {} tokens\n{}", ex.prompt.len(), ex.target.len(), s.answer);
    }
    Ok(())
}
