#!/usr/bin/env python3
"""Loopback benchmark of the gateway under `wrangler dev` (a benchmark, not a test).

    bash scripts/bench.sh [options]        # setup + build + venv + wrk, then this script
    .venv/bin/python bench/run.py [options] # --help lists them; defaults take about 3 minutes

One run starts, all at the same time and all on 127.0.0.1:
  * the strict mock upstream tests/e2e/mock_upstream.py (through bench/mock_nodelay.py, which
    only turns TCP_NODELAY on: see that file; --mock-nagle runs it bare);
  * the gateway (a snapshot of build/ taken at the start) under `wrangler dev --log-level warn`;
  * the floor worker bench/floor-worker.mjs under `wrangler dev` with the same settings;
  * unless --no-log-compare, three more gateways: at `--log-level error`, at wrangler's default
    level (`log`: prints the per-request console line) and configured with
    `"logRequests": "errors"` (successful requests write no log line), for an informative look
    at what the per-request console line costs under wrangler dev.
It measures, interleaving targets wherever it can so that machine noise hits all alike:
  1. sequential latency (time to first body byte, total) of an OpenAI chat SSE stream through the
     gateway's passthrough, the floor worker, and the mock called directly (added = minus direct);
  2. the echo provider's latency (non-stream and stream), next to the floor worker's local answer;
  3. requests/s at a fixed concurrency (wrk when installed, else a Python asyncio client), in
     rounds of rotating order, with the CPU time each serving process spent per request;
  4. the gzip -9 size of build/index_bg.wasm.
It prints a compact table and writes target/bench-results.json. Standard library only. Every
process it starts gets its own process group, stopped on exit, error, Ctrl-C or SIGTERM; a hard
time limit (--budget) bounds the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MOCK = REPO / "tests" / "e2e" / "mock_upstream.py"
MOCK_NODELAY = HERE / "mock_nodelay.py"
FLOOR = HERE / "floor-worker.mjs"
ENTRY = REPO / "build" / "entry.mjs"
WASM = REPO / "build" / "index_bg.wasm"
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
RESULTS = REPO / "target" / "bench-results.json"
NO_INSPECTOR = False  # --no-inspector

GATEWAY_KEY = "bench-key"
UPSTREAM_KEY = "sk-upstream-bench"
UPSTREAM_ANT_KEY = "sk-ant-upstream-bench"
COMPAT_DATE = "2026-04-20"
COMPAT_FLAGS = ["enable_request_signal"]
CHAT_PATH = "/v1/chat/completions"
USER_TEXT = "hi"


class BenchError(Exception):
    pass


def log(msg: str):
    sys.stderr.write(f"[bench] {msg}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------
# Processes: each in its own process group, all stopped in reverse order at the end.
# ------------------------------------------------------------------------------------------
class Procs:
    def __init__(self):
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name, cmd, cwd, env=None, stdout=None, stderr=None) -> subprocess.Popen:
        p = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             start_new_session=True)
        self.items.append((name, p))
        return p

    @staticmethod
    def stop(p: subprocess.Popen, grace=6.0):
        if p.poll() is not None:
            # the leader is gone; its group (workerd children) may still be around
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
        try:
            pgid = os.getpgid(p.pid)
        except ProcessLookupError:
            return
        if pgid != p.pid:  # never signal a group we did not create
            p.terminate()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
            return
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self):
        # ignore further Ctrl-C while cleaning up, so cleanup itself is not interrupted
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for _, p in reversed(self.items):
                self.stop(p)
            self.items.clear()
        finally:
            signal.signal(signal.SIGINT, old)


_PORT_RNG = random.Random()


def free_port() -> int:
    """A free port below the ephemeral range: wrangler/workerd bind several port-0 sockets while
    starting, so a port picked from the ephemeral range (bind to 0) can be taken again before
    the wrangler dev it was meant for binds it."""
    try:
        lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    for _ in range(200):
        port = _PORT_RNG.randrange(20000, max(20001, lo - 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n=3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def group_pids(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5 (pgrp), counted after "pid (comm)"
            out.append(int(d))
    return out


CLK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """utime+stime in seconds (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return 0.0
    fields = st[st.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def role_of(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    exe = os.path.basename(cmd[0].decode(errors="replace")) if cmd else "?"
    if exe == "workerd":
        # wrangler dev runs two workerd: the public proxy (entry socket on our port) and the
        # one that runs the worker itself (with the inspector)
        return "workerd-user" if any(a.startswith(b"--inspector-addr") for a in cmd) else "workerd-proxy"
    if exe.startswith("python"):
        return "python"
    if exe == "node":
        return "node"
    return exe


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK


def own_cpu(servers) -> float:
    """CPU seconds of this script, its finished children (wrk) and the server groups."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + sum(
        sum(s.cpu_snapshot().values()) for s in servers)


def workerd_pids(server) -> list[int]:
    return sorted(p for p in group_pids(server.proc.pid) if role_of(p).startswith("workerd"))


class Server:
    """A process group we started that serves on one port (mock or wrangler dev)."""

    def __init__(self, name: str, proc: subprocess.Popen, port: int, log_path: Path):
        self.name, self.proc, self.port, self.log_path = name, proc, port, log_path

    def cpu_snapshot(self) -> dict[str, float]:
        snap: dict[str, float] = {}
        for pid in group_pids(self.proc.pid):
            r = role_of(pid)
            snap[r] = snap.get(r, 0.0) + cpu_of(pid)
        return snap


# ------------------------------------------------------------------------------------------
# A minimal blocking HTTP/1.1 client over one keep-alive connection, for precise timings.
# ------------------------------------------------------------------------------------------
class Conn:
    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.t_last = 0
        self.reconnects = -1

    def connect(self):
        self.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, bytearray()
        self.reconnects += 1

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("connection closed by server")
        self.t_last = time.perf_counter_ns()
        self.buf += data

    def _readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def request(self, raw: bytes):
        """Sends one request; returns (status, headers, body, t_head_ns, t_first_body_ns, t_total_ns)."""
        if self.sock is None:
            self.connect()
        fresh = self.reconnects
        try:
            return self._request(raw)
        except (ConnectionError, BrokenPipeError) as e:
            if self.reconnects != fresh or self.buf:
                raise
            # an idle keep-alive connection the server had closed: retry once on a new one
            self.connect()
            return self._request(raw)

    def _request(self, raw: bytes):
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)
        while not self.buf:
            self._fill()
        t_head = self.t_last
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        t_first = self.t_last if self.buf else None
        body = bytearray()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                if t_first is None:
                    while not self.buf:
                        self._fill()
                    t_first = self.t_last
                size = int(self._readline().split(b";")[0], 16)
                if size == 0:
                    while self._readline():
                        pass
                    break
                body += self._read(size)
                self._read(2)
        else:
            n = int(headers.get("content-length", "0"))
            if n:
                if t_first is None:
                    while not self.buf:
                        self._fill()
                    t_first = self.t_last
                body += self._read(n)
        t_end = time.perf_counter_ns()
        if t_first is None:
            t_first = t_end
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, bytes(body), t_head - t0, t_first - t0, t_end - t0


def raw_post(port: int, path: str, body: bytes, auth: str | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Accept: */*"]
    if auth:
        lines.append(f"Authorization: Bearer {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat_body(model: str, stream: bool) -> bytes:
    b = {"model": model, "messages": [{"role": "user", "content": USER_TEXT}]}
    if stream:
        b["stream"] = True
    return json.dumps(b, separators=(",", ":")).encode()


class Target:
    """One kind of request against one server, with its own keep-alive connection."""

    def __init__(self, name, server: Server, path, body: bytes, auth, stream: bool, timeout: float):
        self.name, self.server, self.path, self.body, self.auth, self.stream = name, server, path, body, auth, stream
        self.port = server.port
        self.raw = raw_post(self.port, path, body, auth)
        self.conn = Conn(self.port, timeout)
        self.samples: list[tuple[int, int, int]] = []  # (head, first body byte, total) ns

    def check(self, status, body: bytes):
        if status != 200:
            raise BenchError(f"{self.name}: HTTP {status}: {body[:400]!r}")
        text = body.decode(errors="replace")
        if self.stream:
            if "data: " not in text or ("[DONE]" not in text and "message_stop" not in text):
                raise BenchError(f"{self.name}: not a complete SSE stream: {text[:400]!r}")
        elif self.path.endswith("/local"):
            pass
        else:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                raise BenchError(f"{self.name}: not JSON: {text[:400]!r}")
            if not obj.get("choices"):
                raise BenchError(f"{self.name}: no choices: {text[:400]!r}")

    def once(self, record=True):
        status, _h, body, th, tf, tt = self.conn.request(self.raw)
        self.check(status, body)
        if record:
            self.samples.append((th, tf, tt))
        return body


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------
def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(target: Target) -> dict:
    out = {"n": len(target.samples)}
    for idx, key in ((0, "head"), (1, "ttfb"), (2, "total")):
        ms = [s[idx] / 1e6 for s in target.samples]
        out[key] = {f"p{p}": round(pct(ms, p), 4) for p in (50, 90, 99)}
        out[key]["mean"] = round(sum(ms) / len(ms), 4) if ms else None
    return out


def added(a: dict, base: dict) -> dict:
    return {k: {p: round(a[k][p] - base[k][p], 4) for p in ("p50", "p90", "p99")} for k in ("ttfb", "total")}


# ------------------------------------------------------------------------------------------
# Load generators
# ------------------------------------------------------------------------------------------
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{auth}wrk.body = [==[{body}]==]
"""


def parse_wrk(out: str) -> dict:
    def dur_ms(s):
        m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", s)
        if not m:
            return None
        v = float(m.group(1))
        return v * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]

    res = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        res["requests"] = int(m.group(1))
        res["seconds"] = dur_ms(m.group(2) + m.group(3)) / 1e3
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        res[f"lat_p{p}_ms"] = round(dur_ms(m.group(1)), 3) if m and dur_ms(m.group(1)) is not None else None
    return res


def run_wrk(procs: Procs, target: Target, conc: int, seconds: float, threads: int, tmp: Path) -> dict:
    lua = tmp / f"wrk-{target.name}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {target.auth}"\n' if target.auth else ""
    lua.write_text(WRK_LUA.format(auth=auth, body=target.body.decode()))
    cmd = ["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s", "--latency",
           "-s", str(lua), f"http://127.0.0.1:{target.port}{target.path}"]
    p = procs.start("wrk", cmd, REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=seconds + 20)
    except subprocess.TimeoutExpired:
        Procs.stop(p)
        raise BenchError(f"wrk against {target.name} did not finish")
    finally:
        procs.items = [(n, q) for n, q in procs.items if q is not p]
    text = out.decode(errors="replace")
    if p.returncode != 0:
        raise BenchError(f"wrk failed ({p.returncode}): {text}")
    res = parse_wrk(text)
    res["command"] = shlex.join(cmd)
    if res.get("rps") is None:
        raise BenchError(f"could not parse wrk output: {text}")
    return res


async def _py_worker(target: Target, deadline: float, stats: dict):
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = stats["lat"]
    try:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            writer.write(target.raw)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            hdr = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdr[k.strip().lower()] = v.strip()
            if "chunked" in hdr.get("transfer-encoding", "").lower():
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        while (await reader.readline()) not in (b"\r\n", b""):
                            pass
                        break
                    await reader.readexactly(size + 2)
            else:
                n = int(hdr.get("content-length", "0"))
                if n:
                    await reader.readexactly(n)
            lat.append(time.perf_counter() - t0)
            stats["requests"] += 1
            if not 200 <= status < 400:
                stats["non2xx"] += 1
            if hdr.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        stats["socket_errors"] += 1
    finally:
        writer.close()


def run_python_load(target: Target, conc: int, seconds: float) -> dict:
    stats = {"requests": 0, "non2xx": 0, "socket_errors": 0, "lat": []}

    async def main():
        deadline = time.monotonic() + seconds
        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*[_py_worker(target, deadline, stats) for _ in range(conc)]),
                               timeout=seconds + 20)
        return time.monotonic() - t0

    elapsed = asyncio.run(main())
    lat = [x * 1e3 for x in stats.pop("lat")]
    stats.update(seconds=elapsed, rps=stats["requests"] / elapsed,
                 **{f"lat_p{p}_ms": round(pct(lat, p), 3) for p in (50, 90, 99)},
                 command=f"(python asyncio client: {conc} connections, {seconds:g} s, POST {target.path})")
    return stats


