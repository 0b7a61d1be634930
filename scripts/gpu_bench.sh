#!/usr/bin/env bash
# GPU benchmark, run ON the GPU machine (H100/H200: no Rust, no network; python3 with torch + transformers) from the
# repository root, with dist/cuda/{sgvlm,cuda_check} built beforehand by scripts/build_cuda.sh on any machine.
#
# Steps (each under its own `timeout`, all inside one overall budget; a failed step is recorded and the rest go on):
#   1. cuda_check      our kernels vs the CPU, the delta rule's kernels timed alone at the benchmarks' shapes
#      (`time` lines), then the tiny model on CUDA (f32, bf16) vs CPU f32: forward, cached decode, gradients;
#      graph_eager/graph_graph: the tiny f32 model decoding on CUDA op by op and as CUDA graphs (batch 1 and 8); the
#      two runs' token digests must be equal (graph_check prints whether they are)
#   2. init            sgvlm model init --preset qwen3.5-0.8b (random weights, bf16 file)
#   3. engine_b1/b64   sgvlm bench generate --batch 1 / 64, 700 text tokens + a 640x480 image, 256 new tokens
#                      (fused decode steps as CUDA graphs, the default on a GPU); engine_b1_unfused/b64_unfused: the
#                      graphs of op-by-op steps (SGVLM_FUSED=0); engine_b1_eager/b64_eager (EXTRA=1): op by op
#                      (`--decode eager`, the path measured before graphs)
#   4. hf              the transformers baseline (shared/bench/hf_baseline_bench.py) with the same shapes
#   5. train_bf16, hf_train, grpo
#                      sgvlm train bench with bf16 compute (and the f32 step first with TRAIN_F32=1),
#                      hf_train_baseline.py, and one GRPO step (sgvlm train bench-grpo), only if the binary has them
#   6. engine_b64_chunked / train_bf16_chunked: the prefill and the training step with the gated delta rule as the
#      chunked candle form (SGVLM_CUDA_DELTA_RULE=0), for the effect of its kernels; engine_b1_composed (EXTRA=1):
#      batch 1 with the DeltaNet decode step composed; profile_b1/b64/profile_train: SGVLM_PROFILE=1, the time per
#      part of the model
# GPU memory is sampled with nvidia-smi during each step (peak MiB used on the card, all processes).
#
# dist/ is git-ignored: a tool that copies the working tree to the GPU machine must be told to carry `dist/cuda`
# (or the smaller gzipped `dist/cuda-gz`, unpacked here) and `dist/bench`.
#
# Usage: scripts/gpu_bench.sh        Env: OUT (logs; default /tmp/sgvlm-gpu-bench), BUDGET_S (default 560),
#        SGVLM_HF_BENCH (path of hf_baseline_bench.py when not found; `-`: skip transformers), MODEL_DIR (default
#        /tmp/sgvlm-q08), GPU_STATE (where the verdicts for scripts/gpu_demo.sh go; default /tmp),
#        TRAIN_F32=1 (also time the f32 training step), GRPO_PROMPTS (prompts of the GRPO step; 4).
# Output: one JSON line per measurement as the steps print them, logs under $OUT, and a summary table last.
set -u

START=$(date +%s)
BUDGET_S="${BUDGET_S:-560}"
OUT="${OUT:-/tmp/sgvlm-gpu-bench}"
MODEL_DIR="${MODEL_DIR:-/tmp/sgvlm-q08}"
GPU_STATE="${GPU_STATE:-/tmp}"
BIN=dist/cuda/sgvlm
CHECK=dist/cuda/cuda_check
# The call may carry the gzipped binaries only (dist/cuda-gz, written by scripts/build_cuda.sh): unpack them.
for b in sgvlm cuda_check; do
    if [ ! -x "dist/cuda/$b" ] && [ -f "dist/cuda-gz/$b.gz" ]; then
        mkdir -p dist/cuda && gunzip -c "dist/cuda-gz/$b.gz" >"dist/cuda/$b" && chmod +x "dist/cuda/$b"
    fi
done
mkdir -p "$OUT"
SUMMARY="$OUT/summary.tsv"
: >"$SUMMARY"

# cuBLAS, cuRAND and cudart 13 of the GPU machine (the binary links them by soname).
for d in /usr/local/cuda-13.0/targets/x86_64-linux/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done

