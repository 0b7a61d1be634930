//! The gated delta rule as one CPU graph node with a hand-written backward pass (training on the CPU).
//!
//! [`delta_rule::chunked`](crate::text::delta_rule::chunked) builds the recurrence from candle ops, which is what a GPU
//! wants; on the CPU at the demo's size (heads of 16, a few hundred tokens) its hundreds of small ops per layer, and
//! the zero-filled gradient buffer candle adds into for every one of them, cost far more than the arithmetic. Here
//! the recurrence runs token by token over plain slices (per head `S ← exp(g)·S`, `u = β·(v − Sᵀk)`, `S ← S + k·uᵀ`,
//! `o = Sᵀq`), and its gradient is the same loop backwards:
//!
//! ```text
//! dq = S_t·do                 dS += q·doᵀ
//! du = dSᵀ·k                  dk  = dS·u + P·dm        (P = exp(g)·S_{t-1}, m = Pᵀk, dm = −β·du)
//! dv = β·du                   dβ  = du·(v − m)
//! dP = dS + k·dmᵀ             dg  = exp(g)·Σ dP⊙S_{t-1}         dS ← exp(g)·dP
//! ```
//!
//! The backward pass needs every state `S_{t-1}`; it keeps one every `BLOCK` tokens from a first forward sweep and
//! recomputes the states inside a block when it gets there, so memory stays at `T/BLOCK + BLOCK` states per head.
//! No crate offers this (candle's custom-op trait is the hook; the loop itself is ours).
//!
//! The node takes the five inputs packed along the last dimension, `[B, H, T, 2·d_k + d_v + 2]` (`q, k, v, g, β`,
//! q/k already normalised and scaled, heads first), and returns `o: [B, H, T, d_v]`; it starts from a zero state.
//!
//! With the `cuda` feature the same node runs on CUDA tensors through two kernels of ours (`delta_rule.cu`,
//! `delta_rule_cuda.rs`: a block per head and group of state columns, four threads per column, tokens staged in
//! shared memory one ahead, the backward pass's states replayed per block of 32 tokens as here), and so does the
//! inference form from a state ([`gated_delta_rule_with_state`]).

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, D};

use super::Real as Float;
use crate::error::Result;

/// Tokens between the states kept for the backward pass.
const BLOCK: usize = 32;

/// Sizes of one packed row: `q` and `k` of `dk`, `v` of `dv`, then `g` and `β`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub(super) dk: usize,
    pub(super) dv: usize,
}

impl Dims {
    fn width(self) -> usize {
        2 * self.dk + self.dv + 2
    }
}

/// One token's inputs, borrowed from a packed row.
pub(super) struct Token<'a, T> {
    pub(super) q: &'a [T],
    pub(super) k: &'a [T],
    pub(super) v: &'a [T],
    pub(super) g: T,
    pub(super) beta: T,
}

fn token<T: Float>(row: &[T], d: Dims) -> Token<'_, T> {
    let (q, rest) = row.split_at(d.dk);
    let (k, rest) = rest.split_at(d.dk);
    let (v, rest) = rest.split_at(d.dv);
    Token { q, k, v, g: rest[0], beta: rest[1] }
}

/// Advances `s` (`dk × dv`, row-major) by one token and writes `u = β·(v − m)` and `m = Pᵀk` (after the decay).
pub(super) fn step<T: Float>(s: &mut [T], x: &Token<T>, d: Dims, u: &mut [T], m: &mut [T]) {
    let a = x.g.exp_();
    for e in s.iter_mut() {
        *e *= a;
    }
    m.fill(T::zero());
    for (i, &ki) in x.k.iter().enumerate() {
        for (mj, &sij) in m.iter_mut().zip(&s[i * d.dv..(i + 1) * d.dv]) {
            *mj += ki * sij;
        }
    }
    for ((uj, &vj), &mj) in u.iter_mut().zip(x.v).zip(m.iter()) {
        *uj = x.beta * (vj - mj);
    }
    for (i, &ki) in x.k.iter().enumerate() {
        for (sij, &uj) in s[i * d.dv..(i + 1) * d.dv].iter_mut().zip(u.iter()) {
            *sij += ki * uj;
        }
    }
}

