//! The CUDA launches of the fused decode ops ([`super::decode_ops`]; kernels in `decode_ops.cu`, compiled to PTX by
//! build.rs), for f32 and bf16 activations. Each op is one launch and one output allocation.
//!
//! Launching a kernel of our own needs `unsafe` (device allocations the kernels fill, the FFI launch); as in the other
//! `*_cuda.rs` modules this one allows it.
#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{DType, Tensor, D};

use super::cuda_views::{cuda_device, with_typed_views, with_views, wrap_typed};
use super::decode_ops::AttnHeads;
use crate::error::{Error, Result};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/decode_ops.ptx"));
const MODULE: &str = "sgvlm_decode_ops";
const WHAT: &str = "fused decode op";
/// Threads of a row kernel's block (whole warps; the block sums take at most 32 warps).
const ROW_THREADS: u32 = 256;
/// Threads of an elementwise kernel's block, and the most blocks it gets (they stride over the rest).
const ELEM_THREADS: u32 = 256;
const ELEM_BLOCKS: usize = 1024;

fn rows_cfg(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows.max(1) as u32, 1, 1), block_dim: (ROW_THREADS, 1, 1), shared_mem_bytes: 32 * 4 }
}

fn i32_of(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Input(format!("{WHAT} (CUDA): size {n} over i32")))
}

/// The kernel name for activations of `dtype`.
fn name(kernel: &str, dtype: DType) -> Result<String> {
    match dtype {
        DType::F32 => Ok(format!("{kernel}_f32")),
        DType::BF16 => Ok(format!("{kernel}_bf16")),
        other => Err(Error::Input(format!("{WHAT} (CUDA): {other:?} activations (f32 or bf16 only)"))),
    }
}

pub(super) fn add_rms_norm(x: &Tensor, h: Option<&Tensor>, w: &Tensor, eps: f64) -> Result<(Option<Tensor>, Tensor)> {
    match x.dtype() {
        DType::BF16 => add_rms_norm_t::<half::bf16>(x, h, w, eps),
        _ => add_rms_norm_t::<f32>(x, h, w, eps),
    }
}

fn add_rms_norm_t<T: CudaDType + DeviceRepr>(
    x: &Tensor,
    h: Option<&Tensor>,
    w: &Tensor,
    eps: f64,
) -> Result<(Option<Tensor>, Tensor)> {
    let dev = cuda_device(x, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("add_rms_norm", x.dtype())?, MODULE, PTX)?;
    let n = x.dim(D::Minus1)?;
    let total = x.elem_count();
    let rows = total / n.max(1);
    let x = x.contiguous()?;
    let h = h.map(|h| h.contiguous()).transpose()?;
    let w = w.contiguous()?;
    // SAFETY: the kernel writes every element of `y`, and of `sum` with `h` (without, it never touches `sum`, a
    // placeholder of one element).
    let sum_len = if h.is_some() { total.max(1) } else { 1 };
    let (sum, y) = unsafe { (dev.alloc::<T>(sum_len)?, dev.alloc::<T>(total.max(1))?) };
    let (has_h, ni, e) = (i32::from(h.is_some()), i32_of(n)?, eps as f32);
    let ins = [&x, h.as_ref().unwrap_or(&x)];
    with_typed_views::<T, _>(&ins, WHAT, |v| {
        with_views(&[&w], WHAT, |wv| {
            let mut l = func.builder();
            l.arg(&v[0]).arg(&v[1]).arg(&has_h).arg(&wv[0]).arg(&sum).arg(&y).arg(&ni).arg(&e);
            // SAFETY: argument types and order match the kernel's signature; sizes were checked by the caller.
            unsafe { l.launch(rows_cfg(rows)) }.w()?;
            Ok(())
        })
    })?;
    let dims = x.dims();
    let sum = h.is_some().then(|| wrap_typed(sum, dims, dev));
    Ok((sum, wrap_typed(y, dims, dev)))
}

pub(super) fn gated_norm(core: &Tensor, proj: &Tensor, z_at: usize, w: &Tensor, eps: f64) -> Result<Tensor> {
    match proj.dtype() {
        DType::BF16 => gated_norm_t::<half::bf16>(core, proj, z_at, w, eps),
        _ => gated_norm_t::<f32>(core, proj, z_at, w, eps),
    }
}

