//! The CUDA launches of the training kernels' twins (`train_ops.cu`, compiled to PTX by build.rs): normalisation
//! (plain and with a weight), the scaled and causally masked softmax, `silu(a)·b` and the causal conv with its SiLU,
//! the rotary embedding and the delta rule's input packing, forward and backward, f32, contiguous. The CPU nodes of `norm.rs`, `softmax.rs` and `gated.rs` call these from
//! their `cuda_fwd` and, for CUDA tensors, from their backward passes, so one graph node stays one node on a GPU.
//!
//! Launching a kernel of our own needs `unsafe` (device allocations the kernels fill, the FFI launch); as in the other
//! `*_cuda.rs` modules this one allows it.
#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{DType, Layout, Shape, Tensor};

use super::cuda_views::{cuda_device, storage_view, with_views, wrap};
use super::PackHeads;
use crate::error::Result;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/train_ops.ptx"));
const MODULE: &str = "sgvlm_train_ops";
const WHAT: &str = "training kernel";
/// Threads of a row kernel's block (whole warps; the kernels' block sums take at most 32 warps).
const ROW_THREADS: u32 = 128;
/// Threads of an elementwise kernel's block, and the most blocks it gets (they stride over the rest).
const ELEM_THREADS: u32 = 256;
const ELEM_BLOCKS: usize = 1024;
/// Threads (channels) and rows of a block of the conv backward, which sums its rows' tap gradients before adding.
const CONV_THREADS: u32 = 128;
const CONV_ROWS: usize = 64;

fn rows_cfg(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 32 * 4 }
}

fn elem_cfg(total: usize) -> LaunchConfig {
    let blocks = total.div_ceil(ELEM_THREADS as usize).clamp(1, ELEM_BLOCKS) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ELEM_THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn i32_of(n: usize) -> candle_core::Result<i32> {
    i32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("{WHAT} (CUDA): size {n} over i32")))
}

/// `(rows, n)` of a layout whose last dimension is `n`.
fn rows_of(layout: &Layout) -> (usize, usize) {
    let n = layout.dims().last().copied().unwrap_or(1).max(1);
    (layout.shape().elem_count() / n, n)
}

/// Contiguous f32 copies (or the tensors themselves when already so).
fn f32s<const N: usize>(ts: [&Tensor; N]) -> Result<[Tensor; N]> {
    let mut out = Vec::with_capacity(N);
    for t in ts {
        out.push(t.detach().to_dtype(DType::F32)?.contiguous()?);
    }
    Ok(out.try_into().unwrap_or_else(|_| unreachable!("N tensors in, N out")))
}

/// Normalisation forward ([`super::norm`]): `x / sqrt(c·Σx² + eps)` per row, times `w` (or `1 + w`) when given.
pub(super) fn norm_fwd(
    (s, l): (&CudaStorage, &Layout),
    w: Option<(&CudaStorage, &Layout)>,
    eps: f64,
    mean: bool,
    plus_one: bool,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s.device;
    let (rows, n) = rows_of(l);
    let x = storage_view(s, l, WHAT)?;
    let w = w.map(|(s, l)| storage_view(s, l, WHAT)).transpose()?;
    let y = dev.alloc_zeros::<f32>((rows * n).max(1))?;
    if rows > 0 {
        let f = dev.get_or_load_custom_func("norm_fwd_f32", MODULE, PTX)?;
        let (ni, mi, pi, e, null) = (i32_of(n)?, mean as i32, plus_one as i32, eps as f32, 0u64);
        let mut b = f.builder();
        b.arg(&x);
        match &w {
            Some(w) => b.arg(w),
            None => b.arg(&null),
        };
        b.arg(&y).arg(&ni).arg(&e).arg(&mi).arg(&pi);
        // SAFETY: argument types and order match the kernel's signature (a null pointer as a 64-bit zero).
        unsafe { b.launch(rows_cfg(rows)) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), l.shape().clone()))
}

