//! [`Rollout`] through the native engine (`sgvlm_infer::engine`), so GRPO rollouts and evaluation can use its
//! constrained decoding: with a [`Constraint`], every finished completion passes the strict gate, so every rollout
//! earns a reward signal from the start instead of failing the format.
//!
//! The engine is fed the trainer's own prompt ids and preprocessed images ([`Engine::generate_prepared`]), so
//! rollouts condition on exactly the tokens the model is trained on. Build the engine over
//! [`crate::demo::inference_model`] of the policy: its tensors are detached views of the policy's `Var`s, which the
//! optimizer updates in place, so one engine serves every GRPO step (tested below). The log-probabilities the
//! GRPO loss recomputes are the model's unconstrained ones, as when a server applies the grammar; with
//! `EngineConfig::record_allowed_mass` the engine also reports, per constrained token, the share of the sampling
//! mass the grammar kept ([`Rollout::allowed_mass`]), so the loss can leave out the tokens the grammar forced
//! (`GrpoOptions::forced_below`).

use candle_core::Tensor;
use sgvlm_infer::engine::prompt::Prompt as EnginePrompt;
use sgvlm_infer::engine::Engine;
use sgvlm_infer::{Constraint, GenParams};
use sgvlm_model::tokenizer::NON_THINKING_PREFIX;

use crate::error::Result;
use crate::rollout::{Prompt, Rollout, Sampling};

/// Rollouts from an [`Engine`], optionally constrained (all but the last [`Sampling::unconstrained`] of each
/// prompt's completions).
pub struct EngineRollout {
    pub engine: Engine,
    /// `Some`: closed-grammar decoding (module doc); `None`: free decoding.
    pub constraint: Option<Constraint>,
    /// Rollouts the engine failed (e.g. a constrained dead end), returned as empty completions so that a run
    /// goes on: GRPO skips them in the loss and they score as invalid answers.
    pub failed: usize,
    /// The first such error, for the report.
    pub first_error: Option<String>,
    /// [`Rollout::allowed_mass`] of the last call (empty unless the engine records it).
    allowed_mass: Vec<Vec<f32>>,
}

impl EngineRollout {
    /// Rollouts from `engine`; build it with [`sgvlm_infer::engine::EngineConfig::record_allowed_mass`] for
    /// [`Rollout::allowed_mass`].
    pub fn new(engine: Engine, constraint: Option<Constraint>) -> Self {
        Self { engine, constraint, failed: 0, first_error: None, allowed_mass: Vec::new() }
    }

    fn prompt(&self, p: &Prompt) -> Result<EnginePrompt> {
        let (pixel_values, grids) = match p.image {
            Some((px, g)) => {
                let rows = g[0] * g[1] * g[2];
                let cols = px.len() / rows.max(1);
                (Some(Tensor::from_vec(px.clone(), (rows, cols), self.engine.device())?), vec![*g])
            }
            None => (None, Vec::new()),
        };
        Ok(EnginePrompt { ids: p.ids.to_vec(), pixel_values, grids, assistant_prefix: NON_THINKING_PREFIX.into() })
    }
}

