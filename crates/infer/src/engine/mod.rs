//! The native generation engine: batched prefill and decode of Qwen3.5 on candle, with continuous batching.
//!
//! # API
//! ```text
//! let engine = Engine::new(model, tokenizer, processor, EngineConfig { max_batch: 16, ..Default::default() })?;
//! let outs: Vec<Result<Generated, BackendError>> = engine.generate(&requests);
//! ```
//! [`Engine::generate`] runs the requests to completion and returns one result per request, in order. Up to
//! `max_batch` sequences decode together; when one finishes it leaves the batch and the next queued request is
//! prefilled and joins (continuous batching). Requests whose prompts have the same length are prefilled together
//! (up to `max_prefill_tokens` tokens per forward); others one by one.
//!
//! For training (GRPO rollouts from the current policy), build the engine over the policy's [`Qwen35`] (its
//! tensors may be `Var`s an optimizer updates in place: the engine never copies weights) and read from each
//! [`Generated`] the prompt ids, the generated ids and the preprocessed image tensors and grids, which are exactly
//! the inputs needed to recompute log-probabilities with [`Qwen35::forward`] over `prompt_ids ++ tokens`
//! ([`Generated::input_ids`]).
//!
//! # Decoding
//! Each step feeds every running sequence's last token (`[B, 1]`) with explicit per-sequence M-RoPE positions; the
//! stacked caches and key mask are described in [`batch`]. Greedy unconstrained steps pick tokens with an on-device
//! argmax, so the only host transfer per step is `B` token ids; sampled or constrained steps copy the logits to the
//! host. On a CUDA device the steps run in fixed shapes and are captured as a CUDA graph, one launch per step
//! ([`fixed`], [`DecodeMode`]); `EngineConfig::decode` or `SGVLM_DECODE` chooses. Text is assembled from token
//! bytes ([`vocab`]); stop strings are matched on those bytes and kept in the text; end tokens (`<|im_end|>`,
//! `<|endoftext|>`) end a sequence and are left out; `max_new_tokens` ends it with [`FinishReason::Length`]. The
//! returned text starts with the assistant prefix (the non-thinking prefix or the request's `response_prefix`), as
//! MS-SWIFT's decoded responses do.

pub mod batch;
pub mod fixed;
pub mod prompt;
pub mod seq;
pub mod vocab;

use std::collections::VecDeque;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use sgvlm_model::positions::rope_index;
use sgvlm_model::text::TextCache;
use sgvlm_model::tokenizer::{Tokenizer, NON_THINKING_PREFIX};
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::{ImageInput, MropePositions, Qwen35};

use crate::backend::{BackendError, FinishReason, GenParams, GenRequest};
use crate::constrain::{validator_for, TokenConstraint};
use crate::sample::Sampler;
use batch::Batch;
pub use fixed::DecodeMode;
use fixed::Fixed;
use prompt::Prompt;
use seq::Seq;
use vocab::Vocab;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most sequences decoding together.
    pub max_batch: usize,
    /// Most prompt tokens in one prefill forward (a group of equal-length prompts is split to fit).
    pub max_prefill_tokens: usize,
    /// Longest prompt accepted (longer ones fail with [`BackendError::TooLong`]).
    pub max_prompt_tokens: usize,
    /// Benchmark mode: ignore end tokens and stop strings, generate exactly `max_new_tokens`.
    pub ignore_end: bool,
    /// How decode steps run ([`DecodeMode`]; `Auto`: CUDA graphs on a GPU).
    pub decode: DecodeMode,
    /// Fixed-shape decoding (CUDA graphs) rebuilds its state whenever the batch changes, so finished rows stay in a
    /// full batch until half of it has finished; a queued request waits at most this many decode steps for that
    /// before the finished rows leave anyway (a server's latency). `usize::MAX`: waves only (throughput: GRPO's
    /// rollouts, batch inference).
    pub refill_wait_steps: usize,
    /// For each token of a constrained, sampled request, record the share of the sampling distribution's mass the
    /// constraint allowed ([`Generated::allowed_mass`]): a GRPO trainer tells the tokens the grammar forced from
    /// those the policy chose. One more pass over the vocabulary per such token; off by default.
    pub record_allowed_mass: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_batch: 16,
            max_prefill_tokens: 16_384,
            max_prompt_tokens: 8192,
            ignore_end: false,
            decode: DecodeMode::Auto,
            refill_wait_steps: 16,
            record_allowed_mass: false,
        }
    }
}

