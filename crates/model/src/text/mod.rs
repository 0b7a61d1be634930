//! The hybrid text decoder: token embedding, `layer_types`-ordered decoder layers (Gated DeltaNet or gated full
//! attention, each followed by a SwiGLU MLP, both pre-normed with Gemma-style RMSNorm), a final norm and the LM
//! head (tied to the embedding unless `tie_word_embeddings` is false).
//!
//! Decoding state is explicit: a [`TextCache`] per batch of sequences holds each layer's KV or DeltaNet state and
//! is passed to [`TextModel::forward`]; the model itself is immutable and can be shared.

pub mod attention;
pub mod delta_rule;
pub mod deltanet;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Config, LayerType, TextConfig};
use crate::error::{Error, Result};
use crate::ops::{rms_norm_1p, Linear};
use crate::rope::{MropePositions, TextRope};
use attention::{FullAttention, FusedAttention, KvState, StaticStep};
use deltanet::{DeltaNetState, FusedDelta, GatedDeltaNet, DEFAULT_CHUNK};

/// One layer's decoding state.
#[derive(Debug)]
pub enum LayerState {
    Full(Option<KvState>),
    Linear(Option<DeltaNetState>),
}

/// Decoding state of a batch of sequences: one entry per layer, plus how many tokens it has seen.
#[derive(Debug)]
pub struct TextCache {
    pub layers: Vec<LayerState>,
    pub seen: usize,
}

impl TextCache {
    pub fn new(cfg: &TextConfig) -> Self {
        let layers = cfg
            .layer_types
            .iter()
            .map(|t| match t {
                LayerType::FullAttention => LayerState::Full(None),
                LayerType::LinearAttention => LayerState::Linear(None),
            })
            .collect();
        Self { layers, seen: 0 }
    }

    /// Makes room in every full-attention layer's KV buffers for `room` more tokens (after a prefill, the most
    /// tokens the sequences may still generate), so decoding never grows them.
    pub fn reserve(&mut self, room: usize) -> Result<()> {
        for layer in self.layers.iter_mut() {
            if let LayerState::Full(Some(kv)) = layer {
                kv.reserve(room)?;
            }
        }
        Ok(())
    }
}

impl TextCache {
    /// Readies the cache for fixed-shape decode steps ([`TextModel::decode_static`]): every Gated DeltaNet state
    /// moves to buffers of its own, contiguous f32, which the steps then update in place. Returns the KV buffers'
    /// common capacity (0 without full-attention layers); errors when a layer has no state yet or the
    /// capacities differ.
    pub fn fix_for_static(&mut self) -> Result<usize> {
        let mut capacity = None;
        for layer in self.layers.iter_mut() {
            match layer {
                LayerState::Linear(Some(s)) => *s = s.fixed()?,
                LayerState::Full(Some(kv)) => match capacity {
                    None => capacity = Some(kv.capacity()),
                    Some(c) if c == kv.capacity() => {}
                    Some(c) => {
                        return Err(Error::Input(format!(
                            "KV buffers of {c} and {} slots: fixed-shape steps need one capacity",
                            kv.capacity()
                        )))
                    }
                },
                _ => return Err(Error::Input("fixed-shape decode steps need a prefilled cache".into())),
            }
        }
        Ok(capacity.unwrap_or(0))
    }

