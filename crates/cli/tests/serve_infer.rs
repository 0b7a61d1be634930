//! `sgvlm infer`, `sgvlm video` and `sgvlm serve` end to end: the runners talk to an in-process server over a fake
//! backend (and the `serve` binary is started on a free port), and `sgvlm eval` scores what they wrote.

use serde_json::Value;
use sgvlm_infer::fake::FakeBackend;
use sgvlm_infer::server::{spawn, ServerConfig};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

fn sgvlm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sgvlm"))
}

fn dataset(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (vid, t) in [("v1", 0), ("v1", 1), ("v2", 0), ("v2", 1)] {
        let rel = format!("frames/{vid}/{t}.png");
        std::fs::create_dir_all(dir.join(format!("frames/{vid}"))).unwrap();
        image::RgbImage::from_pixel(20, 10, image::Rgb([t as u8 * 50, 1, 2])).save(dir.join(&rel)).unwrap();
        let prompt = if t == 0 { sgvlm_data_prompt_first() } else { sgvlm_data_prompt_later() };
        let gt = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,0,0,100,100\nrel[0]{subj,pred,obj}:\n</answer>";
        lines.push(
            serde_json::json!({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": gt}], "images": [rel]})
                .to_string(),
        );
    }
    let p = dir.join("test.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn sgvlm_data_prompt_first() -> String {
    sgvlm_data::prompts::pvsg_first()
}

fn sgvlm_data_prompt_later() -> String {
    sgvlm_data::prompts::pvsg_with_prev("obj[0]{id,name,x1,y1,x2,y2}:")
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn infer_and_video_over_http_feed_eval() {
    let server = spawn(Arc::new(FakeBackend::new()), ServerConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dataset(dir.path());
    let preds = dir.path().join("preds.jsonl");
    let url = server.base_url();
    let infer = |extra: &[&str]| {
        let mut c = sgvlm();
        c.args(["infer", "--url", &url, "--served-model", "fake", "--input"]).arg(&input).arg("--out").arg(&preds);
        c.args(["--batch-size", "3"]).args(extra);
        run_ok(&mut c)
    };
    let summary: Value = serde_json::from_str(infer(&["--limit", "2"]).trim()).unwrap();
    assert_eq!((summary["total"].as_u64(), summary["written"].as_u64()), (Some(2), Some(2)));
    let summary: Value = serde_json::from_str(infer(&[]).trim()).unwrap();
    assert_eq!((summary["already_done"].as_u64(), summary["written"].as_u64()), (Some(2), Some(2)), "{summary}");
    let rows: Vec<Value> =
        std::fs::read_to_string(&preds).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["model_name"] == "fake" && r["predict"].as_str().unwrap().ends_with("</answer>")));

    let eval: Value = serde_json::from_str(run_ok(sgvlm().args(["eval", "--input"]).arg(&preds)).trim()).unwrap();
    assert_eq!(eval["num_samples"], 4, "{eval}");
    assert_eq!(eval["num_valid_toon"], 4, "{eval}");

    let video_out = dir.path().join("video.jsonl");
    let mut c = sgvlm();
    c.args(["video", "--url", &url, "--served-model", "fake", "--prev", "generated", "--input"]).arg(&input);
    c.arg("--out").arg(&video_out);
    let summary: Value = serde_json::from_str(run_ok(&mut c).trim()).unwrap();
    assert_eq!((summary["videos"].as_u64(), summary["waves"].as_u64()), (Some(2), Some(2)));
    let eval: Value = serde_json::from_str(run_ok(sgvlm().args(["eval", "--input"]).arg(&video_out)).trim()).unwrap();
    assert_eq!(eval["num_valid_toon"], 4, "{eval}");
    server.stop();
}

#[test]
fn missing_backend_and_bad_flag_combinations_are_reported() {
    let out = sgvlm().args(["infer", "--input", "x.jsonl", "--out", "y.jsonl"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
    let dir = tempfile::tempdir().unwrap();
    let out = sgvlm()
        .args(["video", "--url", "http://127.0.0.1:9/v1", "--served-model", "m", "--prev", "gt", "--frames"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("o.jsonl"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prev gt needs GT answers"));
}

#[test]
fn serve_binary_answers_health_and_scene_graph() {
    let mut child =
        sgvlm().args(["serve", "--fake", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(line.trim()).unwrap();
    let addr = info["listening"].as_str().unwrap().to_string();
    let health = ureq::get(&format!("http://{addr}/health")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(health.contains("\"ok\""));
    let agent = ureq::Agent::new_with_config(ureq::config::Config::builder().http_status_as_error(false).build());
    let mut resp = agent
        .post(&format!("http://{addr}/v1/scene-graph"))
        .header("Content-Type", "application/json")
        .send("{}")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.body_mut().read_to_string().unwrap().contains("no image"));
    child.kill().unwrap();
    child.wait().unwrap();
}
