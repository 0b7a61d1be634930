//! Tests of the GRPO step and loop.

use super::testing::{alternating, parts_over, right_or_wrong, tiny_setup, two_prompts, Fixed, Scripted, SOLUTION};
use super::*;

#[test]
fn gradients_do_not_depend_on_how_the_completions_are_split_into_passes() {
    let (model, reference, opt) = tiny_setup();
    let solution = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\nrel[0]{subj,pred,obj}:\n</answer>";
    // Completions of different lengths; the even-length ones "answer" perfectly, so the advantages differ.
    let completions: Vec<Vec<u32>> =
        [3u32, 8, 5, 12, 2, 9, 6, 11].iter().map(|&n| (0..n).map(|j| (j * 7 + n) % 50 + 1).collect()).collect();
    let decode = |c: &[u32]| if c.len() % 2 == 0 { solution.to_string() } else { String::new() };
    let prompts = [
        GrpoPrompt { prompt: vec![5, 9, 2, 7], image: None, solution: solution.to_string() },
        GrpoPrompt { prompt: vec![3, 1, 4, 1, 5, 9], image: None, solution: solution.to_string() },
    ];
    let refs: Vec<&GrpoPrompt> = prompts.iter().collect();
    let gradients = |micro_batch: usize| {
        let mut fixed = Fixed(completions.clone());
        let mut parts = parts_over(&mut fixed, &reference, &decode);
        let o = GrpoOptions { group: 4, micro_batch, ..GrpoOptions::default() };
        grpo_gradients(&model, &opt, &mut parts, &refs, 0, &o).unwrap()
    };
    let (one, stats) = gradients(1);
    assert!(stats.reward_std > 0.0, "the advantages must not vanish");
    let flat = |g: &[Tensor]| -> Vec<f32> {
        g.iter().flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    };
    let a = flat(&one);
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(scale > 0.0, "no gradient at all");
    for micro in [2, 8] {
        let (other, st) = gradients(micro);
        assert!((st.loss - stats.loss).abs() < 1e-9 + 1e-6 * stats.loss.abs(), "loss {} vs {}", st.loss, stats.loss);
        let worst = a.iter().zip(flat(&other)).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 1e-5 * scale, "micro-batch {micro}: gradients differ by {worst} (largest {scale})");
    }
}

/// Identical completions have no sequence advantage, so the paper's loss has no gradient at the reference;
/// with row credit, one step raises the log-probability of the right object row's tokens and lowers the wrong
/// one's.
#[test]
fn row_credit_pushes_right_rows_up_and_wrong_rows_down() {
    let policy = crate::policy::tiny_random();
    let reference = policy.frozen_model(candle_core::DType::F32).unwrap();
    let tokenizer = sgvlm_model::tokenizer::Tokenizer::tiny();
    let solution = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,100,100,300,400\n2,table,350,200,600,450\n\
                    rel[1]{subj,pred,obj}:\n1,beside,2\n</answer>";
    // Object 2's box is far off: a wrong row, and the relation that names it cannot match either.
    let text = solution.replace("2,table,350,200,600,450", "2,table,10,10,40,40");
    let ids = tokenizer.encode(&text).unwrap();
    let decode = |c: &[u32]| tokenizer.decode(c, false).unwrap();
    let prompt = GrpoPrompt { prompt: vec![5, 9, 2, 7], image: None, solution: solution.to_string() };
    let example = Example { prompt: prompt.prompt.clone(), target: ids.clone(), image: None };
    let batch = collate(&[&example], 0, &candle_core::Device::Cpu).unwrap();
    let logprobs = |model: &Qwen35| {
        token_logprobs(&target_hidden(model, &batch).unwrap(), &model.lm_head.weight, &batch.targets, 64).unwrap()
    };
    let ends = credit::token_ends(&ids, &text, &decode).unwrap();
    let credit::RowSpans { objects, relations } = credit::row_spans(&text).unwrap();
    let mean_over = |lp: &[f32], r: &std::ops::Range<usize>| {
        let ks = credit::tokens_in(&ends, r);
        ks.iter().map(|&k| lp[k] as f64).sum::<f64>() / ks.len() as f64
    };
    let step = |row_credit: f64| {
        let policy = crate::policy::tiny_random();
        let model = policy.model().unwrap();
        let mut opt = AdamW::new(policy.trainable(), AdamWConfig::default()).unwrap();
        let mut fixed = Fixed(vec![ids.clone()]);
        let mut parts = parts_over(&mut fixed, &reference, &decode);
        let o = GrpoOptions { group: 4, row_credit, ..GrpoOptions::default() };
        let before = logprobs(&model);
        let stats = grpo_step(&model, &mut opt, &mut parts, &[&prompt], 1e-3, 0, &o).unwrap();
        (stats, before, logprobs(&policy.model().unwrap()))
    };
    let (paper, ..) = step(0.0);
    // Only the KL term is left, zero up to rounding at the reference.
    assert!(paper.grad_norm < 1e-6 && paper.row_credited == 0.0, "{paper:?}");
    let (credited, before, after) = step(1.0);
    assert_eq!(credited.row_credited, 1.0);
    assert!(credited.grad_norm > 1e-3, "{credited:?}");
    let change = |r: &std::ops::Range<usize>| mean_over(&after, r) - mean_over(&before, r);
    assert!(change(&objects[0]) > 0.0, "right object row: {}", change(&objects[0]));
    assert!(change(&objects[1]) < 0.0, "wrong object row: {}", change(&objects[1]));
    // Every rollout of the group wrote the relation wrong: the group baseline leaves it no term.
    assert_eq!(relations.len(), 1);
}

