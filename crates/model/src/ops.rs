//! Differentiable building blocks written from candle primitives.
//!
//! candle-nn's fused `softmax_last_dim`, `rms_norm`, `layer_norm` and `rope` kernels return no gradient (see
//! `qwen35_notes.md` §3.1), so the training path uses only these compositions of ops that candle's autograd knows.
//! Where no operand is part of a gradient graph ([`needs_grad`] is false: inference over plain tensors), the
//! norms and the softmax take candle-nn's fused kernels instead — one pass instead of five or six, same values up to
//! float rounding (the parity tests run through both paths).
//!
//! On the CPU the training path's softmax, RMS/L2 normalisation and weighted RMSNorm are single graph nodes with a
//! hand-written backward ([`crate::kernels`]): composed from five or six candle ops each, every intermediate
//! `[B, H, T, T]` or `[B, T, hidden]` tensor became a node whose gradient candle allocates, zero-fills and adds,
//! which made backward of the demo model about three times its forward. Other devices keep the compositions.

use candle_core::{DType, Module, Tensor, D};

use crate::error::Result;

/// A bias-free or biased linear layer `y = x·Wᵀ (+ b)` for inputs of any rank ≥ 2.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Loads `weight` `[out, in]` (and `bias` `[out]` when `bias`) from `vb`.
    pub fn load(vb: &candle_nn::VarBuilder, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim), "weight")?;
        let bias = if bias { Some(vb.get(out_dim, "bias")?) } else { None };
        Ok(Self { weight, bias })
    }

    /// Leading dims are flattened into one row dimension (packed row-major: CUDA's gemm needs unit-stride rows at
    /// the row length, and a row selection such as the last position of each sequence is strided) so that the
    /// product is a single 2-D gemm reading the weight in place (transposed by strides). `broadcast_matmul` would
    /// instead materialise a transposed copy of the weight for every batch entry — on the CPU that copy cost more
    /// than the product itself. A bf16 weight under f32 activations on the CPU ([`Linear::keep_bf16`]) is read as
    /// bf16 by [`crate::kernels::matmul_bf16_weight`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim.max(1);
        let x2 = if dims.len() == 2 && x.is_contiguous() {
            x.clone() // no reshape node in a gradient graph
        } else {
            x.reshape((rows, in_dim))? // a view when `x` is contiguous, a packed copy otherwise
        };
        let y = if self.weight.dtype() == DType::BF16 && x.dtype() == DType::F32 && x.device().is_cpu() {
            crate::kernels::matmul_bf16_weight(&x2, &self.weight)?
        } else {
            matmul(&x2, &self.weight.t()?)?
        };
        let y = if dims.len() == 2 {
            y
        } else {
            let mut out_dims = dims[..dims.len() - 1].to_vec();
            out_dims.push(self.weight.dim(0)?);
            y.reshape(out_dims)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// `parts` stacked into one layer (their weights concatenated along the output dimension), and each part again
    /// as a view of the stacked weight (rows of a contiguous tensor: no copy), so that replacing the parts by the
    /// views costs no memory. One product with the stacked layer gives every part's output side by side, for one
    /// launch instead of one per part. `None` when a part has a bias or the weights differ in dtype or width.
    pub fn stack(parts: &[&Linear]) -> Result<Option<(Linear, Vec<Linear>)>> {
        let Some(first) = parts.first() else { return Ok(None) };
        let (dtype, width) = (first.weight.dtype(), first.weight.dim(1)?);
        for p in parts {
            if p.bias.is_some() || p.weight.dtype() != dtype || p.weight.rank() != 2 || p.weight.dim(1)? != width {
                return Ok(None);
            }
        }
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let stacked = Tensor::cat(&weights, 0)?.contiguous()?;
        let mut views = Vec::with_capacity(parts.len());
        let mut at = 0;
        for p in parts {
            let rows = p.weight.dim(0)?;
            views.push(Linear { weight: stacked.narrow(0, at, rows)?, bias: None });
            at += rows;
        }
        Ok(Some((Linear { weight: stacked, bias: None }, views)))
    }

    /// The same layer with its weight stored in bf16 (the bias, if any, stays as it is): on the CPU, f32
    /// activations then read half the bytes per product, at the weight's bf16 rounding. For inference only.
    pub fn keep_bf16(&self) -> Result<Self> {
        Ok(Self { weight: self.weight.to_dtype(DType::BF16)?, bias: self.bias.clone() })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Linear::forward(self, x).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// `a · b` (batched as candle's `matmul`). candle's CPU gemm has no bf16 kernel, so bf16 operands on the CPU are
/// multiplied in f32 and the product rounded to bf16, which is what a GPU bf16 gemm does too (f32 accumulation,
/// bf16 output); it keeps bf16 models runnable, and their tests meaningful, on the CPU. Other cases are `matmul`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dtype() == DType::BF16 && a.device().is_cpu() {
        return Ok(a.to_dtype(DType::F32)?.matmul(&b.to_dtype(DType::F32)?)?.to_dtype(DType::BF16)?);
    }
    Ok(a.matmul(b)?)
}

