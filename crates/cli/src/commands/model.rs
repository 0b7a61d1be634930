//! `sgvlm model …`: model directories. `init` writes a random-weight Qwen3.5 directory for a preset or a config.

use crate::cli::{DtypeArg, InitArgs, ModelCommand};
use anyhow::Context;
use candle_core::{DType, Device};
use sgvlm_model::{checkpoint, Config};
use std::process::ExitCode;

pub fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Init(args) => init(args),
    }
}

/// The config a `--preset` names: `tiny`, `tiny-realvocab`, `qwen3.5-0.8b`, or a path to a `config.json`.
fn preset_config(preset: &str) -> anyhow::Result<Config> {
    Ok(match preset {
        "tiny" => Config::tiny(),
        "tiny-realvocab" => Config::tiny_realvocab(),
        "qwen3.5-0.8b" => Config::qwen35_0_8b(),
        path => Config::from_json_file(std::path::Path::new(path)).with_context(|| {
            format!("`{path}` is neither a preset (tiny, tiny-realvocab, qwen3.5-0.8b) nor a config")
        })?,
    })
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let cfg = preset_config(&args.preset)?;
    let weights = checkpoint::random_weights(&cfg, args.seed, &Device::Cpu)?;
    let dtype = match args.dtype {
        DtypeArg::Bf16 => DType::BF16,
        DtypeArg::F32 => DType::F32,
    };
    checkpoint::save(&args.out, &cfg, &weights, dtype)
        .with_context(|| format!("failed to write the model to {}", args.out.display()))?;
    // Tiny presets use small images (64×48 → 4 tokens); the real shape uses Qwen3.5's released bounds.
    let (min_pixels, max_pixels) =
        if cfg.text_config.hidden_size <= 256 { (4096, 65_536) } else { (65_536, 16_777_216) };
    checkpoint::write_companion_files(&args.out, &cfg, min_pixels, max_pixels)?;
    let tokenizer = args.tokenizer.clone().or_else(|| built_qwen35_tokenizer(cfg.text_config.vocab_size));
    match &tokenizer {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the tokenizer {}", path.display()))?;
            checkpoint::write_tokenizer_files(&args.out, &json)?;
            eprintln!("tokenizer: {}", path.display());
        }
        None if cfg.text_config.vocab_size == 2112 => {
            checkpoint::write_tokenizer_files(&args.out, sgvlm_model::tokenizer::TINY_TOKENIZER_JSON)?;
        }
        None => eprintln!(
            "hint: no tokenizer.json written for a {}-token vocabulary; build the Qwen3.5 one with \
             `bash scripts/qwen35_tokenizer.sh` (it is then found automatically) or pass --tokenizer FILE",
            cfg.text_config.vocab_size
        ),
    }
    let params: usize = weights.values().map(|t| t.elem_count()).sum();
    eprintln!("wrote {} ({} tensors, {params} parameters, seed {})", args.out.display(), weights.len(), args.seed);
    Ok(ExitCode::SUCCESS)
}

/// The real Qwen3.5 tokenizer built by `scripts/qwen35_tokenizer.sh`, for configs with the real vocabulary
/// (248,320 rows: 248,044 ranks, 33 specials, padding): `$SGVLM_QWEN35_TOKENIZER`, else the script's cache file.
pub fn built_qwen35_tokenizer(vocab_size: usize) -> Option<std::path::PathBuf> {
    if vocab_size < 248_077 {
        return None;
    }
    let path = std::env::var_os("SGVLM_QWEN35_TOKENIZER").map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/sgvlm-qwen35/tokenizer.json"))
    })?;
    path.is_file().then_some(path)
}
