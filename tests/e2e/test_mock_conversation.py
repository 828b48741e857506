"""Self-tests of the mock's content-driven behaviour (tools, tool results, reasoning) and of its
strict replay validation, with the official SDKs pointed directly at the mock. No gateway."""

from __future__ import annotations

import base64
import hashlib
import json

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

from e2e_util import parse_sse, validate_event

OAI_KEY = "sk-upstream-test"
ANT_KEY = "sk-ant-upstream-test"
GEM_KEY = "AIza-upstream-test"
OAI_H = {"authorization": f"Bearer {OAI_KEY}"}
ANT_H = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"}
GEM_H = {"x-goog-api-key": GEM_KEY}

# one JSON Schema, declared in each API's own tool format
WEATHER_SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string", "description": "city name"},
    "days": {"type": "integer"},
    "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city", "days"]}
WEATHER_ARGS = {"city": "city-value", "days": 1}
TIME_SCHEMA = {"type": "object", "properties": {"tz": {"type": "string"}, "utc": {"type": "boolean"}}}
TIME_ARGS = {"tz": "tz-value", "utc": True}

CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}},
              {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}}]
RESP_TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA},
              {"type": "function", "name": "get_time", "parameters": TIME_SCHEMA}]
ANT_TOOLS = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}, {"name": "get_time", "input_schema": TIME_SCHEMA}]
GEM_TOOLS = [gtypes.Tool(function_declarations=[
    gtypes.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER_SCHEMA),
    gtypes.FunctionDeclaration(name="get_time", parameters_json_schema=TIME_SCHEMA)])]


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


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


@pytest.fixture
def gem(mock):
    return genai.Client(api_key=GEM_KEY, http_options=gtypes.HttpOptions(
        base_url=mock.base, api_version="v1beta", timeout=10_000, retry_options=gtypes.HttpRetryOptions(attempts=1)))


@pytest.fixture
def http(mock):
    with httpx.Client(base_url=mock.base, timeout=10) as c:
        yield c


# ======================================================================================
# OpenAI Chat
# ======================================================================================
def test_chat_tool_call(oai):
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=CHAT_TOOLS)
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls" and ch.message.content is None
    (tc,) = ch.message.tool_calls
    assert tc.function.name == "get_weather" and json.loads(tc.function.arguments) == WEATHER_ARGS
    assert r.usage.completion_tokens > 0


def test_chat_parallel_and_named_and_none(oai):
    r = oai.chat.completions.create(model="mock-parallel", messages=[{"role": "user", "content": "both"}], tools=CHAT_TOOLS)
    assert [(t.function.name, json.loads(t.function.arguments)) for t in r.choices[0].message.tool_calls] == [
        ("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
    r = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}], tools=CHAT_TOOLS,
                                    tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert r.choices[0].message.tool_calls[0].function.name == "get_time"
    r = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}], tools=CHAT_TOOLS, tool_choice="none")
    assert r.choices[0].message.content == "mock(chat) reply to: t" and r.choices[0].finish_reason == "stop"


def test_chat_streamed_tool_call_grammar(oai, http):
    r = http.post("/v1/chat/completions", headers=OAI_H, json={
        "model": "mock-parallel", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "x"}], "tools": CHAT_TOOLS})
    chunks = [json.loads(d) for _, d in parse_sse(r.text) if d != "[DONE]"]
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    deltas = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or []]
    for index in (0, 1):
        mine = [d for d in deltas if d["index"] == index]
        assert "id" in mine[0] and mine[0]["function"]["name"] and mine[0]["function"]["arguments"] == ""
        assert len([d for d in mine[1:] if d["function"]["arguments"]]) >= 2
        assert all("id" not in d for d in mine[1:])
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"]][-1] == "tool_calls"
    # and the SDK's stream helper assembles it
    with oai.chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}], tools=CHAT_TOOLS) as s:
        final = s.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == WEATHER_ARGS


