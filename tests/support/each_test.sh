#!/usr/bin/env bash
# Runs every test of the test executables named in a `cargo test --no-run` log, each in a process
# of its own, JOBS at a time (default: one per core), then prints their output in order and fails
# if any failed. A test binary runs its own tests in parallel but the binaries one after another,
# so the differential proofs, a few long tests each, left a core idle for much of their run.
# Usage: each_test.sh CARGO_LOG RUN_DIR [RUNNER...]   (RUNNER: e.g. `node bench/v8.mjs` for wasm)
set -uo pipefail
log=$1 dir=$2; shift 2
runner=("$@")
mkdir -p "$dir" && rm -f "$dir"/*
for exe in $(sed -n 's/.*Executable.*(\(.*\)).*/\1/p' "$log"); do
  "${runner[@]}" "$exe" --list 2>/dev/null | sed -n 's/: test$//p' | sed "s|^|$exe |"
done | nl -w1 -s' ' > "$dir/list"
[ -s "$dir/list" ] || { echo "no tests listed in $log"; exit 1; }
export dir
# One line per test: its number, executable and name, then the runner (xargs -L 1 would join a
# line that ends in a blank to the next, so no blank when there is no runner).
lines() { if [ ${#runner[@]} -gt 0 ]; then sed "s|\$| ${runner[*]}|" "$dir/list"; else cat "$dir/list"; fi; }
xargs -P "${JOBS:-$(nproc)}" -L 1 sh -c '
  i=$0 exe=$1 name=$2; shift 2
  "$@" "$exe" --exact "$name" --nocapture > "$dir/$i.log" 2>&1 || touch "$dir/$i.failed"
' < <(lines)
status=0
while read -r i exe name; do
  echo "== $name ($(basename "$exe"))"
  cat "$dir/$i.log"
  if [ -e "$dir/$i.failed" ] || ! grep -q "test result: ok. 1 passed" "$dir/$i.log"; then
    echo "FAILED: $name"; status=1
  fi
done < "$dir/list"
exit $status
