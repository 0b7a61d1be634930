//! CPU training kernels: each is one graph node with a hand-written backward pass.
//!
//! candle's autograd gives every op of a composition its own node, and for every node it allocates, zero-fills and
//! adds a gradient buffer for each operand — constants included (a causal mask, RoPE tables). At the demo's width
//! (a hidden size of 96, a few thousand tokens per batch) that bookkeeping, not the arithmetic, is most of a
//! training step. These kernels replace the compositions on the CPU when a gradient is wanted; the values are the
//! compositions' up to rounding, and the tests below check values and gradients against them in f64.
//!
//! * [`normalize`]: `x / sqrt(c·Σx² + eps)` over the last dimension (RMS with `c = 1/n`, L2 with `c = 1`);
//! * [`rms_norm`]: RMS normalisation times a weight (`w` or Gemma's `1 + w`), gradient for both;
//! * [`softmax`]: `softmax(scale·x)` over the last dimension, optionally with the causal mask of a `[.., T, past+T]`
//!   score block applied inside (masked entries are exactly 0, as with an additive `−∞`);
//! * [`rope`]: rotary embedding of the first `rot` features of `[B, H, T, D]` with `[B|1, T, rot]` tables;
//! * [`silu_mul`]: `silu(a)⊙b`, and [`conv_silu`]: Gated DeltaNet's causal depthwise convolution and its SiLU.
//!
//! No crate offers these for candle's CPU backend (candle-nn's fused kernels have no backward); the loops are ours.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use crate::error::Result;

/// The float types the kernels run in (f64 for the gradient checks).
pub(crate) trait Real: candle_core::WithDType {
    fn of(x: f64) -> Self;
    fn exp_(self) -> Self;
    fn sqrt_(self) -> Self;
    fn max_(self, other: Self) -> Self;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn exp_(self) -> Self {
        self.exp()
    }
    fn sqrt_(self) -> Self {
        self.sqrt()
    }
    fn max_(self, other: Self) -> Self {
        self.max(other)
    }
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn exp_(self) -> Self {
        self.exp()
    }
    fn sqrt_(self) -> Self {
        self.sqrt()
    }
    fn max_(self, other: Self) -> Self {
        self.max(other)
    }
}

/// Whether [`softmax`], [`normalize`], [`rms_norm`] and [`rope`] run on `x`: a CPU f32/f64 tensor.
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

fn contiguous<'a, T>(s: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("kernel input must be contiguous"),
    }
}

/// The data of `t` (detached, contiguous) as a vector of `T`.
fn host<T: Real>(t: &Tensor) -> candle_core::Result<Vec<T>> {
    t.detach().to_dtype(T::DTYPE)?.flatten_all()?.to_vec1()
}

/// Runs `f32`/`f64` on a storage's data, wrapping the result as storage of the same dtype.
fn by_dtype(
    name: &str,
    storage: &CpuStorage,
    f32: impl FnOnce(&[f32]) -> candle_core::Result<Vec<f32>>,
    f64: impl FnOnce(&[f64]) -> candle_core::Result<Vec<f64>>,
) -> candle_core::Result<CpuStorage> {
    Ok(match storage {
        CpuStorage::F32(s) => CpuStorage::F32(f32(s)?),
        CpuStorage::F64(s) => CpuStorage::F64(f64(s)?),
        other => {
            candle_core::bail!("{name}: unsupported dtype {:?}", candle_core::backend::BackendStorage::dtype(other))
        }
    })
}

/// Runs `f32`/`f64` for a tensor's dtype in a backward pass.
fn bwd_by_dtype(
    like: &Tensor,
    f32: impl FnOnce() -> candle_core::Result<Tensor>,
    f64: impl FnOnce() -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    match like.dtype() {
        DType::F32 => f32(),
        DType::F64 => f64(),
        other => candle_core::bail!("kernel backward: unsupported dtype {other:?}"),
    }
}

fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------------------------------------------
// Normalisation

