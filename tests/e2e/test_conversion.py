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

import base64
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

from conftest import summarize_record

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
    first_log = upstream_requests(gateway, provider)
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
    # checked last so that a missing display does not hide the replay result above
    if not (client == "chat" and provider == "ant"):  # Chat -> Claude may run without thinking
        assert t1.reasoning.startswith("mock reasoning about weather in paris?"), ctx(
            client, provider, f"first turn reasoning not shown (replay itself worked): {t1.reasoning!r}; "
                              f"first upstream request: {[summarize_record(r) for r in first_log]}")


@MODES
@pytest.mark.parametrize("client", [c for c in CLIENTS if c != "chat"])
def test_gemini_behind_an_openai_compatible_endpoint_gets_its_signatures_back(gateway, client, stream):
    """Gemini 3 through OpenRouter or Google's OpenAI-compatible endpoint (an
    openai-chat-completions provider): the thought signature on the first tool call and the
    message's reasoning_details must come back on the next turn, or the upstream answers 400.
    (A Chat client passes through: sending them back is its own part.)"""
    d = pair(gateway, client)
    t1 = d.send("oai.mock-gemini-compat", d.start("weather in paris?"), stream, tools=True)
    check_calls(t1, d, client, "oai", [("get_weather", WEATHER_ARGS)])
    gateway.mock.clear()
    t2 = d.send("oai.mock-gemini-compat", d.results(t1), stream, tools=True)
    check_result_text(t2, client, "oai", ["sunny"])
    (sent,) = upstream_requests(gateway, "oai")
    assistant = [m for m in sent["body"]["messages"] if m.get("role") == "assistant"][-1]
    assert assistant["tool_calls"][0]["extra_content"]["google"]["thought_signature"], ctx(client, "oai", assistant)


COUNT_PATH = {"resp": "/v1/responses/input_tokens", "ant": "/v1/messages/count_tokens", "gem": ":countTokens"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_token_counts_come_from_the_upstreams_counter_or_say_they_are_estimates(gateway, mock_upstream, provider):
    """Claude Code's count_tokens and the Gemini SDK's count_tokens on any provider: the
    upstream's own counter where it has one, else an estimate marked in a header (Chinese
    text counted a token a character, not four characters a token)."""
    text = "请用中文详细回答这个关于天气的问题" * 3  # 51 characters
    mock_upstream.clear()
    raw = gateway.anthropic().messages.with_raw_response.count_tokens(
        model=BASE_MODEL[provider], messages=[{"role": "user", "content": text}])
    n = raw.parse().input_tokens
    posts = [r for r in mock_upstream.requests() if r["method"] == "POST"]
    if provider == "oai":
        assert not posts and raw.headers.get("x-gateway-token-count") == "estimate"
        assert n >= 51, n
    else:
        assert [r["path"] for r in posts if COUNT_PATH[provider] in r["path"]], [r["path"] for r in posts]
        assert raw.headers.get("x-gateway-token-count") is None and n > 0
    mock_upstream.clear()
    g = gateway.genai()  # kept in a name: a client collected mid-call closes its connection
    total = g.models.count_tokens(model=BASE_MODEL[provider], contents=text).total_tokens
    posts = [r for r in mock_upstream.requests() if r["method"] == "POST"]
    if provider == "oai":
        assert not posts and total >= 51, total
    else:
        assert [r["path"] for r in posts if COUNT_PATH[provider] in r["path"]] and total > 0, [r["path"] for r in posts]


OWN_PROVIDER = {"chat": "oai", "responses": "resp", "anthropic": "ant", "gemini": "gem"}
SWITCHES = [(c, p) for c in CLIENTS for p in PROVIDERS if p != OWN_PROVIDER[c]]


@pytest.mark.parametrize("client,provider", SWITCHES, ids=[f"{c}-{p}-then-own" for c, p in SWITCHES])
def test_conversation_moving_to_the_callers_own_provider(gateway, client, provider):
    """A tool turn with thinking answered by another provider (a fallback, a model switch),
    then the next turn to the client's own protocol, passed through: the reasoning the gateway
    packed for the client must not reach that upstream, which would reject it (the mock checks
    signatures, encrypted content, thought signatures and OpenAI's 40-character call ids)."""
    d = pair(gateway, client)
    t1 = d.send(BASE_MODEL[provider], d.start("weather in paris?"), False, tools=True, think=True)
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS)])
    own = OWN_PROVIDER[client]
    gateway.mock.clear()
    t2 = d.send(BASE_MODEL[own], d.results(t1), False, tools=True, think=True)
    check_result_text(t2, client, own, ["sunny"])
    (sent,) = upstream_requests(gateway, own)
    assert "R1dSMX" not in json.dumps(sent["body"]), ctx(client, own, "packed reasoning reached the upstream")


