//! Gated DeltaNet token mixer (the `linear_attention` layers).
//!
//! `x → in_proj_qkv → causal depthwise conv (kernel K) → SiLU → q, k, v`; `β = σ(in_proj_b x)`,
//! `g = −exp(A_log)·softplus(in_proj_a x + dt_bias)`; q/k heads are repeated to the value-head count
//! (head `i` serves value heads `i·r .. (i+1)·r`); the gated delta rule mixes tokens; a plain RMSNorm of each
//! value head is gated by `SiLU(in_proj_z x)`; `out_proj` maps back.

use candle_core::{DType, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::TextConfig;
use crate::error::{Error, Result};
use crate::kernels;
use crate::ops::{compute_dtype, needs_grad, rms_norm, sigmoid, softplus, Linear};
use crate::text::delta_rule;

/// Chunk length of the parallel delta rule (the value transformers uses).
pub const DEFAULT_CHUNK: usize = 64;

/// Per-sequence state of one Gated DeltaNet layer: the last `K−1` pre-conv inputs and the recurrent matrix.
#[derive(Debug, Clone)]
pub struct DeltaNetState {
    /// `[B, K−1, conv_dim]`.
    pub conv: Tensor,
    /// `[B, H_v, d_k, d_v]`.
    pub recurrent: Tensor,
}

impl DeltaNetState {
    /// The state in buffers of its own, contiguous and in f32 (f64 stays f64): what a step that updates it in
    /// place ([`GatedDeltaNet::decode_static`]) writes to.
    pub fn fixed(&self) -> Result<Self> {
        let own = |t: &Tensor| -> Result<Tensor> {
            let dt = if t.dtype() == candle_core::DType::F64 { t.dtype() } else { candle_core::DType::F32 };
            // `copy` (not `contiguous`): a tensor that is already contiguous f32 would otherwise share its buffer.
            Ok(t.to_dtype(dt)?.contiguous()?.copy()?)
        };
        Ok(Self { conv: own(&self.conv)?, recurrent: own(&self.recurrent)? })
    }
}

/// A layer's weights arranged for fused decode steps ([`GatedDeltaNet::fuse`]): its four input projections as one
/// product, and the step's constants in f32 (f64 for f64 models) so that no step converts them again.
#[derive(Debug, Clone)]
pub struct FusedDelta {
    /// `in_proj_qkv`, `in_proj_z`, `in_proj_b` and `in_proj_a` stacked.
    proj: Linear,
    cols: kernels::ProjColumns,
    /// Conv taps `[conv_dim, K]`, contiguous.
    taps: Tensor,
    dt_bias: Tensor,
    a_log: Tensor,
    /// The gated norm's weight.
    norm: Tensor,
}

#[derive(Debug, Clone)]
pub struct GatedDeltaNet {
    in_proj_qkv: Linear,
    in_proj_z: Linear,
    in_proj_b: Linear,
    in_proj_a: Linear,
    /// Depthwise conv taps `[K, conv_dim]` (from the checkpoint's `[conv_dim, 1, K]`).
    conv_taps: Tensor,
    dt_bias: Tensor,
    a_log: Tensor,
    norm_weight: Tensor,
    out_proj: Linear,
    n_k: usize,
    n_v: usize,
    d_k: usize,
    d_v: usize,
    kernel: usize,
    eps: f64,
}

impl GatedDeltaNet {
    pub fn load(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (n_k, n_v, d_k, d_v) =
            (cfg.linear_num_key_heads, cfg.linear_num_value_heads, cfg.linear_key_head_dim, cfg.linear_value_head_dim);
        let key_dim = n_k * d_k;
        let value_dim = n_v * d_v;
        let conv_dim = 2 * key_dim + value_dim;
        let kernel = cfg.linear_conv_kernel_dim;
        let h = cfg.hidden_size;
        let conv = vb.pp("conv1d").get((conv_dim, 1, kernel), "weight")?;
        Ok(Self {
            in_proj_qkv: Linear::load(&vb.pp("in_proj_qkv"), h, conv_dim, false)?,
            in_proj_z: Linear::load(&vb.pp("in_proj_z"), h, value_dim, false)?,
            in_proj_b: Linear::load(&vb.pp("in_proj_b"), h, n_v, false)?,
            in_proj_a: Linear::load(&vb.pp("in_proj_a"), h, n_v, false)?,
            conv_taps: conv.squeeze(1)?.t()?,
            dt_bias: vb.get(n_v, "dt_bias")?,
            a_log: vb.get(n_v, "A_log")?,
            norm_weight: vb.pp("norm").get(d_v, "weight")?,
            out_proj: Linear::load(&vb.pp("out_proj"), value_dim, h, false)?,
            n_k,
            n_v,
            d_k,
            d_v,
            kernel,
            eps: cfg.rms_norm_eps,
        })
    }

    /// Keeps the five projections' weights in bf16 ([`Linear::keep_bf16`]).
    pub fn keep_bf16(&mut self) -> Result<()> {
        for p in
            [&mut self.in_proj_qkv, &mut self.in_proj_z, &mut self.in_proj_b, &mut self.in_proj_a, &mut self.out_proj]
        {
            *p = p.keep_bf16()?;
        }
        Ok(())
    }

    fn conv_dim(&self) -> usize {
        2 * self.n_k * self.d_k + self.n_v * self.d_v
    }

    /// Mixes `x` `[B, T, hidden]`. With `state`, continues from it and stores the new one. Where our kernels run
    /// (the CPU in f32/f64; CUDA), training and inference go through them; elsewhere a one-token step with a
    /// previous state uses the recurrent form and everything else the chunked form with `chunk`-token blocks.
    pub fn forward(&self, x: &Tensor, state: Option<&mut Option<DeltaNetState>>, chunk: usize) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let mixed = self.in_proj_qkv.forward(x)?; // [B,T,conv_dim]
        let z = self.in_proj_z.forward(x)?.reshape((b, t, self.n_v, self.d_v))?;
        let state = match state {
            // Decoding on the CPU: the step after the projections is one kernel (kernels::delta_decode).
            Some(slot)
                if t == 1 && slot.is_some() && kernels::delta_decode_supported(&mixed) && !needs_grad(&[x, &mixed]) =>
            {
                return self.decode_step(x, &mixed, &z, slot);
            }
            other => other,
        };
        let beta = sigmoid(&self.in_proj_b.forward(x)?)?;
        let a = self.in_proj_a.forward(x)?;
        // The decay in f32 under bf16 weights too, as transformers computes it:
        // `-A_log.float().exp() * softplus(a.float() + dt_bias)`.
        let dt = compute_dtype(a.dtype());
        let g = softplus(&a.to_dtype(dt)?.broadcast_add(&self.dt_bias.to_dtype(dt)?)?)?
            .broadcast_mul(&self.a_log.to_dtype(dt)?.exp()?.neg()?)?;

        let prev = state.as_ref().and_then(|s| s.as_ref());
        if let Some(p) = prev {
            if p.conv.dims() != [b, self.kernel - 1, self.conv_dim()] {
                return Err(Error::Input(format!(
                    "conv state has shape {:?}, expected {:?}",
                    p.conv.dims(),
                    [b, self.kernel - 1, self.conv_dim()]
                )));
            }
        }
        let grad = needs_grad(&[x, &mixed]);
        // Where our kernels take this layer — the CPU in f32/f64, CUDA for the head sizes its delta-rule kernels are
        // built for — training without a state and all inference go through them (`through_kernels`).
        let cuda_rule = kernels::delta_rule::cuda_supported(x.device(), self.d_k, self.d_v);
        if (kernels::supported(&mixed) || cuda_rule) && (state.is_none() || !grad) {
            return self.through_kernels(&mixed, &z, &g, &beta, state, grad);
        }
        // Causal depthwise conv: left context is the previous state (zeros at the sequence start).
        let padded = match prev {
            Some(p) => Tensor::cat(&[&p.conv.to_dtype(mixed.dtype())?, &mixed], 1)?,
            None => mixed.pad_with_zeros(1, self.kernel - 1, 0)?,
        };
        let conv = self.composed_conv(&padded, t)?;
        let new_conv_state = padded.narrow(1, t, self.kernel - 1)?;

        let (q, k, v) = self.split_heads(&conv, b, t)?;

        let init = prev.map(|p| &p.recurrent);
        let (core, last) = if t == 1 && prev.is_some() {
            delta_rule::recurrent(&q, &k, &v, &g, &beta, init)?
        } else {
            delta_rule::chunked(&q, &k, &v, &g, &beta, chunk, init)?
        };
        if let Some(slot) = state {
            *slot = Some(DeltaNetState { conv: new_conv_state.detach(), recurrent: last.detach() });
        }
        self.finish(&core, &z, b, t)
    }

    /// The layer after its projections through the kernels it trains with: the conv with its SiLU, the packing of
    /// the delta rule's rows (heads split, key heads shared, q/k normalised) and the delta rule, one kernel each (on
    /// CUDA in f32, under bf16 weights too), where candle's compositions make a dozen full-size copies per layer.
    /// With `grad` (training, no state) the delta rule is a graph node with its backward; otherwise (inference:
    /// the prefill, or a continuation of `state`) it runs from the state and the new state is stored.
    fn through_kernels(
        &self,
        mixed: &Tensor,
        z: &Tensor,
        g: &Tensor,
        beta: &Tensor,
        state: Option<&mut Option<DeltaNetState>>,
        grad: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = mixed.dims3()?;
        let ctx = self.kernel - 1;
        // Inner parts of the layer's profile span (`SGVLM_PROFILE=1`): what the delta rule's kernel costs apart.
        let span = crate::profile::span("gated deltanet: conv, pack", mixed.device());
        let work = if kernels::supported(mixed) { mixed.clone() } else { mixed.to_dtype(DType::F32)? };
        let dt = work.dtype();
        let prev = state.as_ref().and_then(|s| s.as_ref());
        // The conv runs over the cached inputs too when there are some; their outputs are the previous call's.
        let (input, skip) = match prev {
            None => (work.clone(), 0),
            Some(p) => (Tensor::cat(&[&p.conv.to_dtype(dt)?, &work], 1)?, ctx),
        };
        let conv = if kernels::trainable(&input) && self.kernel <= kernels::MAX_CUDA_CONV_TAPS {
            kernels::conv_silu(&input, &self.conv_taps.to_dtype(dt)?)?
        } else {
            // The CUDA twins switched off (`SGVLM_CUDA_KERNELS=0`), or a conv longer than they take.
            self.composed_conv(&input.pad_with_zeros(1, ctx, 0)?, skip + t)?
        };
        let conv = if skip > 0 { conv.narrow(1, skip, t)?.contiguous()? } else { conv };
        let heads = kernels::PackHeads { n_k: self.n_k, n_v: self.n_v, d_k: self.d_k, d_v: self.d_v };
        let packed = kernels::delta_pack(&conv, &g.to_dtype(dt)?, &beta.to_dtype(dt)?, heads)?;
        drop(span);
        let span = crate::profile::span("gated deltanet: delta rule", mixed.device());
        let core = if grad {
            kernels::delta_rule::gated_delta_rule_packed(&packed, self.d_k)?
        } else {
            let init = prev.map(|p| &p.recurrent);
            let (core, last) = kernels::delta_rule::gated_delta_rule_packed_with_state(&packed, self.d_k, init)?;
            if let Some(slot) = state {
                // The last K − 1 inputs, reaching back into the cached ones (or the zeros before the start) when
                // the call had fewer tokens.
                let conv_state = if t >= ctx {
                    mixed.narrow(1, t - ctx, ctx)?
                } else {
                    let before = match slot.as_ref() {
                        Some(p) => p.conv.to_dtype(mixed.dtype())?,
                        None => Tensor::zeros((b, ctx, self.conv_dim()), mixed.dtype(), mixed.device())?,
                    };
                    Tensor::cat(&[&before, mixed], 1)?.narrow(1, t, ctx)?
                };
                *slot = Some(DeltaNetState { conv: conv_state.contiguous()?, recurrent: last });
            }
            core
        };
        drop(span);
        let _span = crate::profile::span("gated deltanet: norm, gate, out proj", mixed.device());
        let core = core.transpose(1, 2)?.contiguous()?.to_dtype(mixed.dtype())?;
        self.finish(&core, z, b, t)
    }

    /// The causal depthwise conv and its SiLU from candle ops over `padded` (`K − 1` steps of left context, then the
    /// `t` new ones).
    fn composed_conv(&self, padded: &Tensor, t: usize) -> Result<Tensor> {
        let mut conv = padded.narrow(1, 0, t)?.broadcast_mul(&self.conv_taps.get(0)?)?;
        for j in 1..self.kernel {
            conv = (conv + padded.narrow(1, j, t)?.broadcast_mul(&self.conv_taps.get(j)?)?)?;
        }
        Ok(conv.silu()?)
    }

    /// One token after a cached state, through [`kernels::delta_decode`]; equal to the composed recurrent step.
    fn decode_step(&self, x: &Tensor, mixed: &Tensor, z: &Tensor, slot: &mut Option<DeltaNetState>) -> Result<Tensor> {
        let prev = slot.as_ref().ok_or_else(|| Error::Input("delta decode step without a state".into()))?;
        let step = self.with_decode_inputs(x, mixed, prev, kernels::delta_decode)?;
        *slot = Some(DeltaNetState { conv: step.conv, recurrent: step.state });
        self.finish(&step.out, z, mixed.dim(0)?, 1)
    }

    /// One token per sequence with the state updated in place ([`kernels::delta_decode_into`]): the fixed-shape
    /// step a CUDA graph replays. `state` must hold contiguous f32 buffers ([`DeltaNetState::fixed`]).
    pub fn decode_static(&self, x: &Tensor, state: &DeltaNetState) -> Result<Tensor> {
        let mixed = self.in_proj_qkv.forward(x)?;
        if !kernels::delta_decode_supported(&mixed) {
            return Err(Error::Input("a fixed-shape decode step needs the delta decode kernels".into()));
        }
        let b = x.dim(0)?;
        let z = self.in_proj_z.forward(x)?.reshape((b, 1, self.n_v, self.d_v))?;
        let out = self.with_decode_inputs(x, &mixed, state, kernels::delta_decode_into)?;
        self.finish(&out, &z, b, 1)
    }

    /// Stacks the four input projections into one ([`Linear::stack`]; the layer's own projections become views of
    /// it, so no memory is added) and keeps the decode step's constants in the compute dtype: what
    /// [`GatedDeltaNet::decode_fused`] reads. `None` when the projections cannot be stacked (a bias, mixed
    /// dtypes). For inference: after this the projections no longer share storage with a training run's variables.
    pub fn fuse(&mut self) -> Result<Option<FusedDelta>> {
        let parts = [&self.in_proj_qkv, &self.in_proj_z, &self.in_proj_b, &self.in_proj_a];
        let Some((proj, views)) = Linear::stack(&parts)? else { return Ok(None) };
        let [qkv, z, b, a]: [Linear; 4] = views.try_into().map_err(|_| Error::Input("four views".into()))?;
        let conv_dim = self.conv_dim();
        let value_dim = self.n_v * self.d_v;
        let cols =
            kernels::ProjColumns { mixed: 0, z: conv_dim, b: conv_dim + value_dim, a: conv_dim + value_dim + self.n_v };
        (self.in_proj_qkv, self.in_proj_z, self.in_proj_b, self.in_proj_a) = (qkv, z, b, a);
        let dt = compute_dtype(self.dt_bias.dtype());
        let own = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(dt)?.contiguous()?) };
        Ok(Some(FusedDelta {
            proj,
            cols,
            taps: own(&self.conv_taps.t()?)?,
            dt_bias: own(&self.dt_bias)?,
            a_log: own(&self.a_log)?,
            norm: own(&self.norm_weight)?,
        }))
    }

    /// [`GatedDeltaNet::decode_static`] through `fused` ([`GatedDeltaNet::fuse`]): one product for the four
    /// projections, the step's two kernels reading it in place ([`kernels::delta_decode_proj_into`]), the gated
    /// norm as one op ([`kernels::gated_rms_norm`]) and the output projection; on CUDA five launches.
    pub fn decode_fused(&self, fused: &FusedDelta, x: &Tensor, state: &DeltaNetState) -> Result<Tensor> {
        let proj = fused.proj.forward(x)?;
        let step = kernels::ProjStep {
            proj: &proj,
            cols: fused.cols,
            conv: &state.conv,
            state: &state.recurrent,
            taps: &fused.taps,
            dt_bias: &fused.dt_bias,
            a_log: &fused.a_log,
        };
        let heads = kernels::DeltaHeads { n_k: self.n_k, n_v: self.n_v, d_k: self.d_k, d_v: self.d_v };
        let core = kernels::delta_decode_proj_into(step, heads)?;
        let gated = kernels::gated_rms_norm(&core, &proj, fused.cols.z, &fused.norm, self.eps)?;
        self.out_proj.forward(&gated)
    }

    /// Runs a decode kernel (`kernels::delta_decode` or `delta_decode_into`) on the one-token input `x`, its
    /// `in_proj_qkv` projection `mixed` and `state`, with this layer's constants.
    fn with_decode_inputs<R>(
        &self,
        x: &Tensor,
        mixed: &Tensor,
        state: &DeltaNetState,
        kernel: impl FnOnce(kernels::DeltaDecodeInputs<'_>, kernels::DeltaHeads) -> Result<R>,
    ) -> Result<R> {
        let (a, beta_in) = (self.in_proj_a.forward(x)?, self.in_proj_b.forward(x)?);
        let taps = self.conv_taps.t()?; // [conv_dim, K], the loaded layout
        let inputs = kernels::DeltaDecodeInputs {
            mixed,
            a: &a,
            b: &beta_in,
            conv: &state.conv,
            state: &state.recurrent,
            taps: &taps,
            dt_bias: &self.dt_bias,
            a_log: &self.a_log,
        };
        kernel(inputs, kernels::DeltaHeads { n_k: self.n_k, n_v: self.n_v, d_k: self.d_k, d_v: self.d_v })
    }

    /// Queries and keys (repeated to the value-head count) and values of the convolved projection.
    fn split_heads(&self, conv: &Tensor, b: usize, t: usize) -> Result<(Tensor, Tensor, Tensor)> {
        let key_dim = self.n_k * self.d_k;
        let q = conv.narrow(D::Minus1, 0, key_dim)?.reshape((b, t, self.n_k, self.d_k))?;
        let k = conv.narrow(D::Minus1, key_dim, key_dim)?.reshape((b, t, self.n_k, self.d_k))?;
        let v = conv.narrow(D::Minus1, 2 * key_dim, self.n_v * self.d_v)?.reshape((b, t, self.n_v, self.d_v))?;
        Ok((self.repeat_heads(&q)?, self.repeat_heads(&k)?, v))
    }

    /// Gated RMSNorm of the delta rule's output and the output projection.
    fn finish(&self, core: &Tensor, z: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        let normed = rms_norm(core, &self.norm_weight, self.eps)?;
        let gated = if needs_grad(&[&normed, z]) && kernels::trainable(&normed) && z.dtype() == normed.dtype() {
            kernels::silu_mul(z, &normed)?
        } else {
            normed.mul(&z.silu()?)?
        };
        self.out_proj.forward(&gated.reshape((b, t, self.n_v * self.d_v))?)
    }

    /// `[B, T, n_k, d] → [B, T, n_v, d]`, each key head repeated `n_v / n_k` times consecutively.
    fn repeat_heads(&self, x: &Tensor) -> Result<Tensor> {
        let r = self.n_v / self.n_k;
        if r == 1 {
            return Ok(x.clone());
        }
        let (b, t, n, d) = x.dims4()?;
        Ok(x.unsqueeze(3)?.broadcast_as((b, t, n, r, d))?.reshape((b, t, n * r, d))?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;

    use super::*;
    use crate::config::Config;

    /// A layer of the tiny config's widths with two value heads per key head (the repeat the kernel must follow),
    /// random f64 weights.
    fn layer() -> (GatedDeltaNet, usize) {
        let mut cfg = Config::tiny().text_config;
        cfg.linear_num_value_heads = 2 * cfg.linear_num_key_heads;
        let (h, nk, nv, dk, dv, kern) = (
            cfg.hidden_size,
            cfg.linear_num_key_heads,
            cfg.linear_num_value_heads,
            cfg.linear_key_head_dim,
            cfg.linear_value_head_dim,
            cfg.linear_conv_kernel_dim,
        );
        let conv_dim = 2 * nk * dk + nv * dv;
        let dev = Device::Cpu;
        let r = |shape: &[usize], std: f64| Tensor::randn(0f64, std, shape, &dev).unwrap();
        let ws: HashMap<String, Tensor> = [
            ("in_proj_qkv.weight", r(&[conv_dim, h], 0.3)),
            ("in_proj_z.weight", r(&[nv * dv, h], 0.3)),
            ("in_proj_b.weight", r(&[nv, h], 0.3)),
            ("in_proj_a.weight", r(&[nv, h], 0.3)),
            ("conv1d.weight", r(&[conv_dim, 1, kern], 0.5)),
            ("dt_bias", r(&[nv], 0.5)),
            ("A_log", r(&[nv], 0.5)),
            ("norm.weight", r(&[dv], 0.2)),
            ("out_proj.weight", r(&[h, nv * dv], 0.3)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let vb = VarBuilder::from_tensors(ws, DType::F64, &dev);
        (GatedDeltaNet::load(&cfg, vb).unwrap(), h)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    #[test]
    fn one_kernel_decode_steps_equal_the_whole_sequence_at_once() {
        let (layer, hidden) = layer();
        let (b, prefill, steps) = (3, 7, 3);
        let x = Tensor::randn(0f64, 1.0, (b, prefill + steps, hidden), &Device::Cpu).unwrap();
        let whole = layer.forward(&x, None, DEFAULT_CHUNK).unwrap();
        let mut state = None;
        let head = layer.forward(&x.narrow(1, 0, prefill).unwrap(), Some(&mut state), 4).unwrap();
        assert!(max_diff(&head, &whole.narrow(1, 0, prefill).unwrap()) < 1e-10);
        for i in prefill..prefill + steps {
            assert!(kernels::delta_decode_supported(&x));
            let out = layer.forward(&x.narrow(1, i, 1).unwrap(), Some(&mut state), 4).unwrap();
            let want = whole.narrow(1, i, 1).unwrap();
            let scale: f64 = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
            assert!(scale > 1e-3, "the layer's output is degenerate");
            let d = max_diff(&out, &want);
            assert!(d < 1e-10 * scale.max(1.0), "decode step {i} differs by {d}");
        }
        let s = state.unwrap();
        assert_eq!(s.conv.dims(), [b, 3, layer.conv_dim()]);
        assert_eq!(s.conv.dtype(), DType::F64);
    }

    /// The layer as candle ops alone (composed conv, heads split, the token-by-token recurrence): the reference
    /// for the kernels' path.
    fn composed(layer: &GatedDeltaNet, x: &Tensor) -> Tensor {
        let (b, t, _) = x.dims3().unwrap();
        let mixed = layer.in_proj_qkv.forward(x).unwrap();
        let z = layer.in_proj_z.forward(x).unwrap().reshape((b, t, layer.n_v, layer.d_v)).unwrap();
        let beta = sigmoid(&layer.in_proj_b.forward(x).unwrap()).unwrap();
        let a = layer.in_proj_a.forward(x).unwrap();
        let g = softplus(&a.broadcast_add(&layer.dt_bias).unwrap())
            .unwrap()
            .broadcast_mul(&layer.a_log.exp().unwrap().neg().unwrap())
            .unwrap();
        let conv = layer.composed_conv(&mixed.pad_with_zeros(1, layer.kernel - 1, 0).unwrap(), t).unwrap();
        let (q, k, v) = layer.split_heads(&conv, b, t).unwrap();
        let (core, _) = delta_rule::recurrent(&q, &k, &v, &g, &beta, None).unwrap();
        layer.finish(&core, &z, b, t).unwrap()
    }

    #[test]
    fn inference_in_pieces_through_the_kernels_equals_the_composed_layer() {
        let (layer, hidden) = layer();
        let b = 2;
        // Pieces shorter than the conv's K − 1 = 3 inputs of context too, and a one-token piece with a state.
        let pieces = [5, 2, 1, 4, 1, 3];
        let total: usize = pieces.iter().sum();
        let x = Tensor::randn(0f64, 1.0, (b, total, hidden), &Device::Cpu).unwrap();
        let want = composed(&layer, &x);
        let scale: f64 = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
        assert!(scale > 1e-3, "the layer's output is degenerate");
        let whole = layer.forward(&x, None, DEFAULT_CHUNK).unwrap();
        assert!(max_diff(&whole, &want) < 1e-10 * scale.max(1.0), "whole: {}", max_diff(&whole, &want));
        let (mut state, mut at) = (None, 0);
        for n in pieces {
            let out = layer.forward(&x.narrow(1, at, n).unwrap(), Some(&mut state), 4).unwrap();
            let d = max_diff(&out, &want.narrow(1, at, n).unwrap());
            assert!(d < 1e-10 * scale.max(1.0), "tokens {at}..{}: {d}", at + n);
            at += n;
        }
        let s = state.unwrap();
        assert_eq!(s.conv.dims(), [b, layer.kernel - 1, layer.conv_dim()]);
        assert_eq!(s.recurrent.dims(), [b, layer.n_v, layer.d_k, layer.d_v]);
        // The conv state is the last K − 1 inputs.
        let mixed = layer.in_proj_qkv.forward(&x.narrow(1, total - 3, 3).unwrap()).unwrap();
        assert!(max_diff(&s.conv, &mixed) < 1e-12);
    }

    #[test]
    fn in_place_steps_equal_the_decode_steps_and_update_the_state_buffers() {
        let (layer, hidden) = layer();
        let (b, prefill, steps) = (2, 5, 3);
        let x = Tensor::randn(0f64, 1.0, (b, prefill + steps, hidden), &Device::Cpu).unwrap();
        let mut state = None;
        layer.forward(&x.narrow(1, 0, prefill).unwrap(), Some(&mut state), 4).unwrap();
        let fixed = state.as_ref().unwrap().fixed().unwrap();
        for i in prefill..prefill + steps {
            let xi = x.narrow(1, i, 1).unwrap();
            let want = layer.forward(&xi, Some(&mut state), 4).unwrap();
            let got = layer.decode_static(&xi, &fixed).unwrap(); // writes `fixed`'s own buffers
            assert!(max_diff(&got, &want) < 1e-12, "step {i}: {}", max_diff(&got, &want));
            let s = state.as_ref().unwrap();
            assert!(max_diff(&fixed.recurrent, &s.recurrent) < 1e-12);
            assert!(max_diff(&fixed.conv, &s.conv.to_dtype(DType::F64).unwrap()) < 1e-12);
        }
        // A state that is not contiguous f32/f64 is refused rather than silently copied (and left stale).
        let s = state.unwrap();
        let strided = DeltaNetState { conv: s.conv.clone(), recurrent: s.recurrent.transpose(2, 3).unwrap() };
        let err = layer.decode_static(&x.narrow(1, 0, 1).unwrap(), &strided).unwrap_err().to_string();
        assert!(err.contains("contiguous"), "{err}");
    }

    #[test]
    fn the_decode_kernel_rejects_a_state_of_the_wrong_shape() {
        let (layer, hidden) = layer();
        let x = Tensor::randn(0f64, 1.0, (2, 1, hidden), &Device::Cpu).unwrap();
        let mut state = Some(DeltaNetState {
            conv: Tensor::zeros((2, layer.kernel - 1, layer.conv_dim()), DType::F64, &Device::Cpu).unwrap(),
            recurrent: Tensor::zeros((2, layer.n_v, layer.d_k + 1, layer.d_v), DType::F64, &Device::Cpu).unwrap(),
        });
        let err = layer.forward(&x, Some(&mut state), 4).unwrap_err().to_string();
        assert!(err.contains("state has shape"), "{err}");
    }
}
