//! GRPO (group relative policy optimisation) as the paper's recipe runs it (MS-SWIFT `rlhf_type grpo`):
//! G rollouts per prompt from the current policy at temperature 0.9, the eight weighted rewards of
//! `sgvlm_eval::rewards`, advantages `A = r − mean(group)` (no std scaling: `scale_rewards none`), the per-token
//! clipped ratio objective with the asymmetric range `[1 − 0.2, 1 + 0.28]`, and a KL penalty to the frozen
//! initial policy with `β = 0.04` through the k3 estimator `exp(ref − logp) − (ref − logp) − 1`.
//!
//! Token log-probabilities (policy and reference) are those of the distribution the rollouts were sampled from:
//! the logits divided by the rollout temperature ([`sampling_hidden`]), as TRL's `GRPOTrainer` (which MS-SWIFT
//! runs) computes them. Without it, rollouts drawn at temperature 0.9 would be scored as if drawn at 1.
//!
//! The loss of a step is the mean over completions of each completion's mean token loss (the original GRPO
//! normalisation). With one optimisation pass per generation (`num_iterations 1`), the old policy equals the
//! current one, so the ratio is 1 in value while its gradient is the policy gradient; the clipping matters only
//! when [`Objective::token`] is given an older policy. The vision tower and merger stay frozen ([`crate::policy`]).
//!
//! [`GrpoOptions::row_credit`] adds an optional per-row term to the advantage of each object and relation row's
//! tokens ([`crate::credit`]), and [`GrpoOptions::baseline`] can compare each rollout with the greedy answer instead
//! of the group mean ([`Baseline`]); with a constrained generator, [`GrpoOptions::forced_below`] leaves tokens the
//! grammar forced out of the loss and [`GrpoOptions::grammar_weight`] raises the legal mass where the policy put
//! its mass on forbidden tokens. All are ours, not the paper's, and off by default. Which weights a run hands
//! on — validation, the paired margin, confirmation on unseen prompts — is `select`'s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use serde::Deserialize;
use serde_json::json;
use sgvlm_eval::rewards::{self, RewardConfig, REWARD_NAMES};
use sgvlm_graph::Schema;
use sgvlm_model::Qwen35;

use crate::batch::{collate, target_hidden, Example};
use crate::credit;
use crate::error::{Result, TrainError};
use crate::loss::{logprob_surrogate, token_logprobs};
use crate::optim::{clip_factor, global_norm, AdamW, AdamWConfig, GradAccumulator};
use crate::passes;
use crate::policy::Policy;
use crate::precision::{ComputeDtype, TrainModel};
use crate::report::{MetricsLog, Reporter};
use crate::rollout::{Prompt, Rollout, Sampling};

mod objective;
mod select;
#[cfg(test)]
mod testing;

use objective::KlTally;
pub use objective::{advantages, advantages_over, k3, Objective};
pub use select::{clears_margin, free_pass_rate, greedy_scores, paired_gain, validate};

