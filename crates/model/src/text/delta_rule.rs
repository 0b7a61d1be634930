//! The gated delta rule, the recurrence at the heart of Gated DeltaNet, in two equivalent forms.
//!
//! With queries/keys L2-normalised and queries scaled by `1/sqrt(d_k)`, each head keeps a state `S` (`d_k × d_v`)
//! and for every token does `S ← exp(g)·S`, `S ← S + k·(β·(v − Sᵀk))ᵀ`, `o = Sᵀq`.
//!
//! * [`recurrent`] runs that loop token by token (one-token decode; also the test oracle).
//! * [`fused`] runs the loop as one graph node with a hand-written backward (on the CPU, and on CUDA through
//!   kernels of ours where [`crate::kernels::delta_rule::cuda_supported`]); the layer's training path packs its
//!   inputs straight from the conv output instead (`kernels::delta_pack`) and runs the same node.
//! * [`loops`] runs the loop from a given state without a graph node and returns the final state too (inference;
//!   the layer itself runs the same kernel on rows it packs straight from its conv output,
//!   `kernels::delta_rule::gated_delta_rule_packed_with_state`).
//! * [`chunked`] processes `chunk`-token blocks with matrix products (prefill and training): inside a chunk the
//!   delta updates are condensed by the UT transform `(I + L)⁻¹`, a unit lower-triangular inverse computed by
//!   block recursion (`unit_lower_inverse`), and only the chunk-to-chunk state pass is sequential.
//!
//! Both take `q, k: [B, T, H, d_k]` (already expanded to the value-head count), `v: [B, T, H, d_v]`,
//! `g, beta: [B, T, H]` and an optional initial state `[B, H, d_k, d_v]`, and return the output `[B, T, H, d_v]`
//! and the final state. Every op has a candle backward pass.

use candle_core::{DType, Tensor, D};

use crate::error::{Error, Result};
use crate::ops::{compute_dtype, l2_normalize};

/// Epsilon of the q/k L2 norms (also read by the decode kernels, `kernels::delta_decode`).
pub(crate) const QK_NORM_EPS: f64 = 1e-6;

/// Batched matmul over any number of batch dims: candle's CPU matmul rejects rank-5 operands (it reads one batch
/// stride), so batch dims are flattened into one.
fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ad = a.dims();
    let bd = b.dims();
    let r = ad.len();
    if r <= 3 {
        return Ok(a.contiguous()?.matmul(&b.contiguous()?)?);
    }
    let batch: usize = ad[..r - 2].iter().product();
    let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
    let out = a.contiguous()?.reshape((batch, m, k))?.matmul(&b.contiguous()?.reshape((batch, k, n))?)?;
    let mut dims = ad[..r - 2].to_vec();
    dims.extend([m, n]);
    Ok(out.reshape(dims)?)
}

/// Common preparation: heads-first layout, f32, normalised and scaled q/k.
fn prepare(q: &Tensor, k: &Tensor, v: &Tensor, g: &Tensor, beta: &Tensor) -> Result<[Tensor; 5]> {
    let dt = compute_dtype(v.dtype());
    let heads_first = |x: &Tensor| -> Result<Tensor> { Ok(x.transpose(1, 2)?.to_dtype(dt)?.contiguous()?) };
    let dk = q.dim(D::Minus1)?;
    let q = (l2_normalize(&heads_first(q)?, QK_NORM_EPS)? * (dk as f64).powf(-0.5))?;
    let k = l2_normalize(&heads_first(k)?, QK_NORM_EPS)?;
    Ok([q, k, heads_first(v)?, heads_first(g)?, heads_first(beta)?])
}

fn initial_state(init: Option<&Tensor>, b: usize, h: usize, dk: usize, dv: usize, like: &Tensor) -> Result<Tensor> {
    match init {
        Some(s) => {
            if s.dims() != [b, h, dk, dv] {
                return Err(Error::Input(format!(
                    "delta-rule state has shape {:?}, expected {:?}",
                    s.dims(),
                    [b, h, dk, dv]
                )));
            }
            Ok(s.to_dtype(like.dtype())?)
        }
        None => Ok(Tensor::zeros((b, h, dk, dv), like.dtype(), like.device())?),
    }
}

