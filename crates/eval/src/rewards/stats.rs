//! The per-pair statistics every scored reward reads: the Hungarian object assignment, the label/box sums over
//! assigned pairs, and the one-to-one edge matching — computed once per (completion, solution) pair.
//!
//! Reference quirks kept on purpose (they change values, see the `paper` protocol):
//! - pairs are looked up **by id** after the assignment, so with duplicate ids the last row of that id is used;
//! - two non-canonical names (category key `""` on both sides) count as the same label for `good_obj`;
//! - relations whose GT labels are not canonical stay in `n_gt` although they can never be matched.

use super::RewardConfig;
use crate::assign;
use crate::geometry::{giou_boxes, iou, l1_normalised, GeoBox};
use crate::Protocol;
use sgvlm_graph::lenient::LenientGraph;
use sgvlm_graph::{label, pytext, Schema};

/// A category key stored without allocating in the common case: a byte range of the label it was computed from
/// (the label is already stripped and lowercase, or the key is `""`), or an owned lowercased copy.
#[derive(Debug, Clone)]
enum Key {
    Range(u32, u32),
    Owned(Box<str>),
}

impl Key {
    /// [`label::category_key`] of `s`, borrowing where it can.
    fn of(schema: Schema, s: &str) -> Key {
        let t = pytext::strip(s);
        if !label::is_canonical(schema, t) {
            return Key::Range(0, 0);
        }
        if t.bytes().any(|b| b.is_ascii_uppercase()) {
            return Key::Owned(t.to_ascii_lowercase().into_boxed_str());
        }
        let start = s.len() - pytext::lstrip(s).len();
        match (u32::try_from(start), u32::try_from(start + t.len())) {
            (Ok(a), Ok(b)) => Key::Range(a, b),
            _ => Key::Owned(t.into()),
        }
    }

    /// The key and its [`key_hash`]. The usual label (canonical, lowercase, so nothing to strip or lowercase) is
    /// its own key, hashed in the same pass that looks for capitals; anything else takes [`Key::of`].
    fn with_hash(schema: Schema, s: &str) -> (Key, u64) {
        let b = s.as_bytes();
        if let (false, Ok(len)) = (b.is_empty(), u32::try_from(b.len())) {
            let (mut h, mut upper) = (FNV_OFFSET, false);
            for &c in b {
                upper |= c.is_ascii_uppercase();
                h = (h ^ c as u64).wrapping_mul(FNV_PRIME);
            }
            if !upper && label::is_canonical(schema, s) {
                return (Key::Range(0, len), h | 1);
            }
        }
        let k = Key::of(schema, s);
        let h = key_hash(k.get(s));
        (k, h)
    }

    /// The key text, given the label it was computed from.
    #[inline]
    fn get<'a>(&'a self, source: &'a str) -> &'a str {
        match self {
            Key::Range(a, b) => source.get(*a as usize..*b as usize).unwrap_or(""),
            Key::Owned(k) => k,
        }
    }
}

/// A 64-bit FNV-1a hash of a category key, 0 for the empty key and never 0 otherwise: comparing two hashes
/// decides almost every key comparison without touching the strings (equal hashes still compare the strings).
#[inline]
fn key_hash(k: &str) -> u64 {
    if k.is_empty() {
        return 0;
    }
    let mut h = FNV_OFFSET;
    for &b in k.as_bytes() {
        h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
    }
    h | 1
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A GT relation an edge can match: relation index, subject and object rows (the last row of each id).
#[derive(Debug, Clone, Copy)]
struct Usable {
    rel: usize,
    subj: usize,
    obj: usize,
}

/// A lenient parse with what the reward math looks up repeatedly computed once: category keys of names and
/// predicates (and their hashes), the last object index of each id, and the relations an edge can match.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub graph: LenientGraph,
    /// Category key (`""` if not canonical) of each object's name.
    name_keys: Vec<Key>,
    /// Category key of each relation's predicate.
    pred_keys: Vec<Key>,
    /// [`key_hash`] of each name key.
    name_hash: Vec<u64>,
    /// [`key_hash`] of each predicate key.
    pred_hash: Vec<u64>,
    /// `(id, index of the last object with that id)`, sorted by id.
    last_of_id: Vec<(i64, usize)>,
    /// Relations with a canonical predicate and both endpoints present with canonical names.
    usable: Vec<Usable>,
}

