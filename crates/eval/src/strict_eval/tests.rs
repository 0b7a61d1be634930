//! Hand vectors of reference_facts §10 and the protocol differences, with exact values.

use super::*;
use crate::pynum::py_round;

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

const PARTIAL: &str = "<answer>\nobj[4]{id,name,x1,y1,x2,y2}:\n1,adult,110,90,310,400\n2,sofa,250,300,400,480\n\
                       3,table,350,200,600,450\n4,cup,400,210,430,240\nrel[3]{subj,pred,obj}:\n1,sitting-on,2\n\
                       1,beside,3\n4,on,3\n</answer>";

fn paper() -> TripletConfig {
    TripletConfig::default()
}

fn sound() -> TripletConfig {
    TripletConfig { protocol: Protocol::Sound, ..TripletConfig::default() }
}

fn eval(gt: &str, pred: &str, cfg: &TripletConfig) -> TripletMetrics {
    evaluate(Some(gt), Some(pred), cfg).unwrap()
}

#[test]
fn partial_completion_of_reference_facts_section_10() {
    let m = eval(GT, PARTIAL, &paper());
    assert_eq!(m.status, RowStatus::Scored);
    assert_eq!((m.strict_precision_objects, m.strict_recall_objects), (0.5, 2.0 / 3.0));
    assert_eq!(m.strict_f1_objects, 2.0 / (1.0 / 0.5 + 1.0 / (2.0 / 3.0)));
    assert_eq!((m.strict_precision_relations, m.strict_recall_relations), (2.0 / 3.0, 1.0));
    assert_eq!(m.strict_f1_relations, 2.0 / (1.0 / (2.0 / 3.0) + 1.0));
    assert_eq!(m.bbox_mean_iou_matched, (57000.0 / 65000.0 + 1.0 + 1.0) / 3.0);
    // The rounded figures the facts quote.
    let r = |x: f64| py_round(x, 6);
    assert_eq!([r(m.strict_f1_objects), r(m.strict_f1_relations), r(m.strict_sgg_score)], [0.571429, 0.8, 0.685714]);
    assert_eq!(r(m.bbox_mean_iou_matched), 0.958974);
    let counts = [m.num_objects_gt, m.num_objects_pred, m.num_objects_matched, m.tp_objects];
    assert_eq!(counts, [Some(3), Some(4), Some(3), Some(2)]);
    assert_eq!([m.num_relations_gt, m.num_relations_pred, m.tp_relations], [Some(2), Some(3), Some(2)]);
}

#[test]
fn format_errors_are_not_failures_in_the_paper_protocol() {
    // Blank line, wrong N and ids {1,2,5}: perfect 1.0 in the paper protocol, failures in the sound one.
    let blank = GT.replace("2,chair", "\n2,chair");
    let wrong_n = GT.replace("obj[3]", "obj[4]");
    let ids = GT.replace("3,table", "5,table").replace("1,beside,3", "1,beside,5");
    for pred in [blank, wrong_n] {
        assert_eq!(eval(GT, &pred, &paper()).strict_sgg_score, 1.0);
        assert_eq!(eval(GT, &pred, &sound()), TripletMetrics::zero(RowStatus::Failed));
    }
    // With id 5 the relation endpoint maps to GT id 3 through the box match: still perfect.
    assert_eq!(eval(GT, &ids, &paper()).strict_sgg_score, 1.0);
    assert_eq!(eval(GT, &ids, &sound()).status, RowStatus::Failed);
    assert_eq!(eval(GT, GT, &sound()).strict_sgg_score, 1.0);
}

#[test]
fn relation_endpoints_need_agreeing_labels_in_the_sound_protocol() {
    // `sofa` for `chair`: the paper protocol still counts `1 sitting-on 2`, the sound one does not.
    let m = eval(GT, PARTIAL, &sound());
    assert_eq!((m.tp_objects, m.tp_relations), (Some(2), Some(1)));
    assert_eq!((m.strict_precision_relations, m.strict_recall_relations), (1.0 / 3.0, 0.5));
}

#[test]
fn empty_relation_sets() {
    let gt = GT.replace("rel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n", "rel[0]{subj,pred,obj}:\n");
    let m = eval(&gt, &gt, &paper());
    assert_eq!((m.strict_f1_objects, m.strict_f1_relations, m.strict_sgg_score), (1.0, 0.0, 0.5));
    let m = eval(&gt, &gt, &sound());
    assert_eq!((m.strict_precision_relations, m.strict_f1_relations, m.strict_sgg_score), (1.0, 1.0, 1.0));
}

