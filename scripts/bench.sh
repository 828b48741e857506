#!/usr/bin/env bash
# Loopback benchmark of the gateway (not a test): bash scripts/bench.sh [bench/run.py options]
#   e.g. bash scripts/bench.sh --rounds 100 --rps-seconds 2   (bash scripts/bench.sh --help)
#   BENCH_NO_BUILD=1 bash scripts/bench.sh    benchmarks build/ as it is (no rebuild)
#   bash scripts/bench.sh --no-inspector      wrangler dev without its devtools relay (diagnostic)
# Makes sure of setup + build, the venv at .venv (tests/e2e/requirements.txt and
# bench/requirements.txt), and wrk (Debian package; skipped with BENCH_NO_WRK=1 or when it
# cannot be installed, then a Python load generator is used), then runs bench/run.py, which
# prints a table and writes target/bench-results.json. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
log() { printf '[bench.sh] %s\n' "$*" >&2; }

bash scripts/setup.sh
if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
  log "BENCH_NO_BUILD=1: benchmarking build/ as it is"
else
  bash scripts/build.sh
fi

VENV="$REPO/.venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
install_reqs() {  # <requirements file> <stamp file>; reinstalls only when the file changed
  local want have
  want="$(sha256sum "$1" | cut -d' ' -f1)"
  have="$(cat "$2" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    log "pip install -r $1"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$1"
    echo "$want" > "$2"
  fi
}
install_reqs tests/e2e/requirements.txt "$VENV/.e2e-requirements.sha256"  # same stamp as tests/e2e/run.sh
install_reqs bench/requirements.txt "$VENV/.bench-requirements.sha256"

if [ "${BENCH_NO_WRK:-0}" != 1 ] && ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null; then
    log "installing wrk with apt-get"
    { $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; } \
      || log "could not install wrk: falling back to the Python load generator"
  else
    log "no apt-get: install wrk yourself for real throughput numbers; using the Python load generator"
  fi
fi

export BENCH_INVOKED_AS="${BENCH_NO_BUILD:+BENCH_NO_BUILD=$BENCH_NO_BUILD }bash scripts/bench.sh${*:+ $*}"
exec "$VENV/bin/python" bench/run.py "$@"