/// Token-by-token gated delta rule.
pub fn recurrent(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    g: &Tensor,
    beta: &Tensor,
    init: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let out_dtype = v.dtype();
    let (b, t, h, dk) = q.dims4()?;
    let dv = v.dim(D::Minus1)?;
    let [q, k, v, g, beta] = prepare(q, k, v, g, beta)?;
    let mut s = initial_state(init, b, h, dk, dv, &q)?;
    let mut outs = Vec::with_capacity(t);
    for i in 0..t {
        let q_t = q.narrow(2, i, 1)?; // [B,H,1,dk]
        let k_t = k.narrow(2, i, 1)?;
        let v_t = v.narrow(2, i, 1)?; // [B,H,1,dv]
        let decay = g.narrow(2, i, 1)?.exp()?.unsqueeze(3)?; // [B,H,1,1]
        let beta_t = beta.narrow(2, i, 1)?.unsqueeze(3)?;
        s = s.broadcast_mul(&decay)?;
        let kv_mem = mm(&k_t, &s)?; // [B,H,1,dv]
        let delta = (v_t - kv_mem)?.broadcast_mul(&beta_t)?;
        s = (s + mm(&k_t.transpose(2, 3)?, &delta)?)?;
        outs.push(mm(&q_t, &s)?);
    }
    let out = Tensor::cat(&outs, 2)?.transpose(1, 2)?.contiguous()?.to_dtype(out_dtype)?;
    Ok((out, s))
}

/// The gated delta rule from a zero state as one graph node with a hand-written backward
/// ([`crate::kernels::delta_rule`]), on the CPU and on CUDA. Same inputs and output as [`chunked`] without a state.
pub fn fused(q: &Tensor, k: &Tensor, v: &Tensor, g: &Tensor, beta: &Tensor) -> Result<Tensor> {
    let out_dtype = v.dtype();
    let [q, k, v, g, beta] = prepare(q, k, v, g, beta)?;
    let out = crate::kernels::gated_delta_rule(&q, &k, &v, &g, &beta)?;
    Ok(out.transpose(1, 2)?.contiguous()?.to_dtype(out_dtype)?)
}

/// The gated delta rule from `init` (or zero) token by token without a graph node
/// ([`crate::kernels::delta_rule::gated_delta_rule_with_state`]): inference, where it replaces [`chunked`] (same
/// inputs and outputs; f32 or f64 on the CPU, f32 on CUDA).
pub fn loops(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    g: &Tensor,
    beta: &Tensor,
    init: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let out_dtype = v.dtype();
    let (b, _, h, dk) = q.dims4()?;
    let dv = v.dim(D::Minus1)?;
    let [q, k, v, g, beta] = prepare(q, k, v, g, beta)?;
    let init = init.map(|s| initial_state(Some(s), b, h, dk, dv, &q)).transpose()?;
    let (out, state) = crate::kernels::delta_rule::gated_delta_rule_with_state(&q, &k, &v, &g, &beta, init.as_ref())?;
    Ok((out.transpose(1, 2)?.contiguous()?.to_dtype(out_dtype)?, state))
}

/// Inverse of the unit lower-triangular matrix `I + strict_lower(a)` for `a: [..., n, n]`, by the block rule
/// `[[A, 0], [C, D]]⁻¹ = [[A⁻¹, 0], [−D⁻¹·C·A⁻¹, D⁻¹]]` (equal halves are inverted together in one batch).
/// The leading dims are flattened into one batch axis, so the recursion's tensors stay rank 3 (candle's CPU
/// iterators handle at most eight dims).
pub fn unit_lower_inverse(a: &Tensor) -> Result<Tensor> {
    let dims = a.dims().to_vec();
    let n = a.dim(D::Minus1)?;
    let batch: usize = dims[..dims.len() - 2].iter().product();
    let mask = Tensor::tril2(n, a.dtype(), a.device())?;
    let eye = Tensor::eye(n, a.dtype(), a.device())?;
    // Keep the strict lower triangle and put ones on the diagonal.
    let m = (a.broadcast_mul(&(mask - &eye)?)?.broadcast_add(&eye))?;
    Ok(block_inverse(&m.reshape((batch, n, n))?)?.reshape(dims)?)
}

