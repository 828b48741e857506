"""End-to-end proof of the gateway's routing and resilience (README "Routing and resilience").

Its own gateway: wrangler dev on a free port with its own wrangler.toml (Durable Object
GATEWAY_STATE, enable_request_signal) and ANY_API_CONFIG (routes over mock targets, small
timeouts, keepalives and breaker cooldown, stateBinding), in front of two upstreams:
  * the strict mock (conftest's session `mock_upstream`), misbehaving by model name
    (mock-error-<status>, mock-hang, mock-hang-mid[-<ms>], mock-truncate, mock-garbage, mock-reset);
  * tests/e2e/resilience_mock.py for what the strict mock cannot do (fail the first N requests,
    an overloaded error inside a 200 stream, a silence that ends well, noticing a closed socket).
For every misbehaviour the tests check which target answered (x-gateway-provider / -model /
-attempts and the attempts in the gateway's log line), what the caller saw and how long it took
(durations are printed at the end; only generous upper bounds are asserted).

    bash tests/e2e/run.sh tests/e2e/test_resilience.py -q
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from e2e_util import CLIENT_KEY, parse_sse
from resilience_util import Gateway, RMock, StartError, dead_port

FIRST_BYTE_MS = 1500
IDLE_MS = 2000
TOTAL_MS = 12000
KEEPALIVE_MS = 500
COOLDOWN_MS = 2000
BREAKER_FAILURES = 3
RETRY_AFTER_CAP_MS = 2000  # the mock's 429 says retry-after: 7 (s): beyond the cap

TIMINGS: list[tuple[str, float, str]] = []


def resilience_config(m: str, r: str, dead: int) -> dict:
    """m: the strict mock's base URL; r: the resilience mock's; dead: a port nobody listens on."""
    chat = "openai-chat-completions"
    return {
        "version": 1,
        "providers": {
            # No `models`: any model name goes upstream as is (the mocks misbehave by name).
            "oai": {"type": chat, "baseURL": f"{m}/v1", "apiKey": "sk-upstream-oai"},
            "ant": {"type": "claude", "baseURL": m, "apiKey": "sk-ant-upstream-1"},
            "gem": {"type": "gemini", "baseURL": m, "apiKey": "AIza-upstream-1"},
            "gemx": {"type": "gemini", "baseURL": m, "apiKey": "AIza-upstream-x", "models": ["gemini-2.5-flash"]},
            "resp": {"type": "openai-responses", "baseURL": m, "apiKey": "sk-upstream-resp"},
            # Providers of their own where key-pool or breaker state must not leak across tests.
            "rl": {"type": chat, "baseURL": f"{m}/v1", "apiKey": "sk-upstream-rl"},
            "rl2": {"type": chat, "baseURL": f"{m}/v1", "apiKey": "sk-upstream-rl2"},
            "brk": {"type": chat, "baseURL": f"{m}/v1", "apiKey": "sk-upstream-brk"},
            "down": {"type": "claude", "baseURL": m, "apiKey": "sk-ant-upstream-down"},
            "pool": {"type": chat, "baseURL": f"{m}/v1", "apiKey": ["sk-bad-1", "sk-upstream-pool-2"]},
            "dead": {"type": chat, "baseURL": f"http://127.0.0.1:{dead}/v1", "apiKey": "sk-upstream-dead"},
            "rchat": {"type": chat, "baseURL": f"{r}/v1", "apiKey": "sk-upstream-r"},
            "rant": {"type": "claude", "baseURL": r, "apiKey": "sk-ant-upstream-r"},
        },
        "routes": {
            "r429": {"targets": ["rl.mock-error-429", "oai.gpt-4o-mini"]},
            "r500": {"targets": ["oai.mock-error-500", "ant.claude-sonnet-4-5"]},
            "rover": {"targets": ["ant.mock-error-529", "gem.mock-error-503", "gem.gemini-2.5-flash"]},
            "rovs": {"targets": ["rant.overloaded-first", "ant.claude-sonnet-4-5"]},
            "rdown": {"targets": ["oai.mock-error-503", "down.mock-error-529"]},
            "rreset": {"targets": ["oai.mock-reset", "oai.gpt-4o-mini"]},
            "rdead": {"targets": ["dead.m", "oai.gpt-4o-mini"]},
            "rhang": {"targets": ["oai.mock-hang", "ant.claude-sonnet-4-5"]},
            "rtrunc": {"targets": ["ant.mock-truncate", "oai.gpt-4o-mini"]},
            "rgarb": {"targets": ["ant.mock-garbage", "oai.gpt-4o-mini"]},
            "rgarbs": {"targets": ["oai.mock-garbage", "oai.gpt-4o-mini"]},
            "rgarbsx": {"targets": ["oai.mock-garbage", "ant.claude-sonnet-4-5"]},
            "rbrk": {"targets": ["brk.mock-error-500", "oai.gpt-4o-mini"]},
            "rrec": {"targets": ["rchat.failfirst-4-rec", "oai.gpt-4o-mini"]},
            "rstrag": {"targets": ["rchat.slowfirst-1000-strag", "oai.gpt-4o-mini"]},
            "rmix": {"targets": ["ant.claude-sonnet-4-5", "oai.gpt-4o-mini"]},
            "rrespx": {"targets": ["ant.claude-sonnet-4-5", "resp.gpt-5"]},
            "rw": {"strategy": "weighted", "targets": [{"model": "oai.gpt-4o-mini", "weight": 3},
                                                       {"model": "gem.gemini-2.5-flash", "weight": 1}]},
        },
        # no modelRouting: bare vendor names use the default name rules
        "retry": {"attemptsPerTarget": 2, "maxAttempts": 6, "backoffMs": 100, "maxBackoffMs": 400,
                  "maxRetryAfterMs": RETRY_AFTER_CAP_MS, "deadlineMs": 20000},
        "breaker": {"failures": BREAKER_FAILURES, "cooldownMs": COOLDOWN_MS},
        "timeouts": {"firstByteMs": FIRST_BYTE_MS, "idleMs": IDLE_MS, "totalMs": TOTAL_MS},
        "keepaliveMs": KEEPALIVE_MS,
        "stateBinding": "GATEWAY_STATE",
    }


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def resilience_gateway(mock_upstream, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("resilience")
    try:
        rmock = RMock.start(stderr=open(workdir / "rmock.stderr", "wb"))
    except StartError as e:
        pytest.fail(str(e), pytrace=False)
    gw = None
    try:
        cfg = resilience_config(mock_upstream.base, rmock.base, dead_port())
        try:
            gw = Gateway.start(workdir / "gw", cfg, {"WORKER_AUTH_KEYS": "gw-test-key-1, gw-test-key-2"})
        except StartError as e:
            msg = str(e)
            if "build missing" in msg or "wrangler not installed" in msg:
                if os.environ.get("E2E_REQUIRED") == "1":
                    pytest.fail(msg + " (E2E_REQUIRED=1)", pytrace=False)
                pytest.skip(msg)
            pytest.fail(msg, pytrace=False)
        gw.rmock = rmock
        gw.mock = mock_upstream
        yield gw
    finally:
        if gw is not None:
            gw.stop()
            if os.environ.get("E2E_SHOW_GATEWAY_LOG") == "1":
                print("\n--- resilience wrangler log ---\n" + gw.log.read_text(errors="replace")[-20000:])
        rmock.stop()


class Ctx:
    """What a test needs: the gateway, both mocks, SDK clients and raw HTTP."""

    def __init__(self, gw: Gateway, mock):
        self.gw, self.mock, self.rmock = gw, mock, gw.rmock
        self.base = gw.base
        self.http = httpx.Client(base_url=gw.base, timeout=20)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=CLIENT_KEY, base_url=self.base + "/v1", max_retries=0, timeout=20)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=CLIENT_KEY, base_url=self.base, max_retries=0, timeout=20)

    def genai(self) -> genai.Client:
        return genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(
            base_url=self.base, api_version="v1beta", timeout=20_000, retry_options=gtypes.HttpRetryOptions(attempts=1)))

    def status(self) -> dict:
        r = self.http.get("/status", headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert r.status_code == 200, r.text
        return r.json()

    def breaker(self, target: str) -> dict:
        for t in self.status()["targets"]:
            if t["target"] == target:
                return t
        return {"target": target, "breaker": "closed", "consecutiveFailures": 0, "openForMs": 0, "note": "not listed"}

    def attempts(self, headers) -> list[dict]:
        """The attempts of the request's gateway log line."""
        return self.log_line(headers)["attempts"]

    def log_line(self, headers) -> dict:
        """The request's gateway log line (by x-request-id)."""
        rid = headers.get("x-request-id")
        assert rid, f"no x-request-id in {dict(headers)}"
        line = self.gw.log_line(rid)
        assert line is not None, f"no gateway log line for request {rid}"
        return line

    def outcomes(self, headers) -> list[str]:
        return [a["outcome"] for a in self.attempts(headers)]

    def upstream(self, model: str) -> list[dict]:
        """Strict-mock requests for an upstream model (Gemini: the model in the path)."""
        out = []
        for r in self.mock.requests():
            body = r.get("body") if isinstance(r.get("body"), dict) else {}
            if body.get("model") == model or f"/models/{model}:" in r["path"]:
                out.append(r)
        return out