fn gated_norm_t<T: CudaDType + DeviceRepr>(
    core: &Tensor,
    proj: &Tensor,
    z_at: usize,
    w: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let dev = cuda_device(proj, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("gated_norm", proj.dtype())?, MODULE, PTX)?;
    let (b, _, n_v, d_v) = core.dims4()?;
    let width = proj.dim(2)?;
    let (core, proj, w) = (core.contiguous()?, proj.contiguous()?, w.contiguous()?);
    let total = b * n_v * d_v;
    // SAFETY: the kernel writes every element.
    let y = unsafe { dev.alloc::<T>(total.max(1))? };
    let (stride, heads, n, e) = (i32_of(width)?, i32_of(n_v)?, i32_of(d_v)?, eps as f32);
    with_typed_views::<T, _>(&[&proj], WHAT, |pv| {
        with_views(&[&core, &w], WHAT, |v| {
            let z = pv[0].slice(z_at..);
            let mut l = func.builder();
            l.arg(&v[0]).arg(&z).arg(&stride).arg(&heads).arg(&v[1]).arg(&y).arg(&n).arg(&e);
            // SAFETY: as above.
            unsafe { l.launch(rows_cfg(b * n_v)) }.w()?;
            Ok(())
        })
    })?;
    Ok(wrap_typed(y, &[b, 1, n_v * d_v], dev))
}

pub(super) fn silu_mul_halves(gu: &Tensor, inter: usize) -> Result<Tensor> {
    match gu.dtype() {
        DType::BF16 => silu_mul_halves_t::<half::bf16>(gu, inter),
        _ => silu_mul_halves_t::<f32>(gu, inter),
    }
}

fn silu_mul_halves_t<T: CudaDType + DeviceRepr>(gu: &Tensor, inter: usize) -> Result<Tensor> {
    let dev = cuda_device(gu, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("silu_mul_halves", gu.dtype())?, MODULE, PTX)?;
    let gu = gu.contiguous()?;
    let rows = gu.elem_count() / (2 * inter).max(1);
    let total = rows * inter;
    // SAFETY: the kernel writes every element.
    let y = unsafe { dev.alloc::<T>(total.max(1))? };
    let (r, i) = (i32_of(rows)?, i32_of(inter)?);
    let blocks = total.div_ceil(ELEM_THREADS as usize).clamp(1, ELEM_BLOCKS) as u32;
    let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ELEM_THREADS, 1, 1), shared_mem_bytes: 0 };
    with_typed_views::<T, _>(&[&gu], WHAT, |v| {
        let mut l = func.builder();
        l.arg(&v[0]).arg(&y).arg(&r).arg(&i);
        // SAFETY: as above.
        unsafe { l.launch(cfg) }.w()?;
        Ok(())
    })?;
    let mut dims = gu.dims().to_vec();
    *dims.last_mut().expect("at least one dimension") = inter;
    Ok(wrap_typed(y, &dims, dev))
}

pub(super) fn attn_prep(
    all: &Tensor,
    heads: AttnHeads,
    consts: [&Tensor; 4],
    bufs: [&Tensor; 2],
    slot_index: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    match all.dtype() {
        DType::BF16 => attn_prep_t::<half::bf16>(all, heads, consts, bufs, slot_index, eps),
        _ => attn_prep_t::<f32>(all, heads, consts, bufs, slot_index, eps),
    }
}

/// `consts`: `[q_norm, k_norm, cos, sin]` (f32); `bufs`: the KV buffers, written in place.
fn attn_prep_t<T: CudaDType + DeviceRepr>(
    all: &Tensor,
    heads: AttnHeads,
    consts: [&Tensor; 4],
    bufs: [&Tensor; 2],
    slot_index: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let dev = cuda_device(all, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("attn_prep", all.dtype())?, MODULE, PTX)?;
    let AttnHeads { n_h, n_kv, d } = heads;
    let (b, _, width) = all.dims3()?;
    let cap = bufs[0].dim(2)?;
    let rot = consts[2].dim(D::Minus1)?;
    let all = all.contiguous()?;
    let consts = consts.map(|t| t.to_dtype(DType::F32).and_then(|t| t.contiguous()));
    let [qn, kn, cos, sin] = consts;
    let (qn, kn, cos, sin) = (qn?, kn?, cos?, sin?);
    for t in bufs {
        if !t.is_contiguous() {
            return Err(Error::Input(format!("{WHAT} (CUDA): the KV buffers must be contiguous")));
        }
    }
    let slot = slot_index.contiguous()?;
    // SAFETY: the kernel writes every element.
    let q = unsafe { dev.alloc::<T>(b * n_h * d)? };
    let ints = [width, rot, cap, n_h, n_kv, d].map(i32_of);
    let [wi, ri, ci, hi, kvi, di] = ints;
    let (wi, ri, ci, hi, kvi, di) = (wi?, ri?, ci?, hi?, kvi?, di?);
    let e = eps as f32;
    with_typed_views::<T, _>(&[&all, bufs[0], bufs[1]], WHAT, |tv| {
        with_views(&[&qn, &kn, &cos, &sin], WHAT, |fv| {
            with_typed_views::<u32, _>(&[&slot], WHAT, |sv| {
                let mut l = func.builder();
                l.arg(&tv[0]).arg(&wi).arg(&fv[0]).arg(&fv[1]).arg(&fv[2]).arg(&fv[3]).arg(&ri).arg(&q);
                l.arg(&tv[1]).arg(&tv[2]).arg(&sv[0]).arg(&ci).arg(&hi).arg(&kvi).arg(&di).arg(&e);
                let cfg = LaunchConfig {
                    grid_dim: ((b * (n_h + n_kv)) as u32, 1, 1),
                    block_dim: (ROW_THREADS, 1, 1),
                    shared_mem_bytes: ((32 + d) * 4) as u32,
                };
                // SAFETY: argument types and order match the kernel's signature; sizes were checked by the caller.
                unsafe { l.launch(cfg) }.w()?;
                Ok(())
            })
        })
    })?;
    Ok(wrap_typed(q, &[b, n_h, 1, d], dev))
}

