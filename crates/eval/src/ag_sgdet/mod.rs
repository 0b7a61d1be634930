//! # Action Genome SGDET metrics (classical R@K, P@K, F1@K, mR@K)
//!
//! **What it measures.** How many ground-truth (subject, predicate, object) triplets of a video frame the model's
//! ranked predictions recover, in OED's sgdet setting (boxes and classes predicted): for K = 10, 20, 50, 100,
//! with constraint (one predicate per subject–object row) and without (every predicate a candidate).
//! - `R@K`: GT triplets covered by the top K (a prediction may cover several GT triplets), over the GT count;
//! - `TP@K`: greedy one-to-one assignment in rank order; `P@K = TP@K / min(K, #predictions)`;
//!   `F1@K` = harmonic mean of `P@K` and `TP@K / #GT` (not of `R@K`);
//! - per-class hits and GT counts, from which the summary's `mR@K` is built, and micro figures from summed counts.
//!
//! A prediction matches a GT triplet when the subject class, predicate and object class are equal and both boxes
//! have IoU ≥ θ. This is the reference's `eval_classical_metrics_extended.py --mode sgdet`, read through
//! [`sgvlm_graph::ag_classical`] (GT triplets: attention `(s, o)`, spatial **reversed** `(o, s)`, contacting
//! `(s, o)`).
//!
//! **Scores of a generative output.** Object scores are 1; an attention label scores 1.0 and the j-th spatial or
//! contacting label of a list `1 − j·1e-4`. The 3P prediction rows are `[pairs; reversed pairs; pairs]`.
//! Many scores tie; the reference sorts with an unstable NumPy sort, so its order for ties depends on the
//! platform. Both protocols here break ties **stably**: higher score first, then lower index (cell index
//! `row·26 + predicate` for the no-constraint top 100, candidate position for the final ranking), which is the
//! oracle's `expected_stable_ties`.
//!
//! **Paper protocol.** As the reference: rows whose GT or prediction has no `<answer>` block or no valid object,
//! and rows whose GT yields no triplet, are **skipped** (`num_skip_*`), not scored; an all-zero row still yields
//! `looking_at` with score 0, which counts as a prediction; a pair naming a missing id uses object position 0;
//! `mR@K` averages over all 26 predicate classes, absent classes counting 0.
//!
//! **Sound protocol** ([`Protocol::Sound`]) fixes reference_facts §9 item 13:
//! - a prediction that fails the strict AG gate ([`sgvlm_graph::strict::is_valid`]) or does not parse is scored 0
//!   (status `pred_failed`, counted in `num_valid` and `num_pred_failed`) instead of skipped, so failures lower
//!   the scores; GT problems still skip the row (GT first: a GT without triplets skips before the prediction is
//!   looked at);
//! - zero-score rows and cells are not predictions (they no longer fill the P@K denominators or match as
//!   `looking_at`), and pairs naming a missing id are dropped;
//! - `mR@K` averages over the predicate classes present in the GT (0 when none).
//!
//! ```
//! use sgvlm_eval::ag_sgdet::{evaluate, AgConfig, AgRowStatus};
//! let gt = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,0,0,100,100\n2,cup,50,50,80,80\n\
//!           rel_pairs[1]{subj,attention,spatial,contacting,obj}:\n1,[looking_at],[],[holding],2\n</answer>\n";
//! let s = evaluate(Some(gt), Some(gt), &AgConfig::default());
//! assert_eq!(s.status, AgRowStatus::Scored);
//! let w = s.with_constraint.unwrap();
//! // Two real predictions plus the empty spatial row's zero-score `looking_at`.
//! assert_eq!((w.at[0].recall, w.at[0].tp, w.at[0].pred), (1.0, 2, 3));
//! ```

mod rank;
mod score;
mod serialize;
mod summary;

pub use summary::AgSummary;

use crate::protocol::Protocol;
use crate::record::EvalRecord;
use rayon::prelude::*;
use sgvlm_graph::vocab::AG_NUM_PREDICATES;
use sgvlm_graph::{ag_classical, strict, Schema, StrictConfig};

/// The K of R@K, P@K and F1@K.
pub const KS: [usize; 4] = [10, 20, 50, 100];

/// Settings of the AG evaluation.
#[derive(Debug, Clone)]
pub struct AgConfig {
    /// IoU threshold θ for both boxes of a triplet (default 0.5).
    pub iou_thr: f64,
    pub protocol: Protocol,
    /// The strict gate's settings (used by [`Protocol::Sound`] only).
    pub gate: StrictConfig,
}

