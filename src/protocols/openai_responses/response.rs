//! Responses `response` objects: an IR response as one (`encode`, ingress) and an
//! upstream's one as IR (`decode`, egress); plus the `input_tokens` count bodies.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Part, Reasoning, Response, ResponseMeta, StopReason, ToolCall, Usage};
use crate::protocols::Protocol;
use crate::wire;

pub fn usage(u: &Usage) -> Value {
    // The openai SDK (3.54) requires cache_write_tokens in input_tokens_details.
    let input_details = json!({"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens});
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": input_details,
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        // Not `Usage::total`: upstream counts are untrusted and must not overflow.
        "total_tokens": u.input_tokens.saturating_add(u.output_tokens),
    })
}

/// The id of the `n`th message item of a response (`msg_<id>`, then `msg_<id>_<n>`).
pub fn message_id(meta: &ResponseMeta, n: usize) -> String {
    if n == 0 {
        format!("msg_{}", meta.id)
    } else {
        format!("msg_{}_{n}", meta.id)
    }
}

pub fn reasoning_id(meta: &ResponseMeta, n: usize) -> String {
    wire::synth_id("rs_", &meta.id, n)
}

pub fn function_call_id(meta: &ResponseMeta, n: usize) -> String {
    wire::synth_id("fc_", &meta.id, n)
}

pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A message item; `texts` `None` is the empty in-progress item of `output_item.added`.
pub fn message_item(id: &str, texts: Option<&[&str]>, status: &str) -> Value {
    let content: Vec<Value> = texts.unwrap_or(&[]).iter().map(|t| output_text(t)).collect();
    wire::object([("type", json!("message")), ("id", json!(id)), ("status", json!(status)), ("role", json!("assistant")), ("content", Value::Array(content))])
}

pub fn summary(text: &str) -> Value {
    if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    }
}

/// A complete reasoning item for a Responses client: the payload in `encrypted_content`.
pub fn reasoning_item(id: &str, r: &Reasoning, text: &str) -> Value {
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary(text)});
    if let Some(enc) = carrier::to_client(r, Protocol::OpenAiResponses) {
        item["encrypted_content"] = json!(enc);
    }
    item
}

/// The id a client sees for a reasoning item: the upstream's own when the item came
/// from a Responses upstream, else a synthesised one.
pub fn reasoning_item_id(meta: &ResponseMeta, r: &Reasoning, n: usize) -> String {
    match (&r.id, r.origin) {
        (Some(id), Some(Protocol::OpenAiResponses)) if !id.is_empty() => id.clone(),
        _ => reasoning_id(meta, n),
    }
}

pub fn function_call_item(id: &str, c: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": c.id, "name": c.name, "arguments": c.arguments, "status": status})
}

/// A call of one of the client's freeform tools: its `input` is the text the model
/// wrote (the function form's `input` argument).
pub fn custom_tool_call_item(id: &str, c: &ToolCall, input: &str) -> Value {
    json!({"type": "custom_tool_call", "id": id, "call_id": c.id, "name": c.name, "input": input})
}

/// The output item of a tool call, as the client declared the tool.
pub fn call_item(id: &str, c: &ToolCall, status: &str, custom_tools: &[String]) -> Value {
    if custom_tools.contains(&c.name) {
        custom_tool_call_item(id, c, &super::request::freeform_input(&c.arguments))
    } else {
        function_call_item(id, c, status)
    }
}

/// The `response` object; `status` is `in_progress`, `completed`, `incomplete` or `failed`.
pub fn object(meta: &ResponseMeta, status: &str, output: Vec<Value>, stop: Option<StopReason>, u: Option<&Usage>) -> Value {
    let incomplete = match (status, stop) {
        ("incomplete", Some(StopReason::ContentFilter)) => json!({"reason": "content_filter"}),
        ("incomplete", _) => json!({"reason": "max_output_tokens"}),
        _ => Value::Null,
    };
    json!({
        "id": format!("resp_{}", meta.id),
        "object": "response",
        "created_at": meta.created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "model": meta.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": u.map(usage),
        "metadata": {},
    })
}

