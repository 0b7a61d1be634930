//! `sgvlm eval`: strict PSG/PVSG evaluation or Action Genome SGDET metrics over a predictions file.
//!
//! Reads JSON lines `{"content": GT, "predict": prediction, "gen_time_sec"?: seconds}` (with the reference's
//! `conversations`/`messages` fallbacks), scores the rows in parallel, prints the summary JSON on stdout and, with
//! `--per-sample`, writes one line per input row: the row as read plus `"metrics"`. Bad lines (not JSON, texts
//! missing or not strings) are reported on stderr as `file:line: …`, counted, and scored as the reference scores
//! missing inputs (a failed row for the triplet schema, a GT-parse skip for AG).
//!
//! With `--judge-url`/`--judge-model` an OpenAI-compatible LLM judge decides disputed labels and predicates and
//! fills the `qwen_*`/`_Qwen` figures (`sgvlm_eval::soft_eval`); with `--report DIR` a report folder is written
//! ([`super::eval_report`]).

use super::eval_report;
use super::input::{display_name, read_text};
use super::progress;
use crate::cli::SchemaArg;
use crate::output::Out;
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;
use sgvlm_eval::ag_sgdet::{self, AgConfig, AgSummary};
use sgvlm_eval::soft_eval::{evaluate_soft, SoftError, SoftMetrics};
use sgvlm_eval::strict_eval::{self, TripletConfig, TripletMetrics};
use sgvlm_eval::{EvalRecord, Protocol};
use sgvlm_infer::judge_backend::BackendJudge;
use sgvlm_infer::openai::{OpenAiBackend, OpenAiConfig};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Predictions file, one JSON object per line (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// `triplet`: strict PSG/PVSG metrics; `ag`: Action Genome SGDET R@K/P@K/F1@K/mR@K.
    #[arg(long, value_enum, default_value_t = SchemaArg::Triplet)]
    pub schema: SchemaArg,
    /// IoU threshold for box matches.
    #[arg(long, default_value_t = 0.5)]
    pub iou: f64,
    /// `paper` reproduces the reference scripts; `sound` fixes their known flaws (see the sgvlm-eval docs).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Paper)]
    pub protocol: ProtocolArg,
    /// Also write per-sample rows (input row + `metrics`) to this JSON-lines file.
    #[arg(long, value_name = "OUT.jsonl")]
    pub per_sample: Option<PathBuf>,
    #[command(flatten)]
    pub gate: crate::cli::GateArgs,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Write a report folder: summary.md, per_predicate.md and, when rows name images, index.html with the GT and
    /// predicted graphs drawn onto them (worst first).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Folder that relative paths in the rows' `images` field are taken under (default: as written).
    #[arg(long, value_name = "DIR", requires = "report")]
    pub images_root: Option<PathBuf>,
}

/// The LLM judge of the soft evaluation (triplet schema): any OpenAI-compatible chat-completions server.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Base URL of the judge server up to `/v1`, e.g. `http://127.0.0.1:8000/v1`; fills the `_Qwen` keys.
    #[arg(long, value_name = "URL", requires = "judge_model")]
    pub judge_url: Option<String>,
    /// Model name sent to the judge server.
    #[arg(long, value_name = "NAME", requires = "judge_url")]
    pub judge_model: Option<String>,
    /// Environment variable holding the judge's API key (unset or empty: no key sent).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub judge_api_key_env: String,
    /// Judge requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub judge_concurrency: u32,
}

impl JudgeArgs {
    /// The judge: the inference crate's OpenAI-compatible client under the judge adapter (one HTTP client in the
    /// project). Judge answers are a few tokens, so requests time out after a minute, not the generation default.
    fn judge(&self) -> Option<BackendJudge> {
        let (url, model) = (self.judge_url.as_ref()?, self.judge_model.as_ref()?);
        let backend = OpenAiBackend::new(OpenAiConfig {
            api_key_env: self.judge_api_key_env.clone(),
            concurrency: self.judge_concurrency as usize,
            initial_backoff: std::time::Duration::from_millis(500),
            timeout: std::time::Duration::from_secs(60),
            ..OpenAiConfig::new(url.as_str(), model.as_str())
        });
        let mut judge = BackendJudge::new(std::sync::Arc::new(backend));
        // One generate call sends a chunk; keep every connection busy.
        judge.batch_size = judge.batch_size.max(self.judge_concurrency as usize);
        Some(judge)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// The reference implementation's protocol.
    Paper,
    /// The corrected protocol.
    Sound,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Paper => Protocol::Paper,
            ProtocolArg::Sound => Protocol::Sound,
        }
    }
}

/// One non-empty input line.
pub(super) struct Row<'a> {
    pub line_no: usize,
    pub text: &'a str,
    pub record: EvalRecord,
}

