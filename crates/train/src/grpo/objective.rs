//! The loss of GRPO's tokens: group-relative advantages, the clipped ratio objective with its KL term (and the
//! optional cap on the KL's log-ratio, ours), and the step's KL tally for `metrics.jsonl`.

use super::GrpoOptions;

/// Group-relative advantages: each reward minus its group's mean (groups of `group` consecutive rewards).
pub fn advantages(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group.max(1))
        .flat_map(|g| {
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            g.iter().map(move |r| r - mean)
        })
        .collect()
}

/// Advantages against a baseline per group: each reward minus its group's entry of `baseline` (one per group of
/// `group` consecutive rewards; [`super::Baseline::Greedy`]).
pub fn advantages_over(rewards: &[f64], group: usize, baseline: &[f64]) -> Vec<f64> {
    rewards.chunks(group.max(1)).zip(baseline).flat_map(|(g, b)| g.iter().map(move |r| r - b)).collect()
}

/// The per-token objective: the clipping range, the KL weight, and the optional cap on the KL's log-ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub eps_low: f64,
    pub eps_high: f64,
    pub beta: f64,
    /// [`GrpoOptions::kl_cap`]; `f64::INFINITY`: none (the paper's k3).
    pub kl_cap: f64,
}

impl Objective {
    pub fn of(o: &GrpoOptions) -> Self {
        Self { eps_low: o.eps_low, eps_high: o.eps_high, beta: o.beta, kl_cap: o.kl_cap.unwrap_or(f64::INFINITY) }
    }

    /// The loss of one token and its derivative with respect to the token's log-probability under the policy.
    ///
    /// `loss = −min(r·A, clip(r, 1 − eps_low, 1 + eps_high)·A) + β·k3`, `r = exp(logp − old)`,
    /// `k3 = exp(d) − d − 1` with `d = ref − logp`; past `d = kl_cap`, k3 goes on along its tangent there (value
    /// and slope continuous, the slope no steeper than at the cap).
    pub fn token(&self, logp: f64, old: f64, reference: f64, adv: f64) -> (f64, f64) {
        let r = (logp - old).exp();
        let unclipped = r * adv;
        let clipped = r.clamp(1.0 - self.eps_low, 1.0 + self.eps_high) * adv;
        // The unclipped term carries the gradient unless the clipped one is smaller (then the ratio is out of range
        // in the direction the advantage pushes, and the token contributes no policy gradient).
        let (obj, dobj) = if unclipped <= clipped { (unclipped, unclipped) } else { (clipped, 0.0) };
        let d = reference - logp;
        let (k3, dk3) = if d <= self.kl_cap {
            (k3(d), 1.0 - d.exp())
        } else {
            let c = self.kl_cap;
            (k3(c) + (c.exp() - 1.0) * (d - c), 1.0 - c.exp())
        };
        (-obj + self.beta * k3, -dobj + self.beta * dk3)
    }
}

/// The k3 estimator of KL(policy ‖ reference) at one sampled token, `d = ref − logp`: `exp(d) − d − 1`.
pub fn k3(d: f64) -> f64 {
    d.exp() - d - 1.0
}

/// The k3 values of a step's tokens in the loss: their sum and count, the largest with its two log-probabilities
/// and its step's allowed mass; the tokens left out as forced; and the tokens under the grammar threshold with the
/// sum of their allowed masses.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KlTally {
    pub(super) sum: f64,
    pub(super) n: usize,
    pub(super) max: f64,
    pub(super) max_logp: f64,
    pub(super) max_ref_logp: f64,
    pub(super) max_mass: Option<f64>,
    pub(super) forced: usize,
    pub(super) grammar: usize,
    pub(super) grammar_mass: f64,
}

impl KlTally {
    pub(super) fn add(&mut self, logp: f64, reference: f64, mass: Option<f64>) {
        let v = k3(reference - logp);
        self.sum += v;
        self.n += 1;
        if v > self.max {
            (self.max, self.max_logp, self.max_ref_logp, self.max_mass) = (v, logp, reference, mass);
        }
    }