/// GRPO settings, also the `[grpo]` table of a config file (every key optional; defaults: the paper's §7.2 recipe).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoOptions {
    /// Rollouts per prompt (G).
    pub group: usize,
    pub prompts_per_step: usize,
    pub temperature: f32,
    pub max_new_tokens: usize,
    pub lr: f64,
    pub beta: f64,
    pub eps_low: f64,
    pub eps_high: f64,
    pub max_grad_norm: f64,
    #[serde(skip)]
    pub adamw: AdamWConfig,
    pub steps: u64,
    /// Wall-clock budget in seconds (stops early when spent).
    #[serde(skip)]
    pub max_seconds: Option<f64>,
    /// Validation (greedy decoding, mean total reward) every this many steps; 0: at the end only.
    pub eval_every: u64,
    /// How far a checkpoint must beat the starting policy on the validation prompts to be selected, in standard
    /// errors of the paired per-prompt reward difference ([`paired_gain`]). 0 (the paper's rule): the best mean
    /// validation reward wins, however slim its lead over the start.
    pub select_margin: f64,
    /// A checkpoint that clears [`Self::select_margin`] is taken only if it also beats the starting policy on the
    /// confirmation prompts ([`run`]'s `confirm`, unseen by the selection) by this many paired standard errors: the
    /// best of many validation points is partly luck, a fresh sample is not. Unused without confirmation prompts.
    pub confirm_margin: f64,
    /// The share of the validation prompts `sgvlm train grpo` holds back as confirmation prompts (the last ones);
    /// 0, the default (the paper's rule): none.
    pub confirm_share: f64,
    /// Decode the confirmation prompts at every validation, not only for candidates (diagnostics: whether
    /// validation gains carry over to prompts the selection never saw; `"kind": "confirm"` lines with
    /// `"candidate": false`). Costs one more greedy decoding per validation.
    pub confirm_all: bool,
    /// Completions per backward pass on a GPU (memory bound); the CPU takes at most [`passes::CPU_PASS`] per pass.
    pub micro_batch: usize,
    pub seed: u64,
    pub vocab_chunk: usize,
    /// Weight of the per-row credit added to the advantage of each object and relation row's tokens
    /// ([`crate::credit`]; not the paper's GRPO). 0, the default: the paper's sequence-level advantage only.
    pub row_credit: f64,
    /// What each rollout's reward is compared with ([`Baseline`]; default the paper's group mean).
    pub baseline: Baseline,
    /// With a constrained generator: how many of each prompt's `group` rollouts are decoded without the constraint
    /// (ours; 0, the default: all constrained). Constrained rollouts never show the policy an answer that fails
    /// the strict gate, so nothing keeps its unconstrained distribution valid; free rollouts that fail score 0
    /// (every weighted reward, the paper's rule) and are pushed down. `StepStats::free_valid` reports their pass rate.
    /// Not a config key: `sgvlm train grpo`'s generator has no constraint.
    #[serde(skip)]
    pub free_rollouts: usize,
    /// `"f32"` or `"bf16"`: the dtype of the training forward and backward pass (weights and optimizer stay f32;
    /// build the reference model in the same dtype with [`Policy::frozen_model`]). Rollouts are the generator's.
    pub compute_dtype: ComputeDtype,
    /// Caps the KL term's log-ratio `d = ref − logp` (ours; `None`, the default: the paper's k3). Past the cap the
    /// k3 estimator continues along its tangent, so a token's KL gradient is at most `β·(e^cap − 1)`. Uncapped, one
    /// sampled token the policy has pushed far below the reference outweighs a whole step: in a demo run of large
    /// steps a token at log-probability −14.9 under the policy and −2.4 under the reference (d = 12.6, k3 ≈ 287,000)
    /// made the step's gradient norm 74 instead of 0.25–0.5, global-norm clipping shrank every other token's share
    /// to nothing, and the validation reward fell 0.26 (results/demo_grpo.md, twenty-third session). Those were
    /// tokens the constraint forced; [`Self::forced_below`] leaves them out, which worked better there than a cap.
    pub kl_cap: Option<f64>,
    /// Leaves out of the loss (policy gradient and KL) every constrained token whose step's allowed mass — the
    /// share of the sampling distribution the constraint kept ([`crate::rollout::Rollout::allowed_mass`]) — was
    /// below this (ours; `None`, the default: every token counts, as with the paper's free rollouts). The loss
    /// scores tokens under the unconstrained distribution; where the grammar, not the policy, chose the token, its
    /// unconstrained log-probability measures how much mass the policy puts on tokens the grammar forbids, which
    /// constrained decoding never sees, and its k3 term can grow without bound (results/demo_grpo.md,
    /// twenty-third session). `forced_tokens` in `metrics.jsonl` counts them.
    pub forced_below: Option<f64>,
    /// Weight of the grammar term (ours; 0, the default: none): at every constrained token whose step's allowed
    /// mass was below [`Self::grammar_below`], the loss adds `−grammar_weight · logp(token)`, advantage or not, and
    /// tokens left out as forced included. The token was drawn from the policy's tempered distribution restricted to
    /// what the grammar allows, so the expected gradient of `log p(token)` at that step is the gradient of the
    /// log of the allowed mass itself: the term raises the share the unconstrained policy puts on legal tokens
    /// where it was low, and nothing else. Without it, constrained GRPO never shows the policy the answers the
    /// grammar rejects, and its steps lower legal tokens of below-average rollouts where the policy already
    /// preferred illegal ones: after 15 large steps from seed 10's SFT model, free decoding failed the strict gate on
    /// 27.3 % of the test scenes (1.6 % before; results/demo_grpo.md, twenty-fourth session).
    pub grammar_weight: f64,
    /// The allowed mass below which a constrained token gets the grammar term (and counts in `grammar_tokens`).
    /// Where the grammar took nearly nothing away the term's expected gradient is nearly zero but its noise is not,
    /// so it applies only where a tenth or more of the mass was on forbidden tokens by default.
    pub grammar_below: f64,
    /// At every validation, decode this many of the validation prompts greedily *without* the constraint too and
    /// log the share that passes the strict gate (`"kind": "free_check"` in `metrics.jsonl`; 0, the default: no
    /// such decoding). With a constrained generator this is what free decoding of the current policy would give.
    pub free_check: usize,
}

