"""Shared helpers for the end-to-end tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
from typing import Iterable

import httpx

# The gateway converts between protocols: cross-protocol requests are expected to succeed.
# E2E_CROSS_PROTOCOL=0 switches back to expecting 501 (for a build without conversion).
CROSS_PROTOCOL_CONVERSION = os.environ.get("E2E_CROSS_PROTOCOL", "1") == "1"

CLIENT_KEY = "gw-test-key-1"
CLIENT_KEY_2 = "gw-test-key-2"

PROTOCOLS = ("chat", "responses", "anthropic", "gemini")

# Default endpoint per client protocol (gateway side).
DEFAULT_PATH = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:{method}",
}

# A model of each provider type in the test config, by upstream protocol.
PROVIDER_MODEL = {
    "chat": "oai.gpt-4o-mini",
    "responses": "resp.gpt-5",
    "anthropic": "ant.claude-sonnet-4-5",
    "gemini": "gem.gemini-2.5-flash",
}


# --------------------------------------------------------------------------------------
# Request builders / raw calls
# --------------------------------------------------------------------------------------
def request_body(protocol: str, model: str | None, text: str = "hello", stream: bool = False) -> dict:
    if protocol == "chat":
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
    if protocol == "responses":
        body = {"model": model, "input": text}
        if stream:
            body["stream"] = True
        return body
    if protocol == "anthropic":
        body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        return body
    if protocol == "gemini":
        return {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    raise ValueError(protocol)


def request_path(protocol: str, model: str | None = None, stream: bool = False, prefix: str = "") -> str:
    if protocol == "gemini":
        method = "streamGenerateContent" if stream else "generateContent"
        path = f"/v1beta/models/{model}:{method}" + ("?alt=sse" if stream else "")
        return (prefix or "") + path
    return DEFAULT_PATH[protocol]


def auth_headers(protocol: str, key: str = CLIENT_KEY) -> dict:
    if protocol == "gemini":
        return {"x-goog-api-key": key}
    if protocol == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return {"authorization": f"Bearer {key}"}


# --------------------------------------------------------------------------------------
# Response parsing
# --------------------------------------------------------------------------------------
def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event, data) pairs. Accepts LF, CRLF and CR separators."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in text.split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if data or event:
            out.append((event, "\n".join(data)))
    return out


def sse_json(text: str) -> list[tuple[str | None, dict | str]]:
    out = []
    for ev, data in parse_sse(text):
        try:
            out.append((ev, json.loads(data)))
        except json.JSONDecodeError:
            out.append((ev, data))
    return out


def response_text(protocol: str, obj: dict) -> str:
    """Assistant text of a non-streamed reply in `protocol` format."""
    if protocol == "chat":
        return obj["choices"][0]["message"]["content"]
    if protocol == "responses":
        return "".join(
            c.get("text", "")
            for item in obj["output"] if item.get("type") == "message"
            for c in item.get("content", []) if c.get("type") == "output_text"
        )
    if protocol == "anthropic":
        return "".join(b.get("text", "") for b in obj["content"] if b.get("type") == "text")
    if protocol == "gemini":
        return "".join(p.get("text", "") for p in obj["candidates"][0]["content"]["parts"] if not p.get("thought"))
    raise ValueError(protocol)


def stream_text(protocol: str, body: str) -> str:
    """Assistant text of a streamed (SSE) reply in `protocol` format."""
    out = []
    for ev, data in sse_json(body):
        if not isinstance(data, dict):
            continue
        if protocol == "chat":
            for ch in data.get("choices") or []:
                out.append((ch.get("delta") or {}).get("content") or "")
        elif protocol == "responses":
            if data.get("type") == "response.output_text.delta":
                out.append(data["delta"])
        elif protocol == "anthropic":
            if data.get("type") == "content_block_delta" and data["delta"].get("type") == "text_delta":
                out.append(data["delta"]["text"])
        elif protocol == "gemini":
            for cand in data.get("candidates") or []:
                for p in (cand.get("content") or {}).get("parts") or []:
                    if not p.get("thought"):
                        out.append(p.get("text", ""))
    return "".join(out)


def stream_is_complete(protocol: str, body: str) -> bool:
    events = sse_json(body)
    if protocol == "chat":
        return bool(events) and events[-1][1] == "[DONE]"
    if protocol == "responses":
        return any(isinstance(d, dict) and d.get("type") == "response.completed" for _, d in events)
    if protocol == "anthropic":
        return any(isinstance(d, dict) and d.get("type") == "message_stop" for _, d in events)
    if protocol == "gemini":
        return any(isinstance(d, dict) and any(c.get("finishReason") for c in d.get("candidates") or []) for _, d in events)
    raise ValueError(protocol)


# --------------------------------------------------------------------------------------
# Error-format assertions
# --------------------------------------------------------------------------------------
def _json(r: httpx.Response) -> dict:
    try:
        return r.json()
    except Exception as e:  # pragma: no cover - assertion helper
        raise AssertionError(f"expected a JSON error body, got {r.status_code} {r.headers.get('content-type')!r}: {r.text[:300]!r}") from e


def assert_openai_error(r: httpx.Response, status: int, contains: str | None = None) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    body = _json(r)
    err = body.get("error")
    assert isinstance(err, dict), f"not an OpenAI error body: {body}"
    assert isinstance(err.get("message"), str) and err["message"], body
    assert isinstance(err.get("type"), str) and err["type"], body
    assert "param" in err and "code" in err, f"OpenAI error needs param and code keys: {body}"
    if contains:
        assert contains.lower() in err["message"].lower(), f"{contains!r} not in {err['message']!r}"
    return err


def assert_anthropic_error(r: httpx.Response, status: int, contains: str | None = None, type_: str | None = None) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    body = _json(r)
    assert body.get("type") == "error", f"not an Anthropic error body: {body}"
    err = body.get("error")
    assert isinstance(err, dict) and isinstance(err.get("type"), str) and isinstance(err.get("message"), str), body
    if type_:
        assert err["type"] == type_, body
    if contains:
        assert contains.lower() in err["message"].lower(), f"{contains!r} not in {err['message']!r}"
    return err


def assert_gemini_error(r: httpx.Response, status: int, contains: str | None = None, status_str: str | None = None) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    body = _json(r)
    err = body.get("error")
    assert isinstance(err, dict), f"not a Gemini error body: {body}"
    assert err.get("code") == status, body
    assert isinstance(err.get("message"), str) and err["message"], body
    assert isinstance(err.get("status"), str) and err["status"], body
    if status_str:
        assert err["status"] == status_str, body
    if contains:
        assert contains.lower() in err["message"].lower(), f"{contains!r} not in {err['message']!r}"
    return err


def assert_error_format(r: httpx.Response, protocol: str, status: int, contains: str | None = None) -> dict:
    if protocol in ("chat", "responses", "openai"):
        return assert_openai_error(r, status, contains)
    if protocol == "anthropic":
        return assert_anthropic_error(r, status, contains)
    if protocol == "gemini":
        return assert_gemini_error(r, status, contains)
    raise ValueError(protocol)


def assert_reply_ok(r: httpx.Response, protocol: str, expect_text: str | None = None, stream: bool = False) -> str:
    assert r.status_code == 200, f"expected 200, got {r.status_code}: {r.text[:500]}"
    if stream:
        assert r.headers.get("content-type", "").startswith("text/event-stream"), r.headers
        text = stream_text(protocol, r.text)
        assert stream_is_complete(protocol, r.text), f"stream not terminated properly: {r.text[-500:]!r}"
    else:
        text = response_text(protocol, r.json())
    if expect_text is not None:
        assert expect_text in text, f"{expect_text!r} not in reply {text!r}"
    return text


def check_cross_protocol(r: httpx.Response, protocol: str, stream: bool = False, expect_text: str | None = None):
    """Single switch for cross-protocol expectations: 501 now, a real reply once conversion lands."""
    if CROSS_PROTOCOL_CONVERSION:
        assert_reply_ok(r, protocol, expect_text, stream)
    else:
        assert_error_format(r, protocol, 501)


def header_names(headers: Iterable[str]) -> set[str]:
    return {h.strip().lower() for h in headers}


# --------------------------------------------------------------------------------------
# Stream-event validation against the official SDK types, one event class per `type`
# (concise errors instead of a whole-union failure report)
# --------------------------------------------------------------------------------------
def _by_type(union) -> dict:
    import typing

    args = typing.get_args(union)
    if args and typing.get_origin(union) is typing.Annotated:
        args = typing.get_args(args[0])
    table = {}
    for cls in args:
        field = cls.model_fields.get("type")
        if field is None:
            continue
        for lit in typing.get_args(field.annotation):
            table[lit] = cls
    return table


def validate_event(union, data: dict):
    """Validate one decoded SSE event against the SDK class whose `type` literal matches."""
    table = _by_type(union)
    cls = table.get(data.get("type"))
    assert cls is not None, f"unknown event type {data.get('type')!r}"
    cls.model_validate(data)