say() { printf '[gpu_bench +%ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }

# run_step NAME MAX_SECONDS CMD...: runs CMD under timeout (capped by the time left), tees its output to
# $OUT/NAME.log, samples GPU memory meanwhile, and appends "NAME rc seconds peak_mib" to the summary.
run_step() {
    local name=$1 max=$2
    shift 2
    local left=$((BUDGET_S - ($(date +%s) - START)))
    if [ "$left" -lt 20 ]; then
        say "$name: skipped (budget of ${BUDGET_S}s spent)"
        printf '%s\tskipped\t0\t-\n' "$name" >>"$SUMMARY"
        return 1
    fi
    local limit=$((max < left ? max : left))
    say "$name (timeout ${limit}s): $*"
    local memlog="$OUT/$name.gpumem"
    local sampler=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 >"$memlog" 2>/dev/null &
        sampler=$!
    fi
    local t0 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" > >(tee "$OUT/$name.log") 2>"$OUT/$name.err"
    rc=$?
    local secs
    secs=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
    local peak="-"
    [ -s "$memlog" ] && peak=$(sort -n "$memlog" | tail -n 1)
    [ "$rc" -ne 0 ] && { say "$name: exit $rc (timeout gives 124); stderr tail:"; tail -n 5 "$OUT/$name.err" >&2; }
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$peak" >>"$SUMMARY"
    return "$rc"
}

# Where the transformers baseline lives: the device gets a copy of the repository's working tree, with shared/
# inside it only when the checkout has one, so look in both places (and at an explicit path).
HF_BENCH=""
[ "${SGVLM_HF_BENCH:-}" = - ] || for c in "${SGVLM_HF_BENCH:-}" dist/bench/hf_baseline_bench.py shared/bench/hf_baseline_bench.py ../shared/bench/hf_baseline_bench.py \
    /work/shared/bench/hf_baseline_bench.py; do
    if [ -n "$c" ] && [ -f "$c" ]; then HF_BENCH=$c; break; fi
done
HF_TRAIN="${HF_BENCH%hf_baseline_bench.py}hf_train_baseline.py"
say "repository root: $(pwd); transformers baseline: ${HF_BENCH:-not found (set SGVLM_HF_BENCH)}"

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" 2>&1
    ls -l "$BIN" "$CHECK" 2>&1
} | tee "$OUT/machine.txt" >&2

if [ ! -x "$BIN" ]; then
    say "missing $BIN: build it with scripts/build_cuda.sh first"
fi

# 1. The CUDA path, cheaply. A kernel family cuda_check finds off the CPU's values, or that faults, is switched off
# (scripts/cuda_verdicts.sh) and cuda_check runs again without it, so every step after runs on what works here
# (the summary's `switches` row says what was turned off).
. scripts/cuda_verdicts.sh
SWITCHES=""
if [ -x "$CHECK" ]; then
    run_step cuda_check 120 "$CHECK"
    for attempt in 2 3; do
        verdict=$(switch_union "$SWITCHES" "$(cuda_verdict "$OUT/cuda_check.log")")
        [ "$verdict" = "$SWITCHES" ] && break
        SWITCHES=$verdict
        say "cuda_check: turning off $SWITCHES, checking again"
        cp "$OUT/cuda_check.log" "$OUT/cuda_check_$((attempt - 1)).log"
        # shellcheck disable=SC2086 # words like SGVLM_CUDA_KERNELS=0
        run_step cuda_check 120 env $SWITCHES "$CHECK"
    done
    # shellcheck disable=SC2086
    [ -n "$SWITCHES" ] && export $SWITCHES
    printf 'switches\t%s\t0\t-\n' "${SWITCHES:-none}" >>"$SUMMARY"
    echo "$SWITCHES" >"$GPU_STATE/sgvlm-cuda-switches" # read by scripts/gpu_demo.sh
    cp "$OUT/cuda_check.log" "$GPU_STATE/sgvlm-cuda-check.json" 2>/dev/null
else
    say "missing $CHECK"; printf 'cuda_check\tmissing\t0\t-\n' >>"$SUMMARY"
fi

# Whether the binary has decode modes (`--decode`, seventeenth session): EAGER asks for op-by-op steps where it does.
EAGER=()
"$BIN" bench generate --help 2>/dev/null | grep -q -- '--decode' && EAGER=(--decode eager)