impl GrpoOptions {
    /// Whether `cap` can be a [`Self::kl_cap`]: positive and finite.
    pub fn valid_kl_cap(cap: f64) -> bool {
        cap > 0.0 && cap.is_finite()
    }

    /// Whether `share` can be a [`Self::forced_below`]: a share of the mass in (0, 1).
    pub fn valid_forced_below(share: f64) -> bool {
        share > 0.0 && share < 1.0
    }

    /// Whether `w` can be a [`Self::grammar_weight`]: finite and not negative.
    pub fn valid_grammar_weight(w: f64) -> bool {
        w >= 0.0 && w.is_finite()
    }

    /// Whether `share` can be a [`Self::grammar_below`]: a share of the mass in (0, 1].
    pub fn valid_grammar_below(share: f64) -> bool {
        share > 0.0 && share <= 1.0
    }
}

impl Default for GrpoOptions {
    fn default() -> Self {
        Self {
            group: 12,
            prompts_per_step: 2,
            temperature: 0.9,
            max_new_tokens: 1024,
            lr: 6e-7,
            beta: 0.04,
            eps_low: 0.2,
            eps_high: 0.28,
            max_grad_norm: 1.0,
            adamw: AdamWConfig::default(),
            steps: 100,
            max_seconds: None,
            eval_every: 0,
            select_margin: 0.0,
            confirm_margin: 1.0,
            confirm_share: 0.0,
            confirm_all: false,
            micro_batch: 8,
            seed: 42,
            vocab_chunk: crate::loss::DEFAULT_CHUNK,
            row_credit: 0.0,
            baseline: Baseline::GroupMean,
            free_rollouts: 0,
            compute_dtype: ComputeDtype::F32,
            kl_cap: None,
            forced_below: None,
            grammar_weight: 0.0,
            grammar_below: 0.9,
            free_check: 0,
        }
    }
}

/// The advantage's baseline: what a rollout's reward is compared with.
///
/// The paper's group mean rewards any rollout better than its group's average. Sampled rollouts are worse than the
/// greedy answer on average (demo, temperature 0.7: ~3.8 against ~4.2 for greedy decoding of validation scenes),
/// so rollouts better than their group but worse than greedy decoding are pushed up too, while what is evaluated
/// is the greedy answer. `Greedy` compares each rollout with the policy's greedy answer to the same prompt (one
/// more greedy decoding per prompt and step), so only rollouts that beat what greedy decoding writes are pushed up —
/// the baseline of ReMax (Li et al., 2023), not the paper's GRPO. In the nineteenth session's demo runs it did not
/// raise the greedy reward on fresh scenes more than the group mean did (results/demo_grpo.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    #[default]
    GroupMean,
    Greedy,
}

