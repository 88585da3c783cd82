#!/usr/bin/env bash
# Fails when a C or C++ file of the project is not laid out as .clang-format says; with --fix,
# rewrites them in place. Needs clang-format (Debian's clang-format, version 14).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format is not installed; run scripts/install-deps.sh" >&2
  exit 1
fi
mapfile -t files < <(git ls-files -- '*.h' '*.cpp' '*.c' 2>/dev/null || find base crypto protocol store node web cli tests bench -name '*.h' -o -name '*.cpp' -o -name '*.c')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
if ! clang-format --dry-run --Werror --style=file "${files[@]}" 2>/tmp/kith-format.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/kith-format.$$ | sed 's/: error: code should be clang-formatted.*//' | sort -u | head -20
  rm -f /tmp/kith-format.$$
  echo "check-format: files above are not laid out as .clang-format says; run scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/kith-format.$$
echo "check-format: ${#files[@]} files laid out as .clang-format says"
