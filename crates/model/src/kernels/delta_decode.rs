//! One decoding step of a Gated DeltaNet layer as one pass over plain slices (CPU, no gradient).
//!
//! Written op by op (`GatedDeltaNet::forward` with a one-token input), a step is some fifty candle ops per layer:
//! the decay `g = −exp(A_log)·softplus(a + dt_bias)`, `β = σ(b)`, the causal conv over the cached window and its
//! SiLU, the head split and the key-head repeat, the q/k L2 norms, then the delta rule's state update and read-out.
//! At the widths where decoding is bound by per-op costs rather than arithmetic (the demo's model, a small model
//! on a CPU) those ops are most of a decode step. Here they are one loop per sequence and value head: the window
//! `[conv state; x]` is convolved, q/k are normalised, the state is decayed, updated by
//! `S ← S + k·(β·(v − Sᵀk))ᵀ` ([`super::delta_rule::step`], the training kernel's step) and read, `o = Sᵀq`.
//!
//! Inputs are the layer's four projections of the new token (before the conv), its cached conv window and
//! recurrent state; outputs are the delta rule's output and the next conv window and state. Values equal the
//! composed path's up to rounding (tested against it). The in/out projections and the gated RMSNorm stay candle
//! ops here; [`delta_decode_proj_into`] is the form fused decode steps use (inputs read in place from the layer's
//! stacked projection; `kernels::decode_ops` has the gated norm). With the `cuda` feature the step runs on CUDA as
//! two kernels of our own (`delta_decode.cu`, `delta_decode_cuda.rs`), or one when every key head serves one value
//! head: there every candle op is a kernel launch of ~5 µs, and the composed step's ~75 of them per layer were most
//! of a decode step's launches (the two kernels took the H200's batch-1 graph from 3.85 to 3.38 s, BENCHMARKS.md).

use candle_core::{DType, Storage, Tensor};

use super::delta_rule::{read, step, Dims, Token};
use super::Real;
use crate::error::{Error, Result};
use crate::text::delta_rule::QK_NORM_EPS;

/// Head layout of a Gated DeltaNet layer.
#[derive(Debug, Clone, Copy)]
pub struct DeltaHeads {
    /// Key (and query) heads.
    pub n_k: usize,
    /// Value heads (a multiple of `n_k`; key head `i` serves value heads `i·r .. (i+1)·r`).
    pub n_v: usize,
    pub d_k: usize,
    pub d_v: usize,
}

impl DeltaHeads {
    pub(super) fn conv_dim(self) -> usize {
        2 * self.n_k * self.d_k + self.n_v * self.d_v
    }
}

/// One token's inputs for `B` sequences, and the layer's constants.
#[derive(Debug, Clone, Copy)]
pub struct DeltaDecodeInputs<'a> {
    /// `in_proj_qkv(x)`: `[B, 1, conv_dim]`.
    pub mixed: &'a Tensor,
    /// `in_proj_a(x)`: `[B, 1, n_v]`.
    pub a: &'a Tensor,
    /// `in_proj_b(x)`: `[B, 1, n_v]`.
    pub b: &'a Tensor,
    /// The previous `K − 1` pre-conv inputs: `[B, K − 1, conv_dim]`.
    pub conv: &'a Tensor,
    /// The recurrent state: `[B, n_v, d_k, d_v]`.
    pub state: &'a Tensor,
    /// Conv taps `[conv_dim, K]` (the checkpoint's `[conv_dim, 1, K]` without its middle axis).
    pub taps: &'a Tensor,
    /// `[n_v]` each.
    pub dt_bias: &'a Tensor,
    pub a_log: &'a Tensor,
}

/// What a step returns.
#[derive(Debug, Clone)]
pub struct DeltaDecodeOutput {
    /// The delta rule's output `[B, 1, n_v, d_v]`, in `mixed`'s dtype.
    pub out: Tensor,
    /// The next conv window `[B, K − 1, conv_dim]`, in `mixed`'s dtype on the CPU, f32 on CUDA (saving two
    /// conversions per layer and step; the composed path converts it as it reads it).
    pub conv: Tensor,
    /// The next recurrent state `[B, n_v, d_k, d_v]` (f32, or f64 for f64 inputs).
    pub state: Tensor,
}

