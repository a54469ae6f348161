#!/usr/bin/env bash
# make fuzz: each target for FUZZ_SECONDS (default 60), then a summary of executions.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
python3 fuzz/seed.py
summary=()
for t in extract jwt jwks config header_map; do
  log=$(mktemp)
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tee "$log" | grep -E "^(Done|==|SUMMARY|artifact)" || true
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" || echo "?")
  crashed=$(grep -c "artifact_prefix\|Test unit written" "$log" || true)
  summary+=("$t: $runs executions in ${seconds}s, crashes: $crashed")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
