//! The `infer` runner: every row's own prompt, consecutive batches, output appended and flushed per batch.
//!
//! Rows of one batch are written in input order once the batch is done, so the file is always sorted by `index`
//! and a rerun after an interruption ([`super::resume`]) continues with the first missing row.

use super::batch::{generate_timed, obj_prefix_fallback};
use super::finalize::finalize_vl_prediction;
use super::resume::scan_and_repair;
use super::rows::{load_images, InputRow, OutputRow};
use super::{Progress, RunConfig};
use crate::{Backend, GenRequest, Message, Role};
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InferSummary {
    /// Input rows considered (after `--limit`).
    pub total: usize,
    /// Rows found in the output from an earlier run and skipped.
    pub already_done: usize,
    /// Rows this run wrote.
    pub written: usize,
    /// Of those, error rows (`predict_error` set).
    pub errors: usize,
    /// Bytes of a partial last line cut from the existing output.
    pub truncated_bytes: u64,
    /// Answers replaced by their `obj[`-prefixed retry (`obj_prefix_fallback`).
    pub obj_prefix_retries: usize,
}

/// Runs `rows` through `backend` into `out`. Without `force`, rows already in `out` are skipped (resume); with it,
/// `out` is started anew.
pub fn run_infer(
    backend: &dyn Backend,
    rows: &[InputRow],
    out: &Path,
    cfg: &RunConfig,
    force: bool,
    progress: &dyn Progress,
) -> Result<InferSummary, String> {
    let existing = if force { Default::default() } else { scan_and_repair(out)? };
    let pending: Vec<&InputRow> = rows.iter().filter(|r| !existing.done.contains(&r.index)).collect();
    let mut summary = InferSummary {
        total: rows.len(),
        already_done: rows.len() - pending.len(),
        truncated_bytes: existing.truncated_bytes,
        ..Default::default()
    };
    progress.start(rows.len() as u64, summary.already_done as u64);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(!force)
        .write(true)
        .truncate(force)
        .open(out)
        .map_err(|e| format!("failed to open {}: {e}", out.display()))?;

    for batch in pending.chunks(cfg.batch_size.max(1)) {
        let mut lines: Vec<(usize, OutputRow)> = Vec::with_capacity(batch.len());
        let mut requests = Vec::new();
        let mut sent: Vec<&InputRow> = Vec::new();
        for row in batch {
            let prepared = row.sample.clone().and_then(|s| Ok((load_images(&s)?, s)));
            match prepared {
                Ok((images, sample)) => {
                    requests.push(GenRequest {
                        messages: vec![Message { role: Role::User, content: sample.user.clone() }],
                        images,
                        params: cfg.params.clone(),
                    });
                    sent.push(row);
                }
                Err(e) => {
                    let user = row.sample.as_ref().map(|s| s.user.as_str()).unwrap_or("");
                    lines.push((row.index, OutputRow::error(row, user, &cfg.model_name, e)));
                }
            }
        }
        let (mut results, per) = generate_timed(backend, &requests);
        if cfg.obj_prefix_fallback {
            summary.obj_prefix_retries += obj_prefix_fallback(backend, &requests, &mut results);
        }
        for (row, result) in sent.into_iter().zip(results) {
            let sample = row.sample.as_ref().ok();
            let user = sample.map(|s| s.user.as_str()).unwrap_or("");
            let out_row = match result {
                Ok(output) => {
                    let predict = finalize_vl_prediction(&output.text);
                    OutputRow {
                        messages: row.raw_messages.clone().unwrap_or_else(|| super::rows::user_and_assistant(user, "")),
                        images: row.raw_images.clone(),
                        content: sample.and_then(|s| s.gt.clone()).unwrap_or_default(),
                        predict,
                        model_name: cfg.model_name.clone(),
                        gen_time_sec: Some(per),
                        predict_error: None,
                        index: row.index,
                    }
                }
                Err(e) => OutputRow::error(row, user, &cfg.model_name, e.to_string()),
            };
            lines.push((row.index, out_row));
        }
        lines.sort_by_key(|(i, _)| *i);
        let mut text = String::new();
        for (_, row) in &lines {
            summary.errors += usize::from(row.predict_error.is_some());
            text.push_str(&row.to_line());
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| format!("failed to write {}: {e}", out.display()))?;
        summary.written += lines.len();
        progress.advance(lines.len() as u64);
    }
    Ok(summary)
}
