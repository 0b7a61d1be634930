//! SFT-only runs of the synthetic demo for recipe experiments (a tool, not a test): trains for `--minutes`, then
//! evaluates with free and constrained decoding and prints one JSON line per stage plus the SFT summary.
//!
//! `cargo run -p sgvlm-train --example demo_sft -- --minutes 6 [--lr 2e-3] [--batch 8] [--warmup 0.05]
//! [--beta2 0.999] [--wd 0.1] [--fan-in-init] [--chunk 16] [--sincos-scale 1] [--vision-lr 1] [--train 1000] [--test 16] [--size 128x96] [--seed 0]
//! [--threads 0] [--sft-share 1 (below 1: GRPO after SFT)] [--from-sft DIR (a finished `sft` folder: GRPO only)]
//! [--grpo-lr 2e-6] [--grpo-temperature 0.7] [--grpo-group 8] [--grpo-prompts 4] [--grpo-eval-every 20]
//! [--grpo-row-credit 0 (per-row credit weight, `sgvlm_train::credit`; large steps: 1)] [--grpo-kl-cap D|off] [--grpo-forced-below F|off] [--grpo-grammar W] [--grpo-free-check N] [--grpo-margin 2]
//! [--grpo-confirm 1 | off (confirmation scenes' margin, `DemoRecipe::grpo_confirm_margin`)] [--grpo-confirm-all]
//! [--grpo-baseline group_mean|greedy (`sgvlm_train::grpo::Baseline`)]
//! [--grpo-scenes 2048] [--grpo-train-scenes (GRPO on the first training scenes, not fresh ones)]
//! [--grpo-free-rollouts K (of each group's rollouts, how many decode without the constraint)]
//! [--grpo-small-steps (never `DemoRecipe::grpo_large`; so do --grpo-prompts, --grpo-lr, --grpo-eval-every)]
//! [--head-share 0.2] [--head-lr 3e-4] [--units-weight 1] [--by-kind] [--class-weight 4] [--class-hold 0.5] [--class-until 0.8] [--weighted names|digits|units] [--patch 8] [--hidden 96 --inter 256] [--out DIR]`

use candle_core::Device;
use sgvlm_train::demo::{run_with, DemoOptions, DemoRecipe};
use sgvlm_train::report::Reporter;

struct Quiet;

