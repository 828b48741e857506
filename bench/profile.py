#!/usr/bin/env python3
"""CPU profile of the gateway's isolate under load (a diagnostic, not a test).

    .venv/bin/python bench/profile.py [--target passthrough|converted|echo] [--no-stream] [--seconds 5]

Starts the strict mock and the gateway (build/ as it is) under `wrangler dev` on 127.0.0.1,
connects to the worker's devtools inspector, samples its CPU (V8 Profiler) while wrk (or the
bench's Python client) sends the chosen request at a fixed concurrency, and prints the
functions with the most self time and the most inclusive time, JS and wasm alike (the wasm
keeps its name section). Every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: process helpers, mock, wrangler, load)

import websockets  # noqa: E402


async def profile_during(ws_url: str, load, interval_us: int):
    async with websockets.connect(ws_url, max_size=None, open_timeout=10, origin="http://localhost") as ws:
        seq = 0

        async def call(method, params=None):
            nonlocal seq
            seq += 1
            await ws.send(json.dumps({"id": seq, "method": method, "params": params or {}}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == seq:
                    return msg.get("result", {})

        await call("Profiler.enable")
        await call("Profiler.setSamplingInterval", {"interval": interval_us})
        await call("Profiler.start")
        stats = await asyncio.get_running_loop().run_in_executor(None, load)
        result = await call("Profiler.stop")
        profile = result["profile"]
        # Name anonymous JS functions by their source line, for the summary.
        await call("Debugger.enable")
        sources = {}
        for n in profile["nodes"]:
            f = n["callFrame"]
            if not f["functionName"] and f.get("url") and f["lineNumber"] >= 0:
                sid = f["scriptId"]
                if sid not in sources:
                    sources[sid] = (await call("Debugger.getScriptSource", {"scriptId": sid})).get("scriptSource", "").split("\n")
                lines = sources[sid]
                if f["lineNumber"] < len(lines):
                    f["functionName"] = "(anon) " + lines[f["lineNumber"]].strip()[:70]
        return profile, stats


def summarise(profile: dict, requests: int, top: int) -> str:
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {}
    for n in profile["nodes"]:
        for c in n.get("children", []):
            parent[c] = n["id"]
    # Sample weights: time deltas belong to the sample they precede.
    weight = collections.Counter()
    deltas = profile.get("timeDeltas", [])
    for i, s in enumerate(profile.get("samples", [])):
        weight[s] += deltas[i + 1] if i + 1 < len(deltas) else 0
    total = sum(weight.values()) or 1

    def name(n):
        f = n["callFrame"]
        fn = f["functionName"] or "(anonymous)"
        url = f.get("url", "")
        where = url.rsplit("/", 1)[-1] if url else ""
        return f"{fn} [{where}]" if where and not fn.startswith("(") else fn

    self_t = collections.Counter()
    incl_t = collections.Counter()
    for nid, w in weight.items():
        self_t[name(nodes[nid])] += w
        seen = set()
        cur = nid
        while cur is not None:
            nm = name(nodes[cur])
            if nm not in seen:
                incl_t[nm] += w
                seen.add(nm)
            cur = parent.get(cur)
    per_req = lambda us: us / max(requests, 1)
    lines = [f"sampled {total / 1000:.0f} ms of isolate time over {requests} requests "
             f"= {per_req(total):.0f} us/request (idle included in '(idle)')", "", "self time:"]
    for nm, w in self_t.most_common(top):
        lines.append(f"  {per_req(w):8.1f} us/req {100 * w / total:5.1f} %  {nm}")
    lines += ["", "inclusive time:"]
    for nm, w in incl_t.most_common(top):
        lines.append(f"  {per_req(w):8.1f} us/req {100 * w / total:5.1f} %  {nm}")
    return "\n".join(lines)


def large_chat_body(model: str, stream: bool) -> bytes:
    """The large agent request of examples/bench_convert.rs, as a Chat body."""
    messages = [{"role": "system", "content": "You are a coding agent. " * 400}]
    for i in range(200):
        messages.append({"role": "user", "content": f"step {i}: " + "look at the file and fix the bug. " * 10})
        call = {"id": f"call_{i}", "type": "function",
                "function": {"name": "read_file", "arguments": json.dumps({"path": f"src/file_{i}.rs"})}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": 'fn main() {\n    println!("hello");\n}\n' * 40})
    tools = [{"type": "function", "function": {"name": "read_file", "description": "Reads a file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]
    body = {"model": model, "messages": messages, "tools": tools}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("passthrough", "converted", "echo", "floor"), default="passthrough",
                    help="floor: bench/floor-worker.mjs proxying the same chat request, for comparison")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--no-stream", action="store_true", help="plain JSON requests (what the bench's req/s phase sends)")
    ap.add_argument("--large", action="store_true",
                    help="a ~470 KB agent request (examples/bench_convert.rs's: 200 turns of tool calls and results)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--interval-us", type=int, default=100)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (wrangler's bundle, logs)")
    ap.add_argument("--out", help="also write the raw .cpuprofile here (Chrome devtools can open it)")
    args = ap.parse_args()

    procs = bench.Procs()
    tmp = Path(tempfile.mkdtemp(prefix="gw-profile-"))
    try:
        mock = bench.start_mock(procs, tmp, True)
        base = f"http://127.0.0.1:{mock.port}"
        snap = tmp / "snapshot"
        bench.snapshot_build(bench.ENTRY.parent, snap / "build")
        gw_vars = bench.gateway_vars(bench.gateway_config(base))
        if args.target == "floor":
            gw = bench.start_wrangler(procs, tmp, "gateway", bench.FLOOR, bench.floor_worker_vars(base), "warn")
        else:
            gw = bench.start_wrangler(procs, tmp, "gateway", snap / "build" / "entry.mjs", gw_vars, "warn")
        probe = f"GET /{'local' if args.target == 'floor' else 'health'} HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n\r\n".encode()
        bench.wait_ready([gw], {"gateway": probe})
        inspector_port = int(gw.cmd[gw.cmd.index("--inspector-port") + 1])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{inspector_port}/json", timeout=10))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if "webSocketDebuggerUrl" in t)
        model = {"passthrough": "oai.gpt-4o-mini", "converted": "ant.claude-sonnet-4-5", "echo": "echo.e1",
                 "floor": "gpt-4o-mini"}[args.target]
        auth = None if args.target == "floor" else bench.GATEWAY_KEY
        body = large_chat_body(model, not args.no_stream) if args.large else bench.chat_body(model, not args.no_stream)
        t = bench.Target(args.target, gw, bench.CHAT_PATH, body, auth, not args.no_stream, 15.0)
        for _ in range(200):  # warm up (JIT, tier-up) before sampling
            t.once(record=False)
        use_wrk = shutil.which("wrk") is not None

        def load():
            if use_wrk:
                return bench.run_wrk(procs, t, args.concurrency, args.seconds, 1, tmp)
            return bench.run_python_load(t, args.concurrency, args.seconds)

        profile, stats = asyncio.run(profile_during(ws_url, load, args.interval_us))
        requests = int(stats.get("requests") or stats.get("count") or 0)
        if args.out:
            Path(args.out).write_text(json.dumps(profile))
        print(f"target {args.target} ({model}), {args.seconds:.0f} s at c={args.concurrency}: {stats}")
        print(summarise(profile, requests, args.top))
        return 0
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