pub fn status_for(stop: StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens | StopReason::ContentFilter => "incomplete",
        _ => "completed",
    }
}

/// Ingress: an IR response as a Responses `response` object.
pub fn encode(r: &Response) -> String {
    encode_for(r, &[])
}

/// The response for a client whose freeform tools are `custom_tools`.
pub fn encode_for(r: &Response, custom_tools: &[String]) -> String {
    let status = status_for(r.stop);
    let mut output = Vec::new();
    let (mut n_msg, mut n_rs, mut n_fc) = (0, 0, 0);
    let mut texts: Vec<&str> = Vec::new();
    let flush = |texts: &mut Vec<&str>, output: &mut Vec<Value>, n_msg: &mut usize| {
        if !texts.is_empty() {
            output.push(message_item(&message_id(&r.meta, *n_msg), Some(texts), status));
            *n_msg += 1;
            texts.clear();
        }
    };
    for p in &r.parts {
        match p {
            Part::Text(t) => texts.push(t),
            Part::Reasoning(rs) => {
                flush(&mut texts, &mut output, &mut n_msg);
                output.push(reasoning_item(&reasoning_item_id(&r.meta, rs, n_rs), rs, &rs.text));
                n_rs += 1;
            }
            Part::ToolCall(c) => {
                flush(&mut texts, &mut output, &mut n_msg);
                output.push(call_item(&function_call_id(&r.meta, n_fc), c, "completed", custom_tools));
                n_fc += 1;
            }
            _ => {}
        }
    }
    flush(&mut texts, &mut output, &mut n_msg);
    object(&r.meta, status, output, Some(r.stop), Some(&r.usage)).to_string()
}

/// Usage of a Responses `usage` object, normalised (Responses already counts cached
/// input in `input_tokens` and reasoning in `output_tokens`).
pub fn usage_of(u: &Value) -> Usage {
    let input_details = u.get("input_tokens_details").unwrap_or(&Value::Null);
    let output_details = u.get("output_tokens_details").unwrap_or(&Value::Null);
    Usage {
        input_tokens: wire::u64_of(u, "input_tokens").unwrap_or(0),
        output_tokens: wire::u64_of(u, "output_tokens").unwrap_or(0),
        cache_read_tokens: wire::u64_of(input_details, "cached_tokens").unwrap_or(0),
        cache_write_tokens: wire::u64_of(input_details, "cache_write_tokens").unwrap_or(0),
        reasoning_tokens: wire::u64_of(output_details, "reasoning_tokens").unwrap_or(0),
    }
}

/// The gateway's error kind for a Responses error code (`response.error.code`, a stream
/// `error` event's `code` or `type`).
pub fn error_kind(code: &str) -> ErrorKind {
    match code {
        "rate_limit_exceeded" | "rate_limit_error" | "too_many_requests" | "insufficient_quota" | "tokens_exceeded" => {
            ErrorKind::RateLimited
        }
        "server_is_overloaded" | "overloaded" | "overloaded_error" | "service_unavailable" | "engine_overloaded" => {
            ErrorKind::Overloaded
        }
        "timeout" | "request_timeout" | "upstream_timeout" | "vector_store_timeout" => ErrorKind::Timeout,
        "invalid_api_key" | "authentication_error" | "unauthorized" => ErrorKind::Authentication,
        "permission_denied" | "permission_error" | "data_residency_mismatch" => ErrorKind::PermissionDenied,
        "not_found" | "model_not_found" => ErrorKind::NotFound,
        "server_error" | "internal_error" | "api_error" => ErrorKind::Internal,
        c if c.starts_with("invalid") || c.ends_with("_policy") || c == "context_length_exceeded" || c == "bad_request" => {
            ErrorKind::InvalidRequest
        }
        _ => ErrorKind::Internal,
    }
}

