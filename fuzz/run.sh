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
  mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 > "$log" 2>&1 || true
  grep -E "^(Done|SUMMARY|==[0-9]+==ERROR)" "$log" || true
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" || echo "?")
  crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  found=$((found + crashes))
  if [ "$runs" = "?" ] && [ "$crashes" -eq 0 ]; then
    # Neither a run nor a crash: the target did not build or start. That is a failure too.
    grep -E "^error|ERROR" "$log" | head -5 >&2 || true
    found=$((found + 1))
    crashes="did not run"
  fi
  summary+=("$t: $runs executions in ${seconds}s, crashes: $crashes")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
[ "$found" -eq 0 ] || { echo "a target crashed (inputs in fuzz/artifacts/: turn each into a regression unit test) or did not run" >&2; exit 1; }
