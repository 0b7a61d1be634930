#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), two at a time, and prints one summary line per target.
# Usage: fuzz/run_all.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
mkdir -p logs
run_seq() {
  for t in "$@"; do
    ./run.sh "$t" "$secs" > "logs/$t.log" 2>&1
    echo "$t: exit $? $(grep -E '^Done [0-9]+ runs' "logs/$t.log" | tail -1)"
  done
}
run_seq strict_triplet lenient ag_classical json &
run_seq strict_ag eval_parse incremental_validator &
wait
