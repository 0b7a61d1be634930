//! The `video` runner: the reference's GEN-prompt waves (§6.1 of the reference facts).
//!
//! Rows are grouped into videos by the parent folder of their first image and ordered by `int(stem)`; wave k is
//! frame k of every video, split into batches of `batch_size`. Wave 0 uses each row's own prompt; later waves
//! rebuild every prompt from one [`PrevTemplate`] with the previous frame's graph: the prediction (`generated`) or
//! the finalized GT answer (`gt`). A failed frame passes `""` on (or its GT with `gt`). `none` sends every row's
//! prompt with its previous-graph block removed (the `*_noprevgraph` prompts, §2.4).
//!
//! The output is written once at the end (to `OUT.tmp`, then renamed), one row per input row in input order, with
//! `messages` = the user prompt actually sent and the prediction.
//!
//! Resuming: while it runs, every finished row is appended (flushed per batch) to a journal `OUT.part`, removed once
//! `OUT` is written. A rerun finds the journal ([`super::resume`]), replays its rows — their predictions feed the
//! next frames' prompts exactly as in the interrupted run — and generates only the missing frames. A journaled row
//! whose prompt differs from the one this run would send (another `--prev`, input or template) stops the run
//! rather than mix two settings; `force` discards the journal.

use super::batch::{generate_timed, obj_prefix_fallback};
use super::finalize::finalize_vl_prediction;
use super::resume::scan_and_repair;
use super::rows::{load_images, user_and_assistant, InputRow, OutputRow};
use super::template::PrevTemplate;
use super::{Progress, RunConfig};
use crate::{Backend, GenRequest, Message, Role};
use serde::Serialize;
use sgvlm_graph::pytext::{py_int, strip};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a later frame's previous graph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrevSource {
    /// The finalized GT answer of the previous row (`--prev-source gt`).
    Gt,
    /// The model's prediction for the previous frame (the real-time setting).
    Generated,
    /// No previous graph: the block is removed from every prompt.
    None,
}

/// What one video run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VideoSummary {
    pub rows: usize,
    pub videos: usize,
    pub waves: usize,
    /// Rows this run generated (or failed) …
    pub written: usize,
    /// … and rows replayed from the journal of an interrupted run.
    pub already_done: usize,
    /// Error rows among all rows (`predict_error` set), replayed ones included.
    pub errors: usize,
    /// Bytes of a partial last line cut from the journal.
    pub truncated_bytes: u64,
    /// Answers replaced by their `obj[`-prefixed retry (`obj_prefix_fallback`).
    pub obj_prefix_retries: usize,
    /// False when no prompt had a previous-graph header: every row then ran with its own prompt.
    pub template_found: bool,
}

/// The video id (parent folder name of the first image) and frame number (`int(stem)`, else 0) of a row.
fn video_and_frame(row: &InputRow) -> Option<(String, i64)> {
    let path = row.sample.as_ref().ok()?.images.first()?;
    let vid = path.parent()?.file_name()?.to_string_lossy().into_owned();
    let t = path.file_stem().and_then(|s| py_int(&s.to_string_lossy())).unwrap_or(0);
    Some((vid, t))
}

/// The journal of a run into `out`: `OUT.part`.
pub fn journal_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// A journaled row: its line and what the waves need from it.
struct Replayed {
    line: String,
    user: String,
    predict: String,
    failed: bool,
}

fn replayed(line: &str) -> Option<Replayed> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Replayed {
        line: line.to_string(),
        user: v["messages"][0]["content"].as_str()?.to_string(),
        predict: v["predict"].as_str()?.to_string(),
        failed: v["predict_error"].is_string(),
    })
}

/// Appends finished rows to the journal, flushing each time.
struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    fn append(&mut self, lines: &[&str]) -> Result<(), String> {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| format!("failed to write {}: {e}", self.path.display()))
    }
}