/// Whether [`delta_decode`] runs for `mixed`: the kernels are enabled ([`super::set_enabled`]) and it is a CPU
/// f32/f64 tensor, or a CUDA tensor in a build with the `cuda` feature (unless `SGVLM_CUDA_DELTA_DECODE=0`).
pub fn delta_decode_supported(mixed: &Tensor) -> bool {
    if mixed.device().is_cuda() {
        return cfg!(feature = "cuda") && super::enabled() && cuda_allowed();
    }
    super::supported(mixed)
}

/// `SGVLM_CUDA_DELTA_DECODE=0` turns the CUDA kernels off (the composed ops run instead).
fn cuda_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    super::switched_on(&ALLOWED, "SGVLM_CUDA_DELTA_DECODE")
}

/// Runs one decoding step (see the module doc). Shapes are checked; inputs of other dtypes are converted.
pub fn delta_decode(x: DeltaDecodeInputs<'_>, heads: DeltaHeads) -> Result<DeltaDecodeOutput> {
    let out_dtype = x.mixed.dtype();
    let work = if out_dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let (b, kernel) = check(&x, heads)?;
    #[cfg(feature = "cuda")]
    if x.mixed.device().is_cuda() {
        let (out, conv, state) = super::delta_decode_cuda::run(&x, heads, kernel)?;
        return Ok(DeltaDecodeOutput { out: out.to_dtype(out_dtype)?, conv, state });
    }
    let dev = x.mixed.device().clone();
    let prep = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(work)?.contiguous()?) };
    let ins = [x.mixed, x.a, x.b, x.conv, x.state, x.taps, x.dt_bias, x.a_log].map(prep);
    let ins: Vec<Tensor> = ins.into_iter().collect::<Result<_>>()?;
    let (out, conv, state) = match work {
        DType::F64 => step_tensors::<f64>(&ins, b, kernel, heads, &dev)?,
        _ => step_tensors::<f32>(&ins, b, kernel, heads, &dev)?,
    };
    Ok(DeltaDecodeOutput { out: out.to_dtype(out_dtype)?, conv: conv.to_dtype(out_dtype)?, state })
}

/// [`delta_decode`] with the next conv window and state written over `x.conv` and `x.state`, which must be
/// contiguous, f32 (or f64 on the CPU) and not shared with any other tensor; returns the output
/// `[B, 1, n_v, d_v]` in `mixed`'s dtype. This is the form a decode step captured once and replayed (a CUDA
/// graph) needs: its state stays at fixed addresses. On CUDA the kernels read and write the same buffers; on the
/// CPU the step's results are copied over them.
pub fn delta_decode_into(x: DeltaDecodeInputs<'_>, heads: DeltaHeads) -> Result<Tensor> {
    let (_, _kernel) = check(&x, heads)?;
    for (t, name) in [(x.conv, "conv window"), (x.state, "state")] {
        if !t.is_contiguous() || !matches!(t.dtype(), DType::F32 | DType::F64) {
            return Err(Error::Input(format!(
                "delta decode in place: the {name} must be a contiguous f32 tensor, not {:?}",
                t.dtype()
            )));
        }
    }
    #[cfg(feature = "cuda")]
    if x.mixed.device().is_cuda() {
        return Ok(super::delta_decode_cuda::run_into(&x, heads, _kernel)?.to_dtype(x.mixed.dtype())?);
    }
    let step = delta_decode(x, heads)?;
    x.conv.slice_set(&step.conv.to_dtype(x.conv.dtype())?, 0, 0)?;
    x.state.slice_set(&step.state.to_dtype(x.state.dtype())?, 0, 0)?;
    Ok(step.out)
}

/// Where a Gated DeltaNet layer's projections of the new token start among the columns of its fused projection
/// (`in_proj_qkv`, `in_proj_z`, `in_proj_b`, `in_proj_a` side by side: one product instead of four).
#[derive(Debug, Clone, Copy)]
pub struct ProjColumns {
    pub mixed: usize,
    pub z: usize,
    pub b: usize,
    pub a: usize,
}