/// `o = Sᵀq`.
pub(super) fn read<T: Float>(s: &[T], q: &[T], d: Dims, o: &mut [T]) {
    o.fill(T::zero());
    for (i, &qi) in q.iter().enumerate() {
        for (oj, &sij) in o.iter_mut().zip(&s[i * d.dv..(i + 1) * d.dv]) {
            *oj += qi * sij;
        }
    }
}

/// Forward over one head's `t` packed rows into `out` (`t × dv`), advancing the state `s` (`dk × dv`) from where it
/// is (zero for the training node; the cached state for inference).
fn forward_head<T: Float>(x: &[T], t: usize, d: Dims, s: &mut [T], out: &mut [T]) {
    let (mut u, mut m) = (vec![T::zero(); d.dv], vec![T::zero(); d.dv]);
    for i in 0..t {
        let tok = token(&x[i * d.width()..(i + 1) * d.width()], d);
        step(s, &tok, d, &mut u, &mut m);
        read(s, tok.q, d, &mut out[i * d.dv..(i + 1) * d.dv]);
    }
}

/// Gradient of one head's packed rows (`dx`, `t × width`) from the output gradient `dout` (`t × dv`).
fn backward_head<T: Float>(x: &[T], dout: &[T], t: usize, d: Dims, dx: &mut [T]) {
    let n = d.dk * d.dv;
    let w = d.width();
    // States at the start of every block (`kept[b]` = the state before token b·BLOCK).
    let blocks = t.div_ceil(BLOCK);
    let mut kept = vec![T::zero(); blocks * n];
    let mut s = vec![T::zero(); n];
    let (mut u, mut m) = (vec![T::zero(); d.dv], vec![T::zero(); d.dv]);
    for i in 0..t {
        if i % BLOCK == 0 {
            kept[(i / BLOCK) * n..(i / BLOCK + 1) * n].copy_from_slice(&s);
        }
        step(&mut s, &token(&x[i * w..(i + 1) * w], d), d, &mut u, &mut m);
    }
    // `states[j]` = the state after token `start + j − 1` (states[0]: before the block's first token).
    let mut states = vec![T::zero(); (BLOCK + 1) * n];
    let mut us = vec![T::zero(); BLOCK * d.dv];
    let mut ms = vec![T::zero(); BLOCK * d.dv];
    let mut ds = vec![T::zero(); n];
    let mut dp = vec![T::zero(); n];
    let (mut du, mut dm) = (vec![T::zero(); d.dv], vec![T::zero(); d.dv]);
    for b in (0..blocks).rev() {
        let start = b * BLOCK;
        let len = BLOCK.min(t - start);
        states[..n].copy_from_slice(&kept[b * n..(b + 1) * n]);
        for j in 0..len {
            let (before, after) = states.split_at_mut((j + 1) * n);
            after[..n].copy_from_slice(&before[j * n..]);
            let tok = token(&x[(start + j) * w..(start + j + 1) * w], d);
            step(&mut after[..n], &tok, d, &mut us[j * d.dv..(j + 1) * d.dv], &mut ms[j * d.dv..(j + 1) * d.dv]);
        }
        for j in (0..len).rev() {
            let i = start + j;
            let tok = token(&x[i * w..(i + 1) * w], d);
            let (s_prev, s_now) = (&states[j * n..(j + 1) * n], &states[(j + 1) * n..(j + 2) * n]);
            let (uj, mj) = (&us[j * d.dv..(j + 1) * d.dv], &ms[j * d.dv..(j + 1) * d.dv]);
            let dout_i = &dout[i * d.dv..(i + 1) * d.dv];
            let (dq, rest) = dx[i * w..(i + 1) * w].split_at_mut(d.dk);
            let (dk, rest) = rest.split_at_mut(d.dk);
            let (dv, rest) = rest.split_at_mut(d.dv);
            // o = Sᵀq
            for r in 0..d.dk {
                let row = &s_now[r * d.dv..(r + 1) * d.dv];
                dq[r] = row.iter().zip(dout_i).fold(T::zero(), |acc, (&a, &b)| acc + a * b);
                for (e, &o) in ds[r * d.dv..(r + 1) * d.dv].iter_mut().zip(dout_i) {
                    *e += tok.q[r] * o;
                }
            }
            // S = P + k·uᵀ
            du.fill(T::zero());
            for r in 0..d.dk {
                let row = &ds[r * d.dv..(r + 1) * d.dv];
                dk[r] = row.iter().zip(uj).fold(T::zero(), |acc, (&a, &b)| acc + a * b);
                for (e, &g) in du.iter_mut().zip(row) {
                    *e += g * tok.k[r];
                }
            }
            // u = β·(v − m)
            let mut dbeta = T::zero();
            for c in 0..d.dv {
                dbeta += du[c] * (tok.v[c] - mj[c]);
                dv[c] = tok.beta * du[c];
                dm[c] = T::zero() - tok.beta * du[c];
            }
            // m = Pᵀk with P = exp(g)·S_prev; dP = dS + k·dmᵀ; dS_prev = exp(g)·dP
            let a = tok.g.exp_();
            let mut da = T::zero();
            for r in 0..d.dk {
                let prev = &s_prev[r * d.dv..(r + 1) * d.dv];
                let mut pk = T::zero();
                for c in 0..d.dv {
                    pk += a * prev[c] * dm[c];
                    let e = ds[r * d.dv + c] + tok.k[r] * dm[c];
                    dp[r * d.dv + c] = e;
                    da += e * prev[c];
                }
                dk[r] += pk;
            }
            for (e, &p) in ds.iter_mut().zip(&dp) {
                *e = a * p;
            }
            rest[0] = da * a;
            rest[1] = dbeta;
        }
    }
}