def test_chat_tool_round_trip(oai):
    msgs = [{"role": "user", "content": "weather?"}]
    r = oai.chat.completions.create(model="mock-parallel", messages=msgs, tools=CHAT_TOOLS)
    msgs.append(r.choices[0].message)
    for tc, out in zip(r.choices[0].message.tool_calls, ("sunny", "noon")):
        msgs.append({"role": "tool", "tool_call_id": tc.id, "content": out})
    r2 = oai.chat.completions.create(model="m", messages=msgs, tools=CHAT_TOOLS)
    assert r2.choices[0].message.content == "result: sunny | noon"


def test_chat_reasoning(oai, http):
    r = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "think"}], reasoning_effort="high")
    assert r.choices[0].message.model_extra["reasoning_content"].startswith("mock reasoning about think")
    assert r.usage.completion_tokens_details.reasoning_tokens > 0
    assert r.usage.completion_tokens > r.usage.completion_tokens_details.reasoning_tokens
    raw = http.post("/v1/chat/completions", headers=OAI_H, json={
        "model": "m", "stream": True, "reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]}).text
    pieces = [c["choices"][0]["delta"].get("reasoning_content") for c in (json.loads(d) for _, d in parse_sse(raw) if d != "[DONE]") if c["choices"]]
    assert len([p for p in pieces if p]) >= 2


CHAT_REPLAY_INVALID = [
    ("unanswered call", [{"role": "user", "content": "q"},
                         {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                                                              {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "r"},
                         {"role": "user", "content": "next"}],
     "The following tool_call_ids did not have response messages: call_2"),
    ("tool for unknown id", [{"role": "user", "content": "q"},
                             {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                             {"role": "tool", "tool_call_id": "call_9", "content": "r"}],
     "must be a response to a preceeding message with 'tool_calls'"),
    ("id too long", [{"role": "user", "content": "q"},
                     {"role": "assistant", "tool_calls": [{"id": "call_" + "x" * 40, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "call_" + "x" * 40, "content": "r"}],
     "Expected a string with maximum length 40"),
]


@pytest.mark.parametrize("name,messages,msg", CHAT_REPLAY_INVALID, ids=[c[0] for c in CHAT_REPLAY_INVALID])
def test_chat_replay_invalid(oai, name, messages, msg):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="m", messages=messages)
    assert msg in ei.value.message


def test_chat_bad_effort(oai):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], extra_body={"reasoning_effort": "galactic"})
    assert ei.value.body["param"] == "reasoning_effort"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], reasoning_effort="low", max_tokens=50)
    assert ei.value.code == "unsupported_parameter"
    r = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], reasoning_effort="low", max_completion_tokens=50)
    assert r.choices[0].message.content


