//! The GPU scripts' decisions, run here with stand-in binaries: `scripts/gpu_bench.sh` and `scripts/gpu_demo.sh` run
//! on a borrowed GPU machine with minutes to spare, so what they do when a kernel of ours faults or is off the CPU's
//! values (turn that family off, check again, run every later step without it) is tested before it is needed.
//! The stand-ins are shell scripts named like the real binaries: `cuda_check` prints its JSON lines or "faults"
//! where the test says, `sgvlm` records each call with the switches it was started with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cuda_verdict` of scripts/cuda_verdicts.sh on a cuda_check output.
fn verdict(lines: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.json");
    fs::write(&file, lines.join("\n")).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". {}/scripts/cuda_verdicts.sh; cuda_verdict {}", repo().display(), file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn line(check: &str, ok: bool) -> String {
    // serde_json's compact form with sorted keys, as cuda_check prints it.
    format!(r#"{{"check":"{check}","ok":{ok},"rel_err":0.0,"seconds":0.1,"tolerance":0.0001}}"#)
}

/// cuda_check's lines up to (not including) line `stop` of the full run, with the named checks failing.
fn check_output(stop: usize, failing: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for dk in [32, 128] {
        for part in
            ["forward", "grad_dq", "grad_dk", "grad_dv", "grad_dg", "grad_dbeta", "prefill_out", "prefill_state"]
        {
            names.push(format!("delta_rule_{part}_dk{dk}"));
        }
    }
    let kernels =
        ["normalize_rms", "normalize_l2", "rms_norm_1p", "softmax_causal", "softmax", "silu_mul", "conv_silu"];
    for k in kernels.iter().chain(&["delta_pack", "rope"]) {
        names.push(format!("kernel_{k}"));
    }
    names.extend(["forward_F32", "cached_decode_F32", "gradients_F32 (3 params)"].map(String::from));
    names.push("summary".into());
    names.iter().take(stop).map(|n| line(n, !failing.iter().any(|f| n.starts_with(f)))).collect()
}

const DELTA: &str = "SGVLM_CUDA_DELTA_RULE=0";
const KERNELS: &str = "SGVLM_CUDA_KERNELS=0";
const BOTH: &str = "SGVLM_CUDA_DELTA_RULE=0 SGVLM_CUDA_KERNELS=0";

#[test]
fn cuda_verdict_names_the_family_that_failed_or_stopped_the_check() {
    let all = check_output(usize::MAX, &[]).len();
    assert_eq!(verdict(&check_output(all, &[])), "", "everything passed");
    assert_eq!(verdict(&check_output(all, &["delta_rule_grad_dk_dk128"])), DELTA);
    assert_eq!(verdict(&check_output(all, &["kernel_conv_silu"])), KERNELS);
    assert_eq!(verdict(&check_output(all, &["delta_rule_prefill", "kernel_softmax"])), BOTH);
    // A model check failing alone says nothing about a family of ours.
    assert_eq!(verdict(&check_output(all, &["forward_F32"])), "");
    // Stopped (a fault) inside a family: that family; after both, in the model's checks: both.
    assert_eq!(verdict(&check_output(0, &[])), BOTH, "no output at all");
    assert_eq!(verdict(&check_output(5, &[])), DELTA);
    assert_eq!(verdict(&check_output(16, &[])), KERNELS, "every delta-rule line, then nothing");
    assert_eq!(verdict(&check_output(19, &[])), KERNELS);
    assert_eq!(verdict(&check_output(24, &[])), KERNELS, "one kernel line short");
    assert_eq!(verdict(&check_output(26, &[])), BOTH, "stopped in the model's checks");
    assert_eq!(verdict(&check_output(all - 1, &[])), BOTH, "all checks but no summary");
    assert_eq!(verdict(&check_output(5, &["delta_rule_forward"])), DELTA);
}

/// A stand-in `cuda_check`: the full output of [`check_output`], where the delta-rule kernels fault (the process
/// ends after 5 lines) and `kernel_silu_mul` is off, each unless its family is switched off.
const FAKE_CHECK: &str = r#"#!/usr/bin/env bash
fault=0; bad=""
[ "${SGVLM_CUDA_DELTA_RULE:-1}" = 0 ] || fault=1
[ "${SGVLM_CUDA_KERNELS:-1}" = 0 ] || bad=kernel_silu_mul
echo "cuda_check ${SGVLM_CUDA_DELTA_RULE:-on} ${SGVLM_CUDA_KERNELS:-on}" >>"$CALLS"
n=0
while IFS= read -r l; do
    n=$((n + 1))
    if [ "$fault" = 1 ] && [ "$n" -gt 5 ]; then echo "CUDA_ERROR_ILLEGAL_ADDRESS" >&2; exit 134; fi
    if [ -n "$bad" ] && [[ "$l" == *"\"$bad\""* ]]; then l=${l/\"ok\":true/\"ok\":false}; fi
    echo "$l"
done <"$FULL"
"#;

/// A stand-in `sgvlm`: the help texts the scripts probe, a model folder for `model init`, a benchmark line whose
/// token digest differs between `--decode graph` and the rest when GRAPH_BAD=1, and one line per call in $CALLS.
const FAKE_SGVLM: &str = r#"#!/usr/bin/env bash
echo "$* | fused=${SGVLM_FUSED:-} delta=${SGVLM_CUDA_DELTA_RULE:-} kernels=${SGVLM_CUDA_KERNELS:-} decode=${SGVLM_DECODE:-}" >>"$CALLS"
case "$*" in
    *--help*) echo "  bench       benchmarks"; echo "  bench-grpo  one step"; echo "  --decode <MODE>  --dtype <D>"; exit 0 ;;
    "model init"*) out=""; prev=""; for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
        mkdir -p "$out" && echo "{}" >"$out/config.json"; exit 0 ;;
    demo*) echo '{"sgg": 0.1}'; exit 0 ;;
