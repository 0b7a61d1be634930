//! The dataset summary of the strict evaluation, with the keys of the reference's metrics JSON (and of
//! `eval_triplet_summary.json`).

use super::{RowStatus, TripletConfig, TripletMetrics};
use crate::protocol::Protocol;
use crate::pynum::{np_mean, TimeStats};
use crate::soft_eval::SoftMetrics;
use serde::Serialize;

/// Macro means over all rows (failed rows count as 0), validity counts and generation-time statistics. With no
/// judge ([`Summary::of`]) the `_Qwen`/`_qwen` keys equal their `_strict` counterparts and `strict_only` is true,
/// as the reference's `--strict-only` writes them; [`Summary::of_soft`] fills them from judged metrics. The sound protocol adds `protocol` and `num_skip_gt` (rows left out for a missing or unparseable ground
/// truth); the paper protocol writes exactly the reference's keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    pub num_samples: usize,
    pub num_valid_toon: usize,
    pub num_invalid_toon: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_skip_gt: Option<usize>,
    pub invalid_rate_pct: f64,
    pub iou_thr: f64,
    pub strict_only: bool,
    pub time_sec: TimeStats,
    #[serde(rename = "Obj_P@50_strict")]
    pub obj_p_strict: f64,
    #[serde(rename = "Obj_P@50_Qwen")]
    pub obj_p_qwen: f64,
    #[serde(rename = "Obj_Recall_strict")]
    pub obj_r_strict: f64,
    #[serde(rename = "Obj_Recall_Qwen")]
    pub obj_r_qwen: f64,
    #[serde(rename = "Obj_F1_strict")]
    pub obj_f1_strict: f64,
    #[serde(rename = "Obj_F1_qwen")]
    pub obj_f1_qwen: f64,
    #[serde(rename = "Rel_P@50_strict")]
    pub rel_p_strict: f64,
    #[serde(rename = "Rel_P@50_Qwen")]
    pub rel_p_qwen: f64,
    #[serde(rename = "Rel_Recall_strict")]
    pub rel_r_strict: f64,
    #[serde(rename = "Rel_Recall_Qwen")]
    pub rel_r_qwen: f64,
    #[serde(rename = "Rel_F1_strict")]
    pub rel_f1_strict: f64,
    #[serde(rename = "Rel_F1_qwen")]
    pub rel_f1_qwen: f64,
    #[serde(rename = "SGG_Score_strict")]
    pub sgg_strict: f64,
    #[serde(rename = "SGG_Score_qwen")]
    pub sgg_qwen: f64,
}

impl Summary {
    /// Summarises per-row strict metrics; `gen_times` are the positive generation times (any order: only the
    /// median sorts them, and the mean follows the rows' order as the reference's does).
    pub fn of(rows: &[TripletMetrics], gen_times: &[f64], cfg: &TripletConfig) -> Summary {
        let soft: Vec<SoftMetrics> = rows.iter().map(SoftMetrics::from_strict).collect();
        Summary { strict_only: true, ..Summary::of_soft(rows, &soft, gen_times, cfg) }
    }

    /// Summarises per-row strict metrics and their judged counterparts (`soft[i]` belongs to `rows[i]`; missing
    /// entries count as 0): `strict_only` is false.
    pub fn of_soft(rows: &[TripletMetrics], soft: &[SoftMetrics], gen_times: &[f64], cfg: &TripletConfig) -> Summary {
        let kept: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].status != RowStatus::SkipGt).collect();
        let n_total = kept.len();
        let n_valid = kept.iter().filter(|&&i| rows[i].toon_valid).count();
        let n_invalid = n_total - n_valid;
        let mean = |f: fn(&TripletMetrics) -> f64| {
            let v: Vec<f64> = kept.iter().map(|&i| f(&rows[i])).collect();
            np_mean(&v).unwrap_or(0.0)
        };
        let zero = SoftMetrics::default();
        let soft_mean = |f: fn(&SoftMetrics) -> f64| {
            let v: Vec<f64> = kept.iter().map(|&i| f(soft.get(i).unwrap_or(&zero))).collect();
            np_mean(&v).unwrap_or(0.0)
        };
        let sound = cfg.protocol == Protocol::Sound;
        Summary {
            protocol: sound.then_some(cfg.protocol.as_str()),
            num_samples: n_total,
            num_valid_toon: n_valid,
            num_invalid_toon: n_invalid,
            num_skip_gt: sound.then_some(rows.len() - n_total),
            invalid_rate_pct: if n_total > 0 { 100.0 * n_invalid as f64 / n_total as f64 } else { 0.0 },
            iou_thr: cfg.iou_thr,
            strict_only: false,
            time_sec: TimeStats::of(gen_times),
            obj_p_strict: mean(|m| m.strict_precision_objects),
            obj_p_qwen: soft_mean(|m| m.qwen_precision_objects),
            obj_r_strict: mean(|m| m.strict_recall_objects),
            obj_r_qwen: soft_mean(|m| m.qwen_recall_objects),
            obj_f1_strict: mean(|m| m.strict_f1_objects),
            obj_f1_qwen: soft_mean(|m| m.qwen_f1_objects),
            rel_p_strict: mean(|m| m.strict_precision_relations),
            rel_p_qwen: soft_mean(|m| m.qwen_precision_relations),
            rel_r_strict: mean(|m| m.strict_recall_relations),
            rel_r_qwen: soft_mean(|m| m.qwen_recall_relations),
            rel_f1_strict: mean(|m| m.strict_f1_relations),
            rel_f1_qwen: soft_mean(|m| m.qwen_f1_relations),
            sgg_strict: mean(|m| m.strict_sgg_score),
            sgg_qwen: soft_mean(|m| m.qwen_sgg_score),
        }
    }
}
