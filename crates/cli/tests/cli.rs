//! End-to-end tests of the `sgvlm` binary: exit codes, exact outputs, and clear one-line errors on bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn sgvlm(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgvlm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sgvlm");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name).display().to_string()
}

/// Writes `bytes` to `name` in `dir` (a test's own temporary folder, removed when the test ends).
fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

const GT: &str = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n\
                  rel[1]{subj,pred,obj}:\n1,riding,2\n</answer>\n";

#[test]
fn validate_ok_and_invalid() {
    let o = sgvlm(&["toon", "validate", &example("model_output_psg.txt")], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok: 7 objects, 5 relations\n");

    let o = sgvlm(&["toon", "validate", "--schema", "ag", &example("model_output_ag.txt")], None);
    assert_eq!(stdout(&o), "ok: 3 objects, 2 pairs, 8 atomic relations\n");

    let bad = GT.replace("600,470", "600,490");
    let o = sgvlm(&["toon", "validate", "-"], Some(bad.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "invalid: line 4: box [150, 200, 600, 490] is degenerate or outside the 640x480 canvas\n");

    let o = sgvlm(&["toon", "validate", "--height", "500", "-"], Some(bad.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "a larger canvas accepts the box");
}

#[test]
fn validate_jsonl_keeps_order_and_reports_bad_rows() {
    let input = format!(
        "{}\nnot json\n{{\"other\": 1}}\n{}\n",
        serde_json::json!({"completion": GT}),
        serde_json::json!({"completion": GT.replace("obj[2]", "obj[3]")})
    );
    let o = sgvlm(&["toon", "validate", "--jsonl", "-"], Some(input.as_bytes()));
    assert_eq!(o.status.code(), Some(0));
    let rows: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], serde_json::json!({"valid": true, "error": null}));
    assert_eq!(rows[1]["valid"], false);
    assert!(rows[1]["error"].as_str().unwrap().starts_with("<stdin>:2: not JSON"));
    assert_eq!(rows[2]["error"], "<stdin>:3: no field `completion`");
    assert_eq!(rows[3]["error"], "line 2: header declares 3 objects but 2 object rows follow");
    assert_eq!(stderr(&o), "<stdin>: 4 rows, 1 valid, 3 invalid (2 unreadable rows)\n");

    let o = sgvlm(&["toon", "validate", "--jsonl", &example("completions.jsonl")], None);
    let valid: Vec<bool> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(valid, [true, false, false, false]);
}

#[test]
fn convert_between_formats() {
    let o = sgvlm(&["toon", "convert", "--to", "json", "-"], Some(GT.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["objects"][1]["id"], "horse.2");
    assert_eq!(v["relationships"][0]["predicate"], "riding");

    let o = sgvlm(&["toon", "convert", "--to", "toon", "-"], Some(json.as_bytes()));
    assert_eq!(stdout(&o), GT, "JSON back to the paper layout is byte-exact");

    let o = sgvlm(&["toon", "convert", "--to", "toon-raw", "-"], Some(GT.as_bytes()));
    assert_eq!(
        stdout(&o),
        "obj[2]{id,name,x1,y1,x2,y2}:\n  1,person,10,10,200,400\n  2,horse,150,200,600,470\nrel[1]{subj,pred,obj}:\n  1,riding,2\n"
    );

    let o = sgvlm(&["toon", "convert", "--to", "toon-spec", "--schema", "ag", &example("model_output_ag.txt")], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("obj[3]{id,name,x1,y1,x2,y2}:\n  1,person,24,71,259,268\n"));

    let o = sgvlm(&["toon", "convert", "--to", "json", "--schema", "ag", &example("model_output_ag.txt")], None);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "error: R1-SGG JSON exists for the triplet schema only (use --to toon-spec)\n");
}

#[test]
fn show_prints_a_table_or_json() {
    let o = sgvlm(&["toon", "show", "-"], Some(GT.as_bytes()));
    assert_eq!(
        stdout(&o),
        "Objects (2)\n   id  name      x1   y1   x2   y2\n    1  person    10   10  200  400\n    2  horse    150  200  600  470\n\
         Relations (1)\n  person#1 --riding--> horse#2\n"
    );
    let o = sgvlm(&["toon", "show", "--json", "-"], Some(GT.as_bytes()));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["schema"], "triplet");
    assert_eq!(v["relations"][0]["pred"], "riding");
}