impl std::str::FromStr for Baseline {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "group_mean" | "group-mean" => Ok(Self::GroupMean),
            "greedy" => Ok(Self::Greedy),
            other => Err(TrainError::Input(format!("GRPO baseline `{other}`: use group_mean or greedy"))),
        }
    }
}

/// A GRPO prompt: its tokens and image, and the reference answer the rewards compare against.
#[derive(Debug, Clone)]
pub struct GrpoPrompt {
    pub prompt: Vec<u32>,
    pub image: Option<crate::batch::ImageData>,
    pub solution: String,
}

/// Diagnostics of one step's rollouts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StepStats {
    pub reward_mean: f64,
    pub reward_std: f64,
    /// Mean of each of the 13 reward functions (weighted rewards and diagnostics), keyed by reference name.
    pub functions: serde_json::Map<String, serde_json::Value>,
    pub completion_len: f64,
    pub loss: f64,
    pub kl: f64,
    /// The step's largest per-token k3 and the policy's and the reference's log-probabilities of that token: a
    /// mean `kl` far above the usual comes from one token or from many.
    pub kl_max: f64,
    pub kl_max_logp: f64,
    pub kl_max_ref_logp: f64,
    /// The allowed mass at that token's step (constrained rollouts from a generator that records it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_max_allowed_mass: Option<f64>,
    /// Tokens left out of the loss as forced by the constraint ([`GrpoOptions::forced_below`]), and all the
    /// step's completion tokens.
    pub forced_tokens: usize,
    pub tokens: usize,
    /// Constrained tokens whose step's allowed mass was below [`GrpoOptions::grammar_below`] (counted whether or
    /// not the grammar term is on), and their mean allowed mass: where, and how much, the sampling policy put its
    /// mass on tokens the grammar forbids.
    pub grammar_tokens: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grammar_mass: Option<f64>,
    pub grad_norm: f64,
    /// Share of the completions whose rows got credit (0 without [`GrpoOptions::row_credit`]).
    pub row_credited: f64,
    /// The mean reward of the greedy answers to the step's prompts ([`Baseline::Greedy`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greedy_reward: Option<f64>,
    /// The share of the unconstrained rollouts that pass the strict gate ([`GrpoOptions::free_rollouts`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_valid: Option<f64>,
    /// Rollouts left out of the loss for writing a vision token (an image placeholder, a vision start or end).
    pub vision_token_rollouts: usize,
}

/// Scores completions (texts) against solutions; returns the total rewards and the per-function means.
pub fn score(
    texts: &[String],
    solutions: &[&str],
    schema: Schema,
    cfg: &RewardConfig,
) -> (Vec<f64>, serde_json::Map<String, serde_json::Value>) {
    let rows = rewards::score_batch(texts, solutions, schema, cfg);
    let totals: Vec<f64> = rows.iter().map(rewards::total).collect();
    let cols = rewards::by_function(&rows);
    let mut means = serde_json::Map::new();
    for (k, name) in REWARD_NAMES.iter().enumerate() {
        let m = cols[k].iter().sum::<f64>() / cols[k].len().max(1) as f64;
        means.insert(name.to_string(), json!(m));
    }
    (totals, means)
}

/// What the GRPO loop needs besides the policy: a generator, the frozen reference, decoding of completions.
pub struct GrpoParts<'a> {
    pub rollout: &'a mut dyn Rollout,
    pub reference: &'a Qwen35,
    pub decode: &'a dyn Fn(&[u32]) -> String,
    pub stop_ids: Vec<u32>,
    pub stop_seq: Vec<u32>,
    pub schema: Schema,
    pub rewards: RewardConfig,
    pub pad: u32,
}

