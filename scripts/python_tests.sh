#!/usr/bin/env bash
# Builds the `sgvlm` Python wheel (crates/py, maturin) into a virtual environment and runs the Python tests
# (tests/python: oracle parity through sgvlm.rewards / sgvlm.evaluate and through the MS-SWIFT plugin).
#
#   bash scripts/python_tests.sh [pytest args…]
#
# The venv is the project's (scripts/venv.sh: $SGVLM_VENV, default $HOME/.cache/sgvlm-venv); maturin and pytest come
# from PyPI. The Rust build goes to $CARGO_TARGET_DIR (default: $HOME/.cache/sgvlm-target, as .ci/run), so the
# dependencies compiled there are reused. Needs python3 >= 3.9 with the venv module.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sgvlm-target}"
source scripts/venv.sh
"$py" -m pip install --quiet --disable-pip-version-check "maturin>=1.9.4,<2" "pytest>=7"

wheels="$CARGO_TARGET_DIR/wheels"
rm -rf "$wheels"
# --locked: the same Cargo.lock as `cargo test --workspace --locked`.
"$venv/bin/maturin" build --release --locked --manifest-path crates/py/Cargo.toml --interpreter "$py" --out "$wheels"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/sgvlm-*.whl

set +e
"$py" -m pytest tests/python "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "python tests: FAILED: pytest collected no tests (exit 5); tests/python should hold the parity tests" >&2
    exit 1
fi
exit "$status"
