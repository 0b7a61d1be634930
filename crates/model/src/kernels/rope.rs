//! Rotary position embedding of the leading features of each head.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};

use super::{bwd_by_dtype, host, unary_fwd, Real};
use crate::error::{Error, Result};

/// Rotary tables on the host, `[Bc, T, rot]` with `Bc` 1 or the batch, shared by every layer of a forward pass
/// (cloning is cheap).
#[derive(Debug, Clone)]
pub struct RopeTables {
    cos: Arc<Vec<f64>>,
    sin: Arc<Vec<f64>>,
    table_batch: usize,
    t: usize,
    rot: usize,
}

impl RopeTables {
    /// Tables from row-major `[table_batch, t, rot]` data.
    pub fn new(cos: Vec<f64>, sin: Vec<f64>, (table_batch, t, rot): (usize, usize, usize)) -> Result<Self> {
        if cos.len() != table_batch * t * rot || sin.len() != cos.len() || rot % 2 != 0 {
            return Err(Error::Input(format!(
                "rope tables of {} and {} values do not fit [{table_batch}, {t}, {rot}] with an even rotary width",
                cos.len(),
                sin.len()
            )));
        }
        Ok(Self { cos: Arc::new(cos), sin: Arc::new(sin), table_batch, t, rot })
    }

    /// Tables read from `cos, sin: [B|1, T, rot]` tensors.
    pub fn from_tensors(cos: &Tensor, sin: &Tensor) -> Result<Self> {
        Self::new(host::<f64>(cos)?, host::<f64>(sin)?, cos.dims3()?)
    }
}

struct Rope {
    tables: RopeTables,
}

impl Rope {
    /// Applies the rotation to `[B, H, T, D]` data, or its transpose (the backward pass) when `transpose`.
    /// Forward, per half-pair `j`: `y₁ = x₁·c₁ − x₂·s₁`, `y₂ = x₂·c₂ + x₁·s₂`; transposed: `x₁·c₁ + x₂·s₂`,
    /// `x₂·c₂ − x₁·s₁`.
    fn rotate<T: Real>(&self, x: &[T], dims: &[usize], transpose: bool) -> Vec<T> {
        let (b, h, t, d) = (dims[0], dims[1], dims[2], dims[3]);
        let tables = &self.tables;
        let (rot, half) = (tables.rot, tables.rot / 2);
        let mut out = x.to_vec();
        for bi in 0..b {
            let tb = if tables.table_batch == 1 { 0 } else { bi };
            for hi in 0..h {
                for ti in 0..t {
                    let row = ((bi * h + hi) * t + ti) * d;
                    let tab = (tb * t + ti) * rot;
                    let (src, dst) = (&x[row..row + rot], &mut out[row..row + rot]);
                    for j in 0..half {
                        let (c1, s1) = (T::of(tables.cos[tab + j]), T::of(tables.sin[tab + j]));
                        let (c2, s2) = (T::of(tables.cos[tab + j + half]), T::of(tables.sin[tab + j + half]));
                        let (x1, x2) = (src[j], src[j + half]);
                        if transpose {
                            dst[j] = x1 * c1 + x2 * s2;
                            dst[j + half] = x2 * c2 - x1 * s1;
                        } else {
                            dst[j] = x1 * c1 - x2 * s1;
                            dst[j + half] = x2 * c2 + x1 * s2;
                        }
                    }
                }
            }
        }
        out
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = layout.dims();
        unary_fwd(self.name(), storage, layout, |x, _| self.rotate(x, dims, false), |x, _| self.rotate(x, dims, false))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dims = arg.dims().to_vec();
        let back = |g: &Tensor| -> candle_core::Result<Tensor> {
            bwd_by_dtype(
                arg,
                || Tensor::from_vec(self.rotate(&host::<f32>(g)?, &dims, true), arg.shape(), arg.device()),
                || Tensor::from_vec(self.rotate(&host::<f64>(g)?, &dims, true), arg.shape(), arg.device()),
            )
        };
        back(grad).map(Some)
    }
}