@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_thinking_parallel_tool_round_trip(gateway, client, provider):
    """Parallel calls after reasoning: Gemini signs only the first call, Responses ties both calls
    to one reasoning item, Claude puts one thinking block before both tool_use blocks."""
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-parallel"
    t1 = d.send(model, d.start("weather and time?"), False, tools=True, think=True)
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)])
    t2 = d.send(model, d.results(t1), False, tools=True, think=True)
    check_result_text(t2, client, provider, ["sunny", "noon"])


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_preamble_tool_round_trip(gateway, client, provider, stream):
    """An assistant turn with text before its tool call (and reasoning before both), then back."""
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-preamble"
    t1 = d.send(model, d.start("weather in paris?"), stream, tools=True, think=True)
    assert t1.text == "Let me check that for you.", ctx(client, provider, f"preamble text {t1.text!r}")
    check_calls(t1, d, client, provider, [("get_weather", WEATHER_ARGS)])
    t2 = d.send(model, d.results(t1), stream, tools=True, think=True)
    check_result_text(t2, client, provider, ["sunny"])
    (sent,) = upstream_requests(gateway, provider)[-1:]
    # the preamble went back as assistant text of the same turn
    assert "Let me check that for you." in joined_text(sent["body"]), ctx(client, provider, "preamble text dropped from the replayed turn")