/// `1 / sqrt(c·Σx² + eps)` of one row.
fn inv_norm<T: Real>(x: &[T], eps: f64, mean: bool) -> T {
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
        let n = last_dim(layout);
        let out = by_dtype(
            self.name(),
            storage,
            |s| Ok(self.fwd(contiguous(s, layout)?, n)),
            |s| Ok(self.fwd(contiguous(s, layout)?, n)),
        )?;
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
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
        if l2.dims().len() != 1 || l2.dims()[0] != last_dim(l1) {
            candle_core::bail!("rms norm: weight {:?} does not match input {:?}", l2.dims(), l1.dims());
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                CpuStorage::F32(self.fwd(contiguous(x, l1)?, contiguous(w, l2)?))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w)) => {
                CpuStorage::F64(self.fwd(contiguous(x, l1)?, contiguous(w, l2)?))
            }
            _ => candle_core::bail!("rms norm: input and weight must both be f32 or both f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = match x.dtype() {
            DType::F32 => self.bwd::<f32>(x, w, grad)?,
            DType::F64 => self.bwd::<f64>(x, w, grad)?,
            other => candle_core::bail!("rms norm backward: unsupported dtype {other:?}"),
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// RMS normalisation over the last dimension times `w` (`1 + w` when `plus_one`), one graph node with gradients for
/// `x` and `w` (which must share `x`'s dtype).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, plus_one: bool) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps, plus_one })?)
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax

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
        let n = last_dim(layout);
        let out = by_dtype(
            self.name(),
            storage,
            |s| Ok(self.fwd(contiguous(s, layout)?, n)),
            |s| Ok(self.fwd(contiguous(s, layout)?, n)),
        )?;
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        bwd_by_dtype(res, || self.bwd::<f32>(res, grad), || self.bwd::<f64>(res, grad)).map(Some)
    }
}

/// `softmax(scale·x)` over the last dimension, one graph node. With `causal = Some(past)`, `x` is a
/// `[.., T, past+T]` block of scores and query `i` sees keys `0..=past+i` only (the others get probability 0).
pub fn softmax(x: &Tensor, scale: f64, causal: Option<usize>) -> Result<Tensor> {
    let rows = if x.rank() >= 2 { x.dim(x.rank() - 2)? } else { 1 };
    Ok(x.contiguous()?.apply_op1(Softmax { scale, causal, rows })?)
}

// ---------------------------------------------------------------------------------------------------------------
// Rotary embedding

struct Rope {
    /// `[Bc, T, rot]` tables, `Bc` 1 or the batch.
    cos: Vec<f64>,
    sin: Vec<f64>,
    table_batch: usize,
    rot: usize,
}

