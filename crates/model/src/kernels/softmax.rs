//! Softmax over the last dimension with the scale and an optional causal mask inside.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::{bwd_by_dtype, host, unary_fwd, Real};
use crate::error::Result;

struct Softmax {
    scale: f64,
    /// `Some(past)`: rows are queries `i` of a `[.., T, past+T]` block that see keys `0..=past+i`.
    causal: Option<usize>,
    /// `T` of the block (rows per matrix) for the causal mask.
    rows: usize,
}

impl Softmax {
    /// Keys row `r` sees.
    fn visible(&self, r: usize, n: usize) -> usize {
        match self.causal {
            Some(past) => (past + r % self.rows.max(1) + 1).min(n),
            None => n,
        }
    }

    fn fwd<T: Real>(&self, x: &[T], n: usize) -> Vec<T> {
        let scale = T::of(self.scale);
        let mut out = vec![T::zero(); x.len()];
        for (r, (s, d)) in x.chunks(n).zip(out.chunks_mut(n)).enumerate() {
            let m = self.visible(r, n);
            let max = s[..m].iter().fold(T::of(f64::NEG_INFINITY), |a, &v| a.max_(v * scale));
            let mut sum = T::zero();
            for (d, &v) in d[..m].iter_mut().zip(&s[..m]) {
                *d = (v * scale - max).exp_();
                sum += *d;
            }
            for d in d[..m].iter_mut() {
                *d /= sum;
            }
        }
        out
    }

    /// `∂x = scale·p⊙(g − Σ p⊙g)`.
    fn bwd<T: Real>(&self, p: &Tensor, g: &Tensor) -> candle_core::Result<Tensor> {
        let n = p.dims().last().copied().unwrap_or(1).max(1);
        let (ps, gs) = (host::<T>(p)?, host::<T>(g)?);
        let scale = T::of(self.scale);
        let mut dx = vec![T::zero(); ps.len()];
        for (r, ((pr, gr), dr)) in ps.chunks(n).zip(gs.chunks(n)).zip(dx.chunks_mut(n)).enumerate() {
            let m = self.visible(r, n);
            let dot = pr[..m].iter().zip(&gr[..m]).fold(T::zero(), |a, (&p, &g)| a + p * g);
            for ((d, &p), &g) in dr[..m].iter_mut().zip(&pr[..m]).zip(&gr[..m]) {
                *d = scale * p * (g - dot);
            }
        }
        Tensor::from_vec(dx, p.shape(), p.device())
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last"
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
        super::train_cuda::softmax_fwd(s, l, self.rows, self.causal, self.scale)
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        if res.device().is_cuda() {
            return super::train_cuda::softmax_bwd(res, grad, self.rows, self.causal, self.scale)
                .map(Some)
                .map_err(candle_core::Error::wrap);
        }
        bwd_by_dtype(res, || self.bwd::<f32>(res, grad), || self.bwd::<f64>(res, grad)).map(Some)
    }
}

/// `softmax(scale·x)` over the last dimension, one graph node. With `causal = Some(past)`, `x` is a
/// `[.., T, past+T]` block of scores and query `i` sees keys `0..=past+i` only (the others get probability 0).
pub fn softmax(x: &Tensor, scale: f64, causal: Option<usize>) -> Result<Tensor> {
    let rows = if x.rank() >= 2 { x.dim(x.rank() - 2)? } else { 1 };
    Ok(x.contiguous()?.apply_op1(Softmax { scale, causal, rows })?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f64_randn, same};
    use super::*;
    use candle_core::{Device, Var, D};

    #[test]
    fn causal_scaled_softmax_matches_mask_then_softmax() {
        // [B, H, T, past + T] with past 2: query i sees keys 0..=2+i.
        let (t, past) = (5, 2);
        let x = Var::from_tensor(&f64_randn(&[2, 3, t, past + t], 1.5)).unwrap();
        let mask: Vec<f64> = (0..t)
            .flat_map(|i| (0..past + t).map(move |j| if j <= past + i { 0.0 } else { f64::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, past + t), &Device::Cpu).unwrap();
        let s = (x.as_tensor() * 0.3).unwrap().broadcast_add(&mask).unwrap();
        let e = s.broadcast_sub(&s.max_keepdim(D::Minus1).unwrap()).unwrap().exp().unwrap();
        let composed = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
        same("causal softmax", &[&x], softmax(x.as_tensor(), 0.3, Some(past)).unwrap(), composed);
    }
}