# ------------------------------------------------------------------------------------------
# Starting the servers
# ------------------------------------------------------------------------------------------
def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid TOML basic string


def gateway_config(mock_base: str) -> dict:
    """The gateway's ANY_API_CONFIG for the benchmarks: the mock as OpenAI Chat and (for the
    same chat request converted) as Anthropic, and the echo provider."""
    return {"version": 1, "providers": {
        "oai": {"type": "openai-chat-completions", "baseURL": f"{mock_base}/v1", "apiKey": UPSTREAM_KEY,
                "models": {"gpt-4o-mini": {}}},
        "ant": {"type": "claude", "baseURL": mock_base, "apiKey": UPSTREAM_ANT_KEY,
                "models": {"claude-sonnet-4-5": {}}},
        "echo": {"type": "echo", "models": ["e1"]}}}


def gateway_vars(config: dict) -> dict:
    """The gateway's wrangler vars for an ANY_API_CONFIG: the config and the caller key."""
    return {"ANY_API_CONFIG": json.dumps(config, separators=(",", ":")), "WORKER_AUTH_KEY": GATEWAY_KEY}


def floor_worker_vars(mock_base: str) -> dict:
    """bench/floor-worker.mjs's vars: the same two mock endpoints and keys."""
    return {"UPSTREAM_URL": mock_base + CHAT_PATH, "UPSTREAM_MESSAGES_URL": mock_base + "/v1/messages",
            "UPSTREAM_KEY": UPSTREAM_KEY, "UPSTREAM_ANT_KEY": UPSTREAM_ANT_KEY}


