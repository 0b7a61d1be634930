//! Output-gated full attention (the `full_attention` layers).
//!
//! `q_proj` yields, per head, a query and a gate (interleaved head by head); queries and keys get a Gemma-style
//! RMSNorm over the head dimension, then partial M-RoPE; grouped-query softmax attention with a causal mask;
//! the result is multiplied by `σ(gate)` before `o_proj`.

use candle_core::{Tensor, D};
use candle_nn::VarBuilder;

use crate::config::TextConfig;
use crate::error::Result;
use crate::kernels;
use crate::ops::{compute_dtype, matmul, needs_grad, rms_norm_1p, sigmoid, softmax_last, Linear};
use crate::rope::TextRope;

/// Per-sequence keys and values seen so far: `[B, H_kv, T_past, d_h]` each.
#[derive(Debug, Clone)]
pub struct KvState {
    pub k: Tensor,
    pub v: Tensor,
}

#[derive(Debug, Clone)]
pub struct FullAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
    n_h: usize,
    n_kv: usize,
    d_h: usize,
    eps: f64,
}

impl FullAttention {
    pub fn load(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (h, n_h, n_kv, d_h) = (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        Ok(Self {
            q_proj: Linear::load(&vb.pp("q_proj"), h, 2 * n_h * d_h, false)?,
            k_proj: Linear::load(&vb.pp("k_proj"), h, n_kv * d_h, false)?,
            v_proj: Linear::load(&vb.pp("v_proj"), h, n_kv * d_h, false)?,
            o_proj: Linear::load(&vb.pp("o_proj"), n_h * d_h, h, false)?,
            q_norm: vb.pp("q_norm").get(d_h, "weight")?,
            k_norm: vb.pp("k_norm").get(d_h, "weight")?,
            n_h,
            n_kv,
            d_h,
            eps: cfg.rms_norm_eps,
        })
    }

    /// Attends `x` `[B, T, hidden]` causally over the cached keys (if any) and itself; appends to `state`.
    pub fn forward(&self, x: &Tensor, rope: &TextRope, state: Option<&mut Option<KvState>>) -> Result<Tensor> {
        self.forward_masked(x, rope, state, None)
    }

    /// [`FullAttention::forward`] with an extra additive mask over the keys (cached and new), broadcastable to
    /// `[B, H, T, T_past + T]` (typically `[B, 1, 1, T_past + T]` with `−∞` at each sequence's padding slots).
    /// The decoding engine uses it to batch sequences of different lengths over one left-padded KV cache.
    pub fn forward_masked(
        &self,
        x: &Tensor,
        rope: &TextRope,
        state: Option<&mut Option<KvState>>,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let qg = self.q_proj.forward(x)?.reshape((b, t, self.n_h, 2 * self.d_h))?;
        let q = qg.narrow(D::Minus1, 0, self.d_h)?;
        let gate = qg.narrow(D::Minus1, self.d_h, self.d_h)?.reshape((b, t, self.n_h * self.d_h))?;
        let q = rms_norm_1p(&q, &self.q_norm, self.eps)?.transpose(1, 2)?; // [B,H,T,d]
        let k = self.k_proj.forward(x)?.reshape((b, t, self.n_kv, self.d_h))?;
        let k = rms_norm_1p(&k, &self.k_norm, self.eps)?.transpose(1, 2)?;
        let v = self.v_proj.forward(x)?.reshape((b, t, self.n_kv, self.d_h))?.transpose(1, 2)?;
        let q = rope.apply(&q)?;
        let k = rope.apply(&k)?;

        let (k, v) = match state {
            Some(slot) => {
                // Kept contiguous: candle concatenates contiguous operands into a contiguous result, but anything
                // else (the new keys' transposed view, a cache the engine trimmed) through transposed copies whose
                // layout the decode step's matmul cannot read.
                let (k, v) = match slot.as_ref() {
                    Some(prev) => (
                        Tensor::cat(&[&prev.k.contiguous()?, &k.contiguous()?], 2)?,
                        Tensor::cat(&[&prev.v.contiguous()?, &v.contiguous()?], 2)?,
                    ),
                    None => (k.contiguous()?, v.contiguous()?),
                };
                *slot = Some(KvState { k: k.detach(), v: v.detach() });
                (k, v)
            }
            None => (k, v),
        };
        let total = k.dim(2)?;
        let past = total - t;
        let rep = self.n_h / self.n_kv;
        if t == 1 && !needs_grad(&[&q, &k, &v]) {
            return self.decode_one(&q, &k, &v, &gate, b, key_mask);
        }
        let expand = |x: &Tensor| -> Result<Tensor> {
            if rep == 1 {
                return Ok(x.contiguous()?);
            }
            Ok(x.unsqueeze(2)?
                .broadcast_as((b, self.n_kv, rep, total, self.d_h))?
                .reshape((b, self.n_h, total, self.d_h))?)
        };
        let (k, v) = (expand(&k)?, expand(&v)?);
        let scale = (self.d_h as f64).powf(-0.5);
        let raw = matmul(&q.contiguous()?, &k.t()?.contiguous()?)?;
        if key_mask.is_none() && t > 1 && needs_grad(&[&raw]) && kernels::supported(&raw) {
            // Training on the CPU: scale, causal mask and softmax as one node (kernels::softmax).
            let probs = kernels::softmax(&raw, scale, Some(past))?;
            return self.finish(&probs, &v, &gate, b, t);
        }
        let scores = (raw * scale)?;
        let scores = scores.to_dtype(compute_dtype(scores.dtype()))?;
        let scores = if t > 1 {
            scores.broadcast_add(&causal_mask(t, past, scores.device())?.to_dtype(scores.dtype())?)?
        } else {
            scores // one query sees every key: the causal mask is all zeros
        };
        let scores = match key_mask {
            Some(m) => scores.broadcast_add(&m.to_dtype(scores.dtype())?)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?;
        self.finish(&probs, &v, &gate, b, t)
    }

    /// One new token per sequence (decoding, no gradient): the `rep` query heads that share a key/value head are
    /// stacked as rows against that head's keys, so the cache is read in place — no copy of it repeated per query
    /// head, none transposed — and no causal mask is needed (the one query sees every key).
    fn decode_one(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        gate: &Tensor,
        b: usize,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let rep = self.n_h / self.n_kv;
        // [B, H, 1, d] → [B, H_kv, rep, d]: head h reads key/value head h / rep.
        let q = q.contiguous()?.reshape((b, self.n_kv, rep, self.d_h))?;
        let (k, v) = (k.contiguous()?, v.contiguous()?); // no copy for the cache kept above
        let scores = (matmul(&q, &k.t()?)? * (self.d_h as f64).powf(-0.5))?;
        let scores = scores.to_dtype(compute_dtype(scores.dtype()))?;
        let scores = match key_mask {
            Some(m) => scores.broadcast_add(&m.to_dtype(scores.dtype())?)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?.to_dtype(v.dtype())?;
        // [B, H_kv, rep, d] is [B, H, d] in memory: the heads' outputs side by side, as `o_proj` reads them.
        let out = matmul(&probs, &v)?.reshape((b, 1, self.n_h * self.d_h))?;
        self.o_proj.forward(&out.mul(&sigmoid(gate)?)?)
    }

    /// The attention-weighted values, gated by `σ(gate)`, through `o_proj`.
    fn finish(&self, probs: &Tensor, v: &Tensor, gate: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let probs = probs.to_dtype(v.dtype())?;
        let out = matmul(&probs, v)?.transpose(1, 2)?.reshape((b, t, self.n_h * self.d_h))?;
        let out = out.mul(&sigmoid(gate)?)?;
        self.o_proj.forward(&out)
    }
}

/// `[T, past+T]` additive mask: query `i` sees keys `0..=past+i`.
fn causal_mask(t: usize, past: usize, device: &candle_core::Device) -> Result<Tensor> {
    let total = past + t;
    let data: Vec<f32> =
        (0..t).flat_map(|i| (0..total).map(move |j| if j <= past + i { 0.0 } else { f32::NEG_INFINITY })).collect();
    Ok(Tensor::from_vec(data, (t, total), device)?)
}
