"""Fault handling: malformed requests, limits, dead/hanging/broken upstreams, routing errors.
After each fault the gateway must still answer."""

from __future__ import annotations

import json
import time

import httpx
import openai as openai_sdk
import pytest

from e2e_util import (
    CLIENT_KEY, PROTOCOLS, PROVIDER_MODEL, assert_error_format, assert_reply_ok, request_body, request_path,
)

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
ANT_AUTH = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
GEM_AUTH = {"x-goog-api-key": CLIENT_KEY}
HEADERS = {"chat": AUTH, "responses": AUTH, "anthropic": ANT_AUTH, "gemini": GEM_AUTH}
ECHO = "echo.faults"
FIRST_BYTE_S = 3.0


def assert_still_up(gw):
    r = gw.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", ECHO, "still alive"))
    assert_reply_ok(r, "chat", "still alive")


# --------------------------------------------------------------------------------------
# Malformed requests
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [ECHO, "provider"], ids=["echo", "passthrough"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_json_is_400(gateway, mock_upstream, protocol, model):
    m = ECHO if model == ECHO else PROVIDER_MODEL[protocol]
    r = gateway.post(request_path(protocol, m), headers={**HEADERS[protocol], "content-type": "application/json"},
                     content=b'{"model": "x", "messages": [')
    assert_error_format(r, protocol, 400)
    if protocol != "gemini":  # gemini passthrough may let the upstream judge the body
        assert mock_upstream.requests() == []


WRONG_TYPES = [
    ("chat", {"model": 42, "messages": [{"role": "user", "content": "x"}]}),
    ("chat", {"model": ECHO, "messages": "not a list"}),
    ("chat", {"model": ECHO}),
    ("chat", ["not", "an", "object"]),
    ("responses", {"model": 42, "input": "x"}),
    ("responses", {"model": ECHO, "input": 42}),
    ("anthropic", {"model": 42, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    ("anthropic", {"model": ECHO, "max_tokens": 5, "messages": {"role": "user"}}),
    ("gemini", {"contents": "not a list"}),
    ("gemini", {"contents": [{"role": "user", "parts": "nope"}]}),
]


@pytest.mark.parametrize("protocol,body", WRONG_TYPES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(WRONG_TYPES)])
def test_wrong_types_are_400(gateway, protocol, body):
    r = gateway.post(request_path(protocol, ECHO), headers=HEADERS[protocol], json=body)
    assert_error_format(r, protocol, 400)


@pytest.mark.parametrize("protocol", ["chat", "anthropic"])
def test_model_number_on_passthrough_is_400(gateway, mock_upstream, protocol):
    body = request_body(protocol, "x")
    body["model"] = 7
    r = gateway.post(request_path(protocol), headers=HEADERS[protocol], json=body)
    assert_error_format(r, protocol, 400)
    assert mock_upstream.requests() == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_too_large_is_413(gateway, mock_upstream, protocol):
    model = ECHO
    body = request_body(protocol, model, "x" * 300_000)
    r = gateway.post(request_path(protocol, model), headers=HEADERS[protocol], json=body)
    assert_error_format(r, protocol, 413)
    assert_still_up(gateway)


def test_body_too_large_chunked_is_413(gateway):
    body = request_body("chat", "oai.gpt-4o-mini", "y" * 300_000)
    data = json.dumps(body).encode()

    def gen():  # no content-length: the gateway has to count
        for i in range(0, len(data), 16384):
            yield data[i:i + 16384]

    r = gateway.post("/v1/chat/completions", headers={**AUTH, "content-type": "application/json"}, content=gen())
    assert_error_format(r, "chat", 413)
    assert_still_up(gateway)


def test_body_just_under_limit_is_accepted(gateway):
    body = request_body("chat", ECHO, "z" * 200_000)
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=body)
    assert r.status_code == 200, r.text[:300]


# --------------------------------------------------------------------------------------
# Upstream faults
# --------------------------------------------------------------------------------------
def test_dead_upstream_is_502(gateway):
    t0 = time.monotonic()
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "dead.m"))
    assert_error_format(r, "chat", 502)
    assert time.monotonic() - t0 < FIRST_BYTE_S + 5
    assert_still_up(gateway)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_hanging_upstream_is_504_after_first_byte_timeout(gateway, stream):
    t0 = time.monotonic()
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-hang", stream=stream),
                     timeout=30)
    elapsed = time.monotonic() - t0
    assert_error_format(r, "chat", 504)
    assert FIRST_BYTE_S - 0.5 <= elapsed <= FIRST_BYTE_S + 4, f"504 after {elapsed:.1f}s"
    assert_still_up(gateway)


def test_slow_upstream_within_first_byte_timeout_succeeds(gateway):
    t0 = time.monotonic()
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-slow-1000", "slow ok"))
    assert_reply_ok(r, "chat", "slow ok")
    assert time.monotonic() - t0 >= 1.0


