#!/usr/bin/env bash
# Runs the SIGKILL crash tests (tests/system/*, tag [crash]) for longer than CI does: ROUNDS runs of
# each, every run with a fresh seed and KILLS kills (posts on the owner's home and, in the
# replication test, the receiving `kith serve`). Stops at the first failure and prints the command
# that replays it (the seed). Builds build/ first, or uses BUILD_DIR (e.g. build-asan, which
# scripts/build.sh --sanitize makes) as it is.
#
#   scripts/crash-loop.sh [ROUNDS] [KILLS]      defaults: 10 rounds of 500 kills
#
# Each round's output is kept in $BUILD_DIR/crash-loop/round-N.log; the figures (spawns, kills,
# acknowledged posts, time) are printed as the rounds go.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-10}
kills=${2:-500}
if ! [[ "$rounds" =~ ^[0-9]+$ && "$kills" =~ ^[0-9]+$ ]] || [ "$kills" -lt 3 ]; then
  echo "usage: scripts/crash-loop.sh [ROUNDS] [KILLS]   (KILLS at least 3)" >&2
  exit 2
fi

dir=${BUILD_DIR:-build}
if [ -z "${BUILD_DIR:-}" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" --target kith system-tests
fi
tests="$dir/tests/system-tests"
if [ ! -x "$tests" ]; then
  echo "scripts/crash-loop.sh: $tests is missing; build it first" >&2
  exit 2
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

logs="$dir/crash-loop"
mkdir -p "$logs"
for round in $(seq 1 "$rounds"); do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  log="$logs/round-$round.log"
  status=0
  KITH_TEST_SEED=$seed KITH_CRASH_KILLS=$kills "$tests" "[crash]" >"$log" 2>&1 || status=$?
  grep -E '^(crash serve|kill loop): ' "$log" | grep -v 'replays it' | sed "s/^/round $round: /" || true
  if [ "$status" -ne 0 ]; then
    echo "round $round FAILED (exit $status); log: $log" >&2
    echo "replay: KITH_TEST_SEED=$seed KITH_CRASH_KILLS=$kills $tests \"[crash]\"" >&2
    exit 1
  fi
done
echo "crash loop: $rounds rounds of $kills kills passed"
