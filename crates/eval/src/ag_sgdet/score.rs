//! Matching ranked predictions to ground-truth triplets and the per-K figures of one frame.

use super::rank::Candidate;
use super::{AtK, ConstraintResult, KS};
use crate::geometry::iou;
use sgvlm_graph::ag_classical::{AgFrame, AgTriplet};
use sgvlm_graph::vocab::AG_NUM_PREDICATES;

fn safe_div(num: usize, den: usize) -> f64 {
    if den > 0 {
        num as f64 / den as f64
    } else {
        0.0
    }
}

/// `2PR / (P + R)`, 0 when `P + R = 0` (the reference's operation order).
pub(crate) fn f1(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// GT class counts per predicate.
pub(crate) fn gt_class_counts(gt: &[AgTriplet]) -> [usize; AG_NUM_PREDICATES] {
    let mut counts = [0; AG_NUM_PREDICATES];
    for t in gt {
        counts[t.pred] += 1;
    }
    counts
}

/// For each ranked prediction, the GT triplets it matches (ascending): same (subject class, predicate, object
/// class) and IoU ≥ θ for both boxes.
fn pred_to_gt(g: &AgFrame, gt: &[AgTriplet], p: &AgFrame, ranked: &[Candidate], iou_thr: f64) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); ranked.len()];
    // Every position in `gt` and `ranked` indexes its own frame's objects (AgFrame::position, or 0 on a non-empty
    // frame), so the `get`s below only guard against misuse.
    for (gi, t) in gt.iter().enumerate() {
        let (Some(gs), Some(go)) = (g.objects.get(t.subj), g.objects.get(t.obj)) else {
            continue;
        };
        for (i, c) in ranked.iter().enumerate() {
            let (Some(ps), Some(po)) = (p.objects.get(c.subj), p.objects.get(c.obj)) else {
                continue;
            };
            if c.pred == t.pred
                && ps.class_idx == gs.class_idx
                && po.class_idx == go.class_idx
                && iou(gs.bbox, ps.bbox) >= iou_thr
                && iou(go.bbox, po.bbox) >= iou_thr
            {
                out[i].push(gi);
            }
        }
    }
    out
}

/// The figures for K = 10, 20, 50, 100 of one ranked list.
pub(crate) fn score(
    g: &AgFrame,
    gt: &[AgTriplet],
    p: &AgFrame,
    ranked: &[Candidate],
    iou_thr: f64,
) -> ConstraintResult {
    let matches = pred_to_gt(g, gt, p, ranked, iou_thr);
    let n_gt = gt.len();
    let at = KS.map(|k| {
        let top = &matches[..k.min(matches.len())];
        // OED recall: GT triplets covered by any of the top K.
        let mut covered = vec![false; n_gt];
        // Precision: greedy one-to-one assignment in rank order.
        let mut taken = vec![false; n_gt];
        let mut tp = 0;
        for cands in top {
            for &gi in cands {
                covered[gi] = true;
            }
            if let Some(&gi) = cands.iter().find(|&&gi| !taken[gi]) {
                taken[gi] = true;
                tp += 1;
            }
        }
        let mut per_class_hits = [0; AG_NUM_PREDICATES];
        for (t, _) in gt.iter().zip(&covered).filter(|(_, c)| **c) {
            per_class_hits[t.pred] += 1;
        }
        let hits = covered.iter().filter(|c| **c).count();
        let precision = safe_div(tp, top.len());
        AtK {
            recall: safe_div(hits, n_gt),
            precision,
            f1: f1(precision, safe_div(tp, n_gt)),
            tp,
            pred: top.len(),
            gt: n_gt,
            per_class_hits,
        }
    });
    ConstraintResult { at, per_class_gt_count: gt_class_counts(gt) }
}

/// The figures of a frame with no prediction at all (every count 0 but the GT's).
pub(crate) fn zero(gt: &[AgTriplet]) -> ConstraintResult {
    let at = KS.map(|_| AtK {
        recall: 0.0,
        precision: 0.0,
        f1: 0.0,
        tp: 0,
        pred: 0,
        gt: gt.len(),
        per_class_hits: [0; AG_NUM_PREDICATES],
    });
    ConstraintResult { at, per_class_gt_count: gt_class_counts(gt) }
}
