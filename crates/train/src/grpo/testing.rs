//! Test doubles for GRPO: rollouts fixed or scripted in advance, and the parts around them.

use sgvlm_eval::rewards::RewardConfig;
use sgvlm_graph::Schema;
use sgvlm_model::Qwen35;

use super::{GrpoParts, GrpoPrompt};
use crate::error::Result;
use crate::optim::{AdamW, AdamWConfig};
use crate::rollout::{Prompt, Rollout, Sampling};

/// A one-object answer the rewards score as right.
pub(super) const SOLUTION: &str =
    "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>";

/// Completion `[1]` decodes to [`SOLUTION`], anything else to an empty answer.
pub(super) fn right_or_wrong(c: &[u32]) -> String {
    if c == [1] {
        SOLUTION.to_string()
    } else {
        "<answer>\n</answer>".to_string()
    }
}

/// Completions fixed in advance, dealt to the prompts' rollouts in order.
pub(super) struct Fixed(pub Vec<Vec<u32>>);

impl Rollout for Fixed {
    fn generate(&mut self, prompts: &[Prompt], n: usize, _: &Sampling) -> Result<Vec<Vec<u32>>> {
        Ok((0..prompts.len() * n).map(|i| self.0[i % self.0.len()].clone()).collect())
    }
}

/// GRPO parts over a test rollout: triplet schema, default rewards, no stop tokens, pad 0.
pub(super) fn parts_over<'a>(
    rollout: &'a mut dyn Rollout,
    reference: &'a Qwen35,
    decode: &'a dyn Fn(&[u32]) -> String,
) -> GrpoParts<'a> {
    GrpoParts {
        rollout,
        reference,
        decode,
        stop_ids: Vec::new(),
        stop_seq: Vec::new(),
        schema: Schema::Triplet,
        rewards: RewardConfig::default(),
        pad: 0,
    }
}

/// Greedy calls (validation, temperature 0) answer from a script, one entry per call: `true` writes the
/// reference answer for every prompt, `false` a wrong one. Sampled rollouts are all wrong (no advantage, so the
/// policy's steps change nothing and only the script decides).
pub(super) struct Scripted {
    pub greedy: Vec<bool>,
    pub calls: usize,
}

impl Rollout for Scripted {
    fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>> {
        let right = s.temperature == 0.0 && {
            self.calls += 1;
            self.greedy[self.calls - 1]
        };
        Ok(vec![vec![if right { 1 } else { 2 }]; prompts.len() * n])
    }
}

/// A tiny random policy's model, its frozen reference and a fresh optimizer over its trainable weights.
pub(super) fn tiny_setup() -> (Qwen35, Qwen35, AdamW) {
    let policy = crate::policy::tiny_random();
    let model = policy.model().unwrap();
    let reference = policy.frozen_model(candle_core::DType::F32).unwrap();
    let opt = AdamW::new(policy.trainable(), AdamWConfig::default()).unwrap();
    (model, reference, opt)
}

/// Two text prompts whose reference answer is [`SOLUTION`].
pub(super) fn two_prompts() -> [GrpoPrompt; 2] {
    [
        GrpoPrompt { prompt: vec![5, 9, 2], image: None, solution: SOLUTION.to_string() },
        GrpoPrompt { prompt: vec![4, 4, 8, 1], image: None, solution: SOLUTION.to_string() },
    ]
}

/// `n` single-token completions, right (`[1]`) and wrong (`[2]`) in turn.
pub(super) fn alternating(n: usize) -> Vec<Vec<u32>> {
    (0..n).map(|i| vec![if i % 2 == 0 { 1 } else { 2 }]).collect()
}
