"""Helpers shared by tests/e2e/test_resilience.py and bench/resilience.py (no pytest here).

* process groups we start and stop (never anything else);
* tests/e2e/resilience_mock.py on a free port (`RMock`);
* the built gateway under `wrangler dev` with its own wrangler.toml: a Durable Object binding
  GATEWAY_STATE (class GatewayState), `enable_request_signal`, main = build/entry.mjs, no
  [build] (`Gateway`), and its log lines (one JSON object per request) read back from the
  wrangler output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

# StartError and dead_port are re-exported for test_resilience.py and bench/resilience.py.
from processes import StartError, dead_port, free_port, read_ready_line, start_process, stop_process, tail, toml_str  # noqa: F401

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ENTRY = REPO / "build" / "entry.mjs"
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
RMOCK = HERE / "resilience_mock.py"
COMPAT_DATE = "2026-04-20"


# --------------------------------------------------------------------------------------
# The misbehaving mock
# --------------------------------------------------------------------------------------
class RMock:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(timeout=10)

    @classmethod
    def start(cls, python: str = sys.executable, seed: int = 0, stderr=None) -> "RMock":
        proc = start_process([python, "-u", RMOCK, "--port", "0", "--seed", str(seed)], stdout=subprocess.PIPE, stderr=stderr)
        try:
            port = read_ready_line(proc)
        except StartError:
            stop_process(proc)
            raise
        return cls(proc, port)

    def requests(self, model: str | None = None) -> list[dict]:
        r = self.http.get(self.base + "/_r/requests")
        r.raise_for_status()
        return [x for x in r.json() if model is None or x["model"] == model]

    def clear(self):
        self.http.delete(self.base + "/_r/requests").raise_for_status()

    def stats(self) -> dict:
        return self.http.get(self.base + "/_r/stats").json()

    def reset_stats(self):
        self.http.delete(self.base + "/_r/stats").raise_for_status()

    def stop(self):
        self.http.close()
        stop_process(self.proc)


# --------------------------------------------------------------------------------------
# The gateway under wrangler dev
# --------------------------------------------------------------------------------------
def write_wrangler_toml(path: Path, config: dict, vars_: dict, name: str = "gateway-resilience",
                        state_binding: str | None = "GATEWAY_STATE", entry: Path = ENTRY) -> Path:
    lines = [f"name = {toml_str(name)}", f"main = {toml_str(str(entry))}", f"compatibility_date = {toml_str(COMPAT_DATE)}",
             'compatibility_flags = ["enable_request_signal"]', ""]
    if state_binding:
        lines += ["[[durable_objects.bindings]]", f"name = {toml_str(state_binding)}", 'class_name = "GatewayState"', "",
                  "[[migrations]]", 'tag = "v1"', 'new_classes = ["GatewayState"]', ""]
    lines.append("[vars]")
    lines.append(f"ANY_API_CONFIG = {toml_str(json.dumps(config, separators=(',', ':')))}")
    for k, v in vars_.items():
        lines.append(f"{k} = {toml_str(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Gateway:
    """A wrangler dev we started; `log` collects its output (the per-request JSON lines
    appear at --log-level log, wrangler's default)."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, logf):
        self.proc, self.port, self.log, self._logf = proc, port, log, logf
        self.base = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, workdir: Path, config: dict, vars_: dict, log_level: str = "log", state_binding: str | None = "GATEWAY_STATE",
              ready_timeout: float = 60.0, name: str = "gateway-resilience") -> "Gateway":
        if not ENTRY.is_file():
            raise StartError(f"gateway build missing: {ENTRY} (run `bash scripts/build.sh` first)")
        if not WRANGLER.exists():
            raise StartError("wrangler not installed: node_modules/.bin/wrangler missing (run `bash scripts/setup.sh`)")
        workdir.mkdir(parents=True, exist_ok=True)
        toml = write_wrangler_toml(workdir / "wrangler.toml", config, vars_, name=name, state_binding=state_binding)
        port = free_port()
        env = dict(os.environ, WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false",
                   WRANGLER_LOG_PATH=str(workdir / "wrangler-logs"), NO_COLOR="1", FORCE_COLOR="0")
        log = workdir / "wrangler.log"
        logf = open(log, "wb")
        cmd = [WRANGLER, "dev", "--config", toml, "--ip", "127.0.0.1", "--port", str(port),
               "--show-interactive-dev-session=false", "--log-level", log_level,
               "--persist-to", str(workdir / "state"),  # a fresh Durable Object store per run
               "--inspector-port", str(free_port())]
        proc = start_process(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
        gw = cls(proc, port, log, logf)
        gw.command = " ".join(str(c) for c in cmd)
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                gw.stop()
                raise StartError(f"wrangler dev exited with {proc.returncode} before /health answered:\n{tail(log)}")
            try:
                if httpx.get(gw.base + "/health", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                gw.stop()
                raise StartError(f"gateway /health not ready within {ready_timeout:.0f} s:\n{tail(log)}")
            time.sleep(0.3)
        return gw

    def stop(self):
        stop_process(self.proc)
        try:
            self._logf.close()
        except Exception:
            pass

    def log_lines(self) -> list[dict]:
        """Every per-request JSON line printed so far."""
        out = []
        for line in tail(self.log, 10_000_000).splitlines():
            i = line.find('{"requestId"')
            if i < 0:
                continue
            try:
                out.append(json.loads(line[i:]))
            except ValueError:
                continue
        return out

    def log_line(self, request_id: str, wait: float = 3.0) -> dict | None:
        """The log line of one request (by its x-request-id), waiting a little for wrangler."""
        deadline = time.monotonic() + wait
        while True:
            for entry in self.log_lines():
                if entry.get("requestId") == request_id:
                    return entry
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
