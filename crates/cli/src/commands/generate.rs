//! `sgvlm generate`: one image in, the model's answer text out (what `sgvlm toon validate` reads), optionally
//! constrained so that the answer passes the strict gate by construction.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use sgvlm_graph::{vocab, Schema};
use sgvlm_infer::native::{NativeBackend, NativeOptions};
use sgvlm_infer::{Backend, Constraint, GenParams, GenRequest, Message, Role};

/// Which dataset's prompt (and, with `--constrained`, schema and closed vocabularies) to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    /// Panoptic Scene Graph: triplet schema, 133 object classes, 56 predicates.
    Psg,
    /// PVSG first frame: triplet schema, open vocabulary.
    Pvsg,
    /// Action Genome first frame: person–object pairs with attention/spatial/contacting lists.
    Ag,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The CPU, f32 activations; the decoder's weights as the checkpoint stores them (bf16 in released Qwen3.5
    /// checkpoints: kept in bf16, which decodes about twice as fast as f32 weights and loses nothing).
    Cpu,
    /// The CPU with the decoder's weights in bf16 whatever the checkpoint stores (f32 weights are rounded).
    CpuBf16,
    /// The CPU with every weight in f32 (bf16 checkpoints are widened): the exact f32 model.
    CpuF32,
    /// bf16 on CUDA device 0 (binaries built with `--features cuda`).
    Cuda,
}

impl DeviceArg {
    pub fn options(self, max_batch: usize) -> anyhow::Result<NativeOptions> {
        let name = match self {
            DeviceArg::Cpu => "cpu",
            DeviceArg::CpuBf16 => "cpu-bf16",
            DeviceArg::CpuF32 => "cpu-f32",
            DeviceArg::Cuda => "cuda",
        };
        let mut o = NativeOptions::for_device(name)?;
        o.max_batch = max_batch;
        Ok(o)
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model directory (config.json, safetensors, tokenizer.json, preprocessor_config.json).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// Dataset whose prompt is used when --prompt is absent.
    #[arg(long, value_enum, default_value_t = DatasetArg::Psg)]
    pub dataset: DatasetArg,
    /// User prompt; `<image>` marks where the image goes (at the start when absent).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Mask every step to tokens that keep the answer valid TOON (canvas = the image size; PSG and AG use their
    /// closed vocabularies).
    #[arg(long)]
    pub constrained: bool,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Seed of the sampler (the same seed gives the same output).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value_t = 2048)]
    pub max_new_tokens: usize,
    /// Text the answer is forced to start with; replaces the empty think block (MS-SWIFT's response_prefix).
    #[arg(long)]
    pub response_prefix: Option<String>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Print one JSON object (text, finish reason, token counts, seconds) instead of the text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.image).with_context(|| format!("failed to read {}", args.image.display()))?;
    let dims = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .with_context(|| format!("{} is not a readable PNG or JPEG image", args.image.display()))?;
    let prompt = args.prompt.clone().unwrap_or_else(|| default_prompt(args.dataset));
    let constraint = args.constrained.then(|| constraint_for(args.dataset, dims));
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1]");
    }
    let params = GenParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        response_prefix: args.response_prefix.clone(),
        constraint,
        ..GenParams::default()
    };
    let req = GenRequest {
        messages: vec![Message { role: Role::User, content: prompt }],
        images: vec![Arc::new(bytes)],
        params,
    };
    let backend = NativeBackend::from_dir(&args.model, args.device.options(1)?)?;
    let out = backend.generate(std::slice::from_ref(&req)).pop().context("the engine returned no result")??;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&out)?)?;
    } else {
        writeln!(stdout, "{}", out.text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The dataset's first-frame prompt (SFT spelling for PSG).
pub fn default_prompt(d: DatasetArg) -> String {
    use sgvlm_data::prompts;
    match d {
        DatasetArg::Psg => prompts::psg(prompts::PsgLabels::Sft),
        DatasetArg::Pvsg => prompts::pvsg_first(),
        DatasetArg::Ag => prompts::ag_first(),
    }
}

/// Schema, canvas and closed vocabularies of a dataset.
pub fn constraint_for(d: DatasetArg, (w, h): (u32, u32)) -> Constraint {
    let list = |l: &[&str]| Some(Arc::new(l.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    match d {
        DatasetArg::Psg => Constraint {
            schema: Schema::Triplet,
            canvas: (w, h),
            objects: list(&vocab::PSG_OBJECT_CLASSES),
            predicates: list(&vocab::PSG_PREDICATES),
        },
        DatasetArg::Pvsg => Constraint { schema: Schema::Triplet, canvas: (w, h), objects: None, predicates: None },
        DatasetArg::Ag => Constraint {
            schema: Schema::Ag,
            canvas: (w, h),
            objects: list(&vocab::AG_OBJECT_CLASSES),
            predicates: list(&vocab::AG_PREDICATES),
        },
    }
}
