//! The per-pair statistics every scored reward reads: the Hungarian object assignment, the label/box sums over
//! assigned pairs, and the one-to-one edge matching — computed once per (completion, solution) pair.
//!
//! Reference quirks kept on purpose (they change values, see the `paper` protocol):
//! - pairs are looked up **by id** after the assignment, so with duplicate ids the last row of that id is used;
//! - two non-canonical names (category key `""` on both sides) count as the same label for `good_obj`;
//! - relations whose GT labels are not canonical stay in `n_gt` although they can never be matched.

use super::RewardConfig;
use crate::assign;
use crate::geometry::{giou, iou, l1_normalised};
use sgvlm_graph::lenient::{LObject, LenientGraph};
use sgvlm_graph::{label, Schema};
use std::collections::HashMap;

/// What the scored rewards need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairStats {
    pub n_gt_objects: usize,
    pub n_pred_objects: usize,
    /// Number of assigned (GT, prediction) object pairs.
    pub pairs: usize,
    /// Assigned pairs with equal category keys and IoU ≥ `obj_iou_thresh`.
    pub good_objects: usize,
    /// Σ `node_weight · sem` over assigned pairs.
    pub node_sem_sum: f64,
    /// Σ `node_weight · (iou_w·IoU + l1_w·exp(−L1n)) / (iou_w + l1_w)` over assigned pairs.
    pub node_box_sum: f64,
    pub edges_matched: usize,
    pub n_gt_relations: usize,
    pub n_pred_relations: usize,
}

/// Last object of each id (the reference's `{o["id"]: o}` dictionaries).
fn by_id(objects: &[LObject]) -> HashMap<i64, &LObject> {
    objects.iter().map(|o| (o.id, o)).collect()
}

fn sem(schema: Schema, a: &str, b: &str) -> f64 {
    let (ka, kb) = (label::category_key(schema, a), label::category_key(schema, b));
    if !ka.is_empty() && ka == kb {
        1.0
    } else {
        0.0
    }
}

/// Object assignment: `(gt index, pred index)` pairs minimising `sem_w(1−sem) + iou_w(1−GIoU) + l1_w·L1n`, rows =
/// predictions, columns = GT, SciPy tie-breaking.
pub fn assign_objects(gt: &[LObject], pred: &[LObject], schema: Schema, cfg: &RewardConfig) -> Vec<(usize, usize)> {
    if gt.is_empty() || pred.is_empty() {
        return Vec::new();
    }
    let (w, h) = (cfg.gate.canvas.width, cfg.gate.canvas.height);
    let gt_keys: Vec<String> = gt.iter().map(|o| label::category_key(schema, &o.name)).collect();
    let mut cost = Vec::with_capacity(gt.len() * pred.len());
    for p in pred {
        let pk = label::category_key(schema, &p.name);
        for (g, gk) in gt.iter().zip(&gt_keys) {
            let s = if !pk.is_empty() && &pk == gk { 1.0 } else { 0.0 };
            cost.push(
                cfg.sem_weight * (1.0 - s)
                    + cfg.iou_weight * (1.0 - giou(p.bbox, g.bbox))
                    + cfg.box_l1_weight * l1_normalised(p.bbox, g.bbox, w, h),
            );
        }
    }
    match assign::linear_sum_assignment(&cost, pred.len(), gt.len()) {
        Ok(pairs) => pairs.into_iter().map(|(p, g)| (g, p)).collect(),
        // Costs are finite for finite boxes; a failure leaves no pairs (the reference's reward would yield 0).
        Err(_) => Vec::new(),
    }
}

/// One-to-one edge matching: candidates share `(pred, subj category, obj category)` and have IoU ≥ threshold on
/// both endpoints, tried in descending `IoU_s + IoU_o` order; Kuhn's augmenting paths over predictions in order.
pub fn match_edges(gt: &LenientGraph, pred: &LenientGraph, schema: Schema, cfg: &RewardConfig) -> usize {
    if gt.relations.is_empty() || pred.relations.is_empty() {
        return 0;
    }
    let (gt_objs, pr_objs) = (by_id(&gt.objects), by_id(&pred.objects));
    let key = |o: &LObject| label::category_key(schema, &o.name);
    let mut index: HashMap<(String, String, String), Vec<(usize, [i64; 4], [i64; 4])>> = HashMap::new();
    for (j, r) in gt.relations.iter().enumerate() {
        let p = label::category_key(schema, &r.pred);
        let (Some(s), Some(o)) = (gt_objs.get(&r.subj), gt_objs.get(&r.obj)) else { continue };
        let (ks, ko) = (key(s), key(o));
        if p.is_empty() || ks.is_empty() || ko.is_empty() {
            continue;
        }
        index.entry((p, ks, ko)).or_default().push((j, s.bbox, o.bbox));
    }
    let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(pred.relations.len());
    for r in &pred.relations {
        let mut here: Vec<(usize, f64)> = Vec::new();
        let p = label::category_key(schema, &r.pred);
        if let (Some(s), Some(o)) = (pr_objs.get(&r.subj), pr_objs.get(&r.obj)) {
            let (ks, ko) = (key(s), key(o));
            if !p.is_empty() && !ks.is_empty() && !ko.is_empty() {
                for &(j, gs, go) in index.get(&(p, ks, ko)).map(Vec::as_slice).unwrap_or(&[]) {
                    let (is, io) = (iou(gs, s.bbox), iou(go, o.bbox));
                    if is >= cfg.edge_iou_thresh && io >= cfg.edge_iou_thresh {
                        here.push((j, is + io));
                    }
                }
            }
        }
        // Stable descending sort, as Python's `sort(reverse=True)`.
        here.sort_by(|a, b| b.1.total_cmp(&a.1));
        candidates.push(here.into_iter().map(|(j, _)| j).collect());
    }
    assign::matching_size(&assign::max_matching(&candidates, gt.relations.len()))
}

/// All statistics for one (solution, completion) pair of lenient parses.
pub fn pair_stats(gt: &LenientGraph, pred: &LenientGraph, schema: Schema, cfg: &RewardConfig) -> PairStats {
    let assigned = assign_objects(&gt.objects, &pred.objects, schema, cfg);
    let (gt_by, pr_by) = (by_id(&gt.objects), by_id(&pred.objects));
    let (w, h) = (cfg.gate.canvas.width, cfg.gate.canvas.height);
    let denom = (cfg.iou_weight + cfg.box_l1_weight).max(1e-9);
    let mut st = PairStats {
        n_gt_objects: gt.objects.len(),
        n_pred_objects: pred.objects.len(),
        pairs: assigned.len(),
        n_gt_relations: gt.relations.len(),
        n_pred_relations: pred.relations.len(),
        ..PairStats::default()
    };
    for (gi, pi) in assigned {
        // Looked up by id, as the reference does: the last row with that id.
        let (Some(g), Some(p)) = (gt_by.get(&gt.objects[gi].id), pr_by.get(&pred.objects[pi].id)) else { continue };
        st.node_sem_sum += sem(schema, &g.name, &p.name) * cfg.node_reward_weight;
        let i = iou(g.bbox, p.bbox);
        let blend = (cfg.iou_weight * i + cfg.box_l1_weight * (-l1_normalised(g.bbox, p.bbox, w, h)).exp()) / denom;
        st.node_box_sum += blend * cfg.node_reward_weight;
        if label::category_key(schema, &g.name) == label::category_key(schema, &p.name) && i >= cfg.obj_iou_thresh {
            st.good_objects += 1;
        }
    }
    st.edges_matched = match_edges(gt, pred, schema, cfg);
    st
}