/// Rotates the first `rot` features of `x: [B, H, T, D]` by the tables `cos, sin: [B|1, T, rot]` (the halves
/// rotate against each other, as `x·cos + rotate_half(x)·sin`), one graph node.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_tables(x, &RopeTables::from_tensors(cos, sin)?)
}

/// [`rope`] with tables already on the host.
pub fn rope_tables(x: &Tensor, tables: &RopeTables) -> Result<Tensor> {
    let (b, _, t, d) = x.dims4()?;
    let RopeTables { table_batch: tb, t: tt, rot, .. } = *tables;
    if tt != t || rot > d || (tb != 1 && tb != b) {
        return Err(Error::Input(format!("rope tables [{tb}, {tt}, {rot}] do not fit input {:?}", x.dims())));
    }
    Ok(x.contiguous()?.apply_op1(Rope { tables: tables.clone() })?)
}

/// The rotary embedding with its tables as operands on the device (CUDA): [`rope`]'s node on a GPU, where the
/// tables stay where they were made. The tables get no gradient.
struct RopeOnDevice {
    transpose: bool,
}

impl CustomOp3 for RopeOnDevice {
    fn name(&self) -> &'static str {
        "rope-on-device"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("rope-on-device runs on CUDA; the CPU takes `rope` (tables on the host)")
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        cos: &candle_core::CudaStorage,
        cl: &Layout,
        sin: &candle_core::CudaStorage,
        sl: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::train_cuda::rope((x, xl), (cos, cl), (sin, sl), self.transpose)
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.detach().to_dtype(candle_core::DType::F32)?.contiguous()?;
        let dx = g.apply_op3_no_bwd(cos, sin, &RopeOnDevice { transpose: !self.transpose })?;
        Ok((Some(dx), None, None))
    }
}

/// [`rope`] for training on CUDA (f32 `x`; `cos, sin: [B|1, T, rot]` on its device, converted to f32): one node
/// with the tables left on the device. On the CPU it is [`rope`].
pub fn rope_on_device(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        return rope(x, cos, sin);
    }
    let f32c = |t: &Tensor| -> Result<Tensor> { Ok(t.detach().to_dtype(candle_core::DType::F32)?.contiguous()?) };
    Ok(x.contiguous()?.apply_op3(&f32c(cos)?, &f32c(sin)?, RopeOnDevice { transpose: false })?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f64_randn, same};
    use super::*;
    use candle_core::{Var, D};

    #[test]
    fn rope_matches_cos_sin_and_rotate_half_with_a_pass_through_tail() {
        let (b, h, t, d, rot) = (2, 3, 4, 10, 6);
        let x = Var::from_tensor(&f64_randn(&[b, h, t, d], 1.0)).unwrap();
        let cos = f64_randn(&[b, t, rot], 1.0);
        let sin = f64_randn(&[b, t, rot], 1.0);
        let xt = x.as_tensor();
        let x_rot = xt.narrow(D::Minus1, 0, rot).unwrap();
        let rotated = (x_rot.broadcast_mul(&cos.unsqueeze(1).unwrap()).unwrap()
            + crate::ops::rotate_half(&x_rot).unwrap().broadcast_mul(&sin.unsqueeze(1).unwrap()).unwrap())
        .unwrap();
        let composed = Tensor::cat(&[&rotated, &xt.narrow(D::Minus1, rot, d - rot).unwrap()], D::Minus1).unwrap();
        same("rope", &[&x], rope(xt, &cos, &sin).unwrap(), composed);
        // One table for the whole batch.
        let (c1, s1) = (cos.narrow(0, 0, 1).unwrap(), sin.narrow(0, 0, 1).unwrap());
        let rotated = (x_rot.broadcast_mul(&c1.unsqueeze(1).unwrap()).unwrap()
            + crate::ops::rotate_half(&x_rot).unwrap().broadcast_mul(&s1.unsqueeze(1).unwrap()).unwrap())
        .unwrap();
        let composed = Tensor::cat(&[&rotated, &xt.narrow(D::Minus1, rot, d - rot).unwrap()], D::Minus1).unwrap();
        same("rope, shared table", &[&x], rope(xt, &c1, &s1).unwrap(), composed);
    }
}
