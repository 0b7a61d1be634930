//! The dataset runners over the fake backend: resumable `infer`, and the GEN-prompt waves of `video`.

use serde_json::Value;
use sgvlm_data::prompts;
use sgvlm_infer::fake::FakeBackend;
use sgvlm_infer::runner::{self, finalize_vl_prediction, PrevSource, RunConfig, Silent};
use sgvlm_infer::{Backend, BackendError, GenOutput, GenParams, GenRequest};
use std::path::Path;

fn write_png(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(16, 12, image::Rgb([shade, 0, 0])).save(path).unwrap();
}

fn gt(i: usize) -> String {
    format!("<answer>\nobj[1]{{id,name,x1,y1,x2,y2}}:\n1,person,{i},0,100,100\nrel[0]{{subj,pred,obj}}:\n</answer>")
}

fn row(prompt: &str, image: &str, gt: &str) -> String {
    serde_json::json!({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": gt}], "images": [image]}).to_string()
}

/// Two videos (a: frames 0..3, b: frames 0..2) as PVSG rows, listed out of frame order; b's first frame fails.
fn video_dataset(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (vid, t) in [("a", 1), ("b", 0), ("a", 0), ("a", 2), ("b", 1)] {
        let rel = format!("frames/{vid}/{t}.png");
        write_png(&dir.join(&rel), (t * 40) as u8);
        let mut prompt =
            if t == 0 { prompts::pvsg_first() } else { prompts::pvsg_with_prev("obj[0]{id,name,x1,y1,x2,y2}:") };
        if (vid, t) == ("b", 0) {
            prompt.push_str(" FAILME");
        }
        lines.push(row(&prompt, &rel, &gt(t * 10 + usize::from(vid == "b"))));
    }
    let path = dir.join("rows.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn cfg(batch_size: usize) -> RunConfig {
    RunConfig { batch_size, params: GenParams::default(), model_name: "fake-run".into(), obj_prefix_fallback: false }
}

/// The fake, except that prompts holding `NOHEADER` get prose unless the answer is forced to start with `obj[`,
/// and prompts holding `NEVER` get prose always.
struct Prose(FakeBackend);

impl Backend for Prose {
    fn name(&self) -> &str {
        "prose"
    }

    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<GenOutput, BackendError>> {
        let mut out = self.0.generate(requests);
        for (req, res) in requests.iter().zip(out.iter_mut()) {
            let user = &req.messages[0].content;
            let forced = req.params.response_prefix.as_deref() == Some("obj[");
            if let Ok(o) = res {
                if user.contains("NEVER") || (user.contains("NOHEADER") && !forced) {
                    o.text = "I see a red picture.".into();
                }
            }
        }
        out
    }
}

#[test]
fn obj_prefix_fallback_retries_answers_without_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = ["plain", "NOHEADER", "NEVER"]
        .iter()
        .enumerate()
        .map(|(i, marker)| {
            write_png(&dir.path().join(format!("{i}.png")), i as u8);
            row(&format!("{} {marker}", prompts::pvsg_first()), &format!("{i}.png"), &gt(i))
        })
        .collect();
    let input = dir.path().join("rows.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let rows = runner::read_rows(&input, None).unwrap();
    for fallback in [false, true] {
        let backend = Prose(FakeBackend::new());
        let out = dir.path().join(format!("out-{fallback}.jsonl"));
        let cfg = RunConfig { obj_prefix_fallback: fallback, ..cfg(8) };
        let s = runner::run_infer(&backend, &rows, &out, &cfg, true, &Silent).unwrap();
        let preds: Vec<String> = read_out(&out).iter().map(|r| r["predict"].as_str().unwrap().to_string()).collect();
        assert!(runner::has_obj_header(&preds[0]));
        assert_eq!(preds[2], "I see a red picture.", "a retry without a header does not replace the answer");
        if fallback {
            assert_eq!(s.obj_prefix_retries, 1);
            assert!(preds[1].starts_with("obj["), "{}", preds[1]);
            assert!(runner::has_obj_header(&preds[1]));
            assert_eq!(backend.0.batch_sizes(), vec![3, 2], "the two answers without a header are retried together");
        } else {
            assert_eq!((s.obj_prefix_retries, preds[1].as_str()), (0, "I see a red picture."));
            assert_eq!(backend.0.batch_sizes(), vec![3]);
        }
    }
}

fn read_out(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn infer_writes_reference_rows_and_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let input = video_dataset(dir.path());
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("{\"messages\": [{\"role\": \"user\", \"content\": \"<image>\\nx\"}], \"images\": [\"missing.png\"]}\nnot json\n");
    std::fs::write(&input, text).unwrap();
    let rows = runner::read_rows(&input, None).unwrap();
    let backend = FakeBackend::new().failing_when("FAILME");

    let full = dir.path().join("full.jsonl");
    let s = runner::run_infer(&backend, &rows, &full, &cfg(2), false, &Silent).unwrap();
    assert_eq!((s.total, s.written, s.errors), (7, 7, 3));
    let reference = read_out(&full);
    assert_eq!(reference.iter().map(|r| r["index"].as_u64().unwrap()).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
    let ok = &reference[0];
    assert_eq!(ok["content"], gt(10).as_str());
    assert!(ok["predict"].as_str().unwrap().starts_with("<answer>\nobj[2]"));
    assert!(ok["gen_time_sec"].as_f64().unwrap() >= 0.0);
    assert_eq!(ok["model_name"], "fake-run");
    assert_eq!(ok["messages"][0]["role"], "user", "the input messages are kept");
    let failed = &reference[1];
    assert_eq!((failed["predict"].as_str(), failed["gen_time_sec"].is_null()), (Some(""), true));
    assert!(failed["predict_error"].as_str().unwrap().contains("fake failure"));
    assert!(reference[5]["predict_error"].as_str().unwrap().contains("missing.png"));
    assert!(reference[6]["predict_error"].as_str().unwrap().contains("rows.jsonl:7: not a JSON row"));

    // Interrupted after three rows, in the middle of writing the fourth.
    let partial = dir.path().join("partial.jsonl");
    let bytes = std::fs::read(&full).unwrap();
    let cut = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(2).unwrap().0 + 1;
    std::fs::write(&partial, &bytes[..cut + 20]).unwrap();
    let s = runner::run_infer(&backend, &rows, &partial, &cfg(2), false, &Silent).unwrap();
    assert_eq!((s.already_done, s.written, s.truncated_bytes), (3, 4, 20));
    let resumed = read_out(&partial);
    let strip_times = |rows: &[Value]| {
        rows.iter().map(|r| (r["index"].clone(), r["predict"].clone(), r["predict_error"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(strip_times(&resumed), strip_times(&reference));
    // A finished file stays as it is; --force starts over.
    let s = runner::run_infer(&backend, &rows, &partial, &cfg(2), false, &Silent).unwrap();
    assert_eq!((s.already_done, s.written), (7, 0));
    let s = runner::run_infer(&backend, &rows[..2], &partial, &cfg(2), true, &Silent).unwrap();
    assert_eq!(s.written, 2);
    assert_eq!(read_out(&partial).len(), 2);
}

#[test]
fn video_waves_chain_generated_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let rows = runner::read_rows(&video_dataset(dir.path()), None).unwrap();
    let backend = FakeBackend::new().failing_when("FAILME");
    let out = dir.path().join("gen.jsonl");
    let s = runner::run_video(&backend, &rows, &out, &cfg(8), PrevSource::Generated, false, &Silent).unwrap();
    assert_eq!((s.rows, s.videos, s.waves, s.errors, s.template_found), (5, 2, 3, 1, true));
    assert_eq!(backend.batch_sizes(), vec![2, 2, 1], "wave k holds frame k of every video");
    let out = read_out(&out);
    assert_eq!(out.len(), 5, "one row per input row, in input order");
    let user = |i: usize| out[i]["messages"][0]["content"].as_str().unwrap().to_string();
    // Row 2 is a/0, row 0 is a/1, row 3 is a/2; row 1 is b/0 (failed), row 4 is b/1.
    assert_eq!(user(2), prompts::pvsg_first().trim_end(), "wave 0 uses the row's own prompt, stripped");
    let pred_a0 = out[2]["predict"].as_str().unwrap();
    assert!(user(0).contains(&format!("Previous frame scene graph (TOON):\n{pred_a0}\n")), "{}", user(0));
    assert!(user(3).contains(out[0]["predict"].as_str().unwrap()));
    assert_eq!(out[2]["messages"][1]["content"], out[2]["predict"]);
    assert!(out[1]["predict_error"].is_string());
    assert!(user(4).contains("Previous frame scene graph (TOON):\n\n\n"), "a failed frame passes \"\": {}", user(4));
}

#[test]
fn video_resumes_from_the_journal_of_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let rows = runner::read_rows(&video_dataset(dir.path()), None).unwrap();
    let full_path = dir.path().join("full.jsonl");
    runner::run_video(&FakeBackend::new(), &rows, &full_path, &cfg(8), PrevSource::Generated, false, &Silent).unwrap();
    assert!(!runner::journal_path(&full_path).exists(), "the journal is removed once the output is written");
    let full = std::fs::read_to_string(&full_path).unwrap();
    let lines: Vec<&str> = full.lines().collect();

    // An interrupted run: wave 0 (rows 2 = a/0, 1 = b/0) and a/1 (row 0) journaled, then half a line.
    let out = dir.path().join("resumed.jsonl");
    let journal = runner::journal_path(&out);
    std::fs::write(&journal, format!("{}\n{}\n{}\n{{\"messages\": [", lines[2], lines[1], lines[0])).unwrap();
    let backend = FakeBackend::new();
    let s = runner::run_video(&backend, &rows, &out, &cfg(8), PrevSource::Generated, false, &Silent).unwrap();
    assert_eq!((s.already_done, s.written, s.errors), (3, 2, 0));
    assert!(s.truncated_bytes > 0);
    assert_eq!(backend.batch_sizes(), vec![1, 1], "only b/1 (wave 1) and a/2 (wave 2) are generated");
    let strip_time = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["gen_time_sec"] = Value::Null;
                v
            })
            .collect()
    };
    let resumed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(strip_time(&resumed), strip_time(&full), "the resumed run writes what the uninterrupted one did");
    assert!(!journal.exists());

    // A journal written with another previous-graph source is refused, not mixed in.
    let other = dir.path().join("other.jsonl");
    std::fs::write(runner::journal_path(&other), format!("{}\n{}\n{}\n", lines[2], lines[1], lines[0])).unwrap();
    let err =
        runner::run_video(&FakeBackend::new(), &rows, &other, &cfg(8), PrevSource::None, false, &Silent).unwrap_err();
    assert!(err.contains("was generated from another prompt"), "{err}");
    // `force` starts again.
    runner::run_video(&FakeBackend::new(), &rows, &other, &cfg(8), PrevSource::None, true, &Silent).unwrap();
    assert_eq!(read_out(&other).len(), 5);
}

#[test]
fn video_prev_gt_and_none() {
    let dir = tempfile::tempdir().unwrap();
    let rows = runner::read_rows(&video_dataset(dir.path()), None).unwrap();
    let backend = FakeBackend::new();
    let out = dir.path().join("gt.jsonl");
    runner::run_video(&backend, &rows, &out, &cfg(8), PrevSource::Gt, false, &Silent).unwrap();
    let gt_rows = read_out(&out);
    let a1 = gt_rows[0]["messages"][0]["content"].as_str().unwrap();
    assert!(a1.contains(&finalize_vl_prediction(&gt(0))), "{a1}");

    runner::run_video(&backend, &rows, &out, &cfg(8), PrevSource::None, false, &Silent).unwrap();
    for r in read_out(&out) {
        let prompt = r["messages"][0]["content"].as_str().unwrap();
        assert!(!prompt.contains("Previous frame scene graph"), "{prompt}");
    }
}

#[test]
fn frames_of_one_folder_run_as_one_video() {
    let dir = tempfile::tempdir().unwrap();
    for t in [10, 2, 0] {
        write_png(&dir.path().join(format!("clip/{t}.png")), t as u8);
    }
    std::fs::write(dir.path().join("clip/notes.txt"), "ignored").unwrap();
    let rows = runner::frame_rows(&dir.path().join("clip"), runner::FramesDataset::Ag).unwrap();
    let names: Vec<_> =
        rows.iter().map(|r| r.sample.as_ref().unwrap().images[0].file_name().unwrap().to_owned()).collect();
    assert_eq!(names, ["0.png", "2.png", "10.png"]);
    let backend = FakeBackend::new();
    let out = dir.path().join("clip.jsonl");
    let s = runner::run_video(&backend, &rows, &out, &cfg(4), PrevSource::Generated, false, &Silent).unwrap();
    assert_eq!((s.videos, s.waves, s.errors), (1, 3, 0));
    let out = read_out(&out);
    let second = out[1]["messages"][0]["content"].as_str().unwrap();
    assert!(second.contains("for reference:\n<answer>\n"), "AG wraps the previous graph: {second}");
    assert!(runner::frame_rows(dir.path(), runner::FramesDataset::Ag).unwrap_err().contains("no PNG or JPEG frames"));
}
