//! Object and relation matching of one parsed (ground truth, prediction) pair.

use super::iou::py_iou;
use super::{EvalError, RowStatus, TripletConfig, TripletMetrics};
use crate::assign::{linear_sum_assignment, matching_size, max_matching};
use crate::protocol::Protocol;
use crate::pynum::np_mean;
use sgvlm_graph::eval_parse::EvalGraph;

/// `(P, R, F1)` from counts, as the reference's `_precision_recall_f1`.
pub(crate) fn precision_recall_f1(tp: usize, n_pred: usize, n_gt: usize) -> (f64, f64, f64) {
    let p = if n_pred > 0 { tp as f64 / n_pred as f64 } else { 0.0 };
    let r = if n_gt > 0 { tp as f64 / n_gt as f64 } else { 0.0 };
    // P + R > 0 implies TP > 0, hence both are positive.
    let f1 = if p + r > 0.0 { 2.0 / (1.0 / p + 1.0 / r) } else { 0.0 };
    (p, r, f1)
}

/// An assigned object pair with IoU ≥ θ.
struct Match {
    gt: usize,
    pred: usize,
    iou: f64,
}

/// The object assignment: maximum total IoU (SciPy on `−IoU`), pairs below θ dropped, sorted by GT index.
fn match_objects(g: &EvalGraph, p: &EvalGraph, cfg: &TripletConfig) -> Result<Vec<Match>, EvalError> {
    let (rows, cols) = (g.objects.len(), p.objects.len());
    if rows == 0 || cols == 0 {
        return Ok(Vec::new());
    }
    let mut iou = Vec::with_capacity(rows * cols);
    for go in &g.objects {
        for po in &p.objects {
            let v = py_iou(go.bbox, po.bbox);
            iou.push(if v.is_nan() && cfg.protocol == Protocol::Sound { 0.0 } else { v });
        }
    }
    let cost: Vec<f64> = iou.iter().map(|v| -v).collect();
    let pairs = linear_sum_assignment(&cost, rows, cols).map_err(|_| EvalError::InvalidIou)?;
    Ok(pairs
        .into_iter()
        .map(|(gi, pj)| Match { gt: gi, pred: pj, iou: iou[gi * cols + pj] })
        .filter(|m| m.iou >= cfg.iou_thr)
        .collect())
}

/// Scores a valid prediction against a parsed ground truth (possibly empty).
pub(super) fn score(g: &EvalGraph, p: &EvalGraph, cfg: &TripletConfig) -> Result<TripletMetrics, EvalError> {
    let matches = match_objects(g, p, cfg)?;
    let ious: Vec<f64> = matches.iter().map(|m| m.iou).collect();
    let mean_iou = np_mean(&ious).unwrap_or(0.0);
    let name_ok = |m: &Match| g.objects[m.gt].name == p.objects[m.pred].name;
    let tp_obj = matches.iter().filter(|m| name_ok(m)).count();
    let (n_gt, n_pred) = (g.objects.len(), p.objects.len());
    let (p_obj, r_obj, f1_obj) = precision_recall_f1(tp_obj, n_pred, n_gt);

    // Predicted object id -> GT object id; a later match wins for a repeated predicted id (a Python dict).
    // The sound protocol keeps only label-agreeing matches.
    let mut id_map: Vec<(u64, u64)> = Vec::with_capacity(matches.len());
    for m in &matches {
        if cfg.protocol == Protocol::Sound && !name_ok(m) {
            continue;
        }
        let (pid, gid) = (p.objects[m.pred].id, g.objects[m.gt].id);
        match id_map.iter_mut().find(|(k, _)| *k == pid) {
            Some(slot) => slot.1 = gid,
            None => id_map.push((pid, gid)),
        }
    }
    id_map.sort_unstable();
    let mapped = |id: u64| id_map.binary_search_by_key(&id, |&(k, _)| k).ok().map(|i| id_map[i].1);

    let (n_gt_rel, n_pred_rel) = (g.relations.len(), p.relations.len());
    let pred_ends: Vec<Option<(u64, u64)>> =
        p.relations.iter().map(|r| Some((mapped(r.subj)?, mapped(r.obj)?))).collect();
    // Hits: candidates (endpoints mapped onto the GT relation's endpoints) with equal predicates. TP is the size
    // of a maximum one-to-one assignment of hits, which is what the reference's 0/1-cost assignment maximises.
    let hits: Vec<Vec<usize>> = g
        .relations
        .iter()
        .map(|gr| {
            (0..n_pred_rel)
                .filter(|&j| pred_ends[j] == Some((gr.subj, gr.obj)) && p.relations[j].pred == gr.pred)
                .collect()
        })
        .collect();
    let tp_rel = matching_size(&max_matching(&hits, n_pred_rel));
    let (p_rel, r_rel, f1_rel) = if cfg.protocol == Protocol::Sound && n_gt_rel == 0 && n_pred_rel == 0 {
        (1.0, 1.0, 1.0)
    } else {
        precision_recall_f1(tp_rel, n_pred_rel, n_gt_rel)
    };

    Ok(TripletMetrics {
        status: RowStatus::Scored,
        toon_valid: true,
        bbox_mean_iou_matched: mean_iou,
        strict_precision_objects: p_obj,
        strict_recall_objects: r_obj,
        strict_f1_objects: f1_obj,
        strict_precision_relations: p_rel,
        strict_recall_relations: r_rel,
        strict_f1_relations: f1_rel,
        strict_sgg_score: (f1_obj + f1_rel) / 2.0,
        num_objects_gt: Some(n_gt),
        num_objects_pred: Some(n_pred),
        num_objects_matched: Some(matches.len()),
        tp_objects: Some(tp_obj),
        num_relations_gt: Some(n_gt_rel),
        num_relations_pred: Some(n_pred_rel),
        tp_relations: Some(tp_rel),
    })
}
