//! Object and relation matching of one parsed (ground truth, prediction) pair, in three steps that the strict
//! score and the judged ([`crate::soft_eval`]) score share: [`match_objects`] (the IoU assignment),
//! [`relation_candidates`] (prediction relations whose endpoints map onto a GT relation's endpoints) and
//! [`tally`] (counts and P/R/F1 once each object pair and each candidate is decided).
//!
//! The strict score itself ([`score_in`]) makes the same decisions in reusable buffers ([`Scratch`]): it is the
//! per-row work of a whole-file evaluation, where a dozen small vectors per row cost more than the matching.
//! Its figures equal [`score_matched`] on [`match_objects`] (a test checks both on the oracle rows).
//!
//! Every function reads graphs through [`View`], so the owned [`EvalGraph`] and the flat, buffer-reusing
//! [`FlatGraph`] share one implementation.

use super::iou::py_iou;
use super::{EvalError, RowStatus, TripletConfig, TripletMetrics};
use crate::assign::{linear_sum_assignment_into, matching_size, max_matching};
use crate::protocol::Protocol;
use crate::pynum::np_mean;
use sgvlm_graph::eval_parse::{EvalGraph, FlatGraph};

/// Read access to a parsed evaluation graph (owned or flat).
pub(crate) trait View {
    fn n_objects(&self) -> usize;
    fn object_id(&self, i: usize) -> u64;
    /// The normalised name of object `i` (UTF-8 bytes: only compared).
    fn object_name(&self, i: usize) -> &[u8];
    fn object_box(&self, i: usize) -> [f64; 4];
    fn n_relations(&self) -> usize;
    /// `(subject id, predicate bytes, object id)` of relation `i`.
    fn relation(&self, i: usize) -> (u64, &[u8], u64);
}

impl View for EvalGraph {
    fn n_objects(&self) -> usize {
        self.objects.len()
    }
    fn object_id(&self, i: usize) -> u64 {
        self.objects[i].id
    }
    fn object_name(&self, i: usize) -> &[u8] {
        self.objects[i].name.as_bytes()
    }
    fn object_box(&self, i: usize) -> [f64; 4] {
        self.objects[i].bbox
    }
    fn n_relations(&self) -> usize {
        self.relations.len()
    }
    fn relation(&self, i: usize) -> (u64, &[u8], u64) {
        let r = &self.relations[i];
        (r.subj, r.pred.as_bytes(), r.obj)
    }
}

impl View for FlatGraph {
    fn n_objects(&self) -> usize {
        self.objects().len()
    }
    fn object_id(&self, i: usize) -> u64 {
        self.objects()[i].id
    }
    fn object_name(&self, i: usize) -> &[u8] {
        self.name_bytes(i)
    }
    fn object_box(&self, i: usize) -> [f64; 4] {
        self.objects()[i].bbox
    }
    fn n_relations(&self) -> usize {
        self.relations().len()
    }
    fn relation(&self, i: usize) -> (u64, &[u8], u64) {
        let r = &self.relations()[i];
        (r.subj, self.pred_bytes(i), r.obj)
    }
}

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
pub(crate) fn match_objects<G: View>(g: &G, p: &G, cfg: &TripletConfig) -> Result<Vec<Match>, EvalError> {
    let mut s = Scratch::default();
    match_objects_in(g, p, cfg, &mut s)?;
    Ok(s.matches)
}

/// [`match_objects`] into `s.matches` (using `s.iou`, `s.cost`, `s.pairs`).
fn match_objects_in<G: View>(g: &G, p: &G, cfg: &TripletConfig, s: &mut Scratch) -> Result<(), EvalError> {
    s.matches.clear();
    let (rows, cols) = (g.n_objects(), p.n_objects());
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    s.iou.clear();
    s.cost.clear();
    let nan_is_zero = cfg.protocol == Protocol::Sound;
    // Whole rows through `extend` (one capacity check per row, not two per entry); the costs in a second pass.
    for gi in 0..rows {
        let gb = g.object_box(gi);
        s.iou.extend((0..cols).map(|pj| {
            let v = py_iou(gb, p.object_box(pj));
            if v.is_nan() && nan_is_zero {
                0.0
            } else {
                v
            }
        }));
    }
    s.cost.extend(s.iou.iter().map(|v| -v));
    linear_sum_assignment_into(&s.cost, rows, cols, &mut s.pairs).map_err(|_| EvalError::InvalidIou)?;
    let iou = &s.iou;
    s.matches.extend(
        s.pairs
            .iter()
            .map(|&(gi, pj)| Match { gt: gi, pred: pj, iou: iou[gi * cols + pj] })
            .filter(|m| m.iou >= cfg.iou_thr),
    );
    Ok(())
}

