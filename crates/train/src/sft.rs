//! Supervised fine-tuning: masked next-token cross-entropy on the answer tokens (through [`crate::loss`]), AdamW
//! with warmup + cosine, gradient accumulation, global-norm clipping, group-by-length batches, validation loss,
//! checkpoints with optimizer state, and exact resume.
//!
//! Resume is exact because everything a step depends on is a function of the step number: the batch order of
//! epoch `e` is `group_by_length(.., seed + e)`, the learning rate is `lr_at(step)`, and the weights and AdamW
//! moments are saved in f32. A time-bounded schedule ([`Schedule::Seconds`], the demo's) gives that up: its learning
//! rate follows the clock.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::DType;
use serde_json::json;

use crate::batch::{collate, group_by_length, shuffled_batches, target_hidden, Example};
use crate::curriculum::{combined_weights, TokenWeight};
use crate::error::{Result, TrainError};
use crate::loss::{logprob_surrogate, token_logprobs};
use crate::optim::{clip_factor, global_norm, lr_at, AdamW, AdamWConfig, GradAccumulator};
use crate::passes;
use crate::policy::Policy;
use crate::precision::{ComputeDtype, TrainModel};
use crate::report::{MetricsLog, Reporter};

/// How the learning rate decays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Cosine to 0 at this many optimizer steps (the recipes' schedule).
    Steps(u64),
    /// Cosine over a wall-clock budget; the run stops when it is spent.
    Seconds(f64),
}

/// SFT settings (the `[sft]` table of a config file maps onto these).
#[derive(Debug, Clone, PartialEq)]
pub struct SftOptions {
    pub lr: f64,
    pub warmup_ratio: f64,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub max_grad_norm: f64,
    pub adamw: AdamWConfig,
    /// Validation every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Checkpoint every this many steps (0: only at the end).
    pub save_every: u64,
    pub seed: u64,
    pub vocab_chunk: usize,
    /// Stop (with a checkpoint) after this step although the schedule runs longer (an interrupted run).
    pub stop_after: Option<u64>,
    /// Chunk length of the delta rule while training (`None`: the model's default, 64). The result is the same up
    /// to rounding; on the CPU, short chunks are cheaper for short sequences (fewer `[chunk, chunk]` entries).
    pub delta_chunk: Option<usize>,
    /// Learning-rate multiplier of the vision tower and merger (`model.visual.*`) against the decoder's. A model
    /// trained from random weights learns the answer's format and the prior over scenes through the decoder long
    /// before the vision side carries information; a different rate there changes that phase.
    pub vision_lr_scale: f64,
    /// Batches of similar length (transformers' `group_by_length`, the recipes') or plain shuffled batches
    /// ([`shuffled_batches`], the demo's).
    pub group_by_length: bool,
    /// The dtype of the forward and backward pass; the weights, gradients and optimizer state stay f32
    /// ([`crate::precision`]).
    pub compute_dtype: ComputeDtype,
    /// CPU threads per micro-batch: its passes of a few examples each ([`crate::passes`]) are dealt to them, and
    /// the gradients are summed in a fixed order. A small model keeps about one core busy per pass, so this is how
    /// SFT uses the others; the sum is over the same tokens, so only rounding differs from one thread. 0: one per
    /// available core. On a GPU a micro-batch is one pass whatever this says.
    pub threads: usize,
    /// Loss-weight curricula on token classes ([`crate::curriculum`]); a token in several classes gets the product
    /// of their weights. Empty: plain cross-entropy.
    pub token_weights: Vec<TokenWeight>,
}

impl Default for SftOptions {
    fn default() -> Self {
        Self {
            lr: 1e-5,
            warmup_ratio: 0.05,
            schedule: Schedule::Steps(100),
            batch_size: 4,
            grad_accum: 2,
            max_grad_norm: 1.0,
            adamw: AdamWConfig::default(),
            eval_every: 0,
            save_every: 0,
            seed: 42,
            vocab_chunk: crate::loss::DEFAULT_CHUNK,
            stop_after: None,
            delta_chunk: None,
            vision_lr_scale: 1.0,
            group_by_length: true,
            compute_dtype: ComputeDtype::F32,
            threads: 1,
            token_weights: Vec::new(),
        }
    }
}