/// [`unit_lower_inverse`] of `m` `[batch, n, n]`, already unit lower-triangular.
fn block_inverse(m: &Tensor) -> Result<Tensor> {
    let (batch, n, _) = m.dims3()?;
    if n == 1 {
        return Ok(m.ones_like()?);
    }
    let h = n / 2;
    let r = n - h;
    let top_left = m.narrow(1, 0, h)?.narrow(2, 0, h)?;
    let bottom_left = m.narrow(1, h, r)?.narrow(2, 0, h)?;
    let bottom_right = m.narrow(1, h, r)?.narrow(2, h, r)?;
    let (a_inv, d_inv) = if h == r {
        // Both halves as one batch twice as long.
        let both = block_inverse(&Tensor::cat(&[&top_left, &bottom_right], 0)?)?;
        (both.narrow(0, 0, batch)?, both.narrow(0, batch, batch)?)
    } else {
        (block_inverse(&top_left.contiguous()?)?, block_inverse(&bottom_right.contiguous()?)?)
    };
    let c = mm(&mm(&d_inv, &bottom_left)?, &a_inv)?.neg()?;
    let zeros = Tensor::zeros((batch, h, r), m.dtype(), m.device())?;
    let top = Tensor::cat(&[&a_inv, &zeros], 2)?;
    let bottom = Tensor::cat(&[&c, &d_inv], 2)?;
    Ok(Tensor::cat(&[&top, &bottom], 1)?)
}

