//! The dataset summary of the AG metrics, with the keys (and order) of the reference's output and of
//! `eval_ag_summary.json`; every float rounded to 6 decimals, half to even, as Python's `round`.

use super::score::f1;
use super::{AgConfig, AgRowStatus, AgSample, ConstraintResult, KS};
use crate::protocol::Protocol;
use crate::pynum::{np_mean, py_round};
use serde::ser::{Serialize, SerializeMap, Serializer};
use sgvlm_graph::vocab::AG_NUM_PREDICATES;

/// Aggregates of one constraint setting, per K.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintSummary {
    /// Macro means over scored rows of R@K, P@K and F1@K.
    pub recall: [f64; 4],
    pub precision: [f64; 4],
    pub f1: [f64; 4],
    pub micro_p: [f64; 4],
    pub micro_r: [f64; 4],
    pub micro_f1: [f64; 4],
    pub micro_tp: [usize; 4],
    pub micro_pred: [usize; 4],
    pub micro_gt: [usize; 4],
    pub mean_recall: [f64; 4],
}

/// The summary: counters, then `with_constraint/…` and `no_constraint/…` figures.
#[derive(Debug, Clone, PartialEq)]
pub struct AgSummary {
    pub protocol: Protocol,
    pub iou_thr: f64,
    pub num_samples: usize,
    pub num_valid: usize,
    pub num_skip_gt_parse: usize,
    pub num_skip_pred_parse: usize,
    pub num_skip_no_gt_rels: usize,
    /// Sound protocol: scored rows whose prediction failed (included in `num_valid`).
    pub num_pred_failed: usize,
    pub with_constraint: ConstraintSummary,
    pub no_constraint: ConstraintSummary,
}

fn summarise(results: &[&ConstraintResult], protocol: Protocol) -> ConstraintSummary {
    let mut s = ConstraintSummary {
        recall: [0.0; 4],
        precision: [0.0; 4],
        f1: [0.0; 4],
        micro_p: [0.0; 4],
        micro_r: [0.0; 4],
        micro_f1: [0.0; 4],
        micro_tp: [0; 4],
        micro_pred: [0; 4],
        micro_gt: [0; 4],
        mean_recall: [0.0; 4],
    };
    let macro_mean = |f: &dyn Fn(&ConstraintResult) -> f64| {
        let v: Vec<f64> = results.iter().map(|r| f(r)).collect();
        py_round(np_mean(&v).unwrap_or(0.0), 6)
    };
    let ratio = |n: usize, d: usize| if d > 0 { n as f64 / d as f64 } else { 0.0 };
    for i in 0..KS.len() {
        s.recall[i] = macro_mean(&|r| r.at[i].recall);
        s.precision[i] = macro_mean(&|r| r.at[i].precision);
        s.f1[i] = macro_mean(&|r| r.at[i].f1);
        let (tp, pred, gt) =
            results.iter().fold((0, 0, 0), |(t, p, g), r| (t + r.at[i].tp, p + r.at[i].pred, g + r.at[i].gt));
        let (p, r) = (ratio(tp, pred), ratio(tp, gt));
        (s.micro_tp[i], s.micro_pred[i], s.micro_gt[i]) = (tp, pred, gt);
        (s.micro_p[i], s.micro_r[i], s.micro_f1[i]) = (py_round(p, 6), py_round(r, 6), py_round(f1(p, r), 6));
        let mut hits = [0usize; AG_NUM_PREDICATES];
        let mut counts = [0usize; AG_NUM_PREDICATES];
        for r in results {
            for c in 0..AG_NUM_PREDICATES {
                hits[c] += r.at[i].per_class_hits[c];
                counts[c] += r.per_class_gt_count[c];
            }
        }
        let per_class: Vec<f64> = (0..AG_NUM_PREDICATES)
            .filter(|&c| protocol == Protocol::Paper || counts[c] > 0)
            .map(|c| ratio(hits[c], counts[c]))
            .collect();
        s.mean_recall[i] = py_round(np_mean(&per_class).unwrap_or(0.0), 6);
    }
    s
}

impl AgSummary {
    /// Summarises per-row results.
    pub fn of(rows: &[AgSample], cfg: &AgConfig) -> AgSummary {
        let count = |st: AgRowStatus| rows.iter().filter(|r| r.status == st).count();
        let with: Vec<&ConstraintResult> = rows.iter().filter_map(|r| r.with_constraint.as_ref()).collect();
        let no: Vec<&ConstraintResult> = rows.iter().filter_map(|r| r.no_constraint.as_ref()).collect();
        AgSummary {
            protocol: cfg.protocol,
            iou_thr: cfg.iou_thr,
            num_samples: rows.len(),
            num_valid: rows.iter().filter(|r| r.status.is_scored()).count(),
            num_skip_gt_parse: count(AgRowStatus::SkipGtParse),
            num_skip_pred_parse: count(AgRowStatus::SkipPredParse),
            num_skip_no_gt_rels: count(AgRowStatus::SkipNoGtRels),
            num_pred_failed: count(AgRowStatus::PredFailed),
            with_constraint: summarise(&with, cfg.protocol),
            no_constraint: summarise(&no, cfg.protocol),
        }
    }
}

impl Serialize for AgSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.protocol == Protocol::Sound {
            m.serialize_entry("protocol", self.protocol.as_str())?;
        }
        m.serialize_entry("mode", "sgdet")?;
        m.serialize_entry("iou_thr", &self.iou_thr)?;
        m.serialize_entry("num_samples", &self.num_samples)?;
        m.serialize_entry("num_valid", &self.num_valid)?;
        m.serialize_entry("num_skip_gt_parse", &self.num_skip_gt_parse)?;
        m.serialize_entry("num_skip_pred_parse", &self.num_skip_pred_parse)?;
        m.serialize_entry("num_skip_no_gt_rels", &self.num_skip_no_gt_rels)?;
        if self.protocol == Protocol::Sound {
            m.serialize_entry("num_pred_failed", &self.num_pred_failed)?;
        }
        for (label, c) in [("with_constraint", &self.with_constraint), ("no_constraint", &self.no_constraint)] {
            for (i, k) in KS.iter().enumerate() {
                m.serialize_entry(&format!("{label}/R@{k}"), &c.recall[i])?;
                m.serialize_entry(&format!("{label}/P@{k}"), &c.precision[i])?;
                m.serialize_entry(&format!("{label}/F1@{k}"), &c.f1[i])?;
            }
            for (i, k) in KS.iter().enumerate() {
                m.serialize_entry(&format!("{label}/micro_P@{k}"), &c.micro_p[i])?;
                m.serialize_entry(&format!("{label}/micro_R@{k}"), &c.micro_r[i])?;
                m.serialize_entry(&format!("{label}/micro_F1@{k}"), &c.micro_f1[i])?;
                m.serialize_entry(&format!("{label}/micro_TP@{k}"), &c.micro_tp[i])?;
                m.serialize_entry(&format!("{label}/micro_pred@{k}"), &c.micro_pred[i])?;
                m.serialize_entry(&format!("{label}/micro_GT@{k}"), &c.micro_gt[i])?;
            }
            for (i, k) in KS.iter().enumerate() {
                m.serialize_entry(&format!("{label}/mR@{k}"), &c.mean_recall[i])?;
            }
        }
        m.end()
    }
}