/// Normalisation backward: `∂x` and, with a weight, `∂w` (f32 CUDA tensors).
pub(super) fn norm_bwd(
    x: &Tensor,
    w: Option<&Tensor>,
    g: &Tensor,
    eps: f64,
    mean: bool,
    plus_one: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let dev = cuda_device(x, WHAT)?;
    let [x, g] = f32s([x, g])?;
    let w = w.map(|w| f32s([w]).map(|[w]| w)).transpose()?;
    let (rows, n) = rows_of(x.layout());
    let dx = dev.alloc_zeros::<f32>(x.elem_count().max(1))?;
    let dw = dev.alloc_zeros::<f32>(n)?;
    if rows > 0 {
        let f = dev.get_or_load_custom_func("norm_bwd_f32", MODULE, PTX)?;
        let (ni, mi, pi, e, null) = (i32_of(n)?, mean as i32, plus_one as i32, eps as f32, 0u64);
        let ts: Vec<&Tensor> = [&x, &g].into_iter().chain(w.as_ref()).collect();
        with_views(&ts, WHAT, |v| {
            let mut b = f.builder();
            b.arg(&v[0]);
            match v.get(2) {
                Some(w) => b.arg(w),
                None => b.arg(&null),
            };
            b.arg(&v[1]).arg(&dx);
            match v.get(2) {
                Some(_) => b.arg(&dw),
                None => b.arg(&null),
            };
            b.arg(&ni).arg(&e).arg(&mi).arg(&pi);
            // SAFETY: as above.
            unsafe { b.launch(rows_cfg(rows)) }.w()?;
            Ok(())
        })?;
    }
    let dw = w.as_ref().map(|w| wrap(dw, w.dims(), dev));
    Ok((wrap(dx, x.dims(), dev), dw))
}

/// The softmax's mask argument: the past length, or -1 for none.
fn past_arg(past: Option<usize>) -> candle_core::Result<i32> {
    past.map_or(Ok(-1), i32_of)
}

/// `softmax(scale·x)` per row ([`super::softmax`]); `rows` = rows per score matrix, `past` the causal mask's.
pub(super) fn softmax_fwd(
    s: &CudaStorage,
    l: &Layout,
    rows: usize,
    past: Option<usize>,
    scale: f64,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s.device;
    let (total_rows, n) = rows_of(l);
    let x = storage_view(s, l, WHAT)?;
    let y = dev.alloc_zeros::<f32>((total_rows * n).max(1))?;
    if total_rows > 0 {
        let f = dev.get_or_load_custom_func("softmax_fwd_f32", MODULE, PTX)?;
        let (ni, ri, pi, sc) = (i32_of(n)?, i32_of(rows.max(1))?, past_arg(past)?, scale as f32);
        let mut b = f.builder();
        b.arg(&x).arg(&y).arg(&ni).arg(&ri).arg(&pi).arg(&sc);
        // SAFETY: as above.
        unsafe { b.launch(rows_cfg(total_rows)) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), l.shape().clone()))
}

/// The softmax's backward from its output `p` and the output gradient `g`.
pub(super) fn softmax_bwd(p: &Tensor, g: &Tensor, rows: usize, past: Option<usize>, scale: f64) -> Result<Tensor> {
    let dev = cuda_device(p, WHAT)?;
    let [p, g] = f32s([p, g])?;
    let (total_rows, n) = rows_of(p.layout());
    let dx = dev.alloc_zeros::<f32>(p.elem_count().max(1))?;
    if total_rows > 0 {
        let f = dev.get_or_load_custom_func("softmax_bwd_f32", MODULE, PTX)?;
        let (ni, ri, pi, sc) = (i32_of(n)?, i32_of(rows.max(1))?, past_arg(past)?, scale as f32);
        with_views(&[&p, &g], WHAT, |v| {
            let mut b = f.builder();
            b.arg(&v[0]).arg(&v[1]).arg(&dx).arg(&ni).arg(&ri).arg(&pi).arg(&sc);
            // SAFETY: as above.
            unsafe { b.launch(rows_cfg(total_rows)) }.w()?;
            Ok(())
        })?;
    }
    Ok(wrap(dx, p.dims(), dev))
}

/// `silu(a)·b` elementwise.
pub(super) fn silu_mul_fwd(
    (s1, l1): (&CudaStorage, &Layout),
    (s2, l2): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let total = l1.shape().elem_count();
    let (a, b) = (storage_view(s1, l1, WHAT)?, storage_view(s2, l2, WHAT)?);
    let y = dev.alloc_zeros::<f32>(total.max(1))?;
    if total > 0 {
        let f = dev.get_or_load_custom_func("silu_mul_fwd_f32", MODULE, PTX)?;
        let n = i32_of(total)?;
        let mut l = f.builder();
        l.arg(&a).arg(&b).arg(&y).arg(&n);
        // SAFETY: as above.
        unsafe { l.launch(elem_cfg(total)) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), l1.shape().clone()))
}

