//! Does the demo model learn to read the image? Trains the demo model (as `sgvlm demo` initialises it) with plain
//! SFT steps and, every `--every` steps, prints the validation loss with each scene's own image and with the images
//! rotated by one scene: when the model uses the image the second is higher ("gap"). A tool, not a test.
//!
//! `cargo run --release -p sgvlm-train --example image_probe -- [--steps 200] [--batch 8] [--lr 4e-3]
//! [--vision-lr 1] [--sincos-scale 1] [--short] [--layers LFLF] [--image-scale 1] [--hint] [--solid] [--train 2000] [--val 32] [--every 25] [--seed 0]
//! [--system TEXT] [--by-kind] [--fan-in-init] [--threads 1] [--digit-weight W --digit-hold 0.4 --digit-until 0.6]`
//! `--short` trains on the answer's head only (count and first object's name), which no prior can guess.
use candle_core::Device;
use sgvlm_train::batch::Example;
use sgvlm_train::demo::{
    answer_head, demo_encoder, init_policy, model_config, scene_ordered, user_prompt, DemoRecipe, ObjectOrder,
};
use sgvlm_train::optim::AdamW;
use sgvlm_train::sft::{eval_loss, sft_step, SftOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let num = |k: &str, d: f64| get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
    let short = args.iter().any(|a| a == "--short");
    // `--by-kind`: objects listed by kind, then left to right (demo::ObjectOrder::ByKind).
    let order = if args.iter().any(|a| a == "--by-kind") { ObjectOrder::ByKind } else { ObjectOrder::LeftToRight };
    let hint = args.iter().any(|a| a == "--hint");
    let mut r = DemoRecipe::default();
    r.lr = num("--lr", r.lr);
    r.batch_size = num("--batch", r.batch_size as f64) as usize;
    r.sincos_scale = num("--sincos-scale", r.sincos_scale as f64) as f32;
    r.vision_lr_scale = num("--vision-lr", r.vision_lr_scale);
    r.fan_in_init = r.fan_in_init || args.iter().any(|a| a == "--fan-in-init");
    let (steps, every, seed) = (num("--steps", 200.0) as u64, num("--every", 25.0) as u64, num("--seed", 0.0) as u64);
    let mut cfg = model_config(false);
    // `--layers FLFL`: decoder layer types (F full attention, L Gated DeltaNet), one letter per layer.
    if let Some(p) = get("--layers") {
        use sgvlm_model::LayerType;
        let t = &mut cfg.text_config;
        t.layer_types =
            p.chars().map(|c| if c == 'F' { LayerType::FullAttention } else { LayerType::LinearAttention }).collect();
        t.num_hidden_layers = t.layer_types.len();
    }
    let policy = init_policy(&cfg, &r, seed, &Device::Cpu)?;
    // `--image-scale X`: the merger's output projection (weight and bias) times X at init.
    let scale = num("--image-scale", 1.0);
    for (name, var) in policy.trainable() {
        if name.starts_with("model.visual.merger.linear_fc2.") {
            var.set(&(var.as_tensor() * scale)?)?;
        }
    }
    let mut enc = demo_encoder(&cfg, 128 * 96)?;
    // `--system TEXT`: a system turn before the image (tokens an attention sink can form on, other than the image's).
    enc.system = get("--system");
    let make = |stream: u64, n: usize, shift: usize| -> Result<Vec<Example>, Box<dyn std::error::Error>> {
        let scenes: Vec<_> = (0..n as u64).map(|i| scene_ordered(seed, stream, i, (128, 96), order)).collect();
        let mut out = Vec::new();
        for (i, s) in scenes.iter().enumerate() {
            let other = &scenes[(i + shift) % n];
            let img = &other.small;
            let answer = if short { answer_head(&s.answer) } else { s.answer.clone() };
            // `--hint`: the prompt also states the count and the leftmost object (of the scene whose image it
            // shows), a text route to the same facts: checks that the decoder can move content to the answer.
            let user = if hint {
                let g = &other.graph;
                format!("{} {} {}", user_prompt(), g.objects.len(), g.objects.first().map_or("", |o| o.name.as_str()))
            } else {
                user_prompt()
            };
            out.push(enc.example(&user, &answer, Some((&img.0, img.1, img.2)))?);
        }
        Ok(out)
    };
    // `--solid`: each image is one flat colour out of seven and the answer is the object name paired with it: the
    // simplest possible image-dependent task (a broken image path cannot learn it).
    let solid = |stream: u64, n: usize, shift: usize| -> Result<Vec<Example>, Box<dyn std::error::Error>> {
        let (names, _) = sgvlm_train::demo::vocabulary();
        let colours = [
            [220u8, 40, 40],
            [40, 200, 40],
            [40, 40, 220],
            [230, 200, 40],
            [200, 40, 200],
            [40, 200, 200],
            [30, 30, 30],
        ];
        let pick = |i: usize| ((i as u64 * 2654435761 + stream * 97) >> 7) as usize % colours.len();
        (0..n)
            .map(|i| {
                let c = colours[pick((i + shift) % n)];
                let px: Vec<u8> = (0..128 * 96).flat_map(|_| c).collect();
                Ok(enc.example(&user_prompt(), &format!("<answer>\n{}", names[pick(i)]), Some((&px, 96, 128)))?)
            })
            .collect()
    };
    let is_solid = args.iter().any(|a| a == "--solid");
    let build = |stream, n, shift| if is_solid { solid(stream, n, shift) } else { make(stream, n, shift) };
    let train = build(0, num("--train", 2000.0) as usize, 0)?;
    let n_val = num("--val", 32.0) as usize;
    let (val, rotated) = (build(1, n_val, 0)?, build(1, n_val, 1)?);
    // `--digit-weight W [--digit-hold H --digit-until U]`: the number-token curriculum (crate::curriculum).
    let token_weight = get("--digit-weight").and_then(|w| w.parse::<f32>().ok()).map(|w| {
        sgvlm_train::curriculum::TokenWeight::digits(
            &enc.tokenizer,
            w,
            num("--digit-hold", 0.4),
            num("--digit-until", 0.6),
        )
    });
    let o = SftOptions {
        delta_chunk: Some(r.delta_chunk),
        vocab_chunk: 4096,
        threads: num("--threads", 1.0) as usize,
        token_weights: token_weight.into_iter().collect(),
        ..SftOptions::default()
    };
    let mut model = policy.model()?;
    model.text.chunk = r.delta_chunk;
    let mut opt = AdamW::new(policy.trainable(), r.adamw)?;
    opt.scale_lr("model.visual.", r.vision_lr_scale);
    let started = std::time::Instant::now();
    let warm = (steps as f64 * r.warmup_ratio).ceil() as u64;
    for step in 0..=steps {
        if step % every == 0 || step == steps {
            let own = eval_loss(&policy, &model, &val, 16, 4096)?.unwrap_or(f64::NAN);
            let other = eval_loss(&policy, &model, &rotated, 16, 4096)?.unwrap_or(f64::NAN);
            println!(
                "{}",
                serde_json::json!({"step": step, "val_loss": own, "rotated_images_loss": other, "gap": other - own,
                    "seconds": started.elapsed().as_secs_f64()})
            );
        }
        if step == steps {
            break;
        }
        let lr = sgvlm_train::optim::lr_at(step, r.lr, warm, steps);
        let first = (step as usize * r.batch_size) % train.len();
        let idx: Vec<usize> = (first..first + r.batch_size).map(|i| i % train.len()).collect();
        sft_step(&policy, &model, &mut opt, &train, &[idx], lr, step as f64 / steps as f64, &o)?;
    }
    Ok(())
}