/// Chunked gated delta rule (the parallel form used for prefill and training).
pub fn chunked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    g: &Tensor,
    beta: &Tensor,
    chunk: usize,
    init: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    if chunk == 0 {
        return Err(Error::Input("chunk size must be positive".into()));
    }
    let out_dtype = v.dtype();
    let (b, t, h, dk) = q.dims4()?;
    let dv = v.dim(D::Minus1)?;
    let [q, k, v, g, beta] = prepare(q, k, v, g, beta)?;
    let dev = q.device().clone();
    let pad = (chunk - t % chunk) % chunk;
    let n = (t + pad) / chunk;
    let padded = |x: &Tensor| -> Result<Tensor> { Ok(x.pad_with_zeros(2, 0, pad)?) };
    let (q, k, v, g, beta) = (padded(&q)?, padded(&k)?, padded(&v)?, padded(&g)?, padded(&beta)?);
    let beta4 = beta.unsqueeze(3)?;
    let v_beta = v.broadcast_mul(&beta4)?.reshape((b, h, n, chunk, dv))?;
    let k_beta = k.broadcast_mul(&beta4)?.reshape((b, h, n, chunk, dk))?;
    let q = q.reshape((b, h, n, chunk, dk))?;
    let k = k.reshape((b, h, n, chunk, dk))?;
    let cum = g.reshape((b, h, n, chunk))?.cumsum(3)?; // log of the decay since the chunk start

    // pairwise[i, j] = exp(cum_i − cum_j) for j ≤ i, 0 above the diagonal (masked before exp: no overflow).
    let pair = cum.unsqueeze(4)?.broadcast_sub(&cum.unsqueeze(3)?)?;
    let shape = pair.shape().clone();
    let lower = Tensor::tril2(chunk, DType::U8, &dev)?.broadcast_as(shape.clone())?;
    let neg_inf = Tensor::new(f32::NEG_INFINITY, &dev)?.to_dtype(pair.dtype())?.broadcast_as(shape)?;
    let pairwise = lower.where_cond(&pair, &neg_inf)?.exp()?;

    let k_t = k.transpose(3, 4)?.contiguous()?;
    let ut = mm(&k_beta, &k_t)?.mul(&pairwise)?;
    let intra = mm(&q, &k_t)?.mul(&pairwise)?;
    let exp_cum = cum.exp()?.unsqueeze(4)?;
    let t_inv = unit_lower_inverse(&ut)?;
    let new_values = mm(&t_inv, &v_beta)?;
    let k_cumdecay = mm(&t_inv, &k_beta.broadcast_mul(&exp_cum)?)?;

    let q_decayed = q.broadcast_mul(&exp_cum)?;
    let last = cum.narrow(3, chunk - 1, 1)?; // [B,H,N,1]
    let k_decayed = k.broadcast_mul(&last.broadcast_sub(&cum)?.exp()?.unsqueeze(4)?)?;
    let chunk_decay = last.exp()?; // [B,H,N,1]

    let mut s = initial_state(init, b, h, dk, dv, &q)?;
    let mut outs = Vec::with_capacity(n);
    let at = |x: &Tensor, i: usize| -> Result<Tensor> { Ok(x.narrow(2, i, 1)?.squeeze(2)?.contiguous()?) };
    for i in 0..n {
        let v_new = (at(&new_values, i)? - mm(&at(&k_cumdecay, i)?, &s)?)?;
        let inter = mm(&at(&q_decayed, i)?, &s)?;
        outs.push((inter + mm(&at(&intra, i)?, &v_new)?)?);
        let decay = at(&chunk_decay, i)?.unsqueeze(3)?; // [B,H,1,1]
        s = (s.broadcast_mul(&decay)? + mm(&at(&k_decayed, i)?.transpose(2, 3)?, &v_new)?)?;
    }
    let out = Tensor::cat(&outs, 2)?.narrow(2, 0, t)?.transpose(1, 2)?.contiguous()?.to_dtype(out_dtype)?;
    Ok((out, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    fn random_inputs(b: usize, t: usize, h: usize, dk: usize, dv: usize) -> [Tensor; 5] {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (b, t, h, dk), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (b, t, h, dk), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (b, t, h, dv), &dev).unwrap();
        let g = (Tensor::rand(0f32, 1.0, (b, t, h), &dev).unwrap() * -0.5).unwrap();
        let beta = Tensor::rand(0f32, 1.0, (b, t, h), &dev).unwrap();
        [q, k, v, g, beta]
    }

    #[test]
    fn unit_lower_inverse_inverts() {
        let a = Tensor::randn(0f32, 0.5, (3, 8, 8), &Device::Cpu).unwrap();
        let inv = unit_lower_inverse(&a).unwrap();
        let eye = Tensor::eye(8, DType::F32, &Device::Cpu).unwrap();
        let tril = Tensor::tril2(8, DType::F32, &Device::Cpu).unwrap();
        let m = a.broadcast_mul(&(tril - &eye).unwrap()).unwrap().broadcast_add(&eye).unwrap();
        let prod = m.matmul(&inv).unwrap();
        assert!(max_abs_diff(&prod, &eye.broadcast_as((3, 8, 8)).unwrap()) < 1e-5);
        // Many leading dims and a deep recursion (the chunked form's [B, H, chunks, n, n]; candle's CPU iterators
        // take at most eight dims, which stacking the halves on a new axis per level would exceed).
        let a = Tensor::randn(0f32, 0.5, (2, 2, 3, 16, 16), &Device::Cpu).unwrap();
        let inv = unit_lower_inverse(&a).unwrap();
        assert_eq!(inv.dims(), a.dims());
        let eye = Tensor::eye(16, DType::F32, &Device::Cpu).unwrap();
        let tril = Tensor::tril2(16, DType::F32, &Device::Cpu).unwrap();
        let m = a.broadcast_mul(&(tril - &eye).unwrap()).unwrap().broadcast_add(&eye).unwrap();
        let prod = m.reshape((12, 16, 16)).unwrap().matmul(&inv.reshape((12, 16, 16)).unwrap()).unwrap();
        assert!(max_abs_diff(&prod, &eye.broadcast_as((12, 16, 16)).unwrap()) < 1e-4);
    }

    #[test]
    fn chunked_equals_recurrent_for_every_chunk_size() {
        let [q, k, v, g, beta] = random_inputs(2, 11, 3, 8, 5);
        let init = Tensor::randn(0f32, 0.3, (2, 3, 8, 5), &Device::Cpu).unwrap();
        let (o_ref, s_ref) = recurrent(&q, &k, &v, &g, &beta, Some(&init)).unwrap();
        for chunk in [1, 2, 4, 8, 64] {
            let (o, s) = chunked(&q, &k, &v, &g, &beta, chunk, Some(&init)).unwrap();
            assert!(max_abs_diff(&o, &o_ref) < 1e-5, "chunk {chunk}: {}", max_abs_diff(&o, &o_ref));
            assert!(max_abs_diff(&s, &s_ref) < 1e-5, "chunk {chunk} state");
        }
    }

    #[test]
    fn cpu_loops_equal_the_chunked_form_with_and_without_a_state() {
        let f64s = |t: Tensor| t.to_dtype(DType::F64).unwrap();
        let [q, k, v, g, beta] = random_inputs(2, 37, 3, 8, 5).map(f64s);
        let init = f64s(Tensor::randn(0f32, 0.3, (2, 3, 8, 5), &Device::Cpu).unwrap());
        let diff = |a: &Tensor, b: &Tensor| -> f64 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
        };
        for start in [None, Some(&init)] {
            let (o_ref, s_ref) = chunked(&q, &k, &v, &g, &beta, 16, start).unwrap();
            let (o, s) = loops(&q, &k, &v, &g, &beta, start).unwrap();
            assert_eq!((o.dims(), s.dims()), (o_ref.dims(), s_ref.dims()));
            assert!(diff(&o, &o_ref) < 1e-10 && diff(&s, &s_ref) < 1e-10, "{} {}", diff(&o, &o_ref), diff(&s, &s_ref));
        }
        // f32 in, f32 out; a state of the wrong shape is an error.
        let [q, k, v, g, beta] = random_inputs(1, 5, 2, 4, 3);
        let (o, s) = loops(&q, &k, &v, &g, &beta, None).unwrap();
        assert_eq!((o.dtype(), o.dims(), s.dims()), (DType::F32, &[1, 5, 2, 3][..], &[1, 2, 4, 3][..]));
        let bad = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(loops(&q, &k, &v, &g, &beta, Some(&bad)).is_err());
    }

    #[test]
    fn fused_kernel_matches_the_chunked_form_and_its_gradients() {
        // f64 so that the comparison sees the kernel's algebra, not rounding; T = 75 spans three kernel blocks.
        let f64s = |t: Tensor| t.to_dtype(DType::F64).unwrap();
        let [q, k, v, g, beta] = random_inputs(2, 75, 3, 8, 5).map(f64s);
        let vars: Vec<candle_core::Var> =
            [&q, &k, &v, &g, &beta].iter().map(|t| candle_core::Var::from_tensor(t).unwrap()).collect();
        let [qv, kv, vv, gv, bv] = [0, 1, 2, 3, 4].map(|i| vars[i].as_tensor().clone());
        let seed = f64s(Tensor::randn(0f32, 1.0, (2, 75, 3, 5), &Device::Cpu).unwrap());
        let (o_ref, _) = chunked(&qv, &kv, &vv, &gv, &bv, 16, None).unwrap();
        let o = fused(&qv, &kv, &vv, &gv, &bv).unwrap();
        let diff = |a: &Tensor, b: &Tensor| -> f64 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
        };
        assert!(diff(&o, &o_ref) < 1e-10, "outputs differ by {}", diff(&o, &o_ref));
        let ga = (o * &seed).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (o_ref * &seed).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, x) in ["q", "k", "v", "g", "beta"].iter().zip([&qv, &kv, &vv, &gv, &bv]) {
            let (a, b) = (ga.get(x).unwrap(), gb.get(x).unwrap());
            let scale: f64 = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
            assert!(scale > 1e-3, "{name}: the reference gradient is empty");
            assert!(diff(a, b) < 1e-9 * scale.max(1.0), "{name} gradient differs by {}", diff(a, b));
        }
    }

    #[test]
    fn split_prefill_continues_the_state() {
        let [q, k, v, g, beta] = random_inputs(1, 9, 2, 4, 4);
        let (o_full, _) = chunked(&q, &k, &v, &g, &beta, 4, None).unwrap();
        let part = |x: &Tensor, s: usize, l: usize| x.narrow(1, s, l).unwrap();
        let (_, s1) =
            chunked(&part(&q, 0, 5), &part(&k, 0, 5), &part(&v, 0, 5), &part(&g, 0, 5), &part(&beta, 0, 5), 4, None)
                .unwrap();
        let (o2, _) = recurrent(
            &part(&q, 5, 4),
            &part(&k, 5, 4),
            &part(&v, 5, 4),
            &part(&g, 5, 4),
            &part(&beta, 5, 4),
            Some(&s1),
        )
        .unwrap();
        assert!(max_abs_diff(&o2, &part(&o_full, 5, 4)) < 1e-5);
    }
}