/// One token's step read from the layer's fused projection, for [`delta_decode_proj_into`].
#[derive(Debug, Clone, Copy)]
pub struct ProjStep<'a> {
    /// The fused projection of the new token, `[B, 1, W]`.
    pub proj: &'a Tensor,
    pub cols: ProjColumns,
    /// The conv window and the recurrent state, contiguous f32, updated in place.
    pub conv: &'a Tensor,
    pub state: &'a Tensor,
    /// The layer's constants as contiguous f32: taps `[conv_dim, K]`, `dt_bias` and `A_log` `[n_v]`.
    pub taps: &'a Tensor,
    pub dt_bias: &'a Tensor,
    pub a_log: &'a Tensor,
}

/// [`delta_decode_into`] reading `mixed`, `a` and `b` in place from the fused projection (f32 or bf16), the
/// constants already in f32: on CUDA the step's two kernels and nothing else (no conversion, no copy). Returns the
/// delta rule's output `[B, 1, n_v, d_v]` in f32 (f64 for f64 inputs on the CPU).
pub fn delta_decode_proj_into(x: ProjStep<'_>, heads: DeltaHeads) -> Result<Tensor> {
    let c = heads.conv_dim();
    let (mixed, a, b) = (
        x.proj.narrow(2, x.cols.mixed, c)?,
        x.proj.narrow(2, x.cols.a, heads.n_v)?,
        x.proj.narrow(2, x.cols.b, heads.n_v)?,
    );
    let inputs = DeltaDecodeInputs {
        mixed: &mixed,
        a: &a,
        b: &b,
        conv: x.conv,
        state: x.state,
        taps: x.taps,
        dt_bias: x.dt_bias,
        a_log: x.a_log,
    };
    #[cfg(feature = "cuda")]
    if x.proj.device().is_cuda() {
        let (_, kernel) = check(&inputs, heads)?;
        for (t, name) in [(x.conv, "conv window"), (x.state, "state"), (x.taps, "taps")] {
            if !t.is_contiguous() || t.dtype() != DType::F32 {
                return Err(Error::Input(format!("delta decode: the {name} must be a contiguous f32 tensor")));
            }
        }
        return super::delta_decode_cuda::run_proj_into(&x, heads, kernel);
    }
    let work = if x.proj.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    Ok(delta_decode_into(inputs, heads)?.to_dtype(work)?)
}

/// Checks the shapes and layout of a step's inputs; returns the batch and the conv kernel length.
fn check(x: &DeltaDecodeInputs<'_>, heads: DeltaHeads) -> Result<(usize, usize)> {
    let b = x.mixed.dim(0)?;
    let c = heads.conv_dim();
    let kernel = x.taps.dim(1)?;
    let expect = |t: &Tensor, name: &str, dims: &[usize]| -> Result<()> {
        if t.dims() != dims {
            return Err(Error::Input(format!("delta decode: {name} has shape {:?}, expected {dims:?}", t.dims())));
        }
        Ok(())
    };
    expect(x.mixed, "mixed", &[b, 1, c])?;
    expect(x.a, "a", &[b, 1, heads.n_v])?;
    expect(x.b, "b", &[b, 1, heads.n_v])?;
    expect(x.conv, "conv window", &[b, kernel.saturating_sub(1), c])?;
    expect(x.state, "state", &[b, heads.n_v, heads.d_k, heads.d_v])?;
    expect(x.taps, "taps", &[c, kernel])?;
    expect(x.dt_bias, "dt_bias", &[heads.n_v])?;
    expect(x.a_log, "A_log", &[heads.n_v])?;
    if kernel == 0 || heads.n_k == 0 || heads.n_v % heads.n_k != 0 {
        return Err(Error::Input(format!("delta decode: bad layout {heads:?} with conv kernel {kernel}")));
    }
    Ok((b, kernel))
}

type Vecs<T> = (Vec<T>, Vec<T>, Vec<T>);

/// [`run`] over the prepared inputs' data, its results as `(out, conv window, state)` tensors on `dev`.
fn step_tensors<T: Real>(
    ins: &[Tensor],
    b: usize,
    kernel: usize,
    h: DeltaHeads,
    dev: &candle_core::Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (o, cv, s) = with_slices::<T>(ins, |s| run(s, b, kernel, h))?;
    Ok((
        Tensor::from_vec(o, (b, 1, h.n_v, h.d_v), dev)?,
        Tensor::from_vec(cv, (b, kernel - 1, h.conv_dim()), dev)?,
        Tensor::from_vec(s, (b, h.n_v, h.d_k, h.d_v), dev)?,
    ))
}

