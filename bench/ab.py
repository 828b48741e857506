#!/usr/bin/env python3
"""Builds of the gateway side by side in one run, against the floor (a diagnostic, not a test).

    .venv/bin/python bench/ab.py BUILD_DIR[:logRequests=off] [MORE...] [--rounds 100] [--split 150] [--rps-rounds 3]

Each directory is a copy of build/ (entry.mjs, index.js, index_bg.wasm); they are named a, b,
c... in the output. Starts the strict mock, the floor worker and one `wrangler dev` per build,
then measures them interleaved (sequential SSE latency, then that latency split at the mock's
arrival time into the request path and the response path) and rotating (req/s under wrk),
the same way bench/run.py does, so that a code or build-profile change can be judged on this
noisy machine: compare the builds' figures with each other and with the floor of the same
run, never across runs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: processes, mock, wrangler, load)


def split_paths(targets: list, mock, rounds: int, rng: random.Random):
    """Where the added time sits: client send → the mock's arrival (the worker's request
    path) and the mock's arrival → the first body byte at the client (its response path).
    The mock records each request's arrival on the same clock."""
    ctl = bench.Conn(mock.port, 10)
    paths = {t.name: [] for t in targets}
    for _ in range(rounds):
        for t in rng.sample(targets, len(targets)):
            ctl.request(b"DELETE /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n")
            sent = time.time()
            t.once(record=True)
            _s, _h, body, *_ = ctl.request(b"GET /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n")
            arrived_ms = (next(r for r in json.loads(body) if r.get("method") == "POST")["time"] - sent) * 1e3
            first_byte_ms = t.samples[-1][1] / 1e6
            paths[t.name].append((arrived_ms, first_byte_ms - arrived_ms))
    ctl.close()
    print(f"\nrequest path / response path / first byte of a passthrough stream, ms p50 ({rounds} rounds,"
          " each after a pause for the mock's bookkeeping)")
    for name, v in paths.items():
        print(f"{name:<28}{bench.pct([a for a, _ in v], 50):8.3f}{bench.pct([b for _, b in v], 50):8.3f}"
              f"{bench.pct([a + b for a, b in v], 50):8.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", metavar="BUILD_DIR[:logRequests=all|errors|off]",
                    help="a suffix runs that build with another logRequests setting (the same build "
                         "twice, with and without its log line, shows what the line costs)")
    ap.add_argument("--rounds", type=int, default=100, help="sequential latency rounds per target")
    ap.add_argument("--rps-rounds", type=int, default=3, help="0: latency only")
    ap.add_argument("--rps-seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", type=int, default=150, metavar="N",
                    help="N more sequential passthrough streams per target, split at the mock's arrival time "
                         "into the request path and the response path (0: skip)")
    ap.add_argument("--no-inspector", action="store_true",
                    help="wrangler dev without its devtools relay (as bench/run.py --no-inspector)")
    args = ap.parse_args()
    # What bench.rps_phase reads from its options.
    args.rps_warmup, args.wrk_threads, args.settle = 1.0, 1, 0.5
    bench.NO_INSPECTOR = args.no_inspector

    procs = bench.Procs()
    tmp = Path(tempfile.mkdtemp(prefix="gw-ab-"))
    try:
        mock = bench.start_mock(procs, tmp, True)
        base = f"http://127.0.0.1:{mock.port}"
        floor_vars = bench.floor_worker_vars(base)
        gws = []
        for name, spec in zip("abcdefgh", args.builds):
            src, _, setting = spec.partition(":logRequests=")
            config = bench.gateway_config(base) | ({"logRequests": setting} if setting else {})
            snap = tmp / f"snapshot-{name}" / "build"
            bench.snapshot_build(Path(src), snap)
            gws.append(bench.start_wrangler(procs, tmp, f"gateway-{name}", snap / "entry.mjs", bench.gateway_vars(config), "warn"))
            print(f"gateway-{name}: {spec}")
        floor = bench.start_wrangler(procs, tmp, "floor", bench.FLOOR, floor_vars, "warn")
        probe = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        bench.wait_ready(gws + [floor], {g.name: probe for g in gws} | {"floor": b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n"})
        time.sleep(1.0)

        mk = lambda name, srv, model, auth, stream: bench.Target(  # noqa: E731
            name, srv, bench.CHAT_PATH, bench.chat_body(model, stream), auth, stream, 15.0)
        lat = [mk("direct", mock, "gpt-4o-mini", bench.UPSTREAM_KEY, True),
               mk("floor", floor, "gpt-4o-mini", None, True)]
        lat += [mk(g.name, g, "oai.gpt-4o-mini", bench.GATEWAY_KEY, True) for g in gws]
        lat += [mk(g.name + " converted", g, "ant.claude-sonnet-4-5", bench.GATEWAY_KEY, True) for g in gws]
        rng = random.Random(args.seed)
        deadline = time.monotonic() + 1800
        bench.interleaved(lat, 20, rng, False, deadline)
        bench.interleaved(lat, args.rounds, rng, True, deadline)
        print(f"sequential SSE latency, ms p50 ({args.rounds} interleaved rounds)")
        print(f"{'target':<28}{'ttfb':>8}{'total':>8}")
        for t in lat:
            s = bench.summary(t)
            print(f"{t.name:<28}{s['ttfb']['p50']:8.2f}{s['total']['p50']:8.2f}")

        if args.split > 0:
            split_paths([t for t in lat if t.name == "floor" or t.name in {g.name for g in gws}], mock, args.split, rng)

        if args.rps_rounds < 1:
            return 0
        rps_targets = [mk("floor", floor, "gpt-4o-mini", None, False)]
        rps_targets += [mk(g.name, g, "oai.gpt-4o-mini", bench.GATEWAY_KEY, False) for g in gws]
        rps_targets += [mk(g.name + " converted", g, "ant.claude-sonnet-4-5", bench.GATEWAY_KEY, False) for g in gws]
        use_wrk = shutil.which("wrk") is not None
        thr = bench.rps_phase(procs, rps_targets, [mock, floor] + gws, args, tmp, use_wrk, deadline)
        print(f"\nreq/s, c={args.concurrency}, {args.rps_rounds} rotating rounds x {args.rps_seconds:g} s "
              f"({'wrk' if use_wrk else 'python client'}); CPU us/req of the serving wrangler")
        floor_rps = thr["floor"]["rps"]
        for name, r in thr.items():
            srv = name.split(" ")[0]
            cpu = r["server_cpu_us_per_req"].get(srv, {})
            roles = " ".join(f"{k}={v:.0f}" for k, v in sorted(cpu.items()) if k in ("node", "workerd-proxy", "workerd-user"))
            print(f"{name:<28}{r['rps']:8.0f}  {100 * r['rps'] / floor_rps:5.1f} % of floor   {roles}")
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
