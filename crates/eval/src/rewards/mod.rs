//! The GRPO rewards of the paper (Table 5): eight weighted rewards and five diagnostics, for both schemas, with the
//! values of the reference plugins (`pvsg_psg_toon_reward.py`, `ag_toon_reward.py`).
//!
//! Every scored reward is 0 unless the completion passes the strict gate; the solution is never gated. Solution
//! and completion are then read with the lenient parser from their answer text. Each function already carries its
//! weight, so the training reward is the plain sum of the first eight.
//!
//! | key | value for a valid completion |
//! |---|---|
//! | `sgg_format_reward` | `format_weight` |
//! | `sgg_node_acc_reward` | `Σ node_w·sem / max(n_gt, n_pred)` over assigned pairs (0 without pairs) |
//! | `sgg_node_box_reward` | `Σ node_w·(2·IoU + 5·e^(−L1n))/7 / max(n_gt, n_pred)` |
//! | `sgg_edge_hard_reward` | `edge_w · matched / n_gt` (0 if either side has no relation) |
//! | `sgg_edge_precision_reward` | `prec_w · matched / n_pred` |
//! | `sgg_edge_f1_reward` | `f1_w · 2PR/(P+R)` |
//! | `sgg_obj_hallucination_penalty` | `−w · (n_pred_obj − good_obj) / n_pred_obj` |
//! | `sgg_edge_hallucination_penalty` | `−w · ((n_pred − matched)/n_pred)^power` |
//! | `sgg_diag_frac_no_rel` | 1 if the lenient parse has no relation (not gated) |
//! | `sgg_diag_num_pred_objs` / `_num_pred_rels` | lenient counts (AG: atomic relations) |
//! | `sgg_diag_frac_invalid_rel` | rejected share of non-empty relation lines |
//! | `sgg_diag_has_answer_tags` | 1 if `<answer>…</answer>` occurs |
//!
//! ## Protocols
//!
//! [`RewardConfig::protocol`] (`REWARD_PROTOCOL`) picks `paper` (the default: the reference's values, which the
//! oracle parity tests check) or `sound`, which fixes the reward-side flaws of reference_facts §9:
//!
//! | | `paper` | `sound` |
//! |---|---|---|
//! | completion failing the gate (item 14) | 0 for all eight weighted rewards, so it beats any valid completion whose penalties exceed its format reward (total down to −1.5) | each function's worst valid value and the format reward negated ([`invalid_scores`]): total −2.5 with the default weights, strictly below every valid completion whenever `format_reward_weight > 0` |
//! | GT relations no prediction can match (item 15: a non-canonical endpoint name such as `traffic light`, or a missing endpoint) | counted in `n_gt` (recall, F1 lowered) | left out of `n_gt` ([`matchable_gt_relations`]) |
//! | which text of a valid completion is scored | the first `<answer>…</answer>` of the raw text, which may sit inside a leading `<think>` block | the answer the gate validated (after the think block) |
//!
//! The diagnostics are computed the same way in both, from the scored graph (the gated answer for a valid
//! `sound` completion); their gating does not change.

mod config;
mod stats;

pub use config::{ConfigError, RewardConfig, KEYS as CONFIG_KEYS};
pub use stats::{
    assign_objects, match_edges, matchable_gt_relations, pair_stats, row_verdicts, PairStats, Prepared, RowVerdicts,
};

use crate::Protocol;
use sgvlm_graph::lenient::{LenientGraph, Verdict};
use sgvlm_graph::{answer, lenient, Schema};

/// The 13 reward functions, in the reference's registration order.
pub const REWARD_NAMES: [&str; 13] = [
    "sgg_format_reward",
    "sgg_node_acc_reward",
    "sgg_node_box_reward",
    "sgg_edge_hard_reward",
    "sgg_edge_precision_reward",
    "sgg_edge_f1_reward",
    "sgg_obj_hallucination_penalty",
    "sgg_edge_hallucination_penalty",
    "sgg_diag_frac_no_rel",
    "sgg_diag_num_pred_objs",
    "sgg_diag_num_pred_rels",
    "sgg_diag_frac_invalid_rel",
    "sgg_diag_has_answer_tags",
];

/// Number of weighted rewards (the first eight of [`REWARD_NAMES`]).
pub const WEIGHTED: usize = 8;

/// The 13 values for one completion, in [`REWARD_NAMES`] order.
pub type Scores = [f64; 13];

/// Scores one completion against its solution.
pub fn score(completion: &str, solution: &str, schema: Schema, cfg: &RewardConfig) -> Scores {
    score_with(completion, schema, cfg, || Prepared::new(lenient::parse_solution(solution, schema, &cfg.gate), schema))
}

