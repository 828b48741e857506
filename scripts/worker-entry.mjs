// The Worker's entry module: hands each request to the Rust `fetch` export. If a Rust
// panic aborted the wasm instance, the instance is reset first so the isolate keeps
// serving (the same recovery worker-build's shim performs).
import * as wasm from "./index.js";

export default {
  async fetch(request, env, ctx) {
    const state = wasm.__worker_init_state();
    if (state.criticalError) {
      wasm.__wbg_reset_state();
      state.criticalError = false;
    }
    return wasm.fetch(request, env, ctx);
  },
};

// The Durable Object sharing breaker and key-cooldown state across isolates (used when
// ANY_API_CONFIG sets "stateBinding"; see wrangler.toml.example).
export class GatewayState {
  constructor(state, env) {
    this.inner = new wasm.GatewayState(state, env);
  }
  fetch(request) {
    return this.inner.fetch(request);
  }
}