impl Rope {
    /// Applies the rotation to `[B, H, T, D]` data, or its transpose (the backward pass) when `transpose`.
    /// Forward, per half-pair `j`: `y₁ = x₁·c₁ − x₂·s₁`, `y₂ = x₂·c₂ + x₁·s₂`; transposed: `x₁·c₁ + x₂·s₂`,
    /// `x₂·c₂ − x₁·s₁`.
    fn rotate<T: Real>(&self, x: &[T], dims: &[usize], transpose: bool) -> Vec<T> {
        let (b, h, t, d) = (dims[0], dims[1], dims[2], dims[3]);
        let (rot, half) = (self.rot, self.rot / 2);
        let mut out = x.to_vec();
        for bi in 0..b {
            let tb = if self.table_batch == 1 { 0 } else { bi };
            for hi in 0..h {
                for ti in 0..t {
                    let row = ((bi * h + hi) * t + ti) * d;
                    let tab = (tb * t + ti) * rot;
                    let (src, dst) = (&x[row..row + rot], &mut out[row..row + rot]);
                    for j in 0..half {
                        let (c1, s1) = (T::of(self.cos[tab + j]), T::of(self.sin[tab + j]));
                        let (c2, s2) = (T::of(self.cos[tab + j + half]), T::of(self.sin[tab + j + half]));
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
        let dims = layout.dims().to_vec();
        let out = by_dtype(
            self.name(),
            storage,
            |s| Ok(self.rotate(contiguous(s, layout)?, &dims, false)),
            |s| Ok(self.rotate(contiguous(s, layout)?, &dims, false)),
        )?;
        Ok((out, layout.shape().clone()))
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
    let (b, _, t, d) = x.dims4()?;
    let (tb, tt, rot) = cos.dims3()?;
    if tt != t || rot > d || rot % 2 != 0 || (tb != 1 && tb != b) {
        return Err(crate::error::Error::Input(format!(
            "rope tables {:?} do not fit input {:?}",
            cos.dims(),
            x.dims()
        )));
    }
    let op = Rope { cos: host::<f64>(cos)?, sin: host::<f64>(sin)?, table_batch: tb, rot };
    Ok(x.contiguous()?.apply_op1(op)?)
}

// ---------------------------------------------------------------------------------------------------------------
// Gated activations and the causal depthwise convolution

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (T::zero() - x).exp_())
}

/// `silu'(x) = σ(x)·(1 + x·(1 − σ(x)))`.
fn silu_grad<T: Real>(x: T) -> T {
    let s = sigmoid(x);
    s * (T::one() + x * (T::one() - s))
}

fn same_storage<'a, T>(a: &'a [T], la: &Layout, b: &'a [T], lb: &Layout) -> candle_core::Result<(&'a [T], &'a [T])> {
    if la.dims() != lb.dims() {
        candle_core::bail!("kernel operands differ in shape: {:?} and {:?}", la.dims(), lb.dims());
    }
    Ok((contiguous(a, la)?, contiguous(b, lb)?))
}

struct SiluMul;

impl SiluMul {
    fn fwd<T: Real>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().zip(b).map(|(&a, &b)| a * sigmoid(a) * b).collect()
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
        let out = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let (a, b) = same_storage(a, l1, b, l2)?;
                CpuStorage::F32(Self::fwd(a, b))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                let (a, b) = same_storage(a, l1, b, l2)?;
                CpuStorage::F64(Self::fwd(a, b))
            }
            _ => candle_core::bail!("silu-mul: operands must both be f32 or both f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (da, db) = match a.dtype() {
            DType::F32 => Self::bwd::<f32>(a, b, grad)?,
            DType::F64 => Self::bwd::<f64>(a, b, grad)?,
            other => candle_core::bail!("silu-mul backward: unsupported dtype {other:?}"),
        };
        Ok((Some(da), Some(db)))
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
        let (xd, wd) = (l1.dims(), l2.dims());
        if xd.len() != 3 || wd.len() != 2 || wd[1] != xd[2] || wd[0] == 0 {
            candle_core::bail!("causal conv: input {xd:?} and taps {wd:?} do not fit ([B, T, C] and [K, C])");
        }
        let (dims, k) = ((xd[0], xd[1], xd[2]), wd[0]);
        fn act<T: Real>(pre: Vec<T>) -> Vec<T> {
            pre.into_iter().map(|p| p * sigmoid(p)).collect()
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                CpuStorage::F32(act(Self::pre(contiguous(x, l1)?, contiguous(w, l2)?, dims, k)))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w)) => {
                CpuStorage::F64(act(Self::pre(contiguous(x, l1)?, contiguous(w, l2)?, dims, k)))
            }
            _ => candle_core::bail!("causal conv: input and taps must both be f32 or both f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        taps: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = match x.dtype() {
            DType::F32 => Self::bwd::<f32>(x, taps, grad)?,
            DType::F64 => Self::bwd::<f64>(x, taps, grad)?,
            other => candle_core::bail!("causal conv backward: unsupported dtype {other:?}"),
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// Causal depthwise convolution of `x: [B, T, C]` with `taps: [K, C]` (zeros before the start), then SiLU; one
/// graph node with gradients for both.
pub fn conv_silu(x: &Tensor, taps: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&taps.contiguous()?, ConvSilu)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn f64_randn(shape: &[usize], std: f64) -> Tensor {
        Tensor::randn(0f64, std, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Values and gradients (for every variable) of `fused` and `composed` agree to 1e-10 in f64.
    fn same(name: &str, vars: &[&Var], fused: Tensor, composed: Tensor) {
        assert!(max_diff(&fused, &composed) < 1e-10, "{name}: values differ by {}", max_diff(&fused, &composed));
        let seed = f64_randn(fused.dims(), 1.0);
        let ga = (fused * &seed).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (composed * &seed).unwrap().sum_all().unwrap().backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let (a, b) = (ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
            let scale: f64 = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
            assert!(scale > 1e-6, "{name}: the reference gradient of input {i} is empty");
            assert!(max_diff(a, b) < 1e-10 * scale.max(1.0), "{name}: gradient {i} differs by {}", max_diff(a, b));
        }
    }

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

    #[test]
    fn kernels_reject_what_they_cannot_run() {
        let x = f64_randn(&[2, 1, 3, 4], 1.0);
        let bad = f64_randn(&[2, 5, 4], 1.0);
        assert!(rope(&x, &bad, &bad).is_err());
        assert!(rms_norm(&x, &f64_randn(&[3], 1.0), 1e-6, false).is_err());
        let mixed = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        assert!(rms_norm(&x, &mixed, 1e-6, false).is_err());
        assert!(silu_mul(&x, &f64_randn(&[2, 1, 3, 5], 1.0)).is_err());
        assert!(conv_silu(&f64_randn(&[2, 3, 4], 1.0), &f64_randn(&[2, 5], 1.0)).is_err());
    }
}