/// Scores one completion against an already parsed solution (see [`Scorer`] for caching).
pub fn score_prepared(completion: &str, solution: &Prepared, schema: Schema, cfg: &RewardConfig) -> Scores {
    score_with(completion, schema, cfg, || solution)
}

fn score_with<P: std::borrow::Borrow<Prepared>>(
    completion: &str,
    schema: Schema,
    cfg: &RewardConfig,
    solution: impl FnOnce() -> P,
) -> Scores {
    let mut out = [0.0; 13];
    let sound = cfg.protocol == Protocol::Sound;
    let (valid, pred) = scored_graph(completion, schema, cfg);
    out[8] = if pred.relations.is_empty() { 1.0 } else { 0.0 };
    out[9] = pred.objects.len() as f64;
    out[10] = pred.relations.len() as f64;
    out[11] = pred.meta.invalid_fraction();
    out[12] = if answer::has_answer_tags(completion) { 1.0 } else { 0.0 };
    if !valid {
        if sound {
            out[..WEIGHTED].copy_from_slice(&invalid_scores(cfg));
        }
        return out;
    }
    let gt = solution();
    let st = pair_stats(gt.borrow(), &Prepared::for_completion(pred, schema), cfg);
    out[0] = cfg.format_reward_weight;
    let n_obj = st.n_gt_objects.max(st.n_pred_objects).max(1) as f64;
    if st.n_gt_objects > 0 && st.n_pred_objects > 0 && st.pairs > 0 {
        out[1] = st.node_sem_sum / n_obj;
        out[2] = st.node_box_sum / n_obj;
    }
    let (n_gt, n_pr) = (st.n_gt_relations, st.n_pred_relations);
    if n_gt > 0 && n_pr > 0 {
        let m = st.edges_matched as f64;
        let (p, r) = (m / n_pr as f64, m / n_gt as f64);
        out[3] = r * cfg.edge_reward_weight;
        out[4] = p * cfg.edge_precision_reward_weight;
        out[5] = if p + r <= 1e-12 { 0.0 } else { 2.0 * p * r / (p + r) } * cfg.edge_f1_reward_weight;
        let fp = n_pr.saturating_sub(st.edges_matched) as f64 / n_pr as f64;
        out[7] = -cfg.edge_fp_penalty_weight * fp.powf(cfg.edge_fp_penalty_power);
    }
    if st.n_pred_objects > 0 {
        let halluc = st.n_pred_objects.saturating_sub(st.good_objects) as f64 / st.n_pred_objects as f64;
        out[6] = -cfg.obj_halluc_penalty_weight * halluc;
    }
    out
}

/// Whether a completion passes the strict gate, and the graph the rewards read from it.
fn scored_graph(completion: &str, schema: Schema, cfg: &RewardConfig) -> (bool, LenientGraph) {
    let sound = cfg.protocol == Protocol::Sound;
    // Gate and parse in one pass when the gate's parse decides it exactly (most model outputs); otherwise the gate, then
    // the lenient parse of the reference's answer text (`sound`: of the answer the gate validated).
    match lenient::gate(completion, schema, &cfg.gate) {
        Verdict::Gated(g) if sound || g.is_first_answer => (true, g.graph),
        Verdict::Gated(_) => (true, lenient::parse_completion(completion, schema, &cfg.gate)),
        verdict => {
            let valid = verdict == Verdict::Valid;
            let body =
                if sound && valid { answer::exact_answer_body(answer::prepare_for_strict(completion)) } else { None };
            let pred = match body {
                Some(body) => lenient::parse_answer_text(body, schema, &cfg.gate),
                None => lenient::parse_completion(completion, schema, &cfg.gate),
            };
            (valid, pred)
        }
    }
}

/// Which object and relation rows of a completion the rewards count as right ([`RowVerdicts`]), in the order of
/// the graph they score; `None` for a completion that fails the strict gate (none of its rows is scored).
pub fn row_verdicts_of(
    completion: &str,
    solution: &Prepared,
    schema: Schema,
    cfg: &RewardConfig,
) -> Option<RowVerdicts> {
    let (valid, pred) = scored_graph(completion, schema, cfg);
    valid.then(|| row_verdicts(solution, &Prepared::for_completion(pred, schema), cfg))
}

