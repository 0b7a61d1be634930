//! The engine on the tiny random model: batching equivalence, seeds, stop strings, length limits, constrained
//! validity.

use std::sync::Arc;

use candle_core::{DType, Device};
use sgvlm_graph::{Schema, StrictConfig};
use sgvlm_infer::bench::random_png;
use sgvlm_infer::engine::{DecodeMode, Engine, EngineConfig, Generated};
use sgvlm_infer::{Constraint, FinishReason, GenParams, GenRequest, Message, Role};
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::{checkpoint, Config, Qwen35};

fn engine(max_batch: usize) -> Engine {
    engine_of(Config::tiny(), max_batch)
}

/// The tiny preset with four query heads over two key/value heads (the tiny preset has one key/value head, which
/// hides how a batched cache's layout reaches the grouped-query decode step).
fn two_kv_heads() -> Config {
    let mut cfg = Config::tiny();
    (cfg.text_config.num_attention_heads, cfg.text_config.num_key_value_heads) = (4, 2);
    cfg
}

fn engine_of(cfg: Config, max_batch: usize) -> Engine {
    engine_with(cfg, max_batch, false)
}

/// `bf16_weights`: the decoder's projections kept in bf16 (`--device cpu-bf16`).
fn engine_with(cfg: Config, max_batch: usize, bf16_weights: bool) -> Engine {
    engine_in(cfg, max_batch, bf16_weights, DecodeMode::Auto)
}

fn engine_in(cfg: Config, max_batch: usize, bf16_weights: bool, decode: DecodeMode) -> Engine {
    engine_from(cfg, bf16_weights, EngineConfig { max_batch, decode, ..EngineConfig::default() })
}

fn engine_from(cfg: Config, bf16_weights: bool, engine_cfg: EngineConfig) -> Engine {
    engine_fused(cfg, bf16_weights, engine_cfg, false)
}

/// `fused`: the decode steps through the fused ops (`TextModel::fuse_for_decode`, what a CUDA model loads with).
fn engine_fused(cfg: Config, bf16_weights: bool, engine_cfg: EngineConfig, fused: bool) -> Engine {
    let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu).unwrap();
    let mut model = Qwen35::from_tensors(&cfg, weights, DType::F32, &Device::Cpu).unwrap();
    if fused {
        assert!(model.text.fuse_for_decode().unwrap());
    }
    if bf16_weights {
        model.keep_bf16().unwrap(); // after fusing: stacks the bf16 weights again
    }
    assert_eq!(model.text.is_fused(), fused);
    let processor = ImageProcessor { min_pixels: 4096, max_pixels: 65_536, ..ImageProcessor::default() };
    Engine::new(model, Tokenizer::tiny(), processor, engine_cfg).unwrap()
}

fn request(text: &str, image: Option<(u32, u32)>, params: GenParams) -> GenRequest {
    let images = image.map(|(w, h)| vec![Arc::new(random_png(w, h, w as u64).unwrap())]).unwrap_or_default();
    GenRequest { messages: vec![Message { role: Role::User, content: text.into() }], images, params }
}

fn mixed_requests(params: &GenParams) -> Vec<GenRequest> {
    vec![
        request("<image>\nDescribe the scene.", Some((64, 48)), params.clone()),
        request("Hi", None, params.clone()),
        request("A much longer text prompt, with more tokens than the others have.", None, params.clone()),
        request("<image>Short.", Some((96, 64)), params.clone()),
        request("Write a scene graph.", None, params.clone()),
    ]
}

fn ok(v: Vec<Result<Generated, sgvlm_infer::BackendError>>) -> Vec<Generated> {
    v.into_iter().map(|r| r.unwrap()).collect()
}

#[test]
fn batched_greedy_equals_unbatched_token_for_token() {
    let params = GenParams { max_new_tokens: 12, stop: vec![], ..GenParams::default() };
    let reqs = mixed_requests(&params);
    // The bf16-weight projections sum each row on its own in a fixed order, so batching cannot change them either.
    for (cfg, bf16) in [(Config::tiny(), false), (two_kv_heads(), false), (two_kv_heads(), true)] {
        let one = ok(engine_with(cfg.clone(), 1, bf16).generate(&reqs));
        let all = ok(engine_with(cfg.clone(), 8, bf16).generate(&reqs));
        // Two slots for five requests: finished sequences leave, queued ones join the running batch.
        let joined = ok(engine_with(cfg, 2, bf16).generate(&reqs));
        for ((a, b), c) in one.iter().zip(&all).zip(&joined) {
            assert_eq!(a.tokens, b.tokens);
            assert_eq!(a.tokens, c.tokens);
            assert_eq!(a.text, b.text);
            assert!(a.text.starts_with("<think>\n\n</think>\n\n"));
        }
        assert!(one[0].pixel_values.is_some() && one[0].grids.len() == 1 && one[1].grids.is_empty());
    }
}

