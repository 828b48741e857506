"""Fixtures for the end-to-end suite.

* ``mock_upstream`` (session): tests/e2e/mock_upstream.py on a free port.
* ``gateway`` (session): the built worker (build/entry.mjs) under ``wrangler dev`` with a
  test ANY_API_CONFIG pointing at the mock.  The harness never builds; it skips when
  build/ or wrangler is missing, unless E2E_REQUIRED=1 (then it fails).

Only the processes started here are stopped (by their own process group), with bounded waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from e2e_util import CLIENT_KEY
from processes import StartError, free_port, read_ready_line, start_process, stop_process, tail, toml_str

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_TEST_TIMEOUT = 60


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing gateway test, add the mock's request log (what the gateway sent upstream and
    what the mock answered) as a report section."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    gw = item.funcargs.get("gateway")
    mock = getattr(gw, "mock", None) or item.funcargs.get("mock")
    if mock is None:
        return
    try:
        rep.sections.append(("mock request log", "\n".join(summarize_record(r) for r in mock.requests()) or "(no upstream request)"))
    except Exception as e:  # pragma: no cover - diagnostics only
        rep.sections.append(("mock request log", f"unavailable: {e}"))


def _skeleton(api_body) -> str:
    """A compact picture of a conversation: roles and block/part/item types."""
    b = api_body if isinstance(api_body, dict) else {}
    out = []
    for m in b.get("messages") or []:
        c = m.get("content")
        kinds = "text" if isinstance(c, str) else "+".join(x.get("type", "?") for x in c or [] if isinstance(x, dict))
        if m.get("tool_calls"):
            kinds += ("+" if kinds else "") + f"tool_calls[{len(m['tool_calls'])}]"
        if m.get("reasoning_content"):
            kinds += "+reasoning_content"
        out.append(f"{m.get('role')}:{kinds or 'null'}")
    inp = b.get("input")
    if isinstance(inp, list):
        for it in inp:
            t = it.get("type", "message")
            out.append(f"{it.get('role')}:{t}" if t == "message" else t + ("(enc)" if it.get("encrypted_content") else ""))
    for c in b.get("contents") or []:
        kinds = []
        for p in c.get("parts") or []:
            k = next((x for x in p if x not in ("thought", "thoughtSignature", "thought_signature")), "?")
            kinds.append(("thought-" if p.get("thought") else "") + k + ("(sig)" if p.get("thoughtSignature") or p.get("thought_signature") else ""))
        out.append(f"{c.get('role', 'user')}:{'+'.join(kinds)}")
    extra = []
    for k in ("thinking", "reasoning", "reasoning_effort", "tool_choice", "max_tokens"):
        if k in b:
            extra.append(f"{k}={json.dumps(b[k], separators=(',', ':'))}")
    gc = b.get("generationConfig") or {}
    if "thinkingConfig" in gc:
        extra.append(f"thinkingConfig={json.dumps(gc['thinkingConfig'], separators=(',', ':'))}")
    if b.get("tools"):
        extra.append(f"tools={len(b['tools'])}")
    return f"[{', '.join(out)}] {' '.join(extra)}".strip()


def summarize_record(r: dict) -> str:
    body = r.get("body")
    model = body.get("model") if isinstance(body, dict) else None
    line = f"{r.get('status')} {r.get('method')} {r.get('path')}{'?' + r['query'] if r.get('query') else ''} model={model} {_skeleton(body)}"
    err = r.get("error")
    if isinstance(err, dict):
        e = err.get("error") if isinstance(err.get("error"), dict) else err
        line += f"\n    -> {e.get('message', err)!s:.400}"
    return line


def pytest_collection_modifyitems(config, items):
    # Bound every test (pytest-timeout) unless it sets its own limit.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


# --------------------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------------------
def skip_or_fail(msg: str):
    if os.environ.get("E2E_REQUIRED") == "1":
        pytest.fail(msg + " (E2E_REQUIRED=1)", pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------------------
# Mock upstream
# --------------------------------------------------------------------------------------
class MockUpstream:
    def __init__(self, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(timeout=10)

    def requests(self) -> list[dict]:
        r = self.http.get(self.base + "/_mock/requests")
        r.raise_for_status()
        return r.json()

    def clear(self):
        self.http.delete(self.base + "/_mock/requests").raise_for_status()

    def find(self, path_contains: str = "", method: str = "POST") -> list[dict]:
        return [r for r in self.requests() if r["method"] == method and path_contains in r["path"]]

    def last(self, path_contains: str = "", method: str = "POST") -> dict:
        found = self.find(path_contains, method)
        assert found, f"mock received no {method} request matching {path_contains!r}: {[(r['method'], r['path']) for r in self.requests()]}"
        return found[-1]

    def assert_no_leaks(self):
        leaked = [r for r in self.requests() if r.get("leaked")]
        assert not leaked, f"client key leaked upstream: {[(r['path'], r['leaked']) for r in leaked]}"


@pytest.fixture(scope="session")
def mock_upstream(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("mock")
    err = open(logdir / "mock.stderr", "wb")
    proc = start_process([sys.executable, "-u", str(HERE / "mock_upstream.py"), "--port", "0"], REPO,
                         stdout=subprocess.PIPE, stderr=err)
    try:
        try:
            port = read_ready_line(proc)
        except StartError as e:
            pytest.fail(f"mock upstream did not start: {e} {tail(logdir / 'mock.stderr')}", pytrace=False)
        mock = MockUpstream(port)
        yield mock
        mock.http.close()
    finally:
        stop_process(proc)
        err.close()


@pytest.fixture
def mock(mock_upstream):
    """Per-test view of the session mock with its request log cleared."""
    mock_upstream.clear()
    return mock_upstream


# --------------------------------------------------------------------------------------
# Gateway under wrangler dev
# --------------------------------------------------------------------------------------
# Upstream models every provider gets for the conversion matrix (test_conversion.py): the mock
# answers with two parallel tool calls when the model name contains "parallel", stops its stream
# half-way (mock-truncate) or stalls mid-stream then drops the connection (mock-hang-mid-<ms>).
# Also: "mock-preamble" answers a tool call with a text preamble first; "mock-hang-mid" stalls 60 s
# mid-stream (the gateway's idleMs ends it).
CONVERSION_MODELS = {"mock-parallel": {}, "mock-preamble": {}, "mock-truncate": {}, "mock-hang-mid-800": {}, "mock-hang-mid": {},
                     "mock-too-long": {}}


def gateway_config(mock_base: str) -> dict:
    m = mock_base
    return {
        "version": 1,
        "providers": {
            "oai": {"type": "openai-chat-completions", "baseURL": f"{m}/v1", "apiKey": "sk-upstream-oai",
                    "models": {"gpt-4o-mini": {}, "mini": {"upstreamModel": "gpt-4o-mini"}, "mock-gemini-compat": {},
                               "mock-error-429": {}, "mock-error-500": {}, "mock-hang": {}, "mock-garbage": {},
                               "mock-reset": {}, "mock-truncate": {},
                               # additions of this harness (streaming/timeout behaviour)
                               "mock-hang-mid": {}, "mock-slow-1000": {},
                               **CONVERSION_MODELS, "mock-error-503": {}}},
            "resp": {"type": "openai-responses", "baseURL": m, "apiKeyEnv": "RESP_UPSTREAM_KEY",
                     "models": {"gpt-5": {}, "mock-error-429": {}, **CONVERSION_MODELS, "mock-error-503": {}}},
            "ant": {"type": "claude", "baseURL": m, "apiKey": "sk-ant-upstream-1",
                    "models": {"claude-sonnet-4-5": {}, "sonnet-46": {"upstreamModel": "claude-sonnet-4-6"},
                               "cached": {"upstreamModel": "claude-sonnet-4-5", "options": {"promptCache": True}}, "mock-error-529": {}, **CONVERSION_MODELS, "mock-error-429": {}}},
            "gem": {"type": "gemini", "baseURL": m, "apiKey": "AIza-upstream-1",
                    "models": {"gemini-2.5-flash": {}, "mock-error-503": {}, **CONVERSION_MODELS, "mock-error-429": {},
                               "mock-malformed": {}}},
            "echo": {"type": "echo"},
            "dead": {"type": "openai-chat-completions", "baseURL": "http://127.0.0.1:9/v1", "apiKey": "sk-upstream-dead",
                     "models": {"m": {}}},
        },
        "limits": {"maxBodyBytes": 262144},
        "timeouts": {"firstByteMs": 3000, "idleMs": 1000},  # idleMs: a stream silent for 1 s is ended
        # The mock's 429s say retry-after: 7; honouring it would cost 7 s per rate-limit test.
        # Hints above 1 s are not waited for (the error goes back to the caller at once);
        # the other retry rules keep their defaults.
        "retry": {"maxRetryAfterMs": 1000},
    }


class Gateway:
    def __init__(self, port: int, log: Path, mock: MockUpstream):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.mock = mock
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def url(self, path: str) -> str:
        return self.base + path

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.http.post(path, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    # official SDK clients pointed at the gateway
    def openai(self, base_path: str = "/v1", key: str = CLIENT_KEY, **kw) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=self.base + base_path, max_retries=0, timeout=kw.pop("timeout", 30), **kw)

    def anthropic(self, base_path: str = "", key: str = CLIENT_KEY, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=key, base_url=self.base + base_path, max_retries=0, timeout=kw.pop("timeout", 30), **kw)

    def genai(self, base_path: str = "/gemini", key: str = CLIENT_KEY, api_version: str = "v1beta") -> genai.Client:
        return genai.Client(api_key=key, http_options=gtypes.HttpOptions(
            base_url=self.base + base_path, api_version=api_version, timeout=30_000,
            retry_options=gtypes.HttpRetryOptions(attempts=1)))

    def alive(self) -> bool:
        try:
            return httpx.get(self.base + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture(scope="session")
def gateway_server(mock_upstream, tmp_path_factory):
    entry = REPO / "build" / "entry.mjs"
    if not entry.is_file():
        skip_or_fail(f"gateway build missing: {entry} (run `bash scripts/build.sh` first)")
    if not (REPO / "node_modules" / ".bin" / "wrangler").exists():
        skip_or_fail("wrangler not installed: node_modules/.bin/wrangler missing (run `bash scripts/setup.sh`)")
    tmp = tmp_path_factory.mktemp("gateway")
    port = free_port()
    cfg = json.dumps(gateway_config(mock_upstream.base), separators=(",", ":"))
    (tmp / "wrangler.toml").write_text(
        'name = "gateway-e2e"\n'
        f"main = {toml_str(str(entry))}\n"
        'compatibility_date = "2026-04-20"\n'
        'compatibility_flags = ["enable_request_signal"]\n'
        "\n[vars]\n"
        f"ANY_API_CONFIG = {toml_str(cfg)}\n"
        'WORKER_AUTH_KEYS = "gw-test-key-1, gw-test-key-2"\n'
        'RESP_UPSTREAM_KEY = "sk-upstream-resp"\n'
    )
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false",
               WRANGLER_LOG_PATH=str(tmp / "wrangler-logs"), NO_COLOR="1", FORCE_COLOR="0")
    log = tmp / "wrangler.log"
    logf = open(log, "wb")
    cmd = ["npx", "--no-install", "wrangler", "dev", "--config", str(tmp / "wrangler.toml"),
           "--ip", "127.0.0.1", "--port", str(port), "--show-interactive-dev-session=false", "--log-level", "warn",
           # own inspector port, so a wrangler dev already running elsewhere on 9229 does not collide
           "--inspector-port", str(free_port())]
    proc = start_process(cmd, REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
    gw = Gateway(port, log, mock_upstream)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"wrangler dev exited with {proc.returncode} before /health answered:\n{tail(log)}", pytrace=False)
            if gw.alive():
                break
            if time.monotonic() > deadline:
                pytest.fail(f"gateway /health not ready within 60 s:\n{tail(log)}", pytrace=False)
            time.sleep(0.3)
        yield gw
    finally:
        gw.http.close()
        stop_process(proc)
        logf.close()
        if os.environ.get("E2E_SHOW_GATEWAY_LOG") == "1":
            sys.stderr.write(f"\n--- wrangler log ---\n{tail(log, 20000)}\n")


@pytest.fixture
def gateway(gateway_server, mock_upstream):
    """Per-test gateway handle; the mock's request log is cleared first and checked for
    leaked client keys afterwards."""
    mock_upstream.clear()
    yield gateway_server
    leaked = [(r["path"], r["leaked"]) for r in mock_upstream.requests() if r.get("leaked")]
    if leaked:
        pytest.fail(f"LEAKED_CLIENT_KEY: the gateway forwarded a client key upstream: {leaked}", pytrace=False)