/// The generator is asked for the last `free_rollouts` of each group unconstrained, and the step reports how
/// many of those passed the strict gate.
#[test]
fn free_rollouts_are_requested_and_their_pass_rate_reported() {
    struct Recording(Vec<usize>);
    impl Rollout for Recording {
        fn generate(&mut self, prompts: &[Prompt], n: usize, s: &Sampling) -> Result<Vec<Vec<u32>>> {
            self.0.push(s.unconstrained);
            // Per group: right, wrong, right, wrong — the last two are the free ones when two are free.
            Ok(alternating(prompts.len() * n))
        }
    }
    let (model, reference, opt) = tiny_setup();
    let prompts = two_prompts();
    let refs: Vec<&GrpoPrompt> = prompts.iter().collect();
    let run = |free_rollouts: usize| {
        let mut rec = Recording(Vec::new());
        let mut parts = parts_over(&mut rec, &reference, &right_or_wrong);
        let o = GrpoOptions { group: 4, free_rollouts, ..GrpoOptions::default() };
        let (_, stats) = grpo_gradients(&model, &opt, &mut parts, &refs, 0, &o).unwrap();
        (rec.0, stats.free_valid)
    };
    assert_eq!(run(0), (vec![0], None));
    assert_eq!(run(2), (vec![2], Some(0.5)));
    assert_eq!(run(1), (vec![1], Some(0.0)));
    // More free rollouts than the group holds: all of them.
    assert_eq!(run(9), (vec![4], Some(0.5)));
}

/// Tokens the constraint forced (allowed mass below `forced_below`) add nothing to the loss; tokens the policy
/// chose count as without the option.
#[test]
fn forced_tokens_are_left_out_of_the_loss() {
    // One share per completion token, as the engine records them (8 single-token completions).
    struct Masked(Vec<Vec<f32>>);
    impl Rollout for Masked {
        fn generate(&mut self, prompts: &[Prompt], n: usize, _: &Sampling) -> Result<Vec<Vec<u32>>> {
            Ok(alternating(prompts.len() * n))
        }
        fn allowed_mass(&self) -> Option<&[Vec<f32>]> {
            Some(&self.0)
        }
    }
    let (model, reference, opt) = tiny_setup();
    let prompts = two_prompts();
    let refs: Vec<&GrpoPrompt> = prompts.iter().collect();
    let run = |mass: f32, forced_below: Option<f64>| {
        let mut rollout = Masked(vec![vec![mass]; 8]);
        let mut parts = parts_over(&mut rollout, &reference, &right_or_wrong);
        let o = GrpoOptions { group: 4, forced_below, ..GrpoOptions::default() };
        let (grads, stats) = grpo_gradients(&model, &opt, &mut parts, &refs, 0, &o).unwrap();
        let flat: Vec<f32> = grads.iter().flat_map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
        (flat, stats)
    };
    let (all, off) = run(0.001, None);
    assert_eq!((off.forced_tokens, off.tokens), (0, 8));
    assert!(all.iter().any(|&g| g != 0.0));
    let (chosen, stats) = run(0.5, Some(0.01));
    assert_eq!(stats.forced_tokens, 0);
    assert_eq!(chosen, all);
    let (forced, stats) = run(0.001, Some(0.01));
    assert_eq!((stats.forced_tokens, stats.tokens), (8, 8));
    assert!(forced.iter().all(|&g| g == 0.0) && stats.loss == 0.0);
}