#[test]
fn fixed_shape_steps_equal_eager_steps_token_for_token() {
    // What a CUDA graph replays (the KV slot, positions and mask read from device buffers, the whole KV capacity
    // attended over, DeltaNet states updated in place) must decode what the eager steps decode: greedy and
    // seeded sampling, rows of different lengths (left padding), rows leaving at different steps and queued
    // requests joining (each change rebuilds the fixed-shape state).
    let greedy = GenParams { stop: vec![], ..GenParams::default() };
    let sampled = GenParams { temperature: 1.0, top_p: 0.9, seed: Some(7), stop: vec![], ..GenParams::default() };
    for (cfg, bf16) in [(Config::tiny(), false), (two_kv_heads(), false), (two_kv_heads(), true)] {
        for base in [&greedy, &sampled] {
            let reqs: Vec<GenRequest> = mixed_requests(base)
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    r.params.max_new_tokens = 6 + 3 * i;
                    r
                })
                .collect();
            for max_batch in [8, 2] {
                let eager = engine_in(cfg.clone(), max_batch, bf16, DecodeMode::Eager);
                let (a, _) = eager.generate_timed(&reqs);
                let a = ok(a);
                // Op by op, and through the fused ops (stacked projections, fused norms) a CUDA model decodes with.
                for fused in [false, true] {
                    let engine_cfg = EngineConfig { max_batch, decode: DecodeMode::Fixed, ..EngineConfig::default() };
                    let fixed = engine_fused(cfg.clone(), bf16, engine_cfg, fused);
                    let (b, t) = fixed.generate_timed(&reqs);
                    for (i, (a, b)) in a.iter().zip(&ok(b)).enumerate() {
                        assert_eq!(a.tokens, b.tokens, "request {i}, batch {max_batch}, bf16 {bf16}, fused {fused}");
                        assert_eq!(a.tokens.len(), 6 + 3 * i);
                    }
                    assert_eq!((t.graph_steps, t.graph_error), (0, None), "no graphs on the CPU");
                    assert!(t.decode_steps > 0);
                }
            }
        }
    }
    // Asking for graphs on the CPU runs the same fixed-shape steps.
    assert_eq!(DecodeMode::Graph.on(&Device::Cpu), DecodeMode::Fixed);
    assert_eq!(DecodeMode::Auto.on(&Device::Cpu), DecodeMode::Eager);
    assert_eq!(DecodeMode::parse("graph"), Ok(DecodeMode::Graph));
    assert!(DecodeMode::parse("fast").unwrap_err().contains("auto, eager, fixed or graph"));
}

#[test]
fn fixed_shape_batches_change_once_per_wave_and_decode_what_eager_steps_decode() {
    // A queue three times the batch with lengths all different (GRPO's rollouts): finished rows stay in a
    // fixed-shape batch, frozen, until half of it is done, then leave as the next queued requests join, so the
    // batch (with graphs: a warm-up and a capture) is rebuilt once per wave rather than once per finish.
    let sampled = GenParams { temperature: 1.0, top_p: 0.9, seed: Some(3), stop: vec![], ..GenParams::default() };
    let reqs: Vec<GenRequest> = (0..12)
        .map(|i| {
            let mut r = mixed_requests(&sampled).swap_remove(i % 5);
            r.params.max_new_tokens = 3 + (7 * i) % 11;
            r.params.seed = Some(100 + i as u64);
            r
        })
        .collect();
    let fixed = |wait: usize| {
        let mut e = engine_in(Config::tiny(), 4, false, DecodeMode::Fixed);
        e.set_config(EngineConfig {
            max_batch: 4,
            decode: DecodeMode::Fixed,
            refill_wait_steps: wait,
            ..EngineConfig::default()
        });
        e.generate_timed(&reqs)
    };
    let (a, ta) = engine_in(Config::tiny(), 4, false, DecodeMode::Eager).generate_timed(&reqs);
    let (b, tb) = fixed(usize::MAX);
    // Without waiting, finished rows leave at once whenever a request is queued: a rebuild at every finish.
    let (c, tc) = fixed(0);
    for (i, ((a, b), c)) in ok(a).iter().zip(&ok(b)).zip(&ok(c)).enumerate() {
        assert_eq!(a.tokens, b.tokens, "request {i}");
        assert_eq!(a.tokens, c.tokens, "request {i}");
        assert_eq!(a.tokens.len(), 3 + (7 * i) % 11);
    }
    assert_eq!(ta.fixed_builds, 0);
    assert!(tc.fixed_builds >= 8, "{} rebuilds without waves", tc.fixed_builds);
    // Waves of at least two leave together.
    assert!((1..=6).contains(&tb.fixed_builds), "{} rebuilds in waves, {} without", tb.fixed_builds, tc.fixed_builds);
    assert!(tb.decode_steps >= ta.decode_steps, "frozen rows ride along, never fewer steps");
}

