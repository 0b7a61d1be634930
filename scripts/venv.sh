#!/usr/bin/env bash
# Sourced by the test scripts: makes sure the project's Python virtual environment exists and sets $venv and $py.
# The venv lives in $SGVLM_VENV (default: $HOME/.cache/sgvlm-venv) and is reused across runs; it is (re)created when
# missing or broken (e.g. its interpreter was removed or upgraded). Needs python3 >= 3.9 with the venv module
# ($PYTHON picks another interpreter).
venv="${SGVLM_VENV:-$HOME/.cache/sgvlm-venv}"
if ! "$venv/bin/python" -c "import sys" > /dev/null 2>&1; then
    echo "venv: creating $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
