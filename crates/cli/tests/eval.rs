//! End-to-end tests of `sgvlm eval`: summaries on stdout, per-sample files, bad lines reported with file:line.

use serde_json::Value;
use std::process::{Command, Output};

fn sgvlm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgvlm")).args(args).output().expect("run sgvlm")
}

use sgvlm_testdata::shared_dir;

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,chair,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

#[test]
fn triplet_summary_per_sample_rows_and_bad_lines() {
    let partial = GT
        .replace("obj[3]", "obj[4]")
        .replace("rel[2]", "rel[3]")
        .replace("1,adult,100,100,300,400", "1,adult,110,90,310,400")
        .replace("2,chair", "2,sofa")
        .replace("3,table,350,200,600,450\n", "3,table,350,200,600,450\n4,cup,400,210,430,240\n")
        .replace("1,beside,3\n", "1,beside,3\n4,on,3\n");
    let row = |pred: &str, t: &str| {
        format!(
            "{{\"id\":\"x\",\"content\":{},\"predict\":{},\"gen_time_sec\":{t}}}",
            Value::from(GT),
            Value::from(pred)
        )
    };
    let input = format!("{}\n\n{}\nnot json\n{{\"content\":\"G\"}}\n", row(&partial, "1.0"), row(GT, "2.0"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("triplet.jsonl");
    std::fs::write(&path, input).unwrap();
    let per_sample = dir.path().join("triplet-per-sample.jsonl");
    let p = path.to_str().unwrap();
    let o = sgvlm(&["eval", "--input", p, "--per-sample", per_sample.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains(&format!("{p}:4: not valid JSON")), "{err}");
    assert!(err.contains(&format!("{p}:5: no prediction")), "{err}");
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["predictions_file"], p);
    assert_eq!((s["num_samples"].as_u64(), s["num_valid_toon"].as_u64()), (Some(4), Some(2)));
    assert_eq!(s["invalid_rate_pct"], 50.0);
    assert_eq!(s["Obj_P@50_strict"], (0.5 + 1.0) / 4.0);
    assert_eq!(s["SGG_Score_qwen"], s["SGG_Score_strict"]);
    assert_eq!(s["time_sec"]["phys"], "(1.500 \u{b1} 0.707) s");
    assert!(s.get("protocol").is_none());
    let lines: Vec<Value> =
        std::fs::read_to_string(&per_sample).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], "x");
    assert_eq!(lines[0]["metrics"]["tp_objects"], 2);
    assert_eq!(lines[0]["metrics"]["strict_recall_relations"], 1.0);
    assert_eq!(lines[0]["metrics"]["qwen_f1_objects"], lines[0]["metrics"]["strict_f1_objects"]);
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(
        (lines[2]["metrics"]["toon_valid"].as_bool(), &lines[2]["metrics"]["tp_objects"]),
        (Some(false), &Value::Null)
    );

    let o = sgvlm(&["eval", "--input", p, "--protocol", "sound"]);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Sound: the GT-less bad lines are skipped, and `sofa` no longer carries the relation on `chair`.
    assert_eq!(
        (s["protocol"].as_str(), s["num_samples"].as_u64(), s["num_skip_gt"].as_u64()),
        (Some("sound"), Some(2), Some(2))
    );
    assert_eq!(s["Rel_Recall_strict"], (0.5 + 1.0) / 2.0);
}

#[test]
fn ag_summary_equals_the_oracle_stable_ties_summary() {
    let file = shared_dir().join("testdata/oracle/eval_ag.jsonl");
    let o = sgvlm(&["eval", "--schema", "ag", "--input", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let oracle: Value = serde_json::from_str(
        &std::fs::read_to_string(shared_dir().join("testdata/oracle/eval_ag_summary.json")).unwrap(),
    )
    .unwrap();
    let obj = s.as_object_mut().unwrap();
    assert!(obj.remove("eval_time_sec").is_some_and(|t| t.is_f64()));
    assert!(obj.remove("predictions_file").is_some());
    assert_eq!(s, oracle["expected_stable_ties"]);
}

#[test]
fn usage_errors() {
    let o = sgvlm(&["eval", "--input", "/nonexistent/preds.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Failed to read `/nonexistent/preds.jsonl`"));
    let o = sgvlm(&["eval", "--input", "-", "--iou", "1.5"]);
    assert_eq!(o.status.code(), Some(2));
}
