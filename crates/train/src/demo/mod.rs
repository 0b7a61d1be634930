//! The synthetic end-to-end proof: synthetic scenes → a tiny Qwen3.5-architecture model from random weights →
//! SFT → GRPO → strict evaluation of all three stages on held-out scenes.
//!
//! The task is the PSG one on `sgvlm_data::synth` scenes (seven object kinds, five relations, 2–8 objects at their true
//! sizes; see that module): the answer is the paper-layout TOON graph in 640×480 coordinates, the image is the rendered
//! 640×480 scene shown to the model at a reduced size (default 128×96, patch 8: 48 image tokens). The user prompt is a
//! one-line fixed instruction instead of the 1.3 kB PSG prompt: it carries no information about the scene (the closed
//! vocabularies reach decoding through the constraint), and on a CPU every prompt token costs (the earlier 125-token
//! instruction was a quarter of each training sequence). The vision tower starts from random weights except its
//! position embeddings, which hold fixed 2-D sine/cosine values (faster early progress on boxes, per the issue's
//! calibration); it trains during SFT and is frozen during GRPO, as in the paper.
//!
//! Generation goes through the native engine ([`EngineRollout`]). Each stage is evaluated twice, with free
//! decoding and with the TOON constraint (triplet schema, the 640×480 canvas, the closed synthetic vocabularies):
//! a briefly trained tiny model starts its answers right but then repeats rows and miscounts until it runs out of
//! tokens, so free outputs fail the strict gate and would give GRPO no reward signal; constrained ones are valid
//! whenever they finish. GRPO's rollouts are constrained unless [`DemoOptions::free_rollouts`].

use std::time::Instant;

use candle_core::Device;
use rayon::prelude::*;
use sgvlm_eval::rewards::RewardConfig;
use sgvlm_eval::strict_eval::{self, Summary, TripletConfig};
use sgvlm_graph::Schema;
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::Config;

use crate::batch::Example;
use crate::encode::Encoder;
use crate::engine_rollout::EngineRollout;
use crate::error::{Result, TrainError};
use crate::grpo::{self, GrpoOptions, GrpoParts, GrpoPrompt};
use crate::policy::{Freeze, Policy};
use crate::report::Reporter;
use crate::rollout::{Prompt, Rollout, Sampling};
use crate::sft::{self, Output, Schedule, SftOptions};

mod recipe;
mod scenes;
mod score;
mod sft_phases;
pub use recipe::{
    fan_in_init, init_policy, model_config, parse_confirm_margin, recipe_config, recipe_weights, sincos_2d, DemoRecipe,
    GrpoSteps, LargeSteps, Weighted,
};
pub use scenes::{
    answer_head, grpo_scenes, scene, scene_ordered, user_prompt, vocabulary, ObjectOrder, Scene, CONFIRM_STREAM,
    GRPO_STREAM, TEST_STREAM,
};
pub use score::{name_box_f1, StageResult};
pub use sft_phases::{image_use, ImageUse};
use sft_phases::{read_summary, train_sft, HeadPhase};

/// The tiny tokenizer and an image processor for the demo model's vision layout, resizing images to at most
/// `max_pixels` (at least 1,024).
pub fn demo_encoder(cfg: &Config, max_pixels: usize) -> Result<Encoder> {
    let v = &cfg.vision_config;
    let processor = ImageProcessor {
        patch_size: v.patch_size,
        merge_size: v.spatial_merge_size,
        temporal_patch_size: v.temporal_patch_size,
        min_pixels: 1024,
        max_pixels,
        ..ImageProcessor::default()
    };
    Encoder::new(Tokenizer::tiny(), processor, cfg)
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub minutes: f64,
    pub train_scenes: usize,
    pub val_scenes: usize,
    pub test_scenes: usize,
    pub image_size: (u32, u32),
    pub large: bool,
    pub seed: u64,
    /// Share of the time budget for SFT (the rest minus evaluation goes to GRPO).
    pub sft_share: f64,
    pub device: Device,
    pub out: Option<std::path::PathBuf>,
    /// GRPO rollouts without the constraint (evaluation always reports both decodings).
    pub free_rollouts: bool,
    /// SFT threads ([`SftOptions::threads`]); 0: one per available core.
    pub threads: usize,
    /// Start from a finished SFT run instead of training one: the `sft` folder a demo wrote (its `best`
    /// checkpoint and `summary.json`; a sibling `sft_head/summary.json` is read when present). The random-init
    /// stage is not evaluated; SFT and GRPO are, on the same test scenes as the run that wrote the folder when
    /// the seed and scene counts match.
    pub from_sft: Option<std::path::PathBuf>,
}

/// The constraint of the synthetic task: triplet TOON on the 640×480 canvas, closed vocabularies.
pub fn constraint() -> sgvlm_infer::Constraint {
    let (objects, predicates) = vocabulary();
    sgvlm_infer::Constraint {
        schema: Schema::Triplet,
        canvas: (640, 480),
        objects: Some(std::sync::Arc::new(objects)),
        predicates: Some(std::sync::Arc::new(predicates)),
    }
}