/// A gateway error from an upstream error object (`{code, message, type?, param?}`).
pub fn upstream_error(e: &Value) -> GatewayError {
    let code = wire::str_of(e, "code").or_else(|| wire::str_of(e, "type")).unwrap_or("server_error");
    let message = wire::str_of(e, "message")
        .filter(|m| !m.is_empty())
        .map(String::from)
        .unwrap_or_else(|| format!("The upstream failed ({code})."));
    let mut err = GatewayError::new(error_kind(code), message);
    if let Some(p) = wire::str_of(e, "param") {
        err = err.with_param(p);
    }
    err
}

fn joined_texts(list: &Value) -> String {
    list.as_array()
        .map(|l| l.iter().filter_map(|s| wire::str_of(s, "text")).collect::<Vec<_>>().join("\n\n"))
        .unwrap_or_default()
}

/// A reasoning output item as IR.
pub fn reasoning_of(item: &Value) -> Reasoning {
    let summary = item.get("summary").map(joined_texts).unwrap_or_default();
    let text = if summary.is_empty() { item.get("content").map(joined_texts).unwrap_or_default() } else { summary };
    Reasoning {
        text,
        encrypted: wire::string_of(item, "encrypted_content").filter(|s| !s.is_empty()),
        id: wire::string_of(item, "id"),
        origin: Some(Protocol::OpenAiResponses),
        ..Reasoning::default()
    }
}

/// The stop reason of a finished `response` object.
pub fn stop_of(response: &Value, has_tool_calls: bool) -> StopReason {
    if wire::str_of(response, "status") == Some("incomplete") {
        let reason = response.get("incomplete_details").and_then(|d| wire::str_of(d, "reason"));
        return match reason {
            Some("content_filter") => StopReason::ContentFilter,
            _ => StopReason::MaxTokens,
        };
    }
    if has_tool_calls {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    }
}

/// Egress: an upstream answer as IR.
pub fn decode(body: &Value, meta: ResponseMeta) -> Result<Response, GatewayError> {
    if wire::str_of(body, "status") == Some("failed") || body.get("output").is_none() {
        if let Some(e) = body.get("error").filter(|e| e.is_object()) {
            return Err(upstream_error(e));
        }
    }
    let Some(output) = body.get("output").and_then(Value::as_array) else {
        return Err(GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            "The upstream answered without an 'output' list; it does not look like a Responses API response.",
        ));
    };
    let mut parts = Vec::new();
    let mut calls = 0;
    for item in output {
        match wire::str_of(item, "type") {
            Some("reasoning") => parts.push(Part::Reasoning(reasoning_of(item))),
            Some("function_call") => {
                let id = wire::string_of(item, "call_id")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| wire::synth_id("call_", &meta.id, calls));
                let name = wire::string_of(item, "name").unwrap_or_default();
                let arguments = match item.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    other => wire::json_text(other),
                };
                parts.push(Part::ToolCall(ToolCall { id, name, arguments }));
                calls += 1;
            }
            Some("message") => {
                for c in wire::array_of(item, "content") {
                    let text = match wire::str_of(c, "type") {
                        Some("output_text") | Some("text") => wire::str_of(c, "text"),
                        Some("refusal") => wire::str_of(c, "refusal"),
                        _ => None,
                    };
                    if let Some(t) = text {
                        parts.push(Part::Text(t.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    let usage = body.get("usage").map(usage_of).unwrap_or_default();
    Ok(Response { meta, parts, stop: stop_of(body, calls > 0), usage })
}

/// Egress: the count in a `/v1/responses/input_tokens` answer.
pub fn decode_count(body: &Value) -> Option<u64> {
    wire::u64_of(body, "input_tokens")
}

/// Ingress: a `/v1/responses/input_tokens` answer.
pub fn encode_count(n: u64) -> String {
    json!({"object": "response.input_tokens", "input_tokens": n}).to_string()
}