pub(super) fn masked_softmax(scores: &Tensor, mask: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    match scores.dtype() {
        DType::BF16 => masked_softmax_t::<half::bf16>(scores, mask, heads, scale),
        _ => masked_softmax_t::<f32>(scores, mask, heads, scale),
    }
}

/// `scores` `[B, .., cap]` with `heads` rows per sequence; `mask` `[B, 1, 1, cap]` (f32).
fn masked_softmax_t<T: CudaDType + DeviceRepr>(
    scores: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let dev = cuda_device(scores, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("masked_softmax", scores.dtype())?, MODULE, PTX)?;
    let cap = scores.dim(D::Minus1)?;
    let rows = scores.elem_count() / cap.max(1);
    let (scores, mask) = (scores.contiguous()?, mask.to_dtype(DType::F32)?.contiguous()?);
    // SAFETY: the kernel writes every element.
    let probs = unsafe { dev.alloc::<T>(rows * cap)? };
    let (ci, hi, sc) = (i32_of(cap)?, i32_of(heads)?, scale as f32);
    with_typed_views::<T, _>(&[&scores], WHAT, |sv| {
        with_views(&[&mask], WHAT, |mv| {
            let mut l = func.builder();
            l.arg(&sv[0]).arg(&mv[0]).arg(&probs).arg(&ci).arg(&hi).arg(&sc);
            // SAFETY: argument types and order match the kernel's signature; sizes were checked by the caller.
            unsafe { l.launch(rows_cfg(rows)) }.w()?;
            Ok(())
        })
    })?;
    Ok(wrap_typed(probs, scores.dims(), dev))
}

pub(super) fn gate_mul(o: &Tensor, all: &Tensor, heads: AttnHeads) -> Result<Tensor> {
    match all.dtype() {
        DType::BF16 => gate_mul_t::<half::bf16>(o, all, heads),
        _ => gate_mul_t::<f32>(o, all, heads),
    }
}

/// `o` `[B, 1, n_h·d]` times `σ(gate)`, the gates read from `all` `[B, 1, W]`.
fn gate_mul_t<T: CudaDType + DeviceRepr>(o: &Tensor, all: &Tensor, heads: AttnHeads) -> Result<Tensor> {
    let dev = cuda_device(all, WHAT)?;
    let func = dev.get_or_load_custom_func(&name("gate_mul", all.dtype())?, MODULE, PTX)?;
    let AttnHeads { n_h, d, .. } = heads;
    let (b, _, width) = all.dims3()?;
    let (o, all) = (o.contiguous()?, all.contiguous()?);
    let total = b * n_h * d;
    // SAFETY: the kernel writes every element.
    let y = unsafe { dev.alloc::<T>(total.max(1))? };
    let [wi, hi, di, bi] = [width, n_h, d, b].map(i32_of);
    let (wi, hi, di, bi) = (wi?, hi?, di?, bi?);
    let blocks = total.div_ceil(ELEM_THREADS as usize).clamp(1, ELEM_BLOCKS) as u32;
    let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ELEM_THREADS, 1, 1), shared_mem_bytes: 0 };
    with_typed_views::<T, _>(&[&o, &all], WHAT, |v| {
        let mut l = func.builder();
        l.arg(&v[0]).arg(&v[1]).arg(&wi).arg(&y).arg(&hi).arg(&di).arg(&bi);
        // SAFETY: as above.
        unsafe { l.launch(cfg) }.w()?;
        Ok(())
    })?;
    Ok(wrap_typed(y, &[b, 1, n_h * d], dev))
}