/// What one request produced, with what a trainer needs to score it again.
#[derive(Debug, Clone)]
pub struct Generated {
    pub prompt_ids: Vec<u32>,
    /// Generated ids (the end token included when there was one; stop-string tokens included whole).
    pub tokens: Vec<u32>,
    /// Assistant prefix + generated text (end tokens left out, cut after the first stop string).
    pub text: String,
    pub finish: FinishReason,
    /// Preprocessed images `[Σ patches, C·T_p·P·P]` (f32, on the engine's device) and their grids.
    pub pixel_values: Option<Tensor>,
    pub grids: Vec<[usize; 3]>,
    /// With [`EngineConfig::record_allowed_mass`] and a constrained, sampled request: for each generated token, the
    /// share of the tempered distribution's mass the constraint allowed at its step (1: the mask removed nothing;
    /// near 0: the grammar, not the model, chose the token). Empty otherwise.
    pub allowed_mass: Vec<f32>,
}

impl Generated {
    /// `prompt_ids ++ tokens`: the sequence to run [`Qwen35::forward`] on to recompute log-probabilities.
    pub fn input_ids(&self) -> Vec<u32> {
        let mut v = self.prompt_ids.clone();
        v.extend_from_slice(&self.tokens);
        v
    }
}

/// Wall-clock split of one [`Engine::generate_timed`] call.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Image preprocessing, prompt building, prefill forwards and first-token sampling.
    pub prefill_s: f64,
    /// Decode steps.
    pub decode_s: f64,
    pub decode_steps: usize,
    /// Decode steps that were one CUDA graph launch.
    pub graph_steps: usize,
    /// Fixed-shape decoding states built (one per batch composition; each a warm-up and a capture with graphs).
    pub fixed_builds: usize,
    /// Why capturing a decode step as a CUDA graph failed (those batches then decoded op by op).
    pub graph_error: Option<String>,
}

/// The generation engine (see the module docs).
pub struct Engine {
    model: Qwen35,
    tokenizer: Tokenizer,
    processor: ImageProcessor,
    cfg: EngineConfig,
    vocab: Vocab,
    constraint: TokenConstraint,
    device: Device,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("cfg", &self.cfg).field("device", &self.device).finish()
    }
}

type Res<T> = Result<T, BackendError>;

impl Engine {
    /// Builds an engine over a loaded model; the vocabulary's byte table and token trie are built here, once.
    pub fn new(model: Qwen35, tokenizer: Tokenizer, processor: ImageProcessor, cfg: EngineConfig) -> Res<Self> {
        if cfg.max_batch == 0 {
            return Err(BackendError::BadRequest("max_batch must be at least 1".into()));
        }
        let vocab = Vocab::new(&tokenizer);
        let constraint = TokenConstraint::new(&vocab.tokens, &vocab.end_ids);
        let device = model.text.embed_tokens.device().clone();
        Ok(Self { model, tokenizer, processor, cfg, vocab, constraint, device })
    }

    pub fn model(&self) -> &Qwen35 {
        &self.model
    }