def joined_text(obj) -> str:
    """All "text"/"content" strings of a request body, concatenated in order (streamed text may
    come back as several parts)."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("text", "content") and isinstance(v, str):
                out.append(v)
            else:
                out.append(joined_text(v))
    elif isinstance(obj, list):
        out += [joined_text(v) for v in obj]
    return "".join(out)


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


def test_continue_prefill_reaches_claude_models_that_refuse_prefill(gateway, mock_upstream):
    """A chat app's "continue" sends the conversation ending with the assistant's partial
    answer; Claude 4.6+ refuses such a prefill (the mock as the API does), older ones take it."""
    oai = gateway.openai()
    messages = [{"role": "user", "content": "write a haiku"}, {"role": "assistant", "content": "Autumn moon"}]
    for model, last_role in (("ant.sonnet-46", "user"), ("ant.claude-sonnet-4-5", "assistant")):
        mock_upstream.clear()
        r = oai.chat.completions.create(model=model, messages=messages)
        assert r.choices[0].message.content
        sent = mock_upstream.last()["body"]
        assert sent["messages"][-1]["role"] == last_role, (model, sent["messages"])
    # passed through, the refusal is Anthropic's own
    ant = gateway.anthropic()
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(model="ant.sonnet-46", max_tokens=50, messages=messages)
    assert "prefill" in ei.value.body["error"]["message"]


@MODES
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)
def test_context_overflow_in_the_clients_own_words(gateway, client, provider, stream):
    """A prompt beyond the context window: clients recognise it by their provider's wording or
    code (Codex: code context_length_exceeded; Claude Code: "prompt is too long: N tokens > M
    maximum") and compact the conversation; converted, it must still read that way."""
    d = pair(gateway, client)
    model = BASE_MODEL[provider].split(".")[0] + ".mock-too-long"
    if client in ("chat", "responses"):
        with pytest.raises(openai.BadRequestError) as ei:
            call_client(d, model, stream)
        assert ei.value.code == "context_length_exceeded", ctx(client, provider, f"{ei.value.body!r}")
    elif client == "anthropic":
        with pytest.raises(anthropic.BadRequestError) as ei:
            call_client(d, model, stream)
        message = ei.value.body["error"]["message"]
        assert message.startswith("prompt is too long"), ctx(client, provider, message)
        if provider != "resp":  # the Responses API's wording carries no token counts
            assert re.fullmatch(r"prompt is too long: \d+ tokens > \d+ maximum", message), ctx(client, provider, message)
    else:
        with pytest.raises(gerrors.ClientError) as ei:
            call_client(d, model, stream)
        assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT", ctx(client, provider, f"{ei.value!r}")
        if provider != "resp":
            assert "exceeds the maximum number of tokens" in ei.value.message, ctx(client, provider, ei.value.message)


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


BREAKAGES = pytest.mark.parametrize("breakage", ["mock-truncate", "mock-hang-mid-800", "mock-hang-mid"],
                                    ids=["truncated", "dropped-after-stall", "hung"])


@pytest.mark.parametrize("breakage", ["mock-truncate", "mock-hang-mid"], ids=["truncated", "hung"])  # dropped: wire test only
@pytest.mark.parametrize("client,provider", CROSS, ids=CROSS_IDS)
def test_broken_upstream_stream(gateway, client, provider, breakage):
    """truncated: the upstream ends its stream before the terminal event; dropped-after-stall:
    it stalls 0.8 s mid-stream, then the connection drops; hung: it stalls 60 s mid-stream (the
    gateway's idleMs, 1 s in the test config, has to end it)."""
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


# ======================================================================================
# Raw grammar of converted streams: what the SDK accumulators would tolerate but strict
# clients do not (event order, block nesting and indices, sequence numbers, delta rules)
# ======================================================================================
from anthropic.types import RawMessageStreamEvent  # noqa: E402
from openai.types.chat import ChatCompletionChunk  # noqa: E402
from openai.types.responses import ResponseStreamEvent  # noqa: E402

from e2e_util import CLIENT_KEY, auth_headers, parse_sse, validate_event  # noqa: E402

GEM_RAW_TOOLS = [{"functionDeclarations": [
    {"name": "get_weather", "description": "Weather forecast", "parameters": {
        "type": "OBJECT", "required": ["city", "days"], "properties": {
            "city": {"type": "STRING"}, "days": {"type": "INTEGER"}, "unit": {"type": "STRING", "enum": ["c", "f"]}}}},
    {"name": "get_time", "description": "Current time", "parametersJsonSchema": TIME}]}]


def raw_stream_request(client, model, tools, think=True):
    path, body = _raw_stream_request(client, model, tools)
    if not think:
        for k in ("reasoning_effort", "reasoning", "include", "thinking"):
            body.pop(k, None)
        body.pop("generationConfig", None)
        if client == "anthropic":
            body["max_tokens"] = 256
    return path, body


def _raw_stream_request(client, model, tools):
    prompt = "weather and time?"
    if client == "chat":
        body = {"model": model, "stream": True, "stream_options": {"include_usage": True}, "reasoning_effort": "high",
                "messages": [{"role": "user", "content": prompt}]}
        if tools:
            body["tools"] = CHAT_TOOLS
        return "/v1/chat/completions", body
    if client == "responses":
        body = {"model": model, "stream": True, "input": prompt, "reasoning": {"effort": "high", "summary": "auto"},
                "include": ["reasoning.encrypted_content"]}
        if tools:
            body["tools"] = RESP_TOOLS
        return "/v1/responses", body
    if client == "anthropic":
        body = {"model": model, "stream": True, "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [{"role": "user", "content": prompt}]}
        if tools:
            body["tools"] = ANT_TOOLS
        return "/v1/messages", body
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}}
    if tools:
        body["tools"] = GEM_RAW_TOOLS
    return f"/v1beta/models/{model}:streamGenerateContent?alt=sse", body


def check_chat_grammar(events, tools):
    assert events and events[-1] == (None, "[DONE]"), f"no data: [DONE] terminator: {events[-3:]}"
    assert all(ev is None for ev, _ in events), "Chat streams carry no event: lines"
    chunks = [json.loads(d) for _, d in events[:-1]]
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0, "include_usage: last chunk must carry usage with choices []"
    assert all(c.get("usage") is None for c in chunks[:-1]), "usage only on the final chunk"
    body = chunks[:-1]
    finishes = [(i, ch["finish_reason"]) for i, c in enumerate(body) for ch in c["choices"] if ch.get("finish_reason")]
    assert len(finishes) == 1 and finishes[0][0] == len(body) - 1, f"one finish_reason, on the last choice chunk: {finishes}"
    assert finishes[0][1] == ("tool_calls" if tools else "stop")
    seen, args, order = {}, {}, []
    for c in body:
        for ch in c["choices"]:
            delta = ch["delta"]
            if delta.get("reasoning_content"):
                order.append("reasoning")
            if delta.get("content"):
                order.append("content")
            for tc in delta.get("tool_calls") or []:
                order.append("tool")
                i = tc["index"]
                if i not in seen:
                    assert tc.get("id") and tc.get("type") == "function" and tc["function"].get("name"), f"first delta of tool {i} lacks id/type/name: {tc}"
                    seen[i] = tc["function"]["name"]
                else:
                    assert "id" not in tc or tc["id"] is None, f"id repeated on a later delta of tool {i}: {tc}"
                args[i] = args.get(i, "") + (tc["function"].get("arguments") or "")
    if "reasoning" in order:  # whether it is shown at all is test_thinking's business
        n = order.count("reasoning")
        assert order[:n] == ["reasoning"] * n, f"reasoning_content must come before content/tool calls: {order}"
    if tools:
        assert sorted(seen) == [0, 1] and [json.loads(args[i]) for i in (0, 1)] == [WEATHER_ARGS, TIME_ARGS], (seen, args)