esac
digest=same
[ "${GRAPH_BAD:-0}" = 1 ] && [[ "$*" == *"--decode graph"* ]] && digest=other
echo "{\"batch\": 1, \"tokens_digest\": \"$digest\", \"graph_steps\": 3}"
"#;

struct Stage {
    dir: tempfile::TempDir,
}

impl Stage {
    /// A working tree with the scripts, the stand-in binaries in dist/cuda, and the full cuda_check output.
    fn new() -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("scripts")).unwrap();
        fs::create_dir_all(root.join("dist/cuda")).unwrap();
        for s in ["gpu_bench.sh", "gpu_demo.sh", "cuda_verdicts.sh"] {
            fs::copy(repo().join("scripts").join(s), root.join("scripts").join(s)).unwrap();
        }
        for (name, body) in [("cuda_check", FAKE_CHECK), ("sgvlm", FAKE_SGVLM)] {
            let path = root.join("dist/cuda").join(name);
            fs::write(&path, body).unwrap();
            Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        }
        fs::write(root.join("full.json"), check_output(usize::MAX, &[]).join("\n") + "\n").unwrap();
        fs::create_dir_all(root.join("state")).unwrap();
        Stage { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn run(&self, script: &str, env: &[(&str, &str)]) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(format!("scripts/{script}"))
            .current_dir(self.dir.path())
            .env("OUT", self.path("out"))
            .env("GPU_STATE", self.path("state"))
            .env("MODEL_DIR", self.path("model"))
            .env("CALLS", self.path("calls.log"))
            .env("FULL", self.path("full.json"))
            .env("SGVLM_HF_BENCH", "-")
            .env("BUDGET_S", "300")
            .env("MINUTES", "0.1")
            .env_remove("SGVLM_CUDA_DELTA_RULE")
            .env_remove("SGVLM_CUDA_KERNELS")
            .env_remove("SGVLM_DECODE")
            .env_remove("SGVLM_FUSED")
            .env_remove("EXTRA");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() || script == "gpu_bench.sh", "{script} failed:\n{text}");
        text
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.path("calls.log")).unwrap_or_default().lines().map(String::from).collect()
    }

    fn summary_steps(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.path("out/summary.tsv")).unwrap();
        text.lines()
            .map(|l| {
                let mut f = l.split('\t');
                (f.next().unwrap().to_string(), f.next().unwrap_or("").to_string())
            })
            .collect()
    }
}

