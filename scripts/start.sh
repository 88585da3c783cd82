#!/usr/bin/env bash
# Installs the dependencies, builds kith, creates the identity on first run and starts the node
# (`kith serve`) on the default home ($KITH_HOME, else ~/.local/share/kith). Extra arguments go to
# `kith serve` (e.g. --listen 0.0.0.0:7400). Stop it with Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

scripts/install-deps.sh
scripts/build.sh >/dev/null
kith="$root/build/cli/kith"

if ! "$kith" id >/dev/null 2>&1; then
  if [ -n "${KITH_PASSPHRASE:-}" ] || [ -t 0 ]; then
    "$kith" init
  else
    echo "start: no terminal and no KITH_PASSPHRASE: creating a headless identity without a passphrase"
    "$kith" init --no-passphrase
  fi
fi
"$kith" status
exec "$kith" serve "$@"