/// `(∂a, ∂b)` of `silu(a)·b`.
pub(super) fn silu_mul_bwd(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let dev = cuda_device(a, WHAT)?;
    let [a, b, g] = f32s([a, b, g])?;
    let total = a.elem_count();
    let (da, db) = (dev.alloc_zeros::<f32>(total.max(1))?, dev.alloc_zeros::<f32>(total.max(1))?);
    if total > 0 {
        let f = dev.get_or_load_custom_func("silu_mul_bwd_f32", MODULE, PTX)?;
        let n = i32_of(total)?;
        with_views(&[&a, &b, &g], WHAT, |v| {
            let mut l = f.builder();
            l.arg(&v[0]).arg(&v[1]).arg(&v[2]).arg(&da).arg(&db).arg(&n);
            // SAFETY: as above.
            unsafe { l.launch(elem_cfg(total)) }.w()?;
            Ok(())
        })?;
    }
    Ok((wrap(da, a.dims(), dev), wrap(db, b.dims(), dev)))
}

/// `(B, T, C, K)` as kernel arguments.
fn conv_args(x: &[usize], k: usize) -> candle_core::Result<[i32; 4]> {
    Ok([i32_of(x[0])?, i32_of(x[1])?, i32_of(x[2])?, i32_of(k)?])
}

/// `silu(causal_conv(x))` for `x: [B, T, C]` and `taps: [K, C]` ([`super::conv_silu`]).
pub(super) fn conv_silu_fwd(
    (s1, l1): (&CudaStorage, &Layout),
    (s2, l2): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let total = l1.shape().elem_count();
    let (x, taps) = (storage_view(s1, l1, WHAT)?, storage_view(s2, l2, WHAT)?);
    let y = dev.alloc_zeros::<f32>(total.max(1))?;
    if total > 0 {
        let f = dev.get_or_load_custom_func("conv_silu_fwd_f32", MODULE, PTX)?;
        let [b, t, c, k] = conv_args(l1.dims(), l2.dims()[0])?;
        let mut l = f.builder();
        l.arg(&x).arg(&taps).arg(&y).arg(&b).arg(&t).arg(&c).arg(&k);
        // SAFETY: as above.
        unsafe { l.launch(elem_cfg(total)) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), l1.shape().clone()))
}