# ======================================================================================
# OpenAI Responses
# ======================================================================================
def test_responses_tool_call_and_round_trip(oai):
    r = oai.responses.create(model="gpt-5", input="weather?", tools=RESP_TOOLS)
    (fc,) = r.output
    assert fc.type == "function_call" and fc.name == "get_weather" and json.loads(fc.arguments) == WEATHER_ARGS
    assert fc.call_id.startswith("call_") and fc.id.startswith("fc_")
    inp = [{"role": "user", "content": "weather?"}, *[o.model_dump(exclude_none=True) for o in r.output],
           {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"}]
    r2 = oai.responses.create(model="gpt-5", input=inp, tools=RESP_TOOLS)
    assert r2.output_text == "result: sunny"


def test_responses_stream_tool_grammar(oai, http):
    r = http.post("/v1/responses", headers=OAI_H, json={"model": "mock-parallel", "input": "x", "tools": RESP_TOOLS,
                                                        "stream": True, "reasoning": {"effort": "low", "summary": "auto"}})
    events = [json.loads(d) for _, d in parse_sse(r.text)]
    for i, e in enumerate(events):
        assert e["sequence_number"] == i
        validate_event(ResponseStreamEvent, e)
    types_ = [e["type"] for e in events]
    assert types_.count("response.function_call_arguments.delta") >= 4
    assert "response.reasoning_summary_text.delta" in types_
    final = events[-1]["response"]
    assert [o["type"] for o in final["output"]] == ["reasoning", "function_call", "function_call"]
    with oai.responses.stream(model="gpt-5", input="x", tools=RESP_TOOLS) as s:
        deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
        final = s.get_final_response()
    assert len(deltas) >= 2 and json.loads("".join(deltas)) == WEATHER_ARGS
    assert final.output[0].type == "function_call"


def test_responses_reasoning_items(oai):
    r = oai.responses.create(model="gpt-5", input="ponder", reasoning={"effort": "high", "summary": "auto"})
    rs, msg = r.output
    assert rs.type == "reasoning" and rs.summary[0].text.startswith("mock reasoning about ponder")
    assert rs.encrypted_content == "enc-" + sha(rs.summary[0].text)
    assert r.usage.output_tokens_details.reasoning_tokens > 0 and msg.type == "message"
    r = oai.responses.create(model="gpt-5", input="ponder", reasoning={"effort": "low"})
    assert r.output[0].type == "reasoning" and r.output[0].summary == [] and r.output[0].encrypted_content.startswith("enc-")


def test_responses_reasoning_tool_round_trip_and_tampering(oai):
    kw = dict(model="gpt-5", tools=RESP_TOOLS, reasoning={"effort": "high", "summary": "auto"}, include=["reasoning.encrypted_content"])
    r = oai.responses.create(input="weather?", **kw)
    rs, fc = r.output
    base = [{"role": "user", "content": "weather?"}]
    out = {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"}
    good = base + [rs.model_dump(exclude_none=True), fc.model_dump(exclude_none=True), out]
    r2 = oai.responses.create(input=good, **kw)
    assert r2.output_text == "result: sunny" and r2.output[0].type == "reasoning"
    bad = json.loads(json.dumps(good))
    bad[1]["encrypted_content"] = "enc-" + "0" * 64
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(input=bad, **kw)
    assert ei.value.code == "invalid_encrypted_content" and "could not be verified" in ei.value.message
    with pytest.raises(openai.BadRequestError) as ei:  # function_call without its reasoning item (P-R2)
        oai.responses.create(input=base + [fc.model_dump(exclude_none=True), out], **kw)
    assert f"without its required 'reasoning' item: '{rs.id}'" in ei.value.message
    with pytest.raises(openai.BadRequestError) as ei:  # reasoning item without the item it produced
        oai.responses.create(input=base + [rs.model_dump(exclude_none=True), {"role": "user", "content": "x"}], **kw)
    assert "without its required following item" in ei.value.message
    # the call without its id passes (the id is what ties it to the reasoning item)
    fc_noid = {k: v for k, v in fc.model_dump(exclude_none=True).items() if k != "id"}
    assert oai.responses.create(input=base + [fc_noid, out], **kw).output_text == "result: sunny"


def test_responses_replay_invalid(oai):
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="gpt-5", input=[{"role": "user", "content": "q"}, call])
    assert "No tool output found for function call call_1" in ei.value.message
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="gpt-5", input=[{"role": "user", "content": "q"},
                                                   {"type": "function_call_output", "call_id": "call_7", "output": "x"}])
    assert "No tool call found for function call output with call_id call_7" in ei.value.message
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="gpt-5", store=False, input=[{"role": "user", "content": "q"},
                                                                 {"type": "reasoning", "id": "rs_x", "summary": []}])
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="gpt-5", input="x", reasoning={"effort": "max"})
    assert ei.value.body["param"] == "reasoning.effort"


