//! Object and relation matching of one parsed (ground truth, prediction) pair, in three steps that the strict
//! score and the judged ([`crate::soft_eval`]) score share: [`match_objects`] (the IoU assignment),
//! [`relation_candidates`] (prediction relations whose endpoints map onto a GT relation's endpoints) and
//! [`tally`] (counts and P/R/F1 once each object pair and each candidate is decided).

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

/// An assigned object pair with IoU ≥ θ (indices into the objects lists).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Match {
    pub gt: usize,
    pub pred: usize,
    pub iou: f64,
}

/// A relation candidate: GT relation `gt` and predicted relation `pred` (indices) with mapped endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub gt: usize,
    pub pred: usize,
}

/// The object assignment: maximum total IoU (SciPy on `−IoU`), pairs below θ dropped, sorted by GT index.
pub(crate) fn match_objects(g: &EvalGraph, p: &EvalGraph, cfg: &TripletConfig) -> Result<Vec<Match>, EvalError> {
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

/// Whether the names of a matched pair are equal (the strict object decision).
pub(crate) fn names_equal(g: &EvalGraph, p: &EvalGraph, m: &Match) -> bool {
    g.objects[m.gt].name == p.objects[m.pred].name
}

/// Relation candidates in (GT relation, predicted relation) order. `endpoint[k]` says whether match `k` may map
/// a predicted id onto a GT id (the paper protocol passes all `true`; the sound one only label-agreeing pairs).
/// A later match wins for a repeated predicted id, as in the reference's dict.
pub(crate) fn relation_candidates(
    g: &EvalGraph,
    p: &EvalGraph,
    matches: &[Match],
    endpoint: &[bool],
) -> Vec<Candidate> {
    let mut id_map: Vec<(u64, u64)> = Vec::with_capacity(matches.len());
    for (m, _) in matches.iter().zip(endpoint).filter(|(_, ok)| **ok) {
        let (pid, gid) = (p.objects[m.pred].id, g.objects[m.gt].id);
        match id_map.iter_mut().find(|(k, _)| *k == pid) {
            Some(slot) => slot.1 = gid,
            None => id_map.push((pid, gid)),
        }
    }
    id_map.sort_unstable();
    let mapped = |id: u64| id_map.binary_search_by_key(&id, |&(k, _)| k).ok().map(|i| id_map[i].1);
    let pred_ends: Vec<Option<(u64, u64)>> =
        p.relations.iter().map(|r| Some((mapped(r.subj)?, mapped(r.obj)?))).collect();
    let mut out = Vec::new();
    for (i, gr) in g.relations.iter().enumerate() {
        for (j, ends) in pred_ends.iter().enumerate() {
            if *ends == Some((gr.subj, gr.obj)) {
                out.push(Candidate { gt: i, pred: j });
            }
        }
    }
    out
}

/// Whether the predicates of a candidate are equal (the strict relation decision).
pub(crate) fn predicates_equal(g: &EvalGraph, p: &EvalGraph, c: &Candidate) -> bool {
    g.relations[c.gt].pred == p.relations[c.pred].pred
}

/// A maximum one-to-one assignment of hits: `owner[j]` = the GT relation predicted relation `j` is matched to.
pub(crate) fn relation_owner(hits: &[Candidate], n_gt_rel: usize, n_pred_rel: usize) -> Vec<Option<usize>> {
    let mut per_gt: Vec<Vec<usize>> = vec![Vec::new(); n_gt_rel];
    for c in hits {
        if let Some(v) = per_gt.get_mut(c.gt) {
            v.push(c.pred);
        }
    }
    max_matching(&per_gt, n_pred_rel)
}

/// The strict relation hits of an assignment (what [`score_matched`] counts).
pub(crate) fn strict_hits(g: &EvalGraph, p: &EvalGraph, matches: &[Match], protocol: Protocol) -> Vec<Candidate> {
    let obj_ok: Vec<bool> = matches.iter().map(|m| names_equal(g, p, m)).collect();
    relation_candidates(g, p, matches, &endpoints(&obj_ok, protocol))
        .into_iter()
        .filter(|c| predicates_equal(g, p, c))
        .collect()
}

/// Counts once every decision is made: `obj_ok[k]` for match `k`, `hits` the candidates accepted as equivalent.
/// TP for relations is the size of a maximum one-to-one assignment of hits, which is what the reference's 0/1-cost
/// assignment maximises.
pub(crate) fn tally(
    g: &EvalGraph,
    p: &EvalGraph,
    matches: &[Match],
    obj_ok: &[bool],
    hits: &[Candidate],
    protocol: Protocol,
) -> TripletMetrics {
    let ious: Vec<f64> = matches.iter().map(|m| m.iou).collect();
    let mean_iou = np_mean(&ious).unwrap_or(0.0);
    let tp_obj = obj_ok.iter().filter(|ok| **ok).count();
    let (n_gt, n_pred) = (g.objects.len(), p.objects.len());
    let (p_obj, r_obj, f1_obj) = precision_recall_f1(tp_obj, n_pred, n_gt);
    let (n_gt_rel, n_pred_rel) = (g.relations.len(), p.relations.len());
    let tp_rel = matching_size(&relation_owner(hits, n_gt_rel, n_pred_rel));
    let (p_rel, r_rel, f1_rel) = if protocol == Protocol::Sound && n_gt_rel == 0 && n_pred_rel == 0 {
        (1.0, 1.0, 1.0)
    } else {
        precision_recall_f1(tp_rel, n_pred_rel, n_gt_rel)
    };
    TripletMetrics {
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
    }
}

/// Scores a valid prediction against a parsed ground truth (possibly empty) with strict decisions.
pub(super) fn score(g: &EvalGraph, p: &EvalGraph, cfg: &TripletConfig) -> Result<TripletMetrics, EvalError> {
    let matches = match_objects(g, p, cfg)?;
    Ok(score_matched(g, p, &matches, cfg.protocol))
}

/// The strict decisions over an object assignment: equal names, equal predicates, and (sound protocol) relation
/// endpoints only through label-agreeing pairs.
pub(crate) fn score_matched(g: &EvalGraph, p: &EvalGraph, matches: &[Match], protocol: Protocol) -> TripletMetrics {
    let obj_ok: Vec<bool> = matches.iter().map(|m| names_equal(g, p, m)).collect();
    tally(g, p, matches, &obj_ok, &strict_hits(g, p, matches, protocol), protocol)
}

/// Which matches may map relation endpoints: all of them (paper), or those whose objects agree (sound).
pub(crate) fn endpoints(obj_ok: &[bool], protocol: Protocol) -> Vec<bool> {
    match protocol {
        Protocol::Paper => vec![true; obj_ok.len()],
        Protocol::Sound => obj_ok.to_vec(),
    }
}
