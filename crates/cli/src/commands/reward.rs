//! `sgvlm reward`: the 13 GRPO reward functions over a JSON-lines file.

use super::input::{display_name, read_text};
use super::progress;
use crate::cli::RewardArgs;
use anyhow::Context;
use serde_json::{Map, Value};
use sgvlm_eval::rewards::{self, RewardConfig, REWARD_NAMES};
use std::io::Write;
use std::process::ExitCode;

/// The text of a completion or solution field: a string, a message list (first message's `content`, as the
/// reference's `_coerce_completion_text`), or a message object.
fn field_text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.get("content")?.as_str(),
        Value::Object(o) => o.get("content")?.as_str(),
        _ => None,
    }
}

pub fn run(a: RewardArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = RewardConfig::default();
    if let Some(p) = &a.config {
        let text = read_text(p)?;
        cfg.apply_toml(&text).with_context(|| format!("Failed to read reward settings from `{}`", p.display()))?;
    }
    cfg.apply_env(std::env::vars()).context("Failed to read reward settings from the environment")?;
    if let Some(p) = a.protocol {
        cfg.protocol = p.into();
    }
    let name = display_name(&a.input);
    let text = read_text(&a.input)?;

    // Parse every line first, so that unreadable rows are reported with their line numbers.
    let mut pairs: Vec<Result<(String, String), String>> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let row =
            serde_json::from_str::<Value>(line).map_err(|e| format!("{name}:{}: not JSON: {e}", i + 1)).and_then(|v| {
                let c = v.get("completion").and_then(field_text);
                let s = v.get("solution").and_then(field_text);
                match (c, s) {
                    (Some(c), Some(s)) => Ok((c.to_string(), s.to_string())),
                    _ => Err(format!("{name}:{}: needs string fields `completion` and `solution`", i + 1)),
                }
            });
        pairs.push(row);
    }
    let ok: Vec<&(String, String)> = pairs.iter().filter_map(|p| p.as_ref().ok()).collect();
    let comps: Vec<&str> = ok.iter().map(|p| p.0.as_str()).collect();
    let sols: Vec<&str> = ok.iter().map(|p| p.1.as_str()).collect();
    let bar = progress::rows(comps.len(), "reward");
    let mut scores = rewards::score_batch_with(&comps, &sols, a.schema.into(), &cfg, || bar.inc(1)).into_iter();
    bar.finish_and_clear();

    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("Failed to create `{}`", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut bad = 0usize;
    for p in &pairs {
        let mut obj = Map::new();
        match p {
            Ok(_) => {
                let s = scores.next().context("internal: score count mismatch")?;
                for (k, v) in REWARD_NAMES.iter().zip(s) {
                    obj.insert(k.to_string(), Value::from(v));
                }
                if a.total {
                    obj.insert("total".into(), Value::from(rewards::total(&s)));
                }
            }
            Err(e) => {
                // The reference scores a failing item 0 (frac_no_rel: 1); the row is kept so lines stay aligned.
                bad += 1;
                eprintln!("warning: {e}");
                for k in REWARD_NAMES {
                    obj.insert(k.to_string(), Value::from(if k == "sgg_diag_frac_no_rel" { 1.0 } else { 0.0 }));
                }
                if a.total {
                    obj.insert("total".into(), Value::from(0.0));
                }
                obj.insert("error".into(), Value::from(e.clone()));
            }
        }
        writeln!(out, "{}", Value::Object(obj))?;
    }
    out.flush()?;
    eprintln!("{name}: scored {} rows ({bad} unreadable)", pairs.len());
    Ok(ExitCode::SUCCESS)
}