/// The dtype reductions run in: f64 stays f64 (gradient checks), everything else is computed in f32. Under bf16
/// weights (inference, or training's bf16 compute) the norms, softmax, the Gated DeltaNet decay and the delta rule
/// upcast to it and cast their results back, as transformers does.
pub fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Whether any of `xs` is a variable or was computed from one, i.e. whether a gradient may be asked through it.
pub fn needs_grad(xs: &[&Tensor]) -> bool {
    xs.iter().any(|x| x.track_op())
}

/// Whether the fused no-gradient kernels may replace the composed ops for `xs` (f64 stays composed: the gradient
/// checks compare it with finite differences).
fn fused_ok(xs: &[&Tensor]) -> bool {
    !needs_grad(xs) && xs.iter().all(|x| x.dtype() != DType::F64)
}

/// `x / sqrt(mean(x²) + eps)` over the last dimension, computed in f32 (or f64).
pub fn rms_normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
    let x = x.to_dtype(compute_dtype(x.dtype()))?;
    if crate::kernels::trainable(&x) && needs_grad(&[&x]) {
        return crate::kernels::normalize(&x, eps, true);
    }
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(x.broadcast_div(&(var + eps)?.sqrt()?)?)
}

/// Gemma-style RMSNorm of Qwen3.5: `normalize(x)·(1 + w)` (weights are stored zero-centred).
pub fn rms_norm_1p(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fused_ok(&[x, w]) {
        let xf = x.to_dtype(compute_dtype(x.dtype()))?.contiguous()?;
        let wf = (w.to_dtype(xf.dtype())? + 1.0)?;
        return Ok(candle_nn::ops::rms_norm(&xf, &wf, eps as f32)?.to_dtype(x.dtype())?);
    }
    let xf = x.to_dtype(compute_dtype(x.dtype()))?;
    if crate::kernels::trainable(&xf) {
        return Ok(crate::kernels::rms_norm(&xf, &w.to_dtype(xf.dtype())?, eps, true)?.to_dtype(x.dtype())?);
    }
    let y = rms_normalize(&xf, eps)?;
    Ok(y.broadcast_mul(&(w.to_dtype(y.dtype())? + 1.0)?)?.to_dtype(x.dtype())?)
}

/// Plain RMSNorm: `normalize(x)·w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fused_ok(&[x, w]) {
        let xf = x.to_dtype(compute_dtype(x.dtype()))?.contiguous()?;
        let wf = w.to_dtype(xf.dtype())?;
        return Ok(candle_nn::ops::rms_norm(&xf, &wf, eps as f32)?.to_dtype(x.dtype())?);
    }
    let xf = x.to_dtype(compute_dtype(x.dtype()))?;
    if crate::kernels::trainable(&xf) {
        return Ok(crate::kernels::rms_norm(&xf, &w.to_dtype(xf.dtype())?, eps, false)?.to_dtype(x.dtype())?);
    }
    let y = rms_normalize(&xf, eps)?;
    Ok(y.broadcast_mul(&w.to_dtype(y.dtype())?)?.to_dtype(x.dtype())?)
}

/// LayerNorm over the last dimension with weight and bias, computed in f32 (or f64) and returned in `x`'s dtype.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let dt = compute_dtype(x.dtype());
    if [x, w, b].iter().any(|t| t.dtype() != dt) {
        let up = |t: &Tensor| t.to_dtype(dt);
        return Ok(layer_norm(&up(x)?, &up(w)?, &up(b)?, eps)?.to_dtype(x.dtype())?);
    }
    if fused_ok(&[x, w, b]) {
        return Ok(candle_nn::ops::layer_norm(&x.contiguous()?, w, b, eps as f32)?);
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(y.broadcast_mul(w)?.broadcast_add(b)?)
}

/// Softmax over the last dimension (max-subtracted, differentiable), computed in f32 (or f64) and returned in `x`'s
/// dtype.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let dt = compute_dtype(x.dtype());
    if x.dtype() != dt {
        return Ok(softmax_last(&x.to_dtype(dt)?)?.to_dtype(x.dtype())?);
    }
    if fused_ok(&[x]) {
        return Ok(candle_nn::ops::softmax_last_dim(&x.contiguous()?)?);
    }
    if crate::kernels::trainable(x) {
        return crate::kernels::softmax(x, 1.0, None);
    }
    Ok(candle_nn::ops::softmax(x, D::Minus1)?)
}