impl Default for AgConfig {
    fn default() -> Self {
        AgConfig { iou_thr: 0.5, protocol: Protocol::Paper, gate: StrictConfig::default() }
    }
}

/// How a row was treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgRowStatus {
    Scored,
    /// Sound protocol: the prediction failed; scored 0.
    PredFailed,
    SkipGtParse,
    SkipPredParse,
    SkipNoGtRels,
}

impl AgRowStatus {
    /// The oracle's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgRowStatus::Scored => "scored",
            AgRowStatus::PredFailed => "pred_failed",
            AgRowStatus::SkipGtParse => "skip_gt_parse",
            AgRowStatus::SkipPredParse => "skip_pred_parse",
            AgRowStatus::SkipNoGtRels => "skip_no_gt_rels",
        }
    }

    /// Whether the row enters the metrics.
    pub fn is_scored(self) -> bool {
        matches!(self, AgRowStatus::Scored | AgRowStatus::PredFailed)
    }
}

/// The figures at one K.
#[derive(Debug, Clone, PartialEq)]
pub struct AtK {
    pub recall: f64,
    pub precision: f64,
    pub f1: f64,
    pub tp: usize,
    pub pred: usize,
    pub gt: usize,
    pub per_class_hits: [usize; AG_NUM_PREDICATES],
}

/// The figures of one frame under one constraint setting, for each K in [`KS`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintResult {
    pub at: [AtK; 4],
    pub per_class_gt_count: [usize; AG_NUM_PREDICATES],
}

/// One frame's result (serialised as the oracle's `expected_stable_ties` object).
#[derive(Debug, Clone, PartialEq)]
pub struct AgSample {
    pub status: AgRowStatus,
    pub with_constraint: Option<ConstraintResult>,
    pub no_constraint: Option<ConstraintResult>,
}

impl AgSample {
    fn skipped(status: AgRowStatus) -> AgSample {
        AgSample { status, with_constraint: None, no_constraint: None }
    }
}

/// Scores one frame; `None` stands for a missing text (read as the empty string, as the reference does).
pub fn evaluate(gt: Option<&str>, pred: Option<&str>, cfg: &AgConfig) -> AgSample {
    let Some(g) = ag_classical::parse(gt.unwrap_or("")) else {
        return AgSample::skipped(AgRowStatus::SkipGtParse);
    };
    let pred = pred.unwrap_or("");
    let p = match cfg.protocol {
        Protocol::Paper => {
            let Some(p) = ag_classical::parse(pred) else {
                return AgSample::skipped(AgRowStatus::SkipPredParse);
            };
            Some(p)
        }
        Protocol::Sound => strict::is_valid(pred, Schema::Ag, &cfg.gate).then(|| ag_classical::parse(pred)).flatten(),
    };
    let gt_triplets = g.gt_triplets();
    if gt_triplets.is_empty() {
        return AgSample::skipped(AgRowStatus::SkipNoGtRels);
    }
    let Some(p) = p else {
        return AgSample {
            status: AgRowStatus::PredFailed,
            with_constraint: Some(score::zero(&gt_triplets)),
            no_constraint: Some(score::zero(&gt_triplets)),
        };
    };
    let with = rank::with_constraint(&p, cfg.protocol);
    let no = rank::no_constraint(&p, cfg.protocol);
    AgSample {
        status: AgRowStatus::Scored,
        with_constraint: Some(score::score(&g, &gt_triplets, &p, &with, cfg.iou_thr)),
        no_constraint: Some(score::score(&g, &gt_triplets, &p, &no, cfg.iou_thr)),
    }
}

/// Scores a record.
pub fn evaluate_record(r: &EvalRecord, cfg: &AgConfig) -> AgSample {
    evaluate(r.gt.as_deref(), r.pred.as_deref(), cfg)
}

/// Scores many records in parallel (rayon), results in input order.
pub fn evaluate_all(records: &[EvalRecord], cfg: &AgConfig) -> Vec<AgSample> {
    evaluate_all_with(records, cfg, || {})
}

/// [`evaluate_all`], calling `on_row` once per row scored (from any thread), e.g. to advance a progress bar.
pub fn evaluate_all_with(records: &[EvalRecord], cfg: &AgConfig, on_row: impl Fn() + Sync) -> Vec<AgSample> {
    records
        .par_iter()
        .map(|r| {
            let s = evaluate_record(r, cfg);
            on_row();
            s
        })
        .collect()
}

#[cfg(test)]
mod tests;
