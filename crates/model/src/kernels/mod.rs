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
//! * [`rope`]: rotary embedding of the first `rot` features of `[B, H, T, D]` with `[B|1, T, rot]` tables (used
//!   at inference on the CPU too, with the tables kept on the host once per forward: [`RopeTables`]; on CUDA
//!   [`rope_on_device`], the tables staying on the device);
//! * [`silu_mul`]: `silu(a)⊙b`, and [`conv_silu`]: Gated DeltaNet's causal depthwise convolution and its SiLU;
//! * [`gated_delta_rule`] ([`delta_rule`]): the gated delta rule from a zero state, token by token, over packed
//!   rows, which [`delta_pack`] makes from Gated DeltaNet's conv output (heads split, q/k normalised).
//!
//! [`adamw_update`] ([`adamw`]) updates a parameter and its moments in place (the optimizer's step, no graph).
//!
//! Kernels serve decoding instead (no gradient, no graph node): [`delta_decode`], a whole Gated DeltaNet
//! decoding step after the projections (conv window, decay, q/k norms, state update and read-out; with
//! [`delta_decode_proj_into`] read from a fused projection), [`matmul_bf16_weight`], a projection with f32
//! activations and weights kept in bf16, and the fused ops of a fixed-shape decode step ([`decode_ops`]: the
//! residual add with the next RMSNorm, Gated DeltaNet's gated norm, `silu(gate)·up` from one product).
//!
//! No crate offers these for candle's CPU backend (candle-nn's fused kernels have no backward); the loops are ours.
//!
//! With the `cuda` feature, every training kernel has a CUDA twin of ours (`train_ops.cu` and `train_cuda.rs`;
//! the delta rule's in `delta_rule.cu`): the same node with the same backward on a GPU, where each op of a
//! composition is a kernel launch and, under autograd, a gradient buffer to zero-fill and add. [`trainable`] says
//! where a training graph takes them. Their logic is tested on the CPU through a CUDA stand-in
//! (`tests/cuda_kernels_emulated.rs`, `tools/cuda_emu/`) and on a GPU by `examples/cuda_check.rs`.

use candle_core::{CpuStorage, DType, Layout, Shape, Tensor};

mod adamw;
mod bf16_matmul;
#[cfg(feature = "cuda")]
mod cuda_views;
mod decode_ops;
#[cfg(feature = "cuda")]
mod decode_ops_cuda;
mod delta_decode;
#[cfg(feature = "cuda")]
mod delta_decode_cuda;
mod delta_pack;
pub mod delta_rule;
#[cfg(feature = "cuda")]
mod delta_rule_cuda;
mod gated;
mod norm;
mod rope;
mod softmax;
#[cfg(feature = "cuda")]
mod train_cuda;

pub use adamw::{adamw_update, AdamWStep};
pub use bf16_matmul::{matmul_bf16_weight, SKINNY_ROWS};
pub use decode_ops::{add_rms_norm, attn_decode, attn_prep, gated_rms_norm, silu_mul_halves, AttnHeads};
pub use delta_decode::{
    delta_decode, delta_decode_into, delta_decode_proj_into, delta_decode_supported, DeltaDecodeInputs,
    DeltaDecodeOutput, DeltaHeads, ProjColumns, ProjStep,
};
pub use delta_pack::{delta_pack, PackHeads};
pub use delta_rule::gated_delta_rule;
pub use gated::{conv_silu, silu_mul};
pub use norm::{normalize, rms_norm};
pub use rope::{rope, rope_on_device, rope_tables, RopeTables};
pub use softmax::softmax;

/// The float types the kernels run in (f64 for the gradient checks).
pub(crate) trait Real: candle_core::WithDType {
    fn of(x: f64) -> Self;
    fn exp_(self) -> Self;
    fn sqrt_(self) -> Self;
    fn max_(self, other: Self) -> Self;
    fn ln_(self) -> Self;
    fn abs_(self) -> Self;
}