def check_responses_grammar(events, tools):
    data = []
    for ev, d in events:
        if d == "[DONE]":
            continue
        obj = json.loads(d)
        assert ev == obj["type"], f"event name {ev!r} differs from type {obj['type']!r}"
        validate_event(ResponseStreamEvent, obj)
        data.append(obj)
    assert [d["sequence_number"] for d in data] == list(range(len(data))), "sequence_number must count 0,1,2,..."
    types_ = [d["type"] for d in data]
    assert types_[:2] == ["response.created", "response.in_progress"] and types_[-1] == "response.completed", types_
    open_items, done_items = {}, []
    for d in data[2:-1]:
        t = d["type"]
        if t == "response.output_item.added":
            assert d["output_index"] == len(done_items) and not open_items, f"items must open one at a time, in order: {d}"
            open_items[d["item"]["id"]] = d["item"]["type"]
        elif t == "response.output_item.done":
            assert d["item"]["id"] in open_items, f"done for an item never added: {d}"
            del open_items[d["item"]["id"]]
            done_items.append(d["item"])
        elif "item_id" in d:
            assert d["item_id"] in open_items, f"{t} for an item that is not open: {d}"
            kind = open_items[d["item_id"]]
            assert (t.startswith("response.reasoning") and kind == "reasoning") or \
                   (t.startswith("response.function_call") and kind == "function_call") or \
                   (t.startswith(("response.output_text", "response.content_part", "response.refusal")) and kind == "message"), (t, kind)
    final = data[-1]["response"]
    assert [(o["type"], o["id"]) for o in final["output"]] == [(o["type"], o["id"]) for o in done_items], "completed.output must list the done items"
    kinds = [o["type"] for o in done_items]
    if "reasoning" in kinds:
        assert kinds.index("reasoning") == 0 and done_items[0].get("encrypted_content"), f"reasoning item first, with encrypted_content: {done_items}"
    if tools:
        fcs = [o for o in done_items if o["type"] == "function_call"]
        assert [(o["name"], json.loads(o["arguments"])) for o in fcs] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]
        deltas = [d for d in data if d["type"] == "response.function_call_arguments.delta"]
        assert {d["item_id"] for d in deltas} == {o["id"] for o in fcs}, "argument deltas must reference the fc item ids"
    assert final["usage"]["output_tokens"] > 0