impl Rollout for EngineRollout {
    /// Completion ids as [`crate::rollout::CachedSampler`] returns them: the end token or the stop sequence kept.
    /// Rollout `k` of all prompts uses seed `s.seed + k`-derived sampling, so a group's rollouts differ.
    fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>> {
        let stop = if s.stop_seq.is_empty() {
            Vec::new()
        } else {
            vec![self.engine.tokenizer().decode(&s.stop_seq, false)?]
        };
        let mut items = Vec::with_capacity(prompts.len() * n);
        for p in prompts {
            let ep = self.prompt(p)?;
            let free_from = n - s.unconstrained.min(n);
            for j in 0..n {
                let params = GenParams {
                    max_new_tokens: s.max_new_tokens.max(1),
                    temperature: s.temperature,
                    top_p: 1.0,
                    seed: Some(s.seed.wrapping_mul(1_000_003).wrapping_add(items.len() as u64)),
                    stop: stop.clone(),
                    response_prefix: None,
                    constraint: if j < free_from { self.constraint.clone() } else { None },
                };
                items.push((ep.clone(), params));
            }
        }
        let end_ids = &s.stop_ids;
        let mut out = Vec::with_capacity(items.len());
        self.allowed_mass.clear();
        for (i, r) in self.engine.generate_prepared(&items).into_iter().enumerate() {
            match r {
                Ok(g) => {
                    let (mut t, mut m) = (g.tokens, g.allowed_mass);
                    // The engine ends on its own end tokens; the trainer's stop ids are the same (`<|im_end|>`).
                    if let Some(k) = t.iter().position(|x| end_ids.contains(x)) {
                        t.truncate(k + 1);
                    }
                    // One share per token where recorded (constrained, sampled), none for free rollouts.
                    m.truncate(t.len());
                    out.push(t);
                    self.allowed_mass.push(m);
                }
                Err(e) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| format!("rollout {i}: {e}"));
                    out.push(Vec::new());
                    self.allowed_mass.push(Vec::new());
                }
            }
        }
        Ok(out)
    }

    fn allowed_mass(&self) -> Option<&[Vec<f32>]> {
        Some(&self.allowed_mass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{demo_encoder, inference_model, model_config, scene, user_prompt, vocabulary};
    use crate::encode::Encoder;
    use crate::policy::{Freeze, Policy};
    use crate::rollout::CachedSampler;
    use candle_core::Device;
    use sgvlm_graph::{Schema, StrictConfig};
    use sgvlm_infer::engine::EngineConfig;
    use sgvlm_model::tokenizer::Tokenizer;
    use std::sync::Arc;

    fn setup() -> (Policy, Encoder, Vec<crate::batch::Example>) {
        let cfg = model_config(false);
        let w = sgvlm_model::checkpoint::random_weights(&cfg, 5, &Device::Cpu).unwrap();
        let policy = Policy::from_tensors(cfg.clone(), w, Freeze::default(), &Device::Cpu).unwrap();
        let enc = demo_encoder(&cfg, 64 * 48).unwrap();
        let ex = (0..2)
            .map(|i| {
                let s = scene(1, 2, i, (64, 48));
                enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap()
            })
            .collect();
        (policy, enc, ex)
    }

    fn engine_rollout(policy: &Policy, enc: &Encoder, constraint: Option<Constraint>) -> EngineRollout {
        let engine = Engine::new(
            inference_model(policy).unwrap(),
            Tokenizer::tiny(),
            enc.processor.clone(),
            EngineConfig { max_batch: 4, ..EngineConfig::default() },
        )
        .unwrap();
        EngineRollout::new(engine, constraint)
    }

    fn sampling(enc: &Encoder, max_new_tokens: usize, temperature: f32) -> Sampling {
        Sampling {
            temperature,
            max_new_tokens,
            seed: 3,
            stop_ids: vec![enc.im_end],
            stop_seq: enc.tokenizer.encode("</answer>").unwrap(),
            unconstrained: 0,
        }
    }

    #[test]
    fn greedy_engine_rollouts_match_the_cached_sampler_and_see_weight_updates() {
        let (policy, enc, ex) = setup();
        let prompts: Vec<Prompt> = ex.iter().map(|e| Prompt { ids: &e.prompt, image: e.image.as_ref() }).collect();
        let s = sampling(&enc, 10, 0.0);
        let mut er = engine_rollout(&policy, &enc, None);
        let mut cs = CachedSampler { model: inference_model(&policy).unwrap(), max_batch: 4 };
        let before = er.generate(&prompts, 2, &s).unwrap();
        assert_eq!(before.len(), 4);
        assert_eq!(before, cs.generate(&prompts, 2, &s).unwrap());
        // Optimizer-style in-place updates of every variable reach the same engine. Seeded: with unseeded random
        // weights a run now and then wrote `</answer>` in other tokens than the stop sequence's, where the engine
        // (which stops on the text) and the sampler (on the token ids) part ways.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (_, var) in policy.trainable() {
            let t = var.as_tensor();
            let values: Vec<f32> = (0..t.elem_count()).map(|_| rng.random_range(-0.87f32..0.87)).collect();
            var.set(&Tensor::from_vec(values, t.shape(), t.device()).unwrap()).unwrap();
        }
        let after = er.generate(&prompts, 2, &s).unwrap();
        assert_ne!(after, before, "the engine did not see the updated weights");
        assert_eq!(after, cs.generate(&prompts, 2, &s).unwrap());
    }

    #[test]
    fn constrained_rollouts_all_pass_the_strict_gate_and_differ_within_a_group() {
        let (policy, enc, ex) = setup();
        let (objects, predicates) = vocabulary();
        let c = Constraint {
            schema: Schema::Triplet,
            canvas: (640, 480),
            objects: Some(Arc::new(objects)),
            predicates: Some(Arc::new(predicates)),
        };
        let mut er = engine_rollout(&policy, &enc, Some(c));
        let prompts: Vec<Prompt> = ex.iter().map(|e| Prompt { ids: &e.prompt, image: e.image.as_ref() }).collect();
        let s = sampling(&enc, 120, 1.0);
        let out = er.generate(&prompts[..1], 3, &s).unwrap();
        let gate = StrictConfig::default();
        for ids in &out {
            let text = enc.tokenizer.decode(ids, true).unwrap();
            let finished = ids.last() == Some(&enc.im_end) || ids.ends_with(&s.stop_seq);
            if finished {
                assert!(sgvlm_graph::strict::is_valid(&text, Schema::Triplet, &gate), "{text}");
            } else {
                // Cut by max_new_tokens: still a prefix of a valid answer.
                let mut v = sgvlm_infer::constrain::validator_for(er.constraint.as_ref().unwrap()).unwrap();
                assert!(v.feed_str(&text).is_ok(), "not a valid prefix: {text:?}");
            }
        }
        let free = engine_rollout(&policy, &enc, None).generate(&prompts[..1], 3, &s).unwrap();
        let mut v = sgvlm_infer::constrain::validator_for(er.constraint.as_ref().unwrap()).unwrap();
        assert!(v.feed_str(&enc.tokenizer.decode(&free[0], true).unwrap()).is_err(), "free decoding is not checked");
        assert!(out[0] != out[1] || out[1] != out[2], "a group's three sampled rollouts are identical");
    }

    #[test]
    fn the_last_unconstrained_rollouts_of_each_group_decode_freely() {
        let (policy, enc, ex) = setup();
        let mut er = engine_rollout(&policy, &enc, Some(crate::demo::constraint()));
        let prompts: Vec<Prompt> = ex.iter().map(|e| Prompt { ids: &e.prompt, image: e.image.as_ref() }).collect();
        let s = Sampling { unconstrained: 1, ..sampling(&enc, 60, 1.0) };
        let out = er.generate(&prompts, 3, &s).unwrap();
        let free = engine_rollout(&policy, &enc, None).generate(&prompts, 3, &s).unwrap();
        for (i, ids) in out.iter().enumerate() {
            let text = enc.tokenizer.decode(ids, true).unwrap();
            let mut v = sgvlm_infer::constrain::validator_for(er.constraint.as_ref().unwrap()).unwrap();
            if i % 3 == 2 {
                // The same seed as the free generator's rollout, and the random model's free text breaks the grammar.
                assert_eq!(ids, &free[i], "rollout {i}");
                assert!(v.feed_str(&text).is_err(), "rollout {i} looks constrained: {text:?}");
            } else {
                assert!(v.feed_str(&text).is_ok(), "rollout {i} is not a valid prefix: {text:?}");
            }
        }
    }
}
