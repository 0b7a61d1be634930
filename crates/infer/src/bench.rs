//! The generation benchmark behind `sgvlm bench generate`: random images of a fixed size inside a prompt of about
//! `text_tokens` text tokens, exactly `new_tokens` generated per sequence (end tokens and stop strings ignored),
//! one warm-up run per batch size, then one timed run.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::backend::{BackendError, GenParams, GenRequest, Message, Role};
use crate::engine::{DecodeMode, Engine, EngineConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub batches: Vec<usize>,
    pub text_tokens: usize,
    pub new_tokens: usize,
    /// `(width, height)` of the random images; None: text-only prompts.
    pub image_size: Option<(u32, u32)>,
    /// Prompt text the `text_tokens` are cut from (repeated if too short).
    pub base_prompt: String,
    pub warmup: bool,
    /// How the engine runs decode steps (`Auto`: CUDA graphs on a GPU).
    pub decode: DecodeMode,
}

/// One batch size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub batch: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub total_s: f64,
    /// Latency of one graph: every sequence of the batch finishes at the end.
    pub s_per_graph: f64,
    /// `total_s / batch`.
    pub amortised_s_per_graph: f64,
    /// Generated tokens per second over the decode phase (all sequences).
    pub decode_tokens_per_s: f64,
    /// Generated tokens per second over the whole run.
    pub tokens_per_s: f64,
    /// Peak resident memory of the process so far (Linux `VmHWM`), MiB: on the CPU usually the model's loading
    /// (the memory-mapped checkpoint beside the converted weights); on a GPU only the host side (the card's memory
    /// is sampled with nvidia-smi by `scripts/gpu_bench.sh`).
    pub peak_rss_mib: Option<f64>,
    /// Resident memory after the run (Linux `VmRSS`), MiB: the loaded model and the engine's buffers.
    pub rss_mib: Option<f64>,
    /// The decode mode that ran (`eager`, `fixed` or `graph`).
    pub decode: String,
    /// Whether the fixed-shape steps ran fused (`TextModel::fuse_for_decode`: on CUDA unless `SGVLM_FUSED=0`).
    pub fused: bool,
    /// Decode steps that were one CUDA graph launch.
    pub graph_steps: usize,
    /// Fixed-shape batch states built (with graphs, each a warm-up step and a capture).
    pub fixed_builds: usize,
    /// Why capturing a CUDA graph failed, when it did (the steps then ran op by op).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_error: Option<String>,
    /// FNV-1a hash of every generated token id in order (hex): two runs of one model and prompt that decode the
    /// same tokens have the same digest, whatever the decode mode.
    pub tokens_digest: String,
    /// With `SGVLM_PROFILE=1` ([`sgvlm_model::profile`]): the timed run's seconds and calls per part, prefill and
    /// decode together (a layer's calls are one per forward). The waits for the device make such a run slower.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<std::collections::BTreeMap<String, sgvlm_model::profile::Part>>,
}

/// Peak resident memory of this process (Linux `/proc/self/status` `VmHWM`), MiB; None elsewhere.
pub fn peak_rss_mib() -> Option<f64> {
    peak_and_rss_mib().0
}

/// `(peak, now)` resident memory (`VmHWM`, `VmRSS`) from one reading of `/proc/self/status`, so that the peak is
/// never below the current figure (two separate readings can see memory grow in between); None elsewhere.
pub fn peak_and_rss_mib() -> (Option<f64>, Option<f64>) {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(s) => (field_mib(&s, "VmHWM:"), field_mib(&s, "VmRSS:")),
        Err(_) => (None, None),
    }
}

