//! `sgvlm bench generate`: the generation engine's speed on random images, one JSON line per batch size.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sgvlm_infer::bench::{bench_generate, BenchOptions};
use sgvlm_infer::engine::DecodeMode;
use sgvlm_infer::native::NativeBackend;

use super::generate::DeviceArg;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time prefill and decode of the native engine: random images inside a PSG-like prompt, exactly N new
    /// tokens per sequence (end tokens and stop strings ignored), a warm-up run, then one timed run per batch
    /// size. Prints one JSON line per batch size: prefill_s, decode_s, s_per_graph (latency), amortised_s_per_graph,
    /// tokens per second. With SGVLM_PROFILE=1 in the environment each line also holds `profile`: the seconds spent
    /// in each part of the model (layer kinds, LM head, sampling); each part waits for the device at its start and end.
    Generate(BenchGenerateArgs),
}

#[derive(Debug, Args)]
pub struct BenchGenerateArgs {
    /// Model directory (e.g. from `sgvlm model init --preset qwen3.5-0.8b`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch: Vec<usize>,
    /// Text tokens of the prompt besides the image (cut from the PSG prompt).
    #[arg(long, default_value_t = 700)]
    pub text_tokens: usize,
    /// Tokens generated per sequence.
    #[arg(long, default_value_t = 256)]
    pub new_tokens: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Random image size WIDTHxHEIGHT, or `none` for text-only prompts.
    #[arg(long, default_value = "640x480")]
    pub image_size: String,
    /// Skip the warm-up run.
    #[arg(long)]
    pub no_warmup: bool,
    /// How decode steps run: `auto` (CUDA graphs on a GPU, op by op elsewhere), `eager` (op by op, attending over
    /// exactly the keys held), `fixed` (the fixed-shape steps a graph records, op by op) or `graph`.
    #[arg(long, default_value = "auto", value_parser = DecodeMode::parse)]
    pub decode: DecodeMode,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Generate(args) => generate(args),
    }
}

fn generate(args: BenchGenerateArgs) -> anyhow::Result<ExitCode> {
    let image_size = parse_size(&args.image_size)?;
    let max_batch = args.batch.iter().copied().max().unwrap_or(1);
    let t = std::time::Instant::now();
    let backend = NativeBackend::from_dir(&args.model, args.device.options(max_batch)?)
        .with_context(|| format!("failed to load {}", args.model.display()))?;
    eprintln!("loaded {} in {:.1} s", args.model.display(), t.elapsed().as_secs_f64());
    let mut engine = backend.into_engine();
    let opts = BenchOptions {
        batches: args.batch.clone(),
        text_tokens: args.text_tokens,
        new_tokens: args.new_tokens,
        image_size,
        base_prompt: super::generate::default_prompt(super::generate::DatasetArg::Psg),
        warmup: !args.no_warmup,
        decode: args.decode,
    };
    let device = format!("{:?}", args.device).to_lowercase();
    for &b in &args.batch {
        let one = BenchOptions { batches: vec![b], ..opts.clone() };
        let rows = bench_generate(&mut engine, &one)?;
        for r in rows {
            let mut v = serde_json::to_value(&r)?;
            v["device"] = serde_json::Value::String(device.clone());
            v["image_size"] = serde_json::Value::String(args.image_size.clone());
            writeln!(std::io::stdout().lock(), "{v}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_size(s: &str) -> anyhow::Result<Option<(u32, u32)>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let Some((w, h)) = s.split_once(['x', 'X']) else { bail!("--image-size must be WIDTHxHEIGHT or none, got `{s}`") };
    let (w, h): (u32, u32) = (w.trim().parse()?, h.trim().parse()?);
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        bail!("--image-size {s}: each side must be 1..8192");
    }
    Ok(Some((w, h)))
}
