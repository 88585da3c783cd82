#!/usr/bin/env bash
# Installs the dependencies, builds kith twice (plain, and with ASan + UBSan) and runs the whole
# test suite on both builds. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Warnings are errors here (and so in CI); a plain scripts/build.sh leaves them warnings.
export KITH_WERROR=ON

echo "== guard rails"
scripts/check-layers.sh
scripts/check-format.sh

echo "== build (RelWithDebInfo)"
scripts/build.sh
echo "== tests (RelWithDebInfo)"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== build (ASan + UBSan)"
scripts/build.sh --sanitize
echo "== tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
