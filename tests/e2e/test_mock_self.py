"""Self-tests of mock_upstream.py: the official SDKs, pointed directly at the mock, must accept
its replies (with strict response validation where the SDK has it) and raise their usual
exception classes for the invalid requests the mock rejects."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import anthropic
import httpx
import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from e2e_util import parse_sse, sse_json, stream_text, validate_event

OAI_KEY = "sk-upstream-test"
ANT_KEY = "sk-ant-upstream-test"
GEM_KEY = "AIza-upstream-test"


# --------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------
@pytest.fixture
def oai(mock):
    with openai.OpenAI(api_key=OAI_KEY, base_url=mock.base + "/v1", max_retries=0, timeout=10,
                       _strict_response_validation=True) as c:
        yield c


@pytest.fixture
def ant(mock):
    with anthropic.Anthropic(api_key=ANT_KEY, base_url=mock.base, max_retries=0, timeout=10,
                             _strict_response_validation=True) as c:
        yield c


def make_gem(mock, key=GEM_KEY, api_version="v1beta", extra_body=None):
    return genai.Client(api_key=key, http_options=gtypes.HttpOptions(
        base_url=mock.base, api_version=api_version, timeout=10_000, extra_body=extra_body,
        retry_options=gtypes.HttpRetryOptions(attempts=1)))


@pytest.fixture
def gem(mock):
    return make_gem(mock)


@pytest.fixture
def http(mock):
    with httpx.Client(base_url=mock.base, timeout=10) as c:
        yield c


OAI_H = {"authorization": f"Bearer {OAI_KEY}"}
ANT_H = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"}
GEM_H = {"x-goog-api-key": GEM_KEY}


# --------------------------------------------------------------------------------------
# Happy paths through the official SDKs
# --------------------------------------------------------------------------------------
def test_openai_chat_create(oai, mock):
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello chat"}])
    assert r.choices[0].message.content == "mock(chat) reply to: hello chat"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == "gpt-4o-mini"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    rec = mock.last("/v1/chat/completions")
    assert rec["headers"]["authorization"] == f"Bearer {OAI_KEY}"
    assert rec["body"]["messages"][1]["content"] == "hello chat"


def test_openai_chat_stream(oai):
    chunks = list(oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream me"}],
        stream=True, stream_options={"include_usage": True}))
    assert len(chunks) >= 5
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock(chat) reply to: stream me"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_stream_without_usage_has_no_usage(http):
    r = http.post("/v1/chat/completions", headers=OAI_H, json={
        "model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    events = sse_json(r.text)
    assert events[-1][1] == "[DONE]"
    assert all("usage" not in d for _, d in events[:-1])
    for _, d in events[:-1]:
        ChatCompletionChunk.model_validate(d)


def test_openai_chat_stream_raw_events_validate(http):
    r = http.post("/v1/chat/completions", headers=OAI_H, json={
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "work"}]}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    raw = r.text
    assert raw.endswith("data: [DONE]\n\n")
    assert "event:" not in raw
    events = sse_json(raw)
    for _, d in events[:-1]:
        ChatCompletionChunk.model_validate(d)
    assert stream_text("chat", raw) == "mock(chat) reply to: parts work"


def test_openai_responses_create(oai):
    r = oai.responses.create(model="gpt-5", input="hello responses", instructions="be kind")
    assert r.output_text == "mock(responses) reply to: hello responses"
    assert r.status == "completed" and r.object == "response"
    assert r.instructions == "be kind"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_openai_responses_create_item_list(oai):
    r = oai.responses.create(model="gpt-5", input=[
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]},
    ])
    assert r.output_text == "mock(responses) reply to: second"


def test_openai_responses_stream_helper(oai):
    deltas = []
    with oai.responses.stream(model="gpt-5", input="stream responses") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert len(deltas) >= 3
    assert "".join(deltas) == final.output_text == "mock(responses) reply to: stream responses"
    assert final.usage.total_tokens > 0


def test_openai_responses_raw_events_validate(http):
    r = http.post("/v1/responses", headers=OAI_H, json={"model": "gpt-5", "input": "raw", "stream": True})
    events = parse_sse(r.text)
    types_ = []
    for i, (ev, data) in enumerate(events):
        d = json.loads(data)
        assert ev == d["type"]
        assert d["sequence_number"] == i
        validate_event(ResponseStreamEvent, d)
        types_.append(d["type"])
    assert types_[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types_[-1] == "response.completed"
    assert "[DONE]" not in r.text


def test_openai_responses_input_tokens(oai):
    r = oai.responses.input_tokens.count(model="gpt-5", input="count these tokens please")
    assert r.object == "response.input_tokens" and r.input_tokens > 0


def test_anthropic_create(ant, mock):
    m = ant.messages.create(model="claude-sonnet-4-5", max_tokens=50, system="sys",
                            messages=[{"role": "user", "content": "hello claude"}])
    assert m.content[0].text == "mock(anthropic) reply to: hello claude"
    assert m.stop_reason == "end_turn" and m.role == "assistant" and m.type == "message"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    rec = mock.last("/v1/messages")
    assert rec["headers"]["anthropic-version"]
    assert ANT_KEY in (rec["headers"].get("x-api-key", "") + rec["headers"].get("authorization", ""))


def test_anthropic_stream_helper(ant):
    texts = []
    with ant.messages.stream(model="claude-sonnet-4-5", max_tokens=50,
                             messages=[{"role": "user", "content": [{"type": "text", "text": "stream claude"}]}]) as s:
        for t in s.text_stream:
            texts.append(t)
        final = s.get_final_message()
    assert len(texts) >= 3
    assert "".join(texts) == final.content[0].text == "mock(anthropic) reply to: stream claude"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_anthropic_raw_events_validate(http):
    r = http.post("/v1/messages", headers=ANT_H, json={
        "model": "claude-sonnet-4-5", "max_tokens": 20, "stream": True,
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]})
    events = parse_sse(r.text)
    names = []
    for ev, data in events:
        d = json.loads(data)
        assert ev == d["type"]
        names.append(ev)
        if ev != "ping":
            validate_event(RawMessageStreamEvent, d)
    assert names[0] == "message_start" and names[-1] == "message_stop" and "ping" in names
    assert names[-2] == "message_delta"
    assert stream_text("anthropic", r.text) == "mock(anthropic) reply to: c"


def test_anthropic_count_tokens(ant):
    r = ant.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "count me"}])
    assert r.input_tokens > 0


def test_anthropic_beta_fields_accepted_with_beta(ant, mock):
    m = ant.beta.messages.create(model="claude-sonnet-4-5", max_tokens=20, betas=["context-management-2025-06-27"],
                                 context_management={"edits": []}, messages=[{"role": "user", "content": "beta"}])
    assert m.content[0].text == "mock(anthropic) reply to: beta"
    rec = mock.last("/v1/messages")
    assert rec["query"] in ("", "beta=true")  # anthropic 2.12 no longer appends ?beta=true
    assert rec["headers"]["anthropic-beta"] == "context-management-2025-06-27"


def test_gemini_generate_content(gem, mock):
    r = gem.models.generate_content(model="gemini-2.5-flash", contents="hello gemini",
                                    config=gtypes.GenerateContentConfig(system_instruction="sys", temperature=0.5,
                                                                        max_output_tokens=100))
    assert r.text == "mock(gemini) reply to: hello gemini"
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert r.usage_metadata.prompt_token_count > 0 and r.usage_metadata.candidates_token_count > 0
    rec = mock.last(":generateContent")
    assert rec["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert rec["headers"]["x-goog-api-key"] == GEM_KEY


def test_gemini_default_api_version_v1_also_served(mock):
    # google-genai 3.x defaults to /v1/; the mock serves both versions.
    g = make_gem(mock, api_version=None)  # keep a reference: a collected Client closes its HTTP client
    r = g.models.generate_content(model="gemini-2.5-flash", contents="v1 path")
    assert r.text == "mock(gemini) reply to: v1 path"


def test_gemini_generate_content_stream(gem):
    chunks = list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="stream gemini"))
    assert len(chunks) >= 3
    assert "".join(c.text or "" for c in chunks) == "mock(gemini) reply to: stream gemini"
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count > 0


def test_gemini_raw_sse_and_json_array(http):
    body = {"contents": [{"role": "user", "parts": [{"text": "raw gem"}]}]}
    r = http.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", headers=GEM_H, json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "\r\n\r\n" in r.text and "event:" not in r.text
    chunks = [json.loads(d) for _, d in parse_sse(r.text)]
    for c in chunks:
        gtypes.GenerateContentResponse.model_validate(c)  # extra='forbid': unknown fields fail
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "finishReason" not in chunks[0]["candidates"][0]
    # without alt=sse: one JSON array
    r2 = http.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", headers=GEM_H, json=body)
    assert r2.headers["content-type"].startswith("application/json")
    arr = r2.json()
    assert isinstance(arr, list) and len(arr) == len(chunks)
    assert stream_text("gemini", r.text) == "mock(gemini) reply to: raw gem"


def test_gemini_non_stream_validates_strictly(http):
    r = http.post("/v1beta/models/gemini-2.5-flash:generateContent", headers=GEM_H,
                  json={"contents": [{"parts": [{"text": "strict"}]}]})
    gtypes.GenerateContentResponse.model_validate(r.json())


def test_gemini_count_tokens(gem):
    r = gem.models.count_tokens(model="gemini-2.5-flash", contents="count gemini tokens")
    assert r.total_tokens > 0


def test_gemini_count_tokens_generate_content_request(http):
    r = http.post("/v1beta/models/gemini-2.5-flash:countTokens", headers=GEM_H, json={
        "generateContentRequest": {"model": "models/gemini-2.5-flash", "contents": [{"parts": [{"text": "x"}]}],
                                   "systemInstruction": {"parts": [{"text": "y"}]}}})
    assert r.status_code == 200 and r.json()["totalTokens"] > 0


def test_gemini_key_in_query(http):
    r = http.post(f"/v1beta/models/gemini-2.5-flash:generateContent?key={GEM_KEY}",
                  json={"contents": [{"parts": [{"text": "q"}]}]})
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------
def test_response_headers_are_real_shaped(http):
    r = http.post("/v1/chat/completions", headers=OAI_H, json={"model": "m", "messages": [{"role": "user", "content": "h"}]})
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"].startswith("req_")
    for h in ("limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens", "reset-requests", "reset-tokens"):
        assert f"x-ratelimit-{h}" in r.headers
    r = http.post("/v1/messages", headers=ANT_H, json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "h"}]})
    assert r.headers["request-id"].startswith("req_")
    for fam in ("requests", "tokens", "input-tokens", "output-tokens"):
        for kind in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{fam}-{kind}" in r.headers
    r = http.post("/v1/messages", headers=ANT_H, json={"model": "m", "max_tokens": 5, "stream": True,
                                                       "messages": [{"role": "user", "content": "h"}]})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("transfer-encoding") == "chunked"


# --------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------
def test_openai_auth_errors(mock):
    c = openai.OpenAI(api_key="sk-wrong", base_url=mock.base + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert ei.value.status_code == 401 and ei.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        c.responses.create(model="gpt-5", input="x")
    r = httpx.post(mock.base + "/v1/chat/completions", json={"model": "m", "messages": []})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_auth_errors(mock, http):
    c = anthropic.Anthropic(api_key="sk-ant-wrong", base_url=mock.base, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["error"]["type"] == "authentication_error"
    r = http.post("/v1/messages", headers={"anthropic-version": "2023-06-01"},
                  json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    # x-api-key accepted, but anthropic-version is required
    r = http.post("/v1/messages", headers={"x-api-key": ANT_KEY},
                  json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
    r = http.post("/v1/messages", headers={"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"},
                  json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200


def test_gemini_auth_errors(mock, http):
    g = make_gem(mock, key="AIza-wrong")
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"
    assert "API key not valid" in ei.value.message
    r = http.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("where", ["header", "query", "body"])
def test_leaked_client_key_is_flagged(http, mock, where):
    headers = dict(OAI_H)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    path = "/v1/chat/completions"
    if where == "header":
        headers["x-forwarded-key"] = "gw-test-key-1"
    elif where == "query":
        path += "?k=gw-test-key-2"
    else:
        body["messages"][0]["content"] = "my key is gw-test-key-1"
    r = http.post(path, headers=headers, json=body)
    assert r.status_code == 400 and "LEAKED_CLIENT_KEY" in r.text
    assert mock.last(path.split("?")[0])["leaked"]
    r = http.post("/v1beta/models/x:generateContent?key=gw-test-key-1", json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 400 and "LEAKED_CLIENT_KEY" in r.text
    r = http.post("/v1/messages", headers={"authorization": "Bearer gw-test-key-1", "anthropic-version": "2023-06-01"}, json={})
    assert r.status_code == 400 and "LEAKED_CLIENT_KEY" in r.text


# --------------------------------------------------------------------------------------
# Validation: each invalid request raises the SDK's BadRequest class
# --------------------------------------------------------------------------------------
def _oai_post(oai, path, body):
    return oai.post(path, body=body, cast_to=object)


CHAT_INVALID = [
    ("missing model", {"messages": [{"role": "user", "content": "x"}]}, "you must provide a model parameter"),
    ("model not string", {"model": 5, "messages": [{"role": "user", "content": "x"}]}, "Invalid type for 'model'"),
    ("missing messages", {"model": "m"}, "Missing required parameter: 'messages'"),
    ("messages not list", {"model": "m", "messages": "hi"}, "Invalid type for 'messages'"),
    ("empty messages", {"model": "m", "messages": []}, "empty array"),
    ("bad role", {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "Invalid value: 'robot'"),
    ("content int", {"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ("bad part type", {"model": "m", "messages": [{"role": "user", "content": [{"type": "picture"}]}]}, "Invalid value: 'picture'"),
    ("tool without tool_calls", {"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "r"}]}, "role 'tool'"),
    ("temperature > 2", {"model": "m", "temperature": 3, "messages": [{"role": "user", "content": "x"}]}, "temperature"),
    ("stream_options without stream", {"model": "m", "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": "x"}]}, "stream_options"),
    ("unknown field", {"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": {}}, "Unrecognized request argument supplied: thinking"),
    ("audio format", {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}}]}]}, "Invalid value: 'ogg'"),
    ("user too long", {"model": "m", "user": "u" * 65, "messages": [{"role": "user", "content": "x"}]}, "Invalid 'user': string too long"),
]


@pytest.mark.parametrize("name,body,msg", CHAT_INVALID, ids=[c[0] for c in CHAT_INVALID])
def test_openai_chat_invalid(oai, name, body, msg):
    with pytest.raises(openai.BadRequestError) as ei:
        _oai_post(oai, "/chat/completions", body)
    assert msg in ei.value.message
    assert ei.value.body["type"] == "invalid_request_error" and "param" in ei.value.body


def test_openai_chat_unknown_field_via_sdk_extra_body(oai):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], extra_body={"top_k": 3})
    assert "Unrecognized request argument supplied: top_k" in ei.value.message


def test_openai_chat_tool_roundtrip_is_valid(oai):
    r = oai.chat.completions.create(model="m", messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                               "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "thanks"}],
        # tool_choice none: with tools declared the mock otherwise answers with a tool call
        tools=[{"type": "function", "function": {"name": "w", "parameters": {"type": "object", "properties": {}}}}],
        tool_choice="none")
    assert r.choices[0].message.content.endswith("thanks")


RESP_INVALID = [
    ("missing model", {"input": "x"}, "Missing required parameter: 'model'"),
    ("model not string", {"model": [], "input": "x"}, "Invalid type for 'model'"),
    ("missing input", {"model": "m"}, "Missing required parameter: 'input'"),
    ("input int", {"model": "m", "input": 42}, "Invalid type for 'input'"),
    ("bad role", {"model": "m", "input": [{"role": "tool", "content": "x"}]}, "Invalid value: 'tool'"),
    ("bad item type", {"model": "m", "input": [{"type": "banana"}]}, "Invalid value: 'banana'"),
    ("assistant input_text", {"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]}, "'output_text' and 'refusal'"),
    ("max_output_tokens < 16", {"model": "m", "input": "x", "max_output_tokens": 5}, "max_output_tokens"),
    ("unknown field", {"model": "m", "input": "x", "stop": ["a"]}, "Unknown parameter: 'stop'"),
    ("safety_identifier too long", {"model": "m", "input": "x", "safety_identifier": "s" * 65}, "maximum length 64"),
]


@pytest.mark.parametrize("name,body,msg", RESP_INVALID, ids=[c[0] for c in RESP_INVALID])
def test_openai_responses_invalid(oai, name, body, msg):
    with pytest.raises(openai.BadRequestError) as ei:
        _oai_post(oai, "/responses", body)
    assert msg in ei.value.message


def test_openai_invalid_json(http):
    for path in ("/v1/chat/completions", "/v1/responses"):
        r = http.post(path, headers={**OAI_H, "content-type": "application/json"}, content=b'{"model": ')
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and "parse the JSON body" in err["message"]
        assert err["param"] is None and err["code"] is None


ANT_BASE = {"model": "m", "max_tokens": 10}
ANT_INVALID = [
    ("missing model", {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}, "model: Field required"),
    ("missing max_tokens", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens: Field required"),
    ("max_tokens zero", {**ANT_BASE, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}, "greater than or equal to 1"),
    ("max_tokens string", {**ANT_BASE, "max_tokens": "10", "messages": [{"role": "user", "content": "x"}]}, "valid integer"),
    ("missing messages", dict(ANT_BASE), "messages: Field required"),
    ("empty messages", {**ANT_BASE, "messages": []}, "at least one message"),
    ("system role", {**ANT_BASE, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]}, "Input should be 'user' or 'assistant'"),
    ("first assistant", {**ANT_BASE, "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "x"}]}, "first message must use the \"user\" role"),
    ("not alternating", {**ANT_BASE, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "must alternate"),
    ("temperature > 1", {**ANT_BASE, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]}, "less than or equal to 1"),
    ("empty text block", {**ANT_BASE, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "non-empty"),
    ("unknown field", {**ANT_BASE, "messages": [{"role": "user", "content": "x"}], "n": 2}, "n: Extra inputs are not permitted"),
    ("user_id too long", {**ANT_BASE, "metadata": {"user_id": "u" * 257}, "messages": [{"role": "user", "content": "x"}]}, "at most 256 characters"),
]


@pytest.mark.parametrize("name,body,msg", ANT_INVALID, ids=[c[0] for c in ANT_INVALID])
def test_anthropic_invalid(ant, name, body, msg):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.post("/v1/messages", body=body, cast_to=object)
    assert ei.value.body["error"]["type"] == "invalid_request_error"
    assert msg in ei.value.body["error"]["message"]


def test_anthropic_unknown_field_via_sdk_extra_body(ant):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                            extra_body={"reasoning_effort": "high"})
    assert "reasoning_effort: Extra inputs are not permitted" in ei.value.body["error"]["message"]


def test_anthropic_count_tokens_rejects_max_tokens(ant):
    with pytest.raises(anthropic.BadRequestError):
        ant.post("/v1/messages/count_tokens", body={**ANT_BASE, "messages": [{"role": "user", "content": "x"}]}, cast_to=object)


def test_anthropic_invalid_json(http):
    r = http.post("/v1/messages", headers={**ANT_H, "content-type": "application/json"}, content=b"{nope")
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


GEM_INVALID = [
    ("missing contents", {}, "contents is not specified"),
    ("empty contents", {"contents": []}, "contents is not specified"),
    ("bad role", {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
    ("empty parts", {"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
    ("part without data", {"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'"),
    ("unknown top-level", {"contents": [{"parts": [{"text": "x"}]}], "temperature": 1}, 'Unknown name "temperature": Cannot find field.'),
    ("unknown in generationConfig", {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 3}}, 'Unknown name "max_tokens" at \'generation_config\''),
    ("string systemInstruction", {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": "be nice"}, "system_instruction"),
    ("inlineData without mimeType", {"contents": [{"parts": [{"inlineData": {"data": "AAAA"}}]}]}, "Mime type cannot be empty"),
    ("inlineData not base64", {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "not base64!"}}]}]}, "Base64 decoding failed"),
]


@pytest.mark.parametrize("name,body,msg", GEM_INVALID, ids=[c[0] for c in GEM_INVALID])
def test_gemini_invalid_raw(http, name, body, msg):
    r = http.post("/v1beta/models/gemini-2.5-flash:generateContent", headers=GEM_H, json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT"
    assert msg in err["message"]


def test_gemini_invalid_via_sdk(mock):
    g, g2 = make_gem(mock), make_gem(mock, extra_body={"max_tokens": 5})
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(
            model="gemini-2.5-flash", contents=[gtypes.Content(role="assistant", parts=[gtypes.Part(text="x")])])
    assert ei.value.code == 400 and "valid role" in ei.value.message
    with pytest.raises(gerrors.ClientError) as ei:
        g2.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert ei.value.code == 400 and 'Unknown name "max_tokens"' in ei.value.message


def test_gemini_invalid_json(http):
    r = http.post("/v1beta/models/gemini-2.5-flash:generateContent", headers={**GEM_H, "content-type": "application/json"},
                  content=b"{{{")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "Invalid JSON payload received" in r.json()["error"]["message"]


def test_unknown_path_and_method(http):
    r = http.post("/v1/nope", headers=OAI_H, json={})
    assert r.status_code == 404 and "error" in r.json()
    r = http.get("/v1/chat/completions", headers=OAI_H)
    assert r.status_code == 405


# --------------------------------------------------------------------------------------
# Misbehaviour on command
# --------------------------------------------------------------------------------------
def test_error_models_openai(oai):
    with pytest.raises(openai.RateLimitError) as ei:
        oai.chat.completions.create(model="mock-error-429", messages=[{"role": "user", "content": "x"}])
    assert ei.value.response.headers["retry-after"] == "7"
    assert ei.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as ei:
        oai.responses.create(model="mock-error-500", input="x")
    assert ei.value.status_code == 500 and ei.value.type == "server_error"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="mock-error-404", messages=[{"role": "user", "content": "x"}])


def test_error_models_anthropic(ant):
    with pytest.raises(anthropic.OverloadedError) as ei:
        ant.messages.create(model="mock-error-529", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as ei:
        ant.messages.create(model="mock-error-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ei.value.response.headers["retry-after"] == "7"
    assert ei.value.body["error"]["type"] == "rate_limit_error"


def test_error_models_gemini(mock):
    g = make_gem(mock)
    with pytest.raises(gerrors.ServerError) as ei:
        g.models.generate_content(model="mock-error-503", contents="x")
    assert ei.value.code == 503 and ei.value.status == "UNAVAILABLE"
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(model="mock-error-429", contents="x")
    assert ei.value.code == 429 and ei.value.status == "RESOURCE_EXHAUSTED"


def test_mock_hang_sends_nothing(http):
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", headers=OAI_H, timeout=1.0,
                  json={"model": "mock-hang", "messages": [{"role": "user", "content": "x"}]})
    assert time.monotonic() - t0 < 3


def test_mock_slow(http):
    t0 = time.monotonic()
    r = http.post("/v1/messages", headers=ANT_H, json={
        "model": "mock-slow-400", "max_tokens": 5, "messages": [{"role": "user", "content": "slow"}]})
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.4


def test_mock_hang_mid_stream(mock):
    with httpx.Client(base_url=mock.base, timeout=httpx.Timeout(5, read=1.5)) as c:
        with c.stream("POST", "/v1/chat/completions", headers=OAI_H, json={
                "model": "mock-hang-mid", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status_code == 200
            it = r.iter_raw()
            first = next(it)
            assert first.startswith(b"data: ")
            with pytest.raises(httpx.ReadTimeout):
                for _ in it:
                    pass


@pytest.mark.parametrize("path,body,terminal", [
    ("/v1/chat/completions", {"model": "mock-truncate", "stream": True, "messages": [{"role": "user", "content": "x y z"}]}, "[DONE]"),
    ("/v1/responses", {"model": "mock-truncate", "stream": True, "input": "x y z"}, "response.completed"),
    ("/v1/messages", {"model": "mock-truncate", "stream": True, "max_tokens": 5, "messages": [{"role": "user", "content": "x y z"}]}, "message_stop"),
    ("/v1beta/models/mock-truncate:streamGenerateContent?alt=sse", {"contents": [{"parts": [{"text": "x y z"}]}]}, "finishReason"),
])
def test_mock_truncate(http, path, body, terminal):
    headers = {**OAI_H, **ANT_H, **GEM_H}
    del headers["x-api-key"]
    headers["authorization"] = f"Bearer {OAI_KEY}" if path.startswith(("/v1/chat", "/v1/resp")) else f"Bearer {ANT_KEY}"
    r = http.post(path, headers=headers, json=body)
    assert r.status_code == 200, r.text
    assert r.text and terminal not in r.text


def test_mock_truncate_non_stream(http):
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", headers=OAI_H, json={"model": "mock-truncate", "messages": [{"role": "user", "content": "x"}]})


def test_mock_garbage(http):
    r = http.post("/v1/chat/completions", headers=OAI_H, json={"model": "mock-garbage", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


def test_mock_reset(http):
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        http.post("/v1/chat/completions", headers=OAI_H, json={"model": "mock-reset", "messages": [{"role": "user", "content": "x"}]})
    # server is still fine afterwards
    r = http.post("/v1/chat/completions", headers=OAI_H, json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200


# --------------------------------------------------------------------------------------
# Inspection, concurrency, HTTP details
# --------------------------------------------------------------------------------------
def test_inspection_endpoint(http, mock):
    http.post("/v1/messages?beta=true", headers={**ANT_H, "X-Custom-Header": "Yes"},
              json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "inspect"}]})
    http.post("/v1/chat/completions", headers=OAI_H, content=b"not json")
    recs = mock.requests()
    assert len(recs) == 2
    a, b = recs
    assert a["method"] == "POST" and a["path"] == "/v1/messages" and a["query"] == "beta=true"
    assert a["headers"]["x-custom-header"] == "Yes"
    assert all(k == k.lower() for k in a["headers"])
    assert a["body"]["messages"][0]["content"] == "inspect"
    assert a["status"] == 200
    assert b["body"] == "not json" and b["status"] == 400
    mock.clear()
    assert mock.requests() == []


def test_concurrent_connections(mock):
    def one(i):
        with httpx.Client(base_url=mock.base, timeout=10) as c:
            return c.post("/v1/chat/completions", headers=OAI_H, json={
                "model": "mock-slow-600", "messages": [{"role": "user", "content": f"n{i}"}]}).json()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(8)))
    assert time.monotonic() - t0 < 3.0
    assert sorted(r["choices"][0]["message"]["content"] for r in results) == sorted(f"mock(chat) reply to: n{i}" for i in range(8))


def test_keep_alive_and_chunked_request_body(mock):
    sock = socket.create_connection(("127.0.0.1", mock.port), timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunky"}]}).encode()
    half = len(body) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + OAI_KEY.encode() +
           b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    f = sock.makefile("rb")
    for _ in range(2):  # two requests on one connection
        sock.sendall(req)
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = None
        while True:
            line = f.readline()
            if line == b"\r\n":
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
        assert json.loads(f.read(length))["choices"][0]["message"]["content"] == "mock(chat) reply to: chunky"
    sock.close()


def test_sse_events_are_flushed_incrementally(mock):
    """The first event must arrive before the stream ends (no buffering in the mock)."""
    with httpx.Client(base_url=mock.base, timeout=httpx.Timeout(5, read=1.5)) as c:
        with c.stream("POST", "/v1/messages", headers=ANT_H, json={
                "model": "mock-hang-mid", "max_tokens": 5, "stream": True,
                "messages": [{"role": "user", "content": "x"}]}) as r:
            first = next(r.iter_raw())
            assert b"message_start" in first