/// The hidden states at the target positions divided by the sampling temperature, so that the LM head gives
/// `logits / temperature` (the log-probabilities of what was sampled; greedy or `temperature ≤ 0`: unscaled).
pub fn sampling_hidden(model: &Qwen35, batch: &crate::batch::Batch, temperature: f32) -> Result<Tensor> {
    let h = target_hidden(model, batch)?;
    if temperature > 0.0 && temperature != 1.0 {
        Ok(h.affine(1.0 / temperature as f64, 0.0)?)
    } else {
        Ok(h)
    }
}

/// One GRPO step on `prompts`: rollouts, rewards, advantages, the clipped + KL loss, one optimizer update.
pub fn grpo_step(
    model: &Qwen35,
    opt: &mut AdamW,
    parts: &mut GrpoParts,
    prompts: &[&GrpoPrompt],
    lr: f64,
    seed: u64,
    o: &GrpoOptions,
) -> Result<StepStats> {
    let (grads, mut stats) = grpo_gradients(model, opt, parts, prompts, seed, o)?;
    stats.grad_norm = global_norm(&grads)?;
    opt.update_scaled(&grads, lr, clip_factor(stats.grad_norm, o.max_grad_norm))?;
    Ok(stats)
}

/// The rollouts, rewards and loss of one GRPO step and the loss's gradient for each of `opt`'s parameters (in its
/// order, unclipped), without updating anything: [`grpo_step`] before its optimizer update (`grad_norm` unset).
pub fn grpo_gradients(
    model: &Qwen35,
    opt: &AdamW,
    parts: &mut GrpoParts,
    prompts: &[&GrpoPrompt],
    seed: u64,
    o: &GrpoOptions,
) -> Result<(Vec<Tensor>, StepStats)> {
    let s = Sampling {
        temperature: o.temperature,
        max_new_tokens: o.max_new_tokens,
        seed,
        stop_ids: parts.stop_ids.clone(),
        stop_seq: parts.stop_seq.clone(),
        unconstrained: o.free_rollouts.min(o.group),
    };
    let ps: Vec<Prompt> = prompts.iter().map(|p| Prompt { ids: &p.prompt, image: p.image.as_ref() }).collect();
    let completions = parts.rollout.generate(&ps, o.group, &s)?;
    let texts: Vec<String> = completions.iter().map(|c| (parts.decode)(c)).collect();
    let solutions: Vec<&str> = prompts.iter().flat_map(|p| std::iter::repeat_n(p.solution.as_str(), o.group)).collect();
    let (totals, functions) = score(&texts, &solutions, parts.schema, &parts.rewards);
    let mut greedy_reward = None;
    let adv = match o.baseline {
        Baseline::GroupMean => advantages(&totals, o.group),
        Baseline::Greedy => {
            let (base, _) = greedy_scores(parts, prompts, o.max_new_tokens)?;
            greedy_reward = Some(base.iter().sum::<f64>() / base.len().max(1) as f64);
            advantages_over(&totals, o.group, &base)
        }
    };
    let rows = (o.row_credit != 0.0).then(|| {
        credit::row_terms(&completions, &texts, &solutions, o.group, parts.schema, &parts.rewards, parts.decode)
    });
    // A free rollout may write one of the model's vision tokens; the training forward would take an image
    // placeholder among its tokens for part of the prompt's image and fail the whole step. Such a completion keeps
    // its reward (its text fails the gate) but is left out of the loss, like a rollout the generator failed.
    let cfg = &model.config;
    let vision = [cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id];
    let mut vision_token_rollouts = 0;
    let examples: Vec<Example> = completions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = prompts[i / o.group];
            let target = if c.iter().any(|t| vision.contains(t)) {
                vision_token_rollouts += 1;
                Vec::new()
            } else {
                c.clone()
            };
            Example { prompt: p.prompt.clone(), target, image: p.image.clone() }
        })
        .collect();
    let n_seq = examples.iter().filter(|e| !e.target.is_empty()).count().max(1) as f64;
    let masses = parts.rollout.allowed_mass();
    let mass_at = |i: usize, k: usize| masses.and_then(|m| m.get(i)?.get(k)).map(|&m| m as f64);
    let (reference, pad) = (parts.reference, parts.pad);
    // The forward and backward passes on rayon's threads (`sgvlm_model::ops::on_pool`): on the CPU as passes of
    // a few completions of similar length dealt to the cores, on a GPU as passes of `micro_batch` ([`passes`]).
    let device = model.text.embed_tokens.device();
    let objective = Objective::of(o);
    let (grads, loss_sum, kl) = sgvlm_model::ops::on_pool(|| -> Result<_> {
        let order: Vec<usize> = (0..examples.len()).filter(|&i| !examples[i].target.is_empty()).collect();
        let (threads, pass_size) = passes::layout(device, 0, o.micro_batch.max(1));
        let plan = passes::plan(&order, &examples, threads, pass_size);
        let results = passes::on_threads(&plan, |list: &[Vec<usize>]| -> Result<_> {
            let mut acc = GradAccumulator::new(opt);
            let mut kl = KlTally::default();
            let mut loss_sum = 0f64;
            for chunk in list {
                let refs: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
                let batch = collate(&refs, pad, device)?;
                let ref_h = sampling_hidden(reference, &batch, o.temperature)?;
                let ref_lp = token_logprobs(&ref_h, &reference.lm_head.weight, &batch.targets, o.vocab_chunk)?;
                let h = sampling_hidden(model, &batch, o.temperature)?;
                let seq_len: Vec<f64> = refs.iter().map(|e| e.target.len() as f64).collect();
                // Where each sequence's targets start in the batch's target list (collated sequence by sequence).
                let first: Vec<usize> = refs
                    .iter()
                    .scan(0, |at, e| {
                        let s = *at;
                        *at += e.target.len();
                        Some(s)
                    })
                    .collect();
                let head = logprob_surrogate(&h, &model.lm_head.weight, &batch.targets, o.vocab_chunk, |lp| {
                    lp.iter()
                        .enumerate()
                        .map(|(t, &l)| {
                            let b = batch.seq_of[t];
                            let i = chunk[b];
                            let k = t - first[b];
                            let mass = mass_at(i, k);
                            let w = 1.0 / (n_seq * seq_len[b]);
                            // The grammar term's share of this token's loss and derivative.
                            let mut grammar = (0.0, 0.0);
                            if let Some(m) = mass.filter(|&m| m < o.grammar_below) {
                                kl.grammar += 1;
                                kl.grammar_mass += m;
                                grammar = (-o.grammar_weight * l as f64, -o.grammar_weight);
                                loss_sum += w * grammar.0;
                            }
                            if mass.zip(o.forced_below).is_some_and(|(m, f)| m < f) {
                                kl.forced += 1;
                                return (w * grammar.1) as f32;
                            }
                            let a = adv[i] + rows.as_ref().map_or(0.0, |r| o.row_credit * r.terms[i][k]);
                            let (loss, d) = objective.token(l as f64, l as f64, ref_lp[t] as f64, a);
                            loss_sum += w * loss;
                            kl.add(l as f64, ref_lp[t] as f64, mass);
                            (w * (d + grammar.1)) as f32
                        })
                        .collect()
                })?;
                acc.add(opt, &head.surrogate.backward()?)?;
            }
            Ok((acc, loss_sum, kl))
        });
        let mut acc = GradAccumulator::new(opt);
        let mut kl = KlTally::default();
        let mut loss_sum = 0f64;
        for r in results {
            let (a, l, k) = r?;
            acc.merge(a)?;
            loss_sum += l;
            kl.merge(k);
        }
        Ok((acc.finish(opt)?, loss_sum, kl))
    })?;
    let mean = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    let var = totals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / totals.len().max(1) as f64;
    let stats = StepStats {
        reward_mean: mean,
        reward_std: var.sqrt(),
        functions,
        completion_len: completions.iter().map(|c| c.len() as f64).sum::<f64>() / completions.len().max(1) as f64,
        loss: loss_sum,
        kl: kl.sum / kl.n.max(1) as f64,
        kl_max: kl.max,
        kl_max_logp: kl.max_logp,
        kl_max_ref_logp: kl.max_ref_logp,
        kl_max_allowed_mass: kl.max_mass,
        forced_tokens: kl.forced,
        tokens: kl.n + kl.forced,
        grammar_tokens: kl.grammar,
        grammar_mass: (kl.grammar > 0).then(|| kl.grammar_mass / kl.grammar as f64),
        grad_norm: 0.0,
        row_credited: rows.map_or(0.0, |r| r.credited as f64 / completions.len().max(1) as f64),
        greedy_reward,
        free_valid: free_valid(&texts, o, parts),
        vision_token_rollouts,
    };
    Ok((grads, stats))
}

