//! Hand cases with a rule judge (`couch`/`sofa` synonyms, `sitting on`/`on` equivalent), exact values.

use super::*;
use crate::judge::{prompts, FnJudge};
use crate::protocol::Protocol;
use crate::strict_eval::{RowStatus, Summary};
use std::sync::Mutex;

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,couch,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

/// `couch`→`sofa`, `table`→`desk`, a cup with no GT box; `on` for `sitting-on`, `4 on 3` unmatched.
const PRED: &str = "<answer>\nobj[4]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,sofa,250,300,400,480\n\
                    3,desk,350,200,600,450\n4,cup,400,210,430,240\nrel[3]{subj,pred,obj}:\n1,on,2\n1,beside,3\n\
                    4,on,3\n</answer>";

fn record(gt: &str, pred: &str) -> EvalRecord {
    EvalRecord { gt: Some(gt.into()), pred: Some(pred.into()), gen_time_sec: None }
}

/// The two labels of an object request, or the two predicates of a relation request.
fn terms(r: &JudgeRequest) -> (String, String) {
    let between = |s: &str, a: &str, b: &str| -> String {
        s.split_once(a).and_then(|(_, t)| t.split_once(b)).map(|(x, _)| x.to_string()).unwrap_or_default()
    };
    if r.system == prompts::SYSTEM_SYNONYM {
        (between(&r.user, "the two labels '", "' (from GT)"), between(&r.user, "and '", "' (from prediction)"))
    } else {
        (between(&r.user, "GT relation: subject=", "\n"), between(&r.user, "Pred relation: subject=", "\n"))
    }
}

/// Synonyms: couch/sofa; equivalent relations: any whose predicates are `sitting on` and `on`. Records requests.
fn rule_judge(seen: &Mutex<Vec<JudgeRequest>>) -> FnJudge<impl Fn(&JudgeRequest) -> bool + Send + Sync + '_> {
    FnJudge(move |r: &JudgeRequest| {
        seen.lock().unwrap().push(r.clone());
        let (a, b) = terms(r);
        if r.system == prompts::SYSTEM_SYNONYM {
            matches!((a.as_str(), b.as_str()), ("couch", "sofa") | ("sofa", "couch"))
        } else {
            a.contains("predicate='sitting on'") && b.contains("predicate='on'")
        }
    })
}

fn f1(p: f64, r: f64) -> f64 {
    2.0 / (1.0 / p + 1.0 / r)
}

#[test]
fn judged_synonyms_and_predicates_raise_the_soft_figures() {
    let seen = Mutex::new(Vec::new());
    let out = evaluate_soft(&[record(GT, PRED)], &TripletConfig::default(), &rule_judge(&seen)).unwrap();
    let (m, s) = (&out.strict[0], &out.soft[0]);
    // Strict: only `adult` agrees; only `1 beside 3` is a hit.
    assert_eq!((m.tp_objects, m.tp_relations), (Some(1), Some(1)));
    assert_eq!((m.strict_f1_objects, m.strict_f1_relations), (f1(0.25, 1.0 / 3.0), f1(1.0 / 3.0, 0.5)));
    // Soft: couch/sofa accepted, table/desk not; `1 on 2` judged equivalent to `1 sitting-on 2`.
    assert_eq!((s.qwen_precision_objects, s.qwen_recall_objects), (0.5, 2.0 / 3.0));
    assert_eq!(s.qwen_f1_objects, f1(0.5, 2.0 / 3.0));
    assert_eq!((s.qwen_precision_relations, s.qwen_recall_relations, s.qwen_f1_relations), (2.0 / 3.0, 1.0, 0.8));
    assert_eq!(s.qwen_sgg_score, (f1(0.5, 2.0 / 3.0) + 0.8) / 2.0);
    assert_eq!((out.object_disputes, out.relation_disputes), (2, 1));
    // The requests: objects first (in match order), then the relation with the predicted `sofa` replaced by the
    // GT's `couch`; full-scene summaries with normalised names.
    let seen = seen.into_inner().unwrap();
    let asked: Vec<(String, String)> = seen.iter().map(terms).collect();
    assert_eq!(asked[0], ("couch".into(), "sofa".into()));
    assert_eq!(asked[1], ("table".into(), "desk".into()));
    assert_eq!(
        asked[2],
        ("'adult', predicate='sitting on', object='couch'.".into(), "'adult', predicate='on', object='couch'.".into())
    );
    assert!(seen[2].user.contains(
        "Full GT scene graph: Objects: 1:adult; 2:couch; 3:table. Relations: (adult, sitting on, couch); \
         (adult, beside, table)\n\nFull predicted scene graph: Objects: 1:adult; 2:sofa; 3:desk; 4:cup. Relations: \
         (adult, on, sofa); (adult, beside, desk); (cup, on, desk)\n"
    ));
    assert_eq!(seen[2].max_tokens, prompts::RELATION_MAX_TOKENS);
}

