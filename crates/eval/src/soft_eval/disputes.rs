//! The three phases of the soft evaluation: parse and assign every row, judge the object disputes of the whole
//! file, then judge the relation disputes (normalised with the object verdicts) and count.

use super::{ask, SoftError, SoftEvaluation, SoftMetrics};
use crate::judge::{prompts, Judge, JudgeRequest};
use crate::record::EvalRecord;
use crate::strict_eval::score::{self, Candidate, Match};
use crate::strict_eval::{parse_pair, TripletConfig, TripletMetrics};
use rayon::prelude::*;
use sgvlm_graph::eval_parse::EvalGraph;
use std::collections::HashMap;

/// A row that gets scored: both graphs, the object assignment and the strict figures.
struct Scored {
    g: EvalGraph,
    p: EvalGraph,
    matches: Vec<Match>,
    strict: TripletMetrics,
}

/// The name of the object with this id; with repeated ids the last one wins, and an unknown id gives `""` (the
/// reference's `{id: name}` dict and `.get(id, "")`).
fn name_of(g: &EvalGraph, id: u64) -> &str {
    g.objects.iter().rev().find(|o| o.id == id).map_or("", |o| o.name.as_str())
}

/// The judge's scene summary of a graph (names through [`name_of`], as the reference's).
pub(super) fn summary(g: &EvalGraph) -> String {
    let objects: Vec<(String, String)> =
        g.objects.iter().map(|o| (o.id.to_string(), name_of(g, o.id).into())).collect();
    let relations: Vec<(String, String, String)> =
        g.relations.iter().map(|r| (name_of(g, r.subj).into(), r.pred.clone(), name_of(g, r.obj).into())).collect();
    prompts::scene_summary(&objects, &relations)
}

/// Whether a GT name and a predicted name denote the same object: equal, or judged synonyms (last verdict).
fn same_object(gt: &str, pred: &str, synonyms: &HashMap<(String, String), bool>) -> bool {
    gt == pred || synonyms.get(&(gt.to_string(), pred.to_string())).copied().unwrap_or(false)
}

pub(super) fn run(records: &[EvalRecord], cfg: &TripletConfig, judge: &dyn Judge) -> Result<SoftEvaluation, SoftError> {
    // Phase 0: parse, assign, strict figures (parallel).
    let rows: Vec<Result<Scored, TripletMetrics>> = records
        .par_iter()
        .enumerate()
        .map(|(i, r)| match parse_pair(r.gt.as_deref(), r.pred.as_deref(), cfg) {
            Ok((g, p)) => {
                let matches = score::match_objects(&g, &p, cfg).map_err(|source| SoftError::Eval { row: i, source })?;
                let strict = score::score_matched(&g, &p, &matches, cfg.protocol);
                Ok(Ok(Scored { g, p, matches, strict }))
            }
            Err(status) => Ok(Err(TripletMetrics::zero(status))),
        })
        .collect::<Result<_, SoftError>>()?;
    // Scene summaries, only for rows that can have disputes (a match is needed for either kind).
    let summaries: Vec<Option<(String, String)>> = rows
        .par_iter()
        .map(|r| r.as_ref().ok().filter(|s| !s.matches.is_empty()).map(|s| (summary(&s.g), summary(&s.p))))
        .collect();

    // Phase 1: object disputes over the whole file.
    let mut requests = Vec::new();
    let mut keys: Vec<(String, String)> = Vec::new();
    for (row, sums) in rows.iter().zip(&summaries) {
        let (Ok(s), Some((gs, ps))) = (row, sums) else { continue };
        for m in &s.matches {
            let (gn, pn) = (&s.g.objects[m.gt].name, &s.p.objects[m.pred].name);
            if gn != pn {
                requests.push(JudgeRequest::object(gn, pn, gs, ps));
                keys.push((gn.clone(), pn.clone()));
            }
        }
    }
    let object_disputes = requests.len();
    let verdicts = ask(judge, &requests, "object")?;
    let mut synonyms: HashMap<(String, String), bool> = HashMap::with_capacity(keys.len());
    for (key, v) in keys.into_iter().zip(&verdicts) {
        synonyms.insert(key, *v);
    }
    let mut next = verdicts.iter();
    let obj_ok: Vec<Vec<bool>> = rows
        .iter()
        .map(|row| match row {
            Ok(s) => s
                .matches
                .iter()
                .map(|m| s.g.objects[m.gt].name == s.p.objects[m.pred].name || next.next().copied().unwrap_or(false))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();

    // Phase 2: relation disputes, endpoints normalised with the synonym map.
    let mut requests = Vec::new();
    let mut per_row: Vec<(Vec<Candidate>, Vec<bool>)> = Vec::with_capacity(rows.len());
    for ((row, sums), ok) in rows.iter().zip(&summaries).zip(&obj_ok) {
        let (Ok(s), Some((gs, ps))) = (row, sums) else {
            per_row.push((Vec::new(), Vec::new()));
            continue;
        };
        let cands = score::relation_candidates(&s.g, &s.p, &s.matches, &score::endpoints(ok, cfg.protocol));
        let mut equal = Vec::with_capacity(cands.len());
        for c in &cands {
            let (gr, pr) = (&s.g.relations[c.gt], &s.p.relations[c.pred]);
            equal.push(gr.pred == pr.pred);
            if gr.pred == pr.pred {
                continue;
            }
            let (g_s, g_o) = (name_of(&s.g, gr.subj), name_of(&s.g, gr.obj));
            let (p_s, p_o) = (name_of(&s.p, pr.subj), name_of(&s.p, pr.obj));
            let p_s = if same_object(g_s, p_s, &synonyms) { g_s } else { p_s };
            let p_o = if same_object(g_o, p_o, &synonyms) { g_o } else { p_o };
            requests.push(JudgeRequest::relation((g_s, &gr.pred, g_o), (p_s, &pr.pred, p_o), gs, ps));
        }
        per_row.push((cands, equal));
    }
    let relation_disputes = requests.len();
    let verdicts = ask(judge, &requests, "relation")?;

    // Phase 3: count with the judged decisions.
    let mut next = verdicts.iter();
    let mut strict = Vec::with_capacity(rows.len());
    let mut soft = Vec::with_capacity(rows.len());
    for ((row, ok), (cands, equal)) in rows.into_iter().zip(&obj_ok).zip(&per_row) {
        match row {
            Ok(s) => {
                let hits: Vec<Candidate> = cands
                    .iter()
                    .zip(equal)
                    .filter(|(_, eq)| **eq || next.next().copied().unwrap_or(false))
                    .map(|(c, _)| *c)
                    .collect();
                let judged = score::tally(&s.g, &s.p, &s.matches, ok, &hits, cfg.protocol);
                soft.push(SoftMetrics::from_strict(&judged));
                strict.push(s.strict);
            }
            Err(zero) => {
                soft.push(SoftMetrics::default());
                strict.push(zero);
            }
        }
    }
    Ok(SoftEvaluation { strict, soft, object_disputes, relation_disputes })
}
