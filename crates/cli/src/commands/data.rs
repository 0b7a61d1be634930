//! `sgvlm data`: synthetic scenes and dataset preparation (`thin` and `tokens` live in `data_thin`, `data_tokens`). Progress bars and the summary table go to stderr,
//! the summary JSON to stdout.

use crate::cli::{DataCommand, DatasetArg};
use crate::output::Out;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sgvlm_data::prepare::{self, Dataset, Reporter, Summary};
use sgvlm_data::readers::RecordError;
use sgvlm_data::synth::write::{write_all, SynthOptions};
use std::process::ExitCode;

/// Draws the progress of a run on stderr; skipped records are printed above the bar.
struct Bar(ProgressBar);

impl Reporter for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self) {
        self.0.inc(1);
    }
    fn skipped(&self, e: &RecordError) {
        self.0.suspend(|| eprintln!("warning: skipped {e}"));
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn table(s: &Summary) -> String {
    let mut t = format!("{:<8}{:>10}{:>10}{:>10}\n", s.dataset, "before", "removed", "kept");
    for (name, c) in [("train", s.train), ("test", s.test)] {
        t.push_str(&format!("{name:<8}{:>10}{:>10}{:>10}\n", c.before, c.removed, c.kept));
    }
    let skipped: usize = s.skipped.values().sum();
    t.push_str(&format!("skipped {skipped} record(s)"));
    for (why, n) in &s.skipped {
        t.push_str(&format!("; {n} {why}"));
    }
    t.push_str(&format!("\nresumed {} unit(s) from an earlier run", s.resumed));
    t
}

pub fn run(cmd: DataCommand) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    match cmd {
        DataCommand::Thin(args) => return super::data_thin::run(args),
        DataCommand::Tokens(args) => return super::data_tokens::run(args),
        DataCommand::Synth { out: dir, images, videos, frames, seed } => {
            let o = SynthOptions { images, videos, frames, seed };
            let s = write_all(&dir, &o)
                .with_context(|| format!("Failed to write synthetic scenes to `{}`", dir.display()))?;
            out.line(&serde_json::to_string(&s)?)?;
        }
        DataCommand::Prepare { dataset, root, out: dir } => {
            let ds = match dataset {
                DatasetArg::Psg => Dataset::Psg,
                DatasetArg::Pvsg => Dataset::Pvsg,
                DatasetArg::Ag => Dataset::Ag,
            };
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(ds.as_str());
            let s = prepare::prepare(ds, &root, &dir, &Bar(bar))
                .with_context(|| format!("Failed to prepare {} from `{}`", ds.as_str(), root.display()))?;
            eprintln!("{}", table(&s));
            out.line(&serde_json::to_string(&s)?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