#[test]
fn the_synonym_map_keeps_the_last_verdict() {
    // The judge accepts couch/sofa only in a scene with an adult. Row 0 (adult) gets 1 for its own pair, row 1
    // (no adult) gets 0 and is the last verdict for the key, so row 0's relation is asked with `sofa` kept.
    let seen = Mutex::new(Vec::new());
    let judge = FnJudge(|r: &JudgeRequest| {
        seen.lock().unwrap().push(r.clone());
        let (a, b) = terms(r);
        if r.system == prompts::SYSTEM_SYNONYM {
            (a, b) == ("couch".into(), "sofa".into()) && r.user.contains("Full GT scene graph: Objects: 1:adult")
        } else {
            false
        }
    });
    let lone = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,couch,0,0,50,50\nrel[0]{subj,pred,obj}:\n</answer>";
    let rows = [record(GT, PRED), record(lone, &lone.replace("couch", "sofa"))];
    let out = evaluate_soft(&rows, &TripletConfig::default(), &judge).unwrap();
    assert_eq!(out.soft[0].qwen_precision_objects, 0.5, "row 0's own verdict counts");
    assert_eq!(out.soft[1].qwen_f1_objects, 0.0);
    let seen = seen.into_inner().unwrap();
    let rel = seen.iter().find(|r| r.system == prompts::SYSTEM_TRIPLET).unwrap();
    assert_eq!(terms(rel).1, "'adult', predicate='on', object='sofa'.");
    // Rejected relation: soft relation figures equal the strict ones.
    assert_eq!(out.soft[0].qwen_f1_relations, out.strict[0].strict_f1_relations);
}

#[test]
fn sound_protocol_needs_accepted_endpoints() {
    let seen = Mutex::new(Vec::new());
    let cfg = TripletConfig { protocol: Protocol::Sound, ..TripletConfig::default() };
    let out = evaluate_soft(&[record(GT, PRED)], &cfg, &rule_judge(&seen)).unwrap();
    // Strict sound: `2` (sofa) and `3` (desk) disagree with the GT labels, so no relation is a candidate.
    assert_eq!(out.strict[0].tp_relations, Some(0));
    // Soft sound: sofa is accepted, so `1 on 2` is a candidate and judged equivalent; `1 beside 3` still is not.
    let s = &out.soft[0];
    assert_eq!((s.qwen_precision_relations, s.qwen_recall_relations), (1.0 / 3.0, 0.5));
    assert_eq!(out.relation_disputes, 1);
}

#[test]
fn invalid_rows_score_zero_and_the_summary_is_not_strict_only() {
    let seen = Mutex::new(Vec::new());
    let rows = [record(GT, PRED), record(GT, "no graph"), record(GT, GT)];
    let cfg = TripletConfig::default();
    let out = evaluate_soft(&rows, &cfg, &rule_judge(&seen)).unwrap();
    assert_eq!(out.strict[1].status, RowStatus::Failed);
    assert_eq!(out.soft[1], SoftMetrics::default());
    assert_eq!(out.soft[2], SoftMetrics::from_strict(&out.strict[2]));
    let s = Summary::of_soft(&out.strict, &out.soft, &[], &cfg);
    assert!(!s.strict_only);
    assert_eq!(s.obj_p_qwen, (0.5 + 0.0 + 1.0) / 3.0);
    assert_eq!(s.obj_p_strict, (0.25 + 0.0 + 1.0) / 3.0);
    assert_eq!(s.rel_r_qwen, (1.0 + 0.0 + 1.0) / 3.0);
    let strict_only = Summary::of(&out.strict, &[], &cfg);
    assert!(strict_only.strict_only);
    assert_eq!(strict_only.obj_p_qwen, s.obj_p_strict);
}

#[test]
fn judge_failures_and_short_answers_are_errors() {
    struct Short;
    impl Judge for Short {
        fn judge(&self, _: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError> {
            Ok(vec![true])
        }
    }
    let err = evaluate_soft(&[record(GT, PRED)], &TripletConfig::default(), &Short).unwrap_err();
    assert_eq!(err.to_string(), "the judge returned 1 verdicts for 2 object disputes");
    struct Down;
    impl Judge for Down {
        fn judge(&self, _: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError> {
            Err(JudgeError::BadResponse("x".into()))
        }
    }
    let err = evaluate_soft(&[record(GT, PRED)], &TripletConfig::default(), &Down).unwrap_err();
    assert_eq!(err.to_string(), "Failed to judge the object disputes: judge answered with an unexpected body: x");
    // No disputes: the judge is never called.
    let out = evaluate_soft(&[record(GT, GT)], &TripletConfig::default(), &Down).unwrap();
    assert_eq!(out.soft[0], SoftMetrics::from_strict(&out.strict[0]));
}

#[test]
fn repeated_ids_use_the_last_name_in_summaries() {
    let g = sgvlm_graph::eval_parse::parse(
        "obj[2]{id,name,x1,y1,x2,y2}:\n1,cat,0,0,9,9\n1,dog,0,0,9,9\nrel[1]{subj,pred,obj}:\n1,near,7\n",
    )
    .unwrap();
    assert_eq!(disputes::summary(&g), "Objects: 1:dog; 1:dog. Relations: (dog, near, )");
}
