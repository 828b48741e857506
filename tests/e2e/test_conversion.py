"""The SDK matrix: every official SDK client (its create and its stream helper) against every
upstream provider type of the test config, through the gateway, on the strict mock.

    client:   chat (openai chat.completions.create / .stream), responses (openai responses.create /
              .stream + get_final_response), anthropic (messages.create / messages.stream +
              get_final_message), gemini (google-genai models.generate_content / generate_content_stream)
    provider: oai (openai-chat-completions), resp (openai-responses), ant (claude), gem (gemini),
              echo (text and stream only)

Scenarios: text, stream, tool call (single and parallel, streamed or not), tool round trip (the
tool result goes back in the client's own format), thinking (requested the client's way, shown in
the client's place), thinking + tool round trip (the client echoes the reasoning it was given; the
mock's replay validation proves the signature / encrypted content survived), usage, upstream errors
(429 and overloaded) and, on converted paths, a truncated or mid-stream-dropped upstream stream.

The mock answers by request content (mock_upstream.py): tools declared -> a call to the first tool
with arguments built from its schema ("<prop>-value", 1, true; two calls when the model name has
"parallel"); conversation ending with tool results -> "result: <outputs joined by ' | '>";
reasoning requested -> reasoning in the upstream API's own form. On failure the report shows
the mock's request log ("mock request log" section): what the gateway sent and why it was rejected.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as gerrors
from google.genai import types as gtypes

CLIENTS = ("chat", "responses", "anthropic", "gemini")
PROVIDERS = ("oai", "resp", "ant", "gem")
PROVIDER_API = {"oai": "chat", "resp": "responses", "ant": "anthropic", "gem": "gemini"}
BASE_MODEL = {"oai": "oai.gpt-4o-mini", "resp": "resp.gpt-5", "ant": "ant.claude-sonnet-4-5", "gem": "gem.gemini-2.5-flash"}
OVERLOADED_MODEL = {"oai": "oai.mock-error-503", "resp": "resp.mock-error-503", "ant": "ant.mock-error-529",
                    "gem": "gem.mock-error-503"}
MOCK_PATH = {"oai": "/v1/chat/completions", "resp": "/v1/responses", "ant": "/v1/messages", "gem": "/models/"}

PAIRS = [(c, p) for c in CLIENTS for p in PROVIDERS]
PAIR_IDS = [f"{c}-{p}" for c, p in PAIRS]
CROSS = [(c, p) for c, p in PAIRS if PROVIDER_API[p] != c]
CROSS_IDS = [f"{c}-{p}" for c, p in CROSS]
MODES = pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])

# --------------------------------------------------------------------------------------
# Tools: the same two tools in each client's own format. The schemas carry what real
# clients send (additionalProperties:false from OpenAI strict-style tools, $schema from
# Claude Code, Gemini's OpenAPI Schema with upper-case types) so the gateway has to adapt them.
# --------------------------------------------------------------------------------------
WEATHER = {"type": "object", "properties": {
    "city": {"type": "string", "description": "City name"},
    "days": {"type": "integer", "description": "Forecast days"},
    "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city", "days"]}
TIME = {"type": "object", "properties": {"tz": {"type": "string"}, "utc": {"type": "boolean"}}}
WEATHER_ARGS = {"city": "city-value", "days": 1}
TIME_ARGS = {"tz": "tz-value", "utc": True}
OUTPUTS = {"get_weather": "sunny", "get_time": "noon"}

CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather forecast",
                                                "parameters": {**WEATHER, "additionalProperties": False}}},
              {"type": "function", "function": {"name": "get_time", "description": "Current time",
                                                "parameters": {**TIME, "additionalProperties": False}}}]
RESP_TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather forecast",
               "parameters": {**WEATHER, "additionalProperties": False}},
              {"type": "function", "name": "get_time", "description": "Current time",
               "parameters": {**TIME, "additionalProperties": False}}]
ANT_TOOLS = [{"name": "get_weather", "description": "Weather forecast",
              "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", **WEATHER, "additionalProperties": False}},
             {"name": "get_time", "description": "Current time", "input_schema": TIME}]
GEM_TOOLS = [gtypes.Tool(function_declarations=[
    gtypes.FunctionDeclaration(name="get_weather", description="Weather forecast", parameters=gtypes.Schema(
        type="OBJECT", required=["city", "days"], properties={
            "city": gtypes.Schema(type="STRING", description="City name"),
            "days": gtypes.Schema(type="INTEGER", description="Forecast days"),
            "unit": gtypes.Schema(type="STRING", enum=["c", "f"])})),
    gtypes.FunctionDeclaration(name="get_time", description="Current time", parameters_json_schema=TIME)])]

SDK_TIMEOUT = 20


class SseErrorEvent(openai.APIError):
    """A Responses `error` / `response.failed` event the SDK yielded instead of raising."""

    def __init__(self, message):
        super().__init__(message, httpx.Request("POST", "http://gateway/v1/responses"), body=None)


@dataclass
class Call:
    id: str | None
    name: str
    args: dict


@dataclass
class Turn:
    """One assistant turn as the client SDK saw it."""
    text: str = ""
    reasoning: str = ""
    calls: list[Call] = field(default_factory=list)
    finish: str = ""
    usage: tuple[int, int] = (0, 0)          # (input, output) in the client's own counting
    text_deltas: int = 0                     # streamed text pieces the SDK yielded
    arg_deltas: int = 0                      # streamed tool-argument pieces
    history: list = field(default_factory=list)  # the conversation in the client's format, this turn included


# --------------------------------------------------------------------------------------
# Client drivers: the canonical way each SDK is used for these flows
# --------------------------------------------------------------------------------------
class ChatDriver:
    natural, tool_finish = "stop", "tool_calls"

    def __init__(self, gw):
        self.c = gw.openai(timeout=SDK_TIMEOUT)

    def start(self, prompt):
        return [{"role": "user", "content": prompt}]

    def send(self, model, history, stream, tools=False, think=False) -> Turn:
        kw: dict[str, Any] = {"model": model, "messages": history}
        if tools:
            kw["tools"] = CHAT_TOOLS
        if think:
            kw["reasoning_effort"] = "high"
        t = Turn()
        if not stream:
            r = self.c.chat.completions.create(**kw)
            msg, ch = r.choices[0].message, r.choices[0]
            t.reasoning = (msg.model_extra or {}).get("reasoning_content") or ""
            t.finish = ch.finish_reason
            usage = r.usage
        else:
            reasoning = []
            with self.c.chat.completions.stream(**kw, stream_options={"include_usage": True}) as s:
                for ev in s:
                    if ev.type == "chunk":
                        for ch in ev.chunk.choices:
                            rc = (ch.delta.model_extra or {}).get("reasoning_content")
                            if rc:
                                reasoning.append(rc)
                    elif ev.type == "content.delta":
                        t.text_deltas += 1
                    elif ev.type == "tool_calls.function.arguments.delta":
                        t.arg_deltas += 1
                final = s.get_final_completion()
            msg, t.finish = final.choices[0].message, final.choices[0].finish_reason
            t.reasoning = "".join(reasoning)
            usage = final.usage
        t.text = msg.content or ""
        t.calls = [Call(tc.id, tc.function.name, json.loads(tc.function.arguments or "{}")) for tc in msg.tool_calls or []]
        if usage is not None:
            t.usage = (usage.prompt_tokens, usage.completion_tokens)
        # what a Chat client sends back: the assistant message as received (reasoning_content
        # echoed DeepSeek-style), tool calls with the ids it was given
        echo: dict[str, Any] = {"role": "assistant", "content": msg.content}
        if msg.tool_calls:
            echo["tool_calls"] = [{"id": tc.id, "type": "function",
                                   "function": {"name": tc.function.name, "arguments": tc.function.arguments}}
                                  for tc in msg.tool_calls]
        if t.reasoning:
            echo["reasoning_content"] = t.reasoning
        t.history = history + [echo]
        return t

    def results(self, turn: Turn):
        return turn.history + [{"role": "tool", "tool_call_id": c.id, "content": OUTPUTS[c.name]} for c in turn.calls]


class ResponsesDriver:
    natural, tool_finish = "completed", "completed"

    def __init__(self, gw):
        self.c = gw.openai(timeout=SDK_TIMEOUT)

    def start(self, prompt):
        return [{"role": "user", "content": prompt}]

    def send(self, model, history, stream, tools=False, think=False) -> Turn:
        kw: dict[str, Any] = {"model": model, "input": history}
        if tools:
            kw["tools"] = RESP_TOOLS
        if think:
            kw["reasoning"] = {"effort": "high", "summary": "auto"}
            kw["include"] = ["reasoning.encrypted_content"]
        t = Turn()
        if not stream:
            r = self.c.responses.create(**kw)
        else:
            with self.c.responses.stream(**kw) as s:
                for ev in s:
                    if ev.type == "response.output_text.delta":
                        t.text_deltas += 1
                    elif ev.type == "response.function_call_arguments.delta":
                        t.arg_deltas += 1
                    elif ev.type in ("error", "response.failed"):
                        # a flat error event (the documented shape) is yielded, not raised, by the SDK
                        raise SseErrorEvent(ev.to_json(indent=None))
                r = s.get_final_response()
        t.text = r.output_text
        t.finish = r.status
        t.reasoning = "".join(sm.text for o in r.output if o.type == "reasoning" for sm in o.summary or [])
        t.calls = [Call(o.call_id, o.name, json.loads(o.arguments or "{}")) for o in r.output if o.type == "function_call"]
        if r.usage:
            t.usage = (r.usage.input_tokens, r.usage.output_tokens)
        # stateless replay: the output items as received (reasoning with encrypted_content included)
        t.history = history + [o.model_dump(exclude_none=True, exclude={"parsed_arguments"}) for o in r.output]
        for item in t.history:
            for part in item.get("content") or [] if isinstance(item.get("content"), list) else []:
                part.pop("parsed", None)
        return t

    def results(self, turn: Turn):
        return turn.history + [{"type": "function_call_output", "call_id": c.id, "output": OUTPUTS[c.name]} for c in turn.calls]


class AnthropicDriver:
    natural, tool_finish = "end_turn", "tool_use"

    def __init__(self, gw):
        self.c = gw.anthropic(timeout=SDK_TIMEOUT)

    def start(self, prompt):
        return [{"role": "user", "content": prompt}]

    def send(self, model, history, stream, tools=False, think=False) -> Turn:
        kw: dict[str, Any] = {"model": model, "messages": history, "max_tokens": 2048 if think else 512}
        if tools:
            kw["tools"] = ANT_TOOLS
        if think:
            kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        t = Turn()
        if not stream:
            m = self.c.messages.create(**kw)
        else:
            with self.c.messages.stream(**kw) as s:
                for ev in s:
                    if ev.type == "text":
                        t.text_deltas += 1
                    elif ev.type == "input_json":
                        t.arg_deltas += 1
                m = s.get_final_message()
        t.text = "".join(b.text for b in m.content if b.type == "text")
        t.reasoning = "".join(b.thinking for b in m.content if b.type == "thinking")
        t.calls = [Call(b.id, b.name, b.input) for b in m.content if b.type == "tool_use"]
        t.finish = m.stop_reason
        t.usage = (m.usage.input_tokens, m.usage.output_tokens)
        # the assistant turn goes back as received (thinking blocks with their signatures)
        t.history = history + [{"role": "assistant", "content": [
            b.model_dump(exclude_none=True, exclude={"parsed_output"}) for b in m.content]}]
        return t

    def results(self, turn: Turn):
        return turn.history + [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": c.id, "content": OUTPUTS[c.name]} for c in turn.calls]}]


class GeminiDriver:
    natural = tool_finish = "STOP"

    def __init__(self, gw):
        self.c = gw.genai()

    def start(self, prompt):
        return [gtypes.Content(role="user", parts=[gtypes.Part(text=prompt)])]

    def send(self, model, history, stream, tools=False, think=False) -> Turn:
        cfg = gtypes.GenerateContentConfig(
            tools=GEM_TOOLS if tools else None,
            thinking_config=gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=1024) if think else None,
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True))
        t = Turn()
        if not stream:
            r = self.c.models.generate_content(model=model, contents=history, config=cfg)
            parts = list(r.candidates[0].content.parts or [])
            finish, um = r.candidates[0].finish_reason, r.usage_metadata
        else:
            parts, finish, um = [], None, None
            for ch in self.c.models.generate_content_stream(model=model, contents=history, config=cfg):
                if ch.usage_metadata:
                    um = ch.usage_metadata
                for cand in ch.candidates or []:
                    finish = cand.finish_reason or finish
                    for p in (cand.content.parts if cand.content else None) or []:
                        parts.append(p)
                        if p.text and not p.thought:
                            t.text_deltas += 1
                        if p.function_call:
                            t.arg_deltas += 1
        t.text = "".join(p.text for p in parts if p.text and not p.thought)
        t.reasoning = "".join(p.text for p in parts if p.text and p.thought)
        t.calls = [Call(p.function_call.id, p.function_call.name, dict(p.function_call.args or {})) for p in parts if p.function_call]
        t.finish = finish.value if finish is not None else ""
        if um is not None:
            t.usage = (um.prompt_token_count or 0, (um.candidates_token_count or 0) + (um.thoughts_token_count or 0))
        # the model turn goes back as received: thought parts and thoughtSignatures on their parts
        t.history = history + [gtypes.Content(role="model", parts=parts)]
        return t

    def results(self, turn: Turn):
        return turn.history + [gtypes.Content(role="user", parts=[
            gtypes.Part(function_response=gtypes.FunctionResponse(id=c.id, name=c.name, response={"result": OUTPUTS[c.name]}))
            for c in turn.calls])]


DRIVERS = {"chat": ChatDriver, "responses": ResponsesDriver, "anthropic": AnthropicDriver, "gemini": GeminiDriver}


def pair(gateway, client):
    return DRIVERS[client](gateway)


def upstream_requests(gateway, provider):
    return [r for r in gateway.mock.requests() if r["method"] == "POST" and MOCK_PATH[provider] in r["path"]]


def ctx(client, provider, what):
    return f"[{client} client -> {provider} upstream] {what}"


# ======================================================================================
# Text and streaming
# ======================================================================================
@MODES
@pytest.mark.parametrize("client,provider", PAIRS + [(c, "echo") for c in CLIENTS],
                         ids=PAIR_IDS + [f"{c}-echo" for c in CLIENTS])
def test_text(gateway, client, provider, stream):
    d = pair(gateway, client)
    prompt = f"hello {client} via {provider}"
    model = BASE_MODEL.get(provider, "echo.anything")
    t = d.send(model, d.start(prompt), stream)
    assert prompt in t.text, ctx(client, provider, f"reply text {t.text!r} lacks the prompt")
    if provider != "echo":
        assert t.text == f"mock({PROVIDER_API[provider]}) reply to: {prompt}", ctx(client, provider, f"text altered: {t.text!r}")
        assert len(upstream_requests(gateway, provider)) == 1
    assert t.finish == d.natural, ctx(client, provider, f"finish {t.finish!r}, expected {d.natural!r}")
    assert not t.calls
    if stream:
        assert t.text_deltas >= 2, ctx(client, provider, f"stream delivered the text in {t.text_deltas} piece(s)")


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_usage(gateway, client, provider, stream):
    d = pair(gateway, client)
    t = d.send(BASE_MODEL[provider], d.start("count my tokens please"), stream)
    inp, out = t.usage
    assert inp > 0 and out > 0, ctx(client, provider, f"usage (input, output) = {t.usage}")


# ======================================================================================
# Tools
# ======================================================================================
def check_calls(t: Turn, d, client, provider, expected):
    got = [(c.name, c.args) for c in t.calls]
    assert got == expected, ctx(client, provider, f"tool calls {got}, expected {expected}; text {t.text!r}")
    assert t.finish == d.tool_finish, ctx(client, provider, f"finish {t.finish!r}, expected {d.tool_finish!r}")
    ids = [c.id for c in t.calls]
    if client != "gemini":
        assert all(ids) and len(set(ids)) == len(ids), ctx(client, provider, f"tool call ids not unique/non-empty: {ids}")
    if client == "anthropic":
        assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", i) for i in ids), ctx(client, provider, f"tool_use ids break Anthropic's pattern: {ids}")


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_tool_call(gateway, client, provider, stream):
    d = pair(gateway, client)
    t = d.send(BASE_MODEL[provider], d.start("weather in paris?"), stream, tools=True)
    check_calls(t, d, client, provider, [("get_weather", WEATHER_ARGS)])
    if stream:
        assert t.arg_deltas >= 1, ctx(client, provider, "no streamed tool-argument event")


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_parallel_tool_calls(gateway, client, provider, stream):
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-parallel"
    t = d.send(model, d.start("weather and time?"), stream, tools=True)
    check_calls(t, d, client, provider, [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)])


def check_result_text(t: Turn, client, provider, outputs):
    assert t.text.startswith("result: "), ctx(client, provider, f"expected the mock's tool-result answer, got {t.text!r}")
    for o in outputs:
        assert o in t.text, ctx(client, provider, f"tool output {o!r} lost on the way: {t.text!r}")
    assert not t.calls


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_tool_round_trip(gateway, client, provider, stream):
    d = pair(gateway, client)
    t1 = d.send(BASE_MODEL[provider], d.start("weather in paris?"), stream, tools=True)
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS)])
    t2 = d.send(BASE_MODEL[provider], d.results(t1), stream, tools=True)
    check_result_text(t2, client, provider, ["sunny"])
    assert t2.finish == d.natural


@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_parallel_tool_round_trip(gateway, client, provider):
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-parallel"
    t1 = d.send(model, d.start("weather and time?"), False, tools=True)
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)])
    t2 = d.send(BASE_MODEL[provider], d.results(t1), False, tools=True)
    check_result_text(t2, client, provider, ["sunny", "noon"])
    assert t2.text.index("sunny") < t2.text.index("noon"), ctx(client, provider, f"tool results reordered: {t2.text!r}")


# ======================================================================================
# Thinking / reasoning
# ======================================================================================
@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_thinking(gateway, client, provider, stream):
    d = pair(gateway, client)
    prompt = "think about paris"
    t = d.send(BASE_MODEL[provider], d.start(prompt), stream, think=True)
    assert t.text == f"mock({PROVIDER_API[provider]}) reply to: {prompt}", ctx(client, provider, f"text {t.text!r}")
    where = {"chat": "message reasoning_content", "responses": "a reasoning summary item", "anthropic": "a thinking block",
             "gemini": "a thought part"}[client]
    assert t.reasoning.startswith(f"mock reasoning about {prompt}"), ctx(
        client, provider, f"reasoning not shown in {where}: got {t.reasoning!r}")
    assert t.reasoning not in t.text


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_thinking_tool_round_trip(gateway, client, provider, stream):
    """The client echoes back the reasoning it was given; the upstream accepts only its own,
    byte-exact (the mock verifies signatures / encrypted content / thought signatures)."""
    d = pair(gateway, client)
    t1 = d.send(BASE_MODEL[provider], d.start("weather in paris?"), stream, tools=True, think=True)
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS)])
    if not (client == "chat" and provider == "ant"):  # Chat -> Claude may run without thinking
        assert t1.reasoning.startswith("mock reasoning about weather in paris?"), ctx(
            client, provider, f"first turn reasoning not shown: {t1.reasoning!r}")
    gateway.mock.clear()
    t2 = d.send(BASE_MODEL[provider], d.results(t1), stream, tools=True, think=True)
    check_result_text(t2, client, provider, ["sunny"])
    (sent,) = upstream_requests(gateway, provider)
    body = sent["body"]
    # the reasoning token issued in turn 1 came back to the upstream in its native place
    if provider == "resp":
        items = [i for i in body["input"] if i.get("type") == "reasoning"]
        assert items and all(str(i.get("encrypted_content", "")).startswith("enc-") for i in items), ctx(
            client, provider, f"reasoning item with its encrypted_content not replayed: {body['input']}")
    elif provider == "ant":
        thinking_on = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if client != "chat":
            assert thinking_on, ctx(client, provider, f"thinking not requested upstream on the follow-up: {body.get('thinking')}")
        if thinking_on:  # the mock already enforced signature + position; check it is there at all
            assistant = [m for m in body["messages"] if m["role"] == "assistant"][-1]
            assert assistant["content"][0]["type"] == "thinking"
    elif provider == "gem":
        model_turns = [c for c in body["contents"] if c.get("role") == "model"]
        calls = [p for p in model_turns[-1]["parts"] if "functionCall" in p]
        assert calls[0].get("thoughtSignature"), ctx(client, provider, f"thoughtSignature not replayed: {model_turns[-1]}")


# ======================================================================================
# Upstream errors in the client's own error classes
# ======================================================================================
def call_client(d, model, stream):
    return d.send(model, d.start("error please"), stream)


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_rate_limited(gateway, client, provider, stream):
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-error-429"
    if client in ("chat", "responses"):
        with pytest.raises(openai.RateLimitError) as ei:
            call_client(d, model, stream)
        assert ei.value.status_code == 429
    elif client == "anthropic":
        with pytest.raises(anthropic.RateLimitError) as ei:
            call_client(d, model, stream)
        assert ei.value.body["error"]["type"] == "rate_limit_error"
    else:
        with pytest.raises(gerrors.ClientError) as ei:
            call_client(d, model, stream)
        assert ei.value.code == 429 and ei.value.status == "RESOURCE_EXHAUSTED", ctx(client, provider, f"{ei.value!r}")


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_overloaded(gateway, client, provider, stream):
    d = pair(gateway, client)
    model = OVERLOADED_MODEL[provider]
    if client in ("chat", "responses"):
        with pytest.raises(openai.APIStatusError) as ei:
            call_client(d, model, stream)
        assert ei.value.status_code == 503, ctx(client, provider, f"overloaded upstream gave {ei.value.status_code}, expected 503")
    elif client == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as ei:
            call_client(d, model, stream)
        assert isinstance(ei.value, anthropic.OverloadedError) and ei.value.status_code == 529, ctx(
            client, provider, f"overloaded upstream gave {type(ei.value).__name__} {ei.value.status_code}, expected 529 OverloadedError")
        assert ei.value.body["error"]["type"] == "overloaded_error"
    else:
        with pytest.raises(gerrors.APIError) as ei:
            call_client(d, model, stream)
        assert isinstance(ei.value, gerrors.ServerError) and ei.value.code == 503, ctx(
            client, provider, f"overloaded upstream gave {type(ei.value).__name__} {ei.value.code}, expected 503 ServerError")
        assert ei.value.status == "UNAVAILABLE"


# ======================================================================================
# Broken upstream streams on converted paths: the client's SSE error event, then a clean end
# ======================================================================================
CONNECTION_ERRORS = (openai.APIConnectionError, anthropic.APIConnectionError, httpx.TransportError)


@pytest.mark.parametrize("breakage", ["mock-truncate", "mock-hang-mid-800"], ids=["truncated", "dropped-after-stall"])
@pytest.mark.parametrize("client,provider", CROSS, ids=CROSS_IDS)
def test_broken_upstream_stream(gateway, client, provider, breakage):
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + "." + breakage
    t0 = time.monotonic()
    raised: BaseException | None = None
    turn = None
    try:
        turn = d.send(model, d.start("a b c d e f g h"), True)
    except (openai.APIError, anthropic.APIError, gerrors.APIError, httpx.HTTPError) as e:
        raised = e
    elapsed = time.monotonic() - t0
    assert elapsed < 12, ctx(client, provider, f"client waited {elapsed:.1f}s on a broken upstream stream")
    assert raised is not None, ctx(client, provider, f"a broken upstream stream ended like a normal one (no error event): "
                                                     f"text {turn.text if turn else None!r}, finish {turn.finish if turn else None!r}")
    assert not isinstance(raised, CONNECTION_ERRORS), ctx(
        client, provider, f"the client saw a broken connection ({type(raised).__name__}: {raised}), not an SSE error event and a clean end")
    assert gateway.alive()
