//! A loss-weight curriculum over a class of tokens: the number tokens of an answer (box coordinates, ids, counts)
//! start with a reduced weight in the cross-entropy, which rises to 1 later in training.
//!
//! Why: in a scene graph most answer tokens are coordinate digits, which a model from random weights first learns
//! as a prior (every `y1` is 3xx), and Adam scales each step by the gradient of the whole loss. The tokens that
//! need the image first — the object names — are ~5 % of an answer, so their share of each step is ~5 %, and on
//! the synthetic demo the image path collapsed into a constant before it carried them
//! (`crates/train/results/demo_image_reading.md`). Down-weighting the digits early gives the names the step; the
//! full objective takes over before the end, so the final model is trained on the plain cross-entropy.

use sgvlm_model::tokenizer::Tokenizer;

/// Weight `weight` on `tokens` until `hold` of training, rising linearly to 1 at `until` (fractions of the run).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenWeight {
    /// Sorted token ids.
    pub tokens: Vec<u32>,
    pub weight: f32,
    pub hold: f64,
    pub until: f64,
}

impl TokenWeight {
    /// The curriculum on every token made only of ASCII digits.
    pub fn digits(tokenizer: &Tokenizer, weight: f32, hold: f64, until: f64) -> Self {
        let tokens = tokenizer
            .token_bytes()
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.special && !t.bytes.is_empty() && t.bytes.iter().all(u8::is_ascii_digit))
            .map(|(i, _)| i as u32)
            .collect();
        Self { tokens, weight, hold, until: until.max(hold) }
    }

    /// The class weight at `progress` (0 at the start of training, 1 at the end).
    pub fn at(&self, progress: f64) -> f32 {
        if progress <= self.hold {
            self.weight
        } else if progress >= self.until || self.until <= self.hold {
            1.0
        } else {
            let f = ((progress - self.hold) / (self.until - self.hold)) as f32;
            self.weight + (1.0 - self.weight) * f
        }
    }

    fn contains(&self, t: u32) -> bool {
        self.tokens.binary_search(&t).is_ok()
    }

    /// Per-token weights of `targets` when the class weight is `w`.
    pub fn weights(&self, targets: &[u32], w: f32) -> Vec<f32> {
        targets.iter().map(|&t| if self.contains(t) { w } else { 1.0 }).collect()
    }

    /// How many of `targets` are in the class.
    pub fn count(&self, targets: &[u32]) -> usize {
        targets.iter().filter(|&&t| self.contains(t)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_tokens_are_found_and_weighted_on_a_schedule() {
        let tok = Tokenizer::tiny();
        let c = TokenWeight::digits(&tok, 0.1, 0.4, 0.6);
        let ids = tok.encode("1,cup,291,290").unwrap();
        let text: Vec<String> = ids.iter().map(|&i| tok.decode(&[i], false).unwrap()).collect();
        let w = c.weights(&ids, 0.1);
        for (t, w) in text.iter().zip(&w) {
            let digit = t.bytes().all(|b| b.is_ascii_digit());
            assert_eq!(*w, if digit { 0.1 } else { 1.0 }, "token {t:?}");
        }
        assert!(w.contains(&0.1) && w.contains(&1.0));
        assert_eq!(c.count(&ids), w.iter().filter(|&&x| x == 0.1).count());
        assert_eq!(c.at(0.0), 0.1);
        assert_eq!(c.at(0.4), 0.1);
        assert!((c.at(0.5) - 0.55).abs() < 1e-6);
        assert_eq!(c.at(0.6), 1.0);
        assert_eq!(c.at(1.0), 1.0);
    }
}