#[test]
fn seeded_sampling_is_reproducible_whatever_the_batch() {
    let params = GenParams {
        max_new_tokens: 10,
        temperature: 1.0,
        top_p: 0.9,
        seed: Some(42),
        stop: vec![],
        ..GenParams::default()
    };
    let reqs = mixed_requests(&params);
    let a = ok(engine(4).generate(&reqs));
    let b = ok(engine(1).generate(&reqs[..2]));
    assert_eq!(a[0].tokens, b[0].tokens);
    assert_eq!(a[1].tokens, b[1].tokens);
    let other = GenParams { seed: Some(43), ..params };
    let c = ok(engine(4).generate(&[request("<image>\nDescribe the scene.", Some((64, 48)), other)]));
    assert_ne!(a[0].tokens, c[0].tokens);
}

#[test]
fn stop_strings_cut_and_are_kept_and_length_is_flagged() {
    let e = engine(4);
    let free = GenParams { max_new_tokens: 24, stop: vec![], ..GenParams::default() };
    let base = ok(e.generate(&[request("Write a scene graph.", None, free.clone())])).remove(0);
    let prefix = "<think>\n\n</think>\n\n";
    let body = base.text.strip_prefix(prefix).unwrap().to_string();
    if base.finish == FinishReason::Length {
        assert_eq!(base.tokens.len(), 24);
    }
    // A stop string taken from the middle of the free output.
    let chars: Vec<char> = body.chars().collect();
    assert!(chars.len() >= 8, "{body:?}");
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 3].iter().collect();
    let cut = GenParams { stop: vec![stop.clone()], ..free };
    let out = ok(e.generate(&[request("Write a scene graph.", None, cut)])).remove(0);
    assert_eq!(out.finish, FinishReason::Stop);
    assert!(out.text.ends_with(&stop), "{:?} does not end with {stop:?}", out.text);
    assert!(base.text.starts_with(&out.text));
    assert!(out.tokens.len() <= base.tokens.len());
    // The length limit.
    let short = GenParams { max_new_tokens: 3, stop: vec![], ..GenParams::default() };
    let out = ok(e.generate(&[request("Write a scene graph.", None, short)])).remove(0);
    assert!(out.tokens.len() <= 3);
    if out.finish == FinishReason::Length {
        assert_eq!(out.tokens.len(), 3);
    }
}

#[test]
fn response_prefix_replaces_the_think_block_and_is_returned() {
    let params =
        GenParams { max_new_tokens: 4, stop: vec![], response_prefix: Some("<answer>".into()), ..GenParams::default() };
    let out = ok(engine(1).generate(&[request("Hi", None, params)])).remove(0);
    assert!(out.text.starts_with("<answer>"));
    let tok = Tokenizer::tiny();
    let prompt = tok.decode(&out.prompt_ids, false).unwrap();
    assert!(prompt.ends_with("<|im_start|>assistant\n<answer>"), "{prompt:?}");
}

#[test]
fn bad_requests_fail_alone() {
    let params = GenParams { max_new_tokens: 3, stop: vec![], ..GenParams::default() };
    let mut reqs = vec![request("<image>x", None, params.clone()), request("fine", None, params.clone())];
    reqs.push(GenRequest { images: vec![Arc::new(b"not an image".to_vec())], ..request("<image>y", None, params) });
    let out = engine(4).generate(&reqs);
    assert!(out[0].is_err());
    assert!(out[1].is_ok());
    assert!(matches!(out[2], Err(sgvlm_infer::BackendError::Image { index: 0, .. })));
}