    /// Counts one more token in every full-attention layer (after a fixed-shape step wrote it) and in `seen`.
    pub fn advance_static(&mut self) -> Result<()> {
        for layer in self.layers.iter_mut() {
            if let LayerState::Full(Some(kv)) = layer {
                kv.advance(1)?;
            }
        }
        self.seen += 1;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn load(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: Linear::load(&vb.pp("gate_proj"), h, i, false)?,
            up_proj: Linear::load(&vb.pp("up_proj"), h, i, false)?,
            down_proj: Linear::load(&vb.pp("down_proj"), i, h, false)?,
        })
    }

    fn keep_bf16(&mut self) -> Result<()> {
        for p in [&mut self.gate_proj, &mut self.up_proj, &mut self.down_proj] {
            *p = p.keep_bf16()?;
        }
        Ok(())
    }

    /// `gate_proj` and `up_proj` stacked ([`Linear::stack`]; the two become views of it).
    fn fuse(&mut self) -> Result<Option<Linear>> {
        let Some((gate_up, views)) = Linear::stack(&[&self.gate_proj, &self.up_proj])? else { return Ok(None) };
        let [gate, up]: [Linear; 2] = views.try_into().map_err(|_| Error::Input("two views".into()))?;
        (self.gate_proj, self.up_proj) = (gate, up);
        Ok(Some(gate_up))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (gate, up) = (self.gate_proj.forward(x)?, self.up_proj.forward(x)?);
        let act = if crate::ops::needs_grad(&[&gate]) && crate::kernels::trainable(&gate) {
            crate::kernels::silu_mul(&gate, &up)? // training: one node (on CUDA its twin)
        } else {
            gate.silu()?.mul(&up)?
        };
        self.down_proj.forward(&act)
    }
}

#[derive(Debug, Clone)]
enum Mixer {
    Full(FullAttention),
    Linear(GatedDeltaNet),
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    mixer: Mixer,
    mlp: Mlp,
    input_layernorm: Tensor,
    post_attention_layernorm: Tensor,
    eps: f64,
    /// Set by [`TextModel::fuse_for_decode`].
    fused: Option<FusedLayer>,
}

/// A decoder layer's weights arranged for fused decode steps: the norms' effective weights `1 + w` in f32 (f64
/// for f64 models), the mixer's stacked projections and constants, the MLP's gate and up projections as one.
#[derive(Debug, Clone)]
struct FusedLayer {
    norm_in: Tensor,
    norm_post: Tensor,
    mixer: FusedMixer,
    gate_up: Linear,
}

#[derive(Debug, Clone)]
enum FusedMixer {
    Full(FusedAttention),
    Linear(FusedDelta),
}

/// `1 + w` in the compute dtype, contiguous: a Gemma-style norm's effective weight.
fn plus_one(w: &Tensor) -> Result<Tensor> {
    Ok((w.to_dtype(crate::ops::compute_dtype(w.dtype()))? + 1.0)?.contiguous()?)
}

impl DecoderLayer {
    fn load(cfg: &TextConfig, kind: LayerType, vb: VarBuilder) -> Result<Self> {
        let mixer = match kind {
            LayerType::FullAttention => Mixer::Full(FullAttention::load(cfg, vb.pp("self_attn"))?),
            LayerType::LinearAttention => Mixer::Linear(GatedDeltaNet::load(cfg, vb.pp("linear_attn"))?),
        };
        Ok(Self {
            mixer,
            mlp: Mlp::load(cfg, vb.pp("mlp"))?,
            input_layernorm: vb.pp("input_layernorm").get(cfg.hidden_size, "weight")?,
            post_attention_layernorm: vb.pp("post_attention_layernorm").get(cfg.hidden_size, "weight")?,
            eps: cfg.rms_norm_eps,
            fused: None,
        })
    }

    /// Builds [`DecoderLayer::fused`]; false (and nothing changed but stacked views) when a part cannot be fused.
    fn fuse(&mut self) -> Result<bool> {
        let mixer = match &mut self.mixer {
            Mixer::Full(a) => a.fuse()?.map(FusedMixer::Full),
            Mixer::Linear(d) => d.fuse()?.map(FusedMixer::Linear),
        };
        let (Some(mixer), Some(gate_up)) = (mixer, self.mlp.fuse()?) else { return Ok(false) };
        self.fused = Some(FusedLayer {
            norm_in: plus_one(&self.input_layernorm)?,
            norm_post: plus_one(&self.post_attention_layernorm)?,
            mixer,
            gate_up,
        });
        Ok(true)
    }

