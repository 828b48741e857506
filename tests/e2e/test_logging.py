"""`logRequests: "errors"` in workerd: a gateway of its own (wrangler dev, strict mock upstream)
logs only the requests that failed, needed a fallback, or whose stream did not end complete;
successful requests, streamed or not, leave no line. The default ("all") is covered by
test_resilience.py, which reads the line of every request it checks."""

from __future__ import annotations

import os

import httpx
import pytest

from e2e_util import CLIENT_KEY
from resilience_util import Gateway, StartError, dead_port

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def errors_only_gateway(mock_upstream, tmp_path_factory):
    m = mock_upstream.base
    cfg = {
        "version": 1,
        "providers": {
            "oai": {"type": "openai-chat-completions", "baseURL": f"{m}/v1", "apiKey": "sk-upstream-oai"},
            "ant": {"type": "claude", "baseURL": m, "apiKey": "sk-ant-upstream-1"},
            "dead": {"type": "openai-chat-completions", "baseURL": f"http://127.0.0.1:{dead_port()}/v1",
                     "apiKey": "sk-upstream-dead"},
        },
        "routes": {"rdead": {"targets": ["dead.m", "oai.gpt-4o-mini"]}},
        "logRequests": "errors",
    }
    try:
        gw = Gateway.start(tmp_path_factory.mktemp("logging") / "gw", cfg, {"WORKER_AUTH_KEY": CLIENT_KEY},
                           state_binding=None, name="gateway-logging")
    except StartError as e:
        msg = str(e)
        if ("build missing" in msg or "wrangler not installed" in msg) and os.environ.get("E2E_REQUIRED") != "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    try:
        yield gw
    finally:
        gw.stop()


def post(gw: Gateway, body: dict) -> httpx.Response:
    return httpx.post(gw.base + CHAT, json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=20)


def test_only_failures_and_fallbacks_are_logged(errors_only_gateway):
    gw = errors_only_gateway
    user = [{"role": "user", "content": "hello"}]
    ok = post(gw, {"model": "oai.gpt-4o-mini", "messages": user})
    ok_stream = post(gw, {"model": "oai.gpt-4o-mini", "messages": user, "stream": True})
    ok_converted = post(gw, {"model": "ant.claude-sonnet-4-5", "messages": user, "stream": True})
    for r in (ok, ok_stream, ok_converted):
        assert r.status_code == 200, r.text
    fallback = post(gw, {"model": "rdead", "messages": user})
    assert fallback.status_code == 200, fallback.text
    unknown = post(gw, {"model": "nobody.m", "messages": user})
    assert unknown.status_code == 404, unknown.text
    upstream_error = post(gw, {"model": "oai.mock-error-500", "messages": user})
    assert upstream_error.status_code == 500, upstream_error.text

    # The logged lines arrive in the order of their requests, after the unlogged ones.
    for r, why in ((fallback, "a fallback"), (unknown, "a 404"), (upstream_error, "an upstream 500")):
        line = gw.log_line(r.headers["x-request-id"])
        assert line is not None, f"no log line for {why}"
        assert line["status"] == r.status_code
    assert len(gw.log_line(fallback.headers["x-request-id"])["attempts"]) == 2
    logged = {line.get("requestId") for line in gw.log_lines()}
    for r in (ok, ok_stream, ok_converted):
        assert r.headers["x-request-id"] not in logged, "a successful request was logged under logRequests: errors"
