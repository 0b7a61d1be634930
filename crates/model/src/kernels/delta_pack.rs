//! The gated delta rule's inputs packed from the convolved projection in one graph node (training).
//!
//! Between Gated DeltaNet's causal conv and the delta rule, the composed path splits the conv output into heads,
//! repeats the key heads for the value heads, moves everything heads-first, L2-normalises q and k, scales q and
//! packs the rows for the delta-rule node: a dozen nodes per layer, most of them full copies that autograd keeps for
//! the backward pass (at the 0.8B shape, nine `[B, H, T, 128]` f32 buffers per layer). This node goes from the conv
//! output `[B, T, 2·n_k·d_k + n_v·d_v]`, the log-decay `g` and `beta` (`[B, T, n_v]`) straight to the packed rows
//! `[B, n_v, T, 2·d_k + d_v + 2]` (`q̂, k̂, v, g, β`, the layout of [`super::delta_rule`]), value head `h` reading
//! key head `h / (n_v / n_k)`, with
//!
//! ```text
//! q̂ = s·q·ν(q), k̂ = k·ν(k),  ν(x) = 1 / sqrt(Σx² + eps), s = 1/sqrt(d_k)
//! ∂q = s·ν·(G − q·ν²·(G·q)),  G = Σ over the value heads sharing the key head of ∂q̂   (likewise ∂k with s = 1)
//! ```
//!
//! and `v`, `g`, `β` copied (their gradients copied back). With the `cuda` feature the node runs on CUDA tensors
//! through two kernels of ours (`train_ops.cu`).

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

use super::norm::inv_norm;
use super::{contiguous, host, Real};
use crate::error::{Error, Result};
use crate::text::delta_rule::QK_NORM_EPS;

/// The head layout of a Gated DeltaNet layer's conv output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeads {
    pub n_k: usize,
    pub n_v: usize,
    pub d_k: usize,
    pub d_v: usize,
}

impl PackHeads {
    fn channels(self) -> usize {
        2 * self.n_k * self.d_k + self.n_v * self.d_v
    }

    fn width(self) -> usize {
        2 * self.d_k + self.d_v + 2
    }

    /// Value heads per key head.
    fn rep(self) -> usize {
        self.n_v / self.n_k
    }

    /// Offsets in a conv row of key head `kh`'s q and k and value head `h`'s v.
    fn q_at(self, kh: usize) -> usize {
        kh * self.d_k
    }

    fn k_at(self, kh: usize) -> usize {
        (self.n_k + kh) * self.d_k
    }

    fn v_at(self, h: usize) -> usize {
        2 * self.n_k * self.d_k + h * self.d_v
    }
}

struct DeltaPack {
    heads: PackHeads,
}

impl DeltaPack {
    /// `(B, T)` of the operands, checked against the head layout.
    fn dims(&self, conv: &[usize], g: &[usize], beta: &[usize]) -> candle_core::Result<(usize, usize)> {
        let h = self.heads;
        let ok = conv.len() == 3
            && conv[2] == h.channels()
            && g == [conv[0], conv[1], h.n_v]
            && beta == g
            && h.n_k > 0
            && h.n_v % h.n_k == 0;
        if !ok {
            candle_core::bail!("delta pack: conv {conv:?}, g {g:?} and beta {beta:?} do not fit the heads {h:?}");
        }
        Ok((conv[0], conv[1]))
    }

