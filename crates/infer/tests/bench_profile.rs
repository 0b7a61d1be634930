//! `SGVLM_PROFILE` attribution through the generation benchmark. In a test binary of its own: profiling is
//! process-wide, and other tests' forward passes would add to the counts asserted here.

use candle_core::{DType, Device};
use sgvlm_infer::bench::{bench_generate, BenchOptions};
use sgvlm_infer::engine::{Engine, EngineConfig};
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::{checkpoint, profile, Config, Qwen35};

#[test]
fn a_profiled_bench_counts_every_layer_pass_and_decode_step() {
    let cfg = Config::tiny();
    let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu).unwrap();
    let model = Qwen35::from_tensors(&cfg, weights, DType::F32, &Device::Cpu).unwrap();
    let processor = ImageProcessor { min_pixels: 4096, max_pixels: 65_536, ..ImageProcessor::default() };
    let mut engine = Engine::new(model, Tokenizer::tiny(), processor, EngineConfig::default()).unwrap();
    let opts = BenchOptions {
        batches: vec![2],
        text_tokens: 24,
        new_tokens: 5,
        image_size: Some((64, 48)),
        base_prompt: "Write the scene graph of this image.".into(),
        warmup: true,
        decode: sgvlm_infer::engine::DecodeMode::Auto,
    };
    let plain = bench_generate(&mut engine, &opts).unwrap();
    assert!(plain[0].profile.is_none() || profile::enabled(), "no profile unless asked for");

    profile::set_enabled(true);
    let rows = bench_generate(&mut engine, &opts).unwrap();
    profile::set_enabled(false);
    // The timed run only (the warm-up's parts are cleared): one prefill and 4 decode steps, each through every layer.
    let p = rows[0].profile.clone().expect("a profile");
    let layers = cfg.text_config.num_hidden_layers as u64;
    let calls = |k: &str| p.get(k).map_or(0, |x| x.calls);
    assert_eq!(calls("mlp (norm, mlp, residual)"), 5 * layers, "{p:?}");
    let mixers = calls("gated deltanet (norm, mixer, residual)") + calls("full attention (norm, mixer, residual)");
    assert_eq!(mixers, 5 * layers);
    // The prefill's Gated DeltaNet layers split into their inner parts; decode steps take the one-kernel step.
    let linear =
        cfg.text_config.layer_types.iter().filter(|l| matches!(l, sgvlm_model::LayerType::LinearAttention)).count()
            as u64;
    assert!(linear > 0);
    for part in ["gated deltanet: conv, pack", "gated deltanet: delta rule", "gated deltanet: norm, gate, out proj"] {
        assert_eq!(calls(part), linear, "{part}: {p:?}");
    }
    assert_eq!(calls("prefill (whole; its layers are also in theirs)"), 1);
    assert_eq!(calls("decode: lm head"), 4);
    assert_eq!(calls("decode: sample"), 4);
    let prefill = p["prefill (whole; its layers are also in theirs)"].seconds;
    assert!(prefill > 0.0 && prefill <= rows[0].total_s, "{prefill} of {}", rows[0].total_s);
}