/// The `sound` protocol's weighted rewards for a completion that fails the gate: each function's worst value for
/// a valid completion, and the format reward negated. The total is thus `2 · format_reward_weight` below the worst
/// valid total (−2.5 against −1.5 with the default weights), where the paper's 0 beats every valid completion
/// whose penalties exceed its format reward.
pub fn invalid_scores(cfg: &RewardConfig) -> [f64; WEIGHTED] {
    let worst = |w: f64| w.min(0.0);
    [
        -cfg.format_reward_weight,
        worst(cfg.node_reward_weight),
        worst(cfg.node_reward_weight),
        worst(cfg.edge_reward_weight),
        worst(cfg.edge_precision_reward_weight),
        worst(cfg.edge_f1_reward_weight),
        worst(-cfg.obj_halluc_penalty_weight),
        worst(-cfg.edge_fp_penalty_weight),
    ]
}

/// A scorer that parses each distinct solution once (GRPO scores G completions against the same solution; the
/// reference keeps an LRU cache for the same reason). The cache holds at most `capacity` solutions.
pub struct Scorer {
    pub schema: Schema,
    pub cfg: RewardConfig,
    cache: std::collections::HashMap<String, std::sync::Arc<Prepared>, BuildFx>,
    capacity: usize,
}

/// A word-at-a-time multiplicative hash for the solution cache: keys are whole solutions (hundreds of bytes) and
/// SipHash's cost showed in profiles; HashDoS resistance is not needed for a cache of one's own training data.
#[derive(Default, Clone, Copy)]
struct BuildFx;

#[derive(Default)]
struct Fx(u64);

impl std::hash::BuildHasher for BuildFx {
    type Hasher = Fx;
    fn build_hasher(&self) -> Fx {
        Fx(0)
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Scorer {
    pub fn new(schema: Schema, cfg: RewardConfig) -> Self {
        Scorer { schema, cfg, cache: Default::default(), capacity: 8192 }
    }

    /// The prepared solution, parsed on first use.
    pub fn solution(&mut self, solution: &str) -> std::sync::Arc<Prepared> {
        if let Some(p) = self.cache.get(solution) {
            return p.clone();
        }
        if self.cache.len() >= self.capacity {
            self.cache.clear();
        }
        let p = std::sync::Arc::new(Prepared::new(
            lenient::parse_solution(solution, self.schema, &self.cfg.gate),
            self.schema,
        ));
        self.cache.insert(solution.to_string(), p.clone());
        p
    }

    /// Scores one completion, reusing the cached solution parse.
    pub fn score(&mut self, completion: &str, solution: &str) -> Scores {
        let sol = self.solution(solution);
        score_prepared(completion, &sol, self.schema, &self.cfg)
    }
}

/// The total training reward: the sum of the eight weighted rewards.
pub fn total(s: &Scores) -> f64 {
    s[..WEIGHTED].iter().sum()
}

/// Scores a batch (one row per completion), in parallel; `completions[i]` is scored against `solutions[i]`. Each
/// distinct solution is parsed once.
pub fn score_batch<C: AsRef<str> + Sync, S: AsRef<str> + Sync>(
    completions: &[C],
    solutions: &[S],
    schema: Schema,
    cfg: &RewardConfig,
) -> Vec<Scores> {
    score_batch_with(completions, solutions, schema, cfg, || {})
}

/// [`score_batch`], calling `on_row` once per completion scored (from any thread), e.g. to advance a progress
/// bar.
pub fn score_batch_with<C: AsRef<str> + Sync, S: AsRef<str> + Sync>(
    completions: &[C],
    solutions: &[S],
    schema: Schema,
    cfg: &RewardConfig,
    on_row: impl Fn() + Sync,
) -> Vec<Scores> {
    use rayon::prelude::*;
    let mut distinct: std::collections::HashMap<&str, usize, BuildFx> = Default::default();
    let idx: Vec<usize> = solutions
        .iter()
        .map(|s| {
            let n = distinct.len();
            *distinct.entry(s.as_ref()).or_insert(n)
        })
        .collect();
    let mut order: Vec<(&str, usize)> = distinct.into_iter().collect();
    order.sort_by_key(|&(_, i)| i);
    let prepared: Vec<Prepared> =
        order.par_iter().map(|(s, _)| Prepared::new(lenient::parse_solution(s, schema, &cfg.gate), schema)).collect();
    completions
        .par_iter()
        .zip(idx.par_iter())
        .map(|(c, &i)| {
            let s = score_prepared(c.as_ref(), &prepared[i], schema, cfg);
            on_row();
            s
        })
        .collect()
}

/// Turns row-major scores into one vector per function (the reference's batch interface).
pub fn by_function(rows: &[Scores]) -> [Vec<f64>; 13] {
    std::array::from_fn(|k| rows.iter().map(|r| r[k]).collect())
}

#[cfg(test)]
mod tests;
