#!/usr/bin/env bash
# Fuzzes kith's libFuzzer targets (tests/fuzz/) for real: configures a clang build with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, then runs each target for
# SECONDS (default 60) on a copy of its committed corpus, and prints per target the executions,
# executions per second, libFuzzer's coverage (cov: edges, ft: features) and any crash file.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 entry invite
#
# The inputs a run adds stay in build-fuzz/fuzz-runs/<target>/corpus (not in the tree); a crash,
# leak or timeout is written to build-fuzz/fuzz-runs/<target>/artifacts/ and makes the script exit 1.
# Replay one with build-fuzz/tests/fuzz/<target>-fuzz FILE, or with the normal build's
# <target>-replay FILE. The normal build (scripts/test.sh, and so CI) only replays the corpora.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(entry invite noise frames keyfile rpc)
fi
for target in "${targets[@]}"; do
  if [ ! -f "tests/fuzz/$target-fuzz.cpp" ]; then
    echo "scripts/fuzz.sh: no target '$target' (tests/fuzz/$target-fuzz.cpp)" >&2
    exit 2
  fi
done

dir=build-fuzz
jobs=$(nproc 2>/dev/null || echo 2)
# Every library is instrumented for coverage (fuzzer-no-link); only the targets link libFuzzer.
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKITH_SANITIZE=ON -DKITH_FUZZ=ON -DKITH_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$dir" -j "$jobs" --target "${targets[@]/%/-fuzz}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for target in "${targets[@]}"; do
  work="$dir/fuzz-runs/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  echo "== fuzz $target for ${seconds}s (log: $work/log)"
  status=0
  "$dir/tests/fuzz/$target-fuzz" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  inputs=$(find "$work/corpus" -type f | wc -l)
  echo "$target: ${execs:-?} executions, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus $inputs inputs"
  artifacts=$(find "$work/artifacts" -type f)
  if [ "$status" -ne 0 ] || [ -n "$artifacts" ]; then
    failed=1
    echo "$target: FAILED (exit $status)"
    for a in $artifacts; do echo "$target: reproducer $a"; done
    grep -E 'ERROR|SUMMARY|kith fuzz|internal error' "$work/log" | head -5 || true
  fi
done
exit "$failed"