/// The grammar term: where the constraint took mass away, the drawn legal token's log-probability is pushed up
/// whatever the advantage; where it took (almost) none, nothing changes.
#[test]
fn the_grammar_term_raises_legal_tokens_where_the_constraint_took_mass_away() {
    // Every rollout the same two tokens: no advantage, so only the grammar term can move the policy.
    struct Recorded(Option<Vec<Vec<f32>>>);
    impl Rollout for Recorded {
        fn generate(&mut self, prompts: &[Prompt], n: usize, _: &Sampling) -> Result<Vec<Vec<u32>>> {
            Ok(vec![vec![7, 3]; prompts.len() * n])
        }
        fn allowed_mass(&self) -> Option<&[Vec<f32>]> {
            self.0.as_deref()
        }
    }
    let prompts = two_prompts();
    let refs: Vec<&GrpoPrompt> = prompts.iter().collect();
    // The two tokens' log-probabilities after each prompt, `[p0 t0, p0 t1, p1 t0, p1 t1]`.
    let logp_of_targets = |model: &Qwen35| -> Vec<f32> {
        let ex: Vec<Example> =
            prompts.iter().map(|p| Example { prompt: p.prompt.clone(), target: vec![7, 3], image: None }).collect();
        let batch = collate(&ex.iter().collect::<Vec<_>>(), 0, &candle_core::Device::Cpu).unwrap();
        let h = sampling_hidden(model, &batch, GrpoOptions::default().temperature).unwrap();
        token_logprobs(&h, &model.lm_head.weight, &batch.targets, 64).unwrap()
    };
    // (second token's allowed mass, forced_below, grammar weight) → (stats, log-probabilities after one step).
    let run = |mass: Option<f32>, forced_below: Option<f64>, grammar_weight: f64| {
        let policy = crate::policy::tiny_random();
        let model = policy.model().unwrap();
        let reference = policy.frozen_model(candle_core::DType::F32).unwrap();
        let mut opt = AdamW::new(policy.trainable(), AdamWConfig::default()).unwrap();
        let mut rollout = Recorded(mass.map(|m| vec![vec![1.0, m]; 8]));
        let mut parts = parts_over(&mut rollout, &reference, &right_or_wrong);
        let o = GrpoOptions { group: 4, forced_below, grammar_weight, ..GrpoOptions::default() };
        let before = logp_of_targets(&model);
        let stats = grpo_step(&model, &mut opt, &mut parts, &refs, 1e-3, 0, &o).unwrap();
        (stats, before, logp_of_targets(&policy.model().unwrap()))
    };
    // No recorded masses, or a mass above the threshold, or no weight: no gradient beyond rounding (no
    // advantage, KL zero at the reference; Adam would still turn rounding into full-sized steps, so the
    // gradient is what is checked).
    for (mass, weight) in [(None, 1.0), (Some(0.95), 1.0), (Some(0.3), 0.0)] {
        let (stats, ..) = run(mass, None, weight);
        assert!(stats.grad_norm < 1e-6, "{mass:?} {weight}: {stats:?}");
        assert_eq!(stats.grammar_tokens, if mass == Some(0.3) { 8 } else { 0 });
    }
    // Below it, with a weight: only the second token carries the term; its log-probability rises after both
    // prompts, and the loss is −weight × the mean over completions of (its log-probability / 2 tokens).
    let expected_loss = |lp: &[f32]| -(lp[1] as f64 + lp[3] as f64) / 2.0 / 2.0;
    let (stats, before, after) = run(Some(0.3), None, 1.0);
    assert_eq!((stats.grammar_tokens, stats.grammar_mass.map(|m| (m * 10.0).round())), (8, Some(3.0)));
    assert!(stats.grad_norm > 1e-4, "{stats:?}");
    assert!(after[1] > before[1] && after[3] > before[3], "{before:?} → {after:?}");
    assert!((stats.loss - expected_loss(&before)).abs() < 1e-5, "{} vs {before:?}", stats.loss);
    // A token left out as forced still gets the grammar term (and nothing else).
    let (stats, before, after) = run(Some(0.001), Some(0.01), 1.0);
    assert_eq!((stats.forced_tokens, stats.grammar_tokens), (8, 8));
    assert!(after[1] > before[1] && after[3] > before[3]);
    assert!((stats.loss - expected_loss(&before)).abs() < 1e-5);
}