def test_reset_upstream_is_502(gateway):
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-reset"))
    assert_error_format(r, "chat", 502)
    assert_still_up(gateway)


def test_garbage_upstream_does_not_break_gateway(gateway):
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-garbage"), timeout=15)
    # passthrough may relay the upstream's 200 + garbage verbatim, or turn it into a 502
    assert r.status_code in (200, 502), r.status_code
    if r.status_code == 200:
        assert "upstream garbage" in r.text
    assert_still_up(gateway)


def test_truncated_stream_ends_and_gateway_survives(gateway):
    t0 = time.monotonic()
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-truncate", "a b c d", stream=True),
                     timeout=15)
    assert time.monotonic() - t0 < 10
    assert r.status_code == 200
    # The caller learns the stream broke: an error event (then a clean end), never a silent [DONE].
    assert '"error"' in r.text, "a truncated upstream stream must end with the caller's error event"
    if "[DONE]" in r.text:
        assert r.text.index('"error"') < r.text.index("[DONE]"), "the error event must come before [DONE]"
    assert_still_up(gateway)


def test_truncated_non_stream_body_is_bounded(gateway):
    t0 = time.monotonic()
    try:
        r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mock-truncate"), timeout=15)
        # A passthrough body is relayed as it arrives, so the cut can only show as a broken
        # transfer (below); a complete-looking answer would be a silent truncation.
        assert r.status_code == 502, (r.status_code, r.headers, r.text[:200])
    except httpx.TransportError:
        pass  # the caller's client sees the body end short of its length, as from the upstream
    assert time.monotonic() - t0 < 10
    assert_still_up(gateway)


def test_client_disconnect_mid_stream_does_not_hurt(gateway):
    with httpx.Client(base_url=gateway.base, timeout=httpx.Timeout(10, read=6)) as c:
        with c.stream("POST", "/v1/chat/completions", headers=AUTH,
                      json=request_body("chat", "oai.mock-hang-mid", "x", stream=True)) as r:
            next(r.iter_raw())
    assert_still_up(gateway)


# --------------------------------------------------------------------------------------
# Routing errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/nope", "/openai/v1/whatever", "/v2/chat/completions", "/claude/v2/messages"])
def test_unknown_path_is_404(gateway, path):
    r = gateway.post(path, headers={**AUTH, "anthropic-version": "2023-06-01"}, json={})
    assert r.status_code == 404, r.text
    assert r.headers.get("x-request-id")


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/chat/completions"), ("GET", "/v1/responses"), ("GET", "/v1/messages"),
    ("PUT", "/v1/chat/completions"), ("POST", "/v1/models"),
    ("GET", "/gemini/v1beta/models/echo.x:generateContent"),
])
def test_wrong_method_is_405(gateway, method, path):
    r = gateway.request(method, path, headers={**AUTH, **GEM_AUTH, "anthropic-version": "2023-06-01"})
    assert r.status_code == 405, r.text


def test_unknown_gemini_method_is_404(gateway):
    r = gateway.post("/gemini/v1beta/models/echo.x:explode", headers=GEM_AUTH, json=request_body("gemini", None))
    assert_error_format(r, "gemini", 404)


def test_image_by_file_id_to_a_chat_upstream_is_a_clear_400(gateway, mock_upstream):
    """A Responses client's image by file id has no Chat Completions form: the caller gets a
    400 in its own format naming the file, and nothing goes upstream."""
    mock_upstream.clear()
    client = gateway.openai()
    with pytest.raises(openai_sdk.BadRequestError) as e:
        client.responses.create(model="oai.gpt-4o-mini", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"}, {"type": "input_image", "file_id": "file-abc123"}]}])
    assert "file-abc123" in str(e.value) and "URL" in str(e.value)
    assert mock_upstream.find("/chat/completions") == []
    assert_still_up(gateway)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_gemini_malformed_function_call_is_a_retried_failure_when_converted(gateway, mock_upstream, stream):
    # Converted for a Chat caller, a Gemini turn that failed to form its tool call is a
    # failed attempt (retried), never an empty answer that silently ends an agent's turn.
    mock_upstream.clear()
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "gem.mock-malformed", stream=stream), timeout=15)
    assert_error_format(r, "chat", 502, "MALFORMED_FUNCTION_CALL")
    assert len(mock_upstream.find("mock-malformed")) >= 2, "the failed attempt is retried"
    assert r.headers.get("x-gateway-attempts") == str(len(mock_upstream.find("mock-malformed")))
    # A Gemini caller (passthrough) gets Gemini's answer as it is.
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    r = gateway.post(f"/v1beta/models/gem.mock-malformed:{method}", headers=HEADERS["gemini"],
                     json=request_body("gemini", None), timeout=15)
    assert r.status_code == 200 and "MALFORMED_FUNCTION_CALL" in r.text, (r.status_code, r.text[:300])
    assert_still_up(gateway)