    pub(super) fn merge(&mut self, other: KlTally) {
        self.sum += other.sum;
        self.n += other.n;
        self.forced += other.forced;
        self.grammar += other.grammar;
        self.grammar_mass += other.grammar_mass;
        if other.max > self.max {
            (self.max, self.max_logp, self.max_ref_logp, self.max_mass) =
                (other.max, other.max_logp, other.max_ref_logp, other.max_mass);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantages_subtract_the_group_mean_without_std_scaling() {
        let a = advantages(&[1.0, 3.0, 5.0, 0.0, 0.0, 9.0], 3);
        assert_eq!(a, vec![-2.0, 0.0, 2.0, -3.0, -3.0, 6.0]);
        assert_eq!(advantages(&[4.0, 4.0], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn token_terms_on_hand_computed_cases() {
        let paper = Objective { eps_low: 0.2, eps_high: 0.28, beta: 0.04, kl_cap: f64::INFINITY };
        let no_kl = Objective { beta: 0.0, ..paper };
        // On-policy (logp = old = ref): ratio 1, k3 = 0, gradient −A.
        let (l, d) = paper.token(-1.0, -1.0, -1.0, 2.0);
        assert!((l + 2.0).abs() < 1e-12 && (d + 2.0).abs() < 1e-12);
        // Ratio e^0.5 ≈ 1.6487 > 1.28 with A = 1: clipped objective 1.28, no policy gradient; KL to a reference
        // 0.5 below: d = −0.5, k3 = e^−0.5 + 0.5 − 1 = 0.106531, dk3 = 1 − e^−0.5 = 0.393469.
        let (l, d) = paper.token(0.0, -0.5, -0.5, 1.0);
        assert!((l - (-1.28 + 0.04 * 0.106_530_66)).abs() < 1e-6, "{l}");
        assert!((d - 0.04 * 0.393_469_34).abs() < 1e-6, "{d}");
        // Ratio e^−0.5 ≈ 0.6065 < 0.8 with A = −1: min(−0.6065, −0.8) = −0.8 (clipped): no gradient, loss 0.8.
        let (l, d) = no_kl.token(-1.0, -0.5, -1.0, -1.0);
        assert!((l - 0.8).abs() < 1e-12 && d == 0.0);
        // Ratio e^−0.5 with A = +1: the unclipped term is the smaller one, gradient −r·A.
        let r = (-0.5f64).exp();
        let (l, d) = no_kl.token(-1.0, -0.5, -1.0, 1.0);
        assert!((l + r).abs() < 1e-12 && (d + r).abs() < 1e-12);
    }

    #[test]
    fn the_kl_cap_continues_k3_along_its_tangent() {
        let paper = Objective { eps_low: 0.2, eps_high: 0.28, beta: 0.04, kl_cap: f64::INFINITY };
        let capped = Objective { kl_cap: 3.0, ..paper };
        // A = 0 leaves only the KL term. A token the reference gives −2 and the policy −14 (d = 12): the paper's
        // k3 is e^12 − 13 ≈ 162,742 and its gradient β·(1 − e^12) ≈ −6,510; capped at 3: k3(3) + (e^3 − 1)·9 =
        // 16.0855 + 19.0855·9 = 187.855, gradient β·(1 − e^3) = −0.763.
        let (l, d) = paper.token(-14.0, -14.0, -2.0, 0.0);
        assert!((l - 0.04 * (12f64.exp() - 13.0)).abs() < 1e-6 && (d - 0.04 * (1.0 - 12f64.exp())).abs() < 1e-6);
        let (l, d) = capped.token(-14.0, -14.0, -2.0, 0.0);
        assert!((l - 0.04 * 187.854_9).abs() < 1e-4, "{l}");
        assert!((d + 0.04 * 19.085_537).abs() < 1e-6, "{d}");
        // Below the cap, and on the other side (the policy above the reference), the cap changes nothing.
        for (logp, reference) in [(-3.0, -1.0), (-1.0, -3.0), (-4.0, -1.0 - 1e-9)] {
            assert_eq!(capped.token(logp, logp, reference, 0.7), paper.token(logp, logp, reference, 0.7));
        }
        // Continuous at the cap in value and slope.
        let (below, above) = (capped.token(-4.0 + 1e-9, -4.0, -1.0, 0.0), capped.token(-4.0 - 1e-9, -4.0, -1.0, 0.0));
        assert!((below.0 - above.0).abs() < 1e-7 && (below.1 - above.1).abs() < 1e-6);
    }

    #[test]
    fn kl_tally_keeps_the_largest_token() {
        let (mut a, mut b) = (KlTally::default(), KlTally::default());
        a.add(-1.0, -1.0, None);
        a.add(-5.0, -2.0, Some(0.5));
        b.add(-0.5, -1.0, None);
        b.add(-9.0, -1.0, Some(1e-4));
        b.forced = 2;
        a.merge(b);
        assert_eq!((a.n, a.forced), (4, 2));
        assert!((a.sum - (k3(3.0) + k3(-0.5) + k3(8.0))).abs() < 1e-9);
        assert_eq!((a.max, a.max_logp, a.max_ref_logp, a.max_mass), (k3(8.0), -9.0, -1.0, Some(1e-4)));
    }
}
