//! # sgvlm-report
//!
//! Evaluation reports people can look at. [`write_report`] fills a folder with:
//! - `summary.md`: the summary as a Markdown table ([`markdown::summary_table`]);
//! - `per_predicate.md`: per-predicate recall and precision over the file ([`markdown::per_predicate_table`]);
//! - when at least one sample has an image, `index.html` with the GT and predicted graphs drawn onto it side by
//!   side (`img/<line>_gt.png`, `img/<line>_pred.png`: boxes, `id name` tags and relation arrows,
//!   [`render::draw_graph`]), worst SGG score first.
//!
//! Drawing uses small helpers ([`canvas`]) and a built-in bitmap font ([`font`]), so no font file is needed.
//! Missing or undecodable images are not errors: the sample appears without a picture and the problem is
//! returned in [`ReportOutcome::image_problems`] for the caller to report.
//!
//! It knows the evaluation's graphs and statistics (`sgvlm-graph`, `sgvlm-eval`) and images; it does not score.

pub mod canvas;
pub mod font;
pub mod html;
pub mod markdown;
pub mod render;

use rayon::prelude::*;
use serde_json::Value;
use sgvlm_eval::strict_eval::PredicateStats;
use sgvlm_graph::eval_parse::EvalGraph;
use std::path::{Path, PathBuf};

/// One evaluated row, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// 1-based line of the predictions file; names the pictures.
    pub line: usize,
    /// Parsed graphs (`None` when missing or unparseable).
    pub gt: Option<EvalGraph>,
    pub pred: Option<EvalGraph>,
    pub image: Option<PathBuf>,
    pub sgg_score: f64,
    pub toon_valid: bool,
}

/// A sample whose picture could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProblem {
    pub line: usize,
    pub path: PathBuf,
    pub error: String,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    pub files: Vec<PathBuf>,
    /// Samples drawn (two PNGs each).
    pub pictures: usize,
    pub image_problems: Vec<ImageProblem>,
}

/// Why the report could not be written (its own files; image inputs are [`ImageProblem`]s).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("Failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to encode `{path}`")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("Failed to serialise the summary")]
    Summary(#[from] serde_json::Error),
}

/// What goes into a report.
pub struct ReportInput<'a, T: serde::Serialize> {
    pub summary: &'a T,
    /// Per-predicate counts (triplet schema only).
    pub per_predicate: Option<&'a [PredicateStats]>,
    pub samples: &'a [Sample],
    /// The coordinate space of the graphs (width, height), scaled onto each image.
    pub canvas: (u32, u32),
}

/// The image of a row: the first entry of `images` (a path, or an object with `path`), else `image`; a relative
/// path is taken under `root` when given.
pub fn image_of(row: &Value, root: Option<&Path>) -> Option<PathBuf> {
    let first = row.get("images").and_then(Value::as_array).and_then(|a| a.first());
    let path = match first {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o.get("path").and_then(Value::as_str),
        _ => row.get("image").and_then(Value::as_str),
    }?;
    let p = PathBuf::from(path);
    Some(match root {
        Some(root) if p.is_relative() => root.join(p),
        _ => p,
    })
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

/// Draws one sample's two pictures; `Err` for the image's own problems, `Ok(Err)` for failures to write ours.
fn draw(sample: &Sample, path: &Path, img_dir: &Path, canvas: (u32, u32)) -> Result<Result<(), ReportError>, String> {
    let base = image::open(path).map_err(|e| e.to_string())?.to_rgb8();
    let empty = EvalGraph::default();
    for (graph, suffix) in [(&sample.gt, "gt"), (&sample.pred, "pred")] {
        let mut img = base.clone();
        render::draw_graph(&mut img, graph.as_ref().unwrap_or(&empty), canvas);
        let out = img_dir.join(format!("{}_{suffix}.png", sample.line));
        if let Err(source) = img.save(&out) {
            return Ok(Err(ReportError::Encode { path: out, source }));
        }
    }
    Ok(Ok(()))
}

/// Writes the report into `dir` (created if needed).
pub fn write_report<T: serde::Serialize>(dir: &Path, input: &ReportInput<T>) -> Result<ReportOutcome, ReportError> {
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|source| ReportError::Write { path: p.into(), source });
    mkdir(dir)?;
    let mut outcome = ReportOutcome::default();
    let summary = dir.join("summary.md");
    write(&summary, &markdown::summary_table("Evaluation summary", input.summary)?)?;
    outcome.files.push(summary);
    if let Some(stats) = input.per_predicate {
        let path = dir.join("per_predicate.md");
        write(&path, &markdown::per_predicate_table(stats))?;
        outcome.files.push(path);
    }
    if !input.samples.iter().any(|s| s.image.is_some()) {
        return Ok(outcome);
    }
    let img_dir = dir.join("img");
    mkdir(&img_dir)?;
    let canvas = input.canvas;
    let drawn: Vec<Result<Result<(), ReportError>, String>> = input
        .samples
        .par_iter()
        .map(|s| match &s.image {
            Some(path) => draw(s, path, &img_dir, canvas),
            None => Err("no image for this row".to_string()),
        })
        .collect();
    let mut pictures = Vec::with_capacity(drawn.len());
    for (s, d) in input.samples.iter().zip(drawn) {
        match d {
            Ok(written) => {
                written?;
                outcome.pictures += 1;
                outcome.files.push(img_dir.join(format!("{}_gt.png", s.line)));
                outcome.files.push(img_dir.join(format!("{}_pred.png", s.line)));
                pictures.push(Ok(()));
            }
            Err(error) => {
                if let Some(path) = &s.image {
                    let why = format!("{}: {error}", path.display());
                    outcome.image_problems.push(ImageProblem { line: s.line, path: path.clone(), error });
                    pictures.push(Err(why));
                } else {
                    pictures.push(Err(error));
                }
            }
        }
    }
    let index = dir.join("index.html");
    write(&index, &html::page(input.samples, &pictures))?;
    outcome.files.push(index);
    Ok(outcome)
}
