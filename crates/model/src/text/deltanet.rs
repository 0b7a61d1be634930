//! Gated DeltaNet token mixer (the `linear_attention` layers).
//!
//! `x → in_proj_qkv → causal depthwise conv (kernel K) → SiLU → q, k, v`; `β = σ(in_proj_b x)`,
//! `g = −exp(A_log)·softplus(in_proj_a x + dt_bias)`; q/k heads are repeated to the value-head count
//! (head `i` serves value heads `i·r .. (i+1)·r`); the gated delta rule mixes tokens; a plain RMSNorm of each
//! value head is gated by `SiLU(in_proj_z x)`; `out_proj` maps back.

use candle_core::{Tensor, D};
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

    fn conv_dim(&self) -> usize {
        2 * self.n_k * self.d_k + self.n_v * self.d_v
    }

    /// Mixes `x` `[B, T, hidden]`. With `state`, continues from it and stores the new one; a one-token step with a
    /// previous state uses the recurrent form, everything else the chunked form with `chunk`-token blocks.
    pub fn forward(&self, x: &Tensor, state: Option<&mut Option<DeltaNetState>>, chunk: usize) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let mixed = self.in_proj_qkv.forward(x)?; // [B,T,conv_dim]
        let z = self.in_proj_z.forward(x)?.reshape((b, t, self.n_v, self.d_v))?;
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
        // Training on the CPU (no state kept, a gradient wanted): conv, SiLU and the delta rule as one-node kernels.
        if state.is_none() && kernels::supported(&mixed) && needs_grad(&[x, &mixed]) {
            let conv = kernels::conv_silu(&mixed, &self.conv_taps.to_dtype(mixed.dtype())?)?;
            let (q, k, v) = self.split_heads(&conv, b, t)?;
            let core = delta_rule::fused_cpu(&q, &k, &v, &g, &beta)?;
            return self.finish(&core, &z, b, t);
        }
        // Causal depthwise conv: left context is the previous state (zeros at the sequence start).
        let padded = match prev {
            Some(p) => Tensor::cat(&[&p.conv.to_dtype(mixed.dtype())?, &mixed], 1)?,
            None => mixed.pad_with_zeros(1, self.kernel - 1, 0)?,
        };
        let mut conv = padded.narrow(1, 0, t)?.broadcast_mul(&self.conv_taps.get(0)?)?;
        for j in 1..self.kernel {
            conv = (conv + padded.narrow(1, j, t)?.broadcast_mul(&self.conv_taps.get(j)?)?)?;
        }
        let conv = conv.silu()?;
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
        let gated = if needs_grad(&[&normed, z]) && kernels::supported(&normed) && z.dtype() == normed.dtype() {
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
