#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 60) and prints the
# executions libFuzzer reports. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`); not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
for target in stream_decoders request_decoders config; do
  log="target/fuzz-$target.log"
  mkdir -p target
  cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  printf '%-18s %s\n' "$target" "$(grep -E '^(#[0-9]+|Done)' "$log" | tail -1)"
done
