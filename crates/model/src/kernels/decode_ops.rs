//! The fused inference ops of a fixed-shape decode step ([`crate::text::TextModel::decode_static`] after
//! [`crate::text::TextModel::fuse_for_decode`]).
//!
//! A decode step at batch 1 is bound by how many kernels it launches, not by its arithmetic (BENCHMARKS.md: each
//! candle op is a launch of ~5 µs op by op, and a few µs inside a CUDA graph). Written with candle ops, a layer's
//! RMSNorm under bf16 activations is five launches (the input and the weight cast to f32, `1 + w`, the norm, the
//! cast back) and the residual add one more; the Gated DeltaNet's gated norm six; the MLP's `silu(gate)·up` two.
//! Here each is one kernel of ours on CUDA (`decode_ops.cu`, launched by `decode_ops_cuda.rs`):
//! * [`add_rms_norm`]: the residual add and the next RMSNorm, `s = x + h`, `y = s / rms(s) · w` with an f32
//!   effective weight (Qwen3.5's `1 + w` computed once, at [`crate::text::TextModel::fuse_for_decode`]);
//! * [`gated_rms_norm`]: Gated DeltaNet's `rms_norm(core)·w·silu(z)`, `z` read in place from the layer's fused
//!   projection;
//! * [`silu_mul_halves`]: `silu(gate)·up` from the fused gate/up projection's two halves;
//! * [`attn_prep`] and [`attn_decode`]: a full-attention layer's step after its fused q/k/v projection — the q/k
//!   norms, the rotary embedding and the KV write (some fifteen ops) in one kernel, then the attention over the KV
//!   buffers (some ten) as cuBLAS's two products around one kernel for the scaled, masked softmax and one for the
//!   output gate.
//!
//! Elsewhere (the CPU) they are the same arithmetic as candle ops, which is also their definition: the CUDA kernels
//! are tested against these through the CUDA stand-in (`tests/cuda_kernels_emulated.rs`). Arithmetic is f32, and
//! each result is rounded to the activations' dtype once (the op-by-op path rounds after every op).

use candle_core::{DType, Tensor, D};

use crate::error::{Error, Result};

/// Whether the CUDA kernels take tensors of `dtype` on `t`'s device.
#[cfg(feature = "cuda")]
fn on_cuda(t: &Tensor) -> bool {
    t.device().is_cuda() && matches!(t.dtype(), DType::F32 | DType::BF16) && super::enabled()
}

/// `(x + h, rms_norm(x + h)·w)` over the last dimension (`h` absent: `(None, rms_norm(x)·w)`). `w` is the f32
/// effective weight `[n]` (f64 for f64 activations on the CPU); the sum is rounded to `x`'s dtype before it is
/// normalised, as the residual stream is stored.
pub fn add_rms_norm(x: &Tensor, h: Option<&Tensor>, w: &Tensor, eps: f64) -> Result<(Option<Tensor>, Tensor)> {
    let n = x.dim(D::Minus1)?;
    if w.dims() != [n] || !matches!(w.dtype(), DType::F32 | DType::F64) {
        return Err(Error::Input(format!("add_rms_norm: weight {:?} {:?}, expected f32 [{n}]", w.dims(), w.dtype())));
    }
    if let Some(h) = h {
        if h.dims() != x.dims() || h.dtype() != x.dtype() {
            return Err(Error::Input(format!("add_rms_norm: {:?} + {:?}", x.shape(), h.shape())));
        }
    }
    #[cfg(feature = "cuda")]
    if on_cuda(x) {
        return super::decode_ops_cuda::add_rms_norm(x, h, w, eps);
    }
    let sum = match h {
        Some(h) => Some((x + h)?),
        None => None,
    };
    let s = sum.as_ref().unwrap_or(x);
    let dt = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let y = candle_nn::ops::rms_norm(&s.to_dtype(dt)?.contiguous()?, &w.to_dtype(dt)?, eps as f32)?;
    Ok((sum, y.to_dtype(x.dtype())?))
}