@pytest.fixture
def ctx(resilience_gateway, mock, request):
    resilience_gateway.rmock.clear()
    c = Ctx(resilience_gateway, mock)
    yield c
    c.http.close()
    leaked = [r for r in mock.requests() if r.get("leaked")] + [r for r in c.rmock.requests() if r.get("leaked")]
    assert not leaked, f"LEAKED_CLIENT_KEY: the gateway forwarded a client key upstream: {leaked}"


class _TimingSummary:
    """Prints the durations at the end of the run (pytest_terminal_summary), also under -qq."""

    @staticmethod
    def pytest_terminal_summary(terminalreporter):
        if not TIMINGS:
            return
        terminalreporter.write_line("")
        terminalreporter.write_line("resilience timings (wall clock as seen by the caller; only upper bounds are asserted):")
        for name, secs, note in TIMINGS:
            terminalreporter.write_line(f"  {secs * 1000:7.0f} ms  {name}{'  (' + note + ')' if note else ''}")


@pytest.fixture(scope="module", autouse=True)
def timing_report(request):
    plugin = _TimingSummary()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "resilience-timings")
    yield


class Clock:
    def __init__(self, name: str):
        self.name, self.t0, self.note = name, time.monotonic(), ""

    def stop(self, note: str = "") -> float:
        secs = time.monotonic() - self.t0
        TIMINGS.append((self.name, secs, note))
        return secs


def hdr(headers, name: str) -> str | None:
    return headers.get(name)


