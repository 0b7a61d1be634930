//! Training throughput on synthetic token batches (random ids, text only), a timing tool, not a test:
//! [`bench_sft`] times SFT optimizer steps (for comparison with `shared/bench/hf_train_baseline.py` at the same batch
//! and lengths on the same device) and [`bench_grpo`] one GRPO step — `prompts × group` rollouts of exactly
//! `new_tokens` tokens, their rewards, and the clipped + KL update against a frozen reference — split into rollout
//! and update time.

use std::time::Instant;

use sgvlm_infer::bench::peak_rss_mib;
use sgvlm_infer::engine::{Engine, EngineConfig};
use sgvlm_model::vision::processor::ImageProcessor;

use sgvlm_graph::Schema;

use crate::batch::Example;
use crate::engine_rollout::EngineRollout;
use crate::error::{Result, TrainError};
use crate::grpo::{grpo_step, GrpoOptions, GrpoParts, GrpoPrompt};
use crate::optim::AdamW;
use crate::policy::Policy;
use crate::precision::{ComputeDtype, TrainModel};
use crate::rollout::{CachedSampler, Prompt, Rollout, Sampling};
use crate::sft::{sft_step, SftOptions};

/// What one benchmark run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub device: String,
    /// The compute dtype of the forward and backward pass (the weights stay f32).
    pub dtype: ComputeDtype,
    pub parameters: usize,
    pub trainable: usize,
    pub batch: usize,
    pub len: usize,
    pub answer: usize,
    pub steps: usize,
    /// Median over the timed steps (after `warmup` untimed ones).
    pub s_per_step: f64,
    /// `batch × len / s_per_step` (every position runs forward and backward).
    pub tokens_per_s: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), MiB; GPU memory is not measured.
    pub peak_rss_mib: Option<f64>,
    /// With `SGVLM_PROFILE=1` ([`sgvlm_model::profile`]): seconds and calls per part over the timed steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<std::collections::BTreeMap<String, sgvlm_model::profile::Part>>,
}

/// The middle of `v` once sorted (the upper middle for an even count; NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Parameters of the policy, and those the optimizer trains.
fn counts(policy: &Policy, opt: &AdamW) -> (usize, usize) {
    (policy.tensors().values().map(|t| t.elem_count()).sum(), opt.params.iter().map(|(_, v)| v.elem_count()).sum())
}

/// Seeded random token ids among the first 2,048 of the policy's vocabulary, `n` at a time.
fn random_ids(policy: &Policy, stream: u64) -> impl FnMut(usize) -> Vec<u32> {
    let vocab = (policy.config.text_config.vocab_size as u64).min(2048);
    let mut rng = sgvlm_data::synth::Rng::for_item(0, stream, 0);
    move |n| (0..n).map(|_| (rng.next_u64() % vocab) as u32).collect()
}

/// Times `steps` SFT steps of `batch` sequences of `len` tokens whose last `answer` tokens carry the loss, computing
/// in `dtype` (a bf16 step includes casting the weights, as training does once per step).
pub fn bench_sft(
    policy: &Policy,
    dtype: ComputeDtype,
    batch: usize,
    len: usize,
    answer: usize,
    steps: usize,
    warmup: usize,
) -> Result<BenchResult> {
    let mut ids_of = random_ids(policy, 0xBE4C);
    let answer = answer.min(len.saturating_sub(1)).max(1);
    let examples: Vec<Example> = (0..batch)
        .map(|_| {
            let ids = ids_of(len);
            Example { prompt: ids[..len - answer].to_vec(), target: ids[len - answer..].to_vec(), image: None }
        })
        .collect();
    let o = SftOptions { batch_size: batch, grad_accum: 1, compute_dtype: dtype, ..SftOptions::default() };
    let mut opt = AdamW::new(policy.trainable(), o.adamw)?;
    let mut model = TrainModel::new(policy, dtype, None)?;
    let micro = vec![(0..batch).collect::<Vec<usize>>()];
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        if i == warmup {
            sgvlm_model::profile::take();
        }
        let t = Instant::now();
        // The step reads its loss and gradient norm back, which waits for the device.
        sft_step(policy, model.for_step(policy)?, &mut opt, &examples, &micro, 1e-6, 0.0, &o)?;
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let s_per_step = median(times);
    let (parameters, trainable) = counts(policy, &opt);
    Ok(BenchResult {
        device: format!("{:?}", policy.device),
        dtype,
        parameters,
        trainable,
        batch,
        len,
        answer,
        steps,
        s_per_step,
        tokens_per_s: (batch * len) as f64 / s_per_step,
        peak_rss_mib: peak_rss_mib(),
        profile: sgvlm_model::profile::enabled().then(sgvlm_model::profile::take),
    })
}