/// A free rollout that writes an image placeholder would put one placeholder too many beside the prompt's image
/// (the twenty-first session's run died of it: "97 image placeholder tokens but 96 image features"): it is
/// scored, left out of the loss and counted, and the step goes on.
#[test]
fn a_rollout_that_writes_a_vision_token_is_left_out_of_the_loss() {
    use crate::demo::{demo_encoder, model_config, scene, user_prompt};
    let cfg = model_config(false);
    let weights = sgvlm_model::checkpoint::random_weights(&cfg, 5, &candle_core::Device::Cpu).unwrap();
    let policy =
        Policy::from_tensors(cfg.clone(), weights, crate::policy::Freeze::default(), &candle_core::Device::Cpu)
            .unwrap();
    let model = policy.model().unwrap();
    let reference = policy.frozen_model(candle_core::DType::F32).unwrap();
    let opt = AdamW::new(policy.trainable(), AdamWConfig::default()).unwrap();
    let enc = demo_encoder(&cfg, 64 * 48).unwrap();
    let s = scene(1, 2, 0, (64, 48));
    let ex = enc.example(&user_prompt(), &s.answer, Some((&s.small.0, s.small.1, s.small.2))).unwrap();
    let prompt = GrpoPrompt { prompt: ex.prompt.clone(), image: ex.image.clone(), solution: s.answer.clone() };
    let decode = |c: &[u32]| enc.tokenizer.decode(c, false).unwrap();
    let mut placeholder = ex.target.clone();
    placeholder.insert(3, cfg.image_token_id);
    let mut vision_start = ex.target.clone();
    vision_start.insert(5, cfg.vision_start_token_id);
    let mut fixed = Fixed(vec![ex.target.clone(), placeholder, vision_start]);
    let mut parts = parts_over(&mut fixed, &reference, &decode);
    parts.pad = enc.pad;
    let o = GrpoOptions { group: 3, ..GrpoOptions::default() };
    let (grads, stats) = grpo_gradients(&model, &opt, &mut parts, &[&prompt], 0, &o).unwrap();
    assert_eq!(stats.vision_token_rollouts, 2);
    // The right answer beat the two broken ones: its tokens carry a gradient.
    assert!(stats.reward_std > 0.0);
    let norm: f32 = grads.iter().map(|g| g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sum();
    assert!(norm > 0.0);
}

#[test]
fn a_step_starts_only_when_it_is_expected_to_end_within_the_budget() {
    // The first step starts whatever the budget (the step-0 validation took 5 s of a 4-second budget).
    assert!(time_for_another(5.0, 5.0, 0, 4.0));
    // Two steps of 10 s from 5 s: at 25 s a third ends at 35 s.
    assert!(time_for_another(25.0, 5.0, 2, 35.0));
    assert!(!time_for_another(25.0, 5.0, 2, 34.9));
    // Past the budget nothing starts.
    assert!(!time_for_another(40.0, 5.0, 2, 39.0));
}

#[test]
fn early_and_late_rewards_never_share_a_step() {
    assert_eq!(early_late(&[]), (None, None));
    assert_eq!(early_late(&[2.0]), (Some(2.0), Some(2.0)));
    // Seven steps: the first three and the last three.
    assert_eq!(early_late(&[1.0, 2.0, 3.0, 10.0, 5.0, 6.0, 7.0]), (Some(2.0), Some(6.0)));
    // Thirty steps: the first ten and the last ten.
    let r: Vec<f64> = (0..30).map(f64::from).collect();
    assert_eq!(early_late(&r), (Some(4.5), Some(24.5)));
}

#[test]
fn sampling_log_probabilities_are_those_of_the_tempered_logits() {
    let policy = crate::policy::tiny_random();
    let model = policy.model().unwrap();
    let ex = Example { prompt: vec![5, 9, 2, 7], target: vec![11, 3, 8], image: None };
    let batch = crate::batch::collate(&[&ex], 0, &candle_core::Device::Cpu).unwrap();
    let w = &model.lm_head.weight;
    let logits = target_hidden(&model, &batch).unwrap().matmul(&w.t().unwrap()).unwrap();
    for t in [0.7f32, 1.0, 0.0] {
        let lp = token_logprobs(&sampling_hidden(&model, &batch, t).unwrap(), w, &batch.targets, 7).unwrap();
        let scale = if t > 0.0 { 1.0 / t as f64 } else { 1.0 };
        let z = candle_nn::ops::log_softmax(&logits.affine(scale, 0.0).unwrap(), 1).unwrap();
        let z: Vec<Vec<f32>> = z.to_vec2().unwrap();
        for (i, &y) in batch.targets.iter().enumerate() {
            assert!((lp[i] - z[i][y as usize]).abs() < 1e-4, "T={t} token {i}: {} vs {}", lp[i], z[i][y as usize]);
        }
    }
    // At 0.7 the sampled distribution is sharper than at 1: the two must differ.
    let a = token_logprobs(&sampling_hidden(&model, &batch, 0.7).unwrap(), w, &batch.targets, 7).unwrap();
    let b = token_logprobs(&sampling_hidden(&model, &batch, 1.0).unwrap(), w, &batch.targets, 7).unwrap();
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));
}

