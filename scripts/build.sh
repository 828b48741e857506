#!/usr/bin/env bash
# Builds the Worker into build/: the wasm (release profile), its wasm-bindgen JS glue, and
# build/entry.mjs, the module wrangler runs. No worker-build: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
route=$(cat target/.wasm-route 2>/dev/null || echo rustup)

export CARGO_TARGET_DIR=target/wasm WASM_BINDGEN_USE_JS_SYS=1
if [ "$route" = debian ]; then
  # Debian's rustc-web (sysroot /usr) builds std from its shipped source; switched on
  # through the environment only, so native builds and tests are unaffected.
  export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
  /usr/bin/cargo build --quiet --lib --release --target wasm32-unknown-unknown
else
  cargo build --quiet --lib --release --target wasm32-unknown-unknown
fi

wasm-bindgen target/wasm/wasm32-unknown-unknown/release/llm_gateway.wasm \
  --out-dir build/.tmp --out-name index --target module --no-typescript \
  --experimental-reset-state-function --force-enable-abort-handler
# workerd imports .wasm modules as compiled modules, not as source-phase imports.
sed -i 's/^import source /import /' build/.tmp/index.js
cp scripts/worker-entry.mjs build/.tmp/entry.mjs
rm -rf build/current && mv build/.tmp build/current
# Swap in place so a running `wrangler dev` never sees a half-written build.
for f in build/current/*; do rm -rf "build/$(basename "$f")"; mv "$f" build/; done
rmdir build/current
printf '[build] build/index_bg.wasm %s bytes, %s gzipped\n' \
  "$(stat -c %s build/index_bg.wasm)" "$(gzip -9c build/index_bg.wasm | wc -c)" >&2