    /// The decode mode that runs: the config's [`DecodeMode`] on this device, and `Eager` where fixed-shape steps
    /// cannot run (the Gated DeltaNet decode kernels are off or missing for the model's dtype).
    pub fn decode_mode(&self) -> DecodeMode {
        let mode = self.cfg.decode.on(&self.device);
        if mode == DecodeMode::Fixed || mode == DecodeMode::Graph {
            let probe = Tensor::zeros((1, 1, 1), self.model.text.dtype(), &self.device);
            if !probe.is_ok_and(|p| sgvlm_model::kernels::delta_decode_supported(&p)) {
                return DecodeMode::Eager;
            }
        }
        mode
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Changes the settings (batch size, bench mode) between calls.
    pub fn set_config(&mut self, cfg: EngineConfig) {
        self.cfg = EngineConfig { max_batch: cfg.max_batch.max(1), ..cfg };
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn token_constraint(&self) -> &TokenConstraint {
        &self.constraint
    }

    /// Builds the model input of a request (images preprocessed, prompt tokenized) without generating.
    pub fn prepare(&self, req: &GenRequest) -> Res<Prompt> {
        let merge = self.model.config.vision_config.spatial_merge_size;
        let p = prompt::build(req, &self.tokenizer, &self.processor, merge, &self.device)?;
        if p.ids.len() > self.cfg.max_prompt_tokens {
            return Err(BackendError::TooLong { tokens: p.ids.len(), limit: self.cfg.max_prompt_tokens });
        }
        Ok(p)
    }

    /// Generates for every request; one result per request, in order.
    pub fn generate(&self, reqs: &[GenRequest]) -> Vec<Res<Generated>> {
        self.generate_timed(reqs).0
    }

    /// [`Engine::generate`] plus the prefill/decode time split.
    pub fn generate_timed(&self, reqs: &[GenRequest]) -> (Vec<Res<Generated>>, Timings) {
        let t0 = Instant::now();
        let seqs =
            reqs.iter().enumerate().map(|(idx, req)| self.new_seq(idx, self.prepare(req)?, &req.params)).collect();
        self.run_seqs(seqs, t0)
    }

    /// Generates from already-built model inputs (e.g. a trainer's own prompt ids and preprocessed images, so
    /// that rollouts see exactly the tokens the model was trained on); one result per item, in order. The
    /// prompt's `assistant_prefix` is what the constraint's validator is fed first (less a leading non-thinking
    /// block), as for a request.
    pub fn generate_prepared(&self, items: &[(Prompt, GenParams)]) -> Vec<Res<Generated>> {
        let t0 = Instant::now();
        let seqs = items
            .iter()
            .enumerate()
            .map(|(idx, (p, params))| {
                if p.ids.len() > self.cfg.max_prompt_tokens {
                    return Err(BackendError::TooLong { tokens: p.ids.len(), limit: self.cfg.max_prompt_tokens });
                }
                if p.ids.is_empty() {
                    return Err(BackendError::BadRequest("the prompt has no tokens".into()));
                }
                self.new_seq(idx, p.clone(), params)
            })
            .collect();
        self.run_seqs(seqs, t0).0
    }

    /// The continuous-batching loop over sequences built (or refused) in request order, run on a thread of the
    /// rayon pool ([`sgvlm_model::ops::on_pool`]).
    fn run_seqs(&self, seqs: Vec<Res<Seq>>, t0: Instant) -> (Vec<Res<Generated>>, Timings) {
        sgvlm_model::ops::on_pool(|| self.run_seqs_here(seqs, t0))
    }

    fn run_seqs_here(&self, seqs: Vec<Res<Seq>>, t0: Instant) -> (Vec<Res<Generated>>, Timings) {
        let mut timings = Timings::default();
        let mut results: Vec<Option<Res<Generated>>> = (0..seqs.len()).map(|_| None).collect();
        let mut queue: VecDeque<Seq> = VecDeque::new();
        for (idx, s) in seqs.into_iter().enumerate() {
            match s {
                Ok(s) => queue.push_back(s),
                Err(e) => results[idx] = Some(Err(e)),
            }
        }
        timings.prefill_s += t0.elapsed().as_secs_f64();
        let mut batch = Batch::new();
        let mut fixed: Option<Fixed> = None;
        let mode = self.decode_mode();
        let mut running: Vec<Seq> = Vec::new();
        // With fixed-shape steps every change of the batch rebuilds their state (with graphs: a warm-up step and a
        // capture), so finished rows stay in the batch, frozen, until the live rows are down to half the batch (or
        // none, or a queued request has waited `refill_wait_steps`): then they leave and queued requests join
        // together, one rebuild per wave instead of one per finish.
        let lazy = matches!(mode, DecodeMode::Fixed | DecodeMode::Graph);
        // Decode steps a queued request has waited for a full batch (`EngineConfig::refill_wait_steps`).
        let mut waited = 0usize;
        loop {
            let live = running.iter().filter(|s| s.finish.is_none()).count();
            let refill = !queue.is_empty() && (2 * live <= self.cfg.max_batch || waited >= self.cfg.refill_wait_steps);
            if lazy && (live == 0 || refill) {
                waited = 0;
                if let Err(e) = self.drop_finished(&mut running, &mut batch, &mut results) {
                    self.fail_all(&mut running, &mut results, &e);
                    batch = Batch::new();
                }
            }
            // Admit queued requests while there is room.
            while running.len() < self.cfg.max_batch && !queue.is_empty() {
                let t = Instant::now();
                let group = take_group(&mut queue, self.cfg.max_batch - running.len(), self.cfg.max_prefill_tokens);
                match self.prefill(group) {
                    Ok((mut seqs, cache, len)) => {
                        let rows = seqs.len();
                        let room = running.iter().chain(seqs.iter()).map(Seq::room).max().unwrap_or(0);
                        if let Err(e) = batch.merge(cache, len, rows, room) {
                            self.fail_all(&mut running, &mut results, &e);
                            self.fail_all(&mut seqs, &mut results, &e);
                            batch = Batch::new();
                        } else {
                            running.extend(seqs);
                        }
                    }
                    Err((seqs, e)) => {
                        for s in seqs {
                            results[s.idx] = Some(Err(BackendError::Engine(e.clone())));
                        }
                    }
                }
                timings.prefill_s += t.elapsed().as_secs_f64();
                if !lazy {
                    if let Err(e) = self.drop_finished(&mut running, &mut batch, &mut results) {
                        self.fail_all(&mut running, &mut results, &e);
                        batch = Batch::new();
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            if lazy && running.iter().all(|s| s.finish.is_some()) {
                continue; // the top of the loop lets them go
            }
            let t = Instant::now();
            let step = match mode {
                DecodeMode::Eager | DecodeMode::Auto => self.decode_step(&mut running, &mut batch).map(|_| false),
                mode => self.decode_fixed(&mut running, &mut batch, &mut fixed, mode, &mut timings),
            };
            match step {
                Ok(graph) => timings.graph_steps += graph as usize,
                Err(e) => {
                    self.fail_all(&mut running, &mut results, &e);
                    batch = Batch::new();
                }
            }
            timings.decode_steps += 1;
            if !queue.is_empty() && running.len() >= self.cfg.max_batch {
                waited += 1;
            }
            if !lazy {
                if let Err(e) = self.drop_finished(&mut running, &mut batch, &mut results) {
                    self.fail_all(&mut running, &mut results, &e);
                    batch = Batch::new();
                }
            }
            timings.decode_s += t.elapsed().as_secs_f64();
        }
        let out = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BackendError::Engine("internal: request was never finished".into()))))
            .collect();
        (out, timings)
    }

    fn new_seq(&self, idx: usize, prompt: Prompt, p: &GenParams) -> Res<Seq> {
        let validator = match &p.constraint {
            None => None,
            Some(c) => {
                let mut v = validator_for(c).map_err(BackendError::BadRequest)?;
                // The validator reads the answer block: the prefix minus a leading non-thinking block.
                let prefix =
                    prompt.assistant_prefix.strip_prefix(NON_THINKING_PREFIX).unwrap_or(&prompt.assistant_prefix);
                v.feed_str(prefix).map_err(|e| {
                    BackendError::BadRequest(format!("response prefix {prefix:?} cannot start a valid answer: {e}"))
                })?;
                Some(v)
            }
        };
        if p.max_new_tokens == 0 {
            return Err(BackendError::BadRequest("max_new_tokens must be at least 1".into()));
        }
        Ok(Seq {
            idx,
            prompt,
            params: p.clone(),
            tokens: Vec::new(),
            text: Vec::new(),
            pending: 0,
            next_pos: 0,
            sampler: Sampler::new(p.temperature, p.top_p, p.seed),
            validator,
            finish: None,
            error: None,
            allowed_mass: Vec::new(),
        })
    }

    /// Runs the prompts of `seqs` (all the same length) in one forward, samples each one's first token.
    #[allow(clippy::type_complexity)]
    fn prefill(&self, mut seqs: Vec<Seq>) -> Result<(Vec<Seq>, TextCache, usize), (Vec<Seq>, String)> {
        match self.prefill_inner(&mut seqs) {
            Ok((cache, len)) => Ok((seqs, cache, len)),
            Err(e) => Err((seqs, e)),
        }
    }

    fn prefill_inner(&self, seqs: &mut [Seq]) -> Result<(TextCache, usize), String> {
        let _span = sgvlm_model::profile::span("prefill (whole; its layers are also in theirs)", &self.device);
        let e = |e: sgvlm_model::Error| e.to_string();
        let c = |e: candle_core::Error| e.to_string();
        let t = seqs[0].prompt.ids.len();
        let rows: Vec<Vec<u32>> = seqs.iter().map(|s| s.prompt.ids.clone()).collect();
        let flat: Vec<u32> = rows.iter().flatten().copied().collect();
        let ids = Tensor::from_vec(flat, (seqs.len(), t), &self.device).map_err(c)?;
        let grids: Vec<[usize; 3]> = seqs.iter().flat_map(|s| s.prompt.grids.iter().copied()).collect();
        let pixels: Vec<&Tensor> = seqs.iter().filter_map(|s| s.prompt.pixel_values.as_ref()).collect();
        let dtype = self.model.text.dtype();
        let pixel_values = match pixels.len() {
            0 => None,
            _ => Some(Tensor::cat(&pixels, 0).and_then(|p| p.to_dtype(dtype)).map_err(c)?),
        };
        let images = pixel_values.as_ref().map(|p| ImageInput { pixel_values: p, grids: &grids });
        let (positions, deltas) = rope_index(&self.model.config, &rows, &grids).map_err(e)?;
        let embeds = self.model.embed(&ids, images).map_err(e)?;
        let mut cache = TextCache::new(&self.model.config.text_config);
        let out = self.model.text.forward_masked(&embeds, &positions, Some(&mut cache), None, false).map_err(e)?;
        let last = out.last_hidden.narrow(1, t - 1, 1).and_then(|x| x.squeeze(1)).map_err(c)?;
        let logits = self.model.lm_head.forward(&last).map_err(e)?;
        for (s, d) in seqs.iter_mut().zip(deltas) {
            s.next_pos = t as i64 + d;
        }
        self.sample(seqs, &logits)?;
        Ok((cache, t))
    }

    /// One decode step for every running sequence.
    fn decode_step(&self, seqs: &mut [Seq], batch: &mut Batch) -> Result<(), String> {
        let e = |e: sgvlm_model::Error| e.to_string();
        let c = |e: candle_core::Error| e.to_string();
        let b = seqs.len();
        let ids: Vec<u32> = seqs.iter().map(|s| s.pending).collect();
        let span = sgvlm_model::profile::span("decode: embed and mask", &self.device);
        let ids = Tensor::from_vec(ids, (b, 1), &self.device).map_err(c)?;
        let rows: Vec<Vec<i64>> = seqs.iter().map(|s| vec![s.next_pos]).collect();
        let positions = MropePositions { ids: [rows.clone(), rows.clone(), rows] };
        let embeds = self.model.text.embed(&ids).map_err(e)?;
        let mask = batch.key_mask(1, &self.device)?;
        drop(span);
        let cache = batch.cache.as_mut().ok_or("internal: decoding without a cache")?;
        let out = self.model.text.forward_masked(&embeds, &positions, Some(cache), mask.as_ref(), false).map_err(e)?;
        batch.kv_len += 1;
        let span = sgvlm_model::profile::span("decode: lm head", &self.device);
        let logits = self.model.lm_head.forward(&out.last_hidden.squeeze(1).map_err(c)?).map_err(e)?;
        drop(span);
        for s in seqs.iter_mut() {
            s.next_pos += 1;
        }
        let _span = sgvlm_model::profile::span("decode: sample", &self.device);
        self.sample(seqs, &logits)
    }

    /// One decode step in fixed shapes ([`fixed`]), as a CUDA graph launch in `DecodeMode::Graph`; returns
    /// whether it was one.
    fn decode_fixed(
        &self,
        seqs: &mut [Seq],
        batch: &mut Batch,
        fixed: &mut Option<Fixed>,
        mode: DecodeMode,
        timings: &mut Timings,
    ) -> Result<bool, String> {
        let cache = batch.cache.as_mut().ok_or("internal: decoding without a cache")?;
        if fixed.as_ref().is_none_or(|f| f.generation != batch.generation) {
            *fixed = None; // the previous batch's graph and buffers go first
            let positions = seqs.iter().map(|s| s.next_pos.max(0) as usize + s.room() + 1).max().unwrap_or(1);
            *fixed = Some(Fixed::new(&self.model, cache, batch.generation, &batch.left_pad, positions, &self.device)?);
            timings.fixed_builds += 1;
        }
        let f = fixed.as_mut().ok_or("internal: no fixed-shape state")?;
        // A finished row still in the batch stays frozen: the same input at the same position, within the rotary
        // table; its outputs are ignored, and rows never read each other's keys.
        let rows: Vec<(u32, i64)> = seqs.iter().map(|s| (s.pending, s.next_pos)).collect();
        f.set_inputs(&rows, batch.kv_len, &self.device)?;
        let graph = f.step(&self.model, cache, mode, &self.device)?;
        if let (Some(e), None) = (&f.capture_error, &timings.graph_error) {
            timings.graph_error = Some(e.clone());
        }
        cache.advance_static().map_err(|e| e.to_string())?;
        batch.kv_len += 1;
        for s in seqs.iter_mut().filter(|s| s.finish.is_none()) {
            s.next_pos += 1;
        }
        self.sample(seqs, f.logits()?)?;
        Ok(graph)
    }

    /// Picks each sequence's next token from `logits` `[B, V]` and records it.
    fn sample(&self, seqs: &mut [Seq], logits: &Tensor) -> Result<(), String> {
        let c = |e: candle_core::Error| e.to_string();
        // Finished rows (kept in a fixed-shape batch) take no token.
        let device_greedy = seqs.iter().all(|s| s.finish.is_some() || (s.sampler.is_greedy() && s.validator.is_none()));
        if device_greedy {
            let ids = logits.argmax(D::Minus1).and_then(|t| t.to_vec1::<u32>()).map_err(c)?;
            for (s, id) in seqs.iter_mut().zip(ids).filter(|(s, _)| s.finish.is_none()) {
                s.accept(id, &self.vocab, self.cfg.ignore_end);
            }
            return Ok(());
        }
        let host = logits.to_dtype(DType::F32).and_then(|t| t.to_vec2::<f32>()).map_err(c)?;
        let mut allowed = self.constraint.new_mask();
        let bytes_of = |id: u32| self.vocab.bytes(id).to_vec();
        for (s, row) in seqs.iter_mut().zip(host).filter(|(s, _)| s.finish.is_none()) {
            let pick = match &s.validator {
                Some(v) => {
                    self.constraint.allowed(v, &bytes_of, &mut allowed);
                    if self.cfg.record_allowed_mass && !s.sampler.is_greedy() {
                        s.allowed_mass.push(s.sampler.allowed_share(&row, &allowed));
                    }
                    s.sampler.pick(&row, Some(&allowed))
                }
                None => s.sampler.pick(&row, None),
            };
            match pick {
                Some(id) => s.accept(id, &self.vocab, self.cfg.ignore_end),
                None => {
                    s.error = Some(match &s.validator {
                        Some(v) if allowed.is_empty() => format!(
                            "constrained decoding reached a dead end after {} answer bytes: no token can continue \
                             the answer",
                            v.offset()
                        ),
                        Some(_) => "the logits of every allowed token are NaN".into(),
                        None => "the logits are all NaN".into(),
                    });
                    s.finish = Some(FinishReason::Stop);
                }
            }
        }
        Ok(())
    }

    /// Moves finished sequences out of the batch into `results`.
    fn drop_finished(
        &self,
        running: &mut Vec<Seq>,
        batch: &mut Batch,
        results: &mut [Option<Res<Generated>>],
    ) -> Result<(), String> {
        if running.iter().all(|s| s.finish.is_none()) {
            return Ok(());
        }
        let keep: Vec<usize> = (0..running.len()).filter(|&i| running[i].finish.is_none()).collect();
        batch.retain(&keep, &self.device)?;
        let mut kept = Vec::with_capacity(keep.len());
        for s in running.drain(..) {
            if s.finish.is_none() {
                kept.push(s);
            } else {
                let idx = s.idx;
                results[idx] = Some(self.finish(s));
            }
        }
        *running = kept;
        Ok(())
    }

    fn finish(&self, s: Seq) -> Res<Generated> {
        if let Some(e) = s.error {
            return Err(BackendError::Engine(e));
        }
        let mut text = s.prompt.assistant_prefix.clone();
        text.push_str(&String::from_utf8_lossy(&s.text));
        Ok(Generated {
            prompt_ids: s.prompt.ids,
            tokens: s.tokens,
            text,
            finish: s.finish.unwrap_or(FinishReason::Length),
            pixel_values: s.prompt.pixel_values,
            grids: s.prompt.grids,
            allowed_mass: s.allowed_mass,
        })
    }

    /// Fails every sequence still decoding with `e`; those that had finished (kept in a fixed-shape batch) keep
    /// their results.
    fn fail_all(&self, seqs: &mut Vec<Seq>, results: &mut [Option<Res<Generated>>], e: &str) {
        for s in seqs.drain(..) {
            let idx = s.idx;
            results[idx] =
                Some(if s.finish.is_some() { self.finish(s) } else { Err(BackendError::Engine(e.to_string())) });
        }
    }
}

/// The next prefill group: the queue's first request and, after it, further queued requests with prompts of the
/// same length, up to `room` sequences and `max_tokens` prompt tokens (at least one).
fn take_group(queue: &mut VecDeque<Seq>, room: usize, max_tokens: usize) -> Vec<Seq> {
    let Some(first) = queue.pop_front() else { return Vec::new() };
    let len = first.prompt.ids.len();
    let cap = room.min((max_tokens / len.max(1)).max(1));
    let mut group = vec![first];
    let mut i = 0;
    while group.len() < cap && i < queue.len() {
        if queue[i].prompt.ids.len() == len {
            if let Some(s) = queue.remove(i) {
                group.push(s);
            }
        } else {
            i += 1;
        }
    }
    group
}
