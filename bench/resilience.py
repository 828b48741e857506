#!/usr/bin/env python3
"""Loopback load run of the gateway's resilience paths (a benchmark, not a test).

    bash scripts/build.sh && .venv/bin/python bench/resilience.py [--requests 10000] [--concurrency 64]

Everything runs on 127.0.0.1 and is bounded (--budget seconds for the whole run, 180 by
default; a phase that runs out of time stops early and says how many requests it made):
  * tests/e2e/resilience_mock.py: an asyncio upstream speaking OpenAI Chat; model `healthy`
    always answers, `flaky-<pct>` answers 500 for <pct> % of requests at random;
  * gateway A: build/ under `wrangler dev --log-level warn` with the README's default retry and
    breaker policy (attemptsPerTarget 2, backoff 250 ms, breaker 3 failures / 60 s cooldown) and
    the GatewayState Durable Object (stateBinding), routes
      flaky-route = [flaky.flaky-33.3, ok.healthy]   dead-route = [dead.m (nothing listens), ok.healthy]
      one = [ok.healthy]
  * gateway B: the same with the breaker switched off (failures 1e9), so a failing first target
    is tried on every request (used for (a), and for a second load pair with --breaker-off-load);
  * with --state-requests N, gateway C: A without stateBinding, for (c).
Note: from (a) on, gateway A has an open breaker (dead.m), i.e. its state is "degraded" during
the load, as it is anyway whenever the flaky target has recent failures.
Measured, in this order:
  (b) sequential, interleaved, on A while nothing is degraded: the route `one` vs the same
     target addressed as `ok.healthy`: p50 difference (target <= 0.2 ms);
  (a) sequential, interleaved: dead-route vs ok.healthy: the extra p50 while the dead target is
     still tried (B) (target <= 5 ms), A's first three requests, then the extra p50 once A's
     breaker for it is open (target ~0);
  (c) optional (--state-requests N): healthy load at --concurrency, A (stateBinding) vs C (none),
     with every breaker closed and then with one open (what pushing state to the Durable
     Object on every request while anything is degraded costs);
  1. load on A (--requests of each at --concurrency, keep-alive connections, --rounds rounds
     alternating the two loads so machine noise hits both): flaky-route vs ok.healthy alone:
     success rate, latency p50/p90/p99 and the added latency, x-gateway-attempts per request,
     which target answered, what the flaky upstream saw; the same on B with --breaker-off-load.
Prints a table and the command, writes target/resilience-results.json. Standard library + httpx
(already in .venv); the load generator is a small asyncio HTTP/1.1 client (lighter than httpx
on a 2-core machine, where the client competes with workerd for CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from resilience_util import ENTRY, Gateway, RMock, StartError, dead_port  # noqa: E402
sys.path.insert(0, str(HERE))
from run import Conn, pct  # noqa: E402  (bench/run.py: the keep-alive client and percentiles)

RESULTS = REPO / "target" / "resilience-results.json"
GATEWAY_KEY = "bench-key"
PATH = "/v1/chat/completions"


def log(msg: str):
    sys.stderr.write(f"[resilience] {msg}\n")
    sys.stderr.flush()


def config(r_base: str, dead: int, flaky_pct: float, breaker: bool) -> dict:
    cfg = {
        "version": 1,
        "providers": {
            "flaky": {"type": "openai-chat-completions", "baseURL": f"{r_base}/v1", "apiKey": "sk-upstream-flaky"},
            "ok": {"type": "openai-chat-completions", "baseURL": f"{r_base}/v1", "apiKey": "sk-upstream-ok"},
            "dead": {"type": "openai-chat-completions", "baseURL": f"http://127.0.0.1:{dead}/v1", "apiKey": "sk-upstream-dead"},
        },
        "routes": {
            "flaky-route": {"targets": [f"flaky.flaky-{flaky_pct:g}", "ok.healthy"]},
            "dead-route": {"targets": ["dead.m", "ok.healthy"]},
            "dead-route-2": {"targets": ["dead.m2", "ok.healthy"]},  # (c) only: its own breaker
            "one": {"targets": ["ok.healthy"]},
        },
        "stateBinding": "GATEWAY_STATE",
    }
    if not breaker:
        cfg["breaker"] = {"failures": 1_000_000_000, "cooldownMs": 60_000}
    return cfg


def body(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}, separators=(",", ":")).encode()


def raw_request(port: int, model: str) -> bytes:
    b = body(model)
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {GATEWAY_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n")
    return head.encode() + b


def parse_head(head: bytes):
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers


def ok_reply(status: int, payload: bytes) -> bool:
    if status != 200:
        return False
    try:
        return bool(json.loads(payload)["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return False


def dist(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": round(pct(ms, 50), 3), "p90": round(pct(ms, 90), 3), "p99": round(pct(ms, 99), 3),
            "mean": round(sum(ms) / len(ms), 3) if ms else None}


# ------------------------------------------------------------------------------------------
# Concurrent load: an asyncio HTTP/1.1 keep-alive client
# ------------------------------------------------------------------------------------------
async def read_response(reader: asyncio.StreamReader):
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            out += await reader.readexactly(size + 2)
            del out[-2:]
        payload = bytes(out)
    else:
        n = int(headers.get("content-length") or 0)
        payload = await reader.readexactly(n) if n else b""
    return status, headers, payload


class Tally:
    def __init__(self, name: str):
        self.name = name
        self.ms: list[float] = []
        self.ok = 0
        self.failed = 0
        self.statuses = collections.Counter()
        self.attempts = collections.Counter()
        self.answered_by = collections.Counter()
        self.transport_errors = 0
        self.seconds = 0.0

    def add(self, ms: float, status: int, headers: dict, payload: bytes):
        self.ms.append(ms)
        self.statuses[status] += 1
        good = ok_reply(status, payload)
        self.ok += good
        self.failed += not good
        self.attempts[headers.get("x-gateway-attempts", "?")] += 1
        self.answered_by[f"{headers.get('x-gateway-provider', '?')}.{headers.get('x-gateway-model', '?')}"] += 1

    def summary(self) -> dict:
        n = self.ok + self.failed + self.transport_errors
        att = {k: v for k, v in self.attempts.items() if k.isdigit()}
        total_att = sum(int(k) * v for k, v in att.items())
        return {
            "requests": n, "ok": self.ok, "failed": self.failed, "transport_errors": self.transport_errors,
            "success_rate": round(self.ok / n, 6) if n else None,
            "latency_ms": dist(self.ms),
            "attempts_per_request": round(total_att / sum(att.values()), 4) if att else None,
            "attempts_histogram": dict(sorted(self.attempts.items())),
            "answered_by": dict(self.answered_by.most_common()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 2),
            "rps": round(n / self.seconds, 1) if self.seconds else None,
        }


async def run_load(port: int, model: str, n: int, concurrency: int, deadline: float, tally: Tally):
    raw = raw_request(port, model)
    ticket = itertools.count()

    async def worker():
        reader = writer = None
        try:
            while next(ticket) < n and time.monotonic() < deadline:
                for attempt in (1, 2):
                    try:
                        if writer is None:
                            reader, writer = await asyncio.open_connection("127.0.0.1", port)
                            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        t0 = time.perf_counter()
                        writer.write(raw)
                        status, headers, payload = await asyncio.wait_for(read_response(reader), 60)
                        tally.add((time.perf_counter() - t0) * 1000.0, status, headers, payload)
                        if headers.get("connection", "").lower() == "close":
                            writer.close()
                            reader = writer = None
                        break
                    except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
                        if writer is not None:
                            writer.close()
                        reader = writer = None
                        if attempt == 2:
                            tally.transport_errors += 1
        finally:
            if writer is not None:
                writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.seconds += time.monotonic() - t0


def load_pair(port: int, a: tuple[str, str], b: tuple[str, str], n: int, concurrency: int, rounds: int, deadline: float):
    """Alternates two loads (`name`, model) in `rounds` rounds of n/rounds requests each; every
    chunk gets an equal share of the time still left before `deadline`."""
    ta, tb = Tally(a[0]), Tally(b[0])
    per = max(1, n // rounds)
    chunks = []
    for i in range(rounds):
        chunks += [(a, ta), (b, tb)] if i % 2 == 0 else [(b, tb), (a, ta)]
    for idx, ((_name, model), tally) in enumerate(chunks):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        asyncio.run(run_load(port, model, per, concurrency, time.monotonic() + left / (len(chunks) - idx), tally))
    return ta, tb


# ------------------------------------------------------------------------------------------
# Sequential: one blocking keep-alive connection per target, interleaved samples
# ------------------------------------------------------------------------------------------
def sequential_pairs(port: int, models: list[str], pairs: int, deadline: float) -> dict[str, list[float]]:
    conns = {m: Conn(port, 30) for m in models}
    raws = {m: raw_request(port, m) for m in models}
    out: dict[str, list[float]] = {m: [] for m in models}
    bad: dict[str, int] = {m: 0 for m in models}
    for i in range(pairs):
        if time.monotonic() > deadline:
            break
        for m in (models if i % 2 == 0 else list(reversed(models))):
            status, _h, payload, _head, _first, total_ns = conns[m].request(raws[m])
            if ok_reply(status, payload):
                out[m].append(total_ns / 1e6)
            else:
                bad[m] += 1
    for c in conns.values():
        c.close()
    for m, k in bad.items():
        if k:
            log(f"sequential: {k} failed answers for {m}")
    return out


# ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000, help="requests per load (default 10000)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds per load pair")
    ap.add_argument("--flaky-pct", type=float, default=33.3, help="failure rate of the flaky first target")
    ap.add_argument("--pairs", type=int, default=800, help="sequential interleaved pairs for (a) and (b)")
    ap.add_argument("--state-requests", type=int, default=0,
                    help="(c) requests per side for an extra comparison: healthy load while a breaker is open, "
                         "stateBinding vs none (a third gateway; 0, the default: skip)")
    ap.add_argument("--budget", type=float, default=180.0, help="seconds for the whole run (the phases share it)")
    ap.add_argument("--breaker-off-load", action="store_true",
                    help="also run the load pair on gateway B (breaker off), after gateway A's; shares the budget")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    started = time.monotonic()
    hard_deadline = started + args.budget
    command = os.environ.get("RESILIENCE_INVOKED_AS") or " ".join(
        shlex.quote(x) for x in [os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable,
                                 "bench/resilience.py", *(argv if argv is not None else sys.argv[1:])])
    if not ENTRY.is_file():
        log(f"{ENTRY} missing: run `bash scripts/build.sh` first")
        return 2

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="gw-resilience-"))
    rmock = None
    gws: dict[str, Gateway] = {}
    results: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
                     "machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname()),
                                 "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
                     "settings": vars(args), "notes": []}

    def share(fraction: float, floor: float = 5.0) -> float:
        """A deadline: `fraction` of the time left in the budget (at least `floor` s)."""
        return time.monotonic() + max(floor, (hard_deadline - time.monotonic() - 3) * fraction)

    def status_of(gw: Gateway, target: str):
        st = httpx.get(gw.base + "/status", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10).json()
        return next((t for t in st["targets"] if t["target"] == target), None)

    try:
        rmock = RMock.start(seed=args.seed, stderr=open(workdir / "rmock.stderr", "wb"))
        dead = dead_port()
        vars_ = {"WORKER_AUTH_KEY": GATEWAY_KEY}
        plan = [("A", True, "GATEWAY_STATE"), ("B", False, "GATEWAY_STATE")]
        if args.state_requests > 0:
            plan.append(("C", True, None))
        for name, breaker, binding in plan:
            log(f"starting gateway {name} (breaker {'README default' if breaker else 'off'}, "
                f"{'stateBinding' if binding else 'no stateBinding'})")
            cfg = config(rmock.base, dead, args.flaky_pct, breaker)
            if not binding:
                cfg.pop("stateBinding")
            gw = Gateway.start(workdir / f"gw-{name}", cfg, vars_, log_level="warn", state_binding=binding,
                               name=f"gateway-resilience-{name.lower()}")
            gw.variant = name
            gws[name] = gw
        results["wrangler_command"] = gws["A"].command
        for gw in gws.values():  # warm up (JIT, connections) on the healthy target only
            sequential_pairs(gw.port, ["ok.healthy", "one"], 150, time.monotonic() + 15)
        A = gws["A"]

        # (b) happy path on A while nothing is degraded: one-target route vs provider.model
        log(f"(b) route `one` vs ok.healthy, {args.pairs} interleaved sequential pairs")
        seq = sequential_pairs(A.port, ["one", "ok.healthy"], args.pairs, share(0.08))
        b_route, b_direct = dist(seq["one"]), dist(seq["ok.healthy"])
        results["b_route_vs_direct"] = {
            "route_one": b_route, "direct": b_direct, "p50_diff_ms": round(b_route["p50"] - b_direct["p50"], 4),
            "target_ms": 0.2, "met": abs(b_route["p50"] - b_direct["p50"]) <= 0.2}

        # (c) what sharing state costs: healthy load on A (stateBinding) vs C (none), first with
        # every breaker closed, then with one open (dead.m2, a target of its own)
        if "C" in gws:
            C = gws["C"]
            c_res = {}
            for part, fraction in (("all_breakers_closed", 0.08), ("one_breaker_open", 0.09)):
                if part == "one_breaker_open":
                    for gw in (A, C):
                        conn = Conn(gw.port, 30)
                        for _ in range(3):
                            conn.request(raw_request(gw.port, "dead-route-2"))
                        conn.close()
                log(f"(c) ok.healthy load, {part.replace('_', ' ')}: stateBinding (A) vs none (C), "
                    f"{args.state_requests} requests each at concurrency {args.concurrency}")
                ta, tc = Tally("A"), Tally("C")
                deadline = share(fraction)
                chunks = []
                for i in range(args.rounds):
                    chunks += [(A, ta), (C, tc)] if i % 2 == 0 else [(C, tc), (A, ta)]
                for idx, (gw, tally) in enumerate(chunks):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    asyncio.run(run_load(gw.port, "ok.healthy", max(1, args.state_requests // args.rounds), args.concurrency,
                                         time.monotonic() + left / (len(chunks) - idx), tally))
                c_res[part] = {"with_state_binding": ta.summary(), "without_state_binding": tc.summary()}
            c_res["dead_m2_breaker"] = {"A": status_of(A, "dead.m2"), "C": status_of(C, "dead.m2")}
            results["c_state_binding_cost"] = c_res

        # (a) the dead first target: every request still tries it (B, breaker off), then with
        # the breaker open (A, README default breaker)
        a: dict = {}
        log("(a) dead-route vs ok.healthy on gateway B (breaker off: the dead target is tried every time)")
        seq = sequential_pairs(gws["B"].port, ["dead-route", "ok.healthy"], args.pairs // 2, share(0.05))
        r_, d_ = dist(seq["dead-route"]), dist(seq["ok.healthy"])
        a["dead_tried_every_time"] = {"dead_route": r_, "direct": d_, "extra_p50_ms": round(r_["p50"] - d_["p50"], 4),
                                      "target_ms": 5.0, "met": r_["p50"] - d_["p50"] <= 5.0}
        log("(a) dead-route vs ok.healthy on gateway A (the breaker opens after 3 failures)")
        conn, first = Conn(A.port, 30), []
        for _ in range(3):
            st, h, payload, _head, _first, total_ns = conn.request(raw_request(A.port, "dead-route"))
            first.append({"ms": round(total_ns / 1e6, 3), "attempts": h.get("x-gateway-attempts"), "ok": ok_reply(st, payload)})
        conn.close()
        seq = sequential_pairs(A.port, ["dead-route", "ok.healthy"], args.pairs, share(0.08))
        r_, d_ = dist(seq["dead-route"]), dist(seq["ok.healthy"])
        a["first_three_requests"] = first
        a["breaker_open"] = {"dead_route": r_, "direct": d_, "extra_p50_ms": round(r_["p50"] - d_["p50"], 4),
                             "target_ms": "~0", "met": abs(r_["p50"] - d_["p50"]) <= 0.5,
                             "dead_breaker": status_of(A, "dead.m")}
        results["a_dead_first_target"] = a

        # 1. the loads: healthy alone vs flaky-route, alternating, on A then B
        loads = {}
        variants = [gws["A"]] + ([gws["B"]] if args.breaker_off_load else [])
        for i, gw in enumerate(variants):
            rmock.reset_stats()
            deadline = share(1.0 / (len(variants) - i))
            log(f"load on gateway {gw.variant}: {args.requests} x ok.healthy and {args.requests} x flaky-route "
                f"at concurrency {args.concurrency}, {args.rounds} alternating rounds, "
                f"{deadline - time.monotonic():.0f} s at most")
            healthy, flaky = load_pair(gw.port, ("healthy alone", "ok.healthy"), ("flaky-route", "flaky-route"),
                                       args.requests, args.concurrency, args.rounds, deadline)
            h, f = healthy.summary(), flaky.summary()
            added = {p: round(f["latency_ms"][p] - h["latency_ms"][p], 3) for p in ("p50", "p90", "p99")}
            fl = rmock.stats().get(f"flaky-{args.flaky_pct:g}", {"requests": 0, "failed": 0})
            loads[gw.variant] = {
                "policy": "README defaults: attemptsPerTarget 2, backoffMs 250, breaker 3 failures / 60 s cooldown"
                if gw.variant == "A" else "README defaults with the breaker off (failures 1e9)",
                "healthy_alone": h, "flaky_route": f, "added_latency_ms": added,
                "flaky_target_upstream": {"requests": fl["requests"], "failed": fl["failed"],
                                          "failure_rate": round(fl["failed"] / fl["requests"], 4) if fl["requests"] else None},
                "flaky_breaker_at_end": status_of(gw, f"flaky.flaky-{args.flaky_pct:g}"),
                "reduced": h["requests"] < args.requests or f["requests"] < args.requests,
            }
            if loads[gw.variant]["reduced"]:
                results["notes"].append(
                    f"gateway {gw.variant}: the {args.budget:.0f} s budget cut the load short: {h['requests']} + {f['requests']} "
                    f"of {args.requests} + {args.requests} requests (this machine served ~{h['rps']} req/s through the gateway)")
        results["load"] = loads
    except KeyboardInterrupt:
        log("interrupted")
        results["notes"].append("interrupted")
        return 130
    except StartError as e:
        log(str(e))
        return 1
    finally:
        for gw in reversed(list(gws.values())):
            gw.stop()
        if rmock is not None:
            rmock.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if "load" in results:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")
    report(results, args)
    return 0


def report(r: dict, args):
    p = print
    p("")
    p(f"command: {r['command']}")
    p(f"gateway A: {r.get('wrangler_command', '?')}")
    m = r["machine"]
    p(f"machine: {m['nproc']} cores, load average {m['loadavg_at_start'][0]} at start / {m['loadavg_at_end'][0]} at end; "
      f"wall {r['wall_seconds']} s; results: {os.path.relpath(args.out, REPO)}")
    for variant, L in r.get("load", {}).items():
        h, f, add = L["healthy_alone"], L["flaky_route"], L["added_latency_ms"]
        fu = L["flaky_target_upstream"]
        p("")
        p(f"load, gateway {variant} ({L['policy']}), concurrency {args.concurrency}, flaky first target fails {args.flaky_pct:g} %:")
        p(f"  {'':18} {'requests':>8} {'success':>9} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'attempts/req':>12}")
        for name, s_ in (("ok.healthy alone", h), ("flaky-route", f)):
            lat = s_["latency_ms"]
            p(f"  {name:18} {s_['requests']:>8} {s_['success_rate'] * 100:>8.2f}% {s_['rps']:>7} {lat['p50']:>8.2f} "
              f"{lat['p90']:>8.2f} {lat['p99']:>8.2f} {s_['attempts_per_request']:>12}")
        p(f"  added by the flaky first target: p50 {add['p50']:+.2f} ms, p90 {add['p90']:+.2f} ms, p99 {add['p99']:+.2f} ms")
        p(f"  flaky-route x-gateway-attempts {f['attempts_histogram']}; answered by {f['answered_by']}")
        p(f"  flaky target upstream: {fu['requests']} requests, {fu['failed']} failed ({(fu['failure_rate'] or 0) * 100:.1f} %); "
          f"its breaker at the end: {(L['flaky_breaker_at_end'] or {}).get('breaker')}")
    a = r.get("a_dead_first_target")
    if a:
        p("")
        p("(a) dead first target (connection refused) vs ok.healthy alone, sequential interleaved:")
        e = a.get("dead_tried_every_time")
        if e:
            p(f"  still tried (gateway B, breaker off): p50 {e['dead_route']['p50']:.3f} vs {e['direct']['p50']:.3f} ms -> extra p50 "
              f"{e['extra_p50_ms']:+.3f} ms over {e['dead_route']['n']} pairs (target <= 5: {'met' if e['met'] else 'NOT met'})")
        fr = a["first_three_requests"]
        p(f"  gateway A, first 3 requests (before the breaker opened): {[x['ms'] for x in fr]} ms, attempts {[x['attempts'] for x in fr]}")
        o = a["breaker_open"]
        p(f"  gateway A, breaker open: p50 {o['dead_route']['p50']:.3f} vs {o['direct']['p50']:.3f} ms -> extra p50 "
          f"{o['extra_p50_ms']:+.3f} ms over {o['dead_route']['n']} pairs (target ~0: {'met' if o['met'] else 'NOT met'}); "
          f"dead.m breaker {(o['dead_breaker'] or {}).get('breaker')}")
    b = r.get("b_route_vs_direct")
    if b:
        p("")
        p("(b) happy path, route `one` = [ok.healthy] vs ok.healthy addressed directly, sequential interleaved:")
        p(f"  route p50 {b['route_one']['p50']:.3f} ms (p90 {b['route_one']['p90']:.3f}), direct p50 {b['direct']['p50']:.3f} ms "
          f"(p90 {b['direct']['p90']:.3f}) over {b['route_one']['n']} pairs -> p50 difference {b['p50_diff_ms']:+.3f} ms "
          f"(target <= 0.2: {'met' if b['met'] else 'NOT met'})")
    c = r.get("c_state_binding_cost")
    if c:
        p("")
        p(f"(c) ok.healthy load at concurrency {args.concurrency}, stateBinding (A) vs none (C), interleaved:")
        for part in ("all_breakers_closed", "one_breaker_open"):
            if part not in c:
                continue
            w, wo = c[part]["with_state_binding"], c[part]["without_state_binding"]
            p(f"  {part.replace('_', ' '):20} A: {w['requests']:>5} req, {w['rps']:>6} req/s, p50 {w['latency_ms']['p50']:7.2f} ms | "
              f"C: {wo['requests']:>5} req, {wo['rps']:>6} req/s, p50 {wo['latency_ms']['p50']:7.2f} ms")
    for n in r.get("notes", []):
        p(f"note: {n}")


if __name__ == "__main__":
    sys.exit(main())
