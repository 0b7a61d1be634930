//! # Soft (LLM-judged) PSG/PVSG evaluation
//!
//! **What it measures.** The strict figures of [`crate::strict_eval`] with two relaxations decided by an LLM
//! judge ([`crate::judge::Judge`]): an IoU-matched object pair whose names differ counts as a true positive when
//! the judge says the labels name the same entity (`sofa` for `couch`), and a relation candidate whose predicates
//! differ counts as a hit when the judge says the triplets are equivalent (`on` for `sitting on`). Per row this
//! gives the reference's `qwen_*` metrics ([`SoftMetrics`]); over a file the `_Qwen`/`_qwen` summary keys
//! ([`crate::strict_eval::Summary::of_soft`], `strict_only: false`).
//!
//! **How (paper protocol, = `eval_sgg_metrics_with_qwen.py` without `--strict-only`).**
//! 1. Every row is parsed and its objects assigned exactly as in the strict evaluation; invalid rows score 0.
//! 2. *Object disputes*, over the whole file: every IoU-matched pair whose normalised names differ, asked with
//!    both full-scene summaries ([`crate::judge::prompts::scene_summary`]). Each verdict decides its own pair.
//!    The verdicts also fill a synonym map keyed by `(gt_name, pred_name)`; the last verdict for a key wins.
//! 3. *Relation disputes*: every candidate (prediction endpoints matched onto the GT relation's endpoints, labels
//!    ignored) whose predicates differ. Before asking, each predicted endpoint name is replaced by the GT name when
//!    the two are equal or the synonym map says they are synonyms, so the judge compares predicates between the
//!    same entities.
//! 4. Counts as in the strict evaluation, with the judged decisions: object TP = equal names or a "1" verdict;
//!    relation TP = a maximum one-to-one assignment of candidates with equal predicates or a "1" verdict.
//!
//! Names are looked up by id the way the reference's dicts do: with repeated ids the last object's name wins,
//! also in the scene summaries.
//!
//! **Sound protocol.** The strict evaluation's corrections apply (gate failures, skipped ground truths, `1` for
//! two empty relation sets); relation endpoints must be *accepted* object pairs, i.e. equal names or judged
//! synonyms, so the relation disputes are collected after the object verdicts.
//!
//! ```
//! use sgvlm_eval::judge::FnJudge;
//! use sgvlm_eval::soft_eval::evaluate_soft;
//! use sgvlm_eval::strict_eval::TripletConfig;
//! use sgvlm_eval::EvalRecord;
//! let gt = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,couch,0,0,100,100\nrel[0]{subj,pred,obj}:\n</answer>";
//! let pred = gt.replace("couch", "sofa");
//! let rows = [EvalRecord { gt: Some(gt.into()), pred: Some(pred), gen_time_sec: None }];
//! let judge = FnJudge(|r| r.user.contains("'couch' (from GT) and 'sofa'"));
//! let out = evaluate_soft(&rows, &TripletConfig::default(), &judge).unwrap();
//! assert_eq!((out.strict[0].strict_f1_objects, out.soft[0].qwen_f1_objects), (0.0, 1.0));
//! assert_eq!((out.object_disputes, out.relation_disputes), (1, 0));
//! ```

mod disputes;

use crate::judge::{Judge, JudgeError, JudgeRequest};
use crate::record::EvalRecord;
use crate::strict_eval::{EvalError, TripletConfig, TripletMetrics};
use serde::Serialize;

/// The judged per-sample figures, serialised with the reference's `qwen_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SoftMetrics {
    pub qwen_precision_objects: f64,
    pub qwen_recall_objects: f64,
    pub qwen_f1_objects: f64,
    pub qwen_precision_relations: f64,
    pub qwen_recall_relations: f64,
    pub qwen_f1_relations: f64,
    pub qwen_sgg_score: f64,
}

impl SoftMetrics {
    /// The strict figures under the `qwen_*` names: what the reference writes with `--strict-only`, and what a
    /// row without disputes scores.
    pub fn from_strict(m: &TripletMetrics) -> SoftMetrics {
        SoftMetrics {
            qwen_precision_objects: m.strict_precision_objects,
            qwen_recall_objects: m.strict_recall_objects,
            qwen_f1_objects: m.strict_f1_objects,
            qwen_precision_relations: m.strict_precision_relations,
            qwen_recall_relations: m.strict_recall_relations,
            qwen_f1_relations: m.strict_f1_relations,
            qwen_sgg_score: m.strict_sgg_score,
        }
    }
}

/// The result over a file: per row, the strict metrics and their judged counterparts (same order as the input),
/// and how many disputes were put to the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftEvaluation {
    pub strict: Vec<TripletMetrics>,
    pub soft: Vec<SoftMetrics>,
    pub object_disputes: usize,
    pub relation_disputes: usize,
}

/// Why a soft evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SoftError {
    /// A row cannot be scored at all (see [`EvalError`]); `row` is its index.
    #[error("row {row}: {source}")]
    Eval {
        row: usize,
        #[source]
        source: EvalError,
    },
    /// The judge failed on the object or relation disputes.
    #[error("Failed to judge the {what} disputes: {source}")]
    Judge {
        what: &'static str,
        #[source]
        source: JudgeError,
    },
    /// The judge returned a different number of verdicts than it was asked for.
    #[error("the judge returned {got} verdicts for {asked} {what} disputes")]
    VerdictCount { what: &'static str, asked: usize, got: usize },
}

/// Scores every record with the judge deciding disputed labels and predicates (see the module docs).
pub fn evaluate_soft(
    records: &[EvalRecord],
    cfg: &TripletConfig,
    judge: &dyn Judge,
) -> Result<SoftEvaluation, SoftError> {
    disputes::run(records, cfg, judge)
}

/// Asks the judge and checks that one verdict came back per request.
fn ask(judge: &dyn Judge, requests: &[JudgeRequest], what: &'static str) -> Result<Vec<bool>, SoftError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let verdicts = judge.judge(requests).map_err(|source| SoftError::Judge { what, source })?;
    if verdicts.len() != requests.len() {
        return Err(SoftError::VerdictCount { what, asked: requests.len(), got: verdicts.len() });
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests;
