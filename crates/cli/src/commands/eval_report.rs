//! `sgvlm eval --report DIR`: gathers what `sgvlm_report` needs from the evaluated rows (graphs, scores, image
//! paths), writes the folder and reports on stderr what it wrote and which images could not be drawn.

use super::eval::Row;
use serde_json::Value;
use sgvlm_eval::soft_eval::SoftMetrics;
use sgvlm_eval::strict_eval::{PredicateStats, TripletMetrics};
use sgvlm_graph::eval_parse;
use sgvlm_report::{image_of, write_report, ReportInput, Sample};
use std::path::Path;

/// One report sample per row, scored by its (judged, or strict without a judge) SGG score.
pub(super) fn samples(
    rows: &[Row],
    metrics: &[TripletMetrics],
    soft: &[SoftMetrics],
    root: Option<&Path>,
) -> Vec<Sample> {
    rows.iter()
        .zip(metrics)
        .zip(soft)
        .map(|((row, m), s)| {
            let json: Value = serde_json::from_str(row.text).unwrap_or(Value::Null);
            Sample {
                line: row.line_no,
                gt: row.record.gt.as_deref().and_then(eval_parse::parse),
                pred: row.record.pred.as_deref().and_then(eval_parse::parse),
                image: image_of(&json, root),
                sgg_score: s.qwen_sgg_score,
                toon_valid: m.toon_valid,
            }
        })
        .collect()
}

/// Writes the report; image problems are warnings naming the file, then counted.
pub(super) fn write<T: serde::Serialize>(
    dir: &Path,
    summary: &T,
    per_predicate: Option<&[PredicateStats]>,
    samples: &[Sample],
    canvas: (u32, u32),
) -> anyhow::Result<()> {
    let input = ReportInput { summary, per_predicate, samples, canvas };
    let outcome = write_report(dir, &input)?;
    for p in &outcome.image_problems {
        eprintln!("warning: line {}: cannot draw `{}`: {}", p.line, p.path.display(), p.error);
    }
    let problems = outcome.image_problems.len();
    if problems > 0 {
        eprintln!("warning: {problems} image(s) could not be drawn; those samples appear without pictures");
    }
    eprintln!("report: {} file(s) in {} ({} sample(s) drawn)", outcome.files.len(), dir.display(), outcome.pictures);
    Ok(())
}
