//! The CUDA launch of [`super::delta_decode`]: two kernels (`delta_decode.cu`, compiled to PTX by build.rs) in
//! place of the composed step's ~75 candle ops per layer, each a kernel launch on a GPU.
//!
//! Launching a kernel of our own needs `unsafe` (device allocations the kernels fill, the FFI launch): this module
//! is the one place outside checkpoint loading that allows it. Inputs are converted to contiguous f32 first. [`run`]
//! writes freshly allocated outputs; [`run_into`] writes the next conv window and state over the current ones,
//! which is safe because each kernel thread reads the elements it writes (its channel of the window, its column
//! of the state) before writing them and no other thread touches them.
#![allow(unsafe_code)]

use candle_core::cuda_backend::cudarc::driver::{CudaView, DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaDevice, DType, Tensor};

use super::cuda_views::{cuda_device, with_typed_views, with_views, wrap};
use super::delta_decode::{DeltaDecodeInputs, DeltaHeads, ProjStep};
use crate::error::{Error, Result};

const WHAT: &str = "delta decode";

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/delta_decode.ptx"));
const MODULE: &str = "sgvlm_delta_decode";
/// Threads per block of the state kernel (a power of two, for its reductions).
const STEP_THREADS: u32 = 128;

/// The buffers of one step, as device views (`conv`/`next_conv` and `state`/`next_state` may be the same); the new
/// token's projections are `T` (f32, or bf16 from a fused projection), `mixed_stride` and `ab_stride` elements per
/// row.
struct Buffers<'a, T = f32> {
    mixed: CudaView<'a, T>,
    conv: CudaView<'a, f32>,
    taps: CudaView<'a, f32>,
    a: CudaView<'a, T>,
    beta_in: CudaView<'a, T>,
    dt_bias: CudaView<'a, f32>,
    a_log: CudaView<'a, f32>,
    state: CudaView<'a, f32>,
    act: CudaView<'a, f32>,
    next_conv: CudaView<'a, f32>,
    next_state: CudaView<'a, f32>,
    out: CudaView<'a, f32>,
    mixed_stride: i32,
    ab_stride: i32,
}

