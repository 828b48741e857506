#!/usr/bin/env bash
# README command 2 (and .ci/run): set up, then run every test — the native core tests
# (cargo test) and the end-to-end suite, which builds the real Worker, runs it in workerd
# under `wrangler dev` on 127.0.0.1 against the strict mock upstream, and drives it with
# the official OpenAI, Anthropic and Google SDKs in a venv it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== native tests (cargo test)" >&2
cargo test --quiet
echo "== wasm build" >&2
bash scripts/build.sh
echo "== end-to-end tests (workerd + official SDKs)" >&2
E2E_REQUIRED=1 bash tests/e2e/run.sh "$@"
