//! `sgvlm video`: the reference's GEN-prompt waves over video rows (or one folder of frames), each later frame's
//! prompt carrying the previous frame's graph.

use super::backend_args::{BackendArgs, Bar};
use super::infer::{report_obj_prefix_retries, GenArgs};
use crate::output::print_json_line;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use sgvlm_infer::runner::{self, FramesDataset, PrevSource, RunConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the previous graph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrevArg {
    /// The previous row's GT answer (finalized).
    Gt,
    /// The model's prediction for the previous frame (real time).
    Generated,
    /// No previous graph: the block is removed from every prompt.
    None,
}

/// Prompt family for `--frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VideoDatasetArg {
    Pvsg,
    Ag,
}

#[derive(Debug, Args)]
pub struct VideoArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// MS-SWIFT video rows (videos grouped by the image's folder, frames ordered by the number in the file name).
    #[arg(long, value_name = "FILE", conflicts_with = "frames", required_unless_present = "frames")]
    pub input: Option<PathBuf>,
    /// A folder holding the frames of one video (`0.png`, `1.png`, …); prompts from `--dataset`.
    #[arg(long, value_name = "DIR")]
    pub frames: Option<PathBuf>,
    /// Prompts for `--frames`.
    #[arg(long, value_enum, default_value_t = VideoDatasetArg::Pvsg)]
    pub dataset: VideoDatasetArg,
    /// Source of the previous-frame graph.
    #[arg(long, value_enum)]
    pub prev: PrevArg,
    /// Output JSON lines, one row per frame in input order.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub gen: GenArgs,
    /// Overwrite an existing output and discard the journal (`OUT.part`) of an interrupted run instead of resuming it.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: VideoArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.force {
        bail!("`{}` exists (a finished run); pass --force to overwrite it", args.out.display());
    }
    let backend = args.backend.build(args.gen.batch_size)?;
    let mut rows = match (&args.input, &args.frames) {
        (Some(input), _) => runner::read_rows(input, args.gen.images_root.as_deref())
            .with_context(|| format!("Failed to read `{}`", input.display()))?,
        (None, Some(dir)) => {
            if args.prev == PrevArg::Gt {
                bail!("--prev gt needs GT answers; a frames folder has none (use --input rows.jsonl)");
            }
            let ds = match args.dataset {
                VideoDatasetArg::Pvsg => FramesDataset::Pvsg,
                VideoDatasetArg::Ag => FramesDataset::Ag,
            };
            runner::frame_rows(dir, ds).map_err(anyhow::Error::msg)?
        }
        (None, None) => bail!("give --input FILE or --frames DIR"),
    };
    if let Some(n) = args.gen.limit {
        rows.truncate(n);
    }
    let prev = match args.prev {
        PrevArg::Gt => PrevSource::Gt,
        PrevArg::Generated => PrevSource::Generated,
        PrevArg::None => PrevSource::None,
    };
    let cfg = RunConfig {
        batch_size: args.gen.batch_size.max(1),
        params: args.gen.params(),
        model_name: args.gen.run_name.clone().unwrap_or_else(|| args.backend.model_name(backend.as_ref())),
        obj_prefix_fallback: args.gen.auto_obj_prefix_fallback,
    };
    let bar = Bar::new("video");
    let summary = runner::run_video(backend.as_ref(), &rows, &args.out, &cfg, prev, args.force, &bar)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("Failed to run the video waves into `{}`", args.out.display()))?;
    bar.0.finish_and_clear();
    if !summary.template_found && prev != PrevSource::None {
        eprintln!("warning: no prompt had a previous-graph header; every row ran with its own prompt");
    }
    report_obj_prefix_retries(summary.obj_prefix_retries);
    if summary.already_done > 0 || summary.truncated_bytes > 0 {
        eprintln!(
            "resumed: {} rows replayed from the interrupted run's journal ({} bytes of a partial line cut)",
            summary.already_done, summary.truncated_bytes
        );
    }
    eprintln!(
        "{} rows in {} videos, {} waves, {} generated, {} errors -> {}",
        summary.rows,
        summary.videos,
        summary.waves,
        summary.written,
        summary.errors,
        args.out.display()
    );
    print_json_line(&summary)?;
    Ok(ExitCode::SUCCESS)
}
