//! How a GRPO run chooses the weights it hands on: greedy decoding of the validation prompts, the paired gain over
//! the starting policy and its margin ([`GrpoOptions::select_margin`]), and confirmation on prompts the choice never
//! saw ([`GrpoOptions::confirm_margin`]).

use std::path::PathBuf;

use serde_json::json;

use super::{score, GrpoOptions, GrpoParts, GrpoPrompt, GrpoSummary};
use crate::error::Result;
use crate::report::{MetricsLog, Reporter};
use crate::rollout::{Prompt, Sampling};

/// A checkpoint's validation reward against the starting policy's on the same prompts: the mean of the per-prompt
/// differences and its standard error (sample standard deviation over √n; 0 with fewer than two prompts).
pub fn paired_gain(candidate: &[f64], start: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = candidate.iter().zip(start).map(|(c, s)| c - s).collect();
    let n = d.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

/// Whether a paired validation gain over the starting policy counts ([`GrpoOptions::select_margin`]): it must be
/// positive and exceed `margin` standard errors.
pub fn clears_margin(gain: f64, se: f64, margin: f64) -> bool {
    gain > 0.0 && gain > margin * se
}

/// The share of `prompts` whose greedy answer, decoded without the generator's constraint, passes the strict
/// gate ([`GrpoOptions::free_check`]).
pub fn free_pass_rate(parts: &mut GrpoParts, prompts: &[GrpoPrompt], max_new_tokens: usize) -> Result<f64> {
    if prompts.is_empty() {
        return Ok(0.0);
    }
    let texts = greedy_texts(parts, &prompts.iter().collect::<Vec<_>>(), max_new_tokens, 1)?;
    let pass = texts.iter().filter(|t| sgvlm_graph::strict::is_valid(t, parts.schema, &parts.rewards.gate)).count();
    Ok(pass as f64 / prompts.len() as f64)
}

/// Greedy completions of `prompts` and the total reward of each (validation for best-checkpoint selection).
pub fn validate(
    parts: &mut GrpoParts,
    prompts: &[GrpoPrompt],
    max_new_tokens: usize,
) -> Result<(Vec<f64>, Vec<String>)> {
    greedy_scores(parts, &prompts.iter().collect::<Vec<_>>(), max_new_tokens)
}

/// The policy's greedy answers to `prompts` and the total reward of each ([`validate`], and the greedy baseline
/// of a GRPO step: [`super::Baseline::Greedy`]).
pub fn greedy_scores(
    parts: &mut GrpoParts,
    prompts: &[&GrpoPrompt],
    max_new_tokens: usize,
) -> Result<(Vec<f64>, Vec<String>)> {
    if prompts.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let texts = greedy_texts(parts, prompts, max_new_tokens, 0)?;
    let sols: Vec<&str> = prompts.iter().map(|p| p.solution.as_str()).collect();
    let (totals, _) = score(&texts, &sols, parts.schema, &parts.rewards);
    Ok((totals, texts))
}

/// The policy's greedy answers to `prompts`, decoded; `unconstrained` 1: without the generator's constraint.
fn greedy_texts(
    parts: &mut GrpoParts,
    prompts: &[&GrpoPrompt],
    max_new_tokens: usize,
    unconstrained: usize,
) -> Result<Vec<String>> {
    let s = Sampling {
        temperature: 0.0,
        max_new_tokens,
        seed: 0,
        stop_ids: parts.stop_ids.clone(),
        stop_seq: parts.stop_seq.clone(),
        unconstrained,
    };
    let ps: Vec<Prompt> = prompts.iter().map(|p| Prompt { ids: &p.prompt, image: p.image.as_ref() }).collect();
    let out = parts.rollout.generate(&ps, 1, &s)?;
    Ok(out.iter().map(|c| (parts.decode)(c)).collect())
}

/// The checkpoint choice of one run: the starting policy's greedy rewards on the validation and confirmation
/// prompts, against which every later validation is paired.
pub(super) struct Selection<'a> {
    val: &'a [GrpoPrompt],
    confirm: &'a [GrpoPrompt],
    o: &'a GrpoOptions,
    start: Vec<f64>,
    start_confirm: Vec<f64>,
}