/// The strict-gate pass rate of the unconstrained rollouts (the last `free_rollouts` of each group).
fn free_valid(texts: &[String], o: &GrpoOptions, parts: &GrpoParts) -> Option<f64> {
    let k = o.free_rollouts.min(o.group);
    if k == 0 {
        return None;
    }
    let free: Vec<&String> = texts.chunks(o.group.max(1)).flat_map(|g| &g[g.len() - k.min(g.len())..]).collect();
    let pass = free.iter().filter(|t| sgvlm_graph::strict::is_valid(t, parts.schema, &parts.rewards.gate)).count();
    Some(pass as f64 / free.len().max(1) as f64)
}

/// What a GRPO run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GrpoSummary {
    pub steps: u64,
    /// The rollouts' mean reward averaged over the first and the last ten steps (single steps are noisy; in a run
    /// of fewer than 20 steps, over its first and last halves, so the two never share a step).
    pub early_reward: Option<f64>,
    pub late_reward: Option<f64>,
    pub best_val_reward: Option<f64>,
    pub best_step: Option<u64>,
    /// The best checkpoint's validation lead over the starting policy and its paired standard error
    /// ([`paired_gain`]).
    pub best_gain: Option<f64>,
    pub best_gain_se: Option<f64>,
    /// The taken checkpoint's lead on the confirmation prompts and its standard error (with confirmation prompts).
    pub confirm_gain: Option<f64>,
    pub confirm_gain_se: Option<f64>,
    /// Checkpoints that cleared the selection margin but not the confirmation.
    pub unconfirmed: u64,
    /// The strict-gate pass rate of free greedy decoding on the validation prompts at the start and at the last
    /// validation ([`GrpoOptions::free_check`]).
    pub free_valid_start: Option<f64>,
    pub free_valid_last: Option<f64>,
    /// How many validation and confirmation prompts the choice rested on.
    pub val_prompts: usize,
    pub confirm_prompts: usize,
    pub best_checkpoint: Option<PathBuf>,
    pub seconds: f64,
}

