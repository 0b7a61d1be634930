//! Normalisation over the last dimension: plain (RMS or L2) and RMSNorm with its weight.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::{binary_bwd, binary_fwd, bwd_by_dtype, host, last_dim, unary_fwd, Real};
use crate::error::Result;

/// `1 / sqrt(c·Σx² + eps)` of one row (`c = 1/n` when `mean`, else 1).
pub(super) fn inv_norm<T: Real>(x: &[T], eps: f64, mean: bool) -> T {
    let sq = x.iter().fold(T::zero(), |a, &v| a + v * v);
    let c = if mean { T::of(1.0 / x.len().max(1) as f64) } else { T::one() };
    T::one() / (sq * c + T::of(eps)).sqrt_()
}

struct Normalize {
    eps: f64,
    mean: bool,
}

impl Normalize {
    fn fwd<T: Real>(&self, x: &[T], n: usize) -> Vec<T> {
        let mut out = vec![T::zero(); x.len()];
        for (s, d) in x.chunks(n).zip(out.chunks_mut(n)) {
            let r = inv_norm(s, self.eps, self.mean);
            for (d, &v) in d.iter_mut().zip(s) {
                *d = v * r;
            }
        }
        out
    }

    /// `∂x = (g − y·c·Σ g⊙y) / norm`.
    fn bwd<T: Real>(&self, x: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dims().last().copied().unwrap_or(1).max(1);
        let (xs, gs) = (host::<T>(x)?, host::<T>(g)?);
        let c = if self.mean { T::of(1.0 / n as f64) } else { T::one() };
        let mut dx = vec![T::zero(); xs.len()];
        for ((xr, gr), dr) in xs.chunks(n).zip(gs.chunks(n)).zip(dx.chunks_mut(n)) {
            let r = inv_norm(xr, self.eps, self.mean);
            let gy = xr.iter().zip(gr).fold(T::zero(), |a, (&x, &g)| a + g * x * r) * c;
            for ((d, &x), &g) in dr.iter_mut().zip(xr).zip(gr) {
                *d = (g - x * r * gy) * r;
            }
        }
        Tensor::from_vec(dx, x.shape(), x.device())
    }
}

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        "normalize-last"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        unary_fwd(self.name(), storage, layout, |x, n| self.fwd(x, n), |x, n| self.fwd(x, n))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::train_cuda::norm_fwd((s, l), None, self.eps, self.mean, false)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        if arg.device().is_cuda() {
            let (dx, _) = super::train_cuda::norm_bwd(arg, None, grad, self.eps, self.mean, false)
                .map_err(candle_core::Error::wrap)?;
            return Ok(Some(dx));
        }
        bwd_by_dtype(arg, || self.bwd::<f32>(arg, grad), || self.bwd::<f64>(arg, grad)).map(Some)
    }
}

/// `x / sqrt(c·Σx² + eps)` over the last dimension (`c = 1/n` when `mean`, else 1), one graph node.
pub fn normalize(x: &Tensor, eps: f64, mean: bool) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1(Normalize { eps, mean })?)
}

struct RmsNorm {
    eps: f64,
    plus_one: bool,
}

impl RmsNorm {
    fn scale<T: Real>(&self, w: T) -> T {
        if self.plus_one {
            w + T::one()
        } else {
            w
        }
    }

    fn fwd<T: Real>(&self, x: &[T], w: &[T]) -> Vec<T> {
        let n = w.len().max(1);
        let mut out = vec![T::zero(); x.len()];
        for (s, d) in x.chunks(n).zip(out.chunks_mut(n)) {
            let r = inv_norm(s, self.eps, true);
            for ((d, &v), &wv) in d.iter_mut().zip(s).zip(w) {
                *d = v * r * self.scale(wv);
            }
        }
        out
    }

    /// A weight of the input's last dimension.
    fn check(l1: &Layout, l2: &Layout) -> candle_core::Result<()> {
        if l2.dims().len() != 1 || l2.dims()[0] != last_dim(l1) {
            candle_core::bail!("rms norm: weight {:?} does not match input {:?}", l2.dims(), l1.dims());
        }
        Ok(())
    }

    /// With `y = x̂·w'` and `x̂ = x/norm`: `∂w = Σ_rows g⊙x̂`, `∂x = (ĝ − x̂·mean(ĝ⊙x̂)) / norm` with `ĝ = g⊙w'`.
    fn bwd<T: Real>(&self, x: &Tensor, w: &Tensor, g: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (xs, ws, gs) = (host::<T>(x)?, host::<T>(w)?, host::<T>(g)?);
        let n = ws.len().max(1);
        let scaled: Vec<T> = ws.iter().map(|&v| self.scale(v)).collect();
        let mut dx = vec![T::zero(); xs.len()];
        let mut dw = vec![T::zero(); ws.len()];
        let inv_n = T::of(1.0 / n as f64);
        for ((xr, gr), dr) in xs.chunks(n).zip(gs.chunks(n)).zip(dx.chunks_mut(n)) {
            let r = inv_norm(xr, self.eps, true);
            let mut dot = T::zero();
            for (((&x, &g), &s), dwj) in xr.iter().zip(gr).zip(&scaled).zip(dw.iter_mut()) {
                let xh = x * r;
                *dwj += g * xh;
                dot += g * s * xh;
            }
            dot *= inv_n;
            for (((d, &x), &g), &s) in dr.iter_mut().zip(xr).zip(gr).zip(&scaled) {
                *d = (g * s - x * r * dot) * r;
            }
        }
        Ok((Tensor::from_vec(dx, x.shape(), x.device())?, Tensor::from_vec(dw, w.shape(), w.device())?))
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-weighted"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Self::check(l1, l2)?;
        binary_fwd(self.name(), (s1, l1), (s2, l2), |x, w| self.fwd(x, w), |x, w| self.fwd(x, w))
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
        super::train_cuda::norm_fwd((s1, l1), Some((s2, l2)), self.eps, true, self.plus_one)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            let (dx, dw) = super::train_cuda::norm_bwd(x, Some(w), grad, self.eps, true, self.plus_one)
                .map_err(candle_core::Error::wrap)?;
            return Ok((Some(dx), dw));
        }
        binary_bwd(x, || self.bwd::<f32>(x, w, grad), || self.bwd::<f64>(x, w, grad))
    }
}

/// RMS normalisation over the last dimension times `w` (`1 + w` when `plus_one`), one graph node with gradients for
/// `x` and `w` (which must share `x`'s dtype).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, plus_one: bool) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps, plus_one })?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f64_randn, same};
    use super::*;
    use candle_core::{Var, D};

    #[test]
    fn rms_norm_matches_the_composition_with_both_weightings() {
        let x = Var::from_tensor(&f64_randn(&[3, 4, 16], 2.0)).unwrap();
        let w = Var::from_tensor(&f64_randn(&[16], 0.5)).unwrap();
        for plus_one in [false, true] {
            let xt = x.as_tensor();
            let rms = xt
                .broadcast_div(&(xt.sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + 1e-6).unwrap().sqrt().unwrap())
                .unwrap();
            let wf = if plus_one { (w.as_tensor() + 1.0).unwrap() } else { w.as_tensor().clone() };
            let composed = rms.broadcast_mul(&wf).unwrap();
            same("rms_norm", &[&x, &w], rms_norm(xt, w.as_tensor(), 1e-6, plus_one).unwrap(), composed);
        }
    }
}
