//! The CUDA launch of [`super::delta_decode`]: two kernels (`delta_decode.cu`, compiled to PTX by build.rs) in
//! place of the composed step's ~75 candle ops per layer, each a kernel launch on a GPU.
//!
//! Launching a kernel of our own needs `unsafe` (device allocations the kernels fill, the FFI launch): this module
//! is the one place outside checkpoint loading that allows it. Inputs are converted to contiguous f32 first; the
//! kernels read them in place and write freshly allocated outputs, so no tensor is ever written after creation.
#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, DType, Device, Storage, Tensor};

use super::delta_decode::{DeltaDecodeInputs, DeltaHeads};
use crate::error::{Error, Result};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/delta_decode.ptx"));
const MODULE: &str = "sgvlm_delta_decode";
/// Threads per block of the state kernel (a power of two, for its reductions).
const STEP_THREADS: u32 = 128;

/// `(out [B, n_v·d_v], next conv window, next state)` as f32 CUDA tensors.
pub(super) fn run(x: &DeltaDecodeInputs<'_>, h: DeltaHeads, kernel: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let Device::Cuda(dev) = x.mixed.device() else {
        return Err(Error::Input("delta decode (CUDA): the inputs are not on a CUDA device".into()));
    };
    let b = x.mixed.dim(0)?;
    let c = h.conv_dim();
    let w = kernel - 1;
    let prep = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(DType::F32)?.contiguous()?) };
    let ins = [x.mixed, x.conv, x.taps, x.a, x.b, x.dt_bias, x.a_log, x.state].map(prep);
    let ins: Vec<Tensor> = ins.into_iter().collect::<Result<_>>()?;
    let guards: Vec<_> = ins.iter().map(|t| t.storage_and_layout()).collect();
    let mut views: Vec<CudaView<'_, f32>> = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let Storage::Cuda(cs) = &**storage else {
            return Err(Error::Input("delta decode (CUDA): an input is not on the GPU".into()));
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Err(Error::Input("delta decode (CUDA): an input is not contiguous".into()));
        };
        views.push(cs.as_cuda_slice::<f32>()?.slice(start..end));
    }
    let [mixed, conv, taps, a, beta_in, dt_bias, a_log, state] = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| &views[i]);
    // SAFETY: every element of these buffers is written by the kernels below before anything reads it.
    let (act, next_conv, next_state, out) = unsafe {
        (
            dev.alloc::<f32>(b * c)?,
            dev.alloc::<f32>((b * w * c).max(1))?,
            dev.alloc::<f32>(b * h.n_v * h.d_k * h.d_v)?,
            dev.alloc::<f32>(b * h.n_v * h.d_v)?,
        )
    };
    let (bi, ci, ki) = (b as i32, c as i32, kernel as i32);
    let conv_fn = dev.get_or_load_custom_func("delta_conv_silu_f32", MODULE, PTX)?;
    let mut launch = conv_fn.builder();
    launch.arg(mixed).arg(conv).arg(taps).arg(&act).arg(&next_conv).arg(&bi).arg(&ci).arg(&ki);
    // SAFETY: argument types and order match the kernel's signature; sizes were checked by the caller.
    unsafe { launch.launch(LaunchConfig::for_num_elems((b * c) as u32)) }.w()?;

    let (nk, nv, dk, dv) = (h.n_k as i32, h.n_v as i32, h.d_k as i32, h.d_v as i32);
    let step_fn = dev.get_or_load_custom_func("delta_step_f32", MODULE, PTX)?;
    let cfg = LaunchConfig {
        grid_dim: ((b * h.n_v) as u32, 1, 1),
        block_dim: (STEP_THREADS, 1, 1),
        shared_mem_bytes: ((2 * h.d_k) as u32 + STEP_THREADS) * 4,
    };
    let mut launch = step_fn.builder();
    launch.arg(&act).arg(a).arg(beta_in).arg(dt_bias).arg(a_log).arg(state).arg(&next_state).arg(&out);
    launch.arg(&nk).arg(&nv).arg(&dk).arg(&dv);
    // SAFETY: as above.
    unsafe { launch.launch(cfg) }.w()?;
    drop(views);
    drop(guards);
    let wrap = |s: CudaSlice<f32>, dims: &[usize], dev: &CudaDevice| -> Tensor {
        let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(s, dev.clone()));
        Tensor::from_storage(storage, dims, BackpropOp::none(), false)
    };
    let next_conv =
        if w == 0 { Tensor::zeros((b, 0, c), DType::F32, x.mixed.device())? } else { wrap(next_conv, &[b, w, c], dev) };
    Ok((wrap(out, &[b, 1, h.n_v, h.d_v], dev), next_conv, wrap(next_state, &[b, h.n_v, h.d_k, h.d_v], dev)))
}
