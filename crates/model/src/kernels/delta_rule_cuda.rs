//! The CUDA launches of the gated delta rule over whole sequences (`delta_rule.cu`, compiled to PTX by build.rs): the
//! training node's forward and backward ([`super::delta_rule`]'s `DeltaRule` on a CUDA tensor) and the inference
//! prefill from a cached state ([`super::delta_rule::gated_delta_rule_with_state`]). One launch per layer and
//! direction replaces the chunked form's hundreds of candle ops (each a kernel launch and, under autograd, a
//! gradient buffer to fill and add), which bound the GPU's training and prefill steps.
//!
//! Launching a kernel of our own needs `unsafe` (device allocations the kernel fills, the FFI launch); as in
//! `delta_decode_cuda.rs` this module allows it. The kernels take the packed f32 rows of the CPU node
//! (`[B, H, T, 2·d_k + d_v + 2]`, contiguous), one block per head and group of 16 (forward) or 32 (backward) state
//! columns, four threads per column.
#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CudaDevice, DType, Layout, Shape, Tensor};

use super::cuda_views::{cuda_device, storage_view, with_views, wrap};
use crate::error::Result;

const WHAT: &str = "delta-rule kernel";

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/delta_rule.ptx"));
const MODULE: &str = "sgvlm_delta_rule";
/// Tokens between the states the backward pass keeps (it replays each block from its kept state).
const BLOCK: usize = 32;
/// The most value columns the kernels take.
const MAX_DV: usize = 1024;

/// Whether the kernels take heads of `dk × dv` (`dk` one of the instantiated sizes, `dv` at most [`MAX_DV`]).
pub(crate) fn supports(dk: usize, dv: usize) -> bool {
    matches!(dk, 16 | 32 | 64 | 128) && (1..=MAX_DV).contains(&dv)
}

/// Lanes per state column, and columns per block of the forward and the backward pass (`SPLIT`, `FWD_COLS` and
/// `BWD_COLS` in `delta_rule.cu`).
const SPLIT: usize = 4;
const FWD_COLS: usize = 16;
const BWD_COLS: usize = 32;

/// Floats of one token staged in shared memory: q, k, g, beta and `per_col` values for each of `cols` columns,
/// in whole float4s (`stage_floats` in `delta_rule.cu`).
fn stage_floats(dk: usize, cols: usize, per_col: usize) -> u32 {
    (2 * dk + 2 + cols * per_col).div_ceil(4) as u32 * 4
}

/// `(heads, t, dv)` of packed rows of width `w` for `dk`.
fn packed_dims(dims: &[usize], dk: usize) -> candle_core::Result<(usize, usize, usize)> {
    let [b, h, t, w] = dims else {
        candle_core::bail!("delta-rule kernel (CUDA): expected [B, H, T, width], got {dims:?}");
    };
    if *w < 2 * dk + 3 || !supports(dk, w - 2 * dk - 2) {
        candle_core::bail!("delta-rule kernel (CUDA): no kernel for d_k {dk} and row width {w}");
    }
    Ok((b * h, *t, w - 2 * dk - 2))
}

/// The forward launch: `out` `[heads, t, dv]` and, when `final_state` is given, the last state `[heads, dk, dv]`
/// (from `init`, or zero).
fn launch_forward(
    dev: &CudaDevice,
    x: &CudaView<'_, f32>,
    init: Option<&CudaView<'_, f32>>,
    (heads, t, dk, dv): (usize, usize, usize, usize),
    out: &CudaSlice<f32>,
    final_state: Option<&CudaSlice<f32>>,
) -> candle_core::Result<()> {
    let f = dev.get_or_load_custom_func(&format!("delta_rule_fwd_f32_dk{dk}"), MODULE, PTX)?;
    let cfg = LaunchConfig {
        grid_dim: (heads as u32, dv.div_ceil(FWD_COLS) as u32, 1),
        block_dim: ((FWD_COLS * SPLIT) as u32, 1, 1),
        // Two staged tokens (double-buffered).
        shared_mem_bytes: 2 * stage_floats(dk, FWD_COLS, 1) * 4,
    };
    let (ti, dvi) = (t as i32, dv as i32);
    let null = 0u64;
    let mut l = f.builder();
    l.arg(x);
    match init {
        Some(s) => l.arg(s),
        None => l.arg(&null),
    };
    l.arg(out);
    match final_state {
        Some(s) => l.arg(s),
        None => l.arg(&null),
    };
    l.arg(&ti).arg(&dvi);
    // SAFETY: argument types and order match the kernel's signature (a null pointer passed as a 64-bit zero); the
    // sizes were checked against the packed width by the caller.
    unsafe { l.launch(cfg) }.w()?;
    Ok(())
}

