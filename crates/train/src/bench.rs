//! SFT throughput on synthetic token batches (random ids, text only): seconds per optimizer step, tokens per second
//! and peak memory, for comparison with `shared/bench/hf_train_baseline.py` (same batch and lengths, same device).
//! A timing tool, not a test.

use std::time::Instant;

use sgvlm_infer::bench::peak_rss_mib;

use crate::batch::Example;
use crate::error::Result;
use crate::optim::AdamW;
use crate::policy::Policy;
use crate::precision::{ComputeDtype, TrainModel};
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
    let vocab = policy.config.text_config.vocab_size as u64;
    let mut rng = sgvlm_data::synth::Rng::for_item(0, 0xBE4C, 0);
    let answer = answer.min(len.saturating_sub(1)).max(1);
    let examples: Vec<Example> = (0..batch)
        .map(|_| {
            let ids: Vec<u32> = (0..len).map(|_| (rng.next_u64() % vocab.min(2048)) as u32).collect();
            Example { prompt: ids[..len - answer].to_vec(), target: ids[len - answer..].to_vec(), image: None }
        })
        .collect();
    let o = SftOptions { batch_size: batch, grad_accum: 1, compute_dtype: dtype, ..SftOptions::default() };
    let mut opt = AdamW::new(policy.trainable(), o.adamw)?;
    let mut model = TrainModel::new(policy, dtype, None)?;
    let micro = vec![(0..batch).collect::<Vec<usize>>()];
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t = Instant::now();
        // The step reads its loss and gradient norm back, which waits for the device.
        sft_step(policy, model.for_step(policy)?, &mut opt, &examples, &micro, 1e-6, 0.0, &o)?;
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let s_per_step = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let parameters = policy.tensors().values().map(|t| t.elem_count()).sum();
    let trainable = opt.params.iter().map(|(_, v)| v.elem_count()).sum();
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
}
