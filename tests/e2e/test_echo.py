"""The built-in echo provider answers in the caller's protocol, streamed or not, through every
endpoint alias; its replies must satisfy the official SDKs' response types."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from google.genai import types as gtypes
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from e2e_util import CLIENT_KEY, assert_reply_ok, parse_sse, request_body, sse_json, validate_event

MODEL = "echo.anything"
AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
ANT_AUTH = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
GEM_AUTH = {"x-goog-api-key": CLIENT_KEY}
HEADERS = {"chat": AUTH, "responses": AUTH, "anthropic": ANT_AUTH, "gemini": GEM_AUTH}


def strict_openai(gw, base="/v1"):
    return gw.openai(base, _strict_response_validation=True)


def strict_anthropic(gw, base=""):
    return gw.anthropic(base, _strict_response_validation=True)


# --------------------------------------------------------------------------------------
# SDKs
# --------------------------------------------------------------------------------------
def test_chat_create(gateway, mock_upstream):
    r = strict_openai(gateway).chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "sys"}, {"role": "user", "content": "hello echo chat"}])
    assert "hello echo chat" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop" and r.object == "chat.completion"
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert mock_upstream.requests() == []  # echo never calls an upstream


def test_chat_stream_with_usage(gateway):
    chunks = list(strict_openai(gateway).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "echo stream"}], stream=True, stream_options={"include_usage": True}))
    assert len(chunks) >= 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "echo stream" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_chat_stream_without_usage_has_no_empty_choices_chunk(gateway):
    r = gateway.post("/v1/chat/completions", headers=AUTH, json={
        "model": MODEL, "stream": True, "messages": [{"role": "user", "content": "no usage"}]})
    assert r.status_code == 200
    events = sse_json(r.text)
    assert events[-1][1] == "[DONE]"
    for _, d in events[:-1]:
        ChatCompletionChunk.model_validate(d)
        assert d["choices"], f"usage chunk sent without stream_options.include_usage: {d}"


def test_responses_create(gateway):
    r = strict_openai(gateway).responses.create(model=MODEL, input="hello echo responses", instructions="x")
    assert "hello echo responses" in r.output_text
    assert r.status == "completed" and r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_responses_stream_helper(gateway):
    deltas = []
    with strict_openai(gateway).responses.stream(model=MODEL, input="echo responses stream") as s:
        for ev in s:
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text
    assert "echo responses stream" in final.output_text
    assert final.usage.total_tokens > 0


def test_anthropic_create(gateway):
    m = strict_anthropic(gateway).messages.create(model=MODEL, max_tokens=100,
                                                  messages=[{"role": "user", "content": "hello echo claude"}])
    assert "hello echo claude" in m.content[0].text
    assert m.stop_reason == "end_turn" and m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_anthropic_stream_helper(gateway):
    with strict_anthropic(gateway, "/claude").messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [{"type": "text", "text": "echo claude stream"}]}]) as s:
        texts = list(s.text_stream)
        final = s.get_final_message()
    assert "".join(texts) == final.content[0].text
    assert "echo claude stream" in final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_gemini_generate(gateway):
    g = gateway.genai()
    r = g.models.generate_content(model=MODEL, contents="hello echo gemini")
    assert "hello echo gemini" in r.text
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    um = r.usage_metadata
    assert um.prompt_token_count > 0 and um.candidates_token_count > 0
    assert um.total_token_count >= um.prompt_token_count + um.candidates_token_count


def test_gemini_stream(gateway):
    g = gateway.genai("")
    chunks = list(g.models.generate_content_stream(model=MODEL, contents="echo gemini stream"))
    assert "echo gemini stream" in "".join(c.text or "" for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count > 0


# --------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------
def test_reply_uses_last_user_text_and_is_deterministic(gateway):
    c = gateway.openai()
    msgs = [{"role": "user", "content": "FIRST-TURN"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "LAST-TURN"}]
    a = c.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content
    b = c.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content
    assert a == b and "LAST-TURN" in a and "FIRST-TURN" not in a
    m = gateway.anthropic().messages.create(model=MODEL, max_tokens=50, messages=[
        {"role": "user", "content": "FIRST-TURN"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "LAST-TURN"}])
    assert "LAST-TURN" in m.content[0].text and "FIRST-TURN" not in m.content[0].text
    g = gateway.genai()
    r = g.models.generate_content(model=MODEL, contents=[
        gtypes.Content(role="user", parts=[gtypes.Part(text="FIRST-TURN")]),
        gtypes.Content(role="model", parts=[gtypes.Part(text="ok")]),
        gtypes.Content(role="user", parts=[gtypes.Part(text="LAST-TURN")])])
    assert "LAST-TURN" in r.text and "FIRST-TURN" not in r.text


PATHS = [
    ("chat", "/v1/chat/completions"), ("chat", "/chat/completions"), ("chat", "/openai/v1/chat/completions"),
    ("responses", "/openai/v1/responses"), ("responses", "/v1/responses"), ("responses", "/responses"),
    ("anthropic", "/claude/v1/messages"), ("anthropic", "/v1/messages"), ("anthropic", "/v1/messages?beta=true"),
]
ALIASES = [(p, path, stream) for p, path in PATHS for stream in (False, True)] + [
    ("gemini", "/gemini/v1beta/models/{m}:generateContent", False), ("gemini", "/v1beta/models/{m}:generateContent", False),
    ("gemini", "/gemini/v1beta/models/{m}:streamGenerateContent?alt=sse", True),
    ("gemini", "/v1beta/models/{m}:streamGenerateContent?alt=sse", True),
]


@pytest.mark.parametrize("protocol,path,stream", ALIASES,
                         ids=[f"{path}-{'sse' if stream else 'json'}" for _, path, stream in ALIASES])
def test_endpoint_aliases(gateway, protocol, path, stream):
    path = path.format(m=MODEL)
    r = gateway.post(path, headers=HEADERS[protocol], json=request_body(protocol, MODEL, f"alias {path}", stream))
    assert_reply_ok(r, protocol, f"alias {path}", stream)
    assert r.headers.get("x-request-id")
    if stream:
        assert r.headers.get("cache-control") == "no-cache"
        assert r.headers.get("content-encoding") == "identity"


# --------------------------------------------------------------------------------------
# Raw SSE grammar of the gateway's own encoders, validated against the SDK types
# --------------------------------------------------------------------------------------
def test_raw_chat_stream_grammar(gateway):
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", MODEL, "grammar", stream=True))
    assert r.text.endswith("data: [DONE]\n\n") and "event:" not in r.text
    events = sse_json(r.text)
    for _, d in events[:-1]:
        ChatCompletionChunk.model_validate(d)
    assert events[0][1]["choices"][0]["delta"].get("role") == "assistant"
    ids = {d["id"] for _, d in events[:-1]}
    assert len(ids) == 1, "all chunks of one completion share an id"


def test_raw_responses_stream_grammar(gateway):
    r = gateway.post("/v1/responses", headers=AUTH, json=request_body("responses", MODEL, "grammar", stream=True))
    events = parse_sse(r.text)
    seqs, types_ = [], []
    for ev, data in events:
        d = json.loads(data)
        assert ev == d["type"], f"event line {ev!r} != type {d['type']!r}"
        validate_event(ResponseStreamEvent, d)
        seqs.append(d["sequence_number"])
        types_.append(d["type"])
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert types_[0] == "response.created" and types_[-1] == "response.completed"
    for t in ("response.output_item.added", "response.content_part.added", "response.output_text.delta",
              "response.output_text.done", "response.content_part.done", "response.output_item.done"):
        assert t in types_, f"{t} missing"


def test_raw_anthropic_stream_grammar(gateway):
    r = gateway.post("/v1/messages", headers=ANT_AUTH, json=request_body("anthropic", MODEL, "grammar", stream=True))
    names = []
    for ev, data in parse_sse(r.text):
        d = json.loads(data)
        assert ev == d["type"]
        names.append(ev)
        if ev not in ("ping",):
            validate_event(RawMessageStreamEvent, d)
    core = [n for n in names if n != "ping"]
    assert core[0] == "message_start" and core[-2:] == ["message_delta", "message_stop"]
    assert core[1] == "content_block_start" and "content_block_stop" in core


def test_raw_gemini_stream_grammar(gateway):
    r = gateway.post(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", headers=GEM_AUTH,
                     json=request_body("gemini", None, "grammar"))
    assert "event:" not in r.text
    chunks = [json.loads(d) for _, d in parse_sse(r.text)]
    assert chunks
    for c in chunks:
        gtypes.GenerateContentResponse.model_validate(c)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0


def test_sdk_errors_in_echo_are_protocol_shaped(gateway):
    # invalid request to echo: each SDK raises its BadRequest class
    with pytest.raises(openai.BadRequestError):
        gateway.openai().chat.completions.create(model=MODEL, messages="not a list")
    with pytest.raises(anthropic.BadRequestError):
        gateway.anthropic().messages.create(model=MODEL, max_tokens=5, messages="not a list")
