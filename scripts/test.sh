#!/usr/bin/env bash
# The whole test suite: the Rust workspace, then the Python package (venv, maturin wheel, pytest over the oracle).
# This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build outside the clone so repeated runs on the same machine reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sgvlm-target}"
cargo test --workspace --locked
bash scripts/python_tests.sh