def assert_answered_by(headers, provider: str, model: str, attempts: int):
    got = (hdr(headers, "x-gateway-provider"), hdr(headers, "x-gateway-model"), hdr(headers, "x-gateway-attempts"))
    assert got == (provider, model, str(attempts)), f"answered by {got}, expected {(provider, model, str(attempts))}"


def chat_msg(text="hello"):
    return [{"role": "user", "content": text}]


def ant_msg(text="hello"):
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------------------
# Before the first byte: retries and fallbacks
# --------------------------------------------------------------------------------------
def test_429_with_retry_after_moves_to_the_next_target(ctx):
    client = ctx.openai()
    clock = Clock("429 retry-after 7s -> next target")
    raw = client.chat.completions.with_raw_response.create(model="r429", messages=chat_msg())
    secs = clock.stop()
    reply = raw.parse()
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 2)
    assert "mock(chat) reply to: hello" in reply.choices[0].message.content
    assert ctx.outcomes(raw.headers) == ["http 429", "ok"]
    # retry-after (7 s) is above maxRetryAfterMs: no waiting, the next target at once
    assert secs < 5, f"took {secs:.1f} s: the gateway seems to have waited for retry-after"
    # the rate-limited key rests for its retry-after...
    keys = next(p for p in ctx.status()["providers"] if p["provider"] == "rl")["keys"]
    assert 0 < keys[0]["coolingDownForMs"] <= 7000, keys
    # ...so the next request skips that provider without an attempt
    raw = client.chat.completions.with_raw_response.create(model="r429", messages=chat_msg())
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 1)
    assert ctx.outcomes(raw.headers) == ["skipped: every key cooling down", "ok"]
    assert len(ctx.upstream("mock-error-429")) == 1


def test_429_on_the_last_target_reaches_the_caller_with_retry_after(ctx):
    client = ctx.anthropic()
    clock = Clock("429 on the only target (anthropic client, chat upstream)")
    with pytest.raises(anthropic.RateLimitError) as ei:
        client.messages.create(model="rl2.mock-error-429", max_tokens=32, messages=ant_msg())
    secs = clock.stop()
    resp = ei.value.response
    assert resp.headers.get("retry-after") == "7", dict(resp.headers)
    assert resp.headers.get("x-gateway-attempts") == "1"
    assert resp.json()["error"]["type"] == "rate_limit_error", resp.text
    assert secs < 5


def test_500_is_retried_then_a_healthy_fallback_answers(ctx):
    client = ctx.anthropic()
    clock = Clock("500 x2 on target 1 -> target 2 (anthropic client)")
    raw = client.messages.with_raw_response.create(model="r500", max_tokens=32, messages=ant_msg())
    secs = clock.stop()
    msg = raw.parse()
    assert_answered_by(raw.headers, "ant", "claude-sonnet-4-5", 3)
    assert "mock(anthropic) reply to: hello" in msg.content[0].text
    assert ctx.outcomes(raw.headers) == ["http 500", "http 500", "ok"]
    assert len(ctx.upstream("mock-error-500")) == 2 and len(ctx.upstream("claude-sonnet-4-5")) == 1
    assert secs < 5


def test_overloaded_529_and_503_fall_back_to_a_healthy_target(ctx):
    client = ctx.genai()
    clock = Clock("529 x2, 503 x2 -> third target (gemini client)")
    resp = client.models.generate_content(model="rover", contents="hello")
    secs = clock.stop()
    assert "mock(gemini) reply to: hello" in resp.text
    headers = resp.sdk_http_response.headers if resp.sdk_http_response else {}
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    assert_answered_by(headers, "gem", "gemini-2.5-flash", 5)
    assert ctx.outcomes(headers) == ["http 529", "http 529", "http 503", "http 503", "ok"]
    assert secs < 8


def test_overloaded_error_inside_a_200_stream_is_retried(ctx):
    client = ctx.anthropic()
    clock = Clock("overloaded_error as a 200 stream's first event -> fallback")
    with client.messages.stream(model="rovs", max_tokens=32, messages=ant_msg()) as stream:
        headers = stream.response.headers
        text = "".join(stream.text_stream)
    clock.stop()
    assert "mock(anthropic) reply to: hello" in text
    assert_answered_by(headers, "ant", "claude-sonnet-4-5", 3)
    assert ctx.outcomes(headers) == ["http 529", "http 529", "ok"]
    assert len(ctx.rmock.requests("overloaded-first")) == 2


@pytest.mark.parametrize("client_kind", ["chat", "anthropic", "gemini"])
def test_nothing_healthy_left_gives_the_callers_error(ctx, client_kind):
    clock = Clock(f"every target failing -> {client_kind} error")
    if client_kind == "chat":
        with pytest.raises(openai.APIStatusError) as ei:
            ctx.openai().chat.completions.create(model="rdown", messages=chat_msg())
        resp = ei.value.response
        assert resp.status_code == 503, resp.text
        err = resp.json()["error"]
        assert err["message"] and err["type"] and "code" in err and "param" in err, err
    elif client_kind == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as ei:
            ctx.anthropic().messages.create(model="rdown", max_tokens=32, messages=ant_msg())
        resp = ei.value.response
        assert resp.status_code == 529, resp.text
        body = resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error", body
    else:
        with pytest.raises(genai_errors.ServerError) as ei:
            client = ctx.genai()  # keep a reference: a collected genai.Client closes its HTTP client
            client.models.generate_content(model="rdown", contents="hello")
        assert ei.value.code == 503 and ei.value.status == "UNAVAILABLE", (ei.value.code, ei.value.status, ei.value.message)
        resp = ei.value.response
    secs = clock.stop()
    attempts = resp.headers.get("x-gateway-attempts")
    assert attempts and 1 <= int(attempts) <= 6, dict(resp.headers)
    # the breaker may already skip the first target for the later clients; never more than 4 tries
    outcomes = ctx.outcomes(resp.headers)
    assert all(o.startswith(("http 5", "skipped")) for o in outcomes), outcomes
    assert secs < 8