impl Prepared {
    pub fn new(graph: LenientGraph, schema: Schema) -> Self {
        let mut p = Prepared::without_usable(graph, schema);
        p.usable = (0..p.graph.relations.len())
            .filter_map(|rel| {
                let r = &p.graph.relations[rel];
                let (subj, obj) = (p.index_of(r.subj)?, p.index_of(r.obj)?);
                let ok = p.pred_hash[rel] != 0 && p.name_hash[subj] != 0 && p.name_hash[obj] != 0;
                ok.then_some(Usable { rel, subj, obj })
            })
            .collect();
        p
    }

    /// A completion's side: everything but the matchable relations, which only the solution's side is asked for
    /// ([`matchable_gt_relations`] and the edge matching read the ground truth's).
    pub(crate) fn for_completion(graph: LenientGraph, schema: Schema) -> Self {
        Prepared::without_usable(graph, schema)
    }

    fn without_usable(graph: LenientGraph, schema: Schema) -> Self {
        let (name_keys, name_hash) = keys_and_hashes(schema, graph.objects.iter().map(|o| o.name.as_str()));
        let (pred_keys, pred_hash) = keys_and_hashes(schema, graph.relations.iter().map(|r| r.pred.as_str()));
        let mut last_of_id: Vec<(i64, usize)> = graph.objects.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
        // Stable sort keeps row order within an id; the last entry of each run is the last row.
        last_of_id.sort_by_key(|&(id, _)| id);
        last_of_id.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 = later.1;
                true
            } else {
                false
            }
        });
        Prepared { graph, name_keys, pred_keys, name_hash, pred_hash, last_of_id, usable: Vec::new() }
    }

    /// Whether objects `i` (here) and `j` (of `other`) have the same non-empty category key (the reward's `sem`).
    #[inline]
    fn same_name(&self, i: usize, other: &Prepared, j: usize) -> bool {
        let h = self.name_hash[i];
        h != 0 && h == other.name_hash[j] && self.name_key(i) == other.name_key(j)
    }

    /// Category key of object `i`'s name.
    #[inline]
    pub fn name_key(&self, i: usize) -> &str {
        self.name_keys[i].get(&self.graph.objects[i].name)
    }

    /// Category key of relation `i`'s predicate.
    #[inline]
    pub fn pred_key(&self, i: usize) -> &str {
        self.pred_keys[i].get(&self.graph.relations[i].pred)
    }

    /// Index of the last object with this id.
    fn index_of(&self, id: i64) -> Option<usize> {
        self.last_of_id.binary_search_by_key(&id, |&(i, _)| i).ok().map(|k| self.last_of_id[k].1)
    }
}

/// [`Key::with_hash`] of each label, into two vectors allocated once (`unzip` grows them step by step).
fn keys_and_hashes<'a>(schema: Schema, labels: impl ExactSizeIterator<Item = &'a str>) -> (Vec<Key>, Vec<u64>) {
    let (mut keys, mut hashes) = (Vec::with_capacity(labels.len()), Vec::with_capacity(labels.len()));
    for l in labels {
        let (k, h) = Key::with_hash(schema, l);
        keys.push(k);
        hashes.push(h);
    }
    (keys, hashes)
}

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

/// Object assignment: `(gt index, pred index)` pairs minimising `sem_w(1−sem) + iou_w(1−GIoU) + l1_w·L1n`, rows =
/// predictions, columns = GT, SciPy tie-breaking.
pub fn assign_objects(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig) -> Vec<(usize, usize)> {
    let mut s = Scratch::default();
    assign_objects_in(gt, pred, cfg, &mut s);
    s.pairs
}