impl<'a> Selection<'a> {
    pub(super) fn new(val: &'a [GrpoPrompt], confirm: &'a [GrpoPrompt], o: &'a GrpoOptions) -> Self {
        Self { val, confirm, o, start: Vec::new(), start_confirm: Vec::new() }
    }

    /// Validates the policy after `step` (0: the start) and takes it into `summary` when it is the best so far
    /// past the selection margin and, with confirmation prompts, past the confirmation margin; `keep` saves the
    /// taken weights and says where (`None`: not saved).
    pub(super) fn consider(
        &mut self,
        step: u64,
        parts: &mut GrpoParts,
        summary: &mut GrpoSummary,
        metrics: &MetricsLog,
        reporter: &dyn Reporter,
        keep: &dyn Fn() -> Result<Option<PathBuf>>,
    ) -> Result<()> {
        let (o, confirm) = (self.o, self.confirm);
        let (totals, _) = validate(parts, self.val, o.max_new_tokens)?;
        let v = if totals.is_empty() { 0.0 } else { totals.iter().sum::<f64>() / totals.len() as f64 };
        if step == 0 {
            self.start = totals.clone();
            self.start_confirm = validate(parts, confirm, o.max_new_tokens)?.0;
        }
        let (gain, se) = paired_gain(&totals, &self.start);
        metrics.write(&json!({"kind": "val", "step": step, "val_reward": v, "gain": gain, "gain_se": se}))?;
        reporter.message(&format!("step {step}: validation reward {v:.3} (vs start {gain:+.3} ± {se:.3})"));
        if o.free_check > 0 {
            let n = o.free_check.min(self.val.len());
            let rate = free_pass_rate(parts, &self.val[..n], o.max_new_tokens)?;
            metrics.write(&json!({"kind": "free_check", "step": step, "pass_rate": rate, "prompts": n}))?;
            reporter.message(&format!(
                "step {step}: {:.1} % of {n} validation answers decoded without the constraint pass the strict gate",
                100.0 * rate
            ));
            summary.free_valid_start.get_or_insert(rate);
            summary.free_valid_last = Some(rate);
        }
        let candidate =
            (step == 0 || clears_margin(gain, se, o.select_margin)) && summary.best_val_reward.is_none_or(|b| v > b);
        // A candidate is taken when the confirmation prompts (if any) also show its gain.
        let mut taken = candidate;
        let (mut cgain, mut cse) = (None, None);
        if step > 0 && !confirm.is_empty() && (candidate || o.confirm_all) {
            let (g, e) = paired_gain(&validate(parts, confirm, o.max_new_tokens)?.0, &self.start_confirm);
            taken = candidate && clears_margin(g, e, o.confirm_margin);
            let rec = json!({"kind": "confirm", "step": step, "gain": g, "gain_se": e, "candidate": candidate, "taken": taken});
            metrics.write(&rec)?;
            let verdict = match (candidate, taken) {
                (false, _) => "not a candidate",
                (true, true) => "taken",
                (true, false) => "not confirmed, not taken",
            };
            reporter.message(&format!(
                "step {step}: on the {} confirmation prompts {g:+.3} ± {e:.3}: {verdict}",
                confirm.len()
            ));
            if candidate && !taken {
                summary.unconfirmed += 1;
            }
            (cgain, cse) = (Some(g), Some(e));
        }
        if taken {
            summary.best_val_reward = Some(v);
            summary.best_step = Some(step);
            (summary.best_gain, summary.best_gain_se) = (Some(gain), Some(se));
            (summary.confirm_gain, summary.confirm_gain_se) = (cgain, cse);
            if let Some(path) = keep()? {
                summary.best_checkpoint = Some(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::testing::{parts_over, right_or_wrong, Scripted, SOLUTION};
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn paired_gain_is_the_mean_difference_and_its_standard_error() {
        // Differences 1, 2, 3: mean 2, sample sd 1, se 1/√3.
        let (g, se) = paired_gain(&[2.0, 4.0, 6.0], &[1.0, 2.0, 3.0]);
        assert!((g - 2.0).abs() < 1e-12 && (se - 1.0 / 3f64.sqrt()).abs() < 1e-12, "{g} {se}");
        // The same lead with no spread is certain; one prompt gives no spread to measure.
        assert_eq!(paired_gain(&[3.0, 3.0], &[1.0, 1.0]), (2.0, 0.0));
        assert_eq!(paired_gain(&[3.0], &[1.0]), (2.0, 0.0));
        assert_eq!(paired_gain(&[], &[]), (0.0, 0.0));
    }

    #[test]
    fn the_margin_rejects_gains_within_the_noise() {
        // The paper's rule (margin 0): any gain counts, no loss does.
        assert!(clears_margin(0.002, 0.05, 0.0));
        assert!(!clears_margin(-0.001, 0.0, 0.0));
        assert!(!clears_margin(0.0, 0.0, 0.0));
        // Two standard errors: a lead of 0.002 ± 0.05 is noise, 0.15 ± 0.05 is not.
        assert!(!clears_margin(0.002, 0.05, 2.0));
        assert!(clears_margin(0.15, 0.05, 2.0));
    }

    /// `run` with two steps, validating after each, over `script`'s greedy answers: `(best step, unconfirmed,
    /// greedy decodings)`.
    fn select(script: &[bool], with_confirm: bool, confirm_all: bool) -> (Option<u64>, u64, usize) {
        let policy = crate::policy::tiny_random();
        let reference = policy.frozen_model(candle_core::DType::F32).unwrap();
        let prompt = |ids: Vec<u32>| GrpoPrompt { prompt: ids, image: None, solution: SOLUTION.to_string() };
        let (train, val, confirm) = (
            vec![prompt(vec![5, 9, 2])],
            vec![prompt(vec![3, 1]), prompt(vec![4, 1])],
            vec![prompt(vec![5, 9]), prompt(vec![2, 6])],
        );
        let mut scripted = Scripted { greedy: script.to_vec(), calls: 0 };
        let mut parts = parts_over(&mut scripted, &reference, &right_or_wrong);
        let o = GrpoOptions {
            group: 2,
            prompts_per_step: 1,
            steps: 2,
            eval_every: 1,
            select_margin: 2.0,
            max_new_tokens: 4,
            confirm_all,
            ..GrpoOptions::default()
        };
        let confirm = if with_confirm { &confirm[..] } else { &[] };
        let save = |_: &Policy, _: &Path| Ok(());
        let s = super::super::run(&policy, &mut parts, &train, &val, confirm, &o, None, &save, &crate::report::Silent)
            .unwrap();
        (s.best_step, s.unconfirmed, scripted.calls)
    }

    #[test]
    fn a_checkpoint_past_the_margin_is_taken_only_when_fresh_prompts_confirm_it() {
        // Without confirmation prompts: start wrong, step 1 right (taken), step 2 right (no better: kept at 1).
        assert_eq!(select(&[false, true, true], false, false), (Some(1), 0, 3));
        // With them: start wrong on both sets; step 1 right on validation, wrong on confirmation: not taken;
        // step 2 right on both: taken.
        assert_eq!(select(&[false, false, true, false, true, true], true, false), (Some(2), 1, 6));
        // Never confirmed: the start stays.
        assert_eq!(select(&[false, false, true, false, true, false], true, false), (Some(0), 2, 6));
        // Diagnostics: the confirmation prompts are decoded at every validation; a checkpoint that is no candidate
        // (step 1: wrong on validation) is not taken however it does on them.
        assert_eq!(select(&[false, false, false, true, true, true], true, true), (Some(2), 0, 6));
    }
}