def check_anthropic_grammar(events, tools):
    data = []
    for ev, d in events:
        obj = json.loads(d)
        assert ev == obj["type"], f"event name {ev!r} differs from type {obj['type']!r}"
        if obj["type"] != "ping":
            validate_event(RawMessageStreamEvent, obj)
            data.append(obj)
    types_ = [d["type"] for d in data]
    assert types_[0] == "message_start" and types_[-1] == "message_stop" and types_[-2] == "message_delta", types_
    blocks, current, partial = [], None, {}
    for d in data[1:-2]:
        t = d["type"]
        if t == "content_block_start":
            assert current is None, f"block {d['index']} started while block {current} is open (P-X1)"
            assert d["index"] == len(blocks), f"block indices must be contiguous from 0: got {d['index']} after {len(blocks)} blocks"
            current = d["index"]
            blocks.append(d["content_block"]["type"])
        elif t == "content_block_delta":
            assert d["index"] == current, f"delta for block {d['index']} while block {current} is open"
            dt, bt = d["delta"]["type"], blocks[current]
            allowed = {"text": {"text_delta", "citations_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                       "tool_use": {"input_json_delta"}, "redacted_thinking": set()}[bt]
            assert dt in allowed, f"{dt} inside a {bt} block"
            if dt == "input_json_delta":
                partial[current] = partial.get(current, "") + d["delta"]["partial_json"]
            if bt == "thinking":
                partial.setdefault(("sig", current), []).append(dt)
        elif t == "content_block_stop":
            assert d["index"] == current, f"stop for block {d['index']} while {current} is open"
            current = None
        else:
            raise AssertionError(f"unexpected {t} between message_start and message_delta")
    assert current is None, "a block was never stopped"
    if "thinking" in blocks:
        assert blocks[0] == "thinking", f"thinking block first: {blocks}"
        sig_seq = partial.get(("sig", 0), [])
        assert sig_seq and sig_seq[-1] == "signature_delta", f"thinking block must end with its signature_delta: {sig_seq}"
    stop = data[-2]["delta"]["stop_reason"]
    if tools:
        tool_idx = [i for i, b in enumerate(blocks) if b == "tool_use"]
        assert len(tool_idx) == 2 and [json.loads(partial.get(i) or "{}") for i in tool_idx] == [WEATHER_ARGS, TIME_ARGS], (blocks, partial)
        assert stop == "tool_use", stop
    else:
        assert "text" in blocks and stop == "end_turn", (blocks, stop)
    assert data[-2]["usage"]["output_tokens"] > 0


def check_gemini_grammar(events, tools):
    chunks = []
    for ev, d in events:
        assert ev is None, "Gemini streams carry no event: lines"
        obj = json.loads(d)
        gtypes.GenerateContentResponse.model_validate(obj)
        chunks.append(obj)
    finished = [i for i, c in enumerate(chunks) if any(cd.get("finishReason") for cd in c.get("candidates") or [])]
    assert finished == [len(chunks) - 1], f"only the last chunk carries finishReason: {finished} of {len(chunks)}"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
    parts = [p for c in chunks for cd in c.get("candidates") or [] for p in (cd.get("content") or {}).get("parts") or []]
    kinds = ["thought" if p.get("thought") else "call" if "functionCall" in p else "text" if "text" in p else "other" for p in parts]
    if "thought" in kinds:
        n = kinds.count("thought")
        assert kinds[:n] == ["thought"] * n, f"thought parts come first: {kinds}"
    if tools:
        calls = [p["functionCall"] for p in parts if "functionCall" in p]
        assert [(c["name"], c.get("args")) for c in calls] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)], calls
    else:
        assert "text" in kinds


GRAMMAR_CHECK = {"chat": check_chat_grammar, "responses": check_responses_grammar, "anthropic": check_anthropic_grammar,
                 "gemini": check_gemini_grammar}


@pytest.mark.parametrize("tools", [False, True], ids=["thinking+text", "thinking+parallel-tools"])
@pytest.mark.parametrize("client,provider", PAIRS, ids=PAIR_IDS)  # passthrough pairs check the checkers on the mock's own streams
def test_converted_stream_grammar(gateway, client, provider, tools):
    model = BASE_MODEL[provider].split(".")[0] + (".mock-parallel" if tools else "." + BASE_MODEL[provider].split(".", 1)[1])
    path, body = raw_stream_request(client, model, tools)
    r = gateway.post(path, json=body, headers=auth_headers(client, CLIENT_KEY))
    assert r.status_code == 200, ctx(client, provider, f"{r.status_code}: {r.text[:400]}")
    assert r.headers.get("content-type", "").startswith("text/event-stream")
    try:
        GRAMMAR_CHECK[client](parse_sse(r.text), tools)
    except AssertionError as e:
        raise AssertionError(ctx(client, provider, f"converted stream breaks the {client} grammar: {e}")) from e
    except Exception as e:  # SDK type validation errors and the like
        raise AssertionError(ctx(client, provider, f"converted stream breaks the {client} grammar: {type(e).__name__}: {e}")) from e


ERROR_MARK = {
    "chat": lambda ev, d: isinstance(d, dict) and "error" in d,
    "responses": lambda ev, d: ev in ("error", "response.failed") or (isinstance(d, dict) and d.get("type") in ("error", "response.failed")),
    "anthropic": lambda ev, d: ev == "error" or (isinstance(d, dict) and d.get("type") == "error"),
    "gemini": lambda ev, d: isinstance(d, dict) and "error" in d,
}