impl<'a> Buffers<'a> {
    /// `ins`: views of `[mixed, taps, a, b, dt_bias, a_log, conv, state]`, in that order.
    fn new(
        ins: &[CudaView<'a, f32>],
        act: CudaView<'a, f32>,
        next: [CudaView<'a, f32>; 2],
        out: CudaView<'a, f32>,
    ) -> Self {
        let [next_conv, next_state] = next;
        Self {
            mixed: ins[0].slice(..),
            taps: ins[1].slice(..),
            a: ins[2].slice(..),
            beta_in: ins[3].slice(..),
            dt_bias: ins[4].slice(..),
            a_log: ins[5].slice(..),
            conv: ins[6].slice(..),
            state: ins[7].slice(..),
            act,
            next_conv,
            next_state,
            out,
            mixed_stride: 0,
            ab_stride: 0,
        }
    }
}

/// Contiguous f32 copies (or the tensors themselves when already so) of the read-only inputs, in the order
/// `[mixed, taps, a, b, dt_bias, a_log]`.
fn prepared(x: &DeltaDecodeInputs<'_>) -> Result<Vec<Tensor>> {
    [x.mixed, x.taps, x.a, x.b, x.dt_bias, x.a_log].iter().map(|t| Ok(t.to_dtype(DType::F32)?.contiguous()?)).collect()
}

/// Launches the conv kernel then the state kernel over `bufs`, whose projections are f32 (`suffix` "f32", rows
/// `conv_dim` and `n_v` apart when `bufs`' strides are 0) or bf16 ("bf16").
fn launch<T: DeviceRepr>(
    dev: &CudaDevice,
    bufs: &Buffers<'_, T>,
    b: usize,
    h: DeltaHeads,
    kernel: usize,
    suffix: &str,
) -> Result<()> {
    let c = h.conv_dim();
    let (bi, ci, ki) = (b as i32, c as i32, kernel as i32);
    let mixed_stride = if bufs.mixed_stride > 0 { bufs.mixed_stride } else { ci };
    let ab_stride = if bufs.ab_stride > 0 { bufs.ab_stride } else { h.n_v as i32 };
    let conv_fn = dev.get_or_load_custom_func(&format!("delta_conv_silu_{suffix}"), MODULE, PTX)?;
    let mut l = conv_fn.builder();
    l.arg(&bufs.mixed).arg(&bufs.conv).arg(&bufs.taps).arg(&bufs.act).arg(&bufs.next_conv);
    l.arg(&bi).arg(&ci).arg(&ki).arg(&mixed_stride);
    // SAFETY: argument types and order match the kernel's signature; sizes were checked by the caller.
    unsafe { l.launch(LaunchConfig::for_num_elems((b * c) as u32)) }.w()?;

    let (nk, nv, dk, dv) = (h.n_k as i32, h.n_v as i32, h.d_k as i32, h.d_v as i32);
    let step_fn = dev.get_or_load_custom_func(&format!("delta_step_{suffix}"), MODULE, PTX)?;
    let cfg = LaunchConfig {
        grid_dim: ((b * h.n_v) as u32, 1, 1),
        block_dim: (STEP_THREADS, 1, 1),
        shared_mem_bytes: ((2 * h.d_k) as u32 + STEP_THREADS) * 4,
    };
    let mut l = step_fn.builder();
    l.arg(&bufs.act).arg(&bufs.a).arg(&bufs.beta_in).arg(&bufs.dt_bias).arg(&bufs.a_log);
    l.arg(&bufs.state).arg(&bufs.next_state).arg(&bufs.out);
    l.arg(&nk).arg(&nv).arg(&dk).arg(&dv).arg(&ab_stride);
    // SAFETY: as above.
    unsafe { l.launch(cfg) }.w()?;
    Ok(())
}

/// `(out [B, 1, n_v, d_v], next conv window, next state)` as f32 CUDA tensors.
pub(super) fn run(x: &DeltaDecodeInputs<'_>, h: DeltaHeads, kernel: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let dev = cuda_device(x.mixed, WHAT)?;
    let b = x.mixed.dim(0)?;
    let (c, w) = (h.conv_dim(), kernel - 1);
    let ins = prepared(x)?;
    let (conv, state) = (x.conv.to_dtype(DType::F32)?.contiguous()?, x.state.to_dtype(DType::F32)?.contiguous()?);
    // SAFETY: every element of these buffers is written by the kernels before anything reads it.
    let (act, next_conv, next_state, out) = unsafe {
        (
            dev.alloc::<f32>(b * c)?,
            dev.alloc::<f32>((b * w * c).max(1))?,
            dev.alloc::<f32>(b * h.n_v * h.d_k * h.d_v)?,
            dev.alloc::<f32>(b * h.n_v * h.d_v)?,
        )
    };
    let ts: Vec<&Tensor> = ins.iter().chain([&conv, &state]).collect();
    with_views(&ts, WHAT, |v| {
        let bufs = Buffers::new(v, act.slice(..), [next_conv.slice(..), next_state.slice(..)], out.slice(..));
        launch(dev, &bufs, b, h, kernel, "f32")
    })?;
    let next_conv =
        if w == 0 { Tensor::zeros((b, 0, c), DType::F32, x.mixed.device())? } else { wrap(next_conv, &[b, w, c], dev) };
    Ok((wrap(out, &[b, 1, h.n_v, h.d_v], dev), next_conv, wrap(next_state, &[b, h.n_v, h.d_k, h.d_v], dev)))
}

/// The step with the next conv window and state written over `x.conv` and `x.state` (contiguous f32, at least
/// one window slot); returns the output `[B, 1, n_v, d_v]` (f32).
pub(super) fn run_into(x: &DeltaDecodeInputs<'_>, h: DeltaHeads, kernel: usize) -> Result<Tensor> {
    let dev = cuda_device(x.mixed, WHAT)?;
    let b = x.mixed.dim(0)?;
    if kernel < 2 {
        return Err(Error::Input("delta decode in place needs a conv window (kernel ≥ 2)".into()));
    }
    let ins = prepared(x)?;
    // SAFETY: every element of these buffers is written by the kernels before anything reads it.
    let (act, out) = unsafe { (dev.alloc::<f32>(b * h.conv_dim())?, dev.alloc::<f32>(b * h.n_v * h.d_v)?) };
    let ts: Vec<&Tensor> = ins.iter().chain([x.conv, x.state]).collect();
    with_views(&ts, WHAT, |v| {
        // The next window and state are written over the current ones.
        let bufs = Buffers::new(v, act.slice(..), [v[6].slice(..), v[7].slice(..)], out.slice(..));
        launch(dev, &bufs, b, h, kernel, "f32")
    })?;
    Ok(wrap(out, &[b, 1, h.n_v, h.d_v], dev))
}

/// The step reading the new token's projections in place from a fused projection `proj` `[B, 1, W]` (f32 or bf16;
/// `cols` says where `mixed`, `a` and `b` start), with the window and state updated in place and the constants
/// (`taps`, `dt_bias`, `a_log`) contiguous f32: the two kernels and nothing else. Returns the output
/// `[B, 1, n_v, d_v]` (f32).
pub(super) fn run_proj_into(x: &ProjStep<'_>, h: DeltaHeads, kernel: usize) -> Result<Tensor> {
    match x.proj.dtype() {
        DType::BF16 => run_proj_into_t::<half::bf16>(x, h, kernel, "bf16"),
        DType::F32 => run_proj_into_t::<f32>(x, h, kernel, "f32"),
        other => Err(Error::Input(format!("{WHAT}: a {other:?} projection (f32 or bf16 only)"))),
    }
}

fn run_proj_into_t<T: CudaDType + DeviceRepr>(
    x: &ProjStep<'_>,
    h: DeltaHeads,
    kernel: usize,
    suffix: &str,
) -> Result<Tensor> {
    let dev = cuda_device(x.proj, WHAT)?;
    let (b, _, width) = x.proj.dims3()?;
    if kernel < 2 {
        return Err(Error::Input("delta decode in place needs a conv window (kernel ≥ 2)".into()));
    }
    let proj = x.proj.contiguous()?;
    if h.n_k == h.n_v {
        return run_proj_fused::<T>(x, &proj, h, kernel, suffix);
    }
    // SAFETY: every element of these buffers is written by the kernels before anything reads it.
    let (act, out) = unsafe { (dev.alloc::<f32>(b * h.conv_dim())?, dev.alloc::<f32>(b * h.n_v * h.d_v)?) };
    let consts = [x.taps, x.dt_bias, x.a_log, x.conv, x.state];
    with_typed_views::<T, _>(&[&proj], WHAT, |pv| {
        with_views(&consts, WHAT, |v| {
            let bufs = Buffers {
                mixed: pv[0].slice(x.cols.mixed..),
                a: pv[0].slice(x.cols.a..),
                beta_in: pv[0].slice(x.cols.b..),
                taps: v[0].slice(..),
                dt_bias: v[1].slice(..),
                a_log: v[2].slice(..),
                conv: v[3].slice(..),
                state: v[4].slice(..),
                act: act.slice(..),
                next_conv: v[3].slice(..),
                next_state: v[4].slice(..),
                out: out.slice(..),
                mixed_stride: width as i32,
                ab_stride: width as i32,
            };
            launch(dev, &bufs, b, h, kernel, suffix)
        })
    })?;
    Ok(wrap(out, &[b, 1, h.n_v, h.d_v], dev))
}

/// [`run_proj_into`] as one launch (`delta_fused_step_*`) when every key head serves one value head: each block
/// convolves its own channels, so nothing waits for the conv of other blocks.
fn run_proj_fused<T: CudaDType + DeviceRepr>(
    x: &ProjStep<'_>,
    proj: &Tensor,
    h: DeltaHeads,
    kernel: usize,
    suffix: &str,
) -> Result<Tensor> {
    let dev = cuda_device(proj, WHAT)?;
    let (b, _, width) = proj.dims3()?;
    let func = dev.get_or_load_custom_func(&format!("delta_fused_step_{suffix}"), MODULE, PTX)?;
    // SAFETY: the kernel writes every element.
    let out = unsafe { dev.alloc::<f32>(b * h.n_v * h.d_v)? };
    let consts = [x.taps, x.dt_bias, x.a_log, x.conv, x.state];
    let (wi, nh, dk, dv, ki) = (width as i32, h.n_v as i32, h.d_k as i32, h.d_v as i32, kernel as i32);
    with_typed_views::<T, _>(&[proj], WHAT, |pv| {
        with_views(&consts, WHAT, |v| {
            let (mixed, a, beta_in) = (pv[0].slice(x.cols.mixed..), pv[0].slice(x.cols.a..), pv[0].slice(x.cols.b..));
            let mut l = func.builder();
            l.arg(&mixed).arg(&wi).arg(&v[3]).arg(&v[0]).arg(&a).arg(&beta_in).arg(&wi).arg(&v[1]).arg(&v[2]);
            l.arg(&v[4]).arg(&out).arg(&nh).arg(&dk).arg(&dv).arg(&ki);
            let cfg = LaunchConfig {
                grid_dim: ((b * h.n_v) as u32, 1, 1),
                block_dim: (STEP_THREADS, 1, 1),
                shared_mem_bytes: ((2 * h.d_k + h.d_v) as u32 + STEP_THREADS) * 4,
            };
            // SAFETY: argument types and order match the kernel's signature; the window and the state are updated
            // in place, each element by the one thread that reads it.
            unsafe { l.launch(cfg) }.w()?;
            Ok(())
        })
    })?;
    Ok(wrap(out, &[b, 1, h.n_v, h.d_v], dev))
}