    fn fwd<T: Real>(&self, conv: &[T], g: &[T], beta: &[T], (b, t): (usize, usize)) -> Vec<T> {
        let h = self.heads;
        let (c, w) = (h.channels(), h.width());
        let s = T::of(1.0 / (h.d_k as f64).sqrt());
        let mut out = vec![T::zero(); b * h.n_v * t * w];
        for bi in 0..b {
            for hv in 0..h.n_v {
                let kh = hv / h.rep();
                for ti in 0..t {
                    let src = &conv[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                    let row = &mut out[((bi * h.n_v + hv) * t + ti) * w..][..w];
                    let (q, k) = (&src[h.q_at(kh)..][..h.d_k], &src[h.k_at(kh)..][..h.d_k]);
                    let (nq, nk) = (inv_norm(q, QK_NORM_EPS, false) * s, inv_norm(k, QK_NORM_EPS, false));
                    for i in 0..h.d_k {
                        row[i] = q[i] * nq;
                        row[h.d_k + i] = k[i] * nk;
                    }
                    row[2 * h.d_k..][..h.d_v].copy_from_slice(&src[h.v_at(hv)..][..h.d_v]);
                    let gi = (bi * t + ti) * h.n_v + hv;
                    row[w - 2] = g[gi];
                    row[w - 1] = beta[gi];
                }
            }
        }
        out
    }

    /// `(∂conv, ∂g, ∂β)` from the packed rows' gradient `dp`.
    fn bwd<T: Real>(&self, conv: &[T], dp: &[T], (b, t): (usize, usize)) -> (Vec<T>, Vec<T>, Vec<T>) {
        let h = self.heads;
        let (c, w) = (h.channels(), h.width());
        let s = T::of(1.0 / (h.d_k as f64).sqrt());
        let mut dconv = vec![T::zero(); conv.len()];
        let mut dg = vec![T::zero(); b * t * h.n_v];
        let mut dbeta = vec![T::zero(); b * t * h.n_v];
        let mut gsum = vec![T::zero(); h.d_k];
        for bi in 0..b {
            for ti in 0..t {
                let src = &conv[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                let dst = &mut dconv[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                let drow = |hv: usize| &dp[((bi * h.n_v + hv) * t + ti) * w..][..w];
                for kh in 0..h.n_k {
                    // q then k: the gradient summed over the value heads sharing them, through the normalisation.
                    for (at, part, scale) in [(h.q_at(kh), 0, s), (h.k_at(kh), h.d_k, T::one())] {
                        let x = &src[at..][..h.d_k];
                        gsum.fill(T::zero());
                        for hv in kh * h.rep()..(kh + 1) * h.rep() {
                            for (acc, &d) in gsum.iter_mut().zip(&drow(hv)[part..][..h.d_k]) {
                                *acc += d;
                            }
                        }
                        let nu = inv_norm(x, QK_NORM_EPS, false);
                        let dot = gsum.iter().zip(x).fold(T::zero(), |a, (&g, &x)| a + g * x);
                        for ((d, &g), &x) in dst[at..][..h.d_k].iter_mut().zip(&gsum).zip(x) {
                            *d = scale * nu * (g - x * nu * nu * dot);
                        }
                    }
                }
                for hv in 0..h.n_v {
                    let r = drow(hv);
                    dst[h.v_at(hv)..][..h.d_v].copy_from_slice(&r[2 * h.d_k..][..h.d_v]);
                    let gi = (bi * t + ti) * h.n_v + hv;
                    dg[gi] = r[w - 2];
                    dbeta[gi] = r[w - 1];
                }
            }
        }
        (dconv, dg, dbeta)
    }
}

impl CustomOp3 for DeltaPack {
    fn name(&self) -> &'static str {
        "delta-pack"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, t) = self.dims(l1.dims(), l2.dims(), l3.dims())?;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(c), CpuStorage::F32(g), CpuStorage::F32(be)) => {
                CpuStorage::F32(self.fwd(contiguous(c, l1)?, contiguous(g, l2)?, contiguous(be, l3)?, (b, t)))
            }
            (CpuStorage::F64(c), CpuStorage::F64(g), CpuStorage::F64(be)) => {
                CpuStorage::F64(self.fwd(contiguous(c, l1)?, contiguous(g, l2)?, contiguous(be, l3)?, (b, t)))
            }
            _ => candle_core::bail!("delta pack: the operands must all be f32 or all f64"),
        };
        Ok((out, Shape::from((b, self.heads.n_v, t, self.heads.width()))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, t) = self.dims(l1.dims(), l2.dims(), l3.dims())?;
        super::train_cuda::delta_pack_fwd((s1, l1), (s2, l2), (s3, l3), (b, t), self.heads)
    }

    fn bwd(
        &self,
        conv: &Tensor,
        g: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, t) = self.dims(conv.dims(), g.dims(), beta.dims())?;
        #[cfg(feature = "cuda")]
        if conv.device().is_cuda() {
            let (dc, dg, db) =
                super::train_cuda::delta_pack_bwd(conv, grad, (b, t), self.heads).map_err(candle_core::Error::wrap)?;
            return Ok((Some(dc), Some(dg), Some(db)));
        }
        fn run<T: Real>(
            op: &DeltaPack,
            conv: &Tensor,
            grad: &Tensor,
            bt: (usize, usize),
        ) -> candle_core::Result<(Vec<T>, Vec<T>, Vec<T>)> {
            Ok(op.bwd(&host::<T>(conv)?, &host::<T>(grad)?, bt))
        }
        let (dev, gd) = (conv.device(), g.dims());
        let (dc, dg, db) = match conv.dtype() {
            DType::F32 => {
                let (a, b2, c) = run::<f32>(self, conv, grad, (b, t))?;
                (Tensor::from_vec(a, conv.shape(), dev)?, Tensor::from_vec(b2, gd, dev)?, Tensor::from_vec(c, gd, dev)?)
            }
            DType::F64 => {
                let (a, b2, c) = run::<f64>(self, conv, grad, (b, t))?;
                (Tensor::from_vec(a, conv.shape(), dev)?, Tensor::from_vec(b2, gd, dev)?, Tensor::from_vec(c, gd, dev)?)
            }
            other => candle_core::bail!("delta pack: unsupported dtype {other:?}"),
        };
        Ok((Some(dc), Some(dg), Some(db)))
    }
}