@BREAKAGES
@pytest.mark.parametrize("client,provider", CROSS, ids=CROSS_IDS)
def test_broken_upstream_stream_wire(gateway, client, provider, breakage):
    """On the wire: the caller's own error event, then a properly terminated body (the SDKs raise
    at the error event and would not notice a connection that breaks afterwards)."""
    model = BASE_MODEL[provider].split(".")[0] + "." + breakage
    path, body = raw_stream_request(client, model, tools=False, think=False)
    t0 = time.monotonic()
    try:
        r = gateway.post(path, json=body, headers=auth_headers(client, CLIENT_KEY), timeout=httpx.Timeout(20))
    except httpx.HTTPError as e:
        raise AssertionError(ctx(client, provider, f"the stream did not end cleanly: {type(e).__name__}: {e}")) from e
    assert time.monotonic() - t0 < 12, ctx(client, provider, "took too long")
    assert r.status_code == 200, ctx(client, provider, f"{r.status_code}: {r.text[:300]}")
    events = []
    for ev, d in parse_sse(r.text):
        try:
            events.append((ev, json.loads(d)))
        except json.JSONDecodeError:
            events.append((ev, d))
    errors = [(ev, d) for ev, d in events if ERROR_MARK[client](ev, d)]
    assert errors, ctx(client, provider, f"no {client} error event in the stream; its end: {r.text[-300:]!r}")
    if client == "chat":  # nothing after the error but an optional [DONE]
        after = events[events.index(errors[0]) + 1:]
        assert all(d == "[DONE]" for _, d in after), ctx(client, provider, f"events after the error: {after}")


# --------------------------------------------------------------------------------------
# Codex's freeform apply_patch: a Responses `custom` tool, through upstreams that only know
# functions (they see a function taking `input`; the client gets `custom_tool_call` items).
# --------------------------------------------------------------------------------------
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"}}


@MODES
@pytest.mark.parametrize("provider", ["oai", "ant", "gem"])
def test_freeform_tool_round_trip(gateway, mock_upstream, provider, stream):
    client = gateway.openai()
    model = BASE_MODEL[provider]
    first = [{"role": "user", "content": "patch the file"}]

    def ask(items):
        if stream:
            with client.responses.stream(model=model, input=items, tools=[APPLY_PATCH]) as s:
                kinds = {e.type for e in s}
                return s.get_final_response(), kinds
        return client.responses.create(model=model, input=items, tools=[APPLY_PATCH]), set()

    mock_upstream.clear()
    r1, kinds = ask(first)
    calls = [o for o in r1.output if o.type == "custom_tool_call"]
    assert len(calls) == 1 and calls[0].name == "apply_patch", r1.output
    assert calls[0].input == "input-value"  # the mock's value for the function form's `input`
    if stream:
        assert {"response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"} <= kinds, kinds
        assert "response.function_call_arguments.delta" not in kinds
    upstream_tools = json.dumps(mock_upstream.last()["body"])
    assert "apply_patch" in upstream_tools and "lark grammar" in upstream_tools

    back = first + [{"type": "custom_tool_call", "call_id": calls[0].call_id, "name": "apply_patch", "input": calls[0].input},
                    {"type": "custom_tool_call_output", "call_id": calls[0].call_id, "output": "Done, 1 file patched"}]
    r2, _ = ask(back)
    assert r2.output_text.startswith("result: ") and "1 file patched" in r2.output_text, r2.output


WEB_SEARCH = {"type": "web_search", "external_web_access": False}  # Codex's default "cached" search


@MODES
@pytest.mark.parametrize("provider", ["oai", "resp", "ant", "gem"])
def test_codex_hosted_web_search(gateway, mock_upstream, provider, stream):
    """Codex adds OpenAI's hosted web_search to every request unless its `web_search` setting
    is "disabled". Converted for another provider it is left out, named in
    x-gateway-dropped-tools, and the request succeeds; a search OpenAI ran earlier in the
    session (a web_search_call item) is left out of the history. A Responses upstream gets both."""
    client = gateway.openai()
    items = [{"role": "user", "content": "look it up"},
             {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "rust"}},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found it"}]},
             {"role": "user", "content": "thanks"}]
    mock_upstream.clear()
    raw = client.responses.with_raw_response.create(model=BASE_MODEL[provider], input=items, tools=[APPLY_PATCH, WEB_SEARCH],
                                                    stream=stream)
    if stream:
        events = list(raw.parse())
        assert events[-1].type == "response.completed", [e.type for e in events]
        answer = events[-1].response
    else:
        answer = raw.parse()
    assert answer.output, answer
    upstream = json.dumps(mock_upstream.last()["body"])
    assert "apply_patch" in upstream
    if provider == "resp":
        assert raw.headers.get("x-gateway-dropped-tools") is None
        assert '"web_search"' in upstream and "web_search_call" in upstream
    else:
        assert raw.headers.get("x-gateway-dropped-tools") == "web_search"
        assert "web_search" not in upstream and "rust" not in upstream, upstream


# Claude Code's metadata.user_id: ~150 characters (device hash, account and session ids).
CLAUDE_CODE_USER_ID = f"user_{'7f3a' * 16}_account_0b8c2d4e-1f2a-4b3c-9d8e-7f6a5b4c3d2e_session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"