# ======================================================================================
# Anthropic
# ======================================================================================
def test_anthropic_tool_call_and_round_trip(ant):
    m = ant.messages.create(model="mock-parallel", max_tokens=100, tools=ANT_TOOLS,
                            messages=[{"role": "user", "content": "weather?"}])
    assert m.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in m.content] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
    msgs = [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": m.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.content[0].id, "content": "sunny"},
                                         {"type": "tool_result", "tool_use_id": m.content[1].id,
                                          "content": [{"type": "text", "text": "noon"}]}]}]
    m2 = ant.messages.create(model="m", max_tokens=100, tools=ANT_TOOLS, messages=msgs)
    assert m2.content[0].text == "result: sunny | noon" and m2.stop_reason == "end_turn"


def test_anthropic_stream_grammar_thinking_and_tools(ant, http):
    r = http.post("/v1/messages", headers=ANT_H, json={
        "model": "mock-parallel", "max_tokens": 2048, "stream": True, "tools": ANT_TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [{"role": "user", "content": "w"}]})
    events = [json.loads(d) for _, d in parse_sse(r.text)]
    for e in events:
        if e["type"] != "ping":
            validate_event(RawMessageStreamEvent, e)
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "tool_use", "tool_use"]
    d0 = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta" and e["index"] == 0]
    assert d0.count("thinking_delta") >= 2 and d0[-1] == "signature_delta"
    for idx in (1, 2):
        assert len([e for e in events if e["type"] == "content_block_delta" and e["index"] == idx]) >= 2
    with ant.messages.stream(model="m", max_tokens=2048, tools=ANT_TOOLS, thinking={"type": "enabled", "budget_tokens": 1024},
                             messages=[{"role": "user", "content": "w"}]) as s:
        final = s.get_final_message()
    th, tu = final.content
    assert th.signature == "sig-" + sha(th.thinking) and tu.input == WEATHER_ARGS
    assert final.usage.output_tokens_details.thinking_tokens > 0