/// `(∂x, ∂taps)` of [`conv_silu_fwd`].
pub(super) fn conv_silu_bwd(x: &Tensor, taps: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let dev = cuda_device(x, WHAT)?;
    let [x, taps, g] = f32s([x, taps, g])?;
    let (dims, k) = (x.dims().to_vec(), taps.dim(0)?);
    let total = x.elem_count();
    let dx = dev.alloc_zeros::<f32>(total.max(1))?;
    let dtaps = dev.alloc_zeros::<f32>(taps.elem_count().max(1))?;
    if total > 0 {
        // SAFETY: the first kernel writes every element of `dpre` before the second reads it.
        let dpre: CudaSlice<f32> = unsafe { dev.alloc::<f32>(total)? };
        let [b, t, c, ki] = conv_args(&dims, k)?;
        let (pre_fn, bwd_fn) = (
            dev.get_or_load_custom_func("conv_silu_dpre_f32", MODULE, PTX)?,
            dev.get_or_load_custom_func("conv_silu_bwd_f32", MODULE, PTX)?,
        );
        let rows_per_block = i32_of(CONV_ROWS)?;
        let cfg = LaunchConfig {
            grid_dim: (
                dims[2].div_ceil(CONV_THREADS as usize) as u32,
                (dims[0] * dims[1]).div_ceil(CONV_ROWS) as u32,
                1,
            ),
            block_dim: (CONV_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        with_views(&[&x, &taps, &g], WHAT, |v| {
            let mut l = pre_fn.builder();
            l.arg(&v[0]).arg(&v[1]).arg(&v[2]).arg(&dpre).arg(&b).arg(&t).arg(&c).arg(&ki);
            // SAFETY: as above.
            unsafe { l.launch(elem_cfg(total)) }.w()?;
            let mut l = bwd_fn.builder();
            l.arg(&v[0]).arg(&v[1]).arg(&dpre).arg(&dx).arg(&dtaps);
            l.arg(&b).arg(&t).arg(&c).arg(&ki).arg(&rows_per_block);
            // SAFETY: as above.
            unsafe { l.launch(cfg) }.w()?;
            Ok(())
        })?;
    }
    Ok((wrap(dx, &dims, dev), wrap(dtaps, taps.dims(), dev)))
}

/// The rotary embedding of `x: [B, H, T, D]` by `cos, sin: [B|1, T, rot]` ([`super::rope`]), or its transpose (the
/// backward pass, applied to the output gradient).
pub(super) fn rope(
    (s, l): (&CudaStorage, &Layout),
    (cs, cl): (&CudaStorage, &Layout),
    (ss, sl): (&CudaStorage, &Layout),
    transpose: bool,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s.device;
    let (x, cos, sin) = (storage_view(s, l, WHAT)?, storage_view(cs, cl, WHAT)?, storage_view(ss, sl, WHAT)?);
    let [b, h, t, d] = l.dims() else {
        candle_core::bail!("rope (CUDA): expected [B, H, T, D], got {:?}", l.dims());
    };
    let [tb, tt, rot] = cl.dims() else {
        candle_core::bail!("rope (CUDA): expected tables [B|1, T, rot], got {:?}", cl.dims());
    };
    if tt != t || rot > d || rot % 2 != 0 || (*tb != 1 && tb != b) || sl.dims() != cl.dims() {
        candle_core::bail!("rope (CUDA): tables {:?} do not fit input {:?}", cl.dims(), l.dims());
    }
    let total = l.shape().elem_count();
    let y = dev.alloc_zeros::<f32>(total.max(1))?;
    if total > 0 {
        let f = dev.get_or_load_custom_func("rope_f32", MODULE, PTX)?;
        let (bi, hi, ti, di) = (i32_of(*b)?, i32_of(*h)?, i32_of(*t)?, i32_of(*d)?);
        let (ri, tbi, tr) = (i32_of(*rot)?, i32_of(*tb)?, transpose as i32);
        let mut lb = f.builder();
        lb.arg(&x).arg(&cos).arg(&sin).arg(&y).arg(&bi).arg(&hi).arg(&ti).arg(&di).arg(&ri).arg(&tbi).arg(&tr);
        // SAFETY: as above.
        unsafe { lb.launch(elem_cfg(total)) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), l.shape().clone()))
}

/// `(B, T, n_k, n_v, d_k, d_v)` as kernel arguments.
fn pack_args((b, t): (usize, usize), h: PackHeads) -> candle_core::Result<[i32; 6]> {
    Ok([i32_of(b)?, i32_of(t)?, i32_of(h.n_k)?, i32_of(h.n_v)?, i32_of(h.d_k)?, i32_of(h.d_v)?])
}

/// The delta rule's packed rows from the conv output, `g` and `beta` ([`super::delta_pack`]).
pub(super) fn delta_pack_fwd(
    (s1, l1): (&CudaStorage, &Layout),
    (s2, l2): (&CudaStorage, &Layout),
    (s3, l3): (&CudaStorage, &Layout),
    (b, t): (usize, usize),
    h: PackHeads,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = &s1.device;
    let (conv, g, beta) = (storage_view(s1, l1, WHAT)?, storage_view(s2, l2, WHAT)?, storage_view(s3, l3, WHAT)?);
    let width = 2 * h.d_k + h.d_v + 2;
    let rows = b * h.n_v * t;
    let out = dev.alloc_zeros::<f32>((rows * width).max(1))?;
    if rows > 0 {
        let f = dev.get_or_load_custom_func("delta_pack_fwd_f32", MODULE, PTX)?;
        let [bi, ti, nk, nv, dk, dv] = pack_args((b, t), h)?;
        let mut l = f.builder();
        l.arg(&conv).arg(&g).arg(&beta).arg(&out).arg(&bi).arg(&ti).arg(&nk).arg(&nv).arg(&dk).arg(&dv);
        let cfg = LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (32, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: as above.
        unsafe { l.launch(cfg) }.w()?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), Shape::from((b, h.n_v, t, width))))
}

