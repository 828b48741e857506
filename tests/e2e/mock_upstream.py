#!/usr/bin/env python3
"""Strict mock of the four upstream LLM provider APIs (stdlib only).

    python tests/e2e/mock_upstream.py --port 0      # prints "READY <port>" when listening

Serves, on 127.0.0.1:
  OpenAI Chat        POST /v1/chat/completions
  OpenAI Responses   POST /v1/responses, POST /v1/responses/input_tokens, POST /v1/responses/compact
  Anthropic          POST /v1/messages, POST /v1/messages/count_tokens
  Gemini             POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens
                     (also under /v1/ which is what google-genai >= 3 uses by default)
  Inspection         GET /_mock/requests (JSON list), DELETE /_mock/requests (clear)

Auth, request validation, error bodies, headers and SSE grammars follow the real APIs
(see shared/reference/protocols.md).  Misbehaviour is selected by the upstream model
name (for Gemini the model in the URL):
  mock-error-<status>  that status with the API's real error body (429 adds retry-after: 7)
  mock-hang            never send anything for 60 s, then close
  mock-slow-<ms>       wait <ms> before the headers, then reply normally
  mock-hang-mid        send headers and the first part of the body, then stall 60 s
  mock-truncate        stream stops before its terminal event (non-stream: body cut short)
  mock-garbage         200 with a non-JSON body
  mock-reset           close the socket (TCP RST) without any response
  mock-hang-mid-<ms>   like mock-hang-mid, but stall <ms> and then drop the connection
  mock-too-long        400: the prompt exceeds the context window, in the API's own words
  mock-gemini-compat   (Chat) a Gemini 3 model behind an OpenAI-compatible endpoint: its first tool
                       call carries extra_content.google.thought_signature and the message
                       OpenRouter-style reasoning_details; the next turn must send both back
  mock-malformed       (Gemini) a 200 whose only candidate ends with MALFORMED_FUNCTION_CALL and
                       no content, as Gemini answers when it fails to form a tool call
Otherwise the reply is chosen by the request content, per API and in its real shapes:
  tools declared (and tool_choice allows) -> a call to the first tool (two calls, to the first two
      tools, when the model name contains "parallel"), arguments from its JSON schema:
      string -> "<prop>-value", number/integer -> 1, boolean -> true (required props, else all)
  conversation ends with tool results     -> "result: <outputs joined by ' | '>"
  otherwise                               -> "mock(<api>) reply to: <last user text>"
  reasoning requested (Chat reasoning_effort, Responses reasoning.effort, Anthropic thinking,
      Gemini thinkingConfig) -> reasoning in the API's own place, with a replay token:
      Anthropic signature "sig-"+sha256(thinking); Responses encrypted_content "enc-"+sha256(summary);
      Gemini thoughtSignature base64("gsig-"+sha256(part)) on the first functionCall (else last text part)
Replayed history is validated like the real APIs do (tool call/result pairing, signatures and
encrypted content the mock issued, Gemini Schema keywords, ...); rejections are logged with their
error body under "error" in /_mock/requests.
Any request containing "gw-test-key-" (the gateway's client keys) anywhere is answered
with 400 "LEAKED_CLIENT_KEY".
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

LEAK_MARKER = "gw-test-key-"
OPENAI_KEY_PREFIX = "sk-upstream-"
ANTHROPIC_KEY_PREFIX = "sk-ant-upstream-"
GEMINI_KEY_PREFIX = "AIza-upstream-"

STOP = threading.Event()  # set on shutdown so long sleeps end early
_ids = itertools.count(1)
_records: list[dict] = []
_records_lock = threading.Lock()
MAX_RECORDS = 2000


def next_id() -> int:
    return next(_ids)


# --------------------------------------------------------------------------------------
# Allowlists of top-level request fields (protocols.md + official SDK request params).
# --------------------------------------------------------------------------------------
CHAT_FIELDS = {
    "model", "messages", "stream", "stream_options", "max_completion_tokens", "max_tokens",
    "temperature", "top_p", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
    "functions", "function_call", "response_format", "reasoning_effort", "verbosity", "metadata",
    "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "store", "service_tier", "modalities", "audio", "prediction",
    "web_search_options", "moderation",
}
RESPONSES_FIELDS = {
    "model", "input", "instructions", "previous_response_id", "conversation", "store", "include",
    "max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs", "tools",
    "tool_choice", "parallel_tool_calls", "text", "reasoning", "stream", "stream_options",
    "metadata", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "truncation", "background", "background_options", "service_tier",
    "prompt", "context_management", "moderation", "image", "access_programs",
}
RESPONSES_COUNT_FIELDS = {
    "model", "input", "instructions", "previous_response_id", "conversation", "parallel_tool_calls",
    "reasoning", "text", "tool_choice", "tools", "truncation", "personality",
}
# /v1/responses/compact: the documented fields and what Codex's remote compaction adds.
RESPONSES_COMPACT_FIELDS = {
    "model", "input", "instructions", "previous_response_id", "tools", "parallel_tool_calls", "reasoning", "text",
}
ANTHROPIC_FIELDS = {
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences",
    "stream", "tools", "tool_choice", "thinking", "output_config", "metadata", "cache_control",
    "service_tier", "container", "inference_geo", "diagnostics", "speed", "user_profile_id",
    "workspace_id",
}
ANTHROPIC_BETA_EXTRA = {
    "context_management", "mcp_servers", "compaction", "billing_policy", "fallback_credit_token",
    "fallbacks", "thread",
}
ANTHROPIC_COUNT_FIELDS = {
    "model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
    "cache_control", "speed", "user_profile_id", "workspace_id",
}
ANTHROPIC_COUNT_BETA_EXTRA = {"context_management", "mcp_servers", "compaction", "billing_policy"}
ANTHROPIC_BLOCK_TYPES = {
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
    "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result", "container_upload",
    "mcp_tool_use", "mcp_tool_result", "tool_reference",
}


def _camel_and_snake(names):
    out = set()
    for n in names:
        out.add(n)
        out.add(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), n))
    return out


GEMINI_FIELDS = _camel_and_snake({
    "contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "cachedContent",
    "generationConfig", "serviceTier", "model", "store",
})
GEMINI_COUNT_FIELDS = _camel_and_snake({"contents", "generateContentRequest"})
GEMINI_GENCONFIG_FIELDS = _camel_and_snake({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "imageConfig", "mediaResolution", "audioTimestamp",
})
GEMINI_CONTENT_FIELDS = {"role", "parts"}
GEMINI_PART_DATA = _camel_and_snake({
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult", "toolCall", "toolResponse",
})
GEMINI_PART_META = _camel_and_snake({
    "thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata",
})


# --------------------------------------------------------------------------------------
# Error bodies
# --------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, body, headers: list | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


def oai_error(status, message, type_="invalid_request_error", param=None, code=None):
    return ApiError(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def ant_error(status, type_, message):
    return ApiError(status, {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": f"req_011Mock{next_id():012d}",
    })


def gem_error(status, message, status_str, details=None):
    err = {"code": status, "message": message, "status": status_str}
    if details:
        err["details"] = details
    return ApiError(status, {"error": err})


def json_type_name(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a decimal"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def oxford(values) -> str:
    q = [f"'{v}'" for v in values]
    if len(q) == 1:
        return q[0]
    return ", ".join(q[:-1]) + ", and " + q[-1]


STATUS_OPENAI = {
    400: ("invalid_request_error", None, "Bad request (mock)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: ("permission_denied", "unsupported_country_region_territory", "Country, region, or territory not supported (mock)."),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist or you do not have access to it."),
    409: ("invalid_request_error", None, "Conflict (mock)."),
    422: ("invalid_request_error", None, "Unprocessable entity (mock)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 7s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}
STATUS_ANTHROPIC = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
MSG_ANTHROPIC = {
    "invalid_request_error": "Bad request (mock).",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: {model}",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "This request would exceed the rate limit for your organization of 50 requests per minute.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}
STATUS_GEMINI = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/{model} is not found for API version v1beta, or is not supported for generateContent."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details. Please retry in 7s."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def context_overflow_error(api: str) -> ApiError:
    """What each API answers for a prompt beyond the model's context window."""
    if api == "chat":
        return oai_error(400, "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                              "130000 tokens. Please reduce the length of the messages.",
                         "invalid_request_error", "messages", "context_length_exceeded")
    if api == "responses":
        return oai_error(400, "Your input exceeds the context window of this model. Please adjust your input and try again.",
                         "invalid_request_error", "input", "context_length_exceeded")
    if api == "anthropic":
        return ant_error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    return gem_error(400, "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576).",
                     "INVALID_ARGUMENT", None)


def commanded_error(api: str, status: int, model: str) -> ApiError:
    if api in ("chat", "responses"):
        type_, code, msg = STATUS_OPENAI.get(status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Mock error {status}."))
        err = oai_error(status, msg.format(model=model), type_, None, code)
    elif api == "anthropic":
        type_ = STATUS_ANTHROPIC.get(status, "api_error" if status >= 500 else "invalid_request_error")
        err = ant_error(status, type_, MSG_ANTHROPIC[type_].format(model=model))
    else:
        st, msg = STATUS_GEMINI.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", f"Mock error {status}."))
        details = None
        if status == 429:
            details = [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                     "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
            ]
        err = gem_error(status, msg.format(model=model), st, details)
    if status == 429:
        err.headers.append(("retry-after", "7"))
    return err


# --------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------
def approx_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def all_strings(obj, skip=("model", "role", "type", "id", "call_id", "tool_call_id", "tool_use_id")) -> list[str]:
    out: list[str] = []
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, list):
        for v in obj:
            out.extend(all_strings(v, skip))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k in skip:
                continue
            out.extend(all_strings(v, skip))
    return out


def prompt_tokens(body: dict, keys) -> int:
    text = " ".join(all_strings({k: body.get(k) for k in keys if k in body}))
    n_msgs = 0
    for k in ("messages", "contents"):
        if isinstance(body.get(k), list):
            n_msgs += len(body[k])
    if isinstance(body.get("input"), list):
        n_msgs += len(body["input"])
    return approx_tokens(text) + 3 * max(1, n_msgs) + 3


def text_of_parts(parts, kinds) -> str:
    if isinstance(parts, str):
        return parts
    out = []
    if isinstance(parts, list):
        for p in parts:
            if isinstance(p, dict) and p.get("type") in kinds and isinstance(p.get("text"), str):
                out.append(p["text"])
    return "".join(out)


def last_user_text(api: str, body: dict) -> str:
    if api == "chat":
        for m in reversed(body.get("messages") or []):
            if isinstance(m, dict) and m.get("role") == "user":
                return text_of_parts(m.get("content"), ("text",))
    elif api == "responses":
        inp = body.get("input")
        if isinstance(inp, str):
            return inp
        for it in reversed(inp or []):
            if isinstance(it, dict) and it.get("role") == "user" and it.get("type", "message") == "message":
                return text_of_parts(it.get("content"), ("input_text",))
    elif api == "anthropic":
        for m in reversed(body.get("messages") or []):
            if isinstance(m, dict) and m.get("role") == "user":
                t = text_of_parts(m.get("content"), ("text",))
                if t:
                    return t
    elif api == "gemini":
        for c in reversed(body.get("contents") or []):
            if isinstance(c, dict) and c.get("role", "user") == "user":
                t = "".join(p["text"] for p in c.get("parts") or [] if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought"))
                if t:
                    return t
    return ""


def reply_text(api: str, body: dict) -> str:
    return f"mock({api}) reply to: {last_user_text(api, body)}"


def split_chunks(text: str) -> list[str]:
    pieces = re.findall(r"\S+\s*|\s+", text)
    return pieces or [text]


# --------------------------------------------------------------------------------------
# Replay tokens: what the mock issues and later verifies (reasoning must come back byte-exact)
#   Anthropic thinking signature = "sig-" + sha256(thinking text)          (verified by recomputing)
#   Responses encrypted_content  = "enc-" + sha256(reasoning summary text)  (must be one the mock issued)
#   Gemini thoughtSignature      = base64("gsig-" + sha256(part content))   (must be one the mock issued)
# --------------------------------------------------------------------------------------
GEMINI_DUMMY_SIGNATURES = {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
_issued_lock = threading.Lock()
_issued_enc: dict[str, str] = {}        # encrypted_content -> reasoning item id
_issued_rs: dict[str, str] = {}         # reasoning item id -> encrypted_content
_rs_follower: dict[str, str] = {}       # reasoning item id -> id of the item it produced
_fc_reasoning: dict[str, str] = {}      # function_call / message item id -> its reasoning item id
_issued_gsig: set[bytes] = set()        # decoded Gemini thought signatures
_issued_compat: set[str] = set()        # mock-gemini-compat thought signatures and reasoning_details data


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def anthropic_signature(thinking: str) -> str:
    return "sig-" + sha256_hex(thinking)


def issue_encrypted(rs_id: str, summary: str) -> str:
    enc = "enc-" + sha256_hex(summary)
    with _issued_lock:
        _issued_enc[enc] = rs_id
        _issued_rs[rs_id] = enc
    return enc


def issue_gemini_signature(content) -> str:
    raw = ("gsig-" + sha256_hex(json.dumps(content, sort_keys=True, separators=(",", ":")))).encode()
    with _issued_lock:
        _issued_gsig.add(raw)
    return base64.b64encode(raw).decode()


def gemini_signature_known(sig: str) -> bool:
    if sig in GEMINI_DUMMY_SIGNATURES:
        return True
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        except (binascii.Error, ValueError):
            return False
    with _issued_lock:
        return raw in _issued_gsig


def b64_valid(sig) -> bool:
    if not isinstance(sig, str):
        return False
    for dec in (lambda s: base64.b64decode(s, validate=True),
                lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))):
        try:
            dec(sig)
            if re.fullmatch(r"[A-Za-z0-9+/_=-]*", sig):
                return True
        except (binascii.Error, ValueError):
            pass
    return False