/// Whether the names of a matched pair are equal (the strict object decision).
pub(crate) fn names_equal<G: View>(g: &G, p: &G, m: &Match) -> bool {
    g.object_name(m.gt) == p.object_name(m.pred)
}

/// Relation candidates in (GT relation, predicted relation) order. `endpoint[k]` says whether match `k` may map
/// a predicted id onto a GT id (the paper protocol passes all `true`; the sound one only label-agreeing pairs).
/// A later match wins for a repeated predicted id, as in the reference's dict.
pub(crate) fn relation_candidates<G: View>(g: &G, p: &G, matches: &[Match], endpoint: &[bool]) -> Vec<Candidate> {
    let mut s = Scratch::default();
    mapped_pred_ends(g, p, matches, |k| endpoint.get(k).copied().unwrap_or(false), &mut s);
    let mut out = Vec::new();
    for i in 0..g.n_relations() {
        let (gs, _, go) = g.relation(i);
        for (j, ends) in s.pred_ends.iter().enumerate() {
            if *ends == Some((gs, go)) {
                out.push(Candidate { gt: i, pred: j });
            }
        }
    }
    out
}

/// `s.pred_ends[j]`: the GT ids predicted relation `j`'s endpoints map to through the matches `k` with
/// `endpoint(k)` (a later match wins for a repeated predicted id), `None` when an endpoint is unmapped.
fn mapped_pred_ends<G: View>(g: &G, p: &G, matches: &[Match], endpoint: impl Fn(usize) -> bool, s: &mut Scratch) {
    let id_map = &mut s.id_map;
    id_map.clear();
    for (_, m) in matches.iter().enumerate().filter(|&(k, _)| endpoint(k)) {
        let (pid, gid) = (p.object_id(m.pred), g.object_id(m.gt));
        match id_map.iter_mut().find(|(k, _)| *k == pid) {
            Some(slot) => slot.1 = gid,
            None => id_map.push((pid, gid)),
        }
    }
    id_map.sort_unstable();
    let mapped = |id: u64| id_map.binary_search_by_key(&id, |&(k, _)| k).ok().map(|i| id_map[i].1);
    s.pred_ends.clear();
    s.pred_ends.extend((0..p.n_relations()).map(|j| {
        let (ps, _, po) = p.relation(j);
        Some((mapped(ps)?, mapped(po)?))
    }));
}

/// Whether the predicates of a candidate are equal (the strict relation decision).
pub(crate) fn predicates_equal<G: View>(g: &G, p: &G, c: &Candidate) -> bool {
    g.relation(c.gt).1 == p.relation(c.pred).1
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
pub(crate) fn strict_hits<G: View>(g: &G, p: &G, matches: &[Match], protocol: Protocol) -> Vec<Candidate> {
    let obj_ok: Vec<bool> = matches.iter().map(|m| names_equal(g, p, m)).collect();
    relation_candidates(g, p, matches, &endpoints(&obj_ok, protocol))
        .into_iter()
        .filter(|c| predicates_equal(g, p, c))
        .collect()
}

/// Counts once every decision is made: `obj_ok[k]` for match `k`, `hits` the candidates accepted as equivalent.
/// TP for relations is the size of a maximum one-to-one assignment of hits, which is what the reference's 0/1-cost
/// assignment maximises.
pub(crate) fn tally<G: View>(
    g: &G,
    p: &G,
    matches: &[Match],
    obj_ok: &[bool],
    hits: &[Candidate],
    protocol: Protocol,
) -> TripletMetrics {
    let ious: Vec<f64> = matches.iter().map(|m| m.iou).collect();
    let mean_iou = np_mean(&ious).unwrap_or(0.0);
    let tp_obj = obj_ok.iter().filter(|ok| **ok).count();
    let (n_gt_rel, n_pred_rel) = (g.n_relations(), p.n_relations());
    let tp_rel = matching_size(&relation_owner(hits, n_gt_rel, n_pred_rel));
    metrics(g, p, mean_iou, matches.len(), tp_obj, tp_rel, protocol)
}

/// The metrics from the counts of a scored row.
fn metrics<G: View>(
    g: &G,
    p: &G,
    mean_iou: f64,
    n_matched: usize,
    tp_obj: usize,
    tp_rel: usize,
    protocol: Protocol,
) -> TripletMetrics {
    let (n_gt, n_pred) = (g.n_objects(), p.n_objects());
    let (p_obj, r_obj, f1_obj) = precision_recall_f1(tp_obj, n_pred, n_gt);
    let (n_gt_rel, n_pred_rel) = (g.n_relations(), p.n_relations());
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
        num_objects_matched: Some(n_matched),
        tp_objects: Some(tp_obj),
        num_relations_gt: Some(n_gt_rel),
        num_relations_pred: Some(n_pred_rel),
        tp_relations: Some(tp_rel),
    }
}