/// What the demo did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoResult {
    pub parameters: usize,
    pub train_scenes: usize,
    pub test_scenes: usize,
    pub sft: sft::SftSummary,
    /// The first SFT phase, on answer heads ([`DemoRecipe::head_share`]).
    pub sft_head: Option<sft::SftSummary>,
    pub grpo: Option<grpo::GrpoSummary>,
    pub stages: Vec<StageResult>,
    /// Whether the model reads the image, after each SFT phase ([`image_use`]).
    pub image_use: Vec<ImageUse>,
    pub seconds: f64,
    /// The SFT and GRPO settings the run trained with.
    pub recipe: DemoRecipe,
    #[serde(skip)]
    pub test: Vec<Scene>,
}

/// Everything a stage evaluation needs.
struct Ctx<'a> {
    encoder: &'a Encoder,
    stop_seq: Vec<u32>,
}

/// An engine over the policy's current weights (they are shared, so it sees later updates). It decodes up to 32
/// sequences together on the CPU and 128 on a GPU, where a decode step of the demo's model costs about the same at
/// either size (its time is the launches, not the arithmetic).
pub fn engine_rollout(policy: &Policy, encoder: &Encoder, constrained: bool) -> Result<EngineRollout> {
    let max_batch = if policy.device.is_cuda() { 128 } else { 32 };
    let engine = sgvlm_infer::engine::Engine::new(
        inference_model(policy)?,
        Tokenizer::tiny(),
        encoder.processor.clone(),
        sgvlm_infer::engine::EngineConfig {
            max_batch,
            refill_wait_steps: usize::MAX,
            record_allowed_mass: true,
            ..Default::default()
        },
    )
    .map_err(|e| TrainError::Input(format!("building the engine: {e}")))?;
    Ok(EngineRollout::new(engine, constrained.then(constraint)))
}

/// GRPO's share of the `left` seconds after SFT's evaluation took `eval_seconds`: all but what the last
/// evaluation needs (the same decodings of the same test scenes; half again for the longer answers GRPO may write)
/// and ten seconds for the choice of checkpoint. Until the twenty-fourth session GRPO had 60 % of what was left, so
/// a long demo ended early (of 60 minutes left after SFT, 24 went unused less a minute of evaluation).
fn grpo_budget(left: f64, eval_seconds: f64) -> f64 {
    (left - 1.5 * eval_seconds - 10.0).max(0.0)
}

/// Evaluates one stage with free and with constrained decoding.
fn evaluate_both(
    ctx: &Ctx,
    policy: &Policy,
    stage: &str,
    test: &[Scene],
    prompts: &[GrpoPrompt],
    max_new: usize,
) -> Result<Vec<StageResult>> {
    [false, true].iter().map(|&c| evaluate(ctx, policy, stage, c, test, prompts, max_new)).collect()
}

fn evaluate(
    ctx: &Ctx,
    policy: &Policy,
    stage: &str,
    constrained: bool,
    test: &[Scene],
    prompts: &[GrpoPrompt],
    max_new: usize,
) -> Result<StageResult> {
    let mut sampler = engine_rollout(policy, ctx.encoder, constrained)?;
    let s = Sampling {
        temperature: 0.0,
        max_new_tokens: max_new,
        seed: 0,
        stop_ids: vec![ctx.encoder.im_end],
        stop_seq: ctx.stop_seq.clone(),
        unconstrained: 0,
    };
    let started = Instant::now();
    let ps: Vec<Prompt> = prompts.iter().map(|p| Prompt { ids: &p.prompt, image: p.image.as_ref() }).collect();
    let out = sampler.generate(&ps, 1, &s)?;
    let per = started.elapsed().as_secs_f64() / out.len().max(1) as f64;
    let texts: Vec<String> = out.iter().map(|c| decode(ctx.encoder, c)).collect();
    let cfg = TripletConfig::default();
    let mut rows = Vec::new();
    for (sc, t) in test.iter().zip(&texts) {
        rows.push(
            strict_eval::evaluate(Some(&sc.answer), Some(t), &cfg)
                .map_err(|e| TrainError::Input(format!("evaluating {stage}: {e}")))?,
        );
    }
    let summary = Summary::of(&rows, &vec![per; rows.len()], &cfg);
    let gate = sgvlm_graph::StrictConfig::default();
    let failures = texts.iter().filter(|t| !sgvlm_graph::strict::is_valid(t, Schema::Triplet, &gate)).count();
    let (mut nf, mut bf) = (0.0, 0.0);
    for (sc, t) in test.iter().zip(&texts) {
        let (n, b) = name_box_f1(&sc.answer, t);
        nf += n;
        bf += b;
    }
    let k = test.len().max(1) as f64;
    let sols: Vec<&str> = test.iter().map(|s| s.answer.as_str()).collect();
    let (totals, reward_terms) = grpo::score(&texts, &sols, Schema::Triplet, &RewardConfig::default());
    Ok(StageResult {
        stage: stage.to_string(),
        decoding: if constrained { "constrained" } else { "free" }.to_string(),
        engine_errors: sampler.failed,
        summary,
        strict_failure_rate: failures as f64 / k,
        name_f1: nf / k,
        box_f1: bf / k,
        mean_reward: totals.iter().sum::<f64>() / k,
        reward_terms,
        distinct_predictions: texts.iter().collect::<std::collections::HashSet<_>>().len(),
        predictions: texts,
        rows,
    })
}