def test_anthropic_thinking_round_trip_and_replay_rules(ant):
    kw = dict(model="m", max_tokens=2048, tools=ANT_TOOLS, thinking={"type": "enabled", "budget_tokens": 1024})
    m = ant.messages.create(messages=[{"role": "user", "content": "weather?"}], **kw)
    th, tu = m.content
    assert th.type == "thinking" and th.signature == "sig-" + sha(th.thinking)
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "sunny"}]}
    first = {"role": "user", "content": "weather?"}
    m2 = ant.messages.create(messages=[first, {"role": "assistant", "content": m.content}, result], **kw)
    assert m2.content[0].type == "thinking" and m2.content[1].text == "result: sunny"

    def bad(messages, msg, **extra):
        with pytest.raises(anthropic.BadRequestError) as ei:
            ant.messages.create(messages=messages, **{**kw, **extra})
        assert msg in ei.value.body["error"]["message"], ei.value.body

    tampered = [{"type": "thinking", "thinking": th.thinking + " (edited)", "signature": th.signature}, tu]
    bad([first, {"role": "assistant", "content": tampered}, result], "messages.1.content.0: Invalid `signature` in `thinking` block")
    bad([first, {"role": "assistant", "content": [tu]}, result],
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`")
    bad([first, {"role": "assistant", "content": m.content}, {"role": "user", "content": "no result"}],
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: " + tu.id)
    bad([first, {"role": "assistant", "content": m.content},
         {"role": "user", "content": [{"type": "text", "text": "first"}, result["content"][0]]}],
        "`tool_use` ids were found without `tool_result` blocks immediately after")
    bad([first, {"role": "assistant", "content": m.content},
         {"role": "user", "content": [result["content"][0], {"type": "tool_result", "tool_use_id": "toolu_other", "content": "x"}]}],
        "unexpected `tool_use_id` found in `tool_result` blocks: toolu_other")
    bad([first], "Thinking may not be enabled when tool_choice forces tool use", tool_choice={"type": "any"})
    # without thinking, a tool_use-only assistant turn is fine
    ok = ant.messages.create(model="m", max_tokens=100, tools=ANT_TOOLS, messages=[first, {"role": "assistant", "content": [tu]}, result])
    assert ok.content[0].text == "result: sunny"


def test_anthropic_tool_id_pattern(ant):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(model="m", max_tokens=10, messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "functions.f:0", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "functions.f:0", "content": "r"}]}])
    assert "String should match pattern '^[a-zA-Z0-9_-]+$'" in ei.value.body["error"]["message"]


# ======================================================================================
# Gemini
# ======================================================================================
def test_gemini_tool_call_and_round_trip(gem):
    cfg = gtypes.GenerateContentConfig(tools=GEM_TOOLS)
    r = gem.models.generate_content(model="mock-parallel", contents="weather?", config=cfg)
    calls = r.function_calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    contents = [gtypes.Content(role="user", parts=[gtypes.Part(text="weather?")]), r.candidates[0].content,
                gtypes.Content(role="user", parts=[gtypes.Part.from_function_response(name="get_weather", response={"result": "sunny"}),
                                                   gtypes.Part.from_function_response(name="get_time", response={"output": "noon"})])]
    r2 = gem.models.generate_content(model="gemini-2.5-flash", contents=contents, config=cfg)
    assert r2.text == "result: sunny | noon"
    with pytest.raises(gerrors.ClientError) as ei:  # P-G2: one response for two calls
        gem.models.generate_content(model="gemini-2.5-flash", contents=contents[:2] + [gtypes.Content(role="user", parts=contents[2].parts[:1])], config=cfg)
    assert "number of function response parts is equal to the number of function call parts" in ei.value.message


def test_gemini_thinking_signatures(gem):
    cfg = gtypes.GenerateContentConfig(tools=GEM_TOOLS, thinking_config=gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=1024))
    r = gem.models.generate_content(model="mock-parallel", contents="weather?", config=cfg)
    parts = r.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text.startswith("mock reasoning about weather?")
    assert parts[1].function_call.name == "get_weather" and parts[1].thought_signature.startswith(b"gsig-")
    assert parts[2].function_call and parts[2].thought_signature is None  # parallel: only the first call is signed
    assert r.usage_metadata.thoughts_token_count > 0
    results = gtypes.Content(role="user", parts=[gtypes.Part.from_function_response(name="get_weather", response={"result": "sunny"}),
                                                 gtypes.Part.from_function_response(name="get_time", response={"result": "noon"})])
    user = gtypes.Content(role="user", parts=[gtypes.Part(text="weather?")])
    r2 = gem.models.generate_content(model="m", contents=[user, r.candidates[0].content, results], config=cfg)
    assert r2.text == "result: sunny | noon"
    assert r2.candidates[0].content.parts[-1].thought_signature.startswith(b"gsig-")  # text answer: signature on the last part
    unsigned = gtypes.Content(role="model", parts=[gtypes.Part(function_call=p.function_call) for p in parts[1:]])
    with pytest.raises(gerrors.ClientError) as ei:
        gem.models.generate_content(model="m", contents=[user, unsigned, results], config=cfg)
    assert "Function call is missing a thought_signature in functionCall parts" in ei.value.message
    assert "`default_api:get_weather` , position 1" in ei.value.message
    # the documented dummy passes; a forged signature does not
    dummy = gtypes.Content(role="model", parts=[gtypes.Part(function_call=parts[1].function_call, thought_signature=b"skip_thought_signature_validator")] +
                           [gtypes.Part(function_call=parts[2].function_call)])
    forged = gtypes.Content(role="model", parts=[gtypes.Part(function_call=parts[1].function_call, thought_signature=b"gsig-forged")] +
                            [gtypes.Part(function_call=parts[2].function_call)])
    with pytest.raises(gerrors.ClientError) as ei:
        gem.models.generate_content(model="m", contents=[user, forged, results], config=cfg)
    assert "Corrupted thought signature" in ei.value.message
    # without thinking the unsigned history is accepted
    assert gem.models.generate_content(model="m", contents=[user, unsigned, results],
                                       config=gtypes.GenerateContentConfig(tools=GEM_TOOLS)).text == "result: sunny | noon"
    del dummy


def test_gemini_dummy_signature_raw(http, gem):
    cfg = {"thinkingConfig": {"thinkingBudget": 1024}}
    body = {"generationConfig": cfg, "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER_SCHEMA}]}],
            "contents": [{"role": "user", "parts": [{"text": "q"}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}]}
    r = http.post("/v1beta/models/m:generateContent", headers=GEM_H, json=body)
    assert r.status_code == 200, r.text
    out = r.json()["candidates"][0]["content"]["parts"]
    assert out[-1]["text"] == "result: sunny" and base64.b64decode(out[-1]["thoughtSignature"]).startswith(b"gsig-")
    assert not any(p.get("thought") for p in out)  # budget without includeThoughts: no thought summary


def test_gemini_stream_tool_and_thoughts(http):
    body = {"contents": [{"role": "user", "parts": [{"text": "w"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    r = http.post("/v1beta/models/m:streamGenerateContent?alt=sse", headers=GEM_H, json=body)
    chunks = [json.loads(d) for _, d in parse_sse(r.text)]
    for c in chunks:
        gtypes.GenerateContentResponse.model_validate(c)
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    flags = [bool(p.get("thought")) for p in parts]
    assert flags.count(True) >= 2 and flags[-1] is False and flags.index(False) == len(flags) - 1
    assert parts[-1] == {"functionCall": {"name": "get_weather", "args": {"city": "city-value"}}, "thoughtSignature": parts[-1]["thoughtSignature"]}
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and chunks[-1]["usageMetadata"]["thoughtsTokenCount"] > 0


GEM_INVALID = [
    ("additionalProperties in parameters", {"tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}]}]},
     "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters': Cannot find field."),
    ("$schema in parameters", {"tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}}]}]}, "Unknown name \"$schema\""),
    ("nested unknown keyword", {"tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "const": "x"}}}}]}]},
     "at 'tools[0].function_declarations[0].parameters.properties[0].value'"),
    ("type list", {"tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": ["string", "null"]}}}}]}]}, "v1beta.Type"),
    ("bad function name", {"tools": [{"functionDeclarations": [{"name": "1bad name"}]}]}, "Invalid function name"),
    ("response not object", {"contents": [
        {"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "sunny"}}]}]},
     "function_response.response' (type.googleapis.com/google.protobuf.Struct)"),
    ("response without call", {"contents": [
        {"role": "user", "parts": [{"text": "q"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "x"}}}]}]},
     "function response turn comes immediately after a function call turn"),
    ("call after model", {"contents": [
        {"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "hm"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "x"}}}]}]},
     "function call turn comes immediately after a user turn or after a function response turn"),
    ("signature not base64", {"contents": [{"role": "user", "parts": [{"text": "q", "thoughtSignature": "not base64!"}]}]},
     "Base64 decoding failed"),
    ("budget and level", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "LOW"}}},
     "cannot be set at the same time"),
]


@pytest.mark.parametrize("name,extra,msg", GEM_INVALID, ids=[c[0] for c in GEM_INVALID])
def test_gemini_invalid_conversation(http, name, extra, msg):
    body = {"contents": [{"role": "user", "parts": [{"text": "q"}]}], **extra}
    r = http.post("/v1beta/models/m:generateContent", headers=GEM_H, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and msg in err["message"], err


def test_gemini_parameters_json_schema_accepts_json_schema(http):
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"]}
    r = http.post("/v1beta/models/m:generateContent", headers=GEM_H, json={
        "contents": [{"role": "user", "parts": [{"text": "q"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]}]})
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["content"]["parts"][0]["functionCall"] == {"name": "f", "args": {"a": "a-value"}}


# ======================================================================================
# Error records and the bounded mid-stream hang
# ======================================================================================
def test_rejections_are_logged_with_their_error(http, mock):
    http.post("/v1/messages", headers=ANT_H, json={"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "a"}]})
    rec = mock.last("/v1/messages")
    assert rec["status"] == 400 and "first message must use" in rec["error"]["error"]["message"]


def test_mock_hang_mid_bounded(mock):
    with httpx.Client(base_url=mock.base, timeout=httpx.Timeout(5, read=3)) as c:
        with c.stream("POST", "/v1/messages", headers=ANT_H, json={
                "model": "mock-hang-mid-300", "max_tokens": 5, "stream": True,
                "messages": [{"role": "user", "content": "x y z"}]}) as r:
            with pytest.raises(httpx.RemoteProtocolError):  # the stall ends with a dropped connection
                for _ in r.iter_raw():
                    pass
    assert mock.last("/v1/messages")["status"] == "hung-mid"


def test_tool_schemas_must_be_json_schema(oai, ant):
    gemini_style = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                    tools=[{"type": "function", "function": {"name": "f", "parameters": gemini_style}}])
    assert ei.value.code == "invalid_function_parameters" and "schema must be a JSON Schema of 'type: \"object\"'" in ei.value.message
    nested = {"type": "object", "properties": {"city": {"type": "STRING"}}}
    with pytest.raises(openai.BadRequestError) as ei:
        oai.responses.create(model="m", input="x", tools=[{"type": "function", "name": "f", "parameters": nested}])
    assert "In context=('properties', 'city'), \"STRING\" is not valid under any of the given schemas" in ei.value.message
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                            tools=[{"name": "f", "input_schema": nested}])
    assert "JSON schema is invalid" in ei.value.body["error"]["message"]
    # nullable unions and $defs are fine
    ok = {"type": "object", "$defs": {"u": {"type": "string"}}, "properties": {"a": {"type": ["string", "null"]}, "b": {"$ref": "#/$defs/u"}}}
    assert oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                       tools=[{"type": "function", "function": {"name": "f", "parameters": ok}}]).choices[0].finish_reason == "tool_calls"


def test_preamble_text_before_calls(oai, ant, gem, http):
    r = oai.chat.completions.create(model="mock-preamble", messages=[{"role": "user", "content": "w"}], tools=CHAT_TOOLS)
    assert r.choices[0].message.content == "Let me check that for you." and r.choices[0].finish_reason == "tool_calls"
    r = oai.responses.create(model="mock-preamble", input="w", tools=RESP_TOOLS, reasoning={"effort": "low"})
    assert [o.type for o in r.output] == ["reasoning", "message", "function_call"]
    m = ant.messages.create(model="mock-preamble", max_tokens=100, tools=ANT_TOOLS, messages=[{"role": "user", "content": "w"}])
    assert [b.type for b in m.content] == ["text", "tool_use"] and m.stop_reason == "tool_use"
    g = gem.models.generate_content(model="mock-preamble", contents="w", config=gtypes.GenerateContentConfig(
        tools=GEM_TOOLS, thinking_config=gtypes.ThinkingConfig(thinking_budget=512)))
    parts = g.candidates[0].content.parts
    assert parts[0].text == "Let me check that for you." and parts[0].thought_signature is None
    assert parts[1].function_call.name == "get_weather" and parts[1].thought_signature.startswith(b"gsig-")
    raw = http.post("/v1/chat/completions", headers=OAI_H, json={"model": "mock-preamble", "stream": True, "tools": CHAT_TOOLS,
                                                                 "messages": [{"role": "user", "content": "w"}]}).text
    deltas = [c["choices"][0]["delta"] for c in (json.loads(d) for _, d in parse_sse(raw) if d != "[DONE]") if c["choices"]]
    kinds = ["content" if d.get("content") else "tool" if d.get("tool_calls") else None for d in deltas]
    kinds = [k for k in kinds if k]
    assert kinds[0] == "content" and kinds[-1] == "tool" and kinds.index("tool") > max(i for i, k in enumerate(kinds) if k == "content")