# CUDA graphs must decode what the op-by-op steps decode: the tiny model in f32, both ways, same token digests.
TINY_DIR="$GPU_STATE/sgvlm-tiny-f32"
if [ ${#EAGER[@]} -gt 0 ]; then
    run_step tiny_init 60 "$BIN" model init --preset tiny --dtype f32 --out "$TINY_DIR"
    for m in eager graph; do
        run_step "graph_$m" 90 "$BIN" bench generate --model "$TINY_DIR" --batch 1,8 --text-tokens 60 \
            --new-tokens 64 --image-size 64x48 --device cuda --decode "$m"
    done
    python3 - "$OUT" <<'EOF' | tee "$OUT/graph_check.log"
import json, os, sys
def rows(name):
    try:
        return [json.loads(l) for l in open(os.path.join(sys.argv[1], name + ".log")) if l.startswith("{")]
    except OSError:
        return []
eager, graph = rows("graph_eager"), rows("graph_graph")
same = bool(eager) and [r["tokens_digest"] for r in eager] == [r["tokens_digest"] for r in graph]
print(json.dumps({"check": "graph_tokens_equal_eager", "ok": same,
                  "graph_steps": [r.get("graph_steps") for r in graph],
                  "error": next((r["graph_error"] for r in graph if r.get("graph_error")), None)}))
EOF
    printf 'graph_check\t0\t0\t-\n' >>"$SUMMARY"
    cp "$OUT/graph_check.log" "$GPU_STATE/sgvlm-graph-check.json" 2>/dev/null # read by scripts/gpu_demo.sh
    # Graphs that do not decode what the op-by-op steps decode are not measured: every step after decodes op by op.
    if [ -n "$(graph_verdict "$OUT/graph_check.log")" ]; then
        say "CUDA graphs off on this machine: decoding op by op (SGVLM_DECODE=eager); the *_eager steps are skipped"
        export SGVLM_DECODE=eager
        EAGER=()
    fi
fi

# 2. The 0.8B shape on random weights.
if [ -f "$MODEL_DIR/config.json" ]; then
    say "reusing $MODEL_DIR"
else
    # The real 248k-token vocabulary (tools/make_qwen35_tokenizer.py, carried gzipped as dist/bench/tokenizer.json.gz):
    # `model init` writes tokenizer files only for the tiny vocabulary unless given one.
    TOK_ARGS=()
    if [ -f dist/bench/tokenizer.json.gz ]; then
        gunzip -c dist/bench/tokenizer.json.gz >/tmp/sgvlm-tokenizer.json && TOK_ARGS=(--tokenizer /tmp/sgvlm-tokenizer.json)
    fi
    run_step init 150 "$BIN" model init --preset qwen3.5-0.8b --out "$MODEL_DIR" "${TOK_ARGS[@]}"
fi

# 3. The engine at batch 1 and 64 (each in its own process for its own memory peak), as CUDA graphs of fused steps
# (the default), as graphs of the op-by-op steps (SGVLM_FUSED=0: the third run's path), and with EXTRA=1 op by op.
for b in 1 64; do
    run_step "engine_b$b" 200 "$BIN" bench generate --model "$MODEL_DIR" --batch "$b" --text-tokens 700 \
        --new-tokens 256 --device cuda
done
for b in 1 64; do
    run_step "engine_b${b}_unfused" 200 env SGVLM_FUSED=0 "$BIN" bench generate --model "$MODEL_DIR" --batch "$b" \
        --text-tokens 700 --new-tokens 256 --device cuda
done
if [ ${#EAGER[@]} -gt 0 ] && [ "${EXTRA:-0}" = 1 ]; then
    for b in 1 64; do
        run_step "engine_b${b}_eager" 200 "$BIN" bench generate --model "$MODEL_DIR" --batch "$b" --text-tokens 700 \
            --new-tokens 256 --device cuda "${EAGER[@]}"
    done
fi

# 4. transformers, same GPU, same shapes.
if [ -n "$HF_BENCH" ]; then
    run_step hf 240 python3 "$HF_BENCH" --batches 1,64 --new 256 --text 700
else
    printf 'hf\tnot found\t0\t-\n' >>"$SUMMARY"
fi

# 5. Training step (`sgvlm train bench`; vision tower frozen in both, as in the recipes).
if "$BIN" train --help 2>/dev/null | grep -qE '^\s+bench\b'; then
    # The f32 step was measured on 2026-11-26 (2.89 s/step, 114 GB on an H200): only with TRAIN_F32=1.
    if [ "${TRAIN_F32:-0}" = 1 ]; then
        run_step train 150 "$BIN" train bench --model "$MODEL_DIR" --batch 4 --len 1300 --answer 256 --steps 3 \
            --device cuda
    fi
    # bf16 compute over f32 master weights (`--dtype`; skipped with a binary older than it).
    if "$BIN" train bench --help 2>/dev/null | grep -q -- '--dtype'; then
        run_step train_bf16 150 "$BIN" train bench --model "$MODEL_DIR" --batch 4 --len 1300 --answer 256 --steps 3 \
            --device cuda --dtype bf16
    fi
    [ -f "$HF_TRAIN" ] && run_step hf_train 150 python3 "$HF_TRAIN" --batch 4 --len 1300 --answer 256 --steps 5 \
        --freeze-vision
    # One GRPO step (rollouts, rewards, reference and policy passes, update), bf16 compute: GRPO_PROMPTS prompts
    # (default 4; the recipe's 24 would take minutes) × 12 rollouts of 256 tokens after a ~1,000-token prompt,
    # 4 completions per backward pass (batch 4 × 1,300 tokens took ~100 GB in the SFT bench).
    if "$BIN" train --help 2>/dev/null | grep -qE '^\s+bench-grpo\b'; then
        run_step grpo 150 "$BIN" train bench-grpo --model "$MODEL_DIR" --prompts "${GRPO_PROMPTS:-4}" --group 12 \
            --prompt-len 1000 --new-tokens 256 --micro-batch 4 --warmup 0 --steps 1 --device cuda --dtype bf16
    fi
else
    say "sgvlm train bench: not in this binary, skipped"
fi

# 6. What the kernels of ours save, and where the time goes. The prefill with the gated delta rule as the chunked
# candle form (SGVLM_CUDA_DELTA_RULE=0; 8 new tokens: read prefill_s), against engine_b64's prefill_s. With EXTRA=1,
# batch 1 op by op with the DeltaNet decode step composed (SGVLM_CUDA_DELTA_DECODE=0; measured on 2026-11-27).
run_step engine_b64_chunked 120 env SGVLM_CUDA_DELTA_RULE=0 "$BIN" bench generate --model "$MODEL_DIR" --batch 64 \
    --text-tokens 700 --new-tokens 8 --device cuda
if [ "${EXTRA:-0}" = 1 ]; then
    run_step engine_b1_composed 200 env SGVLM_CUDA_DELTA_DECODE=0 "$BIN" bench generate --model "$MODEL_DIR" \
        --batch 1 --text-tokens 700 --new-tokens 256 --device cuda "${EAGER[@]}"
fi

# Where a decode step's time goes (SGVLM_PROFILE=1: every part waits for the device at its ends, so the run is slower;
# read the shares), at batch 1 and 64 with 64 new tokens.
for b in 1 64; do
    run_step "profile_b$b" 120 env SGVLM_PROFILE=1 "$BIN" bench generate --model "$MODEL_DIR" --batch "$b" \
        --text-tokens 700 --new-tokens 64 --device cuda "${EAGER[@]}"
done

# The bf16 training step with the chunked delta rule (its training kernels off), then where the step's time goes.
if "$BIN" train bench --help 2>/dev/null | grep -q -- '--dtype'; then
    run_step train_bf16_chunked 150 env SGVLM_CUDA_DELTA_RULE=0 "$BIN" train bench --model "$MODEL_DIR" --batch 4 \
        --len 1300 --answer 256 --steps 2 --device cuda --dtype bf16
    # Where the bf16 step's time goes (SGVLM_PROFILE=1: forward, LM head + loss, backward, optimizer, per layer kind).
    run_step profile_train 120 env SGVLM_PROFILE=1 "$BIN" train bench --model "$MODEL_DIR" --batch 4 --len 1300 \
        --answer 256 --steps 2 --device cuda --dtype bf16
fi

# Summary: every step's status, then the figures the benchmark steps printed.
python3 - "$OUT" <<'EOF' || cat "$SUMMARY"
import json, os, sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "summary.tsv")) if l.strip()]
print("\n== gpu_bench summary ==")
print(f"{'step':<12} {'exit':<10} {'seconds':>8} {'peak GPU MiB':>13}")
for r in rows:
    r += ["-"] * (4 - len(r))
    print(f"{r[0]:<12} {r[1]:<10} {r[2]:>8} {r[3]:>13}")
keys = ("prompts", "group", "rollout_s", "update_s", "batch", "graph_latency_s", "s_per_graph", "amortized_s_per_graph", "amortised_s_per_graph", "prefill_s",
        "decode_s", "tok_per_s_total", "tokens_per_s", "s_per_step", "dtype", "tokens_per_s_train", "peak_mem_gb", "peak_gb", "rel_err",
        "check", "ok", "error", "decode", "fused", "graph_steps", "graph_error", "tokens_digest")
for r in rows:
    path = os.path.join(out, r[0] + ".log")
    if not os.path.exists(path):
        continue
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            v = json.loads(line)
        except ValueError:
            continue
        picked = {k: v[k] for k in keys if k in v}
        if "time" in v:  # cuda_check's kernel timings
            picked = {"time": v["time"], "seconds": v.get("seconds")}
        if picked:
            print(f"{r[0]:<12} " + " ".join(f"{k}={v}" for k, v in picked.items()))
        for part, p in sorted(v.get("profile", {}).items(), key=lambda kv: -kv[1]["seconds"]):
            print(f"{r[0]:<12}   {part:<52} {p['seconds']:8.4f} s {p['calls']:6d} calls")
EOF
say "logs in $OUT"