def start_mock(procs: Procs, tmp: Path, nodelay: bool) -> Server:
    errp = tmp / "mock.stderr"
    err = open(errp, "wb")
    script = MOCK_NODELAY if nodelay else MOCK
    p = procs.start("mock", [sys.executable, "-u", str(script), "--port", "0"], REPO, stdout=subprocess.PIPE, stderr=err)
    err.close()
    deadline = time.monotonic() + 15
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 256)
            if not chunk:
                break
            line += chunk
    text = line.decode(errors="replace").strip()
    if not text.startswith("READY "):
        raise BenchError(f"mock upstream did not start: {text!r} {tail(errp)}")
    p.stdout.close()
    return Server("mock", p, int(text.split()[1]), errp)


def start_wrangler(procs: Procs, tmp: Path, name: str, main: Path, vars_: dict, log_level: str | None,
                   attempt: int = 0) -> Server:
    d = tmp / (name if attempt == 0 else f"{name}.retry{attempt}")
    d.mkdir()
    toml = (f'name = "{name}"\n'
            f"main = {toml_str(str(main))}\n"
            f"compatibility_date = {toml_str(COMPAT_DATE)}\n"
            f"compatibility_flags = {json.dumps(COMPAT_FLAGS)}\n"
            "\n[vars]\n" + "".join(f"{k} = {toml_str(v)}\n" for k, v in vars_.items()))
    (d / "wrangler.toml").write_text(toml)
    port = free_port()
    cmd = [str(WRANGLER), "dev", "--config", str(d / "wrangler.toml"), "--ip", "127.0.0.1", "--port", str(port),
           "--show-interactive-dev-session=false",
           # several wrangler dev run at once here: each needs its own inspector port (default 9229)
           "--inspector-port", str(free_port())]
    if log_level:
        cmd += ["--log-level", log_level]
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false",
               WRANGLER_LOG_PATH=str(d / "wrangler-logs"), NO_COLOR="1", FORCE_COLOR="0")
    if NO_INSPECTOR:
        # wrangler 4.86 skips its InspectorProxyWorker (the devtools relay) inside VS Code's
        # JS debug terminal, which it recognises by this variable alone
        env["VSCODE_INSPECTOR_OPTIONS"] = "{}"
    logp = d / "wrangler.log"
    with open(logp, "wb") as logf:
        p = procs.start(name, cmd, d, env=env, stdout=logf, stderr=subprocess.STDOUT)
    s = Server(name, p, port, logp)
    s.cmd = cmd
    s.attempt = attempt
    s.respawn = lambda: start_wrangler(procs, tmp, name, main, vars_, log_level, attempt + 1)
    return s


def wait_ready(servers: list[Server], probes: dict, timeout=90.0):
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for s in list(pending):
            if s.proc.poll() is not None:
                logs = sorted((s.log_path.parent / "wrangler-logs").glob("*.log"))
                detail = tail(logs[-1], 6000) if logs else ""
                if getattr(s, "attempt", 1) < 1:
                    # e.g. a port picked by free_port() taken by someone else meanwhile: once more
                    log(f"{s.name} exited with {s.proc.returncode} while starting; starting it once more\n"
                        f"{tail(s.log_path, 1500)}")
                    s.__dict__.update(s.respawn().__dict__)
                    continue
                raise BenchError(f"{s.name} exited with {s.proc.returncode}:\n{tail(s.log_path)}\n{detail}")
            c = Conn(s.port, 5)
            try:
                status, *_ = c.request(probes[s.name])
                if status < 500:
                    pending.remove(s)
            except OSError:
                pass
            finally:
                c.close()
        if pending:
            if time.monotonic() > deadline:
                raise BenchError(f"not ready within {timeout:.0f} s: {[s.name for s in pending]}\n"
                                 + "\n".join(tail(s.log_path) for s in pending))
            time.sleep(0.3)