@pytest.mark.parametrize("provider", ["oai", "resp", "ant", "gem"])
def test_claude_code_user_id_reaches_every_upstream(gateway, mock_upstream, provider):
    """OpenAI takes end-user ids of at most 64 characters (the strict mock too): a converted
    request carries a stable digest of a longer one; Claude gets it as it is."""
    client = gateway.anthropic()
    ids = []
    for _ in range(2):
        mock_upstream.clear()
        m = client.messages.create(model=BASE_MODEL[provider], max_tokens=64, metadata={"user_id": CLAUDE_CODE_USER_ID},
                                   messages=[{"role": "user", "content": "hello"}])
        assert m.content[0].text, m
        body = mock_upstream.last()["body"]
        ids.append(body.get("user") or (body.get("metadata") or {}).get("user_id"))
    if provider == "gem":
        assert ids == [None, None]  # Gemini has no end-user field
    elif provider == "ant":
        assert ids == [CLAUDE_CODE_USER_ID] * 2
    else:
        assert ids[0] == ids[1] and len(ids[0]) <= 64, ids


# Claude Code names MCP tools mcp__<server>__<tool>: Anthropic takes 128 characters, OpenAI 64.
LONG_TOOL = "mcp__github_enterprise__list_pull_request_review_comments_for_repository"


@MODES
@pytest.mark.parametrize("provider", ["oai", "resp", "gem"])
def test_tool_names_an_upstream_rejects_are_renamed_for_it(gateway, mock_upstream, provider, stream):
    """A tool name too long for OpenAI goes renamed (the strict mock checks the pattern and length)
    and the call comes back under the client's name; the round trip with the result works."""
    client = gateway.anthropic()
    tools = [{"name": LONG_TOOL, "description": "List review comments",
              "input_schema": {"type": "object", "properties": {"repo": {"type": "string"}}, "required": ["repo"]}}]

    def ask(messages):
        if stream:
            with client.messages.stream(model=BASE_MODEL[provider], max_tokens=256, tools=tools, messages=messages) as s:
                return s.get_final_message()
        return client.messages.create(model=BASE_MODEL[provider], max_tokens=256, tools=tools, messages=messages)

    first = [{"role": "user", "content": "list them"}]
    mock_upstream.clear()
    m = ask(first)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == LONG_TOOL and uses[0].input == {"repo": "repo-value"}, m.content
    sent = json.dumps(mock_upstream.last()["body"])
    assert (LONG_TOOL in sent) == (provider == "gem"), sent  # Gemini takes 128 characters too
    back = first + [{"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "3 comments"}]}]
    m2 = ask(back)
    assert m2.content[-1].text == "result: 3 comments", m2.content


def test_gemini_tool_names_reach_claude_renamed_and_come_back(gateway, mock_upstream):
    """Gemini allows dots and colons in function names, Anthropic does not."""
    client = gateway.genai()
    name = "github.list_prs:v2"
    cfg = gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
        name=name, description="List pull requests", parameters_json_schema={
            "type": "object", "properties": {"repo": {"type": "string"}}, "required": ["repo"]})])])
    mock_upstream.clear()
    r = client.models.generate_content(model=BASE_MODEL["ant"], contents="list prs", config=cfg)
    calls = [p.function_call for p in r.candidates[0].content.parts if p.function_call]
    assert [c.name for c in calls] == [name], r
    assert name not in json.dumps(mock_upstream.last()["body"])


def test_several_choices_are_refused_where_one_would_come_back(gateway, mock_upstream):
    """Chat's n > 1 has no counterpart in the other protocols: a clear 400 instead of one choice."""
    client = gateway.openai()
    mock_upstream.clear()
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=BASE_MODEL["ant"], n=2, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.body["param"] == "n" and "n = 2" in ei.value.message
    assert not mock_upstream.requests()
    # A Chat upstream takes n as it is.
    r = client.chat.completions.create(model=BASE_MODEL["oai"], n=2, messages=[{"role": "user", "content": "hi"}])
    assert mock_upstream.last()["body"]["n"] == 2 and r.choices


