//! Token log-probabilities and their gradients through the LM head, computed in vocabulary chunks.
//!
//! Why hand-written: autograd over `hidden · Wᵀ` keeps the whole `[tokens, vocab]` logits (and their softmax) alive
//! until backward — 1,300 tokens × 248k entries is 1.3 GB per sequence in f32. Here the head is applied one
//! vocabulary chunk at a time, twice: pass 1 finds each row's log-sum-exp (online, running max), pass 2 forms the
//! exact gradients `∂/∂h = c·(W[y] − Σ_v p_v W_v)` and `∂/∂W_v = Σ_t c_t (1[v = y_t] − p_tv) h_t` chunk by chunk.
//! They re-enter autograd through a *surrogate* scalar `Σ h·G_h + Σ W·G_W` whose gradient is exactly `(G_h, G_W)`,
//! so the rest of the model back-propagates as usual. Only rows that carry a loss are passed in (answer tokens),
//! never the prompt.
//!
//! A caller gives a coefficient `c_t = ∂L/∂logp_t` per token: `−1/N` for cross-entropy, the clipped-ratio and KL
//! terms for GRPO ([`crate::grpo::Objective::token`]).

use candle_core::{DType, Tensor, D};

use crate::error::Result;

/// Default vocabulary chunk (columns of the head computed at once).
pub const DEFAULT_CHUNK: usize = 16_384;

/// `log p(target_t)` under `softmax(hidden · weightᵀ)` for each row, without gradient.
///
/// `hidden` `[N, H]`, `weight` `[V, H]`, `targets` N ids.
pub fn token_logprobs(hidden: &Tensor, weight: &Tensor, targets: &[u32], chunk: usize) -> Result<Vec<f32>> {
    let h = hidden.detach().to_dtype(DType::F32)?;
    let w = weight.detach().to_dtype(DType::F32)?;
    let lse = log_sum_exp(&h, &w, chunk)?;
    let picked = target_logits(&h, &w, targets)?;
    Ok((picked - &lse)?.to_vec1()?)
}

fn target_logits(h: &Tensor, w: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let idx = Tensor::new(targets, h.device())?;
    Ok((h * w.index_select(&idx, 0)?)?.sum(D::Minus1)?)
}

/// Row-wise `log Σ_v exp(h·w_v)` over vocabulary chunks (running max, so no overflow).
fn log_sum_exp(h: &Tensor, w: &Tensor, chunk: usize) -> Result<Tensor> {
    let (n, _) = h.dims2()?;
    let v = w.dim(0)?;
    let mut m = Tensor::full(f32::NEG_INFINITY, n, h.device())?;
    let mut s = Tensor::zeros(n, DType::F32, h.device())?;
    let mut start = 0;
    while start < v {
        let len = chunk.min(v - start);
        let z = h.matmul(&w.narrow(0, start, len)?.t()?)?;
        let new_m = m.maximum(&z.max(D::Minus1)?)?;
        let e = z.broadcast_sub(&new_m.unsqueeze(1)?)?.exp()?.sum(D::Minus1)?;
        s = ((s * (m - &new_m)?.exp()?)? + e)?;
        m = new_m;
        start += len;
    }
    Ok((m + s.log()?)?)
}

/// What [`logprob_surrogate`] returns.
pub struct HeadGrad {
    /// `log p(target_t)` of each row (values).
    pub logp: Vec<f32>,
    /// A scalar whose gradient w.r.t. `hidden` and `weight` is `Σ_t c_t ∇logp_t`; its value is meaningless.
    pub surrogate: Tensor,
}

/// The log-probabilities of `targets` and a surrogate carrying `Σ_t coeffs[t] · ∇ log p(target_t)` into autograd.
///
/// `coeffs` may depend on the log-probabilities (GRPO's ratio): pass a closure that maps them to coefficients.
pub fn logprob_surrogate(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &[u32],
    chunk: usize,
    coeffs: impl FnOnce(&[f32]) -> Vec<f32>,
) -> Result<HeadGrad> {
    let dev = hidden.device();
    let h = hidden.detach().to_dtype(DType::F32)?;
    let w = weight.detach().to_dtype(DType::F32)?;
    let (n, hd) = h.dims2()?;
    let v = w.dim(0)?;
    // A vocabulary that fits one chunk (the tiny models') computes its logits once for both passes.
    let whole = if v <= chunk { Some(h.matmul(&w.t()?)?) } else { None };
    let lse = match &whole {
        Some(z) => {
            let m = z.max_keepdim(D::Minus1)?;
            (z.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()? + m)?.squeeze(1)?
        }
        None => log_sum_exp(&h, &w, chunk)?,
    };
    let logp: Vec<f32> = (target_logits(&h, &w, targets)? - &lse)?.to_vec1()?;
    let c = coeffs(&logp);
    if c.len() != n {
        return Err(crate::TrainError::Input(format!("{} coefficients for {n} tokens", c.len())));
    }
    let c = Tensor::from_vec(c, (n, 1), dev)?;
    let ch = h.broadcast_mul(&c)?;
    let idx = Tensor::new(targets, dev)?;
    // Target terms: ∂/∂h += c·W[y]; ∂/∂W[y] += c·h.
    let mut g_h = w.index_select(&idx, 0)?.broadcast_mul(&c)?;
    let mut g_w_chunks = Vec::new();
    let mut start = 0;
    while start < v {
        let len = chunk.min(v - start);
        let wc = w.narrow(0, start, len)?;
        let z = match &whole {
            Some(z) => z.clone(),
            None => h.matmul(&wc.t()?)?,
        };
        let p = z.broadcast_sub(&lse.unsqueeze(1)?)?.exp()?;
        let cp = p.broadcast_mul(&c)?;
        g_h = (g_h - cp.matmul(&wc)?)?;
        g_w_chunks.push(cp.t()?.matmul(&h)?.neg()?);
        start += len;
    }
    let g_w = Tensor::cat(&g_w_chunks, 0)?.index_add(&idx, &ch, 0)?;
    debug_assert_eq!(g_w.dims(), &[v, hd]);
    let surrogate =
        ((hidden.to_dtype(DType::F32)? * g_h)?.sum_all()? + (weight.to_dtype(DType::F32)? * g_w)?.sum_all()?)?;
    Ok(HeadGrad { logp, surrogate })
}