/// Calls `f` with the data of each (contiguous, CPU, `T`-typed) tensor of `ts`, borrowed in place.
fn with_slices<T: Real>(ts: &[Tensor], f: impl FnOnce(&[&[T]]) -> Vecs<T>) -> Result<Vecs<T>> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(ts.len());
    for (storage, layout) in &guards {
        let Storage::Cpu(cpu) = &**storage else {
            return Err(Error::Input("delta decode runs on the CPU only".into()));
        };
        slices.push(super::contiguous(T::cpu_storage_as_slice(cpu)?, layout)?);
    }
    Ok(f(&slices))
}

/// The step over plain data: `s` = `[mixed, a, b, conv, state, taps, dt_bias, a_log]`.
fn run<T: Real>(s: &[&[T]], batch: usize, kernel: usize, h: DeltaHeads) -> Vecs<T> {
    let [mixed, a, b, conv, state, taps, dt_bias, a_log] = [s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]];
    let c = h.conv_dim();
    let w = kernel - 1;
    let (key_dim, r) = (h.n_k * h.d_k, h.n_v / h.n_k);
    let n = h.d_k * h.d_v;
    let d = Dims { dk: h.d_k, dv: h.d_v };
    let mut out = vec![T::zero(); batch * h.n_v * h.d_v];
    let mut next_conv = vec![T::zero(); batch * w * c];
    let mut next_state = state.to_vec();
    let mut act = vec![T::zero(); c];
    let (mut q, mut k) = (vec![T::zero(); h.d_k], vec![T::zero(); h.d_k]);
    let (mut u, mut m) = (vec![T::zero(); h.d_v], vec![T::zero(); h.d_v]);
    let scale = T::of((h.d_k as f64).powf(-0.5));
    for bi in 0..batch {
        // The window: the cached K − 1 inputs, then the new one; convolve it and shift it by one.
        let cached = &conv[bi * w * c..(bi + 1) * w * c];
        let new = &mixed[bi * c..(bi + 1) * c];
        for (ch, e) in act.iter_mut().enumerate() {
            let tap = &taps[ch * kernel..(ch + 1) * kernel];
            let mut acc = new[ch] * tap[w];
            for (j, &t) in tap[..w].iter().enumerate() {
                acc += cached[j * c + ch] * t;
            }
            *e = acc / (T::one() + (T::zero() - acc).exp_()); // SiLU
        }
        let shifted = &mut next_conv[bi * w * c..(bi + 1) * w * c];
        if w > 0 {
            shifted[..(w - 1) * c].copy_from_slice(&cached[c..]);
            shifted[(w - 1) * c..].copy_from_slice(new);
        }
        for head in 0..h.n_v {
            let kh = head / r;
            normalize(&act[kh * h.d_k..(kh + 1) * h.d_k], scale, &mut q);
            normalize(&act[key_dim + kh * h.d_k..key_dim + (kh + 1) * h.d_k], T::one(), &mut k);
            let v = &act[2 * key_dim + head * h.d_v..2 * key_dim + (head + 1) * h.d_v];
            let i = bi * h.n_v + head;
            let x = a[i] + dt_bias[head];
            let softplus = x.max_(T::zero()) + (T::one() + (T::zero() - x.abs_()).exp_()).ln_();
            let g = T::zero() - a_log[head].exp_() * softplus;
            let beta = T::one() / (T::one() + (T::zero() - b[i]).exp_());
            let tok = Token { q: &q, k: &k, v, g, beta };
            let s = &mut next_state[i * n..(i + 1) * n];
            step(s, &tok, d, &mut u, &mut m);
            read(s, &q, d, &mut out[i * h.d_v..(i + 1) * h.d_v]);
        }
    }
    (out, next_conv, next_state)
}

/// `out = scale · x / sqrt(Σx² + eps)`.
fn normalize<T: Real>(x: &[T], scale: T, out: &mut [T]) {
    let sq = x.iter().fold(T::zero(), |acc, &e| acc + e * e);
    let f = scale / (sq + T::of(QK_NORM_EPS)).sqrt_();
    for (o, &e) in out.iter_mut().zip(x) {
        *o = e * f;
    }
}
