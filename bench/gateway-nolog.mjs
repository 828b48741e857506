// Diagnostic variant for bench/run.py: the gateway exactly as built (build/entry.mjs), with
// console.log replaced by a no-op. Under `wrangler dev` every console.log of a worker travels
// over the inspector to wrangler's InspectorProxyWorker and on to the node process, whatever
// --log-level says; comparing this variant with the real one shows what that costs.
import gateway from "../build/entry.mjs";

console.log = () => {};

export default gateway;
