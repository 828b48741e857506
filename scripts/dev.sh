#!/usr/bin/env bash
# README command 1: set up, build, and serve the gateway locally with `wrangler dev` on
# 127.0.0.1. Uses .dev.vars when present, else .dev.vars.example (the echo provider,
# no keys needed). PORT=8787 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
[ -f wrangler.toml ] || { cp wrangler.toml.example wrangler.toml; echo "[dev] created wrangler.toml from wrangler.toml.example" >&2; }
vars=.dev.vars
[ -f "$vars" ] || vars=.dev.vars.example
port="${PORT:-8787}"
key=$(sed -n 's/^WORKER_AUTH_KEY=//p' "$vars" | head -1)
[ -n "$key" ] || key=$(sed -n 's/^WORKER_AUTH_KEYS=//p' "$vars" | head -1 | cut -d, -f1)
cat >&2 <<MSG

  Gateway:  http://127.0.0.1:$port        (settings from $vars)
  Auth key: ${key:-<set WORKER_AUTH_KEY in $vars>}
  Try:      curl http://127.0.0.1:$port/v1/chat/completions -H 'authorization: Bearer $key' \\
              -H 'content-type: application/json' -d '{"model":"echo.echo-1","messages":[{"role":"user","content":"hello"}]}'

MSG
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
exec npx --no-install wrangler dev --env-file "$vars" --ip 127.0.0.1 --port "$port" \
  --show-interactive-dev-session=false "$@"