/// Gated DeltaNet's output norm: `rms_norm(core)·w·silu(z)` per value head. `core` `[B, 1, n_v, d_v]` (f32, the
/// delta rule's output), `proj` `[B, 1, W]` the layer's fused projection with `z` in columns
/// `z_at .. z_at + n_v·d_v`, `w` `[d_v]` f32. Returns `[B, 1, n_v·d_v]` in `proj`'s dtype.
pub fn gated_rms_norm(core: &Tensor, proj: &Tensor, z_at: usize, w: &Tensor, eps: f64) -> Result<Tensor> {
    let (b, t, n_v, d_v) = core.dims4()?;
    let (pb, pt, width) = proj.dims3()?;
    if t != 1
        || pb != b
        || pt != 1
        || z_at + n_v * d_v > width
        || w.dims() != [d_v]
        || !matches!(w.dtype(), DType::F32 | DType::F64)
    {
        return Err(Error::Input(format!(
            "gated_rms_norm: core {:?}, projection {:?} with z at {z_at}, weight {:?} {:?}",
            core.dims(),
            proj.dims(),
            w.dims(),
            w.dtype()
        )));
    }
    #[cfg(feature = "cuda")]
    if on_cuda(proj) && core.dtype() == DType::F32 {
        return super::decode_ops_cuda::gated_norm(core, proj, z_at, w, eps);
    }
    let dt = if core.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let normed = candle_nn::ops::rms_norm(&core.to_dtype(dt)?.contiguous()?, &w.to_dtype(dt)?, eps as f32)?;
    let z = proj.narrow(2, z_at, n_v * d_v)?.to_dtype(dt)?.reshape((b, 1, n_v, d_v))?;
    let gated = normed.mul(&z.silu()?)?;
    Ok(gated.reshape((b, 1, n_v * d_v))?.to_dtype(proj.dtype())?)
}

/// `silu(gate)·up` where each row of `gu` `[.., 2·I]` is `[gate, up]`; returns `[.., I]` in `gu`'s dtype.
pub fn silu_mul_halves(gu: &Tensor) -> Result<Tensor> {
    let two_i = gu.dim(D::Minus1)?;
    if two_i % 2 != 0 {
        return Err(Error::Input(format!("silu_mul_halves: odd last dimension {two_i}")));
    }
    let inter = two_i / 2;
    #[cfg(feature = "cuda")]
    if on_cuda(gu) {
        return super::decode_ops_cuda::silu_mul_halves(gu, inter);
    }
    let dt = if gu.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let gate = gu.narrow(D::Minus1, 0, inter)?.to_dtype(dt)?;
    let up = gu.narrow(D::Minus1, inter, inter)?.to_dtype(dt)?;
    Ok(gate.silu()?.mul(&up)?.to_dtype(gu.dtype())?)
}

/// Head layout of a full-attention layer for [`attn_prep`] and [`attn_decode`]: `n_h` query heads over `n_kv`
/// key/value heads of `d` features.
#[derive(Debug, Clone, Copy)]
pub struct AttnHeads {
    pub n_h: usize,
    pub n_kv: usize,
    pub d: usize,
}

