//! Rollouts for GRPO and greedy decoding for evaluation, behind [`Rollout`] so the GRPO loop does not care which
//! generator runs them.
//!
//! [`CachedSampler`] is a minimal generator over the model's own [`Cache`]: one prefill of the prompt replicated
//! per rollout, then one token per step for all rollouts at once; only the last position goes through the LM head.
//! It reads the policy's weights through detached tensors that share their storage, so rollouts always see the
//! current weights without a reload and build no autograd graph. It has no constrained decoding and no paged
//! memory: the native engine (`sgvlm-infer`) is the production generator.

use candle_core::{DType, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sgvlm_model::positions::rope_index;
use sgvlm_model::{Cache, ImageInput, MropePositions, Qwen35};

use crate::error::Result;

/// One prompt to continue: token ids and its preprocessed image.
#[derive(Debug, Clone, Copy)]
pub struct Prompt<'a> {
    pub ids: &'a [u32],
    pub image: Option<&'a crate::batch::ImageData>,
}

/// Sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0: greedy.
    pub temperature: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Generation of a sequence ends after any of these ids (kept in the output).
    pub stop_ids: Vec<u32>,
    /// …or after this id sequence (e.g. `</answer>`), kept.
    pub stop_seq: Vec<u32>,
    /// Of each prompt's `n` completions, how many (the last ones) a constrained generator decodes without its
    /// constraint ([`crate::grpo::GrpoOptions::free_rollouts`]); generators without a constraint decode every
    /// completion freely and ignore it.
    pub unconstrained: usize,
}

/// A generator of completions (token ids, stop token included) for prompts.
pub trait Rollout {
    /// `n` completions of each prompt, in order: the result has `prompts.len() × n` entries.
    fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>>;

    /// For the last [`Rollout::generate`] call's completions (same order), the share of the sampling
    /// distribution's mass a constraint allowed at each token; an empty list where nothing was recorded (a free
    /// completion, a generator that does not know). `None`: this generator never records it.
    fn allowed_mass(&self) -> Option<&[Vec<f32>]> {
        None
    }
}

/// The built-in cached sampler (module doc).
pub struct CachedSampler {
    pub model: Qwen35,
    /// Most sequences decoded together.
    pub max_batch: usize,
}

fn is_done(seq: &[u32], s: &Sampling) -> bool {
    seq.last().is_some_and(|t| s.stop_ids.contains(t)) || (!s.stop_seq.is_empty() && seq.ends_with(&s.stop_seq))
}

fn sample(logits: &[f32], temperature: f32, rng: &mut StdRng) -> u32 {
    if temperature <= 0.0 {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = logits.iter().map(|&v| (((v - m) / temperature) as f64).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &x) in w.iter().enumerate() {
        u -= x;
        if u <= 0.0 {
            return i as u32;
        }
    }
    (w.len() - 1) as u32
}

impl CachedSampler {
    /// Decodes one batch of prompts that all have the same length.
    fn run(&self, prompts: &[Prompt], s: &Sampling, rng: &mut StdRng) -> Result<Vec<Vec<u32>>> {
        let model = &self.model;
        let dev = model.text.embed_tokens.device().clone();
        let (b, t) = (prompts.len(), prompts[0].ids.len());
        let flat: Vec<u32> = prompts.iter().flat_map(|p| p.ids.iter().copied()).collect();
        let ids = Tensor::from_vec(flat, (b, t), &dev)?;
        let mut grids = Vec::new();
        let mut pixels = Vec::new();
        for p in prompts {
            if let Some((px, g)) = p.image {
                pixels.extend_from_slice(px);
                grids.push(*g);
            }
        }
        let pv = if grids.is_empty() {
            None
        } else {
            let n: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
            let width = pixels.len() / n.max(1);
            Some(Tensor::from_vec(pixels, (n, width), &dev)?)
        };
        let images = pv.as_ref().map(|pv| ImageInput { pixel_values: pv, grids: &grids });
        let mut cache = Cache::new(&model.config);
        let embeds = model.embed(&ids, images)?;
        let (pos, deltas) = rope_index(&model.config, &ids.to_vec2::<u32>()?, &grids)?;
        cache.rope_deltas = deltas;
        let out = model.text.forward(&embeds, &pos, Some(&mut cache.text), false)?;
        cache.text.reserve(s.max_new_tokens)?;
        let mut last = out.last_hidden.narrow(1, t - 1, 1)?;
        let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut done = vec![false; b];
        for _ in 0..s.max_new_tokens {
            let logits = model.lm_head.forward(&last)?.squeeze(1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            let mut next = Vec::with_capacity(b);
            for (i, row) in logits.iter().enumerate() {
                let tok = sample(row, s.temperature, rng);
                if !done[i] {
                    seqs[i].push(tok);
                    done[i] = is_done(&seqs[i], s);
                }
                next.push(tok);
            }
            if done.iter().all(|&d| d) {
                break;
            }
            let ids = Tensor::from_vec(next, (b, 1), &dev)?;
            let seen = cache.text.seen as i64;
            let mut p = MropePositions::text(b, 1, seen);
            for axis in p.ids.iter_mut() {
                for (row, d) in axis.iter_mut().zip(cache.rope_deltas.iter()) {
                    row.iter_mut().for_each(|x| *x += d);
                }
            }
            let e = model.text.embed(&ids)?;
            last = model.text.forward(&e, &p, Some(&mut cache.text), false)?.last_hidden;
        }
        Ok(seqs)
    }
}

impl Rollout for CachedSampler {
    fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>> {
        let mut rng = StdRng::seed_from_u64(s.seed);
        let expanded: Vec<Prompt> = prompts.iter().flat_map(|p| std::iter::repeat_n(*p, n)).collect();
        let mut out: Vec<Option<Vec<u32>>> = vec![None; expanded.len()];
        // Batches of equal-length prompts (no left padding needed), in input order within each length.
        let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, p) in expanded.iter().enumerate() {
            by_len.entry(p.ids.len()).or_default().push(i);
        }
        for idx in by_len.values() {
            for chunk in idx.chunks(self.max_batch.max(1)) {
                let batch: Vec<Prompt> = chunk.iter().map(|&i| expanded[i]).collect();
                for (&i, seq) in chunk.iter().zip(self.run(&batch, s, &mut rng)?) {
                    out[i] = Some(seq);
                }
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}