/// Scores a valid prediction against a parsed ground truth (possibly empty) with strict decisions.
pub(super) fn score<G: View>(g: &G, p: &G, cfg: &TripletConfig) -> Result<TripletMetrics, EvalError> {
    score_in(g, p, cfg, &mut Scratch::default())
}

/// Buffers of one row's strict score, kept from row to row (cleared before each use, never read across rows).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    iou: Vec<f64>,
    cost: Vec<f64>,
    pairs: Vec<(usize, usize)>,
    matches: Vec<Match>,
    obj_ok: Vec<bool>,
    ious: Vec<f64>,
    id_map: Vec<(u64, u64)>,
    pred_ends: Vec<Option<(u64, u64)>>,
    /// `(mapped ends, index)` of the predicted relations whose ends are mapped, sorted.
    by_ends: Vec<((u64, u64), usize)>,
    hits: crate::assign::FlatCandidates,
    matching: crate::assign::MatchingScratch,
}

/// [`score_matched`] on [`match_objects`], in `s`'s buffers: the same decisions (names equal, endpoints mapped
/// through all matches or, in the sound protocol, the label-agreeing ones, predicates equal) and a maximum
/// one-to-one assignment of the hits, whose size does not depend on the order the hits are tried in.
pub(crate) fn score_in<G: View>(
    g: &G,
    p: &G,
    cfg: &TripletConfig,
    s: &mut Scratch,
) -> Result<TripletMetrics, EvalError> {
    match_objects_in(g, p, cfg, s)?;
    s.obj_ok.clear();
    s.obj_ok.extend(s.matches.iter().map(|m| names_equal(g, p, m)));
    s.ious.clear();
    s.ious.extend(s.matches.iter().map(|m| m.iou));
    let mean_iou = np_mean(&s.ious).unwrap_or(0.0);
    let tp_obj = s.obj_ok.iter().filter(|ok| **ok).count();
    let obj_ok = std::mem::take(&mut s.obj_ok);
    let matches = std::mem::take(&mut s.matches);
    let sound = cfg.protocol == Protocol::Sound;
    mapped_pred_ends(g, p, &matches, |k| !sound || obj_ok[k], s);
    s.obj_ok = obj_ok;
    s.matches = matches;
    // The mapped predicted relations sorted by (ends, index): each GT relation's candidates are one run, found by
    // binary search and walked in index order, instead of a scan of every predicted relation per GT relation
    // (whose compare-and-branch per pair was half of this function's time).
    s.by_ends.clear();
    s.by_ends.extend(s.pred_ends.iter().enumerate().filter_map(|(j, ends)| ends.map(|e| (e, j))));
    s.by_ends.sort_unstable();
    s.hits.clear();
    for i in 0..g.n_relations() {
        let (gs, gp, go) = g.relation(i);
        let from = s.by_ends.partition_point(|&(e, _)| e < (gs, go));
        let run = s.by_ends[from..].iter().take_while(|&&(e, _)| e == (gs, go));
        s.hits.push(run.map(|&(_, j)| j).filter(|&j| p.relation(j).1 == gp));
    }
    let tp_rel = s.matching.max_matching_size(&s.hits, p.n_relations());
    Ok(metrics(g, p, mean_iou, s.matches.len(), tp_obj, tp_rel, cfg.protocol))
}

/// The strict decisions over an object assignment: equal names, equal predicates, and (sound protocol) relation
/// endpoints only through label-agreeing pairs.
pub(crate) fn score_matched<G: View>(g: &G, p: &G, matches: &[Match], protocol: Protocol) -> TripletMetrics {
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
