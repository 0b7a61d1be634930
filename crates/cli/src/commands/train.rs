//! `sgvlm train sft|grpo --config FILE.toml`: loads the config, the model directory and the JSONL rows, and runs
//! the `sgvlm-train` loops with a progress bar on stderr; the run's summary JSON goes to stdout.
//!
//! Every image is preprocessed when the rows are read and kept in memory (about 7 MB per 640×480 image in f32):
//! right for the demo and small sets; a streaming loader for the full datasets is not written yet.

use super::generate::{constraint_for, DatasetArg};
use crate::cli::{BenchArgs, BenchGrpoArgs, TrainArgs, TrainCommand};
use crate::output::Out;
use anyhow::{bail, Context};
use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use sgvlm_eval::rewards::RewardConfig;
use sgvlm_graph::Schema;
use sgvlm_infer::engine::{Engine, EngineConfig};
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_train::batch::Example;
use sgvlm_train::bench::BenchRollout;
use sgvlm_train::config::{RolloutConstraint, RunConfig};
use sgvlm_train::corrupt::corrupt_prompt;
use sgvlm_train::encode::{load_rgb, Encoder};
use sgvlm_train::engine_rollout::EngineRollout;
use sgvlm_train::grpo::{self, GrpoParts, GrpoPrompt};
use sgvlm_train::policy::{Freeze, Policy};
use sgvlm_train::report::Reporter;
use sgvlm_train::rows::{self, Need, Row};
use sgvlm_train::sft::{self, Output};
use std::path::Path;
use std::process::ExitCode;

/// A progress bar for the training loops (a spinner when the length is unknown).
pub struct Bar(pub ProgressBar);

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar(bar)
    }
}

impl Reporter for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.reset();
        self.0.set_prefix(phase.to_string());
        self.0.set_length(total);
        if total == 0 {
            self.0.set_style(
                ProgressStyle::with_template("{prefix} [{elapsed_precise}] {spinner} step {pos} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
        }
    }
    fn step(&self, step: u64, r: &serde_json::Value) {
        self.0.set_position(step);
        let f = |k: &str| r.get(k).and_then(|v| v.as_f64());
        let msg = match (f("loss"), f("reward_mean")) {
            (_, Some(rw)) => format!("reward {rw:.3} kl {:.4}", f("kl").unwrap_or(0.0)),
            (Some(l), None) => format!("loss {l:.4} lr {:.2e}", f("lr").unwrap_or(0.0)),
            _ => String::new(),
        };
        self.0.set_message(msg);
    }
    fn message(&self, msg: &str) {
        // A hidden bar (stderr is not a terminal) drops `println`: print the line plainly then.
        if self.0.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.0.println(msg);
        }
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub fn device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            sgvlm_model::cuda::open(0).context("Failed to open CUDA device 0 (is this a `--features cuda` build?)")
        }
        other => bail!("unknown device `{other}` (use cpu or cuda)"),
    }
}

fn image_of(row: &Row) -> anyhow::Result<Option<(Vec<u8>, usize, usize)>> {
    row.image.as_deref().map(load_rgb).transpose().map_err(Into::into)
}

/// Reads rows and encodes them; bad rows are skipped with a warning and counted.
fn examples(path: &Path, enc: &Encoder, max_length: usize, limit: Option<usize>) -> anyhow::Result<Vec<Example>> {
    let read = rows::read(path, Need::Answer)?;
    let mut out = Vec::new();
    let (mut bad, mut long) = (read.skipped, 0usize);
    let mut first = read.first_error;
    for row in read.rows.iter().take(limit.unwrap_or(usize::MAX)) {
        let built = image_of(row).and_then(|img| {
            let answer = row.answer.as_deref().unwrap_or_default();
            Ok(enc.example(&row.user, answer, img.as_ref().map(|(p, h, w)| (p.as_slice(), *h, *w)))?)
        });
        match built {
            Ok(e) if e.len() > max_length => long += 1,
            Ok(e) => out.push(e),
            Err(e) => {
                bad += 1;
                first.get_or_insert_with(|| format!("{}: line {}: {e:#}", path.display(), row.line));
            }
        }
    }
    if bad > 0 {
        eprintln!("warning: skipped {bad} row(s) of {}; first: {}", path.display(), first.unwrap_or_default());
    }
    if long > 0 {
        eprintln!(
            "warning: dropped {long} example(s) longer than max_length {max_length} (truncation_strategy delete)"
        );
    }
    Ok(out)
}

fn grpo_prompts(path: &Path, enc: &Encoder, cfg: &RunConfig, limit: Option<usize>) -> anyhow::Result<Vec<GrpoPrompt>> {
    let read = rows::read(path, Need::Solution)?;
    let mut out = Vec::new();
    let mut bad = read.skipped;
    for row in read.rows.iter().take(limit.unwrap_or(usize::MAX)) {
        let user = match &cfg.corrupt {
            Some(c) => corrupt_prompt(&row.user, c, row.line as u64),
            None => row.user.clone(),
        };
        let built =
            image_of(row).and_then(|img| Ok(enc.prompt(&user, img.as_ref().map(|(p, h, w)| (p.as_slice(), *h, *w)))?));
        match built {
            Ok((prompt, image)) if prompt.len() <= cfg.data.max_length => {
                out.push(GrpoPrompt { prompt, image, solution: row.solution.clone().unwrap_or_default() })
            }
            Ok(_) => bad += 1,
            Err(e) => {
                bad += 1;
                eprintln!("warning: {}: line {}: {e:#}", path.display(), row.line);
            }
        }
    }
    if bad > 0 {
        eprintln!("warning: skipped {bad} row(s) of {}", path.display());
    }
    Ok(out)
}