/// The logistic sigmoid (candle-nn's op, which has a backward pass).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::sigmoid(x)?)
}

/// `log(1 + exp(x))`, stable for large |x| like torch's (which returns x above 20).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    // softplus(x) = max(x, 0) + log(1 + exp(-|x|))
    let relu = x.relu()?;
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((relu + tail)?)
}

/// `x / sqrt(sum(x²) + eps)` over the last dimension (the FLA-style l2norm of Gated DeltaNet).
pub fn l2_normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
    if crate::kernels::trainable(x) && needs_grad(&[x]) {
        return crate::kernels::normalize(x, eps, false);
    }
    let n = (x.sqr()?.sum_keepdim(D::Minus1)? + eps)?.sqrt()?;
    Ok(x.broadcast_div(&n)?)
}

/// Swaps and negates the halves of the last dimension: `[x1, x2] → [-x2, x1]`.
pub fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d - d / 2)?;
    Ok(Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?)
}

/// Keeps candle's CPU elementwise ops on the calling thread: sets `CANDLE_NUM_THREADS=1` unless the environment
/// sets it. candle 0.11 runs an elementwise op of 64k elements or more on a pool of spinning threads of its own,
/// one op at a time (a lock); sgvlm runs its own parallel work (SFT passes, GRPO completions, one per core) on
/// rayon's threads, so that pool made those threads queue for it while its spinning workers took their cores: the
/// demo's SFT made 212 steps in 150 s on this 2-core machine instead of 413 (BENCHMARKS.md, seventeenth session).
/// candle reads the variable once, at its first such op: call this first in `main`, as the CLI and the examples
/// do (`scripts/test.sh` sets the variable for the tests).
pub fn init_cpu_threads() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Runs `f` on a thread of rayon's global pool (inline when already on one). candle's CPU kernels parallelise with
/// rayon; called from a thread outside the pool, every such op hands its work to the pool and sleeps until it is
/// done (two futex wake-ups per op), which at decode sizes costs more than the op itself. On a pool thread the
/// ops run in place.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn softplus_matches_closed_form() {
        let x = Tensor::new(&[-30f32, -1.0, 0.0, 2.0, 40.0], &Device::Cpu).unwrap();
        let y: Vec<f32> = softplus(&x).unwrap().to_vec1().unwrap();
        let want = [(-30f32).exp(), 0.313_261_7, std::f32::consts::LN_2, 2.126_928, 40.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn rms_norm_1p_scales_by_one_plus_weight() {
        let x = Tensor::new(&[[3f32, 4.0]], &Device::Cpu).unwrap();
        let w = Tensor::new(&[0f32, 1.0], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = rms_norm_1p(&x, &w, 0.0).unwrap().to_vec2().unwrap();
        let r = (12.5f32).sqrt();
        assert!((y[0][0] - 3.0 / r).abs() < 1e-6 && (y[0][1] - 8.0 / r).abs() < 1e-6);
    }

    #[test]
    fn stacked_layers_give_each_part_and_the_parts_become_views() {
        let dev = Device::Cpu;
        let lin = |rows: usize| Linear { weight: Tensor::randn(0f32, 1.0, (rows, 6), &dev).unwrap(), bias: None };
        let parts = [lin(3), lin(5), lin(2)];
        let x = Tensor::randn(0f32, 1.0, (2, 1, 6), &dev).unwrap();
        let (stacked, views) = Linear::stack(&parts.iter().collect::<Vec<_>>()).unwrap().unwrap();
        let all = stacked.forward(&x).unwrap();
        assert_eq!(all.dims(), [2, 1, 10]);
        let mut at = 0;
        for (p, v) in parts.iter().zip(&views) {
            let want = p.forward(&x).unwrap();
            let n = want.dim(2).unwrap();
            let diff = |a: &Tensor| -> f32 {
                (a - &want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
            };
            assert!(diff(&all.narrow(2, at, n).unwrap()) < 1e-6);
            assert!(diff(&v.forward(&x).unwrap()) < 1e-6);
            at += n;
        }
        // The views read the stacked weight's storage (no copy of their own): zeroing its first rows in place
        // zeroes the first part's output.
        stacked.weight.slice_set(&Tensor::zeros((3, 6), DType::F32, &dev).unwrap(), 0, 0).unwrap();
        let first: f32 = views[0].forward(&x).unwrap().abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        let second: f32 = views[1].forward(&x).unwrap().abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert_eq!(first, 0.0);
        assert!(second > 0.0);
        // A bias, or weights of another width, cannot be stacked.
        let biased = Linear { bias: Some(Tensor::zeros(3, DType::F32, &dev).unwrap()), ..lin(3) };
        assert!(Linear::stack(&[&parts[0], &biased]).unwrap().is_none());
        let wide = Linear { weight: Tensor::zeros((2, 7), DType::F32, &dev).unwrap(), bias: None };
        assert!(Linear::stack(&[&parts[0], &wide]).unwrap().is_none());
    }

    #[test]
    fn bf16_inputs_are_computed_in_f32_and_rounded_once() {
        let dev = Device::Cpu;
        let bf16 = |t: Tensor| t.to_dtype(DType::BF16).unwrap();
        let f32 = |t: Tensor| t.to_dtype(DType::F32).unwrap();
        // Inputs on the bf16 grid, so the f32 reference sees exactly what the bf16 path upcasts.
        let x = f32(bf16(Tensor::randn(0f32, 3.0, (2, 4, 32), &dev).unwrap()));
        let a = f32(bf16(Tensor::randn(0f32, 1.0, (2, 32, 8), &dev).unwrap()));
        let w = f32(bf16(Tensor::randn(0f32, 0.5, 32, &dev).unwrap()));
        let b = f32(bf16(Tensor::randn(0f32, 0.5, 32, &dev).unwrap()));
        let same = |got: Tensor, want: Tensor| {
            assert_eq!(got.dtype(), DType::BF16);
            let (g, w): (Vec<f32>, Vec<f32>) = (
                f32(got).flatten_all().unwrap().to_vec1().unwrap(),
                f32(bf16(want)).flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert_eq!(g, w);
        };
        let (xb, ab, wb, bb) = (bf16(x.clone()), bf16(a.clone()), bf16(w.clone()), bf16(b.clone()));
        same(softmax_last(&xb).unwrap(), softmax_last(&x).unwrap());
        same(layer_norm(&xb, &wb, &bb, 1e-6).unwrap(), layer_norm(&x, &w, &b, 1e-6).unwrap());
        same(rms_norm(&xb, &wb, 1e-6).unwrap(), rms_norm(&x, &w, 1e-6).unwrap());
        same(matmul(&xb, &ab).unwrap(), matmul(&x, &a).unwrap());
    }

    #[test]
    fn fused_inference_kernels_match_the_differentiable_compositions() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 2.0, (3, 5, 16), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.5, 16, &dev).unwrap();
        let b = Tensor::randn(0f32, 0.5, 16, &dev).unwrap();
        // A variable makes every op below take the composed (gradient-carrying) path.
        let xv = candle_core::Var::from_tensor(&x).unwrap();
        let xg = xv.as_tensor();
        assert!(needs_grad(&[xg]) && !needs_grad(&[&x, &w]));
        let diff = |a: Tensor, b: Tensor| -> f32 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
        };
        assert!(diff(rms_norm_1p(&x, &w, 1e-6).unwrap(), rms_norm_1p(xg, &w, 1e-6).unwrap()) < 1e-5);
        assert!(diff(rms_norm(&x, &w, 1e-6).unwrap(), rms_norm(xg, &w, 1e-6).unwrap()) < 1e-5);
        assert!(diff(layer_norm(&x, &w, &b, 1e-6).unwrap(), layer_norm(xg, &w, &b, 1e-6).unwrap()) < 1e-5);
        assert!(diff(softmax_last(&x).unwrap(), softmax_last(xg).unwrap()) < 1e-6);
        // The one-node CPU kernels give the composed ops' gradients (checked against a composition built by hand).
        let seed = Tensor::randn(0f32, 1.0, (3, 5, 16), &dev).unwrap();
        let composed = |x: &Tensor| -> candle_core::Result<(Tensor, Tensor, Tensor)> {
            let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
            let sm = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            let rms = x.broadcast_div(&(x.sqr()?.mean_keepdim(D::Minus1)? + 1e-6)?.sqrt()?)?;
            let l2 = x.broadcast_div(&(x.sqr()?.sum_keepdim(D::Minus1)? + 1e-6)?.sqrt()?)?;
            Ok((sm, rms, l2))
        };
        let (sm, rms, l2) = composed(xg).unwrap();
        for (name, got, want) in [
            ("softmax", softmax_last(xg).unwrap(), sm),
            ("rms", rms_normalize(xg, 1e-6).unwrap(), rms),
            ("l2", l2_normalize(xg, 1e-6).unwrap(), l2),
        ] {
            assert!(diff(got.clone(), want.clone()) < 1e-5, "{name} values");
            let ga = (got * &seed).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = (want * &seed).unwrap().sum_all().unwrap().backward().unwrap();
            let e = diff(ga.get(xg).unwrap().clone(), gb.get(xg).unwrap().clone());
            assert!(e < 1e-5, "{name} gradient differs by {e}");
        }
        // The composed path still carries gradients.
        let grads = softmax_last(xg).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(xg).is_some());
    }
}