/// Completion ids to text (stop token dropped).
pub fn decode(enc: &Encoder, ids: &[u32]) -> String {
    let ids: Vec<u32> = ids.iter().copied().filter(|&t| t != enc.im_end).collect();
    enc.tokenizer.decode(&ids, false).unwrap_or_default()
}

/// A model over detached views of the policy's weights (sees updates, builds no graph).
pub fn inference_model(policy: &Policy) -> Result<sgvlm_model::Qwen35> {
    let detached = policy.tensors().into_iter().map(|(k, t)| (k, t.detach())).collect();
    Ok(sgvlm_model::Qwen35::from_tensors(&policy.config, detached, candle_core::DType::F32, &policy.device)?)
}

/// A demo checkpoint (everything trainable) or, without a folder, the demo model at initialisation with the
/// default recipe: what the diagnosis examples inspect.
pub fn checkpoint_or_init(dir: Option<&std::path::Path>, device: &Device) -> Result<Policy> {
    match dir {
        Some(d) => Policy::load(d, Freeze { vit: false, aligner: false }, device),
        None => init_policy(&model_config(false), &DemoRecipe::default(), 0, device),
    }
}

/// Runs the demo with the default recipe. `reporter` sees both training phases.
pub fn run(o: &DemoOptions, reporter: &dyn Reporter) -> Result<DemoResult> {
    run_with(o, &DemoRecipe::default(), reporter)
}

