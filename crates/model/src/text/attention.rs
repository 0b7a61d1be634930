//! Output-gated full attention (the `full_attention` layers).
//!
//! `q_proj` yields, per head, a query and a gate (interleaved head by head); queries and keys get a Gemma-style
//! RMSNorm over the head dimension, then partial M-RoPE; grouped-query softmax attention with a causal mask;
//! the result is multiplied by `σ(gate)` before `o_proj`.

use candle_core::{DType, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::TextConfig;
use crate::error::{Error, Result};
use crate::kernels;
use crate::ops::{compute_dtype, matmul, needs_grad, rms_norm_1p, sigmoid, softmax_last, Linear};
use crate::rope::TextRope;

/// Keys and values seen so far, in buffers with room to grow: `[B, H_kv, capacity, d_h]` each, the first `len`
/// time slots filled. Appending writes into the free slots in place (`Tensor::slice_set`), so a decode step costs
/// one token's keys instead of a copy of the whole cache; a full buffer is replaced by one twice as large.
///
/// Because appends write in place, the state is not `Clone`: two states never share a buffer.
#[derive(Debug)]
pub struct KvState {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl KvState {
    /// A state holding `k` and `v` `[B, H_kv, T, d_h]` (copied, detached) with room for `room` more tokens.
    pub fn with_room(k: &Tensor, v: &Tensor, room: usize) -> Result<Self> {
        let len = k.dim(2)?;
        if v.dims() != k.dims() {
            return Err(Error::Input(format!("keys {:?} and values {:?} differ in shape", k.dims(), v.dims())));
        }
        Ok(Self { k: buffer(k, len + room)?, v: buffer(v, len + room)?, len })
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens the buffers hold before the next append must grow them.
    pub fn capacity(&self) -> usize {
        self.k.dims()[2]
    }

    /// The keys held, `[B, H_kv, len, d_h]` (a view of the buffer: its batch and head strides skip the free slots).
    pub fn keys(&self) -> Result<Tensor> {
        Ok(self.k.narrow(2, 0, self.len)?)
    }

    /// The values held, like [`KvState::keys`].
    pub fn values(&self) -> Result<Tensor> {
        Ok(self.v.narrow(2, 0, self.len)?)
    }

    /// Makes room for at least `room` more tokens without growing on the way.
    pub fn reserve(&mut self, room: usize) -> Result<()> {
        if self.len + room > self.capacity() {
            self.k = buffer(&self.keys()?, self.len + room)?;
            self.v = buffer(&self.values()?, self.len + room)?;
        }
        Ok(())
    }

    /// The whole buffers `[B, H_kv, capacity, d_h]`, free slots included (zeros until written): what a
    /// fixed-shape decode step attends over, masking the free slots ([`FullAttention::decode_static`]).
    pub fn buffers(&self) -> (&Tensor, &Tensor) {
        (&self.k, &self.v)
    }

    /// Counts `t` more tokens as held after fixed-shape steps wrote them in place ([`KvState::write_slot`] does
    /// not count, so that a replayed CUDA graph, which runs no host code, is bookkept the same way).
    pub fn advance(&mut self, t: usize) -> Result<()> {
        if self.len + t > self.capacity() {
            return Err(Error::Input(format!(
                "KV cache holds {} of {} slots: no room for {t} more",
                self.len,
                self.capacity()
            )));
        }
        self.len += t;
        Ok(())
    }

    /// Writes one token's `k` and `v` `[B, H_kv, 1, d_h]` into the slot `index` names: a u32 tensor of the same
    /// shape holding the slot number everywhere (a device tensor, so a captured step can be replayed for the next
    /// slot). In place; the length is left to [`KvState::advance`].
    pub fn write_slot(&self, index: &Tensor, k: &Tensor, v: &Tensor) -> Result<()> {
        self.k.scatter_set(index, &k.contiguous()?.to_dtype(self.k.dtype())?, 2)?;
        self.v.scatter_set(index, &v.contiguous()?.to_dtype(self.v.dtype())?, 2)?;
        Ok(())
    }

    /// Appends `k` and `v` `[B, H_kv, T, d_h]` (detached) after the tokens held.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let t = k.dim(2)?;
        if self.len + t > self.capacity() {
            self.reserve(t.max(self.len))?; // doubling: amortised constant cost per token
        }
        self.k.slice_set(&k.detach().contiguous()?.to_dtype(self.k.dtype())?, 2, self.len)?;
        self.v.slice_set(&v.detach().contiguous()?.to_dtype(self.v.dtype())?, 2, self.len)?;
        self.len += t;
        Ok(())
    }
}

/// A zeroed `[B, H, capacity, d]` buffer of `x`'s dtype and device with `x` `[B, H, T, d]` in its first slots.
fn buffer(x: &Tensor, capacity: usize) -> Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    let buf = Tensor::zeros((b, h, capacity, d), x.dtype(), x.device())?;
    if t > 0 {
        buf.slice_set(&x.detach().contiguous()?, 2, 0)?;
    }
    Ok(buf)
}

/// A layer's weights arranged for fused decode steps ([`FullAttention::fuse`]): `q_proj`, `k_proj` and `v_proj` as
/// one product, and the q/k norms' effective weights `1 + w` in f32 (f64 for f64 models).
#[derive(Debug, Clone)]
pub struct FusedAttention {
    qkv: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
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

    /// Keeps the four projections' weights in bf16 ([`Linear::keep_bf16`]).
    pub fn keep_bf16(&mut self) -> Result<()> {
        for p in [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.o_proj] {
            *p = p.keep_bf16()?;
        }
        Ok(())
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
        let [q, k, v, gate] = self.project(x, rope)?;

        let (k, v) = match state {
            Some(slot) => match slot.as_mut() {
                Some(cache) if needs_grad(&[&k, &v]) => {
                    // A gradient flows into this step's keys: attend over a copy that carries it, keep the cache
                    // itself detached.
                    let (pk, pv) = (cache.keys()?.contiguous()?, cache.values()?.contiguous()?);
                    cache.append(&k, &v)?;
                    (Tensor::cat(&[&pk, &k.contiguous()?], 2)?, Tensor::cat(&[&pv, &v.contiguous()?], 2)?)
                }
                Some(cache) => {
                    cache.append(&k, &v)?;
                    (cache.keys()?, cache.values()?)
                }
                None => {
                    let cache = KvState::with_room(&k, &v, 0)?;
                    // The buffers are detached copies: attend over the keys themselves when a gradient flows.
                    let kv = if needs_grad(&[&k, &v]) { (k, v) } else { (cache.keys()?, cache.values()?) };
                    *slot = Some(cache);
                    kv
                }
            },
            // One token without a cache: `decode_one` below wants row-major keys, not the transposed view.
            None if t == 1 => (k.contiguous()?, v.contiguous()?),
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
        if key_mask.is_none() && t > 1 {
            // Scale, causal mask and softmax as one node (kernels::softmax; on CUDA its twin, in f32), for
            // training and the prefill alike.
            let raw_c = raw.to_dtype(compute_dtype(raw.dtype()))?;
            if kernels::trainable(&raw_c) {
                let probs = kernels::softmax(&raw_c, scale, Some(past))?;
                return self.finish(&probs, &v, &gate, b, t);
            }
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
        // `k` and `v` are contiguous or views of the cache's buffers, which matmul reads in place (their batch and
        // head strides step over the free slots): no copy.
        let scores = (matmul(&q, &k.t()?)? * (self.d_h as f64).powf(-0.5))?;
        let scores = scores.to_dtype(compute_dtype(scores.dtype()))?;
        let scores = match key_mask {
            Some(m) => scores.broadcast_add(&m.to_dtype(scores.dtype())?)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?.to_dtype(v.dtype())?;
        // [B, H_kv, rep, d] is [B, H, d] in memory: the heads' outputs side by side, as `o_proj` reads them.
        let out = matmul(&probs, v)?.reshape((b, 1, self.n_h * self.d_h))?;
        self.o_proj.forward(&out.mul(&sigmoid(gate)?)?)
    }

    /// Queries and keys (normed, rotated) `[B, H|H_kv, T, d]`, values `[B, H_kv, T, d]` and the output gate
    /// `[B, T, H·d]` of `x` `[B, T, hidden]`.
    fn project(&self, x: &Tensor, rope: &TextRope) -> Result<[Tensor; 4]> {
        let (b, t, _) = x.dims3()?;
        let qg = self.q_proj.forward(x)?.reshape((b, t, self.n_h, 2 * self.d_h))?;
        let q = qg.narrow(D::Minus1, 0, self.d_h)?;
        let gate = qg.narrow(D::Minus1, self.d_h, self.d_h)?.reshape((b, t, self.n_h * self.d_h))?;
        let q = rope.apply(&rms_norm_1p(&q, &self.q_norm, self.eps)?.transpose(1, 2)?)?;
        let k = self.k_proj.forward(x)?.reshape((b, t, self.n_kv, self.d_h))?;
        let k = rope.apply(&rms_norm_1p(&k, &self.k_norm, self.eps)?.transpose(1, 2)?)?;
        let v = self.v_proj.forward(x)?.reshape((b, t, self.n_kv, self.d_h))?.transpose(1, 2)?;
        Ok([q, k, v, gate])
    }

    /// One token per sequence in fixed shapes, for a decode step captured once and replayed (a CUDA graph): the
    /// new keys go to the slot `step` names (a device tensor, not a host offset) and the query attends over the
    /// whole KV buffers under `step`'s mask, which hides each row's padding and the slots not written yet. Every
    /// shape depends only on the batch and the buffers' capacity, never on how many tokens were decoded.
    pub fn decode_static(&self, x: &Tensor, rope: &TextRope, kv: &KvState, step: &StaticStep) -> Result<Tensor> {
        let b = x.dim(0)?;
        let [q, k, v, gate] = self.project(x, rope)?;
        kv.write_slot(&step.slot_index, &k, &v)?;
        let (keys, values) = kv.buffers();
        self.decode_one(&q, keys, values, &gate, b, Some(&step.key_mask))
    }

    /// Stacks `q_proj`, `k_proj` and `v_proj` into one ([`Linear::stack`]; the layer's own become views of it) and
    /// computes the q/k norms' effective weights once: what [`FullAttention::decode_fused`] reads. `None` when the
    /// projections cannot be stacked. For inference.
    pub fn fuse(&mut self) -> Result<Option<FusedAttention>> {
        let Some((qkv, views)) = Linear::stack(&[&self.q_proj, &self.k_proj, &self.v_proj])? else { return Ok(None) };
        let [q, k, v]: [Linear; 3] = views.try_into().map_err(|_| Error::Input("three views".into()))?;
        (self.q_proj, self.k_proj, self.v_proj) = (q, k, v);
        let dt = compute_dtype(self.q_norm.dtype());
        let plus_one = |w: &Tensor| -> Result<Tensor> { Ok((w.to_dtype(dt)? + 1.0)?.contiguous()?) };
        Ok(Some(FusedAttention { qkv, q_norm: plus_one(&self.q_norm)?, k_norm: plus_one(&self.k_norm)? }))
    }

    /// [`FullAttention::decode_static`] through `fused` ([`FullAttention::fuse`]): one product for the three
    /// projections, then [`kernels::attn_prep`] (q/k norms, rotary embedding, this step's KV slot written; one
    /// kernel on CUDA) and [`kernels::attn_decode`] (attention over the KV buffers, gated; cuBLAS's two products and
    /// two kernels), and `o_proj`.
    pub fn decode_fused(
        &self,
        fused: &FusedAttention,
        x: &Tensor,
        rope: &TextRope,
        kv: &KvState,
        step: &StaticStep,
    ) -> Result<Tensor> {
        let all = fused.qkv.forward(x)?;
        let heads = kernels::AttnHeads { n_h: self.n_h, n_kv: self.n_kv, d: self.d_h };
        let bufs = kv.buffers();
        let (norms, tables) = ((&fused.q_norm, &fused.k_norm), (&rope.cos, &rope.sin));
        let q = kernels::attn_prep(&all, heads, norms.0, norms.1, tables, bufs, &step.slot_index, self.eps)?;
        let out = kernels::attn_decode(&q, bufs, &step.key_mask, &all, heads)?;
        self.o_proj.forward(&out)
    }

    /// The attention-weighted values, gated by `σ(gate)`, through `o_proj`.
    fn finish(&self, probs: &Tensor, v: &Tensor, gate: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let probs = probs.to_dtype(v.dtype())?;
        let out = matmul(&probs, v)?.transpose(1, 2)?.reshape((b, t, self.n_h * self.d_h))?;
        let out = out.mul(&sigmoid(gate)?)?;
        self.o_proj.forward(&out)
    }
}

/// What a fixed-shape decode step ([`FullAttention::decode_static`]) reads besides its input, all on the device:
/// where this step's keys go and which slots each row may attend to.
#[derive(Debug, Clone)]
pub struct StaticStep {
    /// The KV slot being written, as a u32 `[B, H_kv, 1, d_h]` tensor (every element the same slot).
    pub slot_index: Tensor,
    /// Additive key mask `[B, 1, 1, capacity]`: 0 for `left_pad[b] ≤ j ≤ slot`, a large negative number elsewhere.
    pub key_mask: Tensor,
}

impl StaticStep {
    /// Builds the step's index and mask from device tensors: `slot` u32 `[1]`, `left_pad` u32 `[B]` and `slots`
    /// u32 `[capacity]` holding `0..capacity` (made once: creating it from the host inside a captured step is
    /// what a CUDA graph cannot replay). `kv_heads`, `head_dim`: the full-attention layers' KV shape.
    pub fn new(slot: &Tensor, left_pad: &Tensor, slots: &Tensor, kv_heads: usize, head_dim: usize) -> Result<Self> {
        let b = left_pad.dim(0)?;
        let cap = slots.dim(0)?;
        let slot_index = slot.reshape((1, 1, 1, 1))?.broadcast_as((b, kv_heads, 1, head_dim))?.contiguous()?;
        let row = slots.reshape((1, cap))?;
        let before = row.broadcast_lt(&left_pad.reshape((b, 1))?)?; // padding
        let after = row.broadcast_gt(&slot.reshape((1, 1))?)?; // not written yet
        let hidden = (before.to_dtype(DType::F32)? + after.to_dtype(DType::F32)?.broadcast_as((b, cap))?)?;
        let key_mask = (hidden * -1e30)?.reshape((b, 1, 1, cap))?;
        Ok(Self { slot_index, key_mask })
    }
}

/// `[T, past+T]` additive mask: query `i` sees keys `0..=past+i`.
fn causal_mask(t: usize, past: usize, device: &candle_core::Device) -> Result<Tensor> {
    let total = past + t;
    let data: Vec<f32> =
        (0..t).flat_map(|i| (0..total).map(move |j| if j <= past + i { 0.0 } else { f32::NEG_INFINITY })).collect();
    Ok(Tensor::from_vec(data, (t, total), device)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::KvState;

    fn random(b: usize, t: usize, seed: u64) -> Tensor {
        let n = b * 2 * t * 3;
        let data: Vec<f32> = (0..n).map(|i| ((i as u64 * 7919 + seed * 104_729) % 1000) as f32 / 1000.0).collect();
        Tensor::from_vec(data, (b, 2, t, 3), &Device::Cpu).unwrap()
    }

    /// A deterministic `[b, t, h]` input centred on zero.
    fn hidden(b: usize, t: usize, h: usize, seed: u64) -> Tensor {
        let data: Vec<f32> =
            (0..b * t * h).map(|i| ((i as u64 * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        Tensor::from_vec(data, (b, t, h), &Device::Cpu).unwrap()
    }

    /// The tiny preset's first full-attention layer from seeded random weights.
    fn tiny_attention(seed: u64) -> (crate::config::Config, super::FullAttention) {
        let cfg = crate::config::Config::tiny();
        let tc = &cfg.text_config;
        let weights = crate::checkpoint::random_weights(&cfg, seed, &Device::Cpu).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let layer = tc.layer_types.iter().position(|t| *t == crate::config::LayerType::FullAttention).unwrap();
        let attn = super::FullAttention::load(tc, vb.pp(format!("model.language_model.layers.{layer}.self_attn")));
        (cfg, attn.unwrap())
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn appends_equal_concatenation_and_the_buffer_grows_by_doubling() {
        let (k0, v0) = (random(2, 5, 1), random(2, 5, 2));
        let mut kv = KvState::with_room(&k0, &v0, 0).unwrap();
        assert_eq!((kv.len(), kv.capacity()), (5, 5));
        let (mut ks, mut vs) = (vec![k0], vec![v0]);
        let mut capacities = Vec::new();
        for (i, t) in [1, 1, 3, 1, 7, 1].into_iter().enumerate() {
            let (k, v) = (random(2, t, 10 + i as u64), random(2, t, 20 + i as u64));
            kv.append(&k, &v).unwrap();
            ks.push(k);
            vs.push(v);
            capacities.push(kv.capacity());
        }
        // 6 tokens grow 5 slots to 10 (5 held + 5), 7 and 10 fit, 11 grows them to 20 (10 + 10), 18 and 19 fit.
        assert_eq!(capacities, vec![10, 10, 10, 20, 20, 20]);
        let all_k = Tensor::cat(&ks.iter().collect::<Vec<_>>(), 2).unwrap();
        let all_v = Tensor::cat(&vs.iter().collect::<Vec<_>>(), 2).unwrap();
        assert_eq!(kv.keys().unwrap().dims(), &[2, 2, 19, 3]);
        assert_eq!(max_diff(&kv.keys().unwrap(), &all_k), 0.0);
        assert_eq!(max_diff(&kv.values().unwrap(), &all_v), 0.0);
        // The free slots stay zero: nothing was written past the tokens held.
        let free = kv.k.narrow(2, kv.len(), kv.capacity() - kv.len()).unwrap();
        assert_eq!(free.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn reserved_room_is_used_without_growing_and_views_read_in_place() {
        let mut kv = KvState::with_room(&random(1, 4, 3), &random(1, 4, 4), 0).unwrap();
        kv.reserve(3).unwrap();
        assert_eq!(kv.capacity(), 7);
        let keys_before = kv.keys().unwrap().contiguous().unwrap();
        for i in 0..3 {
            kv.append(&random(1, 1, 30 + i), &random(1, 1, 40 + i)).unwrap();
        }
        assert_eq!((kv.len(), kv.capacity()), (7, 7));
        assert_eq!(max_diff(&kv.keys().unwrap().narrow(2, 0, 4).unwrap(), &keys_before), 0.0);
        // A one-query attention over the view equals the same over a contiguous copy.
        let q = random(1, 1, 50);
        let view = kv.keys().unwrap();
        let scores_view = q.matmul(&view.t().unwrap()).unwrap();
        let scores_copy = q.matmul(&view.contiguous().unwrap().t().unwrap()).unwrap();
        assert_eq!(max_diff(&scores_view, &scores_copy), 0.0);
    }

    /// One token at a time through the cache (and a lone first token without one) gives the rows of the whole
    /// sequence at once: the decode path reads the buffers' views, the prefill path the full keys.
    #[test]
    fn token_by_token_through_the_cache_equals_the_whole_sequence() {
        use crate::rope::{MropePositions, TextRope};

        let (cfg, attn) = tiny_attention(3);
        let tc = &cfg.text_config;
        let (b, t) = (2, 6);
        let x = hidden(b, t, tc.hidden_size, 9);
        let rope = |len: usize, offset: i64| TextRope::new(&cfg, &MropePositions::text(b, len, offset), &Device::Cpu);
        let whole = attn.forward(&x, &rope(t, 0).unwrap(), None).unwrap();

        let lone = attn.forward(&x.narrow(1, 0, 1).unwrap(), &rope(1, 0).unwrap(), None).unwrap();
        assert!(max_diff(&lone, &whole.narrow(1, 0, 1).unwrap()) < 1e-5);

        let mut state = None;
        let first = attn.forward(&x.narrow(1, 0, 2).unwrap(), &rope(2, 0).unwrap(), Some(&mut state)).unwrap();
        assert!(max_diff(&first, &whole.narrow(1, 0, 2).unwrap()) < 1e-5);
        state.as_mut().unwrap().reserve(2).unwrap(); // two steps in reserved room, then two that grow it
        for i in 2..t {
            let step = attn.forward(&x.narrow(1, i, 1).unwrap(), &rope(1, i as i64).unwrap(), Some(&mut state));
            let diff = max_diff(&step.unwrap(), &whole.narrow(1, i, 1).unwrap());
            assert!(diff < 1e-5, "token {i}: {diff}");
        }
        let cache = state.unwrap();
        assert_eq!((cache.len(), cache.capacity()), (6, 8));
    }

    /// A forward that fills a cache still passes gradients to its input, on the first call (empty cache) and on
    /// a later one (keys from the cache, which is detached, plus the new ones).
    #[test]
    fn gradients_flow_through_a_forward_that_fills_the_cache() {
        use candle_core::Var;

        use crate::rope::{MropePositions, TextRope};

        let (cfg, attn) = tiny_attention(4);
        let tc = &cfg.text_config;
        let rope = |len: usize, offset: i64| TextRope::new(&cfg, &MropePositions::text(1, len, offset), &Device::Cpu);
        let grad_of = |x: &Var, state: Option<&mut Option<super::KvState>>, offset: i64| {
            let t = x.as_tensor().dim(1).unwrap();
            let y = attn.forward(x.as_tensor(), &rope(t, offset).unwrap(), state).unwrap();
            let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(x.as_tensor()).unwrap().clone()
        };
        let h = tc.hidden_size;
        let x = Var::from_tensor(&hidden(1, 3, h, 5)).unwrap();
        let plain = grad_of(&x, None, 0);
        let mut state = None;
        let first = grad_of(&x, Some(&mut state), 0);
        assert!(max_diff(&plain, &first) < 1e-6, "empty cache: {}", max_diff(&plain, &first));
        assert!(plain.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        // Two more tokens after the cached three: their gradient equals that of the last two rows of a five-token
        // forward with the first three held constant.
        let y = Var::from_tensor(&hidden(1, 2, h, 6)).unwrap();
        let later = grad_of(&y, Some(&mut state), 3);
        let whole = Tensor::cat(&[&x.as_tensor().detach(), y.as_tensor()], 1).unwrap();
        let out = attn.forward(&whole, &rope(5, 0).unwrap(), None).unwrap().narrow(1, 3, 2).unwrap();
        let want = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let want = want.get(y.as_tensor()).unwrap();
        assert!(max_diff(&later, want) < 1e-5, "cached: {}", max_diff(&later, want));
    }

    #[test]
    fn mismatched_keys_and_values_are_an_error() {
        let err = KvState::with_room(&random(1, 4, 1), &random(1, 3, 2), 2).unwrap_err();
        assert!(err.to_string().contains("differ in shape"), "{err}");
        let kv = KvState::with_room(&random(1, 2, 1).to_dtype(DType::F64).unwrap(), &random(1, 2, 2), 0);
        assert!(kv.is_ok(), "values are stored in their own buffer");
    }

    #[test]
    fn a_static_step_writes_its_slot_and_masks_padding_and_free_slots() {
        let dev = Device::Cpu;
        let (b, t) = (2, 3);
        let mut kv = KvState::with_room(&random(b, t, 1), &random(b, t, 2), 4).unwrap();
        assert_eq!((kv.len(), kv.capacity()), (3, 7));
        let slot = Tensor::new(&[3u32], &dev).unwrap();
        let pads = Tensor::new(&[0u32, 2], &dev).unwrap();
        let slots = Tensor::arange(0u32, 7, &dev).unwrap();
        let step = super::StaticStep::new(&slot, &pads, &slots, 2, 3).unwrap();
        let mask: Vec<Vec<f32>> = step.key_mask.reshape((b, 7)).unwrap().to_vec2().unwrap();
        let open = |row: &Vec<f32>| row.iter().map(|&m| m == 0.0).collect::<Vec<_>>();
        assert_eq!(open(&mask[0]), [true, true, true, true, false, false, false]);
        assert_eq!(open(&mask[1]), [false, false, true, true, false, false, false]);
        assert!(mask[1][0] < -1e29);
        let (k, v) = (random(b, 1, 3), random(b, 1, 4));
        kv.write_slot(&step.slot_index, &k, &v).unwrap();
        assert_eq!(kv.len(), 3, "writing does not count; advance does");
        kv.advance(1).unwrap();
        assert!(max_diff(&kv.keys().unwrap().narrow(2, 3, 1).unwrap(), &k) == 0.0);
        assert!(max_diff(&kv.values().unwrap().narrow(2, 3, 1).unwrap(), &v) == 0.0);
        assert!(max_diff(&kv.keys().unwrap().narrow(2, 0, 3).unwrap(), &random(b, t, 1)) == 0.0);
        kv.advance(3).unwrap();
        assert!(kv.advance(1).unwrap_err().to_string().contains("no room"));
    }
}
