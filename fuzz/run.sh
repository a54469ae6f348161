#!/usr/bin/env bash
# make fuzz: each target for FUZZ_SECONDS (default 60), then a summary of executions and
# crashes (files libFuzzer leaves in fuzz/artifacts/<target>/). Fails if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
python3 fuzz/seed.py
summary=()
found=0
for t in extract jwt jwks config header_map signature rsa_montgomery naf; do
  log=$(mktemp)
  mkdir -p "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 > "$log" 2>&1 || true
  grep -E "^(Done|SUMMARY|==[0-9]+==ERROR)" "$log" || true
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" || echo "?")
  crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  found=$((found + crashes))
  summary+=("$t: $runs executions in ${seconds}s, crashes: $crashes")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
[ "$found" -eq 0 ] || { echo "crash inputs are in fuzz/artifacts/: turn each into a regression unit test" >&2; exit 1; }