/// Runs the demo with SFT recipe `r` (`o.sft_share` ≥ 1 leaves no time for GRPO: SFT only).
pub fn run_with(o: &DemoOptions, r: &DemoRecipe, reporter: &dyn Reporter) -> Result<DemoResult> {
    let started = Instant::now();
    let budget = o.minutes * 60.0;
    let (policy, cfg) = match &o.from_sft {
        Some(dir) => {
            let best = dir.join("best");
            let weights = if best.join("config.json").is_file() { best } else { dir.clone() };
            let p = Policy::load(&weights, Freeze { vit: false, aligner: false }, &o.device)?;
            let cfg = p.config.clone();
            (p, cfg)
        }
        None => {
            let cfg = recipe_config(o.large, r);
            (init_policy(&cfg, r, o.seed, &o.device)?, cfg)
        }
    };
    let parameters = policy.tensors().values().map(|t| t.elem_count()).sum();
    let encoder = demo_encoder(&cfg, (o.image_size.0 * o.image_size.1) as usize)?;
    let stop_seq = encoder.tokenizer.encode("</answer>")?;
    let user = user_prompt();
    // Scenes 0..n of a stream with their examples, built on every core. Only the test scenes keep their 640×480
    // renderings (the report draws them): 20,000 training scenes would otherwise hold 18 GB.
    // Scenes `from..to` of a stream with their training examples.
    let build_range = |stream: u64, from: usize, to: usize| -> Result<(Vec<Scene>, Vec<Example>)> {
        let keep_full = stream == TEST_STREAM;
        let built = (from as u64..to as u64)
            .into_par_iter()
            .map(|i| {
                let mut s = scene_ordered(o.seed, stream, i, o.image_size, r.order);
                let ex = encoder.example(&user, &s.answer, Some((&s.small.0, s.small.1, s.small.2)))?;
                if !keep_full {
                    s.rgb640 = image::RgbImage::new(0, 0);
                }
                Ok((s, ex))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(built.into_iter().unzip())
    };
    let build = |stream: u64, n: usize| build_range(stream, 0, n);
    reporter.message(&format!(
        "generating {} train, {} validation, {} test scenes",
        o.train_scenes, o.val_scenes, o.test_scenes
    ));
    // The answers' heads for the first SFT phase ([`DemoRecipe::head_share`]), taken before the 640×480 renderings
    // of the training scenes are dropped.
    let heads = |scenes: &[Scene]| -> Result<Vec<Vec<u32>>> {
        scenes.iter().map(|s| Ok(encoder.tokenizer.encode(&answer_head(&s.answer))?)).collect()
    };
    let with_heads = r.head_share > 0.0;
    // Starting from a finished SFT run needs no training scenes (GRPO builds its own prompts below).
    let (train_scenes, mut train) = build(0, if o.from_sft.is_some() { 0 } else { o.train_scenes })?;
    let train_heads = if with_heads { heads(&train_scenes)? } else { Vec::new() };
    drop(train_scenes);
    let (val_scenes, mut val) = build(1, o.val_scenes)?;
    let (test, test_ex) = build(TEST_STREAM, o.test_scenes)?;
    let to_prompts = |scenes: &[Scene], ex: &[Example]| -> Vec<GrpoPrompt> {
        scenes
            .iter()
            .zip(ex)
            .map(|(s, e)| GrpoPrompt { prompt: e.prompt.clone(), image: e.image.clone(), solution: s.answer.clone() })
            .collect()
    };
    let test_prompts = to_prompts(&test, &test_ex);
    let val_prompts = to_prompts(&val_scenes, &val);
    let max_new = test_ex.iter().map(|e| e.target.len()).max().unwrap_or(200) + 64;
    let ctx = Ctx { encoder: &encoder, stop_seq: stop_seq.clone() };
    let mut stages = Vec::new();
    if o.from_sft.is_none() {
        stages = evaluate_both(&ctx, &policy, "random init", &test, &test_prompts, max_new.min(128))?;
        reporter.message(&format!("random init evaluated ({:.0} s)", started.elapsed().as_secs_f64()));
    }

    // The evaluation of two stages and GRPO's validation take part of the budget; SFT gets its share first.
    let sft_seconds = (budget * o.sft_share - started.elapsed().as_secs_f64()).max(10.0);
    let so = SftOptions {
        lr: r.lr,
        warmup_ratio: r.warmup_ratio,
        schedule: Schedule::Seconds(sft_seconds),
        batch_size: r.batch_size,
        adamw: r.adamw,
        delta_chunk: Some(r.delta_chunk),
        vision_lr_scale: r.vision_lr_scale,
        group_by_length: false,
        grad_accum: 1,
        max_grad_norm: 1.0,
        eval_every: 0,
        save_every: 0,
        seed: o.seed,
        vocab_chunk: 4096,
        threads: o.threads,
        token_weights: recipe_weights(r, &encoder.tokenizer),
        ..SftOptions::default()
    };
    let out = Output {
        dir: o.out.as_ref().map(|d| d.join("sft")),
        pixels: (1024, (o.image_size.0 * o.image_size.1) as usize),
        tokenizer_from: None,
    };
    val.truncate(16);
    let head_seconds = sft_seconds * r.head_share.clamp(0.0, 0.9);
    let mut uses = Vec::new();
    let (sft_head, sft_summary) = match &o.from_sft {
        Some(dir) => {
            let head = dir.parent().map(|p| p.join("sft_head").join("summary.json")).filter(|p| p.is_file());
            (head.map(|p| read_summary(&p)).transpose()?, read_summary(&dir.join("summary.json"))?)
        }
        None => {
            let reinit = |fresh: u32| -> Result<()> {
                let seed = o.seed.wrapping_add(0x5EED_0000 * fresh as u64);
                policy.assign(&init_policy(&cfg, r, seed, &o.device)?.tensors())
            };
            let head = if with_heads && head_seconds > 0.0 {
                let options = SftOptions {
                    lr: r.head_lr,
                    schedule: Schedule::Seconds(head_seconds),
                    token_weights: Vec::new(),
                    ..so.clone()
                };
                let out = Output { dir: o.out.as_ref().map(|d| d.join("sft_head")), ..out.clone() };
                Some(HeadPhase {
                    train: train_heads,
                    val: heads(&val_scenes[..val.len()])?,
                    options,
                    out,
                    retries: if head_seconds >= r.head_retry_min_seconds { r.head_retries } else { 0 },
                    closed_gap: r.closed_gap,
                    reinit: &reinit,
                    retry_lr_scale: r.head_retry_lr_scale,
                })
            } else {
                None
            };
            let so = SftOptions { schedule: Schedule::Seconds(sft_seconds - head_seconds), ..so };
            train_sft(&policy, &mut train, &mut val, head, &so, &out, &mut uses, reporter)?
        }
    };
    let u = image_use(&policy, &val, "SFT")?;
    reporter
        .message(&format!("image use after SFT: gap {:.2e} (near 0 would mean the answers ignore the image)", u.gap));
    uses.push(u);
    let eval_started = Instant::now();
    stages.extend(evaluate_both(&ctx, &policy, "SFT", &test, &test_prompts, max_new)?);
    let eval_seconds = eval_started.elapsed().as_secs_f64();
    reporter.message(&format!("SFT evaluated ({:.0} s)", started.elapsed().as_secs_f64()));

    let left = budget - started.elapsed().as_secs_f64();
    let grpo_seconds = grpo_budget(left, eval_seconds);
    let mut grpo_summary = None;
    if grpo_seconds > 20.0 {
        let reference = policy.frozen_model(candle_core::DType::F32)?;
        let rl = Policy {
            config: cfg.clone(),
            varmap: policy.varmap.clone(),
            freeze: Freeze::default(),
            device: o.device.clone(),
        };
        let mut sampler = engine_rollout(&rl, &encoder, !o.free_rollouts)?;
        let rl_prompts = {
            let (stream, n) = grpo_scenes(o, r);
            let (scenes, ex) = build(stream, n)?;
            to_prompts(&scenes, &ex)
        };
        let dec = |ids: &[u32]| decode(&encoder, ids);
        let mut parts = GrpoParts {
            rollout: &mut sampler,
            reference: &reference,
            decode: &dec,
            stop_ids: vec![encoder.im_end],
            stop_seq: stop_seq.clone(),
            schema: Schema::Triplet,
            rewards: RewardConfig::default(),
            pad: encoder.pad,
        };
        let plan = r.grpo_steps(grpo_seconds);
        // The checkpoint choice rests on every validation scene, and as many fresh scenes confirm it; large steps
        // ask for more of both than `--val` may give (`GrpoSteps::select_scenes`).
        let n_select = o.val_scenes.max(plan.select_scenes);
        let mut val_prompts = val_prompts;
        let (more, more_ex) = build_range(1, val_prompts.len(), n_select)?;
        val_prompts.extend(to_prompts(&more, &more_ex));
        reporter.message(&format!(
            "GRPO for {grpo_seconds:.0} s in steps of {} prompts × {} rollouts{} at lr {:e}{}{}; checkpoints \
             chosen on {} validation scenes{}",
            plan.prompts,
            r.grpo_group,
            match plan.free_rollouts.min(r.grpo_group) {
                k if k > 0 && !o.free_rollouts => format!(" ({k} of them unconstrained)"),
                _ => String::new(),
            },
            plan.lr,
            if plan.row_credit != 0.0 { format!(", row credit {}", plan.row_credit) } else { String::new() },
            match (r.grpo_kl_cap, r.grpo_grammar_weight) {
                (Some(c), 0.0) => format!(", KL log-ratio cap {c}"),
                (None, g) if g > 0.0 => format!(", grammar term {g}"),
                (Some(c), g) if g > 0.0 => format!(", KL log-ratio cap {c}, grammar term {g}"),
                _ => String::new(),
            },
            val_prompts.len(),
            if r.grpo_confirm_margin.is_some() {
                format!(", confirmed on {n_select} fresh ones")
            } else {
                String::new()
            }
        ));
        let go = GrpoOptions {
            group: r.grpo_group,
            prompts_per_step: plan.prompts,
            temperature: r.grpo_temperature,
            max_new_tokens: max_new,
            lr: plan.lr,
            steps: u64::MAX,
            max_seconds: Some(grpo_seconds),
            eval_every: plan.eval_every,
            select_margin: r.grpo_select_margin,
            confirm_margin: r.grpo_confirm_margin.unwrap_or(0.0),
            confirm_all: r.grpo_confirm_all,
            row_credit: plan.row_credit,
            kl_cap: r.grpo_kl_cap,
            forced_below: r.grpo_forced_below,
            grammar_weight: r.grpo_grammar_weight,
            free_check: if o.free_rollouts { 0 } else { r.grpo_free_check },
            baseline: r.grpo_baseline,
            free_rollouts: plan.free_rollouts,
            micro_batch: 16,
            seed: o.seed,
            vocab_chunk: 4096,
            ..GrpoOptions::default()
        };
        let save = |p: &Policy, dir: &std::path::Path| p.save(dir, candle_core::DType::F32, out.pixels, None);
        let vp = &val_prompts[..];
        let confirm = match r.grpo_confirm_margin {
            Some(_) => {
                let (scenes, ex) = build(CONFIRM_STREAM, n_select)?;
                to_prompts(&scenes, &ex)
            }
            None => Vec::new(),
        };
        grpo_summary = Some(grpo::run(
            &rl,
            &mut parts,
            &rl_prompts,
            vp,
            &confirm,
            &go,
            o.out.as_ref().map(|d| d.join("grpo")).as_deref(),
            &save,
            reporter,
        )?);
        // The test scenes see the checkpoint the validation scenes chose (kept only with an output folder).
        if let Some(g) = &grpo_summary {
            if let (Some(best), Some(step)) = (&g.best_checkpoint, g.best_step) {
                if step != g.steps {
                    rl.restore(best)?;
                    reporter.message(&if step == 0 {
                        format!(
                            "GRPO: no checkpoint beat the SFT model on validation by {} paired standard errors{}; \
                             the SFT weights are tested",
                            r.grpo_select_margin,
                            match r.grpo_confirm_margin {
                                Some(m) => format!(" and on the confirmation scenes by {m}"),
                                None => String::new(),
                            }
                        )
                    } else {
                        format!("GRPO: evaluating the best checkpoint (step {step} of {})", g.steps)
                    });
                }
            }
        }
        if sampler.failed > 0 {
            reporter.message(&format!(
                "{} GRPO rollouts failed in the engine and scored as invalid (first: {})",
                sampler.failed,
                sampler.first_error.as_deref().unwrap_or("")
            ));
        }
        stages.extend(evaluate_both(&ctx, &rl, "SFT+GRPO", &test, &test_prompts, max_new)?);
    } else {
        reporter.message("no time left for GRPO: raise --minutes");
    }
    Ok(DemoResult {
        parameters,
        train_scenes: o.train_scenes,
        test_scenes: o.test_scenes,
        sft: sft_summary,
        sft_head,
        grpo: grpo_summary,
        stages,
        image_use: uses,
        seconds: started.elapsed().as_secs_f64(),
        recipe: r.clone(),
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_answers_pass_the_strict_gate_and_are_seeded() {
        let gate = sgvlm_graph::StrictConfig::default();
        for i in 0..5 {
            let s = scene(3, 0, i, (128, 96));
            assert!(sgvlm_graph::strict::is_valid(&s.answer, Schema::Triplet, &gate), "{}", s.answer);
            assert_eq!((s.small.1, s.small.2), (96, 128));
            assert_eq!(s.small.0.len(), 96 * 128 * 3);
            assert_eq!(scene(3, 0, i, (128, 96)).answer, s.answer);
            // Left to right, numbered in that order; relations sorted by their endpoints.
            let xs: Vec<(i64, i64)> = s.graph.objects.iter().map(|o| (o.bbox.x1, o.bbox.y1)).collect();
            assert!(xs.windows(2).all(|w| w[0] <= w[1]), "{xs:?}");
            assert!(s.graph.objects.iter().enumerate().all(|(k, o)| o.id == k as u32 + 1));
            let ends: Vec<(u32, u32)> = s.graph.relations.iter().map(|r| (r.subj, r.obj)).collect();
            assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{ends:?}");
        }
        assert_ne!(scene(3, 0, 0, (128, 96)).answer, scene(3, 1, 0, (128, 96)).answer);
    }

    #[test]
    fn answer_heads_and_kind_order_follow_the_scene() {
        let s = scene(5, 0, 2, (128, 96));
        let head = answer_head(&s.answer);
        let first = &s.graph.objects[0];
        assert_eq!(
            head,
            format!("<answer>\nobj[{}]{{id,name,x1,y1,x2,y2}}:\n1,{},", s.graph.objects.len(), first.name)
        );
        assert!(s.answer.starts_with(&head));
        let k = scene_ordered(5, 0, 2, (128, 96), ObjectOrder::ByKind);
        let (names, _) = vocabulary();
        let rank: Vec<usize> =
            k.graph.objects.iter().map(|o| names.iter().position(|n| *n == o.name).unwrap()).collect();
        assert!(rank.windows(2).all(|w| w[0] <= w[1]), "{rank:?}");
        // The same objects, relations renumbered with them.
        let mut a: Vec<_> = s.graph.objects.iter().map(|o| (o.name.clone(), o.bbox)).collect();
        let mut b: Vec<_> = k.graph.objects.iter().map(|o| (o.name.clone(), o.bbox)).collect();
        a.sort_by_key(|x| (x.1.x1, x.1.y1, x.1.x2, x.1.y2));
        b.sort_by_key(|x| (x.1.x1, x.1.y1, x.1.x2, x.1.y2));
        assert_eq!(a, b);
        assert_eq!(s.graph.relations.len(), k.graph.relations.len());
    }

    /// A demo small enough for a test: 16 training scenes at 64×48, two validation and two test scenes, 18 s of
    /// SFT on one thread, no output folder.
    fn small_demo() -> DemoOptions {
        DemoOptions {
            minutes: 0.3,
            train_scenes: 16,
            val_scenes: 2,
            test_scenes: 2,
            image_size: (64, 48),
            large: false,
            seed: 3,
            sft_share: 1.0,
            device: Device::Cpu,
            out: None,
            free_rollouts: false,
            threads: 1,
            from_sft: None,
        }
    }

    #[test]
    fn a_short_demo_runs_both_sft_phases_and_evaluates_every_stage() {
        let dir = tempfile::tempdir().unwrap();
        let o = DemoOptions {
            minutes: 0.6,
            train_scenes: 24,
            seed: 1,
            sft_share: 0.6,
            out: Some(dir.path().to_path_buf()),
            threads: 2,
            ..small_demo()
        };
        let r = run(&o, &crate::report::Silent).unwrap();
        let head = r.sft_head.as_ref().expect("the head phase ran");
        assert!(head.steps > 0 && r.sft.steps > 0, "head {} full {}", head.steps, r.sft.steps);
        // The heads are short: their mean target is far below the full answers'.
        assert!(head.tokens / head.steps < r.sft.tokens / r.sft.steps);
        let stages: Vec<(&str, &str)> = r.stages.iter().map(|s| (s.stage.as_str(), s.decoding.as_str())).collect();
        assert_eq!(
            &stages[..4],
            &[("random init", "free"), ("random init", "constrained"), ("SFT", "free"), ("SFT", "constrained")]
        );
        assert_eq!(r.test.len(), 2);
        // The test scenes keep their 640×480 renderings for the report, drawn from the test stream.
        for (i, s) in r.test.iter().enumerate() {
            assert_eq!(s.rgb640.dimensions(), (640, 480));
            assert_eq!(s.answer, scene(o.seed, TEST_STREAM, i as u64, o.image_size).answer);
        }
        let after: Vec<&str> = r.image_use.iter().map(|u| u.after.as_str()).collect();
        assert_eq!(after, ["answer heads", "SFT"]);
        for u in &r.image_use {
            assert!(
                u.own_images_loss.is_finite() && (u.gap - (u.rotated_images_loss - u.own_images_loss)).abs() < 1e-12
            );
        }

        // Starting again from the SFT folder it wrote: no SFT, the same SFT model (the same greedy graphs on the
        // same test scenes) and the same summaries; then GRPO, validated and confirmed on fresh scenes, and tested.
        let again = DemoOptions { minutes: 0.7, from_sft: Some(dir.path().join("sft")), out: None, ..o };
        let r2 = run(&again, &crate::report::Silent).unwrap();
        let g = r2.grpo.as_ref().expect("GRPO ran");
        assert!(g.steps > 0 && g.best_step.is_some(), "{g:?}");
        // Taken only with a confirmation gain; kept at the SFT model (step 0) without one.
        assert_eq!(g.confirm_gain.is_some(), g.best_step != Some(0), "{g:?}");
        assert_eq!(r2.stages.iter().filter(|s| s.stage == "SFT+GRPO").count(), 2);
        assert_eq!(r2.sft.steps, r.sft.steps);
        assert_eq!(r2.sft_head.as_ref().map(|h| h.steps), Some(head.steps));
        let sft = |r: &DemoResult| -> Vec<(String, Vec<String>)> {
            r.stages.iter().filter(|s| s.stage == "SFT").map(|s| (s.decoding.clone(), s.predictions.clone())).collect()
        };
        assert_eq!(r2.stages[0].stage, "SFT");
        assert_eq!(sft(&r2), sft(&r));
        let missing = DemoOptions { from_sft: Some(dir.path().join("nothing")), ..again.clone() };
        assert!(run(&missing, &crate::report::Silent).is_err());
        // Small steps choose on the `--val` scenes; large ones on at least their `select_scenes`, as many
        // validation as confirmation scenes.
        assert_eq!((g.val_prompts, g.confirm_prompts), (2, 2));
        let mut large = DemoRecipe::default();
        large.set_grpo_steps("large").unwrap();
        let l = large.grpo_large.as_mut().unwrap();
        l.steps = GrpoSteps { prompts: 2, select_scenes: 3, ..l.steps };
        let r3 = run_with(&DemoOptions { minutes: 0.8, ..again }, &large, &crate::report::Silent).unwrap();
        let g3 = r3.grpo.as_ref().expect("GRPO ran");
        assert_eq!((g3.val_prompts, g3.confirm_prompts), (3, 3));
    }

    #[test]
    fn grpo_gets_what_the_last_evaluation_leaves() {
        // 40 minutes left, the SFT evaluation took 20 s: all but 40 s.
        assert_eq!(grpo_budget(2400.0, 20.0), 2360.0);
        assert_eq!(grpo_budget(30.0, 20.0), 0.0);
        assert_eq!(grpo_budget(-5.0, 0.0), 0.0);
    }

    #[test]
    fn a_long_grpo_phase_takes_large_steps() {
        let r = DemoRecipe::default();
        let large = r.grpo_large.expect("on by default");
        let big =
            GrpoSteps { prompts: 256, lr: 1e-4, eval_every: 1, row_credit: 1.0, free_rollouts: 0, select_scenes: 512 };
        assert_eq!(r.grpo_steps(large.min_seconds), big);
        let small =
            GrpoSteps { prompts: 4, lr: 2e-6, eval_every: 20, row_credit: 0.0, free_rollouts: 0, select_scenes: 0 };
        assert_eq!(r.grpo_steps(large.min_seconds - 1.0), small);
        assert_eq!(DemoRecipe { grpo_large: None, ..r }.grpo_steps(1e9), small);
        // As the command lines set them: the mode, and one row-credit weight for both kinds of step.
        let mut m = r.clone();
        m.set_grpo_steps("large").unwrap();
        assert_eq!(m.grpo_steps(0.0), big);
        m.set_row_credit(0.5).unwrap();
        assert_eq!((m.grpo_steps(0.0).row_credit, m.grpo_row_credit), (0.5, 0.5));
        m.set_grpo_steps("small").unwrap();
        assert_eq!(m.grpo_steps(1e9), GrpoSteps { row_credit: 0.5, ..small });
        assert!(m.set_grpo_steps("huge").is_err() && m.set_row_credit(f64::NAN).is_err());
        // Free rollouts likewise, at most a group's.
        let mut f = r.clone();
        f.set_free_rollouts(3).unwrap();
        assert_eq!((f.grpo_steps(1e9).free_rollouts, f.grpo_steps(0.0).free_rollouts), (3, 3));
        assert!(f.set_free_rollouts(9).is_err());
        // The KL cap (`off`: the paper's k3) and the forced share as the command lines give them.
        let mut k = r.clone();
        assert_eq!((k.grpo_kl_cap, k.grpo_forced_below), (None, Some(0.01)));
        k.set_kl_cap("2.5").unwrap();
        assert_eq!(k.grpo_kl_cap, Some(2.5));
        k.set_kl_cap("off").unwrap();
        assert_eq!(k.grpo_kl_cap, None);
        assert!(k.set_kl_cap("-1").is_err() && k.set_kl_cap("wide").is_err() && k.set_kl_cap("inf").is_err());
        k.set_forced_below("0.05").unwrap();
        assert_eq!(k.grpo_forced_below, Some(0.05));
        k.set_forced_below("off").unwrap();
        assert_eq!(k.grpo_forced_below, None);
        assert!(k.set_forced_below("1").is_err() && k.set_forced_below("0").is_err());
        // The grammar term's weight: a number ≥ 0.
        assert_eq!(k.grpo_grammar_weight, 1.0);
        k.set_grammar_weight("0").unwrap();
        assert_eq!(k.grpo_grammar_weight, 0.0);
        k.set_grammar_weight("2.5").unwrap();
        assert_eq!(k.grpo_grammar_weight, 2.5);
        assert!(["-1", "inf", "some"].iter().all(|w| k.set_grammar_weight(w).is_err()));
    }

    #[test]
    fn grpo_prompts_are_fresh_scenes_unless_asked_for_training_scenes() {
        let o = DemoOptions { train_scenes: 6000, ..small_demo() };
        let r = DemoRecipe::default();
        assert_eq!(grpo_scenes(&o, &r), (GRPO_STREAM, 2048));
        assert_eq!(grpo_scenes(&DemoOptions { train_scenes: 24, ..small_demo() }, &r), (GRPO_STREAM, 24));
        assert_eq!(grpo_scenes(&o, &DemoRecipe { grpo_fresh: false, grpo_scenes: 256, ..r }), (0, 256));
        // No stream GRPO draws from is one SFT, validation, test or confirmation use.
        let streams = [0, 1, TEST_STREAM, CONFIRM_STREAM];
        assert!(!streams.contains(&GRPO_STREAM));
        let fresh = scene(3, GRPO_STREAM, 0, (64, 48)).answer;
        assert!(streams.iter().all(|&s| scene(3, s, 0, (64, 48)).answer != fresh));
    }

    #[test]
    fn a_closed_image_path_trains_the_answer_heads_again_from_a_fresh_start() {
        // Every gap counts as closed here, so the head phase runs twice (one fresh start allowed) and no more.
        let r = DemoRecipe {
            head_retries: 1,
            head_retry_min_seconds: 0.0,
            closed_gap: f64::INFINITY,
            ..DemoRecipe::default()
        };
        let o = small_demo();
        let res = run_with(&o, &r, &crate::report::Silent).unwrap();
        let after: Vec<&str> = res.image_use.iter().map(|u| u.after.as_str()).collect();
        assert_eq!(after, ["answer heads", "answer heads (fresh start 1)", "SFT"]);
        // The fresh start began from other weights: the two head phases end at different validation losses.
        assert_ne!(res.image_use[0].own_images_loss, res.image_use[1].own_images_loss);
        assert!(res.sft.steps > 0);
        // Without the margin for a retry the phase runs once.
        let once = run_with(&o, &DemoRecipe { head_retry_min_seconds: 1e9, ..r }, &crate::report::Silent).unwrap();
        assert_eq!(once.image_use.len(), 2);
    }

    #[test]
    fn recipe_shapes_build_a_model_that_trains() {
        // Patch 16 on a 128×96 image (12 image tokens) and a wider text model with the same head count.
        let r = DemoRecipe { patch_size: 16, text_width: Some((64, 160)), ..DemoRecipe::default() };
        let cfg = recipe_config(false, &r);
        assert_eq!((cfg.text_config.head_dim, cfg.vision_config.out_hidden_size), (32, 64));
        let policy = init_policy(&cfg, &r, 0, &Device::Cpu).unwrap();
        let enc = demo_encoder(&cfg, 128 * 96).unwrap();
        let s = scene(0, 0, 0, (128, 96));
        let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap();
        assert_eq!(ex.prompt.iter().filter(|&&t| t == cfg.image_token_id).count(), 12);
        let model = crate::precision::TrainModel::new(&policy, Default::default(), Some(16)).unwrap();
        let loss = crate::sft::eval_loss(&policy, model.model(), &[ex], 1, 4096).unwrap().unwrap();
        // Random init over the 2,112-token vocabulary: near ln(2112) = 7.66.
        assert!((loss - 7.66).abs() < 1.0, "loss {loss}");
        // The larger model of the GPU demo (`--large`), at the recipe's patch 8: 48 image tokens.
        let r = DemoRecipe::default();
        let cfg = recipe_config(true, &r);
        assert_eq!((cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers), (256, 8));
        let policy = init_policy(&cfg, &r, 0, &Device::Cpu).unwrap();
        let enc = demo_encoder(&cfg, 128 * 96).unwrap();
        let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap();
        assert_eq!(ex.prompt.iter().filter(|&&t| t == cfg.image_token_id).count(), 48);
        let model = crate::precision::TrainModel::new(&policy, Default::default(), Some(16)).unwrap();
        let loss = crate::sft::eval_loss(&policy, model.model(), &[ex], 1, 4096).unwrap().unwrap();
        assert!((loss - 7.66).abs() < 1.0, "large model loss {loss}");
    }

    #[test]
    fn sincos_positions_are_bounded_and_distinct() {
        let side = 4;
        let v = sincos_2d(side, 16);
        assert_eq!(v.len(), side * side * 16);
        assert!(v.iter().all(|x| x.abs() <= 1.0));
        let row = |i: usize| &v[i * 16..(i + 1) * 16];
        for a in 0..side * side {
            for b in a + 1..side * side {
                assert_ne!(row(a), row(b), "positions {a} and {b} share an embedding");
            }
        }
        // Position (0, 0): sines 0, cosines 1.
        assert_eq!(&row(0)[..8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    }
}
