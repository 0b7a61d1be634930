//! `silu(a)·b` and Gated DeltaNet's causal depthwise convolution with its SiLU.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::{binary_bwd, binary_fwd, host, Real};
use crate::error::Result;

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (T::zero() - x).exp_())
}

/// `silu'(x) = σ(x)·(1 + x·(1 − σ(x)))`.
fn silu_grad<T: Real>(x: T) -> T {
    let s = sigmoid(x);
    s * (T::one() + x * (T::one() - s))
}

struct SiluMul;

impl SiluMul {
    fn fwd<T: Real>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().zip(b).map(|(&a, &b)| a * sigmoid(a) * b).collect()
    }

    /// Both operands of one shape.
    fn check(l1: &Layout, l2: &Layout) -> candle_core::Result<()> {
        if l1.dims() != l2.dims() {
            candle_core::bail!("silu-mul: operands differ in shape: {:?} and {:?}", l1.dims(), l2.dims());
        }
        Ok(())
    }

    fn bwd<T: Real>(a: &Tensor, b: &Tensor, g: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (av, bv, gv) = (host::<T>(a)?, host::<T>(b)?, host::<T>(g)?);
        let da: Vec<T> = av.iter().zip(&bv).zip(&gv).map(|((&a, &b), &g)| g * b * silu_grad(a)).collect();
        let db: Vec<T> = av.iter().zip(&gv).map(|(&a, &g)| g * a * sigmoid(a)).collect();
        Ok((Tensor::from_vec(da, a.shape(), a.device())?, Tensor::from_vec(db, b.shape(), b.device())?))
    }
}

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Self::check(l1, l2)?;
        binary_fwd(self.name(), (s1, l1), (s2, l2), Self::fwd, Self::fwd)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        Self::check(l1, l2)?;
        super::train_cuda::silu_mul_fwd((s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        if a.device().is_cuda() {
            let (da, db) = super::train_cuda::silu_mul_bwd(a, b, grad).map_err(candle_core::Error::wrap)?;
            return Ok((Some(da), Some(db)));
        }
        binary_bwd(a, || Self::bwd::<f32>(a, b, grad), || Self::bwd::<f64>(a, b, grad))
    }
}

/// `silu(a) ⊙ b` (SwiGLU's gate; Gated DeltaNet's output gate), one graph node; `a` and `b` of one shape and dtype.
pub fn silu_mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.contiguous()?.apply_op2(&b.contiguous()?, SiluMul)?)
}

/// Causal depthwise convolution over time followed by SiLU: `x: [B, T, C]`, `taps: [K, C]`,
/// `y[b, t, c] = silu(Σ_j taps[j, c] · x[b, t + j − (K − 1), c])` with zeros before the sequence start.
struct ConvSilu;

impl ConvSilu {
    /// `((B, T, C), K)` of an input `[B, T, C]` and taps `[K, C]` with `1 ≤ K` (and `K ≤ max_taps` when given).
    fn check(l1: &Layout, l2: &Layout, max_taps: Option<usize>) -> candle_core::Result<((usize, usize, usize), usize)> {
        let (xd, wd) = (l1.dims(), l2.dims());
        let too_long = max_taps.is_some_and(|m| wd.first().is_some_and(|&k| k > m));
        if xd.len() != 3 || wd.len() != 2 || wd[1] != xd[2] || wd[0] == 0 || too_long {
            let k = max_taps.map_or("K".to_string(), |m| format!("K ≤ {m}"));
            candle_core::bail!("causal conv: input {xd:?} and taps {wd:?} do not fit ([B, T, C] and [{k}, C])");
        }
        Ok(((xd[0], xd[1], xd[2]), wd[0]))
    }