    /// A fused decode step ([`TextModel::fuse_for_decode`]): `x` is the residual stream before `pending`, the
    /// previous layer's MLP output not yet added (so the add goes with this layer's first norm). Returns the
    /// stream after the mixer's residual and this layer's MLP output, itself pending.
    fn decode_fused(
        &self,
        f: &FusedLayer,
        x: &Tensor,
        pending: Option<&Tensor>,
        rope: &TextRope,
        state: &LayerState,
        step: &StaticStep,
    ) -> Result<(Tensor, Tensor)> {
        use crate::kernels::{add_rms_norm, silu_mul_halves};
        let (sum, h) = add_rms_norm(x, pending, &f.norm_in, self.eps)?;
        let x = sum.unwrap_or_else(|| x.clone());
        let mixed = match (&self.mixer, &f.mixer, state) {
            (Mixer::Full(a), FusedMixer::Full(fa), LayerState::Full(Some(kv))) => {
                a.decode_fused(fa, &h, rope, kv, step)?
            }
            (Mixer::Linear(d), FusedMixer::Linear(fd), LayerState::Linear(Some(s))) => d.decode_fused(fd, &h, s)?,
            _ => return Err(Error::Input("fixed-shape decode steps need a prefilled cache of every layer".into())),
        };
        let (sum, h) = add_rms_norm(&x, Some(&mixed), &f.norm_post, self.eps)?;
        let x = sum.ok_or_else(|| Error::Input("add_rms_norm returned no sum".into()))?;
        let out = self.mlp.down_proj.forward(&silu_mul_halves(&f.gate_up.forward(&h)?)?)?;
        Ok((x, out))
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &TextRope,
        state: Option<&mut LayerState>,
        chunk: usize,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let part = match self.mixer {
            Mixer::Full(_) => "full attention (norm, mixer, residual)",
            Mixer::Linear(_) => "gated deltanet (norm, mixer, residual)",
        };
        let span = crate::profile::span(part, x.device());
        let h = rms_norm_1p(x, &self.input_layernorm, self.eps)?;
        let h = match (&self.mixer, state) {
            (Mixer::Full(a), None) => a.forward_masked(&h, rope, None, key_mask)?,
            (Mixer::Full(a), Some(LayerState::Full(s))) => a.forward_masked(&h, rope, Some(s), key_mask)?,
            (Mixer::Linear(d), None) => d.forward(&h, None, chunk)?,
            (Mixer::Linear(d), Some(LayerState::Linear(s))) => d.forward(&h, Some(s), chunk)?,
            _ => return Err(Error::Input("cache layer kinds do not match the model's layer_types".into())),
        };
        let x = (x + h)?;
        drop(span);
        let _span = crate::profile::span("mlp (norm, mlp, residual)", x.device());
        self.mlp_residual(&x)
    }

    /// `x + mlp(norm(x))`: the second half of a layer.
    fn mlp_residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.mlp.forward(&rms_norm_1p(x, &self.post_attention_layernorm, self.eps)?)?;
        Ok((x + h)?)
    }
}

impl DecoderLayer {
    /// [`DecoderLayer::forward`] for one token in fixed shapes (see [`TextModel::decode_static`]).
    fn decode_static(&self, x: &Tensor, rope: &TextRope, state: &LayerState, step: &StaticStep) -> Result<Tensor> {
        let h = rms_norm_1p(x, &self.input_layernorm, self.eps)?;
        let h = match (&self.mixer, state) {
            (Mixer::Full(a), LayerState::Full(Some(kv))) => a.decode_static(&h, rope, kv, step)?,
            (Mixer::Linear(d), LayerState::Linear(Some(s))) => d.decode_static(&h, s)?,
            _ => return Err(Error::Input("fixed-shape decode steps need a prefilled cache of every layer".into())),
        };
        self.mlp_residual(&(x + h)?)
    }
}

/// What [`TextModel::forward`] returns.
#[derive(Debug, Clone)]
pub struct TextOutput {
    /// Final-normed hidden states `[B, T, hidden]`.
    pub last_hidden: Tensor,
    /// The input embeddings followed by every layer's output (before the final norm), when requested.
    pub hidden_states: Vec<Tensor>,
}