/// Where checkpoints and metrics go.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub dir: Option<PathBuf>,
    /// Processor pixel bounds written to `preprocessor_config.json`.
    pub pixels: (usize, usize),
    /// Folder whose tokenizer files are copied into each checkpoint.
    pub tokenizer_from: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SftSummary {
    pub steps: u64,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub best_checkpoint: Option<PathBuf>,
    pub tokens: u64,
    pub seconds: f64,
}

/// Steps in one epoch.
pub fn steps_per_epoch(n: usize, o: &SftOptions) -> u64 {
    let batches = n.div_ceil(o.batch_size.max(1));
    batches.div_ceil(o.grad_accum.max(1)) as u64
}

/// The micro-batches (example indices) of optimizer step `step`.
fn micro_batches(
    lengths: &[usize],
    o: &SftOptions,
    step: u64,
    cache: &mut Option<(u64, Vec<Vec<usize>>)>,
) -> Vec<Vec<usize>> {
    let per_epoch_batches = lengths.len().div_ceil(o.batch_size.max(1)) as u64;
    let accum = o.grad_accum.max(1) as u64;
    let spe = per_epoch_batches.div_ceil(accum);
    let epoch = step / spe;
    let first = (step % spe) * accum;
    if cache.as_ref().map(|c| c.0) != Some(epoch) {
        let seed = o.seed.wrapping_add(epoch);
        let batches = if o.group_by_length {
            group_by_length(lengths, o.batch_size, seed)
        } else {
            shuffled_batches(lengths.len(), o.batch_size, seed)
        };
        *cache = Some((epoch, batches));
    }
    let batches = &cache.as_ref().map(|c| &c.1).cloned().unwrap_or_default();
    (first..(first + accum).min(per_epoch_batches)).map(|i| batches[i as usize].clone()).collect()
}

/// Mean cross-entropy of the target tokens of `examples` under `model` (no update).
pub fn eval_loss(
    policy: &Policy,
    model: &sgvlm_model::Qwen35,
    examples: &[Example],
    batch_size: usize,
    chunk: usize,
) -> Result<Option<f64>> {
    if examples.is_empty() {
        return Ok(None);
    }
    let (mut sum, mut n) = (0f64, 0usize);
    for group in examples.chunks(batch_size.max(1)) {
        let refs: Vec<&Example> = group.iter().collect();
        let batch = collate(&refs, pad_of(policy), &policy.device)?;
        if batch.targets.is_empty() {
            continue;
        }
        let h = target_hidden(model, &batch)?.detach();
        let lp = token_logprobs(&h, &model.lm_head.weight, &batch.targets, chunk)?;
        sum -= lp.iter().map(|&x| x as f64).sum::<f64>();
        n += lp.len();
    }
    Ok((n > 0).then(|| sum / n as f64))
}

fn pad_of(p: &Policy) -> u32 {
    p.config.text_config.extra.get("pad_token_id").and_then(|v| v.as_u64()).unwrap_or(0) as u32
}

