#!/usr/bin/env bash
# Installs kith's build and test dependencies from Debian's packages (bookworm).
# Works as root or through sudo; does nothing when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libsodium-dev libuv1-dev capnproto libcapnp-dev liblmdb-dev
  catch2 libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libqrencode-dev
  clang-format git
  chromium  # the web page's browser tests (tests/web/browser-test.mjs)
)
# Node.js and npm run the browser tests; a machine that has them (any version from 18) keeps its own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The browser tests' npm packages (puppeteer-core, pinned by tests/web/package-lock.json; it
# downloads no browser). Installed again when the lock file changed.
npm_packages() {
  local web
  web="$(dirname "$0")/../tests/web"
  if [ ! -d "$web/node_modules" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    echo "install-deps: installing the browser tests' npm packages (tests/web)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_packages
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_packages