/// The delta rule's packed rows `[B, n_v, T, 2·d_k + d_v + 2]` from the conv output `conv: [B, T, channels]`, `g`
/// and `beta` (`[B, T, n_v]`), all f32 or all f64 (f32 on CUDA), as one graph node (see the module doc).
pub fn delta_pack(conv: &Tensor, g: &Tensor, beta: &Tensor, heads: PackHeads) -> Result<Tensor> {
    if heads.n_k == 0 || heads.n_v % heads.n_k != 0 {
        return Err(Error::Input(format!("delta pack: {heads:?} has no whole number of value heads per key head")));
    }
    Ok(conv.contiguous()?.apply_op3(&g.contiguous()?, &beta.contiguous()?, DeltaPack { heads })?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f64_randn, same};
    use super::*;
    use candle_core::Var;

    /// The composition the deltanet layer runs without the node: split, repeat the key heads, heads first,
    /// normalise and scale, pack.
    fn composed(conv: &Tensor, g: &Tensor, beta: &Tensor, h: PackHeads) -> Tensor {
        let (b, t, _) = conv.dims3().unwrap();
        let key = h.n_k * h.d_k;
        let rep = |x: Tensor| {
            let (b, t, n, d) = x.dims4().unwrap();
            x.unsqueeze(3)
                .unwrap()
                .broadcast_as((b, t, n, h.rep(), d))
                .unwrap()
                .reshape((b, t, n * h.rep(), d))
                .unwrap()
        };
        let q = rep(conv.narrow(2, 0, key).unwrap().reshape((b, t, h.n_k, h.d_k)).unwrap());
        let k = rep(conv.narrow(2, key, key).unwrap().reshape((b, t, h.n_k, h.d_k)).unwrap());
        let v = conv.narrow(2, 2 * key, h.n_v * h.d_v).unwrap().reshape((b, t, h.n_v, h.d_v)).unwrap();
        let first = |x: &Tensor| x.transpose(1, 2).unwrap().contiguous().unwrap();
        let norm = |x: &Tensor| {
            x.broadcast_div(&(x.sqr().unwrap().sum_keepdim(3).unwrap() + QK_NORM_EPS).unwrap().sqrt().unwrap()).unwrap()
        };
        let q = (norm(&first(&q)) * (h.d_k as f64).powf(-0.5)).unwrap();
        let k = norm(&first(&k));
        let (g, beta) = (first(g).unsqueeze(3).unwrap(), first(beta).unsqueeze(3).unwrap());
        Tensor::cat(&[&q, &k, &first(&v), &g, &beta], 3).unwrap()
    }

    #[test]
    fn the_pack_node_equals_the_composition_with_shared_and_own_key_heads() {
        for h in [PackHeads { n_k: 2, n_v: 4, d_k: 5, d_v: 3 }, PackHeads { n_k: 3, n_v: 3, d_k: 4, d_v: 6 }] {
            let (b, t) = (2, 7);
            let conv = Var::from_tensor(&f64_randn(&[b, t, h.channels()], 1.0)).unwrap();
            let g = Var::from_tensor(&f64_randn(&[b, t, h.n_v], 1.0)).unwrap();
            let beta = Var::from_tensor(&f64_randn(&[b, t, h.n_v], 1.0)).unwrap();
            let (c, gt, bt) = (conv.as_tensor(), g.as_tensor(), beta.as_tensor());
            same("delta_pack", &[&conv, &g, &beta], delta_pack(c, gt, bt, h).unwrap(), composed(c, gt, bt, h));
        }
    }

    #[test]
    fn the_pack_node_rejects_operands_that_do_not_fit() {
        let h = PackHeads { n_k: 2, n_v: 4, d_k: 5, d_v: 3 };
        let conv = f64_randn(&[2, 7, h.channels() + 1], 1.0);
        let g = f64_randn(&[2, 7, 4], 1.0);
        assert!(delta_pack(&conv, &g, &g, h).is_err());
        assert!(delta_pack(&f64_randn(&[2, 7, h.channels()], 1.0), &g, &g, PackHeads { n_v: 3, ..h }).is_err());
    }
}