/// Runs GRPO. The best checkpoint by validation reward is kept in `out_dir/best` (the weights are also left in
/// `policy` at the end of the run; call [`Policy::save`] or load `best` for the selected one). A checkpoint other
/// than the start is taken only if its paired gain on `val` clears [`GrpoOptions::select_margin`] and, when
/// `confirm` has prompts, its gain on them clears [`GrpoOptions::confirm_margin`].
#[allow(clippy::too_many_arguments)]
pub fn run(
    policy: &Policy,
    parts: &mut GrpoParts,
    train: &[GrpoPrompt],
    val: &[GrpoPrompt],
    confirm: &[GrpoPrompt],
    o: &GrpoOptions,
    out_dir: Option<&Path>,
    save: &dyn Fn(&Policy, &Path) -> Result<()>,
    reporter: &dyn Reporter,
) -> Result<GrpoSummary> {
    if train.is_empty() {
        return Err(TrainError::Input("no GRPO prompts".into()));
    }
    let mut opt = AdamW::new(policy.trainable(), o.adamw)?;
    let mut model = TrainModel::new(policy, o.compute_dtype, None)?;
    let metrics = MetricsLog::new(out_dir.map(|d| d.join("metrics.jsonl")).as_deref())?;
    let mut order: Vec<usize> = (0..train.len()).collect();
    crate::batch::shuffle(&mut order, o.seed);
    let started = Instant::now();
    reporter.start("grpo", o.steps);
    let mut summary = GrpoSummary { val_prompts: val.len(), confirm_prompts: confirm.len(), ..Default::default() };
    let mut cursor = 0usize;
    let mut rewards = Vec::new();
    let mut selection = select::Selection::new(val, confirm, o);
    let keep = || -> Result<Option<PathBuf>> {
        let Some(d) = out_dir else { return Ok(None) };
        let best = d.join("best");
        save(policy, &best)?;
        Ok(Some(best))
    };
    selection.consider(0, parts, &mut summary, &metrics, reporter, &keep)?;
    let first_step_at = started.elapsed().as_secs_f64();
    for step in 0..o.steps {
        if o.max_seconds.is_some_and(|b| !time_for_another(started.elapsed().as_secs_f64(), first_step_at, step, b)) {
            break;
        }
        let prompts: Vec<&GrpoPrompt> =
            (0..o.prompts_per_step).map(|k| &train[order[(cursor + k) % order.len()]]).collect();
        cursor += o.prompts_per_step;
        let lr = o.lr;
        let st =
            grpo_step(model.for_step(policy)?, &mut opt, parts, &prompts, lr, o.seed.wrapping_add(step * 7919), o)?;
        rewards.push(st.reward_mean);
        summary.steps = step + 1;
        let mut rec = json!({"kind": "train", "step": step + 1, "lr": lr, "seconds": started.elapsed().as_secs_f64()});
        if let (Some(obj), Ok(serde_json::Value::Object(s))) = (rec.as_object_mut(), serde_json::to_value(&st)) {
            obj.extend(s);
        }
        metrics.write(&rec)?;
        reporter.step(step + 1, &rec);
        if o.eval_every > 0 && (step + 1) % o.eval_every == 0 {
            selection.consider(step + 1, parts, &mut summary, &metrics, reporter, &keep)?;
        }
    }
    if o.eval_every == 0 || summary.steps % o.eval_every != 0 {
        selection.consider(summary.steps, parts, &mut summary, &metrics, reporter, &keep)?;
    }
    reporter.finish();
    (summary.early_reward, summary.late_reward) = early_late(&rewards);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Whether a step started at `elapsed` seconds is expected to end within `budget`, the `steps` done since
/// `first_step_at` (validations included) having taken their mean each. The first step always starts; a phase of
/// steps of 256 prompts (~2 minutes each on a CPU core) would otherwise overrun its budget by up to a step.
fn time_for_another(elapsed: f64, first_step_at: f64, steps: u64, budget: f64) -> bool {
    let per_step = if steps == 0 { 0.0 } else { (elapsed - first_step_at).max(0.0) / steps as f64 };
    steps == 0 || elapsed + per_step <= budget
}

/// The mean of the first and of the last `min(10, n / 2)` (at least one) of `n` step rewards ([`GrpoSummary`]).
fn early_late(rewards: &[f64]) -> (Option<f64>, Option<f64>) {
    let w = (rewards.len() / 2).clamp(1, 10);
    let mean = |r: &[f64]| (!r.is_empty()).then(|| r.iter().sum::<f64>() / r.len() as f64);
    (mean(&rewards[..w.min(rewards.len())]), mean(&rewards[rewards.len().saturating_sub(w)..]))
}

#[cfg(test)]
mod tests;