/// `(∂conv, ∂g, ∂β)` of [`delta_pack_fwd`] from the packed rows' gradient.
pub(super) fn delta_pack_bwd(
    conv: &Tensor,
    grad: &Tensor,
    (b, t): (usize, usize),
    h: PackHeads,
) -> Result<(Tensor, Tensor, Tensor)> {
    let dev = cuda_device(conv, WHAT)?;
    let [conv, grad] = f32s([conv, grad])?;
    let dconv = dev.alloc_zeros::<f32>(conv.elem_count().max(1))?;
    let (dg, dbeta) =
        (dev.alloc_zeros::<f32>((b * t * h.n_v).max(1))?, dev.alloc_zeros::<f32>((b * t * h.n_v).max(1))?);
    let blocks = b * t * h.n_k;
    if blocks > 0 {
        let f = dev.get_or_load_custom_func("delta_pack_bwd_f32", MODULE, PTX)?;
        let [bi, ti, nk, nv, dk, dv] = pack_args((b, t), h)?;
        let cfg = LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (32, 1, 1), shared_mem_bytes: 0 };
        with_views(&[&conv, &grad], WHAT, |v| {
            let mut l = f.builder();
            l.arg(&v[0]).arg(&v[1]).arg(&dconv).arg(&dg).arg(&dbeta);
            l.arg(&bi).arg(&ti).arg(&nk).arg(&nv).arg(&dk).arg(&dv);
            // SAFETY: as above.
            unsafe { l.launch(cfg) }.w()?;
            Ok(())
        })?;
    }
    let gd = [b, t, h.n_v];
    Ok((wrap(dconv, conv.dims(), dev), wrap(dg, &gd, dev), wrap(dbeta, &gd, dev)))
}

/// The AdamW moments `[m; v]` (contiguous elements `range` of `mv`) from the gradient, in place ([`super::adamw`]).
pub(super) fn adamw_moments(
    (mv, (a, b)): (&mut CudaStorage, (usize, usize)),
    (g, gl): (&CudaStorage, &Layout),
    s: &super::adamw::AdamWStep,
) -> candle_core::Result<()> {
    let n = (b - a) / 2;
    let dev = mv.device.clone();
    let g = storage_view(g, gl, WHAT)?;
    let mut mv = mv.as_cuda_slice_mut::<f32>()?.slice_mut(a..b);
    let f = dev.get_or_load_custom_func("adamw_moments_f32", MODULE, PTX)?;
    let (ni, use_scale) = (i32_of(n)?, i32::from(s.grad_scale != 1.0));
    let (b1, c1, b2, c2, sc) =
        (s.beta1 as f32, (1.0 - s.beta1) as f32, s.beta2 as f32, (1.0 - s.beta2) as f32, s.grad_scale as f32);
    let mut l = f.builder();
    l.arg(&mut mv).arg(&g).arg(&ni).arg(&b1).arg(&c1).arg(&b2).arg(&c2).arg(&sc).arg(&use_scale);
    // SAFETY: the kernel reads n gradient values and reads and writes the 2 n moments of these views.
    unsafe { l.launch(elem_cfg(n)) }.w()?;
    Ok(())
}

/// The parameter (contiguous elements `range`) from the updated moments, in place ([`super::adamw`]).
pub(super) fn adamw_apply(
    (p, (a, b)): (&mut CudaStorage, (usize, usize)),
    (mv, ml): (&CudaStorage, &Layout),
    s: &super::adamw::AdamWStep,
) -> candle_core::Result<()> {
    let n = b - a;
    let dev = p.device.clone();
    let mv = storage_view(mv, ml, WHAT)?;
    let mut p = p.as_cuda_slice_mut::<f32>()?.slice_mut(a..b);
    let f = dev.get_or_load_custom_func("adamw_apply_f32", MODULE, PTX)?;
    let (ni, decay) = (i32_of(n)?, i32::from(s.keep != 1.0));
    let (keep, lr, r1, r2, eps) = (s.keep as f32, s.lr as f32, s.inv_bias1 as f32, s.inv_bias2 as f32, s.eps as f32);
    let mut l = f.builder();
    l.arg(&mut p).arg(&mv).arg(&ni).arg(&keep).arg(&decay).arg(&lr).arg(&r1).arg(&r2).arg(&eps);
    // SAFETY: the kernel reads the 2 n moments and reads and writes the n parameter values of these views.
    unsafe { l.launch(elem_cfg(n)) }.w()?;
    Ok(())
}