/// `(heads, t, dims)` of a packed `[B, H, T, width]` layout.
fn packed_dims(layout: &Layout, dk: usize) -> candle_core::Result<(usize, usize, Dims)> {
    let dims = layout.dims();
    if dims.len() != 4 {
        candle_core::bail!("delta-rule kernel: expected [B, H, T, width], got {dims:?}");
    }
    let width = dims[3];
    if width < 2 * dk + 3 {
        candle_core::bail!("delta-rule kernel: width {width} too small for d_k {dk}");
    }
    let d = Dims { dk, dv: width - 2 * dk - 2 };
    Ok((dims[0] * dims[1], dims[2], d))
}

fn contiguous<'a, T>(s: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("delta-rule kernel: the input must be contiguous"),
    }
}

/// The packed gated delta rule as a graph node ([`gated_delta_rule`]).
struct DeltaRule {
    dk: usize,
}

impl DeltaRule {
    fn run<T: Float>(&self, x: &[T], layout: &Layout) -> candle_core::Result<(Vec<T>, Shape)> {
        let (heads, t, d) = packed_dims(layout, self.dk)?;
        let x = contiguous(x, layout)?;
        let mut out = vec![T::zero(); heads * t * d.dv];
        let mut state = vec![T::zero(); d.dk * d.dv];
        for (h, o) in out.chunks_mut((t * d.dv).max(1)).enumerate().take(heads) {
            state.fill(T::zero());
            forward_head(&x[h * t * d.width()..(h + 1) * t * d.width()], t, d, &mut state, o);
        }
        let dims = layout.dims();
        Ok((out, Shape::from((dims[0], dims[1], t, d.dv))))
    }
}