/// The queries of a one-token step, and its keys and values written into the KV buffers: from `all` `[B, 1, W]`,
/// the fused q/k/v projection (per query head its query then its gate, `d` each; then the keys; then the
/// values), the queries and keys are RMS-normalised with the effective weights `q_norm`, `k_norm` `[d]` (f32) and
/// rotated by the tables `cos`, `sin` `[B, 1, rot]` (rotate-half over the first `rot` features); the keys and the
/// values go to the slot `slot_index` names (u32 `[B, n_kv, 1, d]`, every element that slot) of `kbuf`, `vbuf`
/// `[B, n_kv, cap, d]`, in place. Returns the queries `[B, n_h, 1, d]` in `all`'s dtype. On CUDA one kernel.
#[allow(clippy::too_many_arguments)]
pub fn attn_prep(
    all: &Tensor,
    heads: AttnHeads,
    q_norm: &Tensor,
    k_norm: &Tensor,
    (cos, sin): (&Tensor, &Tensor),
    (kbuf, vbuf): (&Tensor, &Tensor),
    slot_index: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let AttnHeads { n_h, n_kv, d } = heads;
    let (b, _, width) = all.dims3()?;
    let rot = cos.dim(D::Minus1)?;
    let (kb, kh, _, kd) = kbuf.dims4()?;
    if width < 2 * n_h * d + 2 * n_kv * d || rot > d || rot % 2 != 0 || (kb, kh, kd) != (b, n_kv, d) || n_kv == 0 {
        return Err(Error::Input(format!(
            "attn_prep: projection {:?}, KV buffers {:?}, rotary {rot} for {heads:?}",
            all.dims(),
            kbuf.dims()
        )));
    }
    #[cfg(feature = "cuda")]
    if on_cuda(all) && kbuf.dtype() == all.dtype() {
        return super::decode_ops_cuda::attn_prep(
            all,
            heads,
            [q_norm, k_norm, cos, sin],
            [kbuf, vbuf],
            slot_index,
            eps,
        );
    }
    let dt = if all.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let block = |at: usize, heads: usize, stride: usize| -> Result<Tensor> {
        Ok(all.narrow(2, at, heads * stride)?.reshape((b, heads, stride))?.narrow(2, 0, d)?.to_dtype(dt)?)
    };
    let (cos, sin) = (cos.reshape((b, 1, rot))?.to_dtype(dt)?, sin.reshape((b, 1, rot))?.to_dtype(dt)?);
    let norm_rope = |x: Tensor, w: &Tensor| -> Result<Tensor> {
        let y = candle_nn::ops::rms_norm(&x.contiguous()?, &w.to_dtype(dt)?, eps as f32)?;
        let (head, tail) = (y.narrow(2, 0, rot)?, y.narrow(2, rot, d - rot)?);
        let rotated = Tensor::cat(&[&head.narrow(2, rot / 2, rot / 2)?.neg()?, &head.narrow(2, 0, rot / 2)?], 2)?;
        let head = (head.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?;
        Ok(Tensor::cat(&[&head, &tail], 2)?)
    };
    let q = norm_rope(block(0, n_h, 2 * d)?, q_norm)?;
    let k = norm_rope(block(2 * n_h * d, n_kv, d)?, k_norm)?;
    let v = block(2 * n_h * d + n_kv * d, n_kv, d)?;
    for (buf, x) in [(kbuf, k), (vbuf, v)] {
        buf.scatter_set(slot_index, &x.reshape((b, n_kv, 1, d))?.to_dtype(buf.dtype())?, 2)?;
    }
    Ok(q.reshape((b, n_h, 1, d))?.to_dtype(all.dtype())?)
}

/// One query per sequence and head attending over the whole KV buffers `[B, n_kv, cap, d]` under the additive
/// `mask` `[B, 1, 1, cap]` (f32), query head `h` reading key/value head `h / (n_h / n_kv)`; the result times
/// `σ(gate)`, the gates read from `all` (see [`attn_prep`]). `q` `[B, n_h, 1, d]`; returns `[B, 1, n_h·d]` in
/// `all`'s dtype, ready for `o_proj`. On CUDA four launches: the two products (cuBLAS, which reads the KV buffers at
/// full bandwidth; a kernel of ours walking the slots would be bound by load latency at decode sizes) and one
/// kernel each for the scaled, masked softmax and for the gate, where op by op they were eight.
pub fn attn_decode(
    q: &Tensor,
    (kbuf, vbuf): (&Tensor, &Tensor),
    mask: &Tensor,
    all: &Tensor,
    heads: AttnHeads,
) -> Result<Tensor> {
    let AttnHeads { n_h, n_kv, d } = heads;
    let (b, _, cap, _) = kbuf.dims4()?;
    if q.dims() != [b, n_h, 1, d] || mask.elem_count() != b * cap || n_kv == 0 || n_h % n_kv != 0 {
        return Err(Error::Input(format!(
            "attn_decode: queries {:?}, KV buffers {:?}, mask {:?} for {heads:?}",
            q.dims(),
            kbuf.dims(),
            mask.dims()
        )));
    }
    let scale = (d as f64).powf(-0.5);
    #[cfg(feature = "cuda")]
    if on_cuda(all) && kbuf.dtype() == all.dtype() && q.dtype() == all.dtype() {
        use super::decode_ops_cuda as cu;
        let q = q.contiguous()?.reshape((b, n_kv, n_h / n_kv, d))?;
        let scores = q.matmul(&kbuf.t()?)?; // [B, n_kv, rep, cap], rows sequence-major
        let probs = cu::masked_softmax(&scores, mask, n_h, scale)?;
        let out = probs.matmul(vbuf)?; // [B, n_kv, rep, d]: the heads side by side
        return cu::gate_mul(&out.reshape((b, 1, n_h * d))?, all, heads);
    }
    let dt = if all.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let qf = q.to_dtype(dt)?.reshape((b, n_kv, n_h / n_kv, d))?;
    let scores = (qf.matmul(&kbuf.to_dtype(dt)?.t()?)? * scale)?;
    let scores = scores.broadcast_add(&mask.to_dtype(dt)?.reshape((b, 1, 1, cap))?)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?;
    let out = probs.matmul(&vbuf.to_dtype(dt)?)?.reshape((b, n_h, d))?;
    let gate = all.narrow(2, 0, 2 * n_h * d)?.reshape((b, n_h, 2 * d))?.narrow(2, d, d)?.to_dtype(dt)?;
    let gated = out.mul(&candle_nn::ops::sigmoid(&gate)?)?;
    Ok(gated.reshape((b, 1, n_h * d))?.to_dtype(all.dtype())?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap()).unwrap();
        d.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    #[test]
    fn the_fused_ops_equal_their_compositions() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (3, 1, 16), &dev).unwrap();
        let h = Tensor::randn(0f32, 1.0, (3, 1, 16), &dev).unwrap();
        let w = Tensor::randn(1f32, 0.2, 16, &dev).unwrap();
        let (sum, y) = add_rms_norm(&x, Some(&h), &w, 1e-6).unwrap();
        let s = (&x + &h).unwrap();
        assert_eq!(max_diff(&sum.unwrap(), &s), 0.0);
        let rms = s.sqr().unwrap().mean_keepdim(D::Minus1).unwrap().affine(1.0, 1e-6).unwrap().sqrt().unwrap();
        let want = s.broadcast_div(&rms).unwrap().broadcast_mul(&w).unwrap();
        assert!(max_diff(&y, &want) < 1e-5);
        let (none, y0) = add_rms_norm(&x, None, &w, 1e-6).unwrap();
        assert!(none.is_none());
        let rms0 = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap().affine(1.0, 1e-6).unwrap().sqrt().unwrap();
        assert!(max_diff(&y0, &x.broadcast_div(&rms0).unwrap().broadcast_mul(&w).unwrap()) < 1e-5);

        // Two value heads of 4 in a projection of width 13 whose z block starts at column 3.
        let core = Tensor::randn(0f32, 1.0, (2, 1, 2, 4), &dev).unwrap();
        let proj = Tensor::randn(0f32, 1.0, (2, 1, 13), &dev).unwrap();
        let wg = Tensor::randn(1f32, 0.2, 4, &dev).unwrap();
        let got = gated_rms_norm(&core, &proj, 3, &wg, 1e-6).unwrap();
        assert_eq!(got.dims(), [2, 1, 8]);
        let z = proj.narrow(2, 3, 8).unwrap().reshape((2, 1, 2, 4)).unwrap();
        let rms = core.sqr().unwrap().mean_keepdim(D::Minus1).unwrap().affine(1.0, 1e-6).unwrap().sqrt().unwrap();
        let want = core.broadcast_div(&rms).unwrap().broadcast_mul(&wg).unwrap().mul(&z.silu().unwrap()).unwrap();
        assert!(max_diff(&got, &want.reshape((2, 1, 8)).unwrap()) < 1e-5);
        assert!(gated_rms_norm(&core, &proj, 6, &wg, 1e-6).is_err(), "z past the projection's end");

        let gu = Tensor::randn(0f32, 1.0, (2, 1, 10), &dev).unwrap();
        let got = silu_mul_halves(&gu).unwrap();
        let want = gu.narrow(2, 0, 5).unwrap().silu().unwrap().mul(&gu.narrow(2, 5, 5).unwrap()).unwrap();
        assert_eq!(max_diff(&got, &want), 0.0);
        assert!(silu_mul_halves(&gu.narrow(2, 0, 9).unwrap()).is_err());
    }

    #[test]
    fn bf16_results_are_rounded_once() {
        let dev = Device::Cpu;
        let bf = |t: Tensor| t.to_dtype(DType::BF16).unwrap();
        let gu = bf(Tensor::randn(0f32, 2.0, (4, 64), &dev).unwrap());
        let got = silu_mul_halves(&gu).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        let g = gu.narrow(1, 0, 32).unwrap().to_dtype(DType::F32).unwrap();
        let u = gu.narrow(1, 32, 32).unwrap().to_dtype(DType::F32).unwrap();
        let want = bf(g.silu().unwrap().mul(&u).unwrap());
        assert_eq!(max_diff(&got, &want), 0.0);
    }
}