def test_prompt_cache_option_marks_claude_breakpoints(gateway, mock_upstream):
    """`options.promptCache` on a claude model: a converted request carries Anthropic cache
    breakpoints on the last tool, the last system block and the last message's last block,
    and the strict mock (checking Anthropic's rules) accepts them."""
    client = gateway.openai()
    tools = [{"type": "function", "function": {"name": n, "description": n, "parameters": {"type": "object", "properties": {}}}}
             for n in ("get_weather", "get_time")]
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello"}]
    for model, cached in (("ant.cached", True), ("ant.claude-sonnet-4-5", False)):
        mock_upstream.clear()
        r = client.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="none")
        assert r.choices[0].message.content
        body = mock_upstream.last("/v1/messages")["body"]
        marks = [body["tools"][-1].get("cache_control"), body["system"][-1].get("cache_control"),
                 body["messages"][-1]["content"][-1].get("cache_control")]
        expected = {"type": "ephemeral"} if cached else None
        assert marks == [expected] * 3, body

    # A client that asks for caching gets it without the option: LiteLLM-style marks on a
    # Chat content part, or OpenAI's prompt_cache_key (Codex always sends one).
    asked = [{"role": "system", "content": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]},
             {"role": "user", "content": "hello"}]
    mock_upstream.clear()
    client.chat.completions.create(model="ant.claude-sonnet-4-5", messages=asked, tools=tools, tool_choice="none")
    body = mock_upstream.last("/v1/messages")["body"]
    assert body["messages"][-1]["content"][-1].get("cache_control") == {"type": "ephemeral"}, body
    mock_upstream.clear()
    client.responses.create(model="ant.claude-sonnet-4-5", input="hello", prompt_cache_key="session-1")
    body = mock_upstream.last("/v1/messages")["body"]
    assert body["messages"][-1]["content"][-1].get("cache_control") == {"type": "ephemeral"}, body


def test_claude_code_billing_line_stays_with_anthropic(gateway, mock_upstream):
    """Claude Code's first system block is `x-anthropic-billing-header: …; cch=<per request>;`.
    Converted for another provider it is left out (it would defeat that provider's
    prefix-based prompt caching); a Claude passthrough keeps it byte for byte."""
    billing = "x-anthropic-billing-header: cc_version=2.1.177.01c; cc_entrypoint=cli; cch=36ee5;"
    system = [{"type": "text", "text": billing}, {"type": "text", "text": "You are terse."}]
    client = gateway.anthropic()
    for model, path in (("oai.gpt-4o-mini", "/v1/chat/completions"), ("gem.gemini-2.5-flash", "generateContent"),
                        ("resp.gpt-5", "/v1/responses"), ("ant.claude-sonnet-4-5", "/v1/messages")):
        mock_upstream.clear()
        r = client.messages.create(model=model, max_tokens=64, system=system, messages=[{"role": "user", "content": "hello"}])
        assert r.content[0].text, model
        sent = json.dumps(mock_upstream.last(path)["body"])
        assert ("x-anthropic-billing-header" in sent) == model.startswith("ant."), (model, sent)
        assert "You are terse." in sent, (model, sent)


def test_audio_input_between_chat_and_gemini(gateway, mock_upstream):
    """Audio (Chat `input_audio`, Gemini `inlineData` audio/*) reaches the upstreams that take
    it, in their own shape; a Claude or Responses upstream, which take none, is a clear 400
    from the gateway before anything is sent."""
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
    b64 = base64.b64encode(wav).decode()
    client = gateway.openai()
    content = [{"type": "text", "text": "What is said?"}, {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}}]
    mock_upstream.clear()
    r = client.chat.completions.create(model="gem.gemini-2.5-flash", messages=[{"role": "user", "content": content}])
    assert r.choices[0].message.content
    parts = mock_upstream.last("generateContent")["body"]["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "audio/wav", "data": b64}} in parts, parts
    for model, words in (("ant.claude-sonnet-4-5", "audio/wav"), ("resp.gpt-5", "no audio input")):
        mock_upstream.clear()
        with pytest.raises(openai.BadRequestError) as ei:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
        assert words in ei.value.message, ei.value.message
        assert not mock_upstream.find(""), "nothing may reach the upstream"

    g = gateway.genai()
    mock_upstream.clear()
    r = g.models.generate_content(model="oai.gpt-4o-mini", contents=[gtypes.Content(role="user", parts=[
        gtypes.Part(text="What is said?"), gtypes.Part.from_bytes(data=wav, mime_type="audio/wav")])])
    assert r.text
    sent = mock_upstream.last("/v1/chat/completions")["body"]["messages"][-1]["content"]
    assert {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}} in sent, sent
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(model="oai.gpt-4o-mini", contents=[gtypes.Content(role="user", parts=[
            gtypes.Part.from_bytes(data=b"OggS" + bytes(8), mime_type="audio/ogg")])])
    assert ei.value.code == 400 and "wav or mp3" in ei.value.message