/// The benchmarks' policy: a model directory, or random weights of a preset shape.
fn bench_policy(model: Option<&Path>, preset: &str, freeze: Freeze, device_name: &str) -> anyhow::Result<Policy> {
    let dev = device(device_name)?;
    Ok(match model {
        Some(dir) => Policy::load(dir, freeze, &dev).with_context(|| format!("Failed to load `{}`", dir.display()))?,
        None => {
            let cfg = match preset {
                "tiny" => sgvlm_model::Config::tiny(),
                "qwen3.5-0.8b" => sgvlm_model::Config::qwen35_0_8b(),
                other => bail!("--preset `{other}`: use tiny or qwen3.5-0.8b"),
            };
            let w = sgvlm_model::checkpoint::random_weights(&cfg, 0, &Device::Cpu)?;
            Policy::from_tensors(cfg, w, freeze, &dev)?
        }
    })
}

fn bench(b: &BenchArgs) -> anyhow::Result<sgvlm_train::bench::BenchResult> {
    let freeze = if b.train_vision { Freeze { vit: false, aligner: false } } else { Freeze::default() };
    let policy = bench_policy(b.model.as_deref(), &b.preset, freeze, &b.device)?;
    Ok(sgvlm_train::bench::bench_sft(&policy, b.dtype.parse()?, b.batch, b.len, b.answer, b.steps, 1)?)
}

fn bench_grpo(b: &BenchGrpoArgs) -> anyhow::Result<sgvlm_train::bench::GrpoBenchResult> {
    if [b.prompts, b.group, b.prompt_len, b.new_tokens, b.steps].contains(&0) {
        bail!("--prompts, --group, --prompt-len, --new-tokens and --steps must be at least 1");
    }
    // GRPO freezes the vision tower and merger, as `sgvlm train grpo` does.
    let policy = bench_policy(b.model.as_deref(), &b.preset, Freeze::default(), &b.device)?;
    let rollout = match b.rollout.as_str() {
        "sampler" => BenchRollout::Sampler,
        _ => BenchRollout::Engine(Box::new(match &b.model {
            Some(dir) => Tokenizer::from_file(&dir.join("tokenizer.json"))
                .with_context(|| format!("the engine's rollouts need `{}/tokenizer.json`", dir.display()))?,
            None if b.preset == "tiny" => Tokenizer::tiny(),
            None => {
                let vocab = policy.config.text_config.vocab_size;
                let path = super::model::built_qwen35_tokenizer(vocab).with_context(|| {
                    "the engine's rollouts need the Qwen3.5 tokenizer: run scripts/qwen35_tokenizer.sh, pass \
                     --model DIR (from `sgvlm model init`), or use --rollout sampler"
                })?;
                Tokenizer::from_file(&path)?
            }
        })),
    };
    Ok(sgvlm_train::bench::bench_grpo(
        &policy,
        b.dtype.parse()?,
        b.prompts,
        b.group,
        b.prompt_len,
        b.new_tokens,
        b.micro_batch,
        b.steps,
        b.warmup,
        rollout,
    )?)
}

/// `sgvlm train grpo`'s rollouts: the native engine over the policy's weights (which the optimizer updates in
/// place, so one engine serves every step), constrained as the config's `[rollout]` table says.
fn grpo_rollout(cfg: &RunConfig, policy: &Policy, enc: &Encoder) -> anyhow::Result<EngineRollout> {
    let tokenizer = Tokenizer::from_file(&cfg.model.dir.join("tokenizer.json"))
        .with_context(|| format!("Failed to load `{}/tokenizer.json`", cfg.model.dir.display()))?;
    // Rollouts want throughput: the batch refills in waves (`EngineConfig::refill_wait_steps`).
    let engine_cfg = EngineConfig {
        max_batch: cfg.rollout.batch,
        refill_wait_steps: usize::MAX,
        record_allowed_mass: true,
        ..EngineConfig::default()
    };
    let model = sgvlm_train::demo::inference_model(policy)?;
    let engine = Engine::new(model, tokenizer, enc.processor.clone(), engine_cfg)
        .map_err(|e| anyhow::anyhow!("building the rollout engine: {e}"))?;
    let canvas = (cfg.rollout.canvas[0], cfg.rollout.canvas[1]);
    let dataset = match cfg.rollout.constrain {
        RolloutConstraint::None => None,
        RolloutConstraint::Psg => Some(DatasetArg::Psg),
        RolloutConstraint::Pvsg => Some(DatasetArg::Pvsg),
        RolloutConstraint::Ag => Some(DatasetArg::Ag),
    };
    let constraint = dataset.map(|d| constraint_for(d, canvas));
    Ok(EngineRollout::new(engine, constraint))
}