impl CustomOp1 for DeltaRule {
    fn name(&self) -> &'static str {
        "gated-delta-rule-cpu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        match storage {
            CpuStorage::F32(s) => self.run(s, layout).map(|(o, sh)| (CpuStorage::F32(o), sh)),
            CpuStorage::F64(s) => self.run(s, layout).map(|(o, sh)| (CpuStorage::F64(o), sh)),
            _ => candle_core::bail!("delta-rule kernel: f32 or f64 only"),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        super::delta_rule_cuda::forward(storage, layout, self.dk)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        fn run<T: Float>(x: &Tensor, g: &Tensor, dk: usize) -> candle_core::Result<Tensor> {
            let (heads, t, d) = packed_dims(x.layout(), dk)?;
            let xs: Vec<T> = x.flatten_all()?.to_vec1()?;
            let gs: Vec<T> = g.contiguous()?.flatten_all()?.to_vec1()?;
            let mut dx = vec![T::zero(); xs.len()];
            let (wx, wg) = (t * d.width(), t * d.dv);
            for h in 0..heads {
                backward_head(
                    &xs[h * wx..(h + 1) * wx],
                    &gs[h * wg..(h + 1) * wg],
                    t,
                    d,
                    &mut dx[h * wx..(h + 1) * wx],
                );
            }
            Tensor::from_vec(dx, x.shape(), x.device())
        }
        let x = arg.detach();
        let g = grad.detach().to_dtype(x.dtype())?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return super::delta_rule_cuda::backward(&x, &g, self.dk).map(Some).map_err(candle_core::Error::wrap);
        }
        Ok(Some(match x.dtype() {
            DType::F32 => run::<f32>(&x, &g, self.dk)?,
            DType::F64 => run::<f64>(&x, &g, self.dk)?,
            other => candle_core::bail!("delta-rule kernel: unsupported dtype {other:?}"),
        }))
    }
}

/// The gated delta rule's forward from `init` (`[B, H, d_k, d_v]`; zero when `None`) over the same heads-first
/// inputs as [`gated_delta_rule`], as plain loops with no graph node: `o: [B, H, T, d_v]` and the final state
/// `[B, H, d_k, d_v]`, the heads in parallel on rayon's pool. Inference on the CPU (the prefill), where the chunked
/// form's hundreds of small ops per layer cost far more than this arithmetic.
pub fn gated_delta_rule_with_state(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    g: &Tensor,
    beta: &Tensor,
    init: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    gated_delta_rule_packed_with_state(&pack(q, k, v, g, beta)?, q.dim(D::Minus1)?, init)
}

/// [`gated_delta_rule_with_state`] over rows already packed (`[B, H, T, 2·d_k + d_v + 2]`, as [`super::delta_pack`]
/// makes them; f32 or f64 on the CPU, any float dtype on CUDA, where it runs in f32): the output `[B, H, T, d_v]`
/// and the final state `[B, H, d_k, d_v]`, both in the rows' dtype. Gated DeltaNet's prefill goes conv → packing →
/// this, one kernel each.
pub fn gated_delta_rule_packed_with_state(
    packed: &Tensor,
    dk: usize,
    init: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    fn run<T: Float>(packed: &Tensor, init: Option<&Tensor>, d: Dims) -> Result<(Tensor, Tensor)> {
        use rayon::prelude::*;
        let (b, h, t, w) = packed.dims4()?;
        let n = d.dk * d.dv;
        let x: Vec<T> = packed.flatten_all()?.to_vec1()?;
        let mut state: Vec<T> = match init {
            Some(s) => s.to_dtype(packed.dtype())?.flatten_all()?.to_vec1()?,
            None => vec![T::zero(); b * h * n],
        };
        if state.len() != b * h * n {
            return Err(crate::Error::Input(format!(
                "delta-rule state has {} values, expected {:?}",
                state.len(),
                [b, h, d.dk, d.dv]
            )));
        }
        let mut out = vec![T::zero(); b * h * t * d.dv];
        out.par_chunks_mut((t * d.dv).max(1))
            .zip(state.par_chunks_mut(n))
            .enumerate()
            .for_each(|(head, (o, s))| forward_head(&x[head * t * w..(head + 1) * t * w], t, d, s, o));
        let dev = packed.device();
        Ok((Tensor::from_vec(out, (b, h, t, d.dv), dev)?, Tensor::from_vec(state, (b, h, d.dk, d.dv), dev)?))
    }
    let width = match packed.dims() {
        [_, _, _, w] => *w,
        dims => return Err(crate::Error::Input(format!("delta-rule rows: expected [B, H, T, width], got {dims:?}"))),
    };
    if width < 2 * dk + 3 {
        return Err(crate::Error::Input(format!("delta-rule rows: width {width} too small for d_k {dk}")));
    }
    let d = Dims { dk, dv: width - 2 * dk - 2 };
    let packed = packed.contiguous()?;
    #[cfg(feature = "cuda")]
    if packed.device().is_cuda() {
        let (out, last) = super::delta_rule_cuda::forward_with_state(&packed.to_dtype(DType::F32)?, d.dk, init)?;
        return Ok((out.to_dtype(packed.dtype())?, last.to_dtype(packed.dtype())?));
    }
    match packed.dtype() {
        DType::F32 => run::<f32>(&packed, init, d),
        DType::F64 => run::<f64>(&packed, init, d),
        other => Err(crate::Error::Input(format!("delta-rule kernel: f32 or f64 only, not {other:?}"))),
    }
}

