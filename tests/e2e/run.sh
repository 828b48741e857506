#!/usr/bin/env bash
# Run the end-to-end suite from the repo root:
#   bash tests/e2e/run.sh                              # whole suite
#   bash tests/e2e/run.sh tests/e2e/test_mock_self.py  # one file (any pytest args pass through)
# Creates/reuses <repo>/.venv and reinstalls tests/e2e/requirements.txt only when it changed.
# The gateway must already be built (bash scripts/build.sh); without build/ the gateway tests
# skip, or fail when E2E_REQUIRED=1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.e2e-requirements.sha256"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
  echo "$want" > "$STAMP"
fi
cd "$REPO"
# Default to the whole e2e directory unless a test path was given.
has_path=0
for a in "$@"; do
  case "$a" in
    -*) ;;
    *) if [ -e "${a%%::*}" ]; then has_path=1; fi ;;
  esac
done
if [ "$has_path" = 1 ]; then
  exec "$VENV/bin/python" -m pytest -o cache_dir="$VENV/.pytest_cache" -q "$@"
fi
exec "$VENV/bin/python" -m pytest -o cache_dir="$VENV/.pytest_cache" tests/e2e -q "$@"
