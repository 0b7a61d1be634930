//! `sgvlm data tokens`: JSON vs TOON token lengths of every answer in a JSON-lines file (paper Table 3).

use crate::output::Out;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sgvlm_data::tokens;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct TokensArgs {
    /// JSON lines with the answers: `data prepare` SFT rows (last assistant message), GRPO rows (`solution`) or
    /// dense rows (`answer_toon`).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// A Hugging Face `tokenizer.json` (the real Qwen3.5 one is built by tools/make_qwen35_tokenizer.py).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: PathBuf,
    /// Print only the summary JSON on stdout (no table on stderr).
    #[arg(long)]
    pub json: bool,
}

fn count(t: &tokenizers::Tokenizer, s: &str) -> anyhow::Result<usize> {
    Ok(t.encode(s, false).map_err(|e| anyhow::anyhow!("{e}"))?.len())
}

pub fn run(a: TokensArgs) -> anyhow::Result<ExitCode> {
    let tok = tokenizers::Tokenizer::from_file(&a.tokenizer)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("Failed to load the tokenizer `{}`", a.tokenizer.display()))?;
    let file = std::fs::File::open(&a.input).with_context(|| format!("Failed to open `{}`", a.input.display()))?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} rows {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let (mut pairs, mut skipped) = (Vec::new(), 0usize);
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("Failed to read `{}` line {}", a.input.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let texts = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|row| tokens::answer_of(&row).map(str::to_owned).ok_or_else(|| "no answer field".to_owned()))
            .and_then(|ans| tokens::texts(&ans));
        match texts {
            Ok((toon, json)) => pairs.push((count(&tok, &json)?, count(&tok, &toon)?)),
            Err(why) => {
                skipped += 1;
                bar.suspend(|| eprintln!("warning: skipped {} line {}: {why}", a.input.display(), i + 1));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = tokens::stats(&pairs);
    if !a.json {
        eprintln!("{:<6}{:>6}{:>9}{:>9}{:>6}", "", "min", "mean", "median", "max");
        for (name, x) in [("JSON", s.json), ("TOON", s.toon)] {
            eprintln!("{name:<6}{:>6}{:>9.1}{:>9.1}{:>6}", x.min, x.mean, x.median, x.max);
        }
        eprintln!(
            "compression (mean JSON / mean TOON) {:.2}, median per-row ratio {:.2}; {} of {} rows longer in TOON; \
             {skipped} skipped",
            s.compression, s.compression_median, s.toon_longer, s.rows
        );
    }
    let mut v = serde_json::to_value(&s)?;
    v["skipped"] = skipped.into();
    let mut out = Out::new();
    out.line(&v.to_string())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