# --------------------------------------------------------------------------------------
# Conversation analysis: the reply is chosen by the request content
# --------------------------------------------------------------------------------------
def gem(d: dict, camel: str, default=None):
    """A Gemini field under its camelCase or snake_case name."""
    if not isinstance(d, dict):
        return default
    if camel in d:
        return d[camel]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return d.get(snake, default)


def declared_tools(api: str, body: dict) -> list[tuple[str, dict]]:
    out = []
    tools = body.get("tools")
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        tools = []
    for t in tools:
        if not isinstance(t, dict):
            continue
        if api == "chat" and t.get("type") == "function" and isinstance(t.get("function"), dict):
            out.append((t["function"].get("name"), t["function"].get("parameters") or {}))
        elif api == "responses" and t.get("type") == "function":
            out.append((t.get("name"), t.get("parameters") or {}))
        elif api == "anthropic" and t.get("type", "custom") == "custom" and isinstance(t.get("input_schema"), dict):
            out.append((t.get("name"), t["input_schema"]))
        elif api == "gemini":
            for fd in gem(t, "functionDeclarations") or []:
                if isinstance(fd, dict):
                    out.append((fd.get("name"), gem(fd, "parameters") or gem(fd, "parametersJsonSchema") or {}))
    if api == "chat" and not out:
        for f in body.get("functions") or []:
            if isinstance(f, dict):
                out.append((f.get("name"), f.get("parameters") or {}))
    return [(n, s if isinstance(s, dict) else {}) for n, s in out if isinstance(n, str)]


def chosen_tools(api: str, body: dict, tools: list, parallel: bool) -> list[tuple[str, dict]]:
    """The tools the mock calls: [] when tool_choice forbids calls, the named tool when forced."""
    if not tools:
        return []
    named = None
    if api == "chat":
        tc = body.get("tool_choice")
        if tc == "none":
            return []
        if isinstance(tc, dict) and isinstance(tc.get("function"), dict):
            named = tc["function"].get("name")
    elif api == "responses":
        tc = body.get("tool_choice")
        if tc == "none":
            return []
        if isinstance(tc, dict) and tc.get("type") == "function":
            named = tc.get("name")
    elif api == "anthropic":
        tc = body.get("tool_choice")
        if isinstance(tc, dict) and tc.get("type") == "none":
            return []
        if isinstance(tc, dict) and tc.get("type") == "tool":
            named = tc.get("name")
    elif api == "gemini":
        fcc = gem(gem(body, "toolConfig") or {}, "functionCallingConfig") or {}
        mode = str(fcc.get("mode", "AUTO")).upper()
        if mode == "NONE":
            return []
        allowed = gem(fcc, "allowedFunctionNames") or []
        if allowed:
            named = allowed[0]
    if named is not None:
        picked = [t for t in tools if t[0] == named] or tools[:1]
    else:
        picked = tools[:1]
    if parallel:
        picked = tools[:2] if len(tools) >= 2 and named is None else picked * 2
    return picked


def _schema_type(s: dict) -> str:
    t = s.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t is None:
        if isinstance(s.get("properties"), dict):
            return "object"
        for k in ("anyOf", "any_of", "oneOf"):
            if isinstance(s.get(k), list) and s[k] and isinstance(s[k][0], dict):
                return _schema_type(s[k][0])
        return "string"
    return str(t).lower()


def value_for(name: str, s, depth=0):
    if not isinstance(s, dict):
        return f"{name}-value"
    if isinstance(s.get("enum"), list) and s["enum"]:
        return s["enum"][0]
    t = _schema_type(s)
    if t in ("integer", "number"):
        return 1
    if t == "boolean":
        return True
    if t == "array":
        return [value_for(name, s.get("items") or {}, depth + 1)] if depth < 3 else []
    if t == "object":
        return args_from_schema(s, depth + 1) if depth < 3 else {}
    if t == "null":
        return None
    return f"{name}-value"