    /// Pre-activations `[B, T, C]`.
    fn pre<T: Real>(x: &[T], taps: &[T], (b, t, c): (usize, usize, usize), k: usize) -> Vec<T> {
        let mut out = vec![T::zero(); b * t * c];
        for bi in 0..b {
            for ti in 0..t {
                let o = &mut out[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                for j in 0..k {
                    let Some(src_t) = (ti + j).checked_sub(k - 1) else { continue };
                    let src = &x[(bi * t + src_t) * c..(bi * t + src_t + 1) * c];
                    for ((o, &v), &w) in o.iter_mut().zip(src).zip(&taps[j * c..(j + 1) * c]) {
                        *o += v * w;
                    }
                }
            }
        }
        out
    }

    fn bwd<T: Real>(x: &Tensor, taps: &Tensor, g: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t, c) = x.dims3()?;
        let k = taps.dim(0)?;
        let (xv, wv, gv) = (host::<T>(x)?, host::<T>(taps)?, host::<T>(g)?);
        let pre = Self::pre(&xv, &wv, (b, t, c), k);
        let dpre: Vec<T> = pre.iter().zip(&gv).map(|(&p, &g)| g * silu_grad(p)).collect();
        let mut dx = vec![T::zero(); xv.len()];
        let mut dw = vec![T::zero(); wv.len()];
        for bi in 0..b {
            for ti in 0..t {
                let d = &dpre[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                for j in 0..k {
                    let Some(src_t) = (ti + j).checked_sub(k - 1) else { continue };
                    let row = (bi * t + src_t) * c;
                    for ci in 0..c {
                        dx[row + ci] += wv[j * c + ci] * d[ci];
                        dw[j * c + ci] += xv[row + ci] * d[ci];
                    }
                }
            }
        }
        Ok((Tensor::from_vec(dx, x.shape(), x.device())?, Tensor::from_vec(dw, taps.shape(), taps.device())?))
    }
}

impl CustomOp2 for ConvSilu {
    fn name(&self) -> &'static str {
        "causal-conv-silu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (dims, k) = Self::check(l1, l2, None)?;
        fn act<T: Real>(pre: Vec<T>) -> Vec<T> {
            pre.into_iter().map(|p| p * sigmoid(p)).collect()
        }
        binary_fwd(
            self.name(),
            (s1, l1),
            (s2, l2),
            |x, w| act(Self::pre(x, w, dims, k)),
            |x, w| act(Self::pre(x, w, dims, k)),
        )
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        Self::check(l1, l2, Some(super::MAX_CUDA_CONV_TAPS))?;
        super::train_cuda::conv_silu_fwd((s1, l1), (s2, l2))
    }

    fn bwd(
        &self,
        x: &Tensor,
        taps: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            let (dx, dt) = super::train_cuda::conv_silu_bwd(x, taps, grad).map_err(candle_core::Error::wrap)?;
            return Ok((Some(dx), Some(dt)));
        }
        binary_bwd(x, || Self::bwd::<f32>(x, taps, grad), || Self::bwd::<f64>(x, taps, grad))
    }
}

/// Causal depthwise convolution of `x: [B, T, C]` with `taps: [K, C]` (zeros before the start), then SiLU; one
/// graph node with gradients for both.
pub fn conv_silu(x: &Tensor, taps: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&taps.contiguous()?, ConvSilu)?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f64_randn, same};
    use super::*;
    use candle_core::Var;

    #[test]
    fn silu_mul_and_causal_conv_match_their_compositions() {
        let a = Var::from_tensor(&f64_randn(&[2, 5, 6], 2.0)).unwrap();
        let b = Var::from_tensor(&f64_randn(&[2, 5, 6], 1.0)).unwrap();
        let composed = a.as_tensor().silu().unwrap().mul(b.as_tensor()).unwrap();
        same("silu_mul", &[&a, &b], silu_mul(a.as_tensor(), b.as_tensor()).unwrap(), composed);

        let (t, k) = (7, 4);
        let x = Var::from_tensor(&f64_randn(&[2, t, 6], 1.0)).unwrap();
        let taps = Var::from_tensor(&f64_randn(&[k, 6], 0.5)).unwrap();
        let padded = x.as_tensor().pad_with_zeros(1, k - 1, 0).unwrap();
        let mut conv = padded.narrow(1, 0, t).unwrap().broadcast_mul(&taps.as_tensor().get(0).unwrap()).unwrap();
        for j in 1..k {
            let term = padded.narrow(1, j, t).unwrap().broadcast_mul(&taps.as_tensor().get(j).unwrap()).unwrap();
            conv = (conv + term).unwrap();
        }
        let composed = conv.silu().unwrap();
        same("conv_silu", &[&x, &taps], conv_silu(x.as_tensor(), taps.as_tensor()).unwrap(), composed);
    }
}