/// Buffers of one pair's statistics, kept from case to case per thread (cleared before each use).
#[derive(Default)]
struct Scratch {
    cost: Vec<f64>,
    gt_boxes: Vec<GeoBox>,
    pairs: Vec<(usize, usize)>,
    candidates: assign::FlatCandidates,
    here: Vec<(usize, f64)>,
    matching: assign::MatchingScratch,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// [`assign_objects`] into `s.pairs`.
fn assign_objects_in(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig, s: &mut Scratch) {
    s.pairs.clear();
    let (g, p) = (&gt.graph.objects, &pred.graph.objects);
    if g.is_empty() || p.is_empty() {
        return;
    }
    let (w, h) = (cfg.gate.canvas.width, cfg.gate.canvas.height);
    s.cost.clear();
    // The GT boxes' per-box GIoU work once, not once per pair.
    s.gt_boxes.clear();
    s.gt_boxes.extend(g.iter().map(|o| GeoBox::new(o.bbox)));
    for (pi, po) in p.iter().enumerate() {
        // `same_name` with the row's side read once.
        let (ph, pk) = (pred.name_hash[pi], pred.name_key(pi));
        let pb = GeoBox::new(po.bbox);
        for (gi, gb) in s.gt_boxes.iter().enumerate() {
            let same = if ph != 0 && ph == gt.name_hash[gi] && gt.name_key(gi) == pk { 1.0 } else { 0.0 };
            s.cost.push(
                cfg.sem_weight * (1.0 - same)
                    + cfg.iou_weight * (1.0 - giou_boxes(&pb, gb))
                    + cfg.box_l1_weight * l1_normalised(po.bbox, gb.b, w, h),
            );
        }
    }
    match assign::linear_sum_assignment_into(&s.cost, p.len(), g.len(), &mut s.pairs) {
        Ok(()) => s.pairs.iter_mut().for_each(|pair| *pair = (pair.1, pair.0)),
        // Costs are finite for finite boxes; a failure leaves no pairs (the reference's reward would yield 0).
        Err(_) => s.pairs.clear(),
    }
}

/// Number of GT relations an edge can match at all (canonical predicate, both endpoints present with canonical
/// names): the `sound` protocol's `n_gt`.
pub fn matchable_gt_relations(gt: &Prepared) -> usize {
    gt.usable.len()
}

/// One-to-one edge matching: candidates share `(pred, subj category, obj category)` and have IoU ≥ threshold on
/// both endpoints, tried in descending `IoU_s + IoU_o` order; Kuhn's augmenting paths over predictions in order.
pub fn match_edges(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig) -> usize {
    match_edges_in(gt, pred, cfg, &mut Scratch::default())
}

fn match_edges_in(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig, s: &mut Scratch) -> usize {
    if gt.usable.is_empty() || pred.graph.relations.is_empty() {
        return 0;
    }
    let Scratch { candidates, here, matching, .. } = s;
    candidates.clear();
    for k in 0..pred.graph.relations.len() {
        edge_candidates(gt, pred, cfg, k, here);
        candidates.push(here.iter().map(|&(j, _)| j));
    }
    matching.max_matching_size(candidates, gt.graph.relations.len())
}

/// The GT relations predicted relation `k` may match, best first, into `here`: same `(pred, subj category, obj
/// category)` and IoU ≥ `edge_iou_thresh` on both endpoints, in descending `IoU_s + IoU_o` order.
fn edge_candidates(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig, k: usize, here: &mut Vec<(usize, f64)>) {
    here.clear();
    let r = &pred.graph.relations[k];
    if let (Some(s), Some(o)) = (pred.index_of(r.subj), pred.index_of(r.obj)) {
        let (ph, sh, oh) = (pred.pred_hash[k], pred.name_hash[s], pred.name_hash[o]);
        let (sb, ob) = (pred.graph.objects[s].bbox, pred.graph.objects[o].bbox);
        if ph != 0 && sh != 0 && oh != 0 {
            for u in &gt.usable {
                if gt.pred_hash[u.rel] == ph
                    && gt.name_hash[u.subj] == sh
                    && gt.name_hash[u.obj] == oh
                    && gt.pred_key(u.rel) == pred.pred_key(k)
                    && gt.name_key(u.subj) == pred.name_key(s)
                    && gt.name_key(u.obj) == pred.name_key(o)
                {
                    let (gsb, gob) = (gt.graph.objects[u.subj].bbox, gt.graph.objects[u.obj].bbox);
                    let (is, io) = (iou(gsb, sb), iou(gob, ob));
                    if is >= cfg.edge_iou_thresh && io >= cfg.edge_iou_thresh {
                        here.push((u.rel, is + io));
                    }
                }
            }
        }
    }
    // Stable descending sort, as Python's `sort(reverse=True)`.
    here.sort_by(|a, b| b.1.total_cmp(&a.1));
}

/// Which rows of a completion the rewards count as right, in the parse's order (`objects[i]` for
/// `pred.graph.objects[i]`, `relations[k]` likewise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowVerdicts {
    /// The object rows [`PairStats::good_objects`] counts: assigned to a GT object with an equal category key and
    /// IoU ≥ `obj_iou_thresh`.
    pub objects: Vec<bool>,
    /// The relation rows the one-to-one edge matching takes ([`PairStats::edges_matched`] counts them).
    pub relations: Vec<bool>,
}