/// The text decoder (without LM head).
#[derive(Debug, Clone)]
pub struct TextModel {
    /// `[vocab, hidden]`; in bf16 under f32 activations after [`TextModel::keep_bf16`] (lookups are widened).
    pub embed_tokens: Tensor,
    /// The activations' dtype: the dtype the model was loaded in.
    dtype: DType,
    layers: Vec<DecoderLayer>,
    norm: Tensor,
    /// The final norm's effective weight, set with every layer's fused weights by [`TextModel::fuse_for_decode`].
    fused_norm: Option<Tensor>,
    cfg: Config,
    /// Chunk length of the parallel delta rule.
    pub chunk: usize,
}

impl TextModel {
    /// Loads from `vb` rooted at the text model (`model.language_model` in released checkpoints).
    pub fn load(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let t = &cfg.text_config;
        let layers = t
            .layer_types
            .iter()
            .enumerate()
            .map(|(i, kind)| DecoderLayer::load(t, *kind, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            dtype: vb.dtype(),
            embed_tokens: vb.pp("embed_tokens").get((t.vocab_size, t.hidden_size), "weight")?,
            layers,
            norm: vb.pp("norm").get(t.hidden_size, "weight")?,
            fused_norm: None,
            cfg: cfg.clone(),
            chunk: DEFAULT_CHUNK,
        })
    }

    /// The activations' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Keeps the embedding table and every decoder layer's projection weights in bf16 ([`Linear::keep_bf16`]);
    /// the norms and the Gated DeltaNet's own parameters stay as they are, and so do the activations (embedding
    /// lookups are widened to them). For CPU inference.
    pub fn keep_bf16(&mut self) -> Result<()> {
        self.embed_tokens = self.embed_tokens.to_dtype(DType::BF16)?;
        for layer in self.layers.iter_mut() {
            match &mut layer.mixer {
                Mixer::Full(a) => a.keep_bf16()?,
                Mixer::Linear(d) => d.keep_bf16()?,
            }
            layer.mlp.keep_bf16()?;
        }
        if self.fused_norm.take().is_some() {
            // The stacked weights were f32: stack the bf16 ones instead.
            for layer in self.layers.iter_mut() {
                layer.fused = None;
            }
            self.fuse_for_decode()?;
        }
        Ok(())
    }

    /// Arranges the weights for fused decode steps, which [`TextModel::decode_static`] then takes: each layer's
    /// projections that read the same input are stacked into one product (the separate projections become views of
    /// it, so no memory is added and every other path computes what it did), and the norms' effective weights and
    /// the Gated DeltaNet constants are kept in f32. A step is then about ten launches per layer on CUDA instead
    /// of some thirty-five (see [`crate::kernels::add_rms_norm`] and its siblings). Returns whether every layer
    /// was fused; when one cannot be (a projection with a bias), the steps stay op by op. For inference only: the
    /// stacked weights are copies, so a model whose variables a trainer updates must not be fused.
    pub fn fuse_for_decode(&mut self) -> Result<bool> {
        if self.fused_norm.is_some() {
            return Ok(true);
        }
        for layer in self.layers.iter_mut() {
            if !layer.fuse()? {
                for l in self.layers.iter_mut() {
                    l.fused = None;
                }
                return Ok(false);
            }
        }
        self.fused_norm = Some(plus_one(&self.norm)?);
        Ok(true)
    }

    /// Whether [`TextModel::fuse_for_decode`] has arranged the weights for fused decode steps.
    pub fn is_fused(&self) -> bool {
        self.fused_norm.is_some()
    }