#[test]
fn missing_inputs_and_unparseable_ground_truth() {
    let failed = TripletMetrics::zero(RowStatus::Failed);
    assert_eq!(evaluate(None, Some(GT), &paper()), Ok(failed.clone()));
    assert_eq!(evaluate(Some(GT), Some(""), &paper()), Ok(failed.clone()));
    assert_eq!(eval(GT, "no graph here", &paper()), failed);
    // An unparseable GT against a valid prediction: scored against an empty scene in the paper protocol.
    let m = eval("garbage", GT, &paper());
    assert_eq!((m.toon_valid, m.strict_sgg_score, m.num_objects_gt, m.num_objects_pred), (true, 0.0, Some(0), Some(3)));
    assert_eq!(eval("garbage", GT, &sound()).status, RowStatus::SkipGt);
    assert_eq!(evaluate(None, Some(GT), &sound()).unwrap().status, RowStatus::SkipGt);
}

#[test]
fn nan_iou_aborts_the_paper_protocol_only() {
    let gt = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,0,inf,10\nrel[0]{subj,pred,obj}:\n</answer>";
    let pred = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,a,0,20,inf,30\nrel[0]{subj,pred,obj}:\n</answer>";
    assert_eq!(evaluate(Some(gt), Some(pred), &paper()), Err(EvalError::InvalidIou));
    // The sound protocol's gate rejects the prediction before any IoU is computed.
    assert_eq!(eval(gt, pred, &sound()).status, RowStatus::Failed);
}

#[test]
fn summary_means_over_all_rows() {
    let rows = vec![eval(GT, PARTIAL, &paper()), eval(GT, GT, &paper()), TripletMetrics::zero(RowStatus::Failed)];
    let s = Summary::of(&rows, &[1.0, 2.0], &paper());
    assert_eq!((s.num_samples, s.num_valid_toon, s.num_invalid_toon), (3, 2, 1));
    assert_eq!(s.invalid_rate_pct, 100.0 / 3.0);
    assert_eq!(s.obj_p_strict, (0.5 + 1.0 + 0.0) / 3.0);
    assert_eq!(s.sgg_qwen, s.sgg_strict);
    assert_eq!(s.time_sec.phys, "(1.500 \u{b1} 0.707) s");
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("protocol").is_none() && json.get("num_skip_gt").is_none());
    assert_eq!(json["Obj_P@50_Qwen"], json["Obj_P@50_strict"]);
    let skipped = [TripletMetrics::zero(RowStatus::SkipGt), eval(GT, GT, &sound())];
    let s = Summary::of(&skipped, &[], &sound());
    assert_eq!((s.num_samples, s.num_skip_gt, s.sgg_strict, s.protocol), (1, Some(1), 1.0, Some("sound")));
    let empty = Summary::of(&[], &[], &paper());
    assert_eq!((empty.invalid_rate_pct, empty.sgg_strict, empty.time_sec.phys.as_str()), (0.0, 0.0, "N/A"));
}

/// The per-thread flat path of [`evaluate`] equals the owned path ([`parse_pair`], [`score::match_objects`],
/// [`score::score_matched`]) on every oracle row, in both protocols.
#[test]
fn flat_path_equals_owned_path_on_oracle_rows() {
    let text = sgvlm_testdata::oracle_text("eval_triplet.jsonl");
    let mut n = 0;
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let r = EvalRecord::from_json_line(line).0;
        for cfg in [paper(), sound()] {
            let owned = match parse_pair(r.gt.as_deref(), r.pred.as_deref(), &cfg) {
                Ok((g, p)) => {
                    score::match_objects(&g, &p, &cfg).map(|m| score::score_matched(&g, &p, &m, cfg.protocol))
                }
                Err(status) => Ok(TripletMetrics::zero(status)),
            };
            let flat = evaluate_record(&r, &cfg);
            assert_eq!(flat, owned, "{line}");
            assert_eq!(flat.as_ref().map(|m| m.status).ok(), owned.as_ref().map(|m| m.status).ok());
            n += 1;
        }
    }
    assert!(n > 1000);
}
