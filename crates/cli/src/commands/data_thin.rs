//! `sgvlm data thin`: PVSG frame thinning with one of the paper's three methods, printing a Table-4-like summary
//! on stderr (or only JSON on stdout with `--json`) and optionally writing the kept frames.

use crate::output::print_json_line;
use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sgvlm_data::thin::{self, maxinfo, psfr, Row, Rows, Stats};
use std::path::PathBuf;
use std::process::ExitCode;

/// The thinning method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Keyframes where the annotation changes, then train/test vocabulary symmetry.
    BaseAnnot,
    /// rect_maxvol over per-video frame embeddings (offline thumbnail embedder).
    Maxinfo,
    /// Patchwise sparse-flow retention: Shi–Tomasi corners tracked by pyramidal Lucas–Kanade.
    Psfr,
}

#[derive(Debug, Args)]
pub struct ThinArgs {
    /// Which method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// The dense PVSG rows: a folder with `{train,test}_annotations_toon_sft.json`, or a `data prepare` output.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Write the kept frames here as JSON: `{"train": [...], "test": [...]}` of `{image_id, image_path,
    /// answer_toon}` (the reference's dense row form).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print only the summary JSON on stdout (no table on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    method: &'a str,
    #[serde(flatten)]
    stats: Stats,
    /// Frames (MaxInfo) or videos (PSFR) whose images could not be read.
    unreadable: usize,
    output: Option<String>,
}

fn table(method: &str, s: &Stats) -> String {
    let mut t = format!(
        "{:<6}{:<11}{:>14}{:>13}{:>9}{:>12}{:>13}\n",
        "split", "method", "frames before", "frames after", "% kept", "objects", "predicates"
    );
    for (name, x) in [("train", s.train), ("test", s.test)] {
        t.push_str(&format!(
            "{name:<6}{method:<11}{:>14}{:>13}{:>9.1}{:>12}{:>13}\n",
            x.frames_before,
            x.frames_after,
            x.percent_kept(),
            format!("{}/{}", x.objects_after, x.objects_before),
            format!("{}/{}", x.predicates_after, x.predicates_before),
        ));
    }
    t.push_str(&format!(
        "shared by train and test: objects {} -> {}, predicates {} -> {}",
        s.shared_objects_before, s.shared_objects_after, s.shared_predicates_before, s.shared_predicates_after
    ));
    t
}

fn dense(rows: &[Row]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| serde_json::json!({"image_id": r.image_id, "image_path": r.image_path, "answer_toon": r.toon}))
        .collect()
}

pub fn run(a: ThinArgs) -> anyhow::Result<ExitCode> {
    let rows = thin::load(&a.root).with_context(|| format!("Failed to read PVSG rows under `{}`", a.root.display()))?;
    let name = match a.method {
        Method::BaseAnnot => "base-annot",
        Method::Maxinfo => "maxinfo",
        Method::Psfr => "psfr",
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("{name}: {} train + {} test frames", rows.train.len(), rows.test.len()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let (kept, unreadable): (Rows, usize) = match a.method {
        Method::BaseAnnot => (thin::base_annot::thin(&rows), 0),
        Method::Maxinfo => maxinfo::thin(&rows, &maxinfo::Thumbnail::default()),
        Method::Psfr => {
            let (k, failed) = psfr::thin(&rows, &psfr::PsfrParams::PVSG);
            for (video, why) in &failed {
                bar.suspend(|| eprintln!("warning: skipped video `{video}`: {why}"));
            }
            (k, failed.len())
        }
    };
    bar.finish_and_clear();
    if unreadable > 0 && a.method == Method::Maxinfo {
        eprintln!("warning: {unreadable} frame(s) could not be read and were embedded as zeros");
    }
    let stats = thin::stats(&rows, &kept);
    if let Some(path) = &a.out {
        let doc = serde_json::json!({"train": dense(&kept.train), "test": dense(&kept.test)});
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("Failed to write `{}`", path.display()))?;
    }
    if !a.json {
        eprintln!("{}", table(name, &stats));
    }
    let report = Report { method: name, stats, unreadable, output: a.out.as_ref().map(|p| p.display().to_string()) };
    print_json_line(&report)?;
    Ok(ExitCode::SUCCESS)
}