/// One optimizer step over `micro` batches: the objective is the mean over all their target tokens, weighted by
/// the curricula (`o.token_weights`) at `progress` (0–1 through the run) if there is one. Returns (plain mean
/// loss, grad norm before clipping, tokens).
#[allow(clippy::too_many_arguments)]
pub fn sft_step(
    policy: &Policy,
    model: &sgvlm_model::Qwen35,
    opt: &mut AdamW,
    examples: &[Example],
    micro: &[Vec<usize>],
    lr: f64,
    progress: f64,
    o: &SftOptions,
) -> Result<(f64, f64, usize)> {
    // On a rayon thread, so the optimizer's and the loss's ops run in place too (`ops::on_pool`).
    sgvlm_model::ops::on_pool(|| {
        let total: usize = micro.iter().flat_map(|b| b.iter()).map(|&i| examples[i].target.len()).sum();
        if total == 0 {
            return Err(TrainError::Input("a step without target tokens".into()));
        }
        // The objective is the weighted mean over the step's target tokens (the plain mean without a curriculum);
        // the loss reported stays the plain mean, comparable across recipes.
        let weighting: Vec<(&TokenWeight, f32)> = o.token_weights.iter().map(|c| (c, c.at(progress))).collect();
        let weighting = &weighting[..];
        let weight_sum: f64 = if weighting.is_empty() {
            total as f64
        } else {
            let per_example =
                |i: usize| -> f64 { combined_weights(weighting, &examples[i].target).iter().map(|&w| w as f64).sum() };
            micro.iter().flatten().map(|&i| per_example(i)).sum()
        };
        let coeff = -1.0 / weight_sum as f32;
        let mut acc = GradAccumulator::new(opt);
        let mut loss = 0f64;
        let pad = pad_of(policy);
        // On the CPU a micro-batch runs as passes of a few examples of similar length dealt to the threads
        // ([`passes`]); each thread adds its passes' gradients in order and the threads' sums are added in thread
        // order, so the step is deterministic. On a GPU a micro-batch is one pass.
        let (threads, pass_size) = passes::layout(&policy.device, o.threads, usize::MAX);
        for idx in micro {
            let plan = passes::plan(idx, examples, threads, pass_size);
            let results = passes::on_threads(&plan, |passes: &[Vec<usize>]| -> Result<(f64, GradAccumulator)> {
                let mut local = GradAccumulator::new(opt);
                let mut logp = 0f64;
                for pass in passes {
                    if let Some((l, grads)) =
                        run_pass(model, examples, pass, pad, &policy.device, o.vocab_chunk, coeff, weighting)?
                    {
                        logp += l;
                        local.add(opt, &grads)?;
                    }
                }
                Ok((logp, local))
            });
            for r in results {
                let (logp_sum, local) = r?;
                loss -= logp_sum / total as f64;
                acc.merge(local)?;
            }
        }
        let _span = sgvlm_model::profile::span("sft: accumulate, clip, AdamW", &policy.device);
        let grads = acc.finish(opt)?;
        let norm = global_norm(&grads)?;
        opt.update_scaled(&grads, lr, clip_factor(norm, o.max_grad_norm))?;
        Ok((loss, norm, total))
    })
}

/// Forward and backward of one pass over the examples `idx`: the sum of their target log-probabilities and the
/// gradients of `coeff · Σ w·logp` (`w` from the curriculum, 1 without; `None` when they have no target tokens).
#[allow(clippy::too_many_arguments)]
fn run_pass(
    model: &sgvlm_model::Qwen35,
    examples: &[Example],
    idx: &[usize],
    pad: u32,
    device: &candle_core::Device,
    vocab_chunk: usize,
    coeff: f32,
    weighting: &[(&TokenWeight, f32)],
) -> Result<Option<(f64, candle_core::backprop::GradStore)>> {
    use sgvlm_model::profile::span;
    let refs: Vec<&Example> = idx.iter().map(|&i| &examples[i]).collect();
    let batch = {
        let _span = span("sft: collate", device);
        collate(&refs, pad, device)?
    };
    if batch.targets.is_empty() {
        return Ok(None);
    }
    let h = {
        let _span = span("sft: forward (vision, text; layers also in theirs)", device);
        target_hidden(model, &batch)?
    };
    let coeffs = combined_weights(weighting, &batch.targets).into_iter().map(|x| x * coeff).collect::<Vec<f32>>();
    let head = {
        let _span = span("sft: lm head, loss and its gradient", device);
        logprob_surrogate(&h, &model.lm_head.weight, &batch.targets, vocab_chunk, |_| coeffs)?
    };
    let logp_sum = head.logp.iter().map(|&x| x as f64).sum::<f64>();
    let _span = span("sft: backward", device);
    Ok(Some((logp_sum, head.surrogate.backward()?)))
}