def args_from_schema(schema: dict, depth=0) -> dict:
    """Deterministic arguments: the required properties (all of them when none is required)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    req = schema.get("required")
    names = [n for n in props if n in req] if isinstance(req, list) and req else list(props)
    return {n: value_for(n, props[n], depth) for n in names}


def _result_text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        parts = [p.get("text", "") for p in v if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if parts or not v:
            return "".join(parts)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def trailing_tool_results(api: str, body: dict) -> list[str] | None:
    """The tool outputs when the conversation ends with tool results (and nothing else), else None."""
    if api == "chat":
        msgs = body.get("messages") or []
        out = []
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") in ("tool", "function"):
                out.append(_result_text(m.get("content")))
            else:
                break
        return list(reversed(out)) or None
    if api == "responses":
        inp = body.get("input")
        if not isinstance(inp, list):
            return None
        out = []
        for it in reversed(inp):
            if isinstance(it, dict) and it.get("type") == "function_call_output":
                out.append(_result_text(it.get("output")))
            else:
                break
        return list(reversed(out)) or None
    if api == "anthropic":
        msgs = body.get("messages") or []
        if not msgs or not isinstance(msgs[-1], dict) or msgs[-1].get("role") != "user":
            return None
        c = msgs[-1].get("content")
        if not isinstance(c, list) or not c:
            return None
        if not all(isinstance(b, dict) and b.get("type") == "tool_result" for b in c):
            return None
        return [_result_text(b.get("content", "")) for b in c]
    if api == "gemini":
        contents = body.get("contents") or []
        if isinstance(contents, dict):
            contents = [contents]
        if not contents or not isinstance(contents[-1], dict) or contents[-1].get("role", "user") != "user":
            return None
        parts = contents[-1].get("parts") or []
        frs = [gem(p, "functionResponse") for p in parts if isinstance(p, dict)]
        if not parts or not all(isinstance(fr, dict) for fr in frs):
            return None
        out = []
        for fr in frs:
            resp = fr.get("response")
            if isinstance(resp, dict) and len(resp) == 1 and next(iter(resp)) in ("output", "result", "content"):
                out.append(_result_text(next(iter(resp.values()))))
            else:
                out.append(_result_text(resp))
        return out
    return None


def thinking_request(api: str, body: dict) -> dict | None:
    """{"summary": bool, "show": bool} when the request asks for reasoning, else None."""
    if api == "chat":
        e = body.get("reasoning_effort")
        return {"summary": True, "show": True} if e and e != "none" else None
    if api == "responses":
        r = body.get("reasoning")
        if isinstance(r, dict) and r.get("effort") and r.get("effort") != "none":
            return {"summary": bool(r.get("summary") or r.get("generate_summary")), "show": True}
        return None
    if api == "anthropic":
        th = body.get("thinking")
        if isinstance(th, dict) and th.get("type") in ("enabled", "adaptive"):
            return {"summary": True, "show": th.get("display") != "omitted"}
        return None
    if api == "gemini":
        tc = gem(gem(body, "generationConfig") or {}, "thinkingConfig")
        if not isinstance(tc, dict):
            return None
        include = bool(gem(tc, "includeThoughts"))
        budget = gem(tc, "thinkingBudget")
        level = gem(tc, "thinkingLevel")
        if include or (budget is not None and budget != 0) or level:
            return {"summary": include, "show": include}
        return None
    return None


PREAMBLE = "Let me check that for you."


class Plan:
    """What the mock answers: text, or tool calls (with a text preamble when the model name
    contains "preamble"); optionally with reasoning."""

    def __init__(self, api: str, body: dict, model: str):
        self.api = api
        results = trailing_tool_results(api, body)
        tools = declared_tools(api, body)
        self.calls: list[tuple[str, dict]] = []
        self.text: str | None = None
        if results is not None:
            self.text = "result: " + " | ".join(results)
        else:
            picked = chosen_tools(api, body, tools, "parallel" in model)
            self.calls = [(name, args_from_schema(schema)) for name, schema in picked]
            if not self.calls:
                self.text = reply_text(api, body)
            elif "preamble" in model:  # text before the calls, like Claude's "Let me check."
                self.text = PREAMBLE
        th = thinking_request(api, body)
        self.reasoning: str | None = None
        self.summary = self.show = False
        if th is not None:
            topic = "the tool result" if results is not None else (last_user_text(api, body) or "the request")
            self.reasoning = f"mock reasoning about {topic}: " + (
                f"call {', '.join(n for n, _ in self.calls)}." if self.calls else "answer directly.")
            self.summary, self.show = th["summary"], th["show"]

    @property
    def reasoning_tokens(self) -> int:
        return approx_tokens(self.reasoning) if self.reasoning else 0

    def output_tokens(self) -> int:
        """Visible output (text and call arguments), excluding reasoning."""
        n = sum(approx_tokens(n + json.dumps(a)) for n, a in self.calls)
        return n + (approx_tokens(self.text) if self.text else 0)


def split_json(s: str, n_min=2) -> list[str]:
    """A JSON string in >= n_min pieces (like real argument deltas)."""
    if len(s) < n_min:
        return [s]
    step = max(1, len(s) // 3)
    pieces = [s[i:i + step] for i in range(0, len(s), step)]
    return pieces if len(pieces) >= n_min else [s[:1], s[1:]]


def split_two(text: str) -> list[str]:
    pieces = split_chunks(text)
    if len(pieces) >= 2:
        return pieces
    return [text[: len(text) // 2], text[len(text) // 2:]] if len(text) >= 2 else [text]


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def parse_json_body(api: str, raw: bytes):
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        body = e
    if api in ("chat", "responses"):
        if body is None or isinstance(body, Exception):
            raise oai_error(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)")
        if not isinstance(body, dict):
            raise oai_error(400, f"Invalid type for body: expected an object, but got {json_type_name(body)} instead.", param=None, code="invalid_type")
    elif api == "anthropic":
        if body is None or isinstance(body, Exception):
            detail = str(body) if isinstance(body, Exception) else "empty body"
            raise ant_error(400, "invalid_request_error", f"There was an error parsing the body of your request: {detail}")
        if not isinstance(body, dict):
            raise ant_error(400, "invalid_request_error", "Input should be a valid dictionary or object to extract fields from")
    else:
        if isinstance(body, Exception):
            raise gem_error(400, f"Invalid JSON payload received. {body}.", "INVALID_ARGUMENT")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise gem_error(400, f"Invalid JSON payload received. Expected an object, got {json_type_name(body)}.", "INVALID_ARGUMENT")
    return body


def check_unknown_openai(body: dict, allowed: set, responses_style: bool):
    for k in body:
        if k not in allowed:
            if responses_style:
                raise oai_error(400, f"Unknown parameter: '{k}'.", param=k, code="unknown_parameter")
            raise oai_error(400, f"Unrecognized request argument supplied: {k}")


def check_number(body, key, lo, hi, err):
    if key not in body or body[key] is None:
        return
    v = body[key]
    if not is_num(v):
        raise err(f"Invalid type for '{key}': expected a decimal, but got {json_type_name(v)} instead.", key, "invalid_type")
    if v < lo:
        raise err(f"Invalid '{key}': decimal below minimum value. Expected a value >= {lo}, but got {v} instead.", key, "decimal_below_min_value")
    if v > hi:
        raise err(f"Invalid '{key}': decimal above maximum value. Expected a value <= {hi}, but got {v} instead.", key, "decimal_above_max_value")


def check_int_min(body, key, lo, err):
    if key not in body or body[key] is None:
        return
    v = body[key]
    if not is_int(v):
        raise err(f"Invalid type for '{key}': expected an integer, but got {json_type_name(v)} instead.", key, "invalid_type")
    if v < lo:
        raise err(f"Invalid '{key}': integer below minimum value. Expected a value >= {lo}, but got {v} instead.", key, "integer_below_min_value")


def _oerr(msg, param=None, code=None):
    return oai_error(400, msg, param=param, code=code)


def check_end_user_openai(body):
    """OpenAI takes end-user ids of at most 64 characters."""
    for key in ("user", "safety_identifier"):
        v = body.get(key)
        if isinstance(v, str) and len(v) > 64:
            raise _oerr(f"Invalid '{key}': string too long. Expected a string with maximum length 64, but got a string with length {len(v)} instead.",
                        key, "string_above_max_length")


def check_model_openai(body):
    if "model" not in body or body["model"] is None:
        raise _oerr("you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise _oerr(f"Invalid type for 'model': expected a string, but got {json_type_name(body['model'])} instead.", "model", "invalid_type")
    if not body["model"]:
        raise _oerr("you must provide a model parameter")


def check_stream_flags(body, allow_include_usage=True):
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise _oerr(f"Invalid type for 'stream': expected a boolean, but got {json_type_name(body['stream'])} instead.", "stream", "invalid_type")
    so = body.get("stream_options")
    if so is not None:
        if not body.get("stream"):
            raise _oerr("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        if not isinstance(so, dict):
            raise _oerr(f"Invalid type for 'stream_options': expected an object, but got {json_type_name(so)} instead.", "stream_options", "invalid_type")
        allowed = {"include_usage", "include_obfuscation"} if allow_include_usage else {"include_obfuscation"}
        for k in so:
            if k not in allowed:
                raise _oerr(f"Unknown parameter: 'stream_options.{k}'.", f"stream_options.{k}", "unknown_parameter")


OPENAI_EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
CHAT_ROLES = ["system", "assistant", "user", "function", "tool", "developer"]
CHAT_PART_TYPES = {
    "user": ["text", "image_url", "input_audio", "file"],
    "system": ["text"],
    "developer": ["text"],
    "assistant": ["text", "refusal"],
    "tool": ["text"],
}


JSON_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


def json_schema_problem(schema, path=()):
    """(context, bad type value) for the first `type` that is not a JSON Schema type (e.g. Gemini's
    upper-case "OBJECT"), else None. Walks properties, items, combinators and definitions."""
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    if t is not None:
        for v in (t if isinstance(t, list) else [t]):
            if v not in JSON_SCHEMA_TYPES:
                return path, v
    subs = []
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(schema.get(key), dict):
            subs += [((key, k), v) for k, v in schema[key].items()]
    for key in ("items", "additionalProperties", "not", "contains"):
        if isinstance(schema.get(key), dict):
            subs.append(((key,), schema[key]))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            subs += [((key, i), v) for i, v in enumerate(schema[key])]
    for rel, sub in subs:
        found = json_schema_problem(sub, path + rel)
        if found:
            return found
    return None


def check_openai_tool_schema(name, params, param_path):
    if params is None:
        return
    if not isinstance(params, dict) or params.get("type") != "object":
        t = params.get("type") if isinstance(params, dict) else None
        raise _oerr(f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{t}\"'.",
                    param_path, "invalid_function_parameters")
    found = json_schema_problem(params)
    if found:
        raise _oerr(f"Invalid schema for function '{name}': In context={found[0]!r}, {json.dumps(found[1])} is not valid under any of the given schemas.",
                    param_path, "invalid_function_parameters")


def issue_compat_signature() -> str:
    sig = base64.b64encode(f"compat-{uuid.uuid4().hex}".encode()).decode()
    with _issued_lock:
        _issued_compat.add(sig)
    return sig


def validate_gemini_compat_replay(msgs: list):
    """mock-gemini-compat: in the current turn (after the last user message), each assistant
    message with tool calls must bring back the signature on its first call and its
    reasoning_details, as Gemini 3 behind an OpenAI-compatible endpoint requires."""
    last_user = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    for i, m in enumerate(msgs[last_user + 1:], last_user + 1):
        if not isinstance(m, dict) or m.get("role") != "assistant" or not m.get("tool_calls"):
            continue
        first = m["tool_calls"][0]
        sig = ((first.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        with _issued_lock:
            known = sig in _issued_compat
            details_known = any(isinstance(d, dict) and d.get("data") in _issued_compat for d in m.get("reasoning_details") or [])
        if not known:
            name = (first.get("function") or {}).get("name")
            raise _oerr("Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
                        f"correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
                        f"function call `default_api:{name}` , position {i + 1}. Please refer to "
                        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", None, None)
        if not details_known:
            raise _oerr(f"messages[{i}].reasoning_details: the reasoning of this turn was not sent back.", None, None)


def validate_chat(body: dict):
    check_unknown_openai(body, CHAT_FIELDS, False)
    check_model_openai(body)
    check_end_user_openai(body)
    if body.get("model") == "mock-gemini-compat" and isinstance(body.get("messages"), list):
        validate_gemini_compat_replay(body["messages"])
    if "messages" not in body or body["messages"] is None:
        raise _oerr("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    msgs = body["messages"]
    if not isinstance(msgs, list):
        raise _oerr(f"Invalid type for 'messages': expected an array of objects, but got {json_type_name(msgs)} instead.", "messages", "invalid_type")
    if not msgs:
        raise _oerr("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array")
    pending: list[str] = []  # tool_call ids of the last assistant turn not yet answered by a tool message

    def unanswered(i):
        return _oerr("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                     f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                     f"messages.[{i}].role", None)

    for i, m in enumerate(msgs):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _oerr(f"Invalid type for '{p}': expected an object, but got {json_type_name(m)} instead.", p, "invalid_type")
        role = m.get("role")
        if role is None:
            raise _oerr(f"Missing required parameter: '{p}.role'.", f"{p}.role", "missing_required_parameter")
        if role not in CHAT_ROLES:
            raise _oerr(f"Invalid value: '{role}'. Supported values are: {oxford(CHAT_ROLES)}.", f"{p}.role", "invalid_value")
        content = m.get("content")
        if role == "assistant":
            if pending:
                raise unanswered(i)
            has_calls = bool(m.get("tool_calls")) or bool(m.get("function_call"))
            if content is None and not has_calls and "refusal" not in m and "audio" not in m:
                raise _oerr(f"Invalid value for '{p}.content': expected a string, got null.", f"{p}.content", None)
            tc = m.get("tool_calls")
            if tc is not None:
                if not isinstance(tc, list):
                    raise _oerr(f"Invalid type for '{p}.tool_calls': expected an array of objects, but got {json_type_name(tc)} instead.", f"{p}.tool_calls", "invalid_type")
                for j, call in enumerate(tc):
                    if not isinstance(call, dict) or not isinstance(call.get("id"), str):
                        raise _oerr(f"Missing required parameter: '{p}.tool_calls[{j}].id'.", f"{p}.tool_calls[{j}].id", "missing_required_parameter")
                    if len(call["id"]) > 40:
                        raise _oerr(f"Invalid '{p}.tool_calls[{j}].id': string too long. Expected a string with maximum length 40, but got a string with length {len(call['id'])} instead.",
                                    f"{p}.tool_calls[{j}].id", "string_above_max_length")
                    fn = call.get("function") if call.get("type", "function") == "function" else call.get("custom")
                    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                        raise _oerr(f"Missing required parameter: '{p}.tool_calls[{j}].function'.", f"{p}.tool_calls[{j}].function", "missing_required_parameter")
                    if call.get("type", "function") == "function" and not isinstance(fn.get("arguments"), str):
                        raise _oerr(f"Invalid type for '{p}.tool_calls[{j}].function.arguments': expected a string, but got {json_type_name(fn.get('arguments'))} instead.", f"{p}.tool_calls[{j}].function.arguments", "invalid_type")
                pending = [call["id"] for call in tc]
        elif role == "tool":
            if "tool_call_id" not in m:
                raise _oerr(f"Missing required parameter: '{p}.tool_call_id'.", f"{p}.tool_call_id", "missing_required_parameter")
            if m["tool_call_id"] not in pending:
                raise _oerr("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", f"{p}.role", None)
            pending.remove(m["tool_call_id"])
            if content is None:
                raise _oerr(f"Missing required parameter: '{p}.content'.", f"{p}.content", "missing_required_parameter")
        elif role != "function":
            if pending:
                raise unanswered(i)
            if "content" not in m:
                raise _oerr(f"Missing required parameter: '{p}.content'.", f"{p}.content", "missing_required_parameter")
        if role in CHAT_PART_TYPES and content is not None:
            if isinstance(content, list):
                allowed = CHAT_PART_TYPES[role]
                for j, part in enumerate(content):
                    pp = f"{p}.content[{j}]"
                    if not isinstance(part, dict):
                        raise _oerr(f"Invalid type for '{pp}': expected an object, but got {json_type_name(part)} instead.", pp, "invalid_type")
                    t = part.get("type")
                    if t is None:
                        raise _oerr(f"Missing required parameter: '{pp}.type'.", f"{pp}.type", "missing_required_parameter")
                    if t not in allowed:
                        raise _oerr(f"Invalid value: '{t}'. Supported values are: {oxford(allowed)}.", f"{pp}.type", "invalid_value")
                    if t == "text" and not isinstance(part.get("text"), str):
                        raise _oerr(f"Missing required parameter: '{pp}.text'.", f"{pp}.text", "missing_required_parameter")
                    if t == "image_url" and not (isinstance(part.get("image_url"), dict) and isinstance(part["image_url"].get("url"), str)):
                        raise _oerr(f"Missing required parameter: '{pp}.image_url.url'.", f"{pp}.image_url.url", "missing_required_parameter")
                    if t == "input_audio":
                        audio = part.get("input_audio")
                        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
                            raise _oerr(f"Missing required parameter: '{pp}.input_audio.data'.", f"{pp}.input_audio.data", "missing_required_parameter")
                        if audio.get("format") not in ("wav", "mp3"):
                            raise _oerr(f"Invalid value: '{audio.get('format')}'. Supported values are: 'wav' and 'mp3'.", f"{pp}.input_audio.format", "invalid_value")
            elif not isinstance(content, str):
                raise _oerr(f"Invalid type for '{p}.content': expected one of a string or array of objects, but got {json_type_name(content)} instead.", f"{p}.content", "invalid_type")
    check_stream_flags(body)
    check_number(body, "temperature", 0, 2, _oerr)
    check_number(body, "top_p", 0, 1, _oerr)
    check_number(body, "presence_penalty", -2, 2, _oerr)
    check_number(body, "frequency_penalty", -2, 2, _oerr)
    check_int_min(body, "max_tokens", 1, _oerr)
    check_int_min(body, "max_completion_tokens", 1, _oerr)
    check_int_min(body, "n", 1, _oerr)
    if body.get("tools") is not None:
        tools = body["tools"]
        if not isinstance(tools, list):
            raise _oerr(f"Invalid type for 'tools': expected an array of objects, but got {json_type_name(tools)} instead.", "tools", "invalid_type")
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or t.get("type") not in ("function", "custom"):
                raise _oerr(f"Invalid value: '{t.get('type') if isinstance(t, dict) else t}'. Supported values are: 'function' and 'custom'.", f"tools[{i}].type", "invalid_value")
            inner = t.get(t["type"])
            if not isinstance(inner, dict) or not isinstance(inner.get("name"), str):
                raise _oerr(f"Missing required parameter: 'tools[{i}].{t['type']}'.", f"tools[{i}].{t['type']}", "missing_required_parameter")
    for i, t in enumerate(body.get("tools") or []):
        if t.get("type") == "function":
            check_openai_tool_schema(t["function"]["name"], t["function"].get("parameters"), f"tools[{i}].function.parameters")
    eff = body.get("reasoning_effort")
    if eff is not None and eff not in OPENAI_EFFORTS:
        raise _oerr(f"Invalid value: '{eff}'. Supported values are: {oxford(OPENAI_EFFORTS)}.", "reasoning_effort", "invalid_value")
    if eff is not None and body.get("max_tokens") is not None:  # reasoning models take max_completion_tokens only (P-C4)
        raise _oerr("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                    "max_tokens", "unsupported_parameter")
    for i, t in enumerate(body.get("tools") or []):
        name = (t.get(t.get("type")) or {}).get("name")
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
            raise _oerr(f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                        f"tools[{i}].function.name", "invalid_value")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or len(stop) > 4:
            raise _oerr("Invalid 'stop': expected a string or an array of at most 4 strings.", "stop", "invalid_value")


RESP_ROLES = ["assistant", "system", "developer", "user"]
RESP_ITEM_TYPES = [
    "message", "function_call", "function_call_output", "reasoning", "item_reference",
    "custom_tool_call", "custom_tool_call_output", "file_search_call", "web_search_call",
    "computer_call", "computer_call_output", "image_generation_call", "code_interpreter_call",
    "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
    "apply_patch_call", "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "mcp_call", "compaction",
]


def validate_responses(body: dict, count_only=False, compact=False):
    fields = RESPONSES_COMPACT_FIELDS if compact else RESPONSES_COUNT_FIELDS if count_only else RESPONSES_FIELDS
    check_unknown_openai(body, fields, True)
    check_end_user_openai(body)
    if "model" not in body or body["model"] is None:
        if not count_only:
            raise _oerr("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    elif not isinstance(body["model"], str):
        raise _oerr(f"Invalid type for 'model': expected a string, but got {json_type_name(body['model'])} instead.", "model", "invalid_type")
    inp = body.get("input")
    if inp is None:
        if not any(body.get(k) for k in ("previous_response_id", "conversation", "prompt")):
            raise _oerr("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    elif isinstance(inp, list):
        for i, it in enumerate(inp):
            p = f"input[{i}]"
            if not isinstance(it, dict):
                raise _oerr(f"Invalid type for '{p}': expected an object, but got {json_type_name(it)} instead.", p, "invalid_type")
            t = it.get("type")
            if t is None and "role" not in it:
                raise _oerr(f"Missing required parameter: '{p}.type'.", f"{p}.type", "missing_required_parameter")
            t = t or "message"
            if t not in RESP_ITEM_TYPES:
                raise _oerr(f"Invalid value: '{t}'. Supported values are: {oxford(RESP_ITEM_TYPES)}.", f"{p}.type", "invalid_value")
            if t == "message":
                role = it.get("role")
                if role is None:
                    raise _oerr(f"Missing required parameter: '{p}.role'.", f"{p}.role", "missing_required_parameter")
                if role not in RESP_ROLES:
                    raise _oerr(f"Invalid value: '{role}'. Supported values are: {oxford(RESP_ROLES)}.", f"{p}.role", "invalid_value")
                c = it.get("content")
                if c is None:
                    raise _oerr(f"Missing required parameter: '{p}.content'.", f"{p}.content", "missing_required_parameter")
                if isinstance(c, list):
                    allowed = ["output_text", "refusal"] if role == "assistant" else ["input_text", "input_image", "input_file"]
                    for j, part in enumerate(c):
                        pp = f"{p}.content[{j}]"
                        if not isinstance(part, dict):
                            raise _oerr(f"Invalid type for '{pp}': expected an object, but got {json_type_name(part)} instead.", pp, "invalid_type")
                        if part.get("type") not in allowed:
                            raise _oerr(f"Invalid value: '{part.get('type')}'. Supported values are: {' and '.join(repr(a) for a in allowed) if len(allowed) == 2 else oxford(allowed)}.", pp, "invalid_value")
                        if part["type"] in ("input_text", "output_text") and not isinstance(part.get("text"), str):
                            raise _oerr(f"Missing required parameter: '{pp}.text'.", f"{pp}.text", "missing_required_parameter")
                elif not isinstance(c, str):
                    raise _oerr(f"Invalid type for '{p}.content': expected one of a string or array of input content items, but got {json_type_name(c)} instead.", f"{p}.content", "invalid_type")
            elif t == "function_call":
                for k in ("call_id", "name", "arguments"):
                    if not isinstance(it.get(k), str):
                        raise _oerr(f"Missing required parameter: '{p}.{k}'.", f"{p}.{k}", "missing_required_parameter")
            elif t == "function_call_output":
                if not isinstance(it.get("call_id"), str):
                    raise _oerr(f"Missing required parameter: '{p}.call_id'.", f"{p}.call_id", "missing_required_parameter")
                if "output" not in it:
                    raise _oerr(f"Missing required parameter: '{p}.output'.", f"{p}.output", "missing_required_parameter")
    elif not isinstance(inp, str):
        raise _oerr(f"Invalid type for 'input': expected one of a string or array of input items, but got {json_type_name(inp)} instead.", "input", "invalid_type")
    if isinstance(inp, list):
        validate_responses_replay(body, inp)
    r = body.get("reasoning")
    if r is not None:
        if not isinstance(r, dict):
            raise _oerr(f"Invalid type for 'reasoning': expected an object, but got {json_type_name(r)} instead.", "reasoning", "invalid_type")
        for k in r:
            if k not in ("effort", "summary", "generate_summary", "context", "mode"):
                raise _oerr(f"Unknown parameter: 'reasoning.{k}'.", f"reasoning.{k}", "unknown_parameter")
        if r.get("effort") is not None and r["effort"] not in OPENAI_EFFORTS[:-1]:
            raise _oerr(f"Invalid value: '{r['effort']}'. Supported values are: {oxford(OPENAI_EFFORTS[:-1])}.", "reasoning.effort", "invalid_value")
        if r.get("summary") is not None and r["summary"] not in ("auto", "concise", "detailed"):
            raise _oerr(f"Invalid value: '{r['summary']}'. Supported values are: 'auto', 'concise', and 'detailed'.", "reasoning.summary", "invalid_value")
    if not count_only:
        check_stream_flags(body, allow_include_usage=False)
        check_number(body, "temperature", 0, 2, _oerr)
        check_number(body, "top_p", 0, 1, _oerr)
        check_int_min(body, "max_output_tokens", 16, _oerr)
    if body.get("instructions") is not None and not isinstance(body["instructions"], (str, list)):
        raise _oerr(f"Invalid type for 'instructions': expected a string, but got {json_type_name(body['instructions'])} instead.", "instructions", "invalid_type")
    if body.get("tools") is not None:
        tools = body["tools"]
        if not isinstance(tools, list):
            raise _oerr(f"Invalid type for 'tools': expected an array of objects, but got {json_type_name(tools)} instead.", "tools", "invalid_type")
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or not isinstance(t.get("type"), str):
                raise _oerr(f"Missing required parameter: 'tools[{i}].type'.", f"tools[{i}].type", "missing_required_parameter")
            if t["type"] == "function" and not isinstance(t.get("name"), str):
                raise _oerr(f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name", "missing_required_parameter")
            if t["type"] in ("function", "custom") and not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", t.get("name") or ""):
                raise _oerr(f"Invalid 'tools[{i}].name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                            f"tools[{i}].name", "invalid_value")
            if t["type"] == "function":
                check_openai_tool_schema(t["name"], t.get("parameters"), f"tools[{i}].parameters")


def validate_responses_replay(body: dict, inp: list):
    """Stateless replay rules of the real API: every function_call has its output, every
    function_call_output its call; reasoning items come back with the encrypted content the
    mock issued, right before the item they produced (P-R2)."""
    calls, outputs = {}, {}
    rs_ids = set()
    for i, it in enumerate(inp):
        if not isinstance(it, dict):
            continue
        t = it.get("type")
        if t == "function_call":
            calls.setdefault(it.get("call_id"), i)
        elif t == "function_call_output":
            outputs.setdefault(it.get("call_id"), i)
            if it.get("call_id") not in calls:
                raise _oerr(f"No tool call found for function call output with call_id {it.get('call_id')}.", "input", None)
        elif t == "reasoning":
            p = f"input[{i}]"
            rid = it.get("id")
            if not isinstance(it.get("summary"), list):
                raise _oerr(f"Missing required parameter: '{p}.summary'.", f"{p}.summary", "missing_required_parameter")
            for j, sm in enumerate(it["summary"]):
                if not isinstance(sm, dict) or sm.get("type") != "summary_text" or not isinstance(sm.get("text"), str):
                    raise _oerr(f"Invalid value for '{p}.summary[{j}]': expected a summary_text object.", f"{p}.summary[{j}]", "invalid_value")
            enc = it.get("encrypted_content")
            with _issued_lock:
                known_enc = _issued_enc.get(enc) if isinstance(enc, str) else None
                stored = rid in _issued_rs
                follower = _rs_follower.get(rid)
            if enc is not None:
                if known_enc is None:
                    shown = enc[:4] + "..." + enc[-4:] if isinstance(enc, str) and len(enc) > 8 else enc
                    raise _oerr(f"The encrypted content {shown} could not be verified. Reason: Encrypted content could not be decrypted or parsed.",
                                None, "invalid_encrypted_content")
            elif body.get("store") is False:
                raise ApiError(404, {"error": {"message": f"Item with id '{rid}' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.",
                                               "type": "invalid_request_error", "param": "input", "code": None}})
            elif not stored:
                raise ApiError(404, {"error": {"message": f"Item with id '{rid}' not found.", "type": "invalid_request_error",
                                               "param": "input", "code": None}})
            nxt = inp[i + 1] if i + 1 < len(inp) else None
            if follower and not (isinstance(nxt, dict) and (nxt.get("type") == "function_call" or
                                                             (nxt.get("type", "message") == "message" and nxt.get("role") == "assistant"))):
                raise _oerr(f"Item '{rid}' of type 'reasoning' was provided without its required following item.", "input", None)
            rs_ids.add(rid)
    for i, it in enumerate(inp):
        if isinstance(it, dict) and it.get("type") == "function_call" and it.get("id"):
            with _issued_lock:
                need = _fc_reasoning.get(it["id"])
            if need and need not in rs_ids:
                raise _oerr(f"Item '{it['id']}' of type 'function_call' was provided without its required 'reasoning' item: '{need}'.", "input", None)
    for cid in calls:
        if cid not in outputs:
            raise _oerr(f"No tool output found for function call {cid}.", "input", None)


def _aerr(msg):
    return ant_error(400, "invalid_request_error", msg)


def prefill_refused(model: str) -> bool:
    """Claude Opus/Sonnet 4.6 and later refuse a conversation ending with the assistant."""
    m = re.match(r"claude-(?:[a-z]+-)?(\d+)[-.](\d+)", model) or re.match(r"claude-(?:[a-z]+-)?(\d+)(?!\d)", model)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2)) if m.lastindex and m.lastindex >= 2 else 0
    return major >= 5 or (major == 4 and minor >= 6 and minor < 100)


def validate_anthropic(body: dict, beta: bool, count_only=False):
    allowed = set(ANTHROPIC_COUNT_FIELDS if count_only else ANTHROPIC_FIELDS)
    if beta:
        allowed |= ANTHROPIC_COUNT_BETA_EXTRA if count_only else ANTHROPIC_BETA_EXTRA
    for k in body:
        if k not in allowed:
            raise _aerr(f"{k}: Extra inputs are not permitted")
    if "model" not in body:
        raise _aerr("model: Field required")
    if not isinstance(body["model"], str):
        raise _aerr("model: Input should be a valid string")
    md = body.get("metadata")
    if md is not None:
        if not isinstance(md, dict):
            raise _aerr("metadata: Input should be a valid dictionary")
        for k, v in md.items():
            if k != "user_id":
                raise _aerr(f"metadata.{k}: Extra inputs are not permitted")
            if v is not None and not isinstance(v, str):
                raise _aerr("metadata.user_id: Input should be a valid string")
            if isinstance(v, str) and len(v) > 256:
                raise _aerr("metadata.user_id: String should have at most 256 characters")
    if not count_only:
        if "max_tokens" not in body:
            raise _aerr("max_tokens: Field required")
        mt = body["max_tokens"]
        if not is_int(mt):
            raise _aerr("max_tokens: Input should be a valid integer")
        if mt < 1:
            raise _aerr("max_tokens: Input should be greater than or equal to 1")
    if "messages" not in body:
        raise _aerr("messages: Field required")
    msgs = body["messages"]
    if not isinstance(msgs, list):
        raise _aerr("messages: Input should be a valid list")
    if not msgs:
        raise _aerr("messages: at least one message is required")
    prev = None
    for i, m in enumerate(msgs):
        p = f"messages.{i}"
        if not isinstance(m, dict):
            raise _aerr(f"{p}: Input should be a valid dictionary or object to extract fields from")
        for k in m:
            if k not in ("role", "content"):
                raise _aerr(f"{p}.{k}: Extra inputs are not permitted")
        if "role" not in m:
            raise _aerr(f"{p}.role: Field required")
        role = m["role"]
        if role not in ("user", "assistant"):
            raise _aerr(f"{p}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _aerr('messages: first message must use the "user" role')
        if prev == role:
            raise _aerr(f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row')
        prev = role
        if "content" not in m:
            raise _aerr(f"{p}.content: Field required")
        c = m["content"]
        if isinstance(c, str):
            if not c and not (role == "assistant" and i == len(msgs) - 1):
                raise _aerr(f"{p}.content: messages must have non-empty content except for the optional final assistant message")
        elif isinstance(c, list):
            if not c and not (role == "assistant" and i == len(msgs) - 1):
                raise _aerr(f"{p}.content: messages must have non-empty content except for the optional final assistant message")
            for j, b in enumerate(c):
                bp = f"{p}.content.{j}"
                if not isinstance(b, dict):
                    raise _aerr(f"{bp}: Input should be a valid dictionary")
                t = b.get("type")
                if t not in ANTHROPIC_BLOCK_TYPES:
                    raise _aerr(f"{bp}: Input tag '{t}' found using 'type' does not match any of the expected tags: {', '.join(repr(x) for x in sorted(ANTHROPIC_BLOCK_TYPES))}")
                if t == "text":
                    if not isinstance(b.get("text"), str):
                        raise _aerr(f"{bp}.text: Field required")
                    if not b["text"]:
                        raise _aerr(f"{p}: text content blocks must be non-empty")
                if t == "tool_use":
                    if not isinstance(b.get("id"), str) or not re.fullmatch(r"[a-zA-Z0-9_-]+", b["id"]):
                        raise _aerr(f"{bp}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
                    if not isinstance(b.get("input"), dict):
                        raise _aerr(f"{bp}.input: Input should be a valid dictionary")
                if t == "tool_result" and not isinstance(b.get("tool_use_id"), str):
                    raise _aerr(f"{bp}.tool_use_id: Field required")
        else:
            raise _aerr(f"{p}.content: Input should be a valid list")
    if msgs and msgs[-1].get("role") == "assistant" and not count_only and prefill_refused(body["model"]):
        raise _aerr("This model does not support assistant message prefill. The conversation must end with a user message.")
    if "system" in body:
        s = body["system"]
        if isinstance(s, list):
            for j, b in enumerate(s):
                if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
                    raise _aerr(f"system.{j}: Input should be a valid dictionary or object with type 'text'")
        elif not isinstance(s, str):
            raise _aerr("system: Input should be a valid string")
    if "temperature" in body:
        t = body["temperature"]
        if not is_num(t):
            raise _aerr("temperature: Input should be a valid number")
        if t < 0:
            raise _aerr("temperature: Input should be greater than or equal to 0")
        if t > 1:
            raise _aerr("temperature: Input should be less than or equal to 1")
    if "top_p" in body and (not is_num(body["top_p"]) or not 0 <= body["top_p"] <= 1):
        raise _aerr("top_p: Input should be a valid number between 0 and 1")
    if "top_k" in body and (not is_int(body["top_k"]) or body["top_k"] < 0):
        raise _aerr("top_k: Input should be a valid integer greater than or equal to 0")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _aerr("stream: Input should be a valid boolean")
    if "stop_sequences" in body and (not isinstance(body["stop_sequences"], list) or not all(isinstance(x, str) for x in body["stop_sequences"])):
        raise _aerr("stop_sequences: Input should be a valid list of strings")
    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list):
            raise _aerr("tools: Input should be a valid list")
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise _aerr(f"tools.{i}.name: Field required")
            if t.get("type", "custom") == "custom" and not isinstance(t.get("input_schema"), dict):
                raise _aerr(f"tools.{i}.custom.input_schema: Field required")
            if t.get("type", "custom") == "custom":
                if not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", t["name"]):
                    raise _aerr(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
                if t["input_schema"].get("type") != "object":
                    raise _aerr(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
                if json_schema_problem(t["input_schema"]):
                    raise _aerr(f"tools.{i}.custom.input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12 "
                                "(https://json-schema.org/draft/2020-12). Learn more about tool use at https://docs.claude.com/en/docs/tool-use.")
    th = body.get("thinking")
    if isinstance(th, dict) and th.get("type") == "enabled" and not count_only:
        bt = th.get("budget_tokens")
        if not is_int(bt) or bt < 1024:
            raise _aerr("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if bt >= body["max_tokens"]:
            raise _aerr("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size")
    if isinstance(th, dict) and th.get("type") not in (None, "enabled", "adaptive", "disabled"):
        raise _aerr(f"thinking: Input tag '{th.get('type')}' found using 'type' does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'")
    tc = body.get("tool_choice")
    if isinstance(th, dict) and th.get("type") in ("enabled", "adaptive") and isinstance(tc, dict) and tc.get("type") in ("any", "tool"):
        raise _aerr("Thinking may not be enabled when tool_choice forces tool use.")
    validate_anthropic_replay(body)


TOOL_ID_RE = re.compile(r"[a-zA-Z0-9_-]+")


def validate_anthropic_replay(body: dict):
    """Thinking signatures verify; tool_use blocks are answered by tool_result blocks at the
    start of the next user message (P-A2); with thinking on, the assistant turn of an ongoing
    tool loop starts with its thinking block."""
    msgs = body["messages"]
    for i, m in enumerate(msgs):
        c = m["content"]
        if not isinstance(c, list):
            continue
        for j, b in enumerate(c):
            t = b.get("type")
            if t == "thinking":
                if m["role"] != "assistant":
                    raise _aerr(f"messages.{i}.content.{j}: `thinking` blocks are only allowed in `assistant` messages")
                if not isinstance(b.get("thinking"), str):
                    raise _aerr(f"messages.{i}.content.{j}.thinking.thinking: Field required")
                if not isinstance(b.get("signature"), str):
                    raise _aerr(f"messages.{i}.content.{j}.thinking.signature: Field required")
                if b["signature"] != anthropic_signature(b["thinking"]):
                    raise _aerr(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            elif t == "redacted_thinking" and not isinstance(b.get("data"), str):
                raise _aerr(f"messages.{i}.content.{j}.redacted_thinking.data: Field required")
            elif t == "tool_result":
                if not TOOL_ID_RE.fullmatch(b["tool_use_id"]):
                    raise _aerr(f"messages.{i}.content.{j}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
                rc = b.get("content")
                if isinstance(rc, list):
                    for k, x in enumerate(rc):
                        if isinstance(x, dict) and x.get("type") == "text" and not x.get("text"):
                            raise _aerr(f"messages.{i}.content.{j}.tool_result.content.{k}: text content blocks must be non-empty")
    for i, m in enumerate(msgs):
        c = m["content"] if isinstance(m["content"], list) else []
        uses = [b["id"] for b in c if b.get("type") == "tool_use"]
        if m["role"] == "assistant" and uses and i + 1 < len(msgs):
            nc = msgs[i + 1]["content"] if isinstance(msgs[i + 1]["content"], list) else []
            leading = []
            for b in nc:
                if b.get("type") != "tool_result":
                    break
                leading.append(b["tool_use_id"])
            missing = [u for u in uses if u not in leading]
            if missing:
                raise _aerr(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}. "
                            "Each `tool_use` block must have a corresponding `tool_result` block in the next message.")
        if m["role"] == "user":
            prev = msgs[i - 1]["content"] if i > 0 and isinstance(msgs[i - 1]["content"], list) else []
            prev_uses = {b.get("id") for b in prev if b.get("type") == "tool_use"}
            for j, b in enumerate(c):
                if b.get("type") == "tool_result" and b["tool_use_id"] not in prev_uses:
                    raise _aerr(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {b['tool_use_id']}. "
                                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
    th = body.get("thinking")
    if isinstance(th, dict) and th.get("type") in ("enabled", "adaptive") and len(msgs) >= 2:
        last = msgs[-1]
        lc = last["content"] if isinstance(last["content"], list) else []
        if last["role"] == "user" and any(b.get("type") == "tool_result" for b in lc):
            i = len(msgs) - 2
            ac = msgs[i]["content"] if isinstance(msgs[i]["content"], list) else [{"type": "text"}]
            if msgs[i]["role"] == "assistant" and ac and ac[0].get("type") not in ("thinking", "redacted_thinking"):
                raise _aerr(f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{ac[0].get('type')}`. "
                            "When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the "
                            "lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from "
                            "previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at "
                            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking")


def _gunknown(name, where=None):
    msg = f'Invalid JSON payload received. Unknown name "{name}"' + (f" at '{where}'" if where else "") + ": Cannot find field."
    return gem_error(400, msg, "INVALID_ARGUMENT", [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": f"{where}" if where else "", "description": msg}],
    }])


def _gerr(msg):
    return gem_error(400, msg, "INVALID_ARGUMENT")


def validate_gemini_contents(contents, path="contents", field_prefix="GenerateContentRequest"):
    if contents is None or contents == []:
        raise _gerr(f"* {field_prefix}.contents: contents is not specified\n")
    if not isinstance(contents, list):
        if isinstance(contents, dict):
            contents = [contents]  # proto JSON accepts a single object for a repeated field
        else:
            raise _gerr(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {json.dumps(contents)}")
    for i, c in enumerate(contents):
        cp = f"{path}[{i}]"
        if not isinstance(c, dict):
            raise _gerr(f"Invalid value at '{cp}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {json.dumps(c)}")
        for k in c:
            if k not in GEMINI_CONTENT_FIELDS:
                raise _gunknown(k, cp)
        role = c.get("role", "")
        if role not in ("", "user", "model"):
            raise _gerr("Please use a valid role: user, model.")
        parts = c.get("parts")
        if isinstance(parts, dict):
            parts = [parts]
        if not parts:
            raise _gerr(f"* {field_prefix}.{cp}.parts: contents.parts must not be empty.\n")
        if not isinstance(parts, list):
            raise _gerr(f"Invalid value at '{cp}.parts' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), {json.dumps(parts)}")
        for j, part in enumerate(parts):
            pp = f"{cp}.parts[{j}]"
            if not isinstance(part, dict):
                raise _gerr(f"Invalid value at '{pp}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), {json.dumps(part)}")
            data = []
            for k in part:
                if k in GEMINI_PART_DATA:
                    data.append(k)
                elif k not in GEMINI_PART_META:
                    raise _gunknown(k, pp)
            if len(data) > 1:
                raise _gerr(f"Invalid value at '{pp}' (oneof), oneof field 'data' is already set. Cannot set '{data[1]}'")
            if not data and not part.get("thoughtSignature") and not part.get("thought_signature"):
                raise _gerr(f"* {field_prefix}.{cp}.parts[{j}].data: required oneof field 'data' must have one initialized field\n")
            if "text" in part and not isinstance(part["text"], str):
                raise _gerr(f"Invalid value at '{pp}.text' (TYPE_STRING), {json.dumps(part['text'])}")
            for blob_key in ("inlineData", "inline_data"):
                blob = part.get(blob_key)
                if blob is None:
                    continue
                if not isinstance(blob, dict) or not isinstance(blob.get("mimeType", blob.get("mime_type")), str):
                    raise _gerr(f"* {field_prefix}.{pp}.inline_data.mime_type: Mime type cannot be empty.\n")
                if not isinstance(blob.get("data"), str):
                    raise _gerr(f"* {field_prefix}.{pp}.inline_data.data: Data cannot be empty.\n")
                try:
                    base64.b64decode(blob["data"], validate=True)
                except (ValueError, binascii.Error):
                    raise _gerr(f"Invalid value at '{pp}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"{blob['data'][:40]}\"")
            for fr_key in ("functionResponse", "function_response"):
                fr = part.get(fr_key)
                if fr is None:
                    continue
                if not isinstance(fr, dict):
                    raise _gerr(f"Invalid value at '{pp}.function_response' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse), {json.dumps(fr)}")
                for k in fr:
                    if k not in ("id", "name", "response", "parts", "willContinue", "will_continue", "scheduling"):
                        raise _gunknown(k, f"{pp}.function_response")
                if not isinstance(fr.get("name"), str) or not fr["name"]:
                    raise _gerr(f"* {field_prefix}.{pp}.function_response.name: Name cannot be empty.\n")
                if not isinstance(fr.get("response", {}), dict):
                    raise _gerr(f"Invalid value at '{pp}.function_response.response' (type.googleapis.com/google.protobuf.Struct), {json.dumps(fr['response'])}")
            for fc_key in ("functionCall", "function_call"):
                fc = part.get(fc_key)
                if fc is None:
                    continue
                if not isinstance(fc, dict) or not isinstance(fc.get("name"), str) or not fc["name"]:
                    raise _gerr(f"* {field_prefix}.{pp}.function_call.name: Name cannot be empty.\n")
                if not isinstance(fc.get("args", {}), dict):
                    raise _gerr(f"Invalid value at '{pp}.function_call.args' (type.googleapis.com/google.protobuf.Struct), {json.dumps(fc['args'])}")


GEMINI_THINKING_FIELDS = _camel_and_snake({"includeThoughts", "thinkingBudget", "thinkingLevel"})
GEMINI_TOOL_FIELDS = _camel_and_snake({
    "functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "fileSearch",
    "googleMaps", "computerUse", "mcpServers", "retrieval", "enterpriseWebSearch",
})
GEMINI_DECL_FIELDS = _camel_and_snake({
    "name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior",
})
# google.ai.generativelanguage.v1beta.Schema (the OpenAPI subset; no additionalProperties, $schema, $ref, const...)
GEMINI_SCHEMA_FIELDS = _camel_and_snake({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
    "default", "items", "minimum", "maximum",
})
GEMINI_TYPES = {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}


def validate_gemini_schema(schema, where: str):
    if not isinstance(schema, dict):
        raise _gerr(f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), {json.dumps(schema)}")
    for k in schema:
        if k not in GEMINI_SCHEMA_FIELDS:
            raise _gunknown(k, where)
    t = schema.get("type")
    if t is not None and (not isinstance(t, str) or t.upper() not in GEMINI_TYPES):
        raise _gerr(f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), {json.dumps(t)}")
    enum = schema.get("enum")
    if enum is not None:
        for i, v in enumerate(enum if isinstance(enum, list) else [enum]):
            if not isinstance(v, str):
                raise _gerr(f"Invalid value at '{where}.enum[{i}]' (TYPE_STRING), {json.dumps(v)}")
    req = schema.get("required")
    if req is not None and (not isinstance(req, list) or not all(isinstance(x, str) for x in req)):
        raise _gerr(f"Invalid value at '{where}.required' (TYPE_STRING), {json.dumps(req)}")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise _gerr(f"Invalid value at '{where}.properties' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema.PropertiesEntry), {json.dumps(props)}")
        for i, (_, sub) in enumerate(props.items()):
            validate_gemini_schema(sub, f"{where}.properties[{i}].value")
    if schema.get("items") is not None:
        validate_gemini_schema(schema["items"], f"{where}.items")
    for key in ("anyOf", "any_of"):
        for i, sub in enumerate(schema.get(key) or []):
            validate_gemini_schema(sub, f"{where}.any_of[{i}]")


def validate_gemini_tools(tools: list):
    for i, t in enumerate(tools):
        tp = f"tools[{i}]"
        if not isinstance(t, dict):
            raise _gerr(f"Invalid value at '{tp}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), {json.dumps(t)}")
        for k in t:
            if k not in GEMINI_TOOL_FIELDS:
                raise _gunknown(k, tp)
        decls = gem(t, "functionDeclarations")
        if decls is None:
            continue
        if not isinstance(decls, list):
            decls = [decls]
        for j, d in enumerate(decls):
            dp = f"{tp}.function_declarations[{j}]"
            if not isinstance(d, dict):
                raise _gerr(f"Invalid value at '{dp}' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration), {json.dumps(d)}")
            for k in d:
                if k not in GEMINI_DECL_FIELDS:
                    raise _gunknown(k, dp)
            name = d.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}", name):
                raise _gerr(f"* GenerateContentRequest.{dp}.name: Invalid function name. Must start with a letter or an underscore. "
                            "Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 128.\n")
            params, pjs = gem(d, "parameters"), gem(d, "parametersJsonSchema")
            if params is not None and pjs is not None:
                raise _gerr(f"* GenerateContentRequest.{dp}: parameters and parameters_json_schema must not both be set.\n")
            if params is not None:
                validate_gemini_schema(params, f"{dp}.parameters")
            if pjs is not None and not isinstance(pjs, dict):
                raise _gerr(f"Invalid value at '{dp}.parameters_json_schema' (type.googleapis.com/google.protobuf.Value), {json.dumps(pjs)}")


def validate_gemini_turns(contents, thinking: bool):
    """Function-call/response pairing (P-G2, P-G3) and thought signatures (P-G4)."""
    if isinstance(contents, dict):
        contents = [contents]
    contents = [c for c in contents or [] if isinstance(c, dict)]

    def parts_of(c):
        ps = c.get("parts")
        return [ps] if isinstance(ps, dict) else [p for p in ps or [] if isinstance(p, dict)]

    last_plain_user = -1
    for i, c in enumerate(contents):
        ps = parts_of(c)
        if c.get("role", "user") == "user" and not any(gem(p, "functionResponse") is not None for p in ps):
            last_plain_user = i
    for i, c in enumerate(contents):
        ps = parts_of(c)
        role = c.get("role", "user")
        for j, p in enumerate(ps):
            sig = gem(p, "thoughtSignature")
            if sig is not None:
                if not b64_valid(sig) and sig not in GEMINI_DUMMY_SIGNATURES:
                    raise _gerr(f"Invalid value at 'contents[{i}].parts[{j}].thought_signature' (TYPE_BYTES), Base64 decoding failed for \"{sig}\"")
                if not gemini_signature_known(sig):
                    raise _gerr("Corrupted thought signature.")
        calls = [p for p in ps if gem(p, "functionCall") is not None]
        responses = [p for p in ps if gem(p, "functionResponse") is not None]
        if role == "model" and calls:
            prev = contents[i - 1] if i > 0 else None
            if prev is None or prev.get("role", "user") != "user":
                raise _gerr("Please ensure that function call turn comes immediately after a user turn or after a function response turn.")
            if thinking and i > last_plain_user and gem(calls[0], "thoughtSignature") is None:
                fc = gem(calls[0], "functionCall") or {}
                pos = ps.index(calls[0]) + 1
                raise _gerr("Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
                            "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
                            f"function call `default_api:{fc.get('name')}` , position {pos}. Please refer to "
                            "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
        if responses:
            prev = contents[i - 1] if i > 0 else None
            prev_calls = [p for p in parts_of(prev) if gem(p, "functionCall") is not None] if prev and prev.get("role") == "model" else []
            if not prev_calls:
                raise _gerr("Please ensure that function response turn comes immediately after a function call turn.")
            if len(responses) != len(prev_calls):
                raise _gerr("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.")


def validate_gemini(body: dict, method: str):
    if method == "countTokens":
        for k in body:
            if k not in GEMINI_COUNT_FIELDS:
                raise _gunknown(k)
        gcr = body.get("generateContentRequest", body.get("generate_content_request"))
        if gcr is not None and body.get("contents") is not None:
            raise _gerr("contents and generate_content_request cannot both be set.")
        if gcr is not None:
            if not isinstance(gcr, dict):
                raise _gerr("Invalid value at 'generate_content_request' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest)")
            validate_gemini(dict((k, v) for k, v in gcr.items() if k != "model"), "generateContent")
            return
        validate_gemini_contents(body.get("contents"), field_prefix="CountTokensRequest")
        return
    for k in body:
        if k not in GEMINI_FIELDS:
            raise _gunknown(k)
    validate_gemini_contents(body.get("contents"))
    gc = body.get("generationConfig", body.get("generation_config"))
    if gc is not None:
        if not isinstance(gc, dict):
            raise _gerr(f"Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), {json.dumps(gc)}")
        for k in gc:
            if k not in GEMINI_GENCONFIG_FIELDS:
                raise _gunknown(k, "generation_config")
        t = gc.get("temperature")
        if t is not None and (not is_num(t) or not 0 <= t <= 2):
            raise _gerr("* GenerateContentRequest.generation_config.temperature: must be in the range [0.0, 2.0]\n")
        mot = gc.get("maxOutputTokens", gc.get("max_output_tokens"))
        if mot is not None and (not is_int(mot) or mot < 1):
            raise _gerr(f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {json.dumps(mot)}")
    si = body.get("systemInstruction", body.get("system_instruction"))
    if si is not None:
        if isinstance(si, str):
            raise _gerr(f"Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"{si}\"")
        if not isinstance(si, dict):
            raise _gerr("Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)")
        for k in si:
            if k not in GEMINI_CONTENT_FIELDS:
                raise _gunknown(k, "system_instruction")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, (list, dict)):
        raise _gerr(f"Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), {json.dumps(tools)}")
    if tools is not None:
        validate_gemini_tools(tools if isinstance(tools, list) else [tools])
    if gc is not None:
        tc = gem(gc, "thinkingConfig")
        if tc is not None:
            if not isinstance(tc, dict):
                raise _gerr(f"Invalid value at 'generation_config.thinking_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig), {json.dumps(tc)}")
            for k in tc:
                if k not in GEMINI_THINKING_FIELDS:
                    raise _gunknown(k, "generation_config.thinking_config")
            if gem(tc, "thinkingBudget") is not None and gem(tc, "thinkingLevel") is not None:
                raise _gerr("Thinking budget and thinking level cannot be set at the same time.")
            lvl = gem(tc, "thinkingLevel")
            if lvl is not None and str(lvl).upper() not in ("MINIMAL", "LOW", "MEDIUM", "HIGH", "THINKING_LEVEL_UNSPECIFIED"):
                raise _gerr(f"Invalid value at 'generation_config.thinking_config.thinking_level' (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), {json.dumps(lvl)}")
            b = gem(tc, "thinkingBudget")
            if b is not None and not is_int(b):
                raise _gerr(f"Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), {json.dumps(b)}")
    validate_gemini_turns(body.get("contents"), thinking_request("gemini", body) is not None)


# --------------------------------------------------------------------------------------
# Reply builders
# --------------------------------------------------------------------------------------
def now() -> int:
    return int(time.time())


def chat_usage(pt, ct, rt=0):
    return {
        "prompt_tokens": pt, "completion_tokens": ct + rt, "total_tokens": pt + ct + rt,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": rt, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def chat_reply(body, model=None):
    plan = Plan("chat", body, body["model"])
    pt = prompt_tokens(body, ("messages", "tools"))
    ct, rt = plan.output_tokens(), plan.reasoning_tokens
    cid, created, model = f"chatcmpl-mock{next_id():08d}", now(), body["model"]
    n = body.get("n") or 1
    calls = [(f"call_mock{next_id():012d}", name, json.dumps(args)) for name, args in plan.calls]
    message = {"role": "assistant", "content": plan.text, "refusal": None, "annotations": []}
    if calls:
        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": nm, "arguments": a}} for i, nm, a in calls]
    if plan.reasoning:
        message["reasoning_content"] = plan.reasoning
    compat = model == "mock-gemini-compat" and calls
    if compat:
        signature, details = issue_compat_signature(), [{"type": "reasoning.encrypted", "data": issue_compat_signature(),
                                                          "format": "google-gemini-v1", "index": 0}]
        message["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": signature}}
        message["reasoning_details"] = details
    finish = "tool_calls" if calls else "stop"
    full = {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)],
        "usage": chat_usage(pt, ct * n, rt * n), "service_tier": "default", "system_fingerprint": "fp_mock01",
    }
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta, finish=None, choices=True, usage=None):
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "service_tier": "default", "system_fingerprint": "fp_mock01",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []}
        if include_usage:
            c["usage"] = usage
        return "data: " + json.dumps(c) + "\n\n"

    events = [chunk({"role": "assistant", "content": "" if plan.text is not None else None, "refusal": None})]
    if plan.reasoning:
        events += [chunk({"reasoning_content": piece}) for piece in split_two(plan.reasoning)]
    if plan.text is not None:
        events += [chunk({"content": piece}) for piece in split_chunks(plan.text)]
    if compat:
        events.append(chunk({"reasoning_details": details}))
    for index, (call_id, name, args) in enumerate(calls):
        start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        if compat and index == 0:
            start["extra_content"] = {"google": {"thought_signature": signature}}
        events.append(chunk({"tool_calls": [start]}))
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in split_json(args)]
    terminal = [chunk({}, finish)]
    if include_usage:
        terminal.append(chunk(None, choices=False, usage=chat_usage(pt, ct, rt)))
    terminal.append("data: [DONE]\n\n")
    return full, events, terminal


def responses_object(body, rid, status, output, usage, created):
    r = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "background": False, "completed_at": now() if status == "completed" else None,
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"], "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"), "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": r.get("effort"), "summary": r.get("summary")}, "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default", "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []), "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"), "usage": usage,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def responses_reply(body, model=None):
    plan = Plan("responses", body, body["model"])
    pt = prompt_tokens(body, ("input", "instructions", "tools"))
    ct, rt = plan.output_tokens(), plan.reasoning_tokens
    rid, created = f"resp_mock{next_id():016d}", now()
    usage = {"input_tokens": pt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
             "output_tokens": ct + rt, "output_tokens_details": {"reasoning_tokens": rt}, "total_tokens": pt + ct + rt}
    seq = itertools.count(0)

    def ev(type_, **fields):
        d = {"type": type_, "sequence_number": next(seq), **fields}
        return f"event: {type_}\ndata: {json.dumps(d)}\n\n"

    pending = responses_object(body, rid, "in_progress", [], None, created)
    events = [ev("response.created", response=pending), ev("response.in_progress", response=pending)]
    output = []
    rs_id = None
    if plan.reasoning:
        rs_id = f"rs_mock{next_id():016d}"
        enc = issue_encrypted(rs_id, plan.reasoning)
        summary = [{"type": "summary_text", "text": plan.reasoning}] if plan.summary else []
        item = {"id": rs_id, "type": "reasoning", "summary": summary, "encrypted_content": enc}
        oi = len(output)
        events.append(ev("response.output_item.added", output_index=oi, item={"id": rs_id, "type": "reasoning", "summary": []}))
        if plan.summary:
            events.append(ev("response.reasoning_summary_part.added", item_id=rs_id, output_index=oi, summary_index=0,
                             part={"type": "summary_text", "text": ""}))
            for piece in split_two(plan.reasoning):
                events.append(ev("response.reasoning_summary_text.delta", item_id=rs_id, output_index=oi, summary_index=0, delta=piece))
            events.append(ev("response.reasoning_summary_text.done", item_id=rs_id, output_index=oi, summary_index=0, text=plan.reasoning))
            events.append(ev("response.reasoning_summary_part.done", item_id=rs_id, output_index=oi, summary_index=0,
                             part={"type": "summary_text", "text": plan.reasoning}))
        events.append(ev("response.output_item.done", output_index=oi, item=item))
        output.append(item)
    if plan.text is not None:
        mid, text, oi = f"msg_mock{next_id():016d}", plan.text, len(output)
        if rs_id:
            with _issued_lock:
                _fc_reasoning[mid] = rs_id
                _rs_follower.setdefault(rs_id, mid)
        part_done = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item_done = {"id": mid, "type": "message", "status": "completed", "role": "assistant", "content": [part_done]}
        events += [ev("response.output_item.added", output_index=oi,
                      item={"id": mid, "type": "message", "status": "in_progress", "role": "assistant", "content": []}),
                   ev("response.content_part.added", item_id=mid, output_index=oi, content_index=0,
                      part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]
        for piece in split_chunks(text):
            events.append(ev("response.output_text.delta", item_id=mid, output_index=oi, content_index=0, delta=piece, logprobs=[]))
        events.append(ev("response.output_text.done", item_id=mid, output_index=oi, content_index=0, text=text, logprobs=[]))
        events.append(ev("response.content_part.done", item_id=mid, output_index=oi, content_index=0, part=part_done))
        events.append(ev("response.output_item.done", output_index=oi, item=item_done))
        output.append(item_done)
    for name, args in plan.calls:
        fc_id, call_id, a = f"fc_mock{next_id():016d}", f"call_mock{next_id():012d}", json.dumps(args)
        if rs_id:
            with _issued_lock:
                _fc_reasoning[fc_id] = rs_id
                _rs_follower.setdefault(rs_id, fc_id)
        oi = len(output)
        item = {"id": fc_id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name, "arguments": a}
        events.append(ev("response.output_item.added", output_index=oi, item=dict(item, status="in_progress", arguments="")))
        for piece in split_json(a):
            events.append(ev("response.function_call_arguments.delta", item_id=fc_id, output_index=oi, delta=piece))
        events.append(ev("response.function_call_arguments.done", item_id=fc_id, output_index=oi, name=name, arguments=a))
        events.append(ev("response.output_item.done", output_index=oi, item=item))
        output.append(item)
    full = responses_object(body, rid, "completed", output, usage, created)
    terminal = [ev("response.completed", response=full)]
    return full, events, terminal


def anthropic_usage(pt, ct, rt=0):
    u = {"input_tokens": pt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
         "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
         "output_tokens": ct + rt, "service_tier": "standard", "inference_geo": "not_available"}
    if rt:
        u["output_tokens_details"] = {"thinking_tokens": rt}
    return u


def anthropic_reply(body, model=None):
    plan = Plan("anthropic", body, body["model"])
    pt = prompt_tokens(body, ("messages", "system", "tools"))
    ct, rt = plan.output_tokens(), plan.reasoning_tokens
    mid = f"msg_01Mock{next_id():016d}"
    content = []
    if plan.reasoning:
        shown = plan.reasoning if plan.show else ""
        content.append({"type": "thinking", "thinking": shown, "signature": anthropic_signature(shown)})
    if plan.text is not None:
        content.append({"type": "text", "text": plan.text})
    for name, args in plan.calls:
        content.append({"type": "tool_use", "id": f"toolu_01Mock{next_id():014d}", "name": name, "input": args})
    stop = "tool_use" if plan.calls else "end_turn"
    full = {"id": mid, "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "stop_details": None, "usage": anthropic_usage(pt, ct, rt)}

    def ev(type_, **fields):
        return f"event: {type_}\ndata: {json.dumps({'type': type_, **fields})}\n\n"

    start = dict(full, content=[], stop_reason=None, usage=anthropic_usage(pt, 1))
    start["usage"].pop("output_tokens_details", None)
    events = [ev("message_start", message=start)]
    for index, block in enumerate(content):
        if block["type"] == "thinking":
            events.append(ev("content_block_start", index=index, content_block={"type": "thinking", "thinking": "", "signature": ""}))
            if index == 0:
                events.append(ev("ping"))
            if block["thinking"]:
                for piece in split_two(block["thinking"]):
                    events.append(ev("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece}))
            events.append(ev("content_block_delta", index=index, delta={"type": "signature_delta", "signature": block["signature"]}))
        elif block["type"] == "text":
            events.append(ev("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            if index == 0:
                events.append(ev("ping"))
            for piece in split_chunks(block["text"]):
                events.append(ev("content_block_delta", index=index, delta={"type": "text_delta", "text": piece}))
        else:
            events.append(ev("content_block_start", index=index,
                             content_block={"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}))
            if index == 0:
                events.append(ev("ping"))
            for piece in split_json(json.dumps(block["input"])):
                events.append(ev("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece}))
        events.append(ev("content_block_stop", index=index))
    final_usage = {"input_tokens": pt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": ct + rt}
    if rt:
        final_usage["output_tokens_details"] = {"thinking_tokens": rt}
    terminal = [ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None, "stop_details": None}, usage=final_usage),
                ev("message_stop")]
    return full, events, terminal


def gemini_reply(body, model):
    plan = Plan("gemini", body, model)
    pt = prompt_tokens(body, ("contents", "systemInstruction", "system_instruction", "tools"))
    ct, rt = plan.output_tokens(), plan.reasoning_tokens
    rid = f"mockResp{next_id():010d}"
    usage = {"promptTokenCount": pt, "candidatesTokenCount": ct, "totalTokenCount": pt + ct + rt,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": pt}]}
    if rt:
        usage["thoughtsTokenCount"] = rt
    thought_parts = [{"text": plan.reasoning, "thought": True}] if plan.reasoning and plan.show else []
    call_parts = []
    for i, (name, args) in enumerate(plan.calls):
        part = {"functionCall": {"name": name, "args": args}}
        if plan.reasoning and i == 0:  # parallel calls: only the first carries the signature
            part["thoughtSignature"] = issue_gemini_signature({"name": name, "args": args})
        call_parts.append(part)
    text_pieces = split_chunks(plan.text) if plan.text is not None else []
    # the signature goes on the first functionCall; only a text-only answer signs its last text part
    text_sig = issue_gemini_signature({"text": plan.text}) if plan.reasoning and plan.text is not None and not plan.calls else None
    parts = list(thought_parts)
    if plan.text is not None:
        p = {"text": plan.text}
        if text_sig:
            p["thoughtSignature"] = text_sig
        parts.append(p)
    parts += call_parts
    full = {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": rid}

    chunk_parts = []  # one list of parts per chunk
    if thought_parts:
        chunk_parts += [[{"text": piece, "thought": True}] for piece in split_two(plan.reasoning)]
    for i, piece in enumerate(text_pieces):
        p = {"text": piece}
        if text_sig and i == len(text_pieces) - 1:
            p["thoughtSignature"] = text_sig
        chunk_parts.append([p])
    if call_parts:
        chunk_parts.append(call_parts)  # function calls arrive whole, in one chunk
    chunks = []
    for i, cp in enumerate(chunk_parts):
        cand = {"content": {"parts": cp, "role": "model"}, "index": 0}
        c = {"candidates": [cand], "usageMetadata": {"promptTokenCount": pt, "totalTokenCount": pt},
             "modelVersion": model, "responseId": rid}
        if i == len(chunk_parts) - 1:
            cand["finishReason"] = "STOP"
            c["usageMetadata"] = usage
        chunks.append(c)
    return full, chunks


# --------------------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------------------
GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")
ROUTES = {
    "/v1/chat/completions": ("chat", "create"),
    "/v1/responses": ("responses", "create"),
    "/v1/responses/input_tokens": ("responses", "count"),
    "/v1/responses/compact": ("responses", "compact"),
    "/v1/messages": ("anthropic", "create"),
    "/v1/messages/count_tokens": ("anthropic", "count"),
}


def compaction_reply(body: dict) -> dict:
    """/v1/responses/compact: the user messages of the input, then one opaque compaction item."""
    inp = body.get("input")
    items = [{"role": "user", "content": inp}] if isinstance(inp, str) else (inp or [])
    users = [{"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "status": "completed", "role": "user",
              "content": it["content"] if isinstance(it.get("content"), list) else [{"type": "input_text", "text": it.get("content") or ""}]}
             for it in items if it.get("type", "message") == "message" and it.get("role") == "user"]
    pt = prompt_tokens(body, ("input", "instructions", "tools"))
    return {"id": f"resp_{uuid.uuid4().hex}", "object": "response.compaction", "created_at": int(time.time()),
            "output": users + [{"id": f"cmp_{uuid.uuid4().hex[:24]}", "type": "compaction",
                                "encrypted_content": "gAAAAmock-compaction-" + uuid.uuid4().hex}],
            "usage": {"input_tokens": pt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 40,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": pt + 40}}


def rate_headers(api):
    if api in ("chat", "responses"):
        return [("x-request-id", f"req_{uuid.uuid4().hex}"), ("openai-version", "2020-10-01"),
                ("openai-processing-ms", "42"), ("openai-organization", "org-mock"),
                ("x-ratelimit-limit-requests", "10000"), ("x-ratelimit-limit-tokens", "30000000"),
                ("x-ratelimit-remaining-requests", "9999"), ("x-ratelimit-remaining-tokens", "29999950"),
                ("x-ratelimit-reset-requests", "6ms"), ("x-ratelimit-reset-tokens", "0s")]
    if api == "anthropic":
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        h = [("request-id", f"req_011Mock{uuid.uuid4().hex[:20]}"), ("anthropic-organization-id", "00000000-0000-4000-8000-00000000mock")]
        for fam, limit in (("requests", "4000"), ("tokens", "2000000"), ("input-tokens", "2000000"), ("output-tokens", "400000")):
            h += [(f"anthropic-ratelimit-{fam}-limit", limit), (f"anthropic-ratelimit-{fam}-remaining", str(int(limit) - 1)),
                  (f"anthropic-ratelimit-{fam}-reset", reset)]
        return h
    return [("x-goog-request-id", uuid.uuid4().hex), ("server-timing", "gfet4t7; dur=42"), ("vary", "Origin, X-Origin, Referer")]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Send each SSE event at once (with Nagle on, the first event waits ~40 ms for a delayed ACK).
    disable_nagle_algorithm = True
    server_version = "mock-upstream/1"
    sys_version = ""
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    # every method goes through dispatch
    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ---- low-level IO --------------------------------------------------------------
    def read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                out.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(out)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def start(self, status, headers, content_type, length=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.record["status"] = status

    def send_bytes(self, status, data: bytes, headers, content_type="application/json"):
        self.start(status, headers, content_type, len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj, headers=(), content_type="application/json"):
        self.send_bytes(status, json.dumps(obj).encode(), list(headers), content_type)

    def write_chunk(self, data: str | bytes):
        if isinstance(data, str):
            data = data.encode()
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reset_connection(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass
        self.record["status"] = "reset"

    def stall(self, seconds=60.0):
        STOP.wait(seconds)
        self.close_connection = True

    # ---- dispatch ------------------------------------------------------------------
    def dispatch(self):
        split = urlsplit(self.path)
        path, query = split.path, split.query
        if path == "/_mock/requests":
            return self.inspect()
        if path == "/_mock/health":
            body = b'{"ok":true}'
            self.record = {}
            return self.send_bytes(200, body, [])
        raw = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
        self.record = {
            "id": next_id(), "time": time.time(), "method": self.command, "path": path, "query": query,
            "headers": headers, "body": parsed if parsed is not None else raw.decode("utf-8", "replace"),
            "status": None,
        }
        with _records_lock:
            _records.append(self.record)
            del _records[:-MAX_RECORDS]

        api, op, gem_model = None, None, None
        if path in ROUTES:
            api, op = ROUTES[path]
        else:
            m = GEMINI_PATH.match(path)
            if m:
                api, op, gem_model = "gemini", m.group(3), unquote(m.group(2))
        try:
            # leaks are flagged first, whatever the path, so a misrouted forward still fails loudly
            self.check_leak(api or self.guess_api(path), headers, query, raw)
            if api is None:
                raise self.not_found(path)
            if self.command != "POST":
                raise self.method_not_allowed(api)
            self.check_auth(api, headers, query)
            body = parse_json_body(api, raw)
            beta = "beta=true" in query or "anthropic-beta" in headers
            if api == "chat":
                validate_chat(body)
            elif api == "responses":
                validate_responses(body, count_only=(op == "count"), compact=(op == "compact"))
            elif api == "anthropic":
                validate_anthropic(body, beta, count_only=(op == "count"))
            else:
                validate_gemini(body, op)
            model = gem_model if api == "gemini" else body.get("model") or ""
            self.reply(api, op, body, model, dict(parse_qsl(query)))
        except ApiError as e:
            self.record["error"] = e.body
            self.send_json(e.status, e.body, rate_headers(api or "chat") + e.headers,
                           "application/json; charset=UTF-8" if api == "gemini" else "application/json")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def inspect(self):
        self.record = {}
        if self.command == "GET":
            with _records_lock:
                data = json.dumps(_records).encode()
            self.send_bytes(200, data, [])
        elif self.command == "DELETE":
            with _records_lock:
                _records.clear()
            self.send_bytes(200, b'{"cleared":true}', [])
        else:
            self.send_bytes(405, b'{"error":"method not allowed"}', [])

    @staticmethod
    def guess_api(path):
        if path.startswith(("/v1beta/", "/v1/models/")):
            return "gemini"
        if path.startswith("/v1/messages"):
            return "anthropic"
        return "chat"

    def not_found(self, path):
        if path.startswith(("/v1beta/", "/v1/models/")):
            return gem_error(404, f"Method not found: {path}", "NOT_FOUND")
        if path.startswith("/v1/messages"):
            return ant_error(404, "not_found_error", "Not Found")
        return oai_error(404, f"Invalid URL ({self.command} {path})", code=None)

    def method_not_allowed(self, api):
        if api == "anthropic":
            return ant_error(405, "invalid_request_error", f"Method Not Allowed: {self.command}")
        if api == "gemini":
            return gem_error(405, f"Method {self.command} not allowed", "INVALID_ARGUMENT")
        return oai_error(405, f"Invalid method for URL ({self.command} {self.path})")

    def check_leak(self, api, headers, query, raw: bytes):
        where = [f"header {k}" for k, v in headers.items() if LEAK_MARKER in v.lower() or LEAK_MARKER in k.lower()]
        if LEAK_MARKER in unquote(query).lower():
            where.append("query string")
        if LEAK_MARKER.encode() in raw.lower():
            where.append("body")
        if not where:
            return
        msg = f"LEAKED_CLIENT_KEY: the gateway's client key reached the upstream ({', '.join(where)})"
        self.record["leaked"] = where
        if api == "anthropic":
            raise ant_error(400, "invalid_request_error", msg)
        if api == "gemini":
            raise gem_error(400, msg, "INVALID_ARGUMENT")
        raise oai_error(400, msg, code="leaked_client_key")

    def check_auth(self, api, headers, query):
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if api in ("chat", "responses"):
            if not auth:
                raise oai_error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.")
            if not bearer or not bearer.startswith(OPENAI_KEY_PREFIX):
                shown = (bearer or auth)
                shown = shown[:3] + "*" * max(0, len(shown) - 7) + shown[-4:] if len(shown) > 8 else shown
                raise oai_error(401, f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        elif api == "anthropic":
            key = headers.get("x-api-key")
            if key is None and bearer is None:
                raise ant_error(401, "authentication_error", "x-api-key header is required")
            if key is not None:
                if not key.startswith(ANTHROPIC_KEY_PREFIX):
                    raise ant_error(401, "authentication_error", "invalid x-api-key")
            elif not bearer.startswith(ANTHROPIC_KEY_PREFIX):
                raise ant_error(401, "authentication_error", "Invalid bearer token")
            ver = headers.get("anthropic-version")
            if not ver:
                raise ant_error(400, "invalid_request_error", "anthropic-version: header is required")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", ver.strip()):
                raise ant_error(400, "invalid_request_error", f"anthropic-version: invalid value '{ver}'")
        else:
            key = headers.get("x-goog-api-key")
            if key is None:
                key = dict(parse_qsl(query)).get("key")
            if not key:
                raise gem_error(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", "PERMISSION_DENIED", [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_SERVICE_BLOCKED",
                    "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])
            if not key.startswith(GEMINI_KEY_PREFIX):
                raise gem_error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                     "metadata": {"service": "generativelanguage.googleapis.com"}},
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                     "message": "API key not valid. Please pass a valid API key."}])

    # ---- replies -------------------------------------------------------------------
    def reply(self, api, op, body, model, query):
        m = re.fullmatch(r"mock-error-(\d{3})", model)
        if m:
            raise commanded_error(api, int(m.group(1)), model)
        if model == "mock-too-long":
            raise context_overflow_error(api)
        if model == "mock-hang":
            self.record["status"] = "hang"
            return self.stall()
        if model == "mock-reset":
            return self.reset_connection()
        m = re.fullmatch(r"mock-slow-(\d+)", model)
        if m:
            STOP.wait(int(m.group(1)) / 1000.0)
        headers = rate_headers(api)
        if model == "mock-garbage":
            return self.send_bytes(200, b"<html><body>upstream garbage: this is {not json</body></html>\n", headers,
                                   "application/json")

        if op == "compact":
            return self.send_json(200, compaction_reply(body), headers)
        if op == "count":
            if api == "responses":
                return self.send_json(200, {"object": "response.input_tokens",
                                            "input_tokens": prompt_tokens(body, ("input", "instructions", "tools"))}, headers)
            return self.send_json(200, {"input_tokens": prompt_tokens(body, ("messages", "system", "tools"))}, headers)
        if op == "countTokens":
            src = body.get("generateContentRequest") or body.get("generate_content_request") or body
            n = prompt_tokens(src, ("contents", "systemInstruction", "system_instruction", "tools"))
            return self.send_json(200, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]},
                                  headers, "application/json; charset=UTF-8")

        if api == "gemini":
            full, chunks = gemini_reply(body, model)
            if model == "mock-malformed":
                full = {"candidates": [{"content": {}, "finishReason": "MALFORMED_FUNCTION_CALL", "index": 0,
                                        "finishMessage": "Malformed function call: print(default_api.f(x=))"}],
                        "usageMetadata": full["usageMetadata"], "modelVersion": model, "responseId": full["responseId"]}
                chunks = [full]
            if op == "generateContent":
                return self.send_nonstream(full, headers, "application/json; charset=UTF-8", model)
            if query.get("alt") == "sse":
                events = ["data: " + json.dumps(c) + "\r\n\r\n" for c in chunks[:-1]]
                terminal = ["data: " + json.dumps(chunks[-1]) + "\r\n\r\n"]
                return self.send_stream(events, terminal, headers, "text/event-stream", model)
            # JSON array streamed progressively, like the real endpoint without alt=sse
            parts = [json.dumps(c) for c in chunks]
            if len(parts) == 1:
                events, terminal = [], ["[" + parts[0] + "]"]
            else:
                events = ["[" + parts[0]] + [",\r\n" + p for p in parts[1:-1]]
                terminal = [",\r\n" + parts[-1] + "]"]
            return self.send_stream(events, terminal, headers, "application/json; charset=UTF-8", model)

        builder = {"chat": chat_reply, "responses": responses_reply, "anthropic": anthropic_reply}[api]
        full, events, terminal = builder(body)
        if body.get("stream"):
            return self.send_stream(events, terminal, headers, "text/event-stream; charset=utf-8", model)
        return self.send_nonstream(full, headers, "application/json", model)

    @staticmethod
    def hang_seconds(model):
        """mock-hang-mid stalls 60 s; mock-hang-mid-<ms> stalls <ms> (then the connection drops)."""
        if model == "mock-hang-mid":
            return 60.0
        m = re.fullmatch(r"mock-hang-mid-(\d+)", model)
        return int(m.group(1)) / 1000.0 if m else None

    def send_nonstream(self, obj, headers, ctype, model):
        data = json.dumps(obj, indent=2).encode()
        hang = self.hang_seconds(model)
        if model == "mock-truncate" or hang is not None:
            self.start(200, headers, ctype, len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if hang is not None:
                self.stall(hang)
            self.close_connection = True
            return
        self.send_bytes(200, data, headers, ctype)

    def send_stream(self, events, terminal, headers, ctype, model):
        self.start(200, headers + [("Cache-Control", "no-cache")], ctype)
        hang = self.hang_seconds(model)
        if hang is not None:
            for e in events[:2]:
                self.write_chunk(e)
            self.record["status"] = "hung-mid"
            return self.stall(hang)
        if model == "mock-truncate":
            for e in events[: max(1, len(events) // 2)]:
                self.write_chunk(e)
            self.end_chunks()
            return
        for e in events + terminal:
            self.write_chunk(e)
            time.sleep(0.002)
        self.end_chunks()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    Handler.verbose = args.verbose
    srv = Server((args.host, args.port), Handler)

    def stop(*_):
        STOP.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        STOP.set()
        srv.server_close()


if __name__ == "__main__":
    main()