/// The training node's forward on CUDA: `o: [B, H, T, d_v]` from a zero state.
pub(super) fn forward(s: &CudaStorage, layout: &Layout, dk: usize) -> candle_core::Result<(CudaStorage, Shape)> {
    let dims = layout.dims();
    let (heads, t, dv) = packed_dims(dims, dk)?;
    let dev = &s.device;
    let x = storage_view(s, layout, WHAT)?;
    let out = dev.alloc_zeros::<f32>((heads * t * dv).max(1))?;
    if t > 0 {
        launch_forward(dev, &x, None, (heads, t, dk, dv), &out, None)?;
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), Shape::from((dims[0], dims[1], t, dv))))
}

/// The forward from `init` (`[B, H, d_k, d_v]`, or zero) with the final state, no graph node: inference (the
/// prefill). `packed` is f32, contiguous, on CUDA.
pub(super) fn forward_with_state(packed: &Tensor, dk: usize, init: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let dev = cuda_device(packed, WHAT)?;
    let dims = packed.dims().to_vec();
    let (heads, t, dv) = packed_dims(&dims, dk)?;
    let out = dev.alloc_zeros::<f32>((heads * t * dv).max(1))?;
    let last = dev.alloc_zeros::<f32>(heads * dk * dv)?;
    let init = init.map(|s| -> Result<Tensor> { Ok(s.to_dtype(DType::F32)?.contiguous()?) }).transpose()?;
    let ts: Vec<&Tensor> = std::iter::once(packed).chain(init.as_ref()).collect();
    with_views(&ts, WHAT, |v| Ok(launch_forward(dev, &v[0], v.get(1), (heads, t, dk, dv), &out, Some(&last))?))?;
    let (b, h) = (dims[0], dims[1]);
    Ok((wrap(out, &[b, h, t, dv], dev), wrap(last, &[b, h, dk, dv], dev)))
}

/// The training node's backward on CUDA: the gradient of the packed rows from the output's, both f32 CUDA tensors.
pub(super) fn backward(x: &Tensor, dout: &Tensor, dk: usize) -> Result<Tensor> {
    let dev = cuda_device(x, WHAT)?;
    let dims = x.dims().to_vec();
    let (heads, t, dv) = packed_dims(&dims, dk)?;
    let x = x.to_dtype(DType::F32)?.contiguous()?;
    let dout = dout.to_dtype(DType::F32)?.contiguous()?;
    let dx = dev.alloc_zeros::<f32>(x.elem_count().max(1))?;
    if t == 0 {
        return Ok(wrap(dx, &dims, dev));
    }
    let blocks = t.div_ceil(BLOCK);
    // SAFETY: the kernel writes every kept state and every replayed state before reading it.
    let (kept, states) =
        unsafe { (dev.alloc::<f32>(heads * blocks * dk * dv)?, dev.alloc::<f32>(heads * (BLOCK + 1) * dk * dv)?) };
    let f = dev.get_or_load_custom_func(&format!("delta_rule_bwd_f32_dk{dk}"), MODULE, PTX)?;
    let warps = (BWD_COLS * SPLIT / 32) as u32;
    let cfg = LaunchConfig {
        grid_dim: (heads as u32, dv.div_ceil(BWD_COLS) as u32, 1),
        block_dim: ((BWD_COLS * SPLIT) as u32, 1, 1),
        // Two staged tokens (with the output gradients), then the cross-warp sums.
        shared_mem_bytes: (2 * stage_floats(dk, BWD_COLS, 2) + warps * (2 * dk as u32 + 3)) * 4,
    };
    let (ti, dvi, bi) = (t as i32, dv as i32, BLOCK as i32);
    with_views(&[&x, &dout], WHAT, |v| {
        let mut l = f.builder();
        l.arg(&v[0]).arg(&v[1]).arg(&dx).arg(&kept).arg(&states).arg(&ti).arg(&dvi).arg(&bi);
        // SAFETY: argument types and order match the kernel's signature; sizes checked above.
        unsafe { l.launch(cfg) }.w()?;
        Ok(())
    })?;
    Ok(wrap(dx, &dims, dev))
}