    /// Looks up token embeddings for `ids` `[B, T]` (u32).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let flat = ids.flatten_all()?;
        let rows = self.embed_tokens.index_select(&flat, 0)?.to_dtype(self.dtype)?; // no copy when already there
        Ok(rows.reshape((b, t, self.cfg.text_config.hidden_size))?)
    }

    /// One decode step in fixed shapes, for capture in a CUDA graph and replay: `embeds` `[B, 1, hidden]`,
    /// rotary tables for each row's position (made on the device, e.g. [`TextRope::from_tables`]), and `step`'s
    /// KV slot and key mask. Every full-attention layer writes its keys into `step`'s slot and attends over its
    /// whole KV buffers; every Gated DeltaNet state is updated in place (the cache must have been through
    /// [`TextCache::fix_for_static`]). No host data is read and no buffer of the cache is replaced, so the same
    /// kernels with the same addresses serve every step; the cache's token counts are left to
    /// [`TextCache::advance_static`]. Returns the final-normed hidden states `[B, 1, hidden]`.
    pub fn decode_static(
        &self,
        embeds: &Tensor,
        rope: &TextRope,
        cache: &TextCache,
        step: &StaticStep,
    ) -> Result<Tensor> {
        if cache.layers.len() != self.layers.len() {
            return Err(Error::Input(format!(
                "cache has {} layers, the model {}",
                cache.layers.len(),
                self.layers.len()
            )));
        }
        let eps = self.cfg.text_config.rms_norm_eps;
        let mut x = embeds.clone();
        if let Some(final_norm) = &self.fused_norm {
            let mut pending: Option<Tensor> = None;
            for (layer, state) in self.layers.iter().zip(&cache.layers) {
                let f = layer.fused.as_ref().ok_or_else(|| Error::Input("a layer without fused weights".into()))?;
                let (next, out) = layer.decode_fused(f, &x, pending.as_ref(), rope, state, step)?;
                (x, pending) = (next, Some(out));
            }
            return Ok(crate::kernels::add_rms_norm(&x, pending.as_ref(), final_norm, eps)?.1);
        }
        for (layer, state) in self.layers.iter().zip(&cache.layers) {
            x = layer.decode_static(&x, rope, state, step)?;
        }
        rms_norm_1p(&x, &self.norm, eps)
    }

    /// The model's text config.
    pub fn text_config(&self) -> &TextConfig {
        &self.cfg.text_config
    }

    /// Runs the decoder on embeddings `[B, T, hidden]` at `positions`. With `cache`, continues each sequence
    /// from its state and updates it.
    pub fn forward(
        &self,
        embeds: &Tensor,
        positions: &MropePositions,
        cache: Option<&mut TextCache>,
        keep_hidden_states: bool,
    ) -> Result<TextOutput> {
        self.forward_masked(embeds, positions, cache, None, keep_hidden_states)
    }

    /// [`TextModel::forward`] with an additive key mask for the full-attention layers (see
    /// [`FullAttention::forward_masked`](attention::FullAttention::forward_masked)); Gated DeltaNet layers carry no
    /// per-key state, so padding is the caller's business there (the engine never feeds padding to them).
    pub fn forward_masked(
        &self,
        embeds: &Tensor,
        positions: &MropePositions,
        mut cache: Option<&mut TextCache>,
        key_mask: Option<&Tensor>,
        keep_hidden_states: bool,
    ) -> Result<TextOutput> {
        let (b, t, _) = embeds.dims3()?;
        if positions.dims()? != (b, t) {
            return Err(Error::Input(format!(
                "positions cover {:?} tokens but the embeddings are {:?}",
                positions.dims()?,
                (b, t)
            )));
        }
        if let Some(c) = cache.as_deref() {
            if c.layers.len() != self.layers.len() {
                return Err(Error::Input(format!(
                    "cache has {} layers, the model {}",
                    c.layers.len(),
                    self.layers.len()
                )));
            }
        }
        let rope = {
            let _span = crate::profile::span("rotary tables", embeds.device());
            TextRope::new(&self.cfg, positions, embeds.device())?
        };
        let mut x = embeds.clone();
        let mut hidden_states = Vec::new();
        if keep_hidden_states {
            hidden_states.push(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let state = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = layer.forward(&x, &rope, state, self.chunk, key_mask)?;
            if keep_hidden_states {
                hidden_states.push(x.clone());
            }
        }
        if let Some(c) = cache {
            c.seen += t;
        }
        let _span = crate::profile::span("final norm", x.device());
        let last_hidden = rms_norm_1p(&x, &self.norm, self.cfg.text_config.rms_norm_eps)?;
        Ok(TextOutput { last_hidden, hidden_states })
    }
}