/// [`RowVerdicts`] of a completion against its solution: the per-row form of `good_objects` and `edges_matched`
/// (with unique object ids, the numbers of `true` rows equal them).
pub fn row_verdicts(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig) -> RowVerdicts {
    let mut v = RowVerdicts {
        objects: vec![false; pred.graph.objects.len()],
        relations: vec![false; pred.graph.relations.len()],
    };
    for (gi, pi) in assign_objects(gt, pred, cfg) {
        if let Some((g, p)) = by_id(gt, gi, pred, pi) {
            if good_pair(gt, g, pred, p, cfg).2 {
                v.objects[p] = true;
            }
        }
    }
    if !gt.usable.is_empty() {
        let mut here = Vec::new();
        let candidates: Vec<Vec<usize>> = (0..pred.graph.relations.len())
            .map(|k| {
                edge_candidates(gt, pred, cfg, k, &mut here);
                here.iter().map(|&(j, _)| j).collect()
            })
            .collect();
        for owner in assign::max_matching(&candidates, gt.graph.relations.len()).into_iter().flatten() {
            v.relations[owner] = true;
        }
    }
    v
}

/// An assigned pair looked up by id, as the reference does: the last row with each side's id.
fn by_id(gt: &Prepared, gi: usize, pred: &Prepared, pi: usize) -> Option<(usize, usize)> {
    Some((gt.index_of(gt.graph.objects[gi].id)?, pred.index_of(pred.graph.objects[pi].id)?))
}

/// For GT object `g` and predicted object `p`: whether their names share a category key (`sem`), their IoU, and
/// whether the pair is good (equal keys, two empty ones included as the reference's `good_obj` compares the keys
/// directly, and IoU ≥ `obj_iou_thresh`).
fn good_pair(gt: &Prepared, g: usize, pred: &Prepared, p: usize, cfg: &RewardConfig) -> (bool, f64, bool) {
    let same = gt.same_name(g, pred, p);
    let i = iou(gt.graph.objects[g].bbox, pred.graph.objects[p].bbox);
    let equal_keys = same || (gt.name_hash[g] == 0 && pred.name_hash[p] == 0);
    (same, i, equal_keys && i >= cfg.obj_iou_thresh)
}

/// All statistics for one (solution, completion) pair.
pub fn pair_stats(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig) -> PairStats {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => pair_stats_in(gt, pred, cfg, &mut s),
        // Only reachable through re-entrancy, which nothing here does.
        Err(_) => pair_stats_in(gt, pred, cfg, &mut Scratch::default()),
    })
}

fn pair_stats_in(gt: &Prepared, pred: &Prepared, cfg: &RewardConfig, s: &mut Scratch) -> PairStats {
    assign_objects_in(gt, pred, cfg, s);
    let assigned = std::mem::take(&mut s.pairs);
    let (w, h) = (cfg.gate.canvas.width, cfg.gate.canvas.height);
    let denom = (cfg.iou_weight + cfg.box_l1_weight).max(1e-9);
    let mut st = PairStats {
        n_gt_objects: gt.graph.objects.len(),
        n_pred_objects: pred.graph.objects.len(),
        pairs: assigned.len(),
        n_gt_relations: gt.graph.relations.len(),
        n_pred_relations: pred.graph.relations.len(),
        ..PairStats::default()
    };
    for &(gi, pi) in &assigned {
        let Some((g, p)) = by_id(gt, gi, pred, pi) else {
            continue;
        };
        let (go, po) = (&gt.graph.objects[g], &pred.graph.objects[p]);
        let (same, i, good) = good_pair(gt, g, pred, p, cfg);
        st.node_sem_sum += if same { 1.0 } else { 0.0 } * cfg.node_reward_weight;
        let blend = (cfg.iou_weight * i + cfg.box_l1_weight * (-l1_normalised(go.bbox, po.bbox, w, h)).exp()) / denom;
        st.node_box_sum += blend * cfg.node_reward_weight;
        st.good_objects += usize::from(good);
    }
    s.pairs = assigned;
    st.edges_matched = match_edges_in(gt, pred, cfg, s);
    if cfg.protocol == Protocol::Sound {
        // §9 item 15: a GT relation no prediction can ever match is not a relation the model missed.
        st.n_gt_relations = gt.usable.len();
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The borrowed key equals the reference's `_category_key` ([`label::category_key`]) on any label.
        #[test]
        fn key_equals_category_key(s in "[ \t\u{a0}aZz09_./-]{0,12}|[a-z-]{1,8}|[ A-Za-z\u{e9}\u{3000}-]{0,8}") {
            for schema in [Schema::Triplet, Schema::Ag] {
                let key = Key::of(schema, &s);
                prop_assert_eq!(key.get(&s), label::category_key(schema, &s));
                let (key, hash) = Key::with_hash(schema, &s);
                prop_assert_eq!(key.get(&s), label::category_key(schema, &s));
                prop_assert_eq!(hash, key_hash(&label::category_key(schema, &s)));
            }
        }
    }
}