#[test]
fn gpu_bench_turns_off_a_faulting_family_then_an_inexact_one_and_runs_every_later_step_without_them() {
    let stage = Stage::new();
    let log = stage.run("gpu_bench.sh", &[("GRAPH_BAD", "1")]);
    let calls = stage.calls();
    let checks: Vec<&String> = calls.iter().filter(|c| c.starts_with("cuda_check")).collect();
    // The delta rule faults: off, check again; then silu_mul is off the CPU's values: kernels off, again; clean.
    assert_eq!(checks, ["cuda_check on on", "cuda_check 0 on", "cuda_check 0 0"], "{log}");
    let steps = stage.summary_steps();
    assert!(steps.contains(&("switches".into(), BOTH.into())), "{steps:?}");
    assert_eq!(fs::read_to_string(stage.path("state/sgvlm-cuda-switches")).unwrap().trim(), BOTH);
    // The graph check saw different tokens: every later step decodes op by op, and the *_eager steps are not run.
    let graph = fs::read_to_string(stage.path("state/sgvlm-graph-check.json")).unwrap();
    assert!(graph.contains("\"ok\": false"), "{graph}");
    assert!(!steps.iter().any(|(s, _)| s.starts_with("engine_") && s.ends_with("_eager")), "{steps:?}");
    let engine: Vec<&String> = calls.iter().filter(|c| c.contains("--batch 64 --text-tokens 700")).collect();
    assert!(!engine.is_empty(), "{calls:?}");
    for c in &engine {
        assert!(c.ends_with("delta=0 kernels=0 decode=eager"), "{c}");
    }
    let train: Vec<&String> = calls.iter().filter(|c| c.starts_with("train bench --model")).collect();
    assert!(!train.is_empty(), "{calls:?}");
    assert!(train.iter().all(|c| c.contains("delta=0 kernels=0")), "{train:?}");

    // gpu_demo.sh on the same machine afterwards takes the same switches, and a switch its caller set wins.
    fs::remove_file(stage.path("calls.log")).unwrap();
    stage.run("gpu_demo.sh", &[("SGVLM_CUDA_KERNELS", "1")]);
    let demo: Vec<String> = stage.calls().into_iter().filter(|c| c.starts_with("demo")).collect();
    assert_eq!(demo.len(), 1, "{demo:?}");
    assert!(demo[0].ends_with("delta=0 kernels=1 decode=eager"), "{}", demo[0]);
}

#[test]
fn gpu_bench_keeps_the_callers_switches_and_gpu_demo_checks_for_itself() {
    let stage = Stage::new();
    let log = stage.run("gpu_bench.sh", &[("SGVLM_CUDA_DELTA_RULE", "0"), ("SGVLM_CUDA_KERNELS", "0")]);
    // The caller's switches reach cuda_check (the stand-in passes with both off) and nothing more is turned off.
    let calls = stage.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("cuda_check")).count(), 1, "{log}");
    let steps = stage.summary_steps();
    assert!(steps.contains(&("switches".into(), "none".into())), "{steps:?}");
    // Graphs of fused steps (the default) and of op-by-op steps (SGVLM_FUSED=0) at both batches; eager steps only
    // with EXTRA=1.
    for step in ["engine_b1", "engine_b64", "engine_b1_unfused", "engine_b64_unfused"] {
        assert!(steps.iter().any(|(s, _)| s == step), "{step} missing: {steps:?}");
    }
    assert!(!steps.iter().any(|(s, _)| s == "engine_b64_eager"), "{steps:?}");
    let unfused: Vec<&String> =
        calls.iter().filter(|c| c.starts_with("bench generate") && c.contains("fused=0")).collect();
    assert_eq!(unfused.len(), 2, "{calls:?}");

    // Without a verdict file, gpu_demo.sh runs cuda_check itself: here the delta rule faults, so the demo runs
    // with that family off (one check, no second round: the demo has no time for it).
    let fresh = Stage::new();
    fresh.run("gpu_demo.sh", &[]);
    let calls = fresh.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("cuda_check")).count(), 1, "{calls:?}");
    let demo = calls.iter().find(|c| c.starts_with("demo")).unwrap();
    assert!(demo.ends_with("delta=0 kernels= decode="), "{demo}");
}