/// The gated delta rule from a zero state over heads-first inputs (`q, k: [B, H, T, d_k]` normalised and scaled,
/// `v: [B, H, T, d_v]`, `g, beta: [B, H, T]`, all f32 or all f64 on the CPU, or on CUDA ([`cuda_supported`]; there
/// in f32)): `o: [B, H, T, d_v]`, one graph node.
pub fn gated_delta_rule(q: &Tensor, k: &Tensor, v: &Tensor, g: &Tensor, beta: &Tensor) -> Result<Tensor> {
    gated_delta_rule_packed(&pack(q, k, v, g, beta)?, q.dim(D::Minus1)?)
}

/// The node's rows `[B, H, T, 2·d_k + d_v + 2]` from heads-first `q, k, v` and `g, beta: [B, H, T]`.
fn pack(q: &Tensor, k: &Tensor, v: &Tensor, g: &Tensor, beta: &Tensor) -> Result<Tensor> {
    Ok(Tensor::cat(&[q, k, v, &g.unsqueeze(3)?, &beta.unsqueeze(3)?], 3)?)
}

/// [`gated_delta_rule`] over rows already packed (`[B, H, T, 2·d_k + d_v + 2]`: `q, k, v, g, β`, as
/// [`super::delta_pack`] makes them): `o: [B, H, T, d_v]`, one graph node.
pub fn gated_delta_rule_packed(packed: &Tensor, dk: usize) -> Result<Tensor> {
    let packed = if packed.device().is_cuda() { packed.to_dtype(DType::F32)? } else { packed.clone() };
    Ok(packed.contiguous()?.apply_op1(DeltaRule { dk })?)
}

/// Whether the whole-sequence kernels run on CUDA for heads of `dk × dv` on `device`: a build with the `cuda`
/// feature, the kernels enabled ([`super::set_enabled`]), `SGVLM_CUDA_DELTA_RULE` not `0`, and a size the kernels
/// are instantiated for (`d_k` of 16, 32, 64 or 128, `d_v` up to 1,024). Otherwise CUDA runs the chunked form.
pub fn cuda_supported(device: &candle_core::Device, dk: usize, dv: usize) -> bool {
    #[cfg(feature = "cuda")]
    {
        static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        device.is_cuda()
            && super::enabled()
            && super::switched_on(&ALLOWED, "SGVLM_CUDA_DELTA_RULE")
            && super::delta_rule_cuda::supports(dk, dv)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (device, dk, dv);
        false
    }
}
