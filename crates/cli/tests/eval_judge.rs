//! End-to-end `sgvlm eval` with an LLM judge (a real HTTP server on 127.0.0.1, started here, answering as a judge
//! would) and with `--report`.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn sgvlm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgvlm")).args(args).output().expect("run sgvlm")
}

/// A judge server for at most `max_connections` requests: `couch`/`sofa` are synonyms, `sitting on`/`on` are
/// equivalent predicates, nothing else. Returns the base URL and what it saw.
fn judge_server(max_connections: usize) -> (String, sgvlm_testdata::chat_server::Seen) {
    sgvlm_testdata::chat_server::serve(max_connections, |_, body| {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let user = v["messages"][1]["content"].as_str().unwrap_or("");
        let yes = user.contains("labels 'couch' (from GT) and 'sofa'")
            || (user.contains("GT relation: subject='adult', predicate='sitting on'")
                && user.contains("Pred relation: subject='adult', predicate='on'"));
        (200, if yes { "1" } else { "0" }.to_string())
    })
}

const GT: &str = "<answer>\nobj[3]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,couch,250,300,400,480\n\
                  3,table,350,200,600,450\nrel[2]{subj,pred,obj}:\n1,sitting-on,2\n1,beside,3\n</answer>\n";

const PRED: &str = "<answer>\nobj[4]{id,name,x1,y1,x2,y2}:\n1,adult,100,100,300,400\n2,sofa,250,300,400,480\n\
                    3,desk,350,200,600,450\n4,cup,400,210,430,240\nrel[3]{subj,pred,obj}:\n1,on,2\n1,beside,3\n\
                    4,on,3\n</answer>";

fn row(pred: &str, image: &str) -> String {
    format!("{{\"content\":{},\"predict\":{},\"images\":[{}]}}", Value::from(GT), Value::from(pred), Value::from(image))
}

fn f1(p: f64, r: f64) -> f64 {
    2.0 / (1.0 / p + 1.0 / r)
}

fn str_of(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn judge_fills_the_qwen_keys_and_the_report_is_written() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90])).save(dir.path().join("scene.png")).unwrap();
    // Row 1: disputed; row 2: perfect (no disputes); row 3: image missing.
    let input = format!("{}\n{}\n{}\n", row(PRED, "scene.png"), row(GT, "scene.png"), row(PRED, "gone.png"));
    let path = dir.path().join("preds.jsonl");
    std::fs::write(&path, input).unwrap();
    let (per_sample, report) = (dir.path().join("rows.jsonl"), dir.path().join("report"));
    let (url, seen) = judge_server(64);
    let o = sgvlm(&[
        "eval",
        "--input",
        str_of(&path),
        "--judge-url",
        &url,
        "--judge-model",
        "judge",
        "--judge-api-key-env",
        "SGVLM_TEST_NO_SUCH_KEY",
        "--judge-concurrency",
        "3",
        "--per-sample",
        str_of(&per_sample),
        "--report",
        str_of(&report),
        "--images-root",
        str_of(dir.path()),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    // Two disputed rows: 2 object disputes and 1 relation dispute each.
    assert_eq!(seen.lock().unwrap().len(), 6);
    assert!(err.contains("judge: 4 object and 2 relation disputes decided"), "{err}");
    assert!(err.contains("warning: line 3: cannot draw `"), "{err}");
    assert!(err.contains("gone.png"), "{err}");
    assert!(err.contains("warning: 1 image(s) could not be drawn"), "{err}");

    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["strict_only"], false);
    let obj_f1_soft = f1(0.5, 2.0 / 3.0);
    assert_eq!(s["Obj_P@50_Qwen"].as_f64(), Some((0.5 + 1.0 + 0.5) / 3.0));
    assert_eq!(s["Obj_P@50_strict"].as_f64(), Some((0.25 + 1.0 + 0.25) / 3.0));
    assert_eq!(s["Obj_F1_qwen"].as_f64(), Some((obj_f1_soft + 1.0 + obj_f1_soft) / 3.0));
    assert_eq!(s["Rel_F1_qwen"].as_f64(), Some((0.8 + 1.0 + 0.8) / 3.0));
    assert_eq!(s["Rel_Recall_strict"].as_f64(), Some((0.5 + 1.0 + 0.5) / 3.0));

    let rows: Vec<Value> =
        std::fs::read_to_string(&per_sample).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let m = &rows[0]["metrics"];
    assert_eq!(
        (m["qwen_precision_relations"].as_f64(), m["qwen_recall_relations"].as_f64()),
        (Some(2.0 / 3.0), Some(1.0))
    );
    assert_eq!(m["qwen_sgg_score"].as_f64(), Some((obj_f1_soft + 0.8) / 2.0));
    assert_eq!(m["strict_f1_relations"].as_f64(), Some(f1(1.0 / 3.0, 0.5)));

    for f in ["summary.md", "per_predicate.md", "index.html", "img/1_gt.png", "img/1_pred.png", "img/2_gt.png"] {
        assert!(report.join(f).is_file(), "{f} missing");
    }
    assert!(!report.join("img/3_gt.png").exists());
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("| strict_only | false |"), "{md}");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    // Worst first: rows 1 and 3 tie (input order), row 2 (perfect) last.
    let (r1, r3, r2) = (html.find("row-1\"").unwrap(), html.find("row-3\"").unwrap(), html.find("row-2\"").unwrap());
    assert!(r1 < r3 && r3 < r2);
}

#[test]
fn the_judge_needs_both_flags_and_the_triplet_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    std::fs::write(&path, format!("{}\n", row(GT, "x.png"))).unwrap();
    let o = sgvlm(&["eval", "--input", str_of(&path), "--judge-url", "http://127.0.0.1:9/v1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--judge-model"));
    let o = sgvlm(&[
        "eval",
        "--schema",
        "ag",
        "--input",
        str_of(&path),
        "--judge-url",
        "http://x/v1",
        "--judge-model",
        "m",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--judge-url applies to the triplet schema only"));
    // Without a judge the summary is unchanged: strict only, qwen keys copy strict.
    let o = sgvlm(&["eval", "--input", str_of(&path)]);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((s["strict_only"].as_bool(), s["SGG_Score_qwen"].as_f64()), (Some(true), Some(1.0)));
}