@pytest.mark.parametrize("route,first", [("rreset", "oai.mock-reset"), ("rdead", "dead.m")])
def test_connection_reset_or_refused_moves_on_at_once(ctx, route, first):
    client = ctx.openai()
    clock = Clock(f"{first}: connection {'reset' if 'reset' in first else 'refused'} -> next target")
    raw = client.chat.completions.with_raw_response.create(model=route, messages=chat_msg())
    secs = clock.stop()
    raw.parse()
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 2)
    attempts = ctx.attempts(raw.headers)
    assert [(a["target"], a["outcome"]) for a in attempts] == [(first, "connect error"), ("oai.gpt-4o-mini", "ok")]
    assert secs < 3


def test_hang_before_headers_times_out_then_falls_back(ctx):
    client = ctx.openai()
    clock = Clock("upstream silent before headers: firstByteMs x2 -> fallback")
    raw = client.chat.completions.with_raw_response.create(model="rhang", messages=chat_msg())
    secs = clock.stop()
    raw.parse()
    assert_answered_by(raw.headers, "ant", "claude-sonnet-4-5", 3)
    attempts = ctx.attempts(raw.headers)
    assert [a["outcome"] for a in attempts] == ["timeout", "timeout", "ok"]
    assert all(a["ms"] >= FIRST_BYTE_MS * 0.9 for a in attempts[:2]), attempts
    assert secs < 2 * FIRST_BYTE_MS / 1000 + 5


def test_garbage_body_is_retried_then_falls_back(ctx):
    client = ctx.openai()
    clock = Clock("200 with a garbage body (converted target) -> fallback")
    raw = client.chat.completions.with_raw_response.create(model="rgarb", messages=chat_msg())
    clock.stop()
    assert "mock(chat) reply to: hello" in raw.parse().choices[0].message.content
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 3)
    assert ctx.outcomes(raw.headers) == ["stream failed before first event"] * 2 + ["ok"]


@pytest.mark.parametrize("route,fallback", [("rgarbsx", ("ant", "claude-sonnet-4-5")), ("rgarbs", ("oai", "gpt-4o-mini"))],
                         ids=["route-with-a-converted-target", "passthrough-only-route"])
def test_garbage_body_on_a_stream_request_is_not_committed(ctx, route, fallback):
    """README: a stream is committed once a first event that is not an error arrived. A 200
    whose body is not an event stream at all has no first event: retry, then fall back."""
    clock = Clock(f"200 garbage on a stream request ({route}) -> fallback expected")
    body = {"model": route, "messages": chat_msg(), "stream": True}
    with ctx.http.stream("POST", "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}) as r:
        text = r.read().decode(errors="replace")
        headers = r.headers
    clock.stop()
    assert r.status_code == 200
    got = (headers.get("x-gateway-provider"), headers.get("x-gateway-model"))
    assert got == fallback, (
        "GATEWAY BUG: a 200 answer with a non-SSE garbage body to a stream request was committed and forwarded "
        f"to the caller instead of being retried and falling back: answered by {got}, "
        f"content-type={headers.get('content-type')}, body={text[:100]!r}, attempts={ctx.outcomes(headers)}")
    assert text.rstrip().endswith("data: [DONE]")


def test_truncated_non_stream_answer_falls_back(ctx):
    client = ctx.openai()
    raw = client.chat.completions.with_raw_response.create(model="rtrunc", messages=chat_msg())
    raw.parse()
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 3)
    assert ctx.outcomes(raw.headers)[-1] == "ok"