pub fn run(cmd: TrainCommand) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    match cmd {
        TrainCommand::Bench(b) => {
            let r = bench(&b)?;
            out.line(&serde_json::to_string(&r)?)?;
        }
        TrainCommand::BenchGrpo(b) => {
            let r = bench_grpo(&b)?;
            out.line(&serde_json::to_string(&r)?)?;
        }
        TrainCommand::Sft(TrainArgs { config }) => {
            let cfg = RunConfig::load(&config)?;
            let dev = device(&cfg.device)?;
            let from = cfg.resume.clone().unwrap_or_else(|| cfg.model.dir.clone());
            let policy = Policy::load(&from, cfg.freeze(), &dev)
                .with_context(|| format!("Failed to load the model from `{}`", from.display()))?;
            let enc = Encoder::from_dir(&cfg.model.dir, &policy.config)?;
            let train = examples(&cfg.data.train, &enc, cfg.data.max_length, None)?;
            let val = match &cfg.data.val {
                Some(v) => examples(v, &enc, cfg.data.max_length, cfg.data.val_limit)?,
                None => Vec::new(),
            };
            eprintln!("{} training and {} validation examples", train.len(), val.len());
            let o = cfg.sft_options(train.len());
            let output = Output {
                dir: Some(cfg.out.clone()),
                pixels: (enc.processor.min_pixels, enc.processor.max_pixels),
                tokenizer_from: Some(cfg.model.dir.clone()),
            };
            let s = sft::run(&policy, &train, &val, &o, &output, cfg.resume.as_deref(), &Bar::new())?;
            out.line(&serde_json::to_string(&s)?)?;
        }
        TrainCommand::Grpo(TrainArgs { config }) => {
            let cfg = RunConfig::load(&config)?;
            let dev = device(&cfg.device)?;
            // GRPO always freezes the vision tower and merger (the recipe's --freeze_vit/--freeze_aligner).
            let policy = Policy::load(&cfg.model.dir, Freeze::default(), &dev)
                .with_context(|| format!("Failed to load the model from `{}`", cfg.model.dir.display()))?;
            let mut enc = Encoder::from_dir(&cfg.model.dir, &policy.config)?;
            if let Some(sys) = &cfg.data.system {
                enc.system =
                    Some(std::fs::read_to_string(sys).with_context(|| format!("Failed to read `{}`", sys.display()))?);
            }
            let schema = match cfg.data.schema.as_str() {
                "triplet" => Schema::Triplet,
                "ag" => Schema::Ag,
                other => bail!("data.schema `{other}`: use triplet or ag"),
            };
            let train = grpo_prompts(&cfg.data.train, &enc, &cfg, None)?;
            let val = match &cfg.data.val {
                Some(v) => grpo_prompts(v, &enc, &cfg, cfg.data.val_limit)?,
                None => Vec::new(),
            };
            eprintln!(
                "{} training and {} validation prompts{}",
                train.len(),
                val.len(),
                if cfg.grpo.confirm_share > 0.0 { " (some held back to confirm the choice)" } else { "" }
            );
            let reference = policy.frozen_model(cfg.grpo.compute_dtype.dtype())?;
            let mut sampler = grpo_rollout(&cfg, &policy, &enc)?;
            let stop_seq = enc.tokenizer.encode("</answer>")?;
            let im_end = enc.im_end;
            let decode = |ids: &[u32]| {
                let ids: Vec<u32> = ids.iter().copied().filter(|&t| t != im_end).collect();
                enc.tokenizer.decode(&ids, false).unwrap_or_default()
            };
            let mut parts = GrpoParts {
                rollout: &mut sampler,
                reference: &reference,
                decode: &decode,
                stop_ids: vec![im_end],
                stop_seq,
                schema,
                rewards: RewardConfig::default(),
                pad: enc.pad,
            };
            let pixels = (enc.processor.min_pixels, enc.processor.max_pixels);
            let model_dir = cfg.model.dir.clone();
            let save = move |p: &Policy, dir: &Path| p.save(dir, candle_core::DType::F32, pixels, Some(&model_dir));
            let o = cfg.grpo_options();
            // The last `confirm_share` of the validation prompts confirm the selected checkpoint.
            let held = ((val.len() as f64) * o.confirm_share.clamp(0.0, 1.0)).round() as usize;
            let (val, confirm) = val.split_at(val.len() - held.min(val.len()));
            let s = grpo::run(&policy, &mut parts, &train, val, confirm, &o, Some(&cfg.out), &save, &Bar::new())?;
            if sampler.failed > 0 {
                eprintln!(
                    "{} rollouts failed in the engine and scored as invalid answers; the first: {}",
                    sampler.failed,
                    sampler.first_error.as_deref().unwrap_or("?")
                );
            }
            policy.save(&cfg.out.join("last"), candle_core::DType::F32, pixels, Some(&cfg.model.dir))?;
            out.line(&serde_json::to_string(&s)?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