/// Trains `policy` on `train`; validates on `val`. With `resume`, continues from a checkpoint this function wrote
/// (load `policy` from that checkpoint with [`Policy::load`]).
pub fn run(
    policy: &Policy,
    train: &[Example],
    val: &[Example],
    o: &SftOptions,
    out: &Output,
    resume: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<SftSummary> {
    if train.is_empty() {
        return Err(TrainError::Input("no training examples".into()));
    }
    let mut opt = AdamW::new(policy.trainable(), o.adamw)?;
    if o.vision_lr_scale != 1.0 {
        opt.scale_lr("model.visual.", o.vision_lr_scale);
    }
    if let Some(dir) = resume {
        opt.load(&dir.join("optimizer.safetensors"), &policy.device)?;
    }
    let mut model = TrainModel::new(policy, o.compute_dtype, o.delta_chunk)?;
    let metrics = MetricsLog::new(out.dir.as_ref().map(|d| d.join("metrics.jsonl")).as_deref())?;
    let lengths: Vec<usize> = train.iter().map(Example::len).collect();
    let (total_steps, budget) = match o.schedule {
        Schedule::Steps(n) => (n, None),
        Schedule::Seconds(s) => (u64::MAX, Some(s)),
    };
    let warmup_steps = match o.schedule {
        Schedule::Steps(n) => (o.warmup_ratio * n as f64).ceil() as u64,
        Schedule::Seconds(_) => 0,
    };
    reporter.start("sft", if budget.is_some() { 0 } else { total_steps });
    let started = Instant::now();
    let mut summary = SftSummary::default();
    let mut cache = None;
    let mut step = opt.step;
    let mut tokens = 0u64;
    loop {
        let elapsed = started.elapsed().as_secs_f64();
        let progress = match budget {
            Some(b) => elapsed / b,
            None => step as f64 / total_steps.max(1) as f64,
        };
        let lr = match (o.schedule, budget) {
            (_, Some(b)) => {
                if elapsed >= b {
                    break;
                }
                let frac = elapsed / b;
                let warm = o.warmup_ratio.max(1e-9);
                if frac < warm {
                    o.lr * (frac / warm).max(0.02)
                } else {
                    o.lr * 0.5 * (1.0 + (std::f64::consts::PI * (frac - warm) / (1.0 - warm)).cos())
                }
            }
            _ => {
                if step >= total_steps {
                    break;
                }
                lr_at(step, o.lr, warmup_steps, total_steps)
            }
        };
        let micro = micro_batches(&lengths, o, step, &mut cache);
        let (loss, norm, n) = sft_step(policy, model.for_step(policy)?, &mut opt, train, &micro, lr, progress, o)?;
        step += 1;
        tokens += n as u64;
        summary.first_loss.get_or_insert(loss);
        summary.last_loss = Some(loss);
        let spe = steps_per_epoch(train.len(), o);
        let rec = json!({"kind": "train", "step": step, "epoch": step as f64 / spe as f64, "loss": loss, "lr": lr,
                         "grad_norm": norm, "tokens": n, "seconds": started.elapsed().as_secs_f64()});
        metrics.write(&rec)?;
        reporter.step(step, &rec);
        let last = match o.schedule {
            Schedule::Steps(n) => step >= n,
            Schedule::Seconds(b) => started.elapsed().as_secs_f64() >= b,
        } || o.stop_after.is_some_and(|s| step >= s);
        if (o.eval_every > 0 && step % o.eval_every == 0) || last {
            if let Some(v) = eval_loss(policy, model.current(policy)?, val, o.batch_size, o.vocab_chunk)? {
                let rec = json!({"kind": "val", "step": step, "val_loss": v});
                metrics.write(&rec)?;
                reporter.message(&format!("step {step}: validation loss {v:.4}"));
                summary.val_loss = Some(v);
                if summary.best_val_loss.is_none_or(|b| v < b) {
                    summary.best_val_loss = Some(v);
                    if let Some(dir) = &out.dir {
                        summary.best_checkpoint = Some(save_checkpoint(policy, &opt, dir, "best", step, out)?);
                    }
                }
            }
        }
        if let Some(dir) = &out.dir {
            if (o.save_every > 0 && step % o.save_every == 0) || last {
                save_checkpoint(policy, &opt, dir, &format!("checkpoint-{step}"), step, out)?;
            }
        }
        if last {
            break;
        }
    }
    reporter.finish();
    summary.steps = step;
    summary.tokens = tokens;
    summary.seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = &out.dir {
        let path = dir.join("summary.json");
        std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n")
            .map_err(TrainError::io(&path))?;
    }
    Ok(summary)
}

/// Writes `DIR/NAME` (`checkpoint-STEP`, or `best` for the lowest validation loss so far): the model in f32
/// (Hugging Face layout plus companion and tokenizer files), `optimizer.safetensors` and `trainer_state.json`.
pub fn save_checkpoint(
    policy: &Policy,
    opt: &AdamW,
    dir: &Path,
    name: &str,
    step: u64,
    out: &Output,
) -> Result<PathBuf> {
    let ck = dir.join(name);
    policy.save(&ck, DType::F32, out.pixels, out.tokenizer_from.as_deref())?;
    opt.save(&ck.join("optimizer.safetensors"))?;
    let state = ck.join("trainer_state.json");
    std::fs::write(&state, json!({"global_step": step}).to_string() + "\n").map_err(TrainError::io(&state))?;
    Ok(ck)
}