def test_key_rejected_with_401_rotates_and_cools_down(ctx):
    client = ctx.openai()
    clock = Clock("key 0 answered 401 -> key 1 of the same provider")
    raw = client.chat.completions.with_raw_response.create(model="pool.gpt-4o-mini", messages=chat_msg())
    clock.stop()
    raw.parse()
    assert_answered_by(raw.headers, "pool", "gpt-4o-mini", 2)
    attempts = ctx.attempts(raw.headers)
    assert [(a["key"], a["outcome"]) for a in attempts] == [(0, "http 401"), (1, "ok")], attempts
    # the rejected key rests: the next request goes to key 1 straight away
    raw = client.chat.completions.with_raw_response.create(model="pool.gpt-4o-mini", messages=chat_msg())
    assert_answered_by(raw.headers, "pool", "gpt-4o-mini", 1)
    assert [(a["key"], a["outcome"]) for a in ctx.attempts(raw.headers)] == [(1, "ok")]
    auths = [r["headers"].get("authorization") for r in ctx.upstream("gpt-4o-mini")]
    assert auths.count("Bearer sk-bad-1") == 1 and auths.count("Bearer sk-upstream-pool-2") == 2, auths
    # /status shows the cooldown by key position, never a key
    r = ctx.http.get("/status", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 200
    for secret in ("sk-bad-1", "sk-upstream", "sk-ant-upstream", "AIza-upstream", "gw-test-key"):
        assert secret not in r.text, f"/status reveals {secret!r}"
    keys = next(p for p in r.json()["providers"] if p["provider"] == "pool")["keys"]
    assert keys[0]["coolingDownForMs"] > 9 * 60_000 and keys[1]["coolingDownForMs"] == 0, keys


def test_weighted_route_spreads_requests_by_weight(ctx):
    n = 60
    client = ctx.openai()

    def one(_):
        raw = client.chat.completions.with_raw_response.create(model="rw", messages=chat_msg())
        raw.parse()
        return raw.headers.get("x-gateway-provider")

    clock = Clock(f"weighted 3:1, {n} requests")
    with ThreadPoolExecutor(8) as pool:
        providers = list(pool.map(one, range(n)))
    counts = {p: providers.count(p) for p in set(providers)}
    clock.stop(f"spread {counts}")
    assert set(counts) <= {"oai", "gem"}, counts
    share = counts.get("oai", 0) / n
    # expected 0.75; the bounds are > 3.5 standard deviations wide
    assert 0.5 <= share <= 0.95 and counts.get("gem", 0) >= 1, f"weight 3:1 gave {counts}"


def test_breaker_opens_after_failures_then_probes(ctx):
    client = ctx.openai()
    clock = Clock("breaker: open after failures, probe after cooldown")
    for _ in range(2):  # 2 attempts on the failing target per request: open after the 3rd failure
        client.chat.completions.with_raw_response.create(model="rbrk", messages=chat_msg()).parse()
        client.chat.completions.with_raw_response.create(model="rrec", messages=chat_msg()).parse()
    for target in ("brk.mock-error-500", "rchat.failfirst-4-rec"):
        b = ctx.breaker(target)
        assert b["breaker"] == "open" and b["consecutiveFailures"] >= BREAKER_FAILURES, b
    before = len(ctx.upstream("mock-error-500"))
    raw = client.chat.completions.with_raw_response.create(model="rbrk", messages=chat_msg())
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", 1)
    assert ctx.outcomes(raw.headers) == ["skipped: circuit open", "ok"]
    assert len(ctx.upstream("mock-error-500")) == before, "an open breaker still sent the request upstream"
    # after the cooldown: half-open, one probe decides
    deadline = time.monotonic() + COOLDOWN_MS / 1000 + 5
    while ctx.breaker("brk.mock-error-500")["breaker"] == "open":
        assert time.monotonic() < deadline, "breaker still open long after its cooldown"
        time.sleep(0.2)
    assert ctx.breaker("brk.mock-error-500")["breaker"] == "half-open"
    raw = client.chat.completions.with_raw_response.create(model="rbrk", messages=chat_msg())
    assert_answered_by(raw.headers, "oai", "gpt-4o-mini", int(raw.headers["x-gateway-attempts"]))
    assert ctx.outcomes(raw.headers)[0] == "http 500", "the probe did not go to the failing target"
    assert len(ctx.upstream("mock-error-500")) > before
    assert ctx.breaker("brk.mock-error-500")["breaker"] == "open", "a failed probe must reopen the breaker"
    # the recovered target: its probe succeeds and the breaker closes
    while ctx.breaker("rchat.failfirst-4-rec")["breaker"] == "open":
        assert time.monotonic() < deadline, "breaker still open long after its cooldown"
        time.sleep(0.2)
    raw = client.chat.completions.with_raw_response.create(model="rrec", messages=chat_msg())
    clock.stop()
    assert_answered_by(raw.headers, "rchat", "failfirst-4-rec", 1)
    b = ctx.breaker("rchat.failfirst-4-rec")
    assert b["breaker"] == "closed" and b["consecutiveFailures"] == 0, b


def test_an_open_breaker_stays_open_when_an_older_request_succeeds(ctx):
    """README: after `failures` consecutive failures the target is skipped for cooldownMs, then a
    single probe decides. A request that was already in flight before the breaker opened and
    then succeeds is not that probe: it must not close the breaker early (under concurrency a
    target failing a third of the time otherwise never stays skipped)."""
    client = ctx.openai()
    slow = {}

    def first():  # reaches the target before the breaker opens; answers after 1 s
        raw = client.chat.completions.with_raw_response.create(model="rstrag", messages=chat_msg())
        raw.parse()
        slow["headers"] = raw.headers

    th = threading.Thread(target=first)
    th.start()
    time.sleep(0.2)
    for _ in range(2):  # 2 x 2 failures: the breaker opens
        client.chat.completions.with_raw_response.create(model="rstrag", messages=chat_msg()).parse()
    opened = ctx.breaker("rchat.slowfirst-1000-strag")
    t_open = time.monotonic()
    th.join(10)
    assert opened["breaker"] == "open", f"setup: the breaker did not open: {opened}"
    assert slow["headers"].get("x-gateway-provider") == "rchat", "setup: the slow first request should succeed on its target"
    after = ctx.breaker("rchat.slowfirst-1000-strag")
    elapsed_ms = (time.monotonic() - t_open) * 1000
    if elapsed_ms >= COOLDOWN_MS:
        pytest.skip(f"machine too slow to judge: the slow request ended {elapsed_ms:.0f} ms after the breaker opened")
    assert after["breaker"] == "open", (
        f"GATEWAY BUG: an open breaker was closed {elapsed_ms:.0f} ms into its {COOLDOWN_MS} ms cooldown by the success "
        f"of a request that started before it opened (not a probe): /status went from {opened} to {after}")


def test_status_needs_auth_and_shows_shared_state(ctx):
    assert ctx.http.get("/status").status_code == 401
    assert ctx.http.get("/status", headers={"authorization": "Bearer wrong-key"}).status_code == 401
    r = ctx.http.get("/status", headers={"x-api-key": CLIENT_KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "shared" and isinstance(body["targets"], list), body
    assert {p["provider"] for p in body["providers"]} >= {"oai", "ant", "gem", "pool", "rchat"}
    for secret in ("sk-", "AIza", "gw-test-key"):
        assert secret not in r.text


# --------------------------------------------------------------------------------------
# After the first byte: streams
# --------------------------------------------------------------------------------------
def read_stream_with_deadline(ctx: Ctx, path: str, body: dict, headers: dict, deadline_s: float):
    """Reads a streamed answer chunk by chunk, stopping at `deadline_s` whatever happens.
    Returns (response, [(t, bytes)], ended_cleanly, error)."""
    chunks, clean, error = [], False, None
    t0 = time.monotonic()
    with ctx.http.stream("POST", path, json=body, headers=headers, timeout=httpx.Timeout(5.0)) as r:
        try:
            for chunk in r.iter_raw():
                chunks.append((time.monotonic() - t0, chunk))
                if time.monotonic() - t0 > deadline_s:
                    error = f"still streaming after {deadline_s} s"
                    break
            else:
                clean = True
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
    return r, chunks, clean, error


def test_hang_mid_stream_gets_keepalives_then_the_idle_error(ctx):
    deadline = IDLE_MS / 1000 + 4
    clock = Clock("upstream stalls mid-stream: keepalives, then idleMs error")
    r, chunks, clean, error = read_stream_with_deadline(
        ctx, "/v1/chat/completions", {"model": "oai.mock-hang-mid", "messages": chat_msg(), "stream": True},
        {"authorization": f"Bearer {CLIENT_KEY}"}, deadline)
    secs = clock.stop()
    assert r.status_code == 200 and r.headers.get("x-gateway-attempts") == "1"
    text = b"".join(c for _, c in chunks).decode()
    keepalives = [t for t, c in chunks if c.startswith(b": keepalive")]
    assert len(keepalives) >= 2, f"no keepalives during the upstream's silence: {text[-300:]!r}"
    assert error is None and clean, (
        f"GATEWAY BUG: timeouts.idleMs={IDLE_MS} did not end a stream whose upstream stalled: after {secs:.1f} s the "
        f"caller had {len(keepalives)} keepalives and no error event (keepalives reset the idle clock; the stall only "
        f"ends at timeouts.totalMs={TOTAL_MS}); {error}")
    events = parse_sse(text)
    assert events[-1] == (None, "[DONE]"), events[-3:]
    err = json.loads(events[-2][1])["error"]
    assert "idleMs" in err["message"], err
    # a stream logs its line when it ends: whole duration, time to first byte, how it ended
    line = ctx.log_line(r.headers)
    assert line["streamEnd"] == "timeout" and line["durationMs"] >= IDLE_MS > line["firstByteMs"], line


def test_mid_stream_drop_ends_with_the_error_event_and_the_sdk_raises(ctx):
    # raw: the caller protocol's error event, then a clean end
    r, chunks, clean, error = read_stream_with_deadline(
        ctx, "/v1/chat/completions", {"model": "oai.mock-hang-mid-300", "messages": chat_msg(), "stream": True},
        {"authorization": f"Bearer {CLIENT_KEY}"}, 8)
    assert clean and error is None, error
    events = parse_sse(b"".join(c for _, c in chunks).decode())
    assert events[0][1].startswith("{") and events[-1] == (None, "[DONE]"), events
    assert "error" in json.loads(events[-2][1]), events[-2]
    # the OpenAI SDK raises instead of hanging or returning a silently short answer
    clock = Clock("upstream drops mid-stream: OpenAI SDK raises")
    with pytest.raises(openai.APIError):
        for _ in ctx.openai().chat.completions.create(model="oai.mock-hang-mid-300", messages=chat_msg(), stream=True):
            pass
    assert clock.stop() < 5
    # and so does the Anthropic SDK (its protocol's `event: error`)
    clock = Clock("upstream drops mid-stream: Anthropic SDK raises")
    with pytest.raises(anthropic.APIError):
        with ctx.anthropic().messages.stream(model="ant.mock-hang-mid-300", max_tokens=32, messages=ant_msg()) as s:
            for _ in s:
                pass
    assert clock.stop() < 5


@pytest.mark.parametrize("model", ["ant.mock-truncate", "oai.mock-truncate"], ids=["converted", "passthrough"])
def test_truncated_stream_ends_with_the_error_event(ctx, model):
    """An upstream stream that ends cleanly before its terminal event: the caller must be told
    (error event + clean end), not handed a silently shortened answer."""
    r, chunks, clean, error = read_stream_with_deadline(
        ctx, "/v1/chat/completions", {"model": model, "messages": chat_msg(), "stream": True},
        {"authorization": f"Bearer {CLIENT_KEY}"}, 8)
    assert r.status_code == 200 and clean and error is None, error
    events = parse_sse(b"".join(c for _, c in chunks).decode())
    errors = [d for _, d in events if d.startswith('{"error"')]
    assert errors, (f"GATEWAY BUG ({'passthrough' if model.startswith('oai') else 'converted'}): the upstream stream was "
                    f"cut before its end, yet the caller got no error event; last events: {events[-2:]}")
    assert events[-1] == (None, "[DONE]")
    assert ctx.log_line(r.headers)["streamEnd"] == "truncated"
    with pytest.raises(openai.APIError):
        for _ in ctx.openai().chat.completions.create(model=model, messages=chat_msg(), stream=True):
            pass


@pytest.mark.parametrize("client_kind", ["chat", "anthropic"])
def test_keepalives_during_a_silence_within_limits(ctx, client_kind):
    silent = 1500
    if client_kind == "chat":
        path, body = "/v1/chat/completions", {"model": f"rchat.silent-{silent}", "messages": chat_msg(), "stream": True}
        headers = {"authorization": f"Bearer {CLIENT_KEY}"}
        marker = b": keepalive"
    else:
        path, body = "/v1/messages", {"model": f"rant.silent-{silent}", "max_tokens": 32, "messages": ant_msg(), "stream": True}
        headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
        marker = b"event: ping"
    clock = Clock(f"{client_kind}: upstream silent {silent} ms mid-stream")
    r, chunks, clean, error = read_stream_with_deadline(ctx, path, body, headers, 8)
    secs = clock.stop()
    assert r.status_code == 200 and clean and error is None, error
    text = b"".join(c for _, c in chunks).decode()
    pings = [t for t, c in chunks if c.startswith(marker)]
    assert len(pings) >= 2, f"expected keepalives every {KEEPALIVE_MS} ms during {silent} ms of silence: {text!r}"
    assert ctx.log_line(r.headers)["streamEnd"] == "complete"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert all(g > KEEPALIVE_MS / 1000 * 0.5 for g in gaps), f"keepalives too frequent: {gaps}"
    if client_kind == "chat":
        assert text.rstrip().endswith("data: [DONE]") and f"rmock(silent-{silent})" in text
    else:
        assert "message_stop" in text and f"rmock(silent-{silent})" in text
        # the SDK parses the ping events without complaint
        with ctx.anthropic().messages.stream(model=f"rant.silent-{silent}", max_tokens=32, messages=ant_msg()) as s:
            assert "reply" in "".join(s.text_stream)
    assert secs < silent / 1000 + 5


def test_client_disconnect_closes_the_upstream_connection(ctx):
    """Under wrangler dev request.signal is not delivered (see the next test); the close still
    reaches the upstream because the gateway's next keepalive write to the gone caller fails."""
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    body = {"model": "rchat.hang", "messages": chat_msg(), "stream": True}
    with httpx.Client(base_url=ctx.base, timeout=10) as c:
        with c.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status_code == 200
            first = next(r.iter_raw())
            assert first.startswith(b"data: ")
        # leaving both blocks closes the connection mid-stream
        t_closed = time.monotonic()
    clock = Clock("client disconnect -> upstream connection closed")
    deadline = t_closed + 8
    rec = None
    while time.monotonic() < deadline:
        recs = ctx.rmock.requests("hang")
        if recs and recs[-1].get("peerClosed"):
            rec = recs[-1]
            break
        time.sleep(0.05)
    secs = clock.stop()
    assert rec is not None, "the upstream connection stayed open after the caller went away"
    TIMINGS[-1] = (TIMINGS[-1][0], secs, f"upstream saw the close {secs * 1000:.0f} ms after the client left")


def test_client_disconnect_before_headers_aborts_the_upstream_request(ctx):
    """The caller gives up while the gateway still waits for the upstream's headers: the upstream
    fetch is aborted through request.signal (not only when firstByteMs expires), and no retry
    is started for a caller that is gone."""
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    body = {"model": "rchat.hang", "messages": chat_msg()}
    with httpx.Client(base_url=ctx.base, timeout=httpx.Timeout(10.0, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/chat/completions", json=body, headers=headers)
    t_closed = time.monotonic()
    clock = Clock("client gives up before headers -> upstream request aborted")
    rec = None
    while time.monotonic() < t_closed + FIRST_BYTE_MS / 1000 * 2 + 3:
        recs = ctx.rmock.requests("hang")
        if recs and recs[0].get("peerClosed"):
            rec = recs[0]
            break
        time.sleep(0.05)
    secs = clock.stop()
    assert rec is not None, "the upstream request stayed open after the caller went away"
    time.sleep(0.5)
    n = len(ctx.rmock.requests("hang"))
    TIMINGS[-1] = (TIMINGS[-1][0], secs, f"upstream saw the close {secs * 1000:.0f} ms after the client left; "
                                         f"{n} upstream request(s)")
    if secs * 1000 >= FIRST_BYTE_MS * 0.8:
        # Checked separately with a six-line worker under the same wrangler dev: request.signal
        # never aborts when the client disconnects (signal.aborted is still false 3 s later), so
        # the gateway cannot notice a caller that left before the first byte in this environment.
        pytest.skip(f"not observable under wrangler dev: request.signal is not aborted when the client disconnects; "
                    f"the upstream request ended only with firstByteMs ({secs * 1000:.0f} ms after the client left) and "
                    f"{n} upstream request(s) were made")
    assert n == 1, f"the gateway retried {n - 1} time(s) for a caller that had gone"


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("client_kind,model,provider,path_part", [
    ("anthropic", "claude-sonnet-4-5", "ant", "/v1/messages"),
    ("gemini", "gemini-2.5-flash", "gem", "/models/gemini-2.5-flash:generateContent"),
    ("chat", "gpt-5", "resp", "/v1/responses"),
])
def test_bare_vendor_names_follow_the_default_rules(ctx, client_kind, model, provider, path_part):
    if client_kind == "anthropic":
        raw = ctx.anthropic().messages.with_raw_response.create(model=model, max_tokens=32, messages=ant_msg())
        raw.parse()
        headers = raw.headers
    elif client_kind == "gemini":
        client = ctx.genai()
        resp = client.models.generate_content(model=model, contents="hello")
        assert resp.text
        headers = {k.lower(): v for k, v in (resp.sdk_http_response.headers or {}).items()}
    else:
        raw = ctx.openai().chat.completions.with_raw_response.create(model=model, messages=chat_msg())
        raw.parse()
        headers = raw.headers
    assert_answered_by(headers, provider, model, 1)
    sent = ctx.upstream(model)
    assert len(sent) == 1 and path_part in sent[0]["path"], [(r["path"], r["status"]) for r in ctx.mock.requests()]


@pytest.mark.parametrize("client_kind,model,provider,upstream_model,check", [
    ("chat", "claude-sonnet-4-5-thinking", "ant", "claude-sonnet-4-5", "thinking-hidden"),
    ("chat", "claude-sonnet-4-5-high", "ant", "claude-sonnet-4-5", "thinking-visible"),
    # gemx lists its models: for a provider without `models`, "gem.gemini-2.5-flash-high" is itself
    # a valid provider.model name (sent upstream as is), which resolves before suffix aliases
    ("anthropic", "gemx.gemini-2.5-flash-high", "gemx", "gemini-2.5-flash", "gemini"),
    ("chat", "gpt-5-low", "resp", "gpt-5", "effort-low"),
])
def test_suffix_aliases_turn_reasoning_on_upstream(ctx, client_kind, model, provider, upstream_model, check):
    if client_kind == "chat":
        raw = ctx.openai().chat.completions.with_raw_response.create(model=model, messages=chat_msg())
        reply = raw.parse()
    else:
        raw = ctx.anthropic().messages.with_raw_response.create(model=model, max_tokens=2048, messages=ant_msg())
        reply = raw.parse()
    assert_answered_by(raw.headers, provider, upstream_model, 1)
    sent = ctx.upstream(upstream_model)
    assert len(sent) == 1, [(r["path"], r.get("body", {}).get("model") if isinstance(r.get("body"), dict) else None) for r in ctx.mock.requests()]
    body = sent[0]["body"]
    if check.startswith("thinking"):
        thinking = body.get("thinking") or {}
        assert thinking.get("type") in ("enabled", "adaptive"), f"no thinking upstream: {body}"
        shown = getattr(reply.choices[0].message, "reasoning_content", None) or (reply.choices[0].message.model_extra or {}).get("reasoning_content")
        if check == "thinking-hidden":
            assert not shown, f"-thinking must hide the reasoning from the caller, got {shown!r}"
        else:
            assert shown, "an effort suffix shows the reasoning to the caller"
    elif check == "gemini":
        tc = (body.get("generationConfig") or {}).get("thinkingConfig")
        assert tc, f"no thinkingConfig upstream: {body}"
    else:
        assert (body.get("reasoning") or {}).get("effort") == "low", body


# --------------------------------------------------------------------------------------
# Routes and passthrough
# --------------------------------------------------------------------------------------
def test_a_route_keeps_passthrough_byte_for_byte_for_its_same_protocol_target(ctx):
    """README: passthrough (caller protocol = provider type) forwards the body with only `model`
    rewritten. A route whose fallback is another protocol should not change that for the target
    that speaks the caller's protocol (Claude Code -> [anthropic, openai] is the common case)."""
    sent = {"model": "rmix", "max_tokens": 32, "messages": ant_msg(), "service_tier": "auto",
            "metadata": {"user_id": "u-1"}, "temperature": 0.5, "top_k": 7}
    r = ctx.http.post("/v1/messages", json=sent, headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    assert_answered_by(r.headers, "ant", "claude-sonnet-4-5", 1)
    got = ctx.upstream("claude-sonnet-4-5")[0]["body"]
    want = dict(sent, model="claude-sonnet-4-5")
    assert got == want, (
        "GATEWAY BUG: in a route that also has a cross-protocol target, the same-protocol target gets a re-encoded "
        f"body instead of the caller's (passthrough): sent {json.dumps(want, sort_keys=True)}, upstream got "
        f"{json.dumps(got, sort_keys=True)}")


def test_a_request_only_passthrough_can_carry_goes_to_the_target_that_takes_it(ctx):
    """A Responses request with a built-in tool no other provider runs (file_search), on a route
    whose first target is Claude and whose second speaks Responses: the Claude target is left out,
    the Responses one answers (instead of the whole request failing as unconvertible)."""
    sent = {"model": "rrespx", "input": "find it", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}
    r = ctx.http.post("/v1/responses", json=sent, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 200, r.text
    assert_answered_by(r.headers, "resp", "gpt-5", 1)
    assert ctx.upstream("gpt-5")[0]["body"] == dict(sent, model="gpt-5")
    assert not ctx.upstream("claude-sonnet-4-5")