#[test]
fn a_greedy_baseline_compares_each_rollout_with_the_greedy_answer_to_its_prompt() {
    assert_eq!(advantages_over(&[1.0, 3.0, 2.0, 2.0], 2, &[2.5, 1.0]), vec![-1.5, 0.5, 1.0, 1.0]);
    // In a step: the greedy answers (scripted right) score above every sampled one (wrong), so every rollout's
    // advantage is negative and the step reports the greedy reward it compared with.
    let (model, reference, opt) = tiny_setup();
    let prompts = [GrpoPrompt { prompt: vec![5, 9, 2], image: None, solution: SOLUTION.to_string() }];
    let refs: Vec<&GrpoPrompt> = prompts.iter().collect();
    let mut scripted = Scripted { greedy: vec![true], calls: 0 };
    let mut parts = parts_over(&mut scripted, &reference, &right_or_wrong);
    let o = GrpoOptions { group: 3, baseline: Baseline::Greedy, ..GrpoOptions::default() };
    let (grads, stats) = grpo_gradients(&model, &opt, &mut parts, &refs, 0, &o).unwrap();
    let (right, _) = score(&[SOLUTION.to_string()], &[SOLUTION], Schema::Triplet, &RewardConfig::default());
    assert_eq!(stats.greedy_reward, Some(right[0]));
    assert!(right[0] > stats.reward_mean);
    assert_eq!(scripted.calls, 1, "one greedy decoding per step");
    // The group-mean baseline would see three equal rewards and no gradient; this one does.
    let norm: f32 = grads.iter().map(|g| g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sum();
    assert!(norm > 0.0);
    assert_eq!("greedy".parse::<Baseline>().unwrap(), Baseline::Greedy);
    assert!("mode".parse::<Baseline>().is_err());
}
