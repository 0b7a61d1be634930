//! Parser-level parity of the evaluation parsers with the oracle: every row of `eval_triplet.jsonl` (validity
//! and object/relation counts) and of `eval_ag.jsonl` (status, per-class GT counts, GT count).
//!
//! Rows of the kinds listed in `sgvlm_testdata::UNICODE_KINDS` may differ: they exercise Python's Unicode digit/letter handling or
//! Unicode line separators, where this crate deliberately stays ASCII (see `sgvlm_graph::pytext`). Every
//! mismatch is printed; the tests fail on any mismatch outside those kinds.

mod common;

use serde_json::Value;
use sgvlm_graph::{ag_classical, eval_parse};

use sgvlm_testdata::is_unicode_kind as allowed;

fn text<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or("")
}

fn count(v: &Value) -> Option<usize> {
    v.as_u64().map(|n| n as usize)
}

/// Prints the mismatches and fails if any is outside the allowed kinds.
fn report(name: &str, total: usize, mismatches: &[(String, String, String)]) {
    eprintln!("{name}: {}/{total} rows match", total - mismatches.len());
    let mut bad = 0;
    for (id, kind, what) in mismatches {
        let tag = if allowed(kind) { "allowed" } else { "UNEXPECTED" };
        eprintln!("  {tag} {id} ({kind}): {what}");
        bad += usize::from(!allowed(kind));
    }
    assert_eq!(bad, 0, "{name}: {bad} unexpected mismatches");
}

#[test]
fn eval_triplet_parser_matches_oracle() {
    let rows = common::oracle_rows("eval_triplet.jsonl");
    assert_eq!(rows.len(), 715);
    let mut mismatches = Vec::new();
    for row in &rows {
        let (gt, pred) = (text(row, "content"), text(row, "predict"));
        let exp = &row["expected"];
        let gt_graph = eval_parse::parse(gt);
        let pred_graph = eval_parse::parse(pred);
        let valid = eval_parse::sample_is_valid(gt, pred);
        let mut diffs = Vec::new();
        if exp["toon_valid"].as_bool() != Some(valid) {
            diffs.push(format!("toon_valid {} vs {valid}", exp["toon_valid"]));
        }
        // The brief's stronger form holds too: valid rows also have a parsable GT.
        if valid && gt_graph.is_none() {
            diffs.push("valid row with an unparsable GT".to_string());
        }
        if valid && exp["toon_valid"].as_bool() == Some(true) {
            let n =
                |g: &Option<eval_parse::EvalGraph>| g.as_ref().map_or((0, 0), |g| (g.objects.len(), g.relations.len()));
            let (go, gr) = n(&gt_graph);
            let (po, pr) = n(&pred_graph);
            let got = [go, po, gr, pr];
            let keys = ["num_objects_gt", "num_objects_pred", "num_relations_gt", "num_relations_pred"];
            for (k, g) in keys.iter().zip(got) {
                if count(&exp[*k]) != Some(g) {
                    diffs.push(format!("{k} {} vs {g}", exp[*k]));
                }
            }
        }
        if !diffs.is_empty() {
            mismatches.push((text(row, "id").to_string(), text(row, "kind").to_string(), diffs.join("; ")));
        }
    }
    report("eval_triplet", rows.len(), &mismatches);
}

#[test]
fn eval_ag_parser_matches_oracle() {
    let rows = common::oracle_rows("eval_ag.jsonl");
    assert_eq!(rows.len(), 364);
    let mut mismatches = Vec::new();
    for row in &rows {
        let (gt, pred) = (text(row, "content"), text(row, "predict"));
        let exp = &row["expected"];
        let status = ag_classical::sample_status(gt, pred);
        let mut diffs = Vec::new();
        if exp["status"].as_str() != Some(status.as_str()) {
            diffs.push(format!("status {} vs {}", exp["status"], status.as_str()));
        } else if status == ag_classical::AgStatus::Scored {
            let frame = ag_classical::parse(gt).expect("scored GT parses");
            let counts = frame.gt_class_counts();
            let wc = &exp["with_constraint"];
            let exp_counts: Vec<Option<usize>> =
                wc["per_class_gt_count"].as_array().map(|a| a.iter().map(count).collect()).unwrap_or_default();
            let got: Vec<Option<usize>> = counts.iter().map(|&c| Some(c)).collect();
            if exp_counts != got {
                diffs.push(format!("per_class_gt_count {exp_counts:?} vs {got:?}"));
            }
            let n = frame.gt_triplets().len();
            for k in [10, 20, 50, 100] {
                for c in ["with_constraint", "no_constraint"] {
                    let key = format!("GT@{k}");
                    if count(&exp[c][&key]) != Some(n) {
                        diffs.push(format!("{c}/{key} {} vs {n}", exp[c][&key]));
                    }
                }
            }
        }
        if !diffs.is_empty() {
            mismatches.push((text(row, "id").to_string(), text(row, "kind").to_string(), diffs.join("; ")));
        }
    }
    report("eval_ag", rows.len(), &mismatches);
}
