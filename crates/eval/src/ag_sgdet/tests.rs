//! Hand vectors of reference_facts §10 (AG classical) and the protocol differences, with exact values.

use super::*;

const GT: &str = "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n\
                  \x20       2,table,222,143,479,244\n        3,chair,56,179,249,269\n\
                  \x20     rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n\
                  \x20       1,[unsure],[in_front_of],[not_contacting],2\n\
                  \x20       1,[not_looking_at],[beneath,behind],[sitting_on,leaning_on],3\n</answer>\n";

fn paper() -> AgConfig {
    AgConfig::default()
}

fn sound() -> AgConfig {
    AgConfig { protocol: Protocol::Sound, ..AgConfig::default() }
}

#[test]
fn perfect_prediction_of_reference_facts_section_10() {
    let s = evaluate(Some(GT), Some(GT), &paper());
    assert_eq!(s.status, AgRowStatus::Scored);
    let w = s.with_constraint.unwrap();
    for a in &w.at {
        // Only the first label of each list survives the argmax: 6 of 8 GT triplets.
        assert_eq!((a.recall, a.precision, a.tp, a.pred, a.gt), (0.75, 1.0, 6, 6, 8));
        assert_eq!(a.f1, 2.0 * 1.0 * 0.75 / 1.75);
    }
    let n = s.no_constraint.unwrap();
    assert_eq!((n.at[0].recall, n.at[0].precision, n.at[0].tp, n.at[0].pred), (1.0, 0.8, 8, 10));
    assert_eq!((n.at[3].recall, n.at[3].precision, n.at[3].pred), (1.0, 0.08, 100));
    // Classes: unsure, not_looking_at, in_front_of, beneath, behind, not_contacting, sitting_on, leaning_on.
    let mut counts = [0; 26];
    for c in [2, 1, 5, 4, 6, 17, 19, 15] {
        counts[c] = 1;
    }
    assert_eq!(n.per_class_gt_count, counts);
    assert_eq!(n.at[0].per_class_hits, counts);
    // With constraint, `behind` (second spatial) and `leaning_on` (second contacting) are missed.
    let mut hits = counts;
    hits[6] = 0;
    hits[15] = 0;
    assert_eq!(w.at[0].per_class_hits, hits);
}

#[test]
fn zero_score_rows_count_as_predictions_only_in_the_paper_protocol() {
    // Pair 2 without any spatial label: its spatial row is all zero.
    let pred = GT.replace("[beneath,behind]", "[]");
    let w = evaluate(Some(GT), Some(&pred), &paper()).with_constraint.unwrap();
    assert_eq!((w.at[0].tp, w.at[0].pred), (5, 6));
    let w = evaluate(Some(GT), Some(&pred), &sound()).with_constraint.unwrap();
    assert_eq!((w.at[0].tp, w.at[0].pred, w.at[0].precision), (5, 5, 1.0));
    let n = evaluate(Some(GT), Some(&pred), &sound()).no_constraint.unwrap();
    assert_eq!((n.at[0].tp, n.at[0].pred, n.at[3].pred), (6, 6, 6));
}

#[test]
fn skips_and_failures() {
    let skip = |gt: &str, pred: &str, cfg: &AgConfig| evaluate(Some(gt), Some(pred), cfg).status;
    assert_eq!(skip("no tags", GT, &paper()), AgRowStatus::SkipGtParse);
    assert_eq!(skip(GT, "no tags", &paper()), AgRowStatus::SkipPredParse);
    assert_eq!(evaluate(Some(GT), None, &paper()).status, AgRowStatus::SkipPredParse);
    let no_rels = GT.replace("1,[unsure]", "9,[unsure]").replace("1,[not_looking_at]", "9,[not_looking_at]");
    assert_eq!(skip(&no_rels, GT, &paper()), AgRowStatus::SkipNoGtRels);
    assert_eq!(skip(&no_rels, "no tags", &sound()), AgRowStatus::SkipNoGtRels);
    // Sound: an unparseable or gate-failing prediction scores 0 instead of being skipped.
    let failed = evaluate(Some(GT), Some("no tags"), &sound());
    assert_eq!(failed.status, AgRowStatus::PredFailed);
    let w = failed.with_constraint.unwrap();
    assert_eq!((w.at[0].recall, w.at[0].tp, w.at[0].pred, w.at[0].gt), (0.0, 0, 0, 8));
    let two_attention = GT.replace("[unsure]", "[unsure,looking_at]");
    assert_eq!(skip(GT, &two_attention, &paper()), AgRowStatus::Scored);
    assert_eq!(skip(GT, &two_attention, &sound()), AgRowStatus::PredFailed);
}

#[test]
fn summary_rounds_and_averages_like_the_reference() {
    let rows = vec![
        evaluate(Some(GT), Some(GT), &paper()),
        evaluate(Some(GT), Some("x"), &paper()),
        evaluate(Some(GT), Some(&GT.replace("[beneath,behind]", "[]")), &paper()),
    ];
    let s = AgSummary::of(&rows, &paper());
    assert_eq!((s.num_samples, s.num_valid, s.num_skip_pred_parse), (3, 2, 1));
    let w = &s.with_constraint;
    assert_eq!(w.recall[0], py_round_6((0.75 + 5.0 / 8.0) / 2.0));
    assert_eq!((w.micro_tp[0], w.micro_pred[0], w.micro_gt[0]), (11, 12, 16));
    assert_eq!(w.micro_p[0], 0.916667);
    // mR over all 26 classes: 8 present, hits 2+2+2+1+0+2+2+0 (with constraint) over 2 each.
    assert_eq!(w.mean_recall[0], py_round_6((1.0 + 1.0 + 1.0 + 0.5 + 0.0 + 1.0 + 1.0 + 0.0) / 26.0));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["with_constraint/micro_TP@10"], 11);
    assert!(json.get("protocol").is_none());
    let s = AgSummary::of(&rows, &sound());
    assert_eq!(s.with_constraint.mean_recall[0], py_round_6(5.5 / 8.0));
    let empty = serde_json::to_value(AgSummary::of(&[], &paper())).unwrap();
    assert_eq!((empty["num_valid"].as_u64(), empty["no_constraint/mR@100"].as_f64()), (Some(0), Some(0.0)));
}

fn py_round_6(x: f64) -> f64 {
    crate::pynum::py_round(x, 6)
}