impl Reporter for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn step(&self, step: u64, rec: &serde_json::Value) {
        if step % 10 == 0 {
            eprintln!("{rec}");
        }
    }
    fn message(&self, m: &str) {
        eprintln!("{m}");
    }
    fn finish(&self) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let num = |k: &str, d: f64| get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
    let mut r = DemoRecipe::default();
    r.lr = num("--lr", r.lr);
    r.batch_size = num("--batch", r.batch_size as f64) as usize;
    r.warmup_ratio = num("--warmup", r.warmup_ratio);
    r.adamw.beta2 = num("--beta2", r.adamw.beta2);
    r.adamw.weight_decay = num("--wd", r.adamw.weight_decay);
    r.fan_in_init = args.iter().any(|a| a == "--fan-in-init");
    r.delta_chunk = num("--chunk", r.delta_chunk as f64) as usize;
    r.sincos_scale = num("--sincos-scale", r.sincos_scale as f64) as f32;
    r.vision_lr_scale = num("--vision-lr", r.vision_lr_scale);
    r.class_weight = num("--class-weight", r.class_weight as f64) as f32;
    r.class_hold = num("--class-hold", r.class_hold);
    r.class_until = num("--class-until", r.class_until);
    r.head_share = num("--head-share", r.head_share);
    r.head_lr = num("--head-lr", r.head_lr);
    r.units_weight = num("--units-weight", r.units_weight as f64) as f32;
    r.grpo_lr = num("--grpo-lr", r.grpo_lr);
    r.grpo_temperature = num("--grpo-temperature", r.grpo_temperature as f64) as f32;
    r.grpo_eval_every = num("--grpo-eval-every", r.grpo_eval_every as f64) as u64;
    r.grpo_group = num("--grpo-group", r.grpo_group as f64) as usize;
    r.grpo_prompts = num("--grpo-prompts", r.grpo_prompts as f64) as usize;
    r.grpo_select_margin = num("--grpo-margin", r.grpo_select_margin);
    if let Some(b) = get("--grpo-baseline") {
        r.grpo_baseline = b.parse()?;
    }
    r.grpo_confirm_all = args.iter().any(|a| a == "--grpo-confirm-all");
    if let Some(m) = get("--grpo-confirm") {
        r.grpo_confirm_margin = sgvlm_train::demo::parse_confirm_margin(&m)?;
    }
    r.grpo_scenes = num("--grpo-scenes", r.grpo_scenes as f64) as usize;
    if let Some(k) = get("--grpo-free-rollouts") {
        r.set_free_rollouts(k.parse()?)?;
    }
    // Steps as given, or the recipe's large steps in a long phase (`DemoRecipe::grpo_large`).
    if ["--grpo-prompts", "--grpo-lr", "--grpo-eval-every", "--grpo-small-steps"]
        .iter()
        .any(|k| args.iter().any(|a| a == k))
    {
        r.set_grpo_steps("small")?;
    }
    if let Some(w) = get("--grpo-row-credit") {
        r.set_row_credit(w.parse()?)?;
    }
    if let Some(f) = get("--grpo-forced-below") {
        r.set_forced_below(&f)?;
    }
    if let Some(g) = get("--grpo-grammar") {
        r.set_grammar_weight(&g)?;
    }
    r.grpo_free_check = num("--grpo-free-check", r.grpo_free_check as f64) as usize;
    if let Some(c) = get("--grpo-kl-cap") {
        r.set_kl_cap(&c)?;
    }
    if args.iter().any(|a| a == "--grpo-train-scenes") {
        r.grpo_fresh = false;
    }
    r.weighted = match get("--weighted").as_deref() {
        None => r.weighted,
        Some("digits") => sgvlm_train::demo::Weighted::Digits,
        Some("units") => sgvlm_train::demo::Weighted::BoxUnits,
        Some("names") => sgvlm_train::demo::Weighted::Names,
        Some(w) => return Err(format!("--weighted digits|units|names, not {w}").into()),
    };
    r.patch_size = num("--patch", r.patch_size as f64) as usize;
    if let (Some(h), Some(i)) = (get("--hidden"), get("--inter")) {
        r.text_width = Some((h.parse()?, i.parse()?));
    }
    if args.iter().any(|a| a == "--by-kind") {
        r.order = sgvlm_train::demo::ObjectOrder::ByKind;
    }
    let size = get("--size").unwrap_or_else(|| "128x96".into());
    let (w, h) = size.split_once('x').ok_or("--size WxH")?;
    let o = DemoOptions {
        minutes: num("--minutes", 6.0),
        train_scenes: num("--train", 1000.0) as usize,
        val_scenes: num("--val", num("--test", 16.0)) as usize,
        test_scenes: num("--test", 16.0) as usize,
        image_size: (w.parse()?, h.parse()?),
        large: args.iter().any(|a| a == "--large"),
        seed: num("--seed", 0.0) as u64,
        sft_share: num("--sft-share", 1.0),
        device: Device::Cpu,
        out: get("--out").map(Into::into),
        free_rollouts: false,
        threads: num("--threads", 0.0) as usize,
        from_sft: get("--from-sft").map(Into::into),
    };
    eprintln!("recipe {}", serde_json::to_string(&r)?);
    let res = run_with(&o, &r, &Quiet)?;
    for st in &res.stages {
        let m = &st.summary;
        println!(
            "{}",
            serde_json::json!({"stage": st.stage, "decoding": st.decoding, "sgg": m.sgg_strict,
                "obj_f1": m.obj_f1_strict, "rel_f1": m.rel_f1_strict, "rel_p": m.rel_p_strict, "rel_r": m.rel_r_strict,
                "name_f1": st.name_f1, "box_f1": st.box_f1, "reward": st.mean_reward,
                "obj_halluc": st.reward_term("sgg_obj_hallucination_penalty"),
                "rel_halluc": st.reward_term("sgg_edge_hallucination_penalty"),
                "strict_failure": st.strict_failure_rate,
                "distinct": st.distinct_predictions})
        );
    }
    if let Some(h) = &res.sft_head {
        println!("{}", serde_json::json!({"sft_head": h}));
    }
    println!("{}", serde_json::to_string(&res.sft)?);
    if let Some(g) = &res.grpo {
        println!("{}", serde_json::json!({"grpo": g}));
    }
    Ok(())
}