/// Runs the waves over `rows` and writes `out`; without `force` an interrupted run's journal is resumed.
pub fn run_video(
    backend: &dyn Backend,
    rows: &[InputRow],
    out: &Path,
    cfg: &RunConfig,
    prev_source: PrevSource,
    force: bool,
    progress: &dyn Progress,
) -> Result<VideoSummary, String> {
    let template = PrevTemplate::find(rows.iter().filter_map(|r| r.sample.as_ref().ok()).map(|s| s.user.as_str()));
    if prev_source == PrevSource::Gt && rows.iter().any(|r| r.sample.as_ref().is_ok_and(|s| s.gt.is_none())) {
        return Err("--prev gt needs a GT assistant message in every row".into());
    }
    // Videos in order of first appearance, frames sorted by number (stable: input order breaks ties).
    let mut order: Vec<String> = Vec::new();
    let mut videos: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    for (pos, row) in rows.iter().enumerate() {
        let (vid, t) = video_and_frame(row).unwrap_or_else(|| (format!("_row{pos}"), pos as i64));
        let frames = videos.entry(vid.clone()).or_insert_with(|| {
            order.push(vid);
            Vec::new()
        });
        frames.push((t, pos));
    }
    for frames in videos.values_mut() {
        frames.sort();
    }
    let waves = videos.values().map(Vec::len).max().unwrap_or(0);
    let jpath = journal_path(out);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    }
    let existing = if force { Default::default() } else { scan_and_repair(&jpath)? };
    let mut done: HashMap<usize, Replayed> = HashMap::new();
    for (index, line) in &existing.lines {
        let r = replayed(line).ok_or_else(|| {
            format!(
                "{}: the row with index {index} lacks messages/predict; pass --force to start again",
                jpath.display()
            )
        })?;
        done.insert(*index, r);
    }
    let mut journal = Journal {
        file: std::fs::OpenOptions::new()
            .create(true)
            .append(!force)
            .write(true)
            .truncate(force)
            .open(&jpath)
            .map_err(|e| format!("failed to open {}: {e}", jpath.display()))?,
        path: jpath.clone(),
    };
    let mut summary = VideoSummary {
        rows: rows.len(),
        videos: order.len(),
        waves,
        template_found: template.is_some(),
        truncated_bytes: existing.truncated_bytes,
        ..Default::default()
    };
    let resumable = rows.iter().filter(|r| done.contains_key(&r.index)).count();
    progress.start(rows.len() as u64, resumable as u64);

    let mut results: Vec<Option<String>> = vec![None; rows.len()];
    let mut prev: HashMap<&str, String> = HashMap::new();
    let chain = |row: &InputRow, pred: &str| -> String {
        match prev_source {
            PrevSource::Gt => row
                .sample
                .as_ref()
                .ok()
                .and_then(|s| s.gt.as_deref())
                .map(finalize_vl_prediction)
                .unwrap_or_else(|| strip(pred).to_string()),
            _ => strip(pred).to_string(),
        }
    };

    for wave in 0..waves {
        // (video, row position, prompt, request)
        let mut ready: Vec<(&str, usize, String, GenRequest)> = Vec::new();
        for vid in &order {
            let Some(&(_, pos)) = videos[vid].get(wave) else { continue };
            let row = &rows[pos];
            let prompt = match (&row.sample, prev_source, &template) {
                (Err(_), ..) => String::new(),
                (Ok(s), PrevSource::None, _) => sgvlm_data::prompts::without_prev_graph(&s.user)
                    .map_err(|e| e.to_string())
                    .unwrap_or_else(|_| s.user.clone()),
                (Ok(s), _, Some(t)) if wave > 0 => t.build(prev.get(vid.as_str()).map_or("", String::as_str)),
                (Ok(s), ..) => s.user.clone(),
            };
            if let Some(r) = done.remove(&row.index) {
                let sent = if r.failed && prompt.is_empty() {
                    row.sample.as_ref().map_or("", |s| s.user.as_str())
                } else {
                    &prompt
                };
                if r.user != sent {
                    return Err(format!(
                        "{}: the row with index {} was generated from another prompt (a different --prev, input or \
                         template?); pass --force to start again",
                        jpath.display(),
                        row.index
                    ));
                }
                prev.insert(vid.as_str(), chain(row, if r.failed { "" } else { &r.predict }));
                summary.errors += usize::from(r.failed);
                summary.already_done += 1;
                results[pos] = Some(r.line);
                continue;
            }
            let prepared = row.sample.clone().and_then(|s| load_images(&s));
            match prepared {
                Ok(images) => {
                    let request = GenRequest {
                        messages: vec![Message { role: Role::User, content: prompt.clone() }],
                        images,
                        params: cfg.params.clone(),
                    };
                    ready.push((vid.as_str(), pos, prompt, request));
                }
                Err(e) => {
                    let user =
                        if prompt.is_empty() { row.sample.as_ref().map_or("", |s| s.user.as_str()) } else { &prompt };
                    let line = OutputRow::error(row, user, &cfg.model_name, e).to_line();
                    journal.append(&[&line])?;
                    results[pos] = Some(line);
                    prev.insert(vid.as_str(), chain(row, ""));
                    summary.errors += 1;
                    summary.written += 1;
                    progress.advance(1);
                }
            }
        }
        for batch in ready.chunks(cfg.batch_size.max(1)) {
            let requests: Vec<GenRequest> = batch.iter().map(|(.., r)| r.clone()).collect();
            let (mut outputs, per) = generate_timed(backend, &requests);
            if cfg.obj_prefix_fallback {
                summary.obj_prefix_retries += obj_prefix_fallback(backend, &requests, &mut outputs);
            }
            for ((vid, pos, prompt, _), output) in batch.iter().zip(outputs) {
                let row = &rows[*pos];
                let out_row = match output {
                    Ok(o) => {
                        let predict = finalize_vl_prediction(&o.text);
                        prev.insert(vid, chain(row, &predict));
                        OutputRow {
                            messages: user_and_assistant(prompt, &predict),
                            images: row.raw_images.clone(),
                            content: row.sample.as_ref().ok().and_then(|s| s.gt.clone()).unwrap_or_default(),
                            predict,
                            model_name: cfg.model_name.clone(),
                            gen_time_sec: Some(per),
                            predict_error: None,
                            index: row.index,
                        }
                    }
                    Err(e) => {
                        prev.insert(vid, chain(row, ""));
                        summary.errors += 1;
                        OutputRow::error(row, prompt, &cfg.model_name, e.to_string())
                    }
                };
                results[*pos] = Some(out_row.to_line());
            }
            let lines: Vec<&str> = batch.iter().filter_map(|(_, pos, ..)| results[*pos].as_deref()).collect();
            journal.append(&lines)?;
            summary.written += batch.len();
            progress.advance(batch.len() as u64);
        }
    }

    let mut text = String::new();
    for line in results.iter().flatten() {
        text.push_str(line);
        text.push('\n');
    }
    write_atomically(out, text.as_bytes())?;
    drop(journal);
    std::fs::remove_file(&jpath).map_err(|e| format!("failed to remove {}: {e}", jpath.display()))?;
    Ok(summary)
}

fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("failed to create {}: {e}", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, out).map_err(|e| format!("failed to rename {} to {}: {e}", tmp.display(), out.display()))
}