pub fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    if !(a.iou.is_finite() && (0.0..=1.0).contains(&a.iou)) {
        anyhow::bail!("--iou must be a number in [0, 1], not {}", a.iou);
    }
    let name = display_name(&a.input);
    let text = read_text(&a.input)?;
    let mut rows = Vec::new();
    let mut bad = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (record, err) = EvalRecord::from_json_line(line);
        if let Some(e) = err {
            bad += 1;
            eprintln!("warning: {name}:{}: {e}", i + 1);
        }
        rows.push(Row { line_no: i + 1, text: line, record });
    }
    if bad > 0 {
        eprintln!("warning: {bad} bad line(s) in {name}, scored as missing inputs");
    }
    if a.judge.judge_url.is_some() && a.schema == SchemaArg::Ag {
        anyhow::bail!("--judge-url applies to the triplet schema only\nhint: drop it for `--schema ag`");
    }
    let records: Vec<EvalRecord> = rows.iter().map(|r| r.record.clone()).collect();
    let protocol: Protocol = a.protocol.into();
    let gate = a.gate.config();
    let mut out = Out::new();
    match a.schema {
        SchemaArg::Triplet => {
            let cfg = TripletConfig { iou_thr: a.iou, protocol, gate };
            let at_line = |i: usize| rows.get(i).map_or(0, |r| r.line_no);
            let nan_hint = "hint: `--protocol sound` scores such rows";
            let (metrics, soft) = match a.judge.judge() {
                Some(judge) => {
                    let out = evaluate_soft(&records, &cfg, &judge).map_err(|e| match e {
                        SoftError::Eval { row, source } => {
                            anyhow::anyhow!("{name}:{}: {source}\n{nan_hint}", at_line(row))
                        }
                        other => anyhow::Error::new(other),
                    })?;
                    eprintln!(
                        "judge: {} object and {} relation disputes decided",
                        out.object_disputes, out.relation_disputes
                    );
                    (out.strict, Some(out.soft))
                }
                None => {
                    let bar = progress::rows(records.len(), "eval");
                    let m = strict_eval::evaluate_all_with(&records, &cfg, || bar.inc(1))
                        .map_err(|(i, e)| anyhow::anyhow!("{name}:{}: {e}\n{nan_hint}", at_line(i)))?;
                    bar.finish_and_clear();
                    (m, None)
                }
            };
            let soft = soft.unwrap_or_else(|| metrics.iter().map(SoftMetrics::from_strict).collect());
            if let Some(path) = &a.per_sample {
                write_per_sample(path, &rows, |i| TripletRow { iou_thr: a.iou, strict: &metrics[i], soft: &soft[i] })?;
            }
            let times: Vec<f64> = records.iter().filter_map(|r| r.gen_time_sec).collect();
            let summary = match a.judge.judge_url {
                Some(_) => strict_eval::Summary::of_soft(&metrics, &soft, &times, &cfg),
                None => strict_eval::Summary::of(&metrics, &times, &cfg),
            };
            let report = TripletReport { predictions_file: &name, summary: &summary };
            if let Some(dir) = &a.report {
                let stats = strict_eval::per_predicate(&records, &cfg);
                let samples = eval_report::samples(&rows, &metrics, &soft, a.images_root.as_deref());
                eval_report::write(dir, &report, Some(&stats), &samples, (a.gate.width, a.gate.height))?;
            }
            out.line(&serde_json::to_string_pretty(&report)?)?;
        }
        SchemaArg::Ag => {
            let cfg = AgConfig { iou_thr: a.iou, protocol, gate };
            let start = Instant::now();
            let bar = progress::rows(records.len(), "eval");
            let samples = ag_sgdet::evaluate_all_with(&records, &cfg, || bar.inc(1));
            bar.finish_and_clear();
            let summary = AgSummary::of(&samples, &cfg);
            let elapsed = start.elapsed().as_secs_f64();
            if let Some(path) = &a.per_sample {
                write_per_sample(path, &rows, |i| &samples[i])?;
            }
            let report = AgReport {
                predictions_file: &name,
                summary: &summary,
                eval_time_sec: sgvlm_eval::pynum::py_round(elapsed, 2),
            };
            if let Some(dir) = &a.report {
                eval_report::write(dir, &report, None, &[], (a.gate.width, a.gate.height))?;
            }
            out.line(&serde_json::to_string_pretty(&report)?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
pub(super) struct TripletReport<'a> {
    predictions_file: &'a str,
    #[serde(flatten)]
    summary: &'a strict_eval::Summary,
}

#[derive(Serialize)]
pub(super) struct AgReport<'a> {
    predictions_file: &'a str,
    #[serde(flatten)]
    summary: &'a AgSummary,
    eval_time_sec: f64,
}

/// The per-sample `metrics` of the triplet schema: the threshold, the oracle's keys, and the judge keys (equal to
/// the strict ones without a judge), like the reference's per-sample file.
#[derive(Serialize)]
struct TripletRow<'a> {
    iou_thr: f64,
    #[serde(flatten)]
    strict: &'a TripletMetrics,
    #[serde(flatten)]
    soft: &'a SoftMetrics,
}

/// The input row with `"metrics"` appended, keeping the row's own text (key order, number spelling) where it is
/// an object without a `metrics` key; otherwise the parsed row with `metrics` replaced, or, for a line that is not
/// a JSON object, `{"line", "metrics"}`.
fn per_sample_line(row: &Row, metrics_json: &str) -> anyhow::Result<String> {
    match serde_json::from_str::<serde_json::Value>(row.text) {
        Ok(serde_json::Value::Object(mut obj)) => {
            if obj.contains_key("metrics") {
                obj.insert("metrics".to_string(), serde_json::from_str(metrics_json)?);
                return Ok(serde_json::to_string(&obj)?);
            }
            let body = row.text.strip_suffix('}').unwrap_or(row.text).trim_end();
            let sep = if obj.is_empty() { "" } else { "," };
            Ok(format!("{body}{sep}\"metrics\":{metrics_json}}}"))
        }
        _ => Ok(format!("{{\"line\":{},\"metrics\":{metrics_json}}}", row.line_no)),
    }
}

fn write_per_sample<T: Serialize>(path: &Path, rows: &[Row], metrics: impl Fn(usize) -> T) -> anyhow::Result<()> {
    let failed = || format!("Failed to write `{}`", path.display());
    let file = std::fs::File::create(path).with_context(|| format!("Failed to create `{}`", path.display()))?;
    let mut w = BufWriter::new(file);
    for (i, row) in rows.iter().enumerate() {
        let m = serde_json::to_string(&metrics(i))?;
        writeln!(w, "{}", per_sample_line(row, &m)?).with_context(failed)?;
    }
    w.flush().with_context(failed)
}