# ------------------------------------------------------------------------------------------
# Phases
# ------------------------------------------------------------------------------------------
def interleaved(targets: list[Target], rounds: int, rng: random.Random, record: bool, deadline: float):
    """`rounds` rounds of one request per target, in a fresh random order each round."""
    for i in range(rounds):
        if time.monotonic() > deadline:
            raise BenchError("time budget exhausted during the latency phase (use fewer --rounds)")
        order = list(targets)
        rng.shuffle(order)
        for t in order:
            t.once(record)


def rps_phase(procs, targets: list[Target], servers: list[Server], args, tmp: Path, use_wrk: bool, deadline: float):
    """`rps_rounds` rounds of `rps_seconds` per target, rotating the order each round."""
    def one(t: Target, secs: float):
        if use_wrk:
            return run_wrk(procs, t, args.concurrency, secs, args.wrk_threads, tmp)
        return run_python_load(t, args.concurrency, secs)

    for t in targets:  # warm each target up under load
        one(t, args.rps_warmup)
    per: dict[str, list[dict]] = {t.name: [] for t in targets}
    for r in range(args.rps_rounds):
        k = r % len(targets)
        for t in targets[k:] + targets[:k]:
            if time.monotonic() + args.rps_seconds > deadline:
                raise BenchError("time budget exhausted during the throughput phase")
            before = {s.name: s.cpu_snapshot() for s in servers}
            res = one(t, args.rps_seconds)
            time.sleep(args.settle)  # work queued during the run (wrangler's inspector relay) lands here too
            after = {s.name: s.cpu_snapshot() for s in servers}
            res["cpu_s"] = {s: {role: round(after[s].get(role, 0) - before[s].get(role, 0), 3)
                                for role in after[s]} for s in after}
            per[t.name].append(res)
    out = {}
    for t in targets:
        runs = per[t.name]
        reqs = sum(r["requests"] for r in runs)
        secs = sum(r["seconds"] for r in runs)
        cpu: dict[str, dict[str, float]] = {}
        for r in runs:
            for s, roles in r["cpu_s"].items():
                for role, v in roles.items():
                    cpu.setdefault(s, {}).setdefault(role, 0.0)
                    cpu[s][role] += v
        cpu_us = {s: {role: round(v * 1e6 / reqs, 1) for role, v in roles.items() if v > 0}
                  for s, roles in cpu.items()} if reqs else {}
        cpu_us = {s: v for s, v in cpu_us.items() if v}
        out[t.name] = {
            "rps": round(reqs / secs, 1) if secs else 0.0,
            "rps_rounds": [round(r["rps"], 1) for r in runs],
            "requests": reqs, "seconds": round(secs, 2),
            "non2xx": sum(r["non2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs),
            "lat_p50_ms": round(pct([r["lat_p50_ms"] for r in runs if r.get("lat_p50_ms") is not None], 50), 3),
            "lat_p99_ms": round(pct([r["lat_p99_ms"] for r in runs if r.get("lat_p99_ms") is not None], 50), 3),
            "server_cpu_us_per_req": cpu_us,
            "serves": [t.server.name] + (["mock"] if t.server.name != "mock" and not t.path.endswith("/local")
                                         and "echo" not in t.name else []),
            "command": runs[0]["command"] if runs else None,
        }
    return out


def wasm_gzip_size(path: Path) -> tuple[int, int, str]:
    data = path.read_bytes()
    if shutil.which("gzip"):
        gz = subprocess.run(["gzip", "-9c", str(path)], check=True, stdout=subprocess.PIPE).stdout
        how = "gzip -9c"
    else:
        gz = gzip.compress(data, 9)
        how = "python gzip level 9"
    return len(data), len(gz), how


def tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot_build(src: Path, dst: Path, tries: int = 10):
    """Copies build/ while no rebuild swaps its files (scripts/build.sh replaces them one by one)."""
    for _ in range(tries):
        before = tree_hashes(src)
        shutil.copytree(src, dst)
        if before == tree_hashes(src) == tree_hashes(dst) and all(
                (dst / f).is_file() for f in ("entry.mjs", "index.js", "index_bg.wasm")):
            return
        shutil.rmtree(dst, ignore_errors=True)
        time.sleep(1.0)
    raise BenchError(f"{src} kept changing (a rebuild running?); could not take a consistent snapshot")


def sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
def fmt(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"


def report(res: dict) -> str:
    L = []
    lat = res["latency"]
    add = res["added"]
    L.append(f"== 1+2. SSE passthrough latency, ms ({lat['direct_stream']['n']} sequential requests per target, "
             f"interleaved in random order; ttfb = first body byte)")
    L.append(f"{'target':<34}{'ttfb p50':>9}{'p90':>8}{'p99':>8}{'total p50':>11}{'p90':>8}{'p99':>8}")
    for key, label in (("direct_stream", "mock direct"), ("gateway_stream", "gateway oai.gpt-4o-mini"),
                       ("floor_stream", "floor worker (JS)"), ("direct_claude_stream", "mock direct, claude stream"),
                       ("gateway_converted_stream", "gateway chat->claude converted"),
                       ("floor_claude_stream", "floor worker, claude stream")):
        s = lat[key]
        L.append(f"{label:<34}{fmt(s['ttfb']['p50']):>9}{fmt(s['ttfb']['p90']):>8}{fmt(s['ttfb']['p99']):>8}"
                 f"{fmt(s['total']['p50']):>11}{fmt(s['total']['p90']):>8}{fmt(s['total']['p99']):>8}")
    for key, label in (("gateway_stream", "added by gateway"), ("floor_stream", "added by floor"),
                       ("gateway_converted_stream", "added by gateway, converted"),
                       ("floor_claude_stream", "added by floor, claude stream")):
        a = add[key]
        L.append(f"{label:<34}{fmt(a['ttfb']['p50']):>9}{fmt(a['ttfb']['p90']):>8}{fmt(a['ttfb']['p99']):>8}"
                 f"{fmt(a['total']['p50']):>11}{fmt(a['total']['p90']):>8}{fmt(a['total']['p99']):>8}")
    L.append("   added = target minus mock direct (of the same upstream stream), percentile by percentile; "
             "floor = bench/floor-worker.mjs")
    o = res["overhead_vs_floor"]
    L.append(f"gateway added-p50 minus floor added-p50: ttfb {o['ttfb_p50_ms']:+.3f} ms, total {o['total_p50_ms']:+.3f} ms"
             f"  (target <= 0.5 ms: {'MET' if o['met'] else 'NOT MET'})")
    oc = res.get("overhead_converted_vs_floor")
    if oc:
        L.append(f"converted added-p50 minus floor (claude stream) added-p50: ttfb {oc['ttfb_p50_ms']:+.3f} ms, total {oc['total_p50_ms']:+.3f} ms"
                 f"  (target <= 1 ms: {'MET' if oc['met'] else 'NOT MET'})")
    L.append("")
    L.append("== 3. echo provider latency, ms (same interleaved rounds)")
    L.append(f"{'target':<34}{'p50':>9}{'p90':>8}{'p99':>8}")
    for key, label in (("echo_nonstream", "gateway echo.e1 non-stream"), ("echo_stream", "gateway echo.e1 stream"),
                       ("floor_local", "floor worker local reply (ref)")):
        s = lat[key]["total"]
        L.append(f"{label:<34}{fmt(s['p50']):>9}{fmt(s['p90']):>8}{fmt(s['p99']):>8}")
    if res.get("log_levels"):
        L.append("")
        L.append("== console logging (informative): the gateway at several wrangler --log-level, and configured with "
                 "logRequests: errors (no line for a success); interleaved; ms p50 (p90)")
        L.append(f"{'log level':<34}{'SSE ttfb':>14}{'SSE total':>16}{'echo':>16}")
        for lvl, v in res["log_levels"].items():
            L.append(f"{lvl:<34}{fmt(v['stream_ttfb_p50']):>7} ({fmt(v['stream_ttfb_p90'])})"
                     f"{fmt(v['stream_total_p50']):>8} ({fmt(v['stream_total_p90'])})"
                     f"{fmt(v['echo_p50']):>8} ({fmt(v['echo_p90'])})")
    L.append("")
    t = res["throughput"]
    L.append(f"== 4. throughput: {t['concurrency']} concurrent connections, {t['rounds']} rounds x {t['seconds_per_round']:g} s "
             f"per target, rotating order; load generator: {t['loadgen']}")
    L.append(f"{'target':<34}{'req/s':>7}{'(rounds)':>14}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}  "
             f"CPU us/req of the serving processes")
    for key, label in (("mock_direct", "mock direct (non-stream)"), ("gateway_passthrough", "gateway oai.gpt-4o-mini"),
                       ("gateway_converted", "gateway chat->claude converted"),
                       ("floor", "floor worker"), ("gateway_echo", "gateway echo.e1"), ("floor_local", "floor local (ref)"),
                       ("gateway_nolog_passthrough", "gateway, logRequests: errors"),
                       ("gateway_nolog_echo", "gateway echo, logRequests: errors")):
        r = t["targets"].get(key)
        if not r:
            continue
        parts = []
        for s in r["serves"]:
            roles = r["server_cpu_us_per_req"].get(s, {})
            if s == "mock":
                parts.append(f"mock {roles.get('python', 0):.0f}")
            else:
                parts.append(" ".join(f"{short}={roles.get(role, 0):.0f}" for role, short in
                                      (("workerd-proxy", "proxy"), ("workerd-user", "user"), ("node", "node"))))
        spread = f"({min(r['rps_rounds']):.0f}-{max(r['rps_rounds']):.0f})" if r["rps_rounds"] else ""
        L.append(f"{label:<34}{r['rps']:>7.0f}{spread:>14}{fmt(r['lat_p50_ms']):>8}{fmt(r['lat_p99_ms']):>8}"
                 f"{r['non2xx'] + r['socket_errors']:>5}  {'; '.join(parts)}")
    L.append("   req/s over all rounds (min-max of rounds); p50/p99 = latency under load (median over rounds); "
             "proxy/user = wrangler's two workerd (entry proxy; the worker itself), node = wrangler's node, mock = python")
    if "ratio_converted_floor_pct" in t:
        L.append(f"gateway converted / floor: {t['ratio_converted_floor_pct']:.1f} %  (target >= 90 %: "
                 f"{'MET' if t['ratio_converted_floor_pct'] >= 90 else 'NOT MET'})")
    L.append(f"gateway passthrough / floor: {t['ratio_gateway_floor_pct']:.1f} %  (target >= 90 %: "
             f"{'MET' if t['ratio_gateway_floor_pct'] >= 90 else 'NOT MET'})")
    L.append(f"gateway echo / floor local:  {t['ratio_echo_floor_local_pct']:.1f} %  (informative)")
    if "ratio_nolog_floor_pct" in t:
        L.append(f"gateway with logRequests: errors / floor: {t['ratio_nolog_floor_pct']:.1f} %  (informative)")
    L.append("")
    w = res["wasm"]
    L.append(f"== 5. build/index_bg.wasm: {w['bytes']} bytes, {w['gzip9_bytes']} gzipped ({w['gzip_how']}) = "
             f"{w['gzip9_bytes'] / 1e6:.3f} MB  (target <= 1 MB: {'MET' if w['gzip9_bytes'] <= 1_000_000 else 'NOT MET'})")
    L.append("")
    L.append(f"command: {res['command']}")
    L.append(f"  python: {res['python_command']}")
    L.append(f"  wrangler: {res['wrangler_command_gateway']}")
    if t["targets"].get("gateway_passthrough", {}).get("command"):
        L.append(f"  load: {t['targets']['gateway_passthrough']['command']}")
    ml = res.get("machine_load") or {}
    if ml:
        L.append(f"machine: {ml['cores']} cores; during the measurements the bench's processes used {ml['bench_cores']:.2f} "
                 f"cores and everything else {ml['foreign_cores']:.2f} on average")
    L.append(f"results: {res['results_path']}   (wall time {res['wall_seconds']:.0f} s)")
    for n in res["notes"]:
        L.append(f"note: {n}")
    return "\n".join(L)


# ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=300, help="measured sequential requests per latency target")
    ap.add_argument("--warmup", type=int, default=60, help="unrecorded warm-up rounds before measuring")
    ap.add_argument("--log-rounds", type=int, default=120, help="rounds for the console-logging comparison")
    ap.add_argument("--no-log-compare", action="store_true",
                    help="skip the console-logging comparison (and its three extra wrangler dev instances)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rps-seconds", type=int, default=3, help="seconds per throughput round and target")
    ap.add_argument("--rps-rounds", type=int, default=4)
    ap.add_argument("--rps-warmup", type=int, default=1, help="seconds of unrecorded load per target first")
    ap.add_argument("--settle", type=float, default=0.75,
                    help="idle seconds after each throughput run, still counted in its CPU time")
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=290.0, help="hard wall-time limit of the whole run, seconds")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-inspector", action="store_true",
                    help="diagnostic: run every wrangler dev without its devtools relay (InspectorProxyWorker), "
                         "closer to the bare runtime; the default keeps wrangler dev as it comes")
    ap.add_argument("--mock-nagle", action="store_true",
                    help="run tests/e2e/mock_upstream.py as is (Nagle on: ~40 ms stalls in its SSE streams)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (wrangler logs) for debugging")
    args = ap.parse_args(argv)

    global NO_INSPECTOR
    NO_INSPECTOR = args.no_inspector
    t_start = time.monotonic()
    deadline = t_start + args.budget - 15  # leave time to stop everything

    def on_alarm(*_):
        raise BenchError(f"hard time limit of {args.budget:.0f} s reached")

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGHUP, on_term)
    signal.alarm(int(args.budget))

    for p, what in ((ENTRY, "run `bash scripts/build.sh`"), (WRANGLER, "run `bash scripts/setup.sh`"),
                    (MOCK, "tests/e2e/mock_upstream.py is missing"), (FLOOR, "bench/floor-worker.mjs is missing"),
                    (MOCK_NODELAY, "bench/mock_nodelay.py is missing")):
        if not p.exists():
            log(f"missing {p}: {what}")
            return 2
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk") is not None)
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        log("wrk not found (apt-get install -y wrk)")
        return 2

    notes = []
    wasm_sha = None
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    try:
        log("starting mock upstream")
        mock = start_mock(procs, tmp, not args.mock_nagle)
        if not args.mock_nagle:
            notes.append("mock run through bench/mock_nodelay.py (TCP_NODELAY); without it every mock SSE stream "
                         "stalls ~40 ms on Nagle + delayed ACK (see --mock-nagle)")
        mock_base = f"http://127.0.0.1:{mock.port}"
        cfg = gateway_config(mock_base)
        gw_vars = gateway_vars(cfg)
        floor_vars = floor_worker_vars(mock_base)
        log("starting wrangler dev: gateway, floor" +
            ("" if args.no_log_compare else ", gateway@error, gateway@log, gateway-quiet (logRequests: errors)"))
        # wrangler dev reloads the worker whenever a file of its bundle is replaced, and other work
        # on this machine may rebuild build/ meanwhile: run a snapshot of build/ taken now.
        snap = tmp / "snapshot"
        snapshot_build(ENTRY.parent, snap / "build")
        entry = snap / "build" / "entry.mjs"
        quiet_vars = gateway_vars(dict(cfg, logRequests="errors"))
        wasm_sha = sha(snap / "build" / WASM.name)
        wbytes, wgz, how = wasm_gzip_size(snap / "build" / WASM.name)
        gw = start_wrangler(procs, tmp, "gateway", entry, gw_vars, "warn")
        floor = start_wrangler(procs, tmp, "floor", FLOOR, floor_vars, "warn")
        extra = []
        if not args.no_log_compare:
            extra = [start_wrangler(procs, tmp, "gateway-error", entry, gw_vars, "error"),
                     start_wrangler(procs, tmp, "gateway-log", entry, gw_vars, None),
                     start_wrangler(procs, tmp, "gateway-quiet", entry, quiet_vars, "warn")]
        workers = [gw, floor] + extra
        probes = {s.name: f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n\r\n".encode() for s in workers}
        probes["floor"] = raw_post(floor.port, "/local", b"{}", None)
        wait_ready(workers, probes)
        log(f"ready after {time.monotonic() - t_start:.1f} s (mock :{mock.port}, gateway :{gw.port}, floor :{floor.port})")
        time.sleep(1.0)  # let the freshly started processes settle
        pids_at_start = {s.name: workerd_pids(s) for s in workers}
        load0 = (time.monotonic(), machine_busy(), own_cpu([mock] + workers))

        to = 15.0
        mk = lambda name, srv, path, model, auth, stream: Target(name, srv, path, chat_body(model, stream), auth, stream, to)
        lat_targets = [
            mk("direct_stream", mock, CHAT_PATH, "gpt-4o-mini", UPSTREAM_KEY, True),
            mk("gateway_stream", gw, CHAT_PATH, "oai.gpt-4o-mini", GATEWAY_KEY, True),
            mk("floor_stream", floor, CHAT_PATH, "gpt-4o-mini", None, True),
            mk("echo_nonstream", gw, CHAT_PATH, "echo.e1", GATEWAY_KEY, False),
            mk("echo_stream", gw, CHAT_PATH, "echo.e1", GATEWAY_KEY, True),
            mk("floor_local", floor, "/local", "gpt-4o-mini", None, False),
        ]
        byname = {t.name: t for t in lat_targets}

        # Same upstream request for all three paths? (else "added" would compare different work)
        urllib_conn = Conn(mock.port, 10)
        urllib_conn.request(f"DELETE /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        for t in lat_targets:
            t.once(record=False)
        _s, _h, body, *_ = urllib_conn.request(f"GET /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        urllib_conn.close()
        seen = {}
        for rec in json.loads(body):
            if rec.get("method") == "POST":
                seen.setdefault(json.dumps(rec["body"], sort_keys=True), 0)
                seen[json.dumps(rec["body"], sort_keys=True)] += 1
        if len(seen) != 1:
            notes.append(f"the mock saw different upstream bodies for direct/gateway/floor: {list(seen)}")

        # Conversion (chat client -> claude upstream), measured beside passthrough, against the
        # mock's Claude stream called directly and through the floor worker with the very body
        # the gateway sent upstream (so that "added" compares the same upstream stream).
        conv_t = mk("gateway_converted_stream", gw, CHAT_PATH, "ant.claude-sonnet-4-5", GATEWAY_KEY, True)
        c = Conn(mock.port, 10)
        c.request(b"DELETE /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n")
        conv_t.once(record=False)
        _s, _h, body, *_ = c.request(b"GET /_mock/requests HTTP/1.1\r\nHost: x\r\n\r\n")
        c.close()
        claude_body = json.dumps(next(r["body"] for r in json.loads(body) if r.get("method") == "POST"),
                                 separators=(",", ":")).encode()
        claude_direct = Target("direct_claude_stream", mock, "/v1/messages", claude_body, None, True, to)
        claude_direct.raw = claude_direct.raw.replace(
            b"Accept: */*", f"Accept: */*\r\nx-api-key: {UPSTREAM_ANT_KEY}\r\nanthropic-version: 2023-06-01".encode())
        claude_floor = Target("floor_claude_stream", floor, "/v1/messages", claude_body, None, True, to)
        lat_targets += [conv_t, claude_direct, claude_floor]
        log(f"latency: {args.warmup} warm-up + {args.rounds} measured rounds x {len(lat_targets)} targets")
        rng = random.Random(args.seed)
        interleaved(lat_targets, args.warmup, rng, False, deadline)
        interleaved(lat_targets, args.rounds, rng, True, deadline)
        latency = {t.name: summary(t) for t in lat_targets}
        reconnects = {t.name: t.conn.reconnects for t in lat_targets if t.conn.reconnects > 0}
        if reconnects:
            notes.append(f"keep-alive connections were re-opened during the latency phase: {reconnects}")
        add = {k: added(latency[k], latency["direct_stream"]) for k in ("gateway_stream", "floor_stream")}
        add.update({k: added(latency[k], latency["direct_claude_stream"])
                    for k in ("gateway_converted_stream", "floor_claude_stream")})
        o_ttfb = add["gateway_stream"]["ttfb"]["p50"] - add["floor_stream"]["ttfb"]["p50"]
        o_total = add["gateway_stream"]["total"]["p50"] - add["floor_stream"]["total"]["p50"]
        overhead = {"ttfb_p50_ms": round(o_ttfb, 4), "total_p50_ms": round(o_total, 4),
                    "met": o_ttfb <= 0.5 and o_total <= 0.5}
        c_ttfb = add["gateway_converted_stream"]["ttfb"]["p50"] - add["floor_claude_stream"]["ttfb"]["p50"]
        c_total = add["gateway_converted_stream"]["total"]["p50"] - add["floor_claude_stream"]["total"]["p50"]
        overhead_converted = {"ttfb_p50_ms": round(c_ttfb, 4), "total_p50_ms": round(c_total, 4),
                              "met": c_ttfb <= 1.0 and c_total <= 1.0}
        for t in lat_targets:
            t.conn.close()

        log_levels = {}
        if extra:
            log(f"console-logging comparison: {args.log_rounds} rounds")
            lvl_servers = {"warn (the bench default)": gw, "error": extra[0], "log (wrangler default)": extra[1],
                           "warn, logRequests: errors": extra[2]}
            lt = []
            for lvl, srv in lvl_servers.items():
                lt.append(mk(f"{lvl}|stream", srv, CHAT_PATH, "oai.gpt-4o-mini", GATEWAY_KEY, True))
                lt.append(mk(f"{lvl}|echo", srv, CHAT_PATH, "echo.e1", GATEWAY_KEY, False))
            interleaved(lt, max(10, args.warmup // 2), rng, False, deadline)
            interleaved(lt, args.log_rounds, rng, True, deadline)
            for lvl in lvl_servers:
                s = {kind: summary(next(t for t in lt if t.name == f"{lvl}|{kind}")) for kind in ("stream", "echo")}
                log_levels[lvl] = {"stream_ttfb_p50": s["stream"]["ttfb"]["p50"], "stream_ttfb_p90": s["stream"]["ttfb"]["p90"],
                                   "stream_total_p50": s["stream"]["total"]["p50"], "stream_total_p90": s["stream"]["total"]["p90"],
                                   "echo_p50": s["echo"]["total"]["p50"], "echo_p90": s["echo"]["total"]["p90"],
                                   "n": s["echo"]["n"]}
            for t in lt:
                t.conn.close()
            n_lines = {s.name: tail(s.log_path, 10**8).count('"requestId"') for s in (gw, extra[0], extra[1])}
            notes.append(f"gateway console lines printed by wrangler, per instance: {n_lines}")

        log(f"throughput: {'wrk' if use_wrk else 'python asyncio client'}, c={args.concurrency}, "
            f"{args.rps_rounds} x {args.rps_seconds:g} s per target")
        rps_targets = [
            mk("mock_direct", mock, CHAT_PATH, "gpt-4o-mini", UPSTREAM_KEY, False),
            mk("gateway_passthrough", gw, CHAT_PATH, "oai.gpt-4o-mini", GATEWAY_KEY, False),
            mk("gateway_converted", gw, CHAT_PATH, "ant.claude-sonnet-4-5", GATEWAY_KEY, False),
            mk("floor", floor, CHAT_PATH, "gpt-4o-mini", None, False),
            mk("gateway_echo", gw, CHAT_PATH, "echo.e1", GATEWAY_KEY, False),
            mk("floor_local", floor, "/local", "gpt-4o-mini", None, False),
        ]
        for t in rps_targets:
            t.once(record=False)
            t.conn.close()
        if extra:
            rps_targets += [mk("gateway_nolog_passthrough", extra[2], CHAT_PATH, "oai.gpt-4o-mini", GATEWAY_KEY, False),
                            mk("gateway_nolog_echo", extra[2], CHAT_PATH, "echo.e1", GATEWAY_KEY, False)]
        thr = rps_phase(procs, rps_targets, [mock, gw, floor] + extra[2:], args, tmp, use_wrk, deadline)
        throughput = {
            "loadgen": ("wrk " + subprocess.run(["wrk", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                        .stdout.decode(errors="replace").split("\n")[0].split(" [")[0].replace("wrk ", "")) if use_wrk
                       else "python asyncio client" + (" (wrk not installed)" if args.loadgen == "auto" else ""),
            "concurrency": args.concurrency, "rounds": args.rps_rounds, "seconds_per_round": args.rps_seconds,
            "targets": thr,
            "ratio_gateway_floor_pct": round(100 * thr["gateway_passthrough"]["rps"] / thr["floor"]["rps"], 1),
            "ratio_echo_floor_local_pct": round(100 * thr["gateway_echo"]["rps"] / thr["floor_local"]["rps"], 1),
            "ratio_converted_floor_pct": round(100 * thr["gateway_converted"]["rps"] / thr["floor"]["rps"], 1),
        }
        if "gateway_nolog_passthrough" in thr:
            throughput["ratio_nolog_floor_pct"] = round(
                100 * thr["gateway_nolog_passthrough"]["rps"] / thr["floor"]["rps"], 1)
        errs = {k: v["non2xx"] + v["socket_errors"] for k, v in thr.items() if v["non2xx"] + v["socket_errors"]}
        if errs:
            notes.append(f"errors under load (non-2xx or socket errors): {errs}")
        for srv in workers:
            if srv.proc.poll() is not None:
                notes.append(f"{srv.name} exited during the run")
            elif workerd_pids(srv) != pids_at_start[srv.name]:
                notes.append(f"the processes of {srv.name} changed during the run (a wrangler reload?): "
                             "its figures may be disturbed")
        t1, busy1, own1 = time.monotonic(), machine_busy(), own_cpu([mock] + workers)
        foreign = max(0.0, (busy1 - load0[1]) - (own1 - load0[2])) / (t1 - load0[0])
        machine_load = {"foreign_cores": round(foreign, 2), "bench_cores": round((own1 - load0[2]) / (t1 - load0[0]), 2),
                        "cores": os.cpu_count()}
        if foreign > 0.15:
            notes.append(f"other processes kept {foreign:.2f} of {os.cpu_count()} cores busy on average during the "
                         "measurements: figures are noisier than on an idle machine")
        if NO_INSPECTOR:
            notes.append("--no-inspector: wrangler dev ran without its devtools relay (VSCODE_INSPECTOR_OPTIONS set)")
        else:
            notes.append("wrangler dev relays every inspector event of the worker (each console.log, and the Network "
                         "events of each subrequest) from workerd to its node process (InspectorProxyWorker "
                         "sendDebugLog), whatever --log-level says: that is the 'node' CPU above; --no-inspector "
                         "measures without it")
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        procs.stop_all()
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        procs.stop_all()
        return 1
    finally:
        signal.alarm(0)
        procs.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if sha(WASM) != wasm_sha:
        notes.append(f"build/ was rebuilt during the run; the figures are those of the snapshot taken at the start "
                     f"(index_bg.wasm sha256 {wasm_sha}...)")
    if not use_wrk and args.loadgen == "auto":
        notes.append("wrk was not found, so throughput used the (much slower) Python client; install wrk for real numbers")
    invoked = os.environ.get("BENCH_INVOKED_AS") or shlex.join([os.path.relpath(sys.executable, REPO)
                                                                if sys.executable.startswith(str(REPO)) else sys.executable,
                                                                "bench/run.py", *sys.argv[1:]])
    res = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": invoked,
        "python_command": shlex.join([sys.executable, str(Path(__file__)), *sys.argv[1:]]),
        "wrangler_command_gateway": shlex.join(gw.cmd),
        "env": {"WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false"},
        "machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())},
        "wasm_sha256_16": wasm_sha,
        "latency": latency, "added": add, "overhead_vs_floor": overhead, "overhead_converted_vs_floor": overhead_converted,
        "log_levels": log_levels, "throughput": throughput,
        "wasm": {"bytes": wbytes, "gzip9_bytes": wgz, "gzip_how": how},
        "machine_load": machine_load,
        "notes": notes,
        "wall_seconds": round(time.monotonic() - t_start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res["results_path"] = os.path.relpath(out, REPO) if str(out).startswith(str(REPO)) else str(out)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(report(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
