#!/usr/bin/env bash
# Configures and builds kith into build/ (or into build-asan/ with --sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
flags=(-DKITH_WERROR="${KITH_WERROR:-OFF}")
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  flags+=(-DKITH_SANITIZE=ON -DKITH_BUILD_BENCH=OFF)
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
