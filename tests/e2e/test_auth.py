"""Gateway front-door auth, health, CORS and request ids."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google.genai import errors as gerrors

from e2e_util import (
    CLIENT_KEY, CLIENT_KEY_2, PROTOCOLS, assert_anthropic_error, assert_error_format, assert_reply_ok,
    request_body, request_path,
)

ECHO = "echo.auth-test"


def call(gw, protocol, headers, path=None, params=None, text="auth check"):
    return gw.post(path or request_path(protocol, ECHO), json=request_body(protocol, ECHO, text),
                   headers=headers, params=params)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_missing_key_is_401_in_caller_format(gateway, protocol):
    r = call(gateway, protocol, {"anthropic-version": "2023-06-01"} if protocol == "anthropic" else {})
    assert_error_format(r, protocol, 401)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("style", ["bearer", "bare", "x-api-key"])
def test_wrong_key_is_401(gateway, protocol, style):
    headers = {"bearer": {"authorization": "Bearer gw-wrong"}, "bare": {"authorization": "gw-wrong"},
               "x-api-key": {"x-api-key": "gw-wrong"}}[style]
    r = call(gateway, protocol, headers)
    err = assert_error_format(r, protocol, 401)
    if protocol == "anthropic":
        assert err["type"] == "authentication_error"


def test_wrong_gemini_key_is_401(gateway):
    r = call(gateway, "gemini", {"x-goog-api-key": "gw-wrong"})
    assert_error_format(r, "gemini", 401)
    r = call(gateway, "gemini", {}, params={"key": "gw-wrong"})
    assert_error_format(r, "gemini", 401)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("style", ["bearer", "bare", "x-api-key"])
def test_key_styles_accepted(gateway, protocol, style):
    headers = {"bearer": {"authorization": f"Bearer {CLIENT_KEY}"}, "bare": {"authorization": CLIENT_KEY},
               "x-api-key": {"x-api-key": CLIENT_KEY_2}}[style]
    assert_reply_ok(call(gateway, protocol, headers, text=f"style {style}"), protocol, f"style {style}")


def test_gemini_key_styles_accepted(gateway):
    assert_reply_ok(call(gateway, "gemini", {"x-goog-api-key": CLIENT_KEY}, text="goog header"), "gemini", "goog header")
    assert_reply_ok(call(gateway, "gemini", {}, params={"key": CLIENT_KEY_2}, text="query key"), "gemini", "query key")


def test_gemini_query_key_is_stripped_before_upstream(gateway, mock_upstream):
    path = "/gemini/v1beta/models/gem.gemini-2.5-flash:generateContent"
    r = gateway.post(path, params={"key": CLIENT_KEY}, json=request_body("gemini", None, "strip my key"))
    assert_reply_ok(r, "gemini", "strip my key")
    rec = mock_upstream.last(":generateContent")
    assert "gw-test-key" not in rec["query"] and "key=" not in rec["query"], rec["query"]
    assert rec["headers"].get("x-goog-api-key") == "AIza-upstream-1"


@pytest.mark.parametrize("protocol,model", [
    ("chat", "oai.gpt-4o-mini"), ("responses", "resp.gpt-5"), ("anthropic", "ant.claude-sonnet-4-5"),
    ("gemini", "gem.gemini-2.5-flash")])
@pytest.mark.parametrize("style", ["bearer", "bare", "x-api-key"])
def test_client_key_never_reaches_upstream(gateway, mock_upstream, protocol, model, style):
    headers = {"bearer": {"authorization": f"Bearer {CLIENT_KEY}"}, "bare": {"authorization": CLIENT_KEY},
               "x-api-key": {"x-api-key": CLIENT_KEY}}[style]
    r = gateway.post(request_path(protocol, model), json=request_body(protocol, model, "leak check"), headers=headers)
    assert "LEAKED_CLIENT_KEY" not in r.text, r.text
    assert_reply_ok(r, protocol, "leak check")
    mock_upstream.assert_no_leaks()
    assert mock_upstream.requests(), "the request did not reach the upstream"


def test_health_and_head_without_auth(gateway):
    r = gateway.get("/health")
    assert r.status_code == 200
    r = gateway.request("HEAD", "/")
    assert r.status_code == 200


CORS_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "anthropic-version", "anthropic-beta", "content-type")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/gemini/v1beta/models/x:generateContent",
                                  "/some/unknown/path"])
@pytest.mark.parametrize("requested", [None, ", ".join(CORS_HEADERS)], ids=["no-request-headers", "all-requested"])
def test_cors_preflight(gateway, path, requested):
    headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
    if requested:
        headers["access-control-request-headers"] = requested
    r = gateway.request("OPTIONS", path, headers=headers)
    assert r.status_code == 204, r.text
    assert r.headers.get("access-control-allow-origin"), r.headers
    allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
    if "*" not in allowed:
        for h in CORS_HEADERS:
            assert h in allowed, f"{h} missing from access-control-allow-headers: {allowed}"
    methods = r.headers.get("access-control-allow-methods", "")
    assert "POST" in methods.upper() or methods.strip() == "*", r.headers


def test_every_response_has_request_id(gateway):
    responses = {
        "health": gateway.get("/health"),
        "head": gateway.request("HEAD", "/"),
        "options": gateway.request("OPTIONS", "/v1/chat/completions"),
        "401": call(gateway, "chat", {}),
        "404": gateway.post("/v1/definitely-not-here", headers={"authorization": f"Bearer {CLIENT_KEY}"}, json={}),
        "405": gateway.get("/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT_KEY}"}),
        "echo": call(gateway, "chat", {"authorization": f"Bearer {CLIENT_KEY}"}),
        "passthrough": gateway.post("/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT_KEY}"},
                                    json=request_body("chat", "oai.gpt-4o-mini")),
        "gemini": call(gateway, "gemini", {"x-goog-api-key": CLIENT_KEY}),
    }
    missing = [k for k, r in responses.items() if not r.headers.get("x-request-id")]
    assert not missing, f"responses without x-request-id: {missing}"


def test_sdk_auth_errors(gateway):
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key="gw-wrong").chat.completions.create(model=ECHO, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError) as ei:
        gateway.anthropic(key="gw-wrong").messages.create(model=ECHO, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["error"]["type"] == "authentication_error"
    g = gateway.genai(key="gw-wrong")
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(model=ECHO, contents="x")
    assert ei.value.code == 401


def test_anthropic_sdk_bearer_auth_accepted(gateway):
    # anthropic 2.x sends the key as Authorization: Bearer, not x-api-key
    m = gateway.anthropic().messages.create(model=ECHO, max_tokens=20, messages=[{"role": "user", "content": "sdk bearer"}])
    assert "sdk bearer" in m.content[0].text


def test_anthropic_401_body_shape(gateway):
    r = gateway.post("/claude/v1/messages", headers={"x-api-key": "nope", "anthropic-version": "2023-06-01"},
                     json=request_body("anthropic", ECHO))
    assert_anthropic_error(r, 401, type_="authentication_error")