fn field_mib(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark; the engine's config is switched to bench mode (`ignore_end`) and `max_batch` = each batch.
pub fn bench_generate(engine: &mut Engine, opts: &BenchOptions) -> Result<Vec<BenchRow>, BackendError> {
    if opts.new_tokens == 0 || opts.batches.contains(&0) {
        return Err(BackendError::BadRequest("batch sizes and --new-tokens must be at least 1".into()));
    }
    let text = prompt_of_tokens(engine, &opts.base_prompt, opts.text_tokens)?;
    let mut rows = Vec::new();
    for &b in &opts.batches {
        engine.set_config(EngineConfig {
            max_batch: b,
            max_prefill_tokens: usize::MAX,
            ignore_end: true,
            decode: opts.decode,
            ..EngineConfig::default()
        });
        let reqs = requests(&text, opts.image_size, b, opts.new_tokens)?;
        if opts.warmup {
            let warm = requests(&text, opts.image_size, b, 2)?;
            first_error(engine.generate(&warm))?;
        }
        sgvlm_model::profile::take();
        let t = std::time::Instant::now();
        let (outs, timings) = engine.generate_timed(&reqs);
        let total = t.elapsed().as_secs_f64();
        let outs = first_error(outs)?;
        let prompt_tokens = outs.first().map_or(0, |g| g.prompt_ids.len());
        let generated: usize = outs.iter().map(|g| g.tokens.len()).sum();
        let (peak_rss_mib, rss_mib) = peak_and_rss_mib();
        rows.push(BenchRow {
            batch: b,
            prompt_tokens,
            new_tokens: opts.new_tokens,
            prefill_s: timings.prefill_s,
            decode_s: timings.decode_s,
            total_s: total,
            s_per_graph: total,
            amortised_s_per_graph: total / b as f64,
            decode_tokens_per_s: (generated.saturating_sub(b)) as f64 / timings.decode_s.max(1e-12),
            tokens_per_s: generated as f64 / total.max(1e-12),
            peak_rss_mib,
            rss_mib,
            decode: format!("{:?}", engine.decode_mode()).to_lowercase(),
            fused: engine.model().text.is_fused(),
            graph_steps: timings.graph_steps,
            fixed_builds: timings.fixed_builds,
            graph_error: timings.graph_error.clone(),
            tokens_digest: digest(outs.iter().flat_map(|g| g.tokens.iter().copied())),
            profile: sgvlm_model::profile::enabled().then(sgvlm_model::profile::take),
        });
    }
    Ok(rows)
}

/// FNV-1a (64-bit) of the ids' little-endian bytes, as 16 hex digits.
fn digest(ids: impl Iterator<Item = u32>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ids.flat_map(u32::to_le_bytes) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn first_error<T>(v: Vec<Result<T, BackendError>>) -> Result<Vec<T>, BackendError> {
    v.into_iter().collect()
}

/// `n` token's worth of `base` (repeated if needed), as text.
fn prompt_of_tokens(engine: &Engine, base: &str, n: usize) -> Result<String, BackendError> {
    let tok = engine.tokenizer();
    let ids = tok.encode(base).map_err(|e| BackendError::BadRequest(e.to_string()))?;
    if ids.is_empty() {
        return Err(BackendError::BadRequest("the bench prompt is empty".into()));
    }
    let cut: Vec<u32> = ids.iter().copied().cycle().take(n).collect();
    let text = tok.decode(&cut, false).map_err(|e| BackendError::BadRequest(e.to_string()))?;
    Ok(text.replace("<image>", ""))
}

fn requests(
    text: &str,
    image: Option<(u32, u32)>,
    b: usize,
    new_tokens: usize,
) -> Result<Vec<GenRequest>, BackendError> {
    (0..b)
        .map(|i| {
            let images = match image {
                Some((w, h)) => vec![Arc::new(random_png(w, h, i as u64)?)],
                None => vec![],
            };
            Ok(GenRequest {
                messages: vec![Message { role: Role::User, content: text.to_string() }],
                images,
                params: GenParams { max_new_tokens: new_tokens, stop: vec![], ..GenParams::default() },
            })
        })
        .collect()
}

/// A `w × h` PNG of uniform random pixels.
pub fn random_png(w: u32, h: u32, seed: u64) -> Result<Vec<u8>, BackendError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut px = vec![0u8; (w * h * 3) as usize];
    rng.fill(&mut px[..]);
    let img = image::RgbImage::from_raw(w, h, px).ok_or_else(|| BackendError::BadRequest("bad image size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| BackendError::Engine(format!("png: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use sgvlm_model::tokenizer::Tokenizer;
    use sgvlm_model::vision::processor::ImageProcessor;
    use sgvlm_model::{checkpoint, Config, Qwen35};

    use super::*;

    fn tiny_engine() -> Engine {
        tiny_engine_fused(false)
    }

    fn tiny_engine_fused(fused: bool) -> Engine {
        let cfg = Config::tiny();
        let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu).unwrap();
        let mut model = Qwen35::from_tensors(&cfg, weights, DType::F32, &Device::Cpu).unwrap();
        if fused {
            model.text.fuse_for_decode().unwrap();
        }
        let processor = ImageProcessor { min_pixels: 4096, max_pixels: 65_536, ..ImageProcessor::default() };
        Engine::new(model, Tokenizer::tiny(), processor, EngineConfig::default()).unwrap()
    }

    #[test]
    fn one_row_per_batch_with_exactly_the_new_tokens_asked_for() {
        let mut engine = tiny_engine();
        let opts = BenchOptions {
            batches: vec![1, 3],
            text_tokens: 24,
            new_tokens: 5,
            image_size: Some((64, 48)),
            base_prompt: "Write the scene graph of this image.".into(),
            warmup: false,
            decode: DecodeMode::Auto,
        };
        let rows = bench_generate(&mut engine, &opts).unwrap();
        assert_eq!(rows.iter().map(|r| r.batch).collect::<Vec<_>>(), vec![1, 3]);
        for r in &rows {
            assert_eq!(r.new_tokens, 5);
            assert!(r.prompt_tokens > 24, "the image's tokens come on top of the text: {}", r.prompt_tokens);
            assert!(r.prefill_s > 0.0 && r.decode_s > 0.0 && r.total_s >= r.prefill_s);
            assert!((r.amortised_s_per_graph - r.total_s / r.batch as f64).abs() < 1e-12);
            // 4 decode steps per sequence (the first token comes from the prefill).
            let expected = (4 * r.batch) as f64 / r.decode_s;
            assert!((r.decode_tokens_per_s - expected).abs() < 1e-6 * expected);
            if cfg!(target_os = "linux") {
                let (peak, now) = (r.peak_rss_mib.unwrap(), r.rss_mib.unwrap());
                assert!(now > 1.0 && peak >= now, "peak {peak} MiB, now {now} MiB");
            }
        }
        assert!(rows.iter().all(|r| !r.fused));
        // A fused model's fixed-shape steps decode the same tokens and say so.
        let fixed = BenchOptions { batches: vec![3], decode: DecodeMode::Fixed, ..opts.clone() };
        let plain = bench_generate(&mut tiny_engine(), &fixed).unwrap();
        let fused = bench_generate(&mut tiny_engine_fused(true), &fixed).unwrap();
        assert!(fused[0].fused && !plain[0].fused);
        assert_eq!(fused[0].tokens_digest, plain[0].tokens_digest);
        let zero = BenchOptions { batches: vec![0], ..opts };
        assert!(bench_generate(&mut engine, &zero).unwrap_err().to_string().contains("at least 1"));
    }
}