#[test]
fn demo_runs_on_embedded_examples() {
    let o = sgvlm(&["demo", "--examples"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("strict gate: ok: 7 objects, 5 relations"));
    assert!(out.contains("strict gate: ok: 3 objects, 2 pairs, 8 atomic relations"));
    assert!(out.contains("  person#1 --in-front-of--> tree-merged#5\n"));
}

#[test]
fn synthetic_demo_trains_with_the_given_batch_and_share() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = dir.to_str().unwrap();
    let common = ["demo", "--train", "8", "--test", "2", "--val", "2", "--image-size", "64x48", "--threads", "1"];
    // SFT only (share 1), batches of 4: a few steps in 9 seconds, every stage evaluated, the recipe recorded.
    let args: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--minutes", "0.15", "--sft-share", "1", "--batch-size", "4", "--out", out])
        .chain(["--grpo-confirm", "off", "--grpo-baseline", "greedy", "--grpo-steps", "small"])
        .chain(["--grpo-free-rollouts", "2"])
        .collect();
    let o = sgvlm(&args, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results.json")).unwrap();
    assert_eq!(r["recipe"]["batch_size"], 4);
    assert!(r["recipe"]["grpo_confirm_margin"].is_null(), "{}", r["recipe"]);
    assert_eq!(r["recipe"]["grpo_baseline"], "greedy");
    assert_eq!(r["recipe"]["grpo_free_rollouts"], 2, "{}", r["recipe"]);
    assert!(r["recipe"]["grpo_large"].is_null(), "{}", r["recipe"]);
    assert!(r["grpo"].is_null(), "no time was left for GRPO: {}", r["grpo"]);
    let sft = &r["sft"];
    assert!(sft["steps"].as_u64().unwrap() > 0);
    let stages: Vec<&str> = r["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["random init", "random init", "SFT", "SFT"]);
    assert!(dir.join("images/test_0001.png").is_file());
    // Every stage's predictions as rows `sgvlm eval` reads, with the strict gate's verdict.
    for stage in ["random_init_free", "random_init_constrained", "sft_free", "sft_constrained"] {
        let path = dir.join("report").join(stage).join("predictions.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2, "{stage}");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["line"], i + 1);
            let (answer, predict) = (row["content"].as_str().unwrap(), row["predict"].as_str().unwrap());
            assert!(answer.starts_with("<answer>\nobj["), "{answer}");
            let valid = sgvlm_graph::strict::is_valid(predict, sgvlm_graph::Schema::Triplet, &Default::default());
            assert_eq!(row["strict_error"].is_null(), valid, "{stage} row {}: {row}", i + 1);
        }
        let o = sgvlm(&["eval", "--input", path.to_str().unwrap()], None);
        assert_eq!(o.status.code(), Some(0), "{stage}: {}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(summary["num_samples"], 2, "{stage}: {summary}");
    }
    std::fs::remove_dir_all(&dir).ok();

    for (flag, value, message) in [
        ("--sft-share", "0", "--sft-share 0: expected a share"),
        ("--batch-size", "0", "--batch-size 0: expected"),
        ("--grpo-confirm", "some", "--grpo-confirm some: expected a number of standard errors or `off`"),
        ("--grpo-baseline", "mode", "--grpo-baseline mode: expected group_mean or greedy"),
        ("--grpo-steps", "huge", "--grpo-steps huge: expected auto, small or large"),
        ("--grpo-free-rollouts", "9", "--grpo-free-rollouts 9: expected at most the 8 rollouts of a prompt"),
        ("--grpo-kl-cap", "0", "--grpo-kl-cap 0: expected a positive number or `off`"),
        ("--grpo-forced-below", "2", "--grpo-forced-below 2: expected a share in (0, 1) or `off`"),
        ("--grpo-grammar", "inf", "--grpo-grammar inf: expected a number ≥ 0"),
    ] {
        let args: Vec<&str> = common.iter().copied().chain([flag, value, "--out", out]).collect();
        let o = sgvlm(&args, None);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&o).contains(message), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
}

#[test]
fn training_benchmarks_print_their_figures_as_json() {
    let o = sgvlm(&["train", "bench", "--batch", "2", "--len", "24", "--answer", "8", "--steps", "1"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!((r["batch"].as_u64(), r["len"].as_u64(), r["dtype"].as_str()), (Some(2), Some(24), Some("f32")));
    assert!(r["s_per_step"].as_f64().unwrap() > 0.0);

    let args = ["train", "bench-grpo", "--prompts", "2", "--group", "3", "--prompt-len", "20", "--new-tokens", "6"];
    let o = sgvlm(&args, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!((r["prompts"].as_u64(), r["group"].as_u64()), (Some(2), Some(3)));
    assert_eq!(r["completion_len"].as_f64(), Some(6.0));
    let (rollout, update, step) =
        (r["rollout_s"].as_f64().unwrap(), r["update_s"].as_f64().unwrap(), r["s_per_step"].as_f64().unwrap());
    assert!(rollout > 0.0 && update > 0.0 && (rollout + update - step).abs() < 1e-6);

    let o = sgvlm(&["train", "bench-grpo", "--group", "0"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be at least 1"), "{}", stderr(&o));
}

/// `sgvlm train grpo` end to end on data in the real formats (`data synth` + `data prepare`) and a tiny random model
/// (`model init`): rollouts from the native engine, free or constrained as `[rollout]` says.
#[test]
fn grpo_trains_from_a_config_with_engine_rollouts() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let o = sgvlm(&["data", "synth", "--out", &p("s"), "--images", "4", "--videos", "1", "--frames", "2"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sgvlm(&["data", "prepare", "--dataset", "psg", "--root", &p("s/psg"), "--out", &p("o")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sgvlm(&["model", "init", "--preset", "tiny", "--out", &p("m")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut objects = Vec::new();
    for constrain in ["psg", "none"] {
        let config = format!(
            "out = \"runs/{constrain}\"\n[model]\ndir = \"m\"\n[data]\ntrain = \"o/grpo/train.jsonl\"\n\
             val = \"o/grpo/eval.jsonl\"\n[grpo]\ngroup = 2\nprompts_per_step = 2\nmax_new_tokens = 96\nsteps = 2\n\
             eval_every = 1\nmicro_batch = 2\n[rollout]\nbatch = 4\nconstrain = \"{constrain}\"\n"
        );
        std::fs::write(dir.path().join("run.toml"), config).unwrap();
        let o = sgvlm(&["train", "grpo", "--config", &p("run.toml")], None);
        assert!(o.status.success(), "{constrain}: {}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(summary["steps"], 2, "{summary}");
        let run = dir.path().join("runs").join(constrain);
        assert!(run.join("last/model.safetensors").exists() && run.join("best/model.safetensors").exists());
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let train: Vec<serde_json::Value> = metrics
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["kind"] == "train")
            .collect();
        assert_eq!(train.len(), 2);
        objects.push(train[0]["functions"]["sgg_diag_num_pred_objs"].as_f64().unwrap());
    }
    // Constrained rollouts of a random model start their answer with object rows; free ones write noise.
    assert!(objects[0] >= 1.0 && objects[1] == 0.0, "objects parsed per rollout (psg, none): {objects:?}");
}

#[test]
fn bad_inputs_give_one_clear_line() {
    let o = sgvlm(&["toon", "validate", "/nonexistent/file.txt"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with("error: Failed to read `/nonexistent/file.txt`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let dir = tempfile::tempdir().unwrap();
    let p = temp_file(&dir, "latin1.txt", b"<answer>\n\xe9\n</answer>");
    let o = sgvlm(&["toon", "validate", p.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not valid UTF-8 (first bad byte at offset 9)"), "{}", stderr(&o));

    let o = sgvlm(
        &["toon", "convert", "--to", "toon", "-"],
        Some(b"{\"objects\": [{\"id\": \"a.1\", \"bbox\": [1, 2]}], \"relationships\": []}"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("panicked"));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    let o = sgvlm(&["toon", "validate", "-"], Some(&[0xff, 0xfe, 0x00]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reward_scores_json_lines_in_order() {
    let partial = "<answer>\nobj[1]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\nrel[0]{subj,pred,obj}:\n</answer>";
    let input = format!(
        "{}\n{}\nbroken\n{}\n",
        serde_json::json!({"completion": GT, "solution": GT}),
        serde_json::json!({"completion": [{"role": "assistant", "content": partial}], "solution": GT}),
        serde_json::json!({"completion": "no graph", "solution": GT}),
    );
    let o = sgvlm(&["reward", "--input", "-", "--total"], Some(input.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["total"], 9.5);
    assert_eq!(rows[0]["sgg_edge_f1_reward"], 2.0);
    assert_eq!(rows[1]["sgg_format_reward"], 0.5);
    assert_eq!(rows[1]["sgg_node_acc_reward"], 0.75, "one of two GT objects matched: 1.5 / 2");
    assert_eq!(rows[1]["sgg_diag_frac_no_rel"], 1.0);
    assert_eq!(rows[2]["error"], "<stdin>:3: not JSON: expected value at line 1 column 1");
    assert_eq!(rows[3]["sgg_format_reward"], 0.0);
    assert_eq!(rows[3]["sgg_diag_has_answer_tags"], 0.0);
    assert!(stderr(&o).ends_with("<stdin>: scored 4 rows (1 unreadable)\n"), "{}", stderr(&o));

    let o = sgvlm(&["reward", "--input", "-"], Some(input.as_bytes()));
    assert!(stdout(&o).lines().next().unwrap().find("total").is_none());

    // `--protocol sound`: the invalid completion scores below every valid one instead of 0.
    let o = sgvlm(&["reward", "--input", "-", "--total", "--protocol", "sound"], Some(input.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sound: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        (sound[0]["total"].as_f64(), sound[1]["total"].as_f64()),
        (rows[0]["total"].as_f64(), rows[1]["total"].as_f64())
    );
    assert_eq!(sound[3]["sgg_format_reward"], -0.5);
    assert_eq!(sound[3]["total"], -2.5);
    let o = Command::new(env!("CARGO_BIN_EXE_sgvlm"))
        .args(["reward", "--input", "-", "--total"])
        .env("REWARD_PROTOCOL", "sound")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        stdout(&o).lines().nth(3).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["total"].clone()),
        Some((-2.5).into())
    );
    let mut cmd_env = Command::new(env!("CARGO_BIN_EXE_sgvlm"));
    let o =
        cmd_env.args(["reward", "--input", "-"]).env("EDGE_IOU_THRESH", "nope").stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("EDGE_IOU_THRESH: expected a finite number"), "{}", stderr(&o));
}

#[test]
fn data_synth_then_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let (synth, out) = (dir.path().join("s"), dir.path().join("o"));
    let s = synth.to_str().unwrap();
    let o =
        sgvlm(&["data", "synth", "--out", s, "--images", "4", "--videos", "2", "--frames", "3", "--seed", "3"], None);
    assert_eq!(stdout(&o), "{\"psg_images\":4,\"pvsg_videos\":2,\"pvsg_frames\":6,\"ag_videos\":2,\"ag_frames\":6}\n");
    let root = synth.join("ag");
    let args = ["data", "prepare", "--dataset", "ag", "--root", root.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = sgvlm(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["train"], serde_json::json!({"before": 6, "removed": 0, "kept": 6}));
    assert!(stderr(&o).starts_with("ag          before   removed      kept\ntrain            6         0         6\n"));
    // A second run resumes every unit.
    let again: serde_json::Value = serde_json::from_str(&stdout(&sgvlm(&args, None))).unwrap();
    assert_eq!(again["resumed"], 6);
}

#[test]
fn model_init_writes_a_loadable_directory() {
    use candle_core::{DType, Device, Tensor};
    use sgvlm_model::{checkpoint, Config, ModelInput, Qwen35};
    let dir = std::env::temp_dir().join(format!("sgvlm-cli-model-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = sgvlm(
        &["model", "init", "--preset", "tiny", "--seed", "5", "--dtype", "f32", "--out", &dir.display().to_string()],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("85 tensors, 394960 parameters, seed 5"), "{}", stderr(&o));
    for f in [
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let loaded = Qwen35::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    let cfg = Config::tiny();
    let fresh = Qwen35::from_tensors(
        &cfg,
        checkpoint::random_weights(&cfg, 5, &Device::Cpu).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let ids = Tensor::new(&[[1u32, 2, 3, 4]], &Device::Cpu).unwrap();
    let input = ModelInput { input_ids: Some(&ids), ..Default::default() };
    let a = loaded.forward(&input, None).unwrap().logits;
    let b = fresh.forward(&input, None).unwrap().logits;
    let d: f32 = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    assert_eq!(d, 0.0);
    let _ = std::fs::remove_dir_all(&dir);

    let o = sgvlm(&["model", "init", "--preset", "nope", "--out", &dir.display().to_string()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`nope` is neither a preset"), "{}", stderr(&o));
}
