//! `sgvlm infer`: the reference's GT-prompt inference over an MS-SWIFT test file (each row's own prompt), with
//! reference output rows that `sgvlm eval` reads. Resumable: rerunning continues an interrupted output file.

use super::backend_args::{BackendArgs, Bar};
use crate::output::print_json_line;
use anyhow::{bail, Context};
use clap::Args;
use sgvlm_infer::runner::{self, RunConfig};
use sgvlm_infer::GenParams;
use std::path::PathBuf;
use std::process::ExitCode;

/// Generation settings shared by `infer` and `video`.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// Requests per batch (the reference's README runs use 64).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 2048)]
    pub max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Prefill of the assistant turn, stripped as the reference strips it (`$'<answer>\n'` becomes `<answer>`).
    #[arg(long, value_name = "S")]
    pub response_prefix: Option<String>,
    /// Extra stop strings (repeatable); `</answer>` always stops.
    #[arg(long, value_name = "S")]
    pub stop: Vec<String>,
    /// Folder that relative image paths are taken under (default: the input file's folder).
    #[arg(long, value_name = "DIR")]
    pub images_root: Option<PathBuf>,
    /// Only the first N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// `model_name` written into every row (default: the model folder's or served model's name).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
    /// When an answer has no `obj[N]{id,name` header, ask again with the response prefix `obj[` and keep that
    /// answer if it has one (the reference's flag of the same name; retries are not timed).
    #[arg(long)]
    pub auto_obj_prefix_fallback: bool,
}

impl GenArgs {
    pub fn params(&self) -> GenParams {
        let mut stop = vec!["</answer>".to_string()];
        stop.extend(self.stop.iter().filter(|s| !s.is_empty()).cloned());
        GenParams {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            stop,
            response_prefix: self
                .response_prefix
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            constraint: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct InferArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// MS-SWIFT JSON lines: `{"messages": [user, assistant], "images": [path]}`.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Output JSON lines (one row per input row, with `predict` and `gen_time_sec`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub gen: GenArgs,
    /// Constrained decoding: every output passes the strict gate (native backend only).
    #[arg(long)]
    pub constrained: bool,
    /// Schema the constrained decoder enforces.
    #[arg(long, value_enum, default_value_t = crate::cli::SchemaArg::Triplet, requires = "constrained")]
    pub schema: crate::cli::SchemaArg,
    /// Start the output anew instead of resuming it.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InferArgs) -> anyhow::Result<ExitCode> {
    if args.constrained && args.backend.model.is_none() {
        bail!("--constrained needs the native backend (--model DIR): a remote server cannot mask logits");
    }
    let backend = args.backend.build(args.gen.batch_size)?;
    let mut rows = runner::read_rows(&args.input, args.gen.images_root.as_deref())
        .with_context(|| format!("Failed to read `{}`", args.input.display()))?;
    if let Some(n) = args.gen.limit {
        rows.truncate(n);
    }
    let mut params = args.gen.params();
    if args.constrained {
        params.constraint = Some(sgvlm_infer::Constraint {
            schema: args.schema.into(),
            canvas: (640, 480),
            objects: None,
            predicates: None,
        });
    }
    let cfg = RunConfig {
        batch_size: args.gen.batch_size.max(1),
        params,
        model_name: args.gen.run_name.clone().unwrap_or_else(|| args.backend.model_name(backend.as_ref())),
        obj_prefix_fallback: args.gen.auto_obj_prefix_fallback,
    };
    let bar = Bar::new("infer");
    let summary = runner::run_infer(backend.as_ref(), &rows, &args.out, &cfg, args.force, &bar)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("Failed to run inference into `{}`", args.out.display()))?;
    bar.0.finish_and_clear();
    report_obj_prefix_retries(summary.obj_prefix_retries);
    eprintln!(
        "{} rows: {} from an earlier run, {} written ({} errors) -> {}",
        summary.total,
        summary.already_done,
        summary.written,
        summary.errors,
        args.out.display()
    );
    print_json_line(&summary)?;
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr how many answers `--auto-obj-prefix-fallback` replaced (nothing when none were).
pub fn report_obj_prefix_retries(n: usize) {
    if n > 0 {
        eprintln!("{n} answers without an object header were replaced by their `obj[` retry");
    }
}
