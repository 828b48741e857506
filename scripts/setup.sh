#!/usr/bin/env bash
# Makes this machine able to build, run and test the gateway. Idempotent: a second run
# only checks and takes a few seconds.
#   - a Rust std for wasm32: rustup's target where it can be had, else Debian's
#     rustc-web + rust-web-src + lld, built with build-std (see scripts/wasm-env.sh);
#   - wasm-bindgen-cli at exactly the version Cargo.lock pins for wasm-bindgen;
#   - wrangler (pinned in package.json) through `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust (https://rustup.rs) first"; exit 1; }
command -v node >/dev/null || { log "node not found: install Node.js 20 or newer first"; exit 1; }

# 1. wasm32 standard library.
wasm_route=""
if [ "${GATEWAY_WASM_ROUTE:-auto}" != "debian" ] && command -v rustup >/dev/null; then
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
     || timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    wasm_route=rustup
  else
    log "rustup could not provide the wasm32 target; using Debian's rustc-web instead"
  fi
fi
if [ -z "$wasm_route" ]; then
  if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || ! command -v wasm-ld >/dev/null; then
    command -v apt-get >/dev/null || { log "no wasm32 target and no apt-get: run 'rustup target add wasm32-unknown-unknown'"; exit 1; }
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "installing rustc-web rust-web-src lld with apt-get"
    $SUDO apt-get update -qq
    $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web rust-web-src lld >/dev/null
  fi
  wasm_route=debian
fi
mkdir -p target
echo "$wasm_route" > target/.wasm-route
log "wasm32 std: $wasm_route"

# 2. wasm-bindgen CLI equal to the library version in Cargo.lock.
[ -f Cargo.lock ] || cargo generate-lockfile
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  log "installing wasm-bindgen-cli $want (found '${have:-none}'); takes a few minutes once"
  # --locked fails against the registry mirror here (it pins a webpki-roots it lacks).
  cargo install -q wasm-bindgen-cli --version "$want"
fi

# 3. wrangler and workerd from npm.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