macro_rules! impl_real {
    ($($t:ty),*) => {$(
        impl Real for $t {
            fn of(x: f64) -> Self {
                x as $t
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
            fn ln_(self) -> Self {
                self.ln()
            }
            fn abs_(self) -> Self {
                self.abs()
            }
        }
    )*};
}

impl_real!(f32, f64);

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns the kernels off (the model then trains through the candle compositions, as on other devices) or back on,
/// for the whole process: a switch for comparisons and benchmarks.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the kernels are enabled ([`set_enabled`]).
pub(crate) fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the model's training path uses the kernels for `x`: they are enabled ([`set_enabled`]) and `x` is a CPU
/// f32/f64 tensor.
pub fn supported(x: &Tensor) -> bool {
    enabled() && x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Whether a training graph takes the kernels with a gradient ([`normalize`], [`rms_norm`], [`softmax`],
/// [`silu_mul`], [`conv_silu`], [`rope_on_device`]) for `x`: on the CPU as [`supported`]; on CUDA for f32 tensors
/// in a build with the `cuda` feature, where their CUDA twins run (`train_ops.cu`), unless `SGVLM_CUDA_KERNELS=0`
/// (then the compositions run, as before those twins existed).
pub fn trainable(x: &Tensor) -> bool {
    if x.device().is_cuda() {
        return x.dtype() == DType::F32 && cuda_twins(x.device());
    }
    supported(x)
}

/// Whether the CUDA twins of the training kernels run on `device` (for f32 tensors; see [`trainable`]).
pub fn cuda_twins(device: &candle_core::Device) -> bool {
    device.is_cuda() && cfg!(feature = "cuda") && enabled() && cuda_kernels_allowed()
}

/// `SGVLM_CUDA_KERNELS=0` turns the CUDA twins of the training kernels off.
fn cuda_kernels_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    switched_on(&ALLOWED, "SGVLM_CUDA_KERNELS")
}

/// Whether the switch `var` is on (unset or anything but `0`), read from the environment once into `cell`.
pub(crate) fn switched_on(cell: &'static std::sync::OnceLock<bool>, var: &str) -> bool {
    *cell.get_or_init(|| std::env::var(var).map_or(true, |v| v != "0"))
}

/// The longest causal conv the CUDA twin of [`conv_silu`] takes.
pub const MAX_CUDA_CONV_TAPS: usize = 16;

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

/// A one-operand kernel's forward: `f32`/`f64` over the contiguous data and its last-dimension length, the output
/// of the input's shape.
fn unary_fwd(
    name: &str,
    storage: &CpuStorage,
    layout: &Layout,
    f32: impl FnOnce(&[f32], usize) -> Vec<f32>,
    f64: impl FnOnce(&[f64], usize) -> Vec<f64>,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let n = last_dim(layout);
    let out = by_dtype(name, storage, |s| Ok(f32(contiguous(s, layout)?, n)), |s| Ok(f64(contiguous(s, layout)?, n)))?;
    Ok((out, layout.shape().clone()))
}

/// A two-operand kernel's forward: `f32`/`f64` over both operands' contiguous data (one dtype for both), the output
/// of the first operand's shape.
fn binary_fwd(
    name: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f32: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    f64: impl FnOnce(&[f64], &[f64]) -> Vec<f64>,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let out = match (s1, s2) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(f32(contiguous(a, l1)?, contiguous(b, l2)?)),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(f64(contiguous(a, l1)?, contiguous(b, l2)?)),
        _ => candle_core::bail!("{name}: the operands must both be f32 or both f64"),
    };
    Ok((out, l1.shape().clone()))
}

/// A two-operand kernel's backward: both input gradients, computed in `like`'s dtype.
fn binary_bwd(
    like: &Tensor,
    f32: impl FnOnce() -> candle_core::Result<(Tensor, Tensor)>,
    f64: impl FnOnce() -> candle_core::Result<(Tensor, Tensor)>,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
    let (a, b) = match like.dtype() {
        DType::F32 => f32()?,
        DType::F64 => f64()?,
        other => candle_core::bail!("kernel backward: unsupported dtype {other:?}"),
    };
    Ok((Some(a), Some(b)))
}

fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Device, Tensor, Var};

    pub(crate) fn f64_randn(shape: &[usize], std: f64) -> Tensor {
        Tensor::randn(0f64, std, shape, &Device::Cpu).unwrap()
    }

    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Values and gradients (for every variable) of `fused` and `composed` agree to 1e-10 in f64.
    pub(crate) fn same(name: &str, vars: &[&Var], fused: Tensor, composed: Tensor) {
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
}

#[cfg(test)]
mod tests {
    use super::testing::f64_randn;
    use super::*;
    use candle_core::Device;

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