/// What one GRPO benchmark run measured (medians over the timed steps).
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrpoBenchResult {
    pub device: String,
    /// The compute dtype of the update's forward and backward passes and of the reference model.
    pub dtype: ComputeDtype,
    pub parameters: usize,
    pub trainable: usize,
    pub prompts: usize,
    pub group: usize,
    pub prompt_len: usize,
    pub new_tokens: usize,
    /// Completions per backward pass.
    pub micro_batch: usize,
    pub steps: usize,
    /// What generated the rollouts: `engine` (the native engine, as training does) or `sampler`.
    pub rollout: String,
    /// Generating the `prompts × group` rollouts.
    pub rollout_s: f64,
    /// Rewards, the reference and policy passes over every rollout, the backward passes, clipping and AdamW.
    pub update_s: f64,
    pub s_per_step: f64,
    /// Mean completion length of the last step (`new_tokens` unless a rollout failed).
    pub completion_len: f64,
    /// Generated tokens per second of the rollout phase.
    pub rollout_tokens_per_s: f64,
    pub peak_rss_mib: Option<f64>,
}

/// A [`Rollout`] that adds the time its generator takes to `seconds`.
struct Timed<'a> {
    inner: &'a mut dyn Rollout,
    seconds: &'a std::cell::Cell<f64>,
}

impl Rollout for Timed<'_> {
    fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>> {
        let t = Instant::now();
        let out = self.inner.generate(prompts, n, s);
        self.seconds.set(self.seconds.get() + t.elapsed().as_secs_f64());
        out
    }

    fn allowed_mass(&self) -> Option<&[Vec<f32>]> {
        self.inner.allowed_mass()
    }
}

/// What generates the benchmark's rollouts.
pub enum BenchRollout {
    /// The native engine (`sgvlm_infer::engine`, continuous batching, CUDA-graph decode on a GPU) in benchmark mode
    /// (end tokens ignored), as `sgvlm train grpo` and `sgvlm demo` generate; the tokenizer must cover the model's
    /// vocabulary.
    Engine(Box<sgvlm_model::tokenizer::Tokenizer>),
    /// The trainer's cached sampler ([`CachedSampler`]; op by op).
    Sampler,
}

