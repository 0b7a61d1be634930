//! Token sampling on the host: greedy, temperature and nucleus (top-p), each request with its own seeded generator
//! so that a request's output does not depend on what else runs in its batch.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::constrain::TokenMask;

/// How one sequence picks its next token.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: StdRng,
}

impl Sampler {
    /// `temperature <= 0` is greedy; `seed` None draws a seed from the OS.
    pub fn new(temperature: f32, top_p: f32, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self { temperature, top_p, rng }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || !self.temperature.is_finite()
    }

    /// Picks a token from `logits` (one per vocabulary id). With `allowed`, only those ids are candidates (an empty
    /// mask gives None). Without, every id is. NaN logits are never picked.
    pub fn pick(&mut self, logits: &[f32], allowed: Option<&TokenMask>) -> Option<u32> {
        let ids: Box<dyn Iterator<Item = u32> + '_> = match allowed {
            Some(a) => Box::new(a.iter().take_while(|&i| (i as usize) < logits.len())),
            None => Box::new(0..logits.len() as u32),
        };
        if self.is_greedy() {
            // The unmasked argmax (one pass over contiguous logits) is the answer whenever the mask allows it, which
            // for a trained model is most steps; iterating a mask of tens of thousands of ids costs far more.
            if let Some(mask) = allowed {
                if let Some(best) = argmax(0..logits.len() as u32, logits).filter(|&b| mask.contains(b)) {
                    return Some(best);
                }
            }
            return argmax(ids, logits);
        }
        let inv_t = 1.0 / self.temperature;
        let mut cand: Vec<(u32, f32)> =
            ids.filter(|&i| !logits[i as usize].is_nan()).map(|i| (i, logits[i as usize] * inv_t)).collect();
        if cand.is_empty() {
            return None;
        }
        let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0f64;
        for c in cand.iter_mut() {
            c.1 = (c.1 - max).exp();
            total += c.1 as f64;
        }
        if self.top_p < 1.0 && self.top_p > 0.0 {
            // Keep the smallest set of most likely tokens whose mass reaches top_p. Ties broken by id so the
            // order (and so the seeded draw) is deterministic.
            cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut mass = 0f64;
            let mut keep = cand.len();
            for (i, c) in cand.iter().enumerate() {
                mass += c.1 as f64;
                if mass >= self.top_p as f64 * total {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep);
            total = mass.min(total);
        }
        let r = self.rng.random::<f64>() * total;
        let mut acc = 0f64;
        for c in &cand {
            acc += c.1 as f64;
            if acc > r {
                return Some(c.0);
            }
        }
        cand.last().map(|c| c.0)
    }

    /// The share of the tempered distribution's mass (`softmax(logits / temperature)`, before any top-p cut) that
    /// `allowed` keeps: 1 when the mask removes nothing, near 0 when it forces a token the model finds unlikely.
    /// Greedy samplers measure at temperature 1. NaN logits carry no mass.
    pub fn allowed_share(&self, logits: &[f32], allowed: &TokenMask) -> f32 {
        let inv_t = if self.is_greedy() { 1.0 } else { 1.0 / self.temperature as f64 };
        let max = logits.iter().copied().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return 0.0;
        }
        let weight = |v: f32| if v.is_nan() { 0.0 } else { ((v - max) as f64 * inv_t).exp() };
        let total: f64 = logits.iter().map(|&v| weight(v)).sum();
        let kept: f64 =
            allowed.iter().take_while(|&i| (i as usize) < logits.len()).map(|i| weight(logits[i as usize])).sum();
        (kept / total) as f32
    }
}

fn argmax(ids: impl Iterator<Item = u32>, logits: &[f32]) -> Option<u32> {
    let mut best: Option<(u32, f32)> = None;
    for i in ids {
        let v = logits[i as usize];
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_allowed_logit() {
        let mut s = Sampler::new(0.0, 1.0, Some(1));
        let logits = [0.1, 3.0, 2.0, f32::NAN];
        assert_eq!(s.pick(&logits, None), Some(1));
        let mask = |ids: &[u32]| {
            let mut m = TokenMask::new(logits.len());
            ids.iter().for_each(|&i| m.insert(i));
            m
        };
        assert_eq!(s.pick(&logits, Some(&mask(&[0, 2, 3]))), Some(2));
        assert_eq!(s.pick(&logits, Some(&mask(&[]))), None);
        assert_eq!(s.pick(&logits, Some(&mask(&[3]))), None);
        assert_eq!(s.pick(&logits, Some(&mask(&[1, 2]))), Some(1));
        let ties = [1.0, 2.0, 2.0, 2.0];
        assert_eq!(s.pick(&ties, Some(&mask(&[0, 2, 3]))), Some(2));
    }

    #[test]
    fn the_allowed_share_is_the_tempered_mass_the_mask_keeps() {
        let logits = [0.0, 3f32.ln(), f32::NAN];
        let mask = |ids: &[u32]| {
            let mut m = TokenMask::new(logits.len());
            ids.iter().for_each(|&i| m.insert(i));
            m
        };
        // Temperature 1: probabilities 1/4 and 3/4; at 0.5 the weights are 1 and 9.
        let t1 = Sampler::new(1.0, 1.0, Some(0));
        assert!((t1.allowed_share(&logits, &mask(&[1])) - 0.75).abs() < 1e-6);
        assert!((t1.allowed_share(&logits, &mask(&[0])) - 0.25).abs() < 1e-6);
        assert!((t1.allowed_share(&logits, &mask(&[0, 1, 2])) - 1.0).abs() < 1e-6);
        assert_eq!(t1.allowed_share(&logits, &mask(&[2])), 0.0);
        let half = Sampler::new(0.5, 1.0, Some(0));
        assert!((half.allowed_share(&logits, &mask(&[1])) - 0.9).abs() < 1e-6);
        assert_eq!(t1.allowed_share(&[f32::NAN; 3], &mask(&[0])), 0.0);
    }

    #[test]
    fn seeded_sampling_repeats_and_top_p_cuts_the_tail() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32) * 0.1).collect();
        let draw = |seed| {
            let mut s = Sampler::new(1.0, 1.0, Some(seed));
            (0..20).map(|_| s.pick(&logits, None).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // A tiny top-p keeps only the most likely token.
        let mut s = Sampler::new(1.0, 1e-6, Some(3));
        assert!((0..20).all(|_| s.pick(&logits, None) == Some(49)));
    }
}