/// With `record_allowed_mass`, each token of a constrained, sampled request comes with the share of the sampling
/// distribution the constraint kept at its step; recording changes no token, and free or greedy requests get none.
#[test]
fn constrained_sampling_records_the_mass_the_constraint_kept() {
    let constraint = Constraint { schema: Schema::Triplet, canvas: (64, 48), objects: None, predicates: None };
    let params = |temperature: f32, constrained: bool| GenParams {
        max_new_tokens: 40,
        temperature,
        seed: Some(7),
        constraint: constrained.then(|| constraint.clone()),
        ..GenParams::default()
    };
    let reqs = vec![
        request("<image>\nScene graph:", Some((64, 48)), params(1.0, true)),
        request("Scene graph:", None, params(0.8, true)),
        request("Scene graph:", None, params(1.0, false)),
        request("Scene graph:", None, params(0.0, true)),
    ];
    let run = |record: bool| {
        let ec = EngineConfig { max_batch: 4, record_allowed_mass: record, ..EngineConfig::default() };
        ok(engine_from(Config::tiny(), false, ec).generate(&reqs))
    };
    let (recorded, plain) = (run(true), run(false));
    for (r, p) in recorded.iter().zip(&plain) {
        assert_eq!(r.tokens, p.tokens, "recording changes no token");
        assert!(p.allowed_mass.is_empty());
    }
    for g in &recorded[..2] {
        assert_eq!(g.allowed_mass.len(), g.tokens.len());
        assert!(g.allowed_mass.iter().all(|&m| m > 0.0 && m <= 1.0 + 1e-6), "{:?}", g.allowed_mass);
        // A random model spreads its mass over the vocabulary; the grammar keeps a small part of it.
        assert!(g.allowed_mass.iter().any(|&m| m < 0.5), "{:?}", g.allowed_mass);
    }
    assert!(recorded[2].allowed_mass.is_empty() && recorded[3].allowed_mass.is_empty());
}

fn constrained_outputs(schema: Schema, seeds: std::ops::Range<u64>) -> Vec<Generated> {
    use sgvlm_graph::vocab;
    let list = |l: &[&str]| Some(Arc::new(l.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    let (objects, predicates) = match schema {
        Schema::Triplet => (list(&vocab::PSG_OBJECT_CLASSES), list(&vocab::PSG_PREDICATES)),
        Schema::Ag => (list(&vocab::AG_OBJECT_CLASSES), list(&vocab::AG_PREDICATES)),
    };
    let constraint = Constraint { schema, canvas: (64, 48), objects, predicates };
    let reqs: Vec<GenRequest> = seeds
        .map(|seed| {
            let params = GenParams {
                max_new_tokens: 150,
                temperature: 1.0,
                seed: Some(seed),
                constraint: Some(constraint.clone()),
                ..GenParams::default()
            };
            request("<image>\nScene graph:", Some((64, 48)), params)
        })
        .collect();
    ok(engine(8).generate(&reqs))
}

/// Sampled constrained outputs of the random model: every finished one passes the strict gate, every truncated one
/// is a prefix the validator still accepts. (A random model picks counts up to 200 objects and 400 relations, so
/// within a test-sized token budget most outputs are truncated; the token budget, not the constraint, ends them.)
#[test]
fn constrained_outputs_pass_the_strict_gate() {
    for schema in [Schema::Triplet, Schema::Ag] {
        let cfg = StrictConfig { canvas: sgvlm_graph::Canvas::new(64, 48), ..StrictConfig::default() };
        for g in constrained_outputs(schema, 0..6) {
            let answer = g.text.strip_prefix("<think>\n\n</think>\n\n").unwrap();
            assert!(answer.starts_with("<answer>\n"), "{answer:?}");
            match g.finish {
                FinishReason::Stop | FinishReason::EndToken => {
                    assert!(sgvlm_graph::strict::is_valid(answer, schema, &cfg), "{schema:?}: {answer:?}")
                }
                FinishReason::Length => {
                    let mut v = sgvlm_infer::constrain::validator_for(&Constraint {
                        schema,
                        canvas: (64, 48),
                        objects: None,
                        predicates: None,
                    })
                    .unwrap();
                    assert!(v.feed_str(answer).is_ok(), "{schema:?}: {answer:?}");
                    assert_eq!(g.tokens.len(), 150);
                }
            }
        }
    }
}
