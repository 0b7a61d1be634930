//! The ranked predictions of one Action Genome frame: synthetic scores for a generative output, the with- and
//! without-constraint candidate lists, and the stable ranking.

use crate::protocol::Protocol;
use sgvlm_graph::ag_classical::{AgFrame, AgPairRow};
use sgvlm_graph::vocab::{
    AG_ATTENTION, AG_CONTACTING, AG_CONTACTING_OFFSET, AG_NUM_PREDICATES, AG_SPATIAL, AG_SPATIAL_OFFSET,
};

/// How many cells the no-constraint ranking keeps.
const NO_CONSTRAINT_TOP: usize = 100;
/// Rank decrement between consecutive spatial/contacting labels of a list.
const LIST_EPS: f64 = 1e-4;

/// One ranked prediction: subject and object as positions in the frame's objects, a predicate class and a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub subj: usize,
    pub obj: usize,
    pub pred: usize,
    pub score: f64,
}

/// One of the 3P prediction rows: its endpoints and its 26 predicate scores (only its own block non-zero).
struct Row {
    subj: usize,
    obj: usize,
    scores: [f64; AG_NUM_PREDICATES],
}

/// Scores of one label list: `value(j)` for the j-th listed label (j counts every listed label, including labels
/// outside the vocabulary); a repeated label keeps its last position's value.
fn block(labels: &[String], vocab: &[&str], offset: usize, value: impl Fn(usize) -> f64) -> [f64; AG_NUM_PREDICATES] {
    let mut s = [0.0; AG_NUM_PREDICATES];
    for (j, l) in labels.iter().enumerate() {
        if let Some(k) = vocab.iter().position(|v| v == l) {
            s[offset + k] = value(j);
        }
    }
    s
}

/// The reference's prediction rows: attention rows of pairs 1..P (1.0 per listed label), then spatial rows with
/// subject and object reversed (`1 − j·1e-4`), then contacting rows (`1 − j·1e-4`). A pair referencing an id
/// without an object falls back to position 0 (paper) or is dropped (sound).
fn rows(frame: &AgFrame, protocol: Protocol) -> Vec<Row> {
    let ends = |p: &AgPairRow| match (frame.position(p.subj), frame.position(p.obj), protocol) {
        (Some(s), Some(o), _) => Some((s, o)),
        (s, o, Protocol::Paper) => Some((s.unwrap_or(0), o.unwrap_or(0))),
        (_, _, Protocol::Sound) => None,
    };
    let pairs: Vec<(&AgPairRow, (usize, usize))> = frame.pairs.iter().filter_map(|p| Some((p, ends(p)?))).collect();
    let ranked = |j: usize| 1.0 - j as f64 * LIST_EPS;
    let mut out = Vec::with_capacity(3 * pairs.len());
    for &(p, (s, o)) in &pairs {
        out.push(Row { subj: s, obj: o, scores: block(&p.attention, &AG_ATTENTION, 0, |_| 1.0) });
    }
    for &(p, (s, o)) in &pairs {
        out.push(Row { subj: o, obj: s, scores: block(&p.spatial, &AG_SPATIAL, AG_SPATIAL_OFFSET, ranked) });
    }
    for &(p, (s, o)) in &pairs {
        out.push(Row { subj: s, obj: o, scores: block(&p.contacting, &AG_CONTACTING, AG_CONTACTING_OFFSET, ranked) });
    }
    out
}

/// Sorts by score, highest first; equal scores keep their order (the stable tie rule).
fn rank(c: &mut [Candidate]) {
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// With constraint: one candidate per row, its first highest-scoring predicate (an all-zero row yields
/// `looking_at` with score 0 in the paper protocol and nothing in the sound one), ranked.
pub(crate) fn with_constraint(frame: &AgFrame, protocol: Protocol) -> Vec<Candidate> {
    let mut c: Vec<Candidate> = rows(frame, protocol)
        .iter()
        .map(|r| {
            let (mut best, mut score) = (0, r.scores[0]);
            for (k, &v) in r.scores.iter().enumerate().skip(1) {
                if v > score {
                    (best, score) = (k, v);
                }
            }
            Candidate { subj: r.subj, obj: r.obj, pred: best, score }
        })
        .filter(|c| protocol == Protocol::Paper || c.score > 0.0)
        .collect();
    rank(&mut c);
    c
}

/// Without constraint: every (row, predicate) cell ranked by score (ties: lower `row·26 + predicate` first), the
/// top 100 kept; zero cells included in the paper protocol, left out in the sound one.
pub(crate) fn no_constraint(frame: &AgFrame, protocol: Protocol) -> Vec<Candidate> {
    let mut c: Vec<Candidate> = rows(frame, protocol)
        .iter()
        .flat_map(|r| {
            r.scores.iter().enumerate().map(|(k, &score)| Candidate { subj: r.subj, obj: r.obj, pred: k, score })
        })
        .filter(|c| protocol == Protocol::Paper || c.score > 0.0)
        .collect();
    rank(&mut c);
    c.truncate(NO_CONSTRAINT_TOP);
    // The second, stable sort by score leaves an already ranked list unchanged.
    c
}