/// Times `steps` GRPO steps (after `warmup` untimed ones) of `prompts` random text prompts of `prompt_len` tokens
/// with `group` rollouts each at temperature 0.9, every rollout exactly `new_tokens` long (no stop tokens), through
/// `rollout`. The rewards compare the completions with a fixed answer; on random weights they are all equal, so the
/// advantages vanish, but the update still runs the reference and the policy over every rollout and backpropagates
/// the KL term, which is the step's cost.
#[allow(clippy::too_many_arguments)]
pub fn bench_grpo(
    policy: &Policy,
    dtype: ComputeDtype,
    prompts: usize,
    group: usize,
    prompt_len: usize,
    new_tokens: usize,
    micro_batch: usize,
    steps: usize,
    warmup: usize,
    rollout: BenchRollout,
) -> Result<GrpoBenchResult> {
    let mut ids_of = random_ids(policy, 0x6E90);
    let solution = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>";
    let set: Vec<GrpoPrompt> = (0..prompts)
        .map(|_| GrpoPrompt { prompt: ids_of(prompt_len.max(1)), image: None, solution: solution.to_string() })
        .collect();
    let reference = policy.frozen_model(dtype.dtype())?;
    let rollout_seconds = std::cell::Cell::new(0.0);
    let (name, mut generator): (&str, Box<dyn Rollout>) = match rollout {
        BenchRollout::Sampler => {
            ("sampler", Box::new(CachedSampler { model: crate::demo::inference_model(policy)?, max_batch: 64 }))
        }
        BenchRollout::Engine(tokenizer) => {
            let tokenizer = *tokenizer;
            let cfg = EngineConfig {
                max_batch: 64,
                ignore_end: true,
                refill_wait_steps: usize::MAX,
                ..EngineConfig::default()
            };
            // Text prompts: the image processor is never used.
            let engine = Engine::new(crate::demo::inference_model(policy)?, tokenizer, ImageProcessor::default(), cfg)
                .map_err(|e| TrainError::Input(format!("building the engine: {e}")))?;
            ("engine", Box::new(EngineRollout::new(engine, None)))
        }
    };
    let mut timed = Timed { inner: generator.as_mut(), seconds: &rollout_seconds };
    let decode = |ids: &[u32]| ids.iter().map(|t| (b'a' + (t % 26) as u8) as char).collect::<String>();
    let mut parts = GrpoParts {
        rollout: &mut timed,
        reference: &reference,
        decode: &decode,
        stop_ids: Vec::new(),
        stop_seq: Vec::new(),
        schema: Schema::Triplet,
        rewards: sgvlm_eval::rewards::RewardConfig::default(),
        pad: 0,
    };
    let o = GrpoOptions {
        group,
        prompts_per_step: prompts,
        max_new_tokens: new_tokens,
        micro_batch: micro_batch.max(1),
        compute_dtype: dtype,
        ..GrpoOptions::default()
    };
    let mut opt = AdamW::new(policy.trainable(), o.adamw)?;
    let mut model = TrainModel::new(policy, dtype, None)?;
    let refs: Vec<&GrpoPrompt> = set.iter().collect();
    let (mut totals, mut rollouts, mut completion_len) = (Vec::new(), Vec::new(), 0.0);
    for i in 0..warmup + steps {
        rollout_seconds.set(0.0);
        let t = Instant::now();
        // The step reads its losses back, which waits for the device.
        let st = grpo_step(model.for_step(policy)?, &mut opt, &mut parts, &refs, 1e-7, i as u64, &o)?;
        completion_len = st.completion_len;
        if i >= warmup {
            totals.push(t.elapsed().as_secs_f64());
            rollouts.push(rollout_seconds.get());
        }
    }
    let updates: Vec<f64> = totals.iter().zip(&rollouts).map(|(t, r)| t - r).collect();
    let rollout_s = median(rollouts);
    let (parameters, trainable) = counts(policy, &opt);
    Ok(GrpoBenchResult {
        device: format!("{:?}", policy.device),
        dtype,
        parameters,
        trainable,
        prompts,
        group,
        prompt_len,
        new_tokens,
        micro_batch: o.micro_batch,
        steps,
        rollout: name.into(),
        rollout_s,
        update_s: median(updates),
        s_per_step: median(totals),
        completion_len,
        rollout_tokens_per_s: (prompts * group) as f64 * completion_len / rollout_s,
        peak_rss_mib: peak_rss_mib(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_runs_and_reports_consistent_figures() {
        let p = crate::policy::tiny_random();
        for dtype in [ComputeDtype::F32, ComputeDtype::Bf16] {
            let r = bench_sft(&p, dtype, 2, 16, 4, 1, 0).unwrap();
            assert_eq!((r.batch, r.len, r.answer, r.steps, r.dtype), (2, 16, 4, 1, dtype));
            assert!(r.trainable < r.parameters && r.s_per_step > 0.0);
            assert!((r.tokens_per_s * r.s_per_step - 32.0).abs() < 1e-6);
        }
    }

    #[test]
    fn grpo_bench_times_full_length_rollouts_and_the_update() {
        let p = crate::policy::tiny_random();
        for (rollout, name) in [
            (BenchRollout::Engine(Box::new(sgvlm_model::tokenizer::Tokenizer::tiny())), "engine"),
            (BenchRollout::Sampler, "sampler"),
        ] {
            let r = bench_grpo(&p, ComputeDtype::F32, 2, 3, 5, 4, 4, 1, 0, rollout).unwrap();
            assert_eq!((r.prompts, r.group, r.prompt_len, r.new_tokens, r.steps), (2, 3, 5, 4, 1));
            assert_eq!(r.rollout, name);
            assert!(r.rollout_s > 0.0 && r.update_s > 0.0);
            assert!((r.rollout_s + r.update_s - r.s_per_step).abs() < 1e-9);
            assert_eq!(r.completion_len, 4.0, "{name}: every rollout runs to exactly --new-tokens");
            assert!((r.rollout_tokens_per_s * r.rollout_s - 24.0).abs() < 1e-6);
            assert!(r.trainable < r.parameters);
        }
    }
}
