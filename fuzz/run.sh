#!/usr/bin/env bash
# Runs one fuzz target for SECONDS (default 600) with the TOON dictionary; prints libFuzzer's final stats.
# Usage: fuzz/run.sh TARGET [SECONDS]     (needs the nightly toolchain and cargo-fuzz)
set -euo pipefail
cd "$(dirname "$0")"
target=$1
secs=${2:-600}
mkdir -p "corpus/$target"
cargo +nightly fuzz run -O "$target" "corpus/$target" -- -dict=toon.dict -max_total_time="$secs" -max_len="${MAX_LEN:-16384}" -print_final_stats=1
