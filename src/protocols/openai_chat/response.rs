//! An IR response as a `chat.completion` object.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::GatewayError;
use crate::ir::{Part, Reasoning, Response, ResponseMeta, StopReason, ToolCall, Usage};
use crate::protocols::Protocol;
use crate::wire::{array_of, str_of, string_of, u64_of};

pub fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

pub fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

/// Tool calls as Chat `tool_calls` entries. A reasoning block with a payload right before
/// a call travels inside the call's id (the only field Chat clients echo back).
pub fn tool_calls(parts: &[Part]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pending: Option<&Reasoning> = None;
    for p in parts {
        match p {
            Part::Reasoning(r) => pending = Some(r),
            Part::ToolCall(c) => {
                out.push(json!({"id": call_id(c, pending.take()), "type": "function", "function": {"name": c.name, "arguments": c.arguments}}));
            }
            _ => pending = None,
        }
    }
    out
}

pub fn call_id(call: &ToolCall, reasoning: Option<&Reasoning>) -> String {
    match reasoning {
        Some(r) if r.has_payload() && r.origin != Some(Protocol::OpenAiChat) => carrier::id_with(&call.id, r),
        _ => call.id.clone(),
    }
}

pub fn encode(r: &Response) -> String {
    let mut message = json!({"role": "assistant", "content": null, "refusal": null});
    let text = r.text();
    if !text.is_empty() || r.tool_calls().next().is_none() {
        message["content"] = json!(text);
    }
    let reasoning: String = r.reasoning().map(|x| x.text.as_str()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n\n");
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let calls = tool_calls(&r.parts);
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-{}", r.meta.id),
        "object": "chat.completion",
        "created": r.meta.created,
        "model": r.meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(r.stop)}],
        "usage": usage(&r.usage),
    })
    .to_string()
}

pub fn stop_from(reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match reason {
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        _ if has_tool_calls => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

pub fn usage_from(u: &Value) -> Usage {
    let details = |k: &str, f: &str| u.get(k).and_then(|d| u64_of(d, f)).unwrap_or(0);
    Usage {
        input_tokens: u64_of(u, "prompt_tokens").unwrap_or(0),
        output_tokens: u64_of(u, "completion_tokens").unwrap_or(0),
        // DeepSeek reports cache hits as `prompt_cache_hit_tokens`.
        cache_read_tokens: u.get("prompt_tokens_details")
            .and_then(|d| u64_of(d, "cached_tokens"))
            .or_else(|| u64_of(u, "prompt_cache_hit_tokens"))
            .unwrap_or(0),
        cache_write_tokens: details("prompt_tokens_details", "cache_write_tokens"),
        reasoning_tokens: details("completion_tokens_details", "reasoning_tokens"),
    }
}

/// OpenRouter's `reasoning_details` (the signatures and encrypted reasoning a provider
/// behind it needs back, Gemini 3's among them), kept whole as the reasoning's opaque
/// payload; `None` when there are none.
pub(super) fn reasoning_details_payload(details: Vec<Value>) -> Option<String> {
    (!details.is_empty()).then(|| Value::Array(details).to_string())
}

/// Streamed `reasoning_details` items joined into whole ones: pieces of one item share its
/// `index` and `type`; their text is concatenated, other fields take the latest value.
pub(super) fn merge_reasoning_details(into: &mut Vec<Value>, items: &[Value]) {
    for item in items {
        let Some(fields) = item.as_object() else { continue };
        let index = item.get("index").and_then(Value::as_u64);
        let same = into.iter_mut().find(|d| index.is_some() && d.get("index").and_then(Value::as_u64) == index && d.get("type") == item.get("type"));
        let Some(Value::Object(existing)) = same else {
            into.push(item.clone());
            continue;
        };
        for (key, value) in fields {
            match (existing.get_mut(key), value) {
                (Some(Value::String(have)), Value::String(more)) if matches!(key.as_str(), "text" | "summary") => have.push_str(more),
                (_, Value::Null) => {}
                _ => {
                    existing.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

/// The thought signature Gemini's OpenAI-compatible endpoint puts on a tool call
/// (`extra_content.google.thought_signature`), which must come back on that call.
pub(super) fn call_thought_signature(call: &Value) -> Option<String> {
    let google = call.get("extra_content")?.get("google")?;
    str_of(google, "thought_signature").filter(|s| !s.is_empty()).map(String::from)
}

/// Egress: a `chat.completion` as IR.
pub fn decode(body: &Value, meta: ResponseMeta) -> Result<Response, GatewayError> {
    let choice = array_of(body, "choices").first().ok_or_else(|| {
        GatewayError::new(crate::error::ErrorKind::UpstreamUnreachable, "The upstream answered without any choice.")
    })?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    let text = str_of(message, "reasoning_content").or_else(|| str_of(message, "reasoning")).unwrap_or_default();
    let details = reasoning_details_payload(array_of(message, "reasoning_details").to_vec());
    if !text.is_empty() || details.is_some() {
        parts.push(Part::Reasoning(Reasoning { text: text.to_string(), encrypted: details, origin: Some(Protocol::OpenAiChat), ..Default::default() }));
    }
    match message.get("content") {
        Some(Value::String(t)) if !t.is_empty() => parts.push(Part::Text(t.clone())),
        Some(Value::Array(items)) => {
            for item in items {
                if let Some(t) = str_of(item, "text").filter(|t| !t.is_empty()) {
                    parts.push(Part::Text(t.to_string()));
                }
            }
        }
        _ => {}
    }
    if let Some(refusal) = str_of(message, "refusal").filter(|t| !t.is_empty()) {
        parts.push(Part::Text(refusal.to_string()));
    }
    let mut ids: Vec<String> = Vec::new();
    for (n, call) in array_of(message, "tool_calls").iter().enumerate() {
        let f = call.get("function").unwrap_or(&Value::Null);
        // Some compatible servers send empty or repeated ids; each call needs its own.
        let id = string_of(call, "id")
            .filter(|id| !id.is_empty() && !ids.contains(id))
            .unwrap_or_else(|| crate::wire::synth_id("call_", &meta.id, n));
        ids.push(id.clone());
        if let Some(signature) = call_thought_signature(call) {
            parts.push(Part::Reasoning(Reasoning { signature: Some(signature), origin: Some(Protocol::OpenAiChat), ..Default::default() }));
        }
        parts.push(Part::ToolCall(ToolCall {
            id,
            name: string_of(f, "name").unwrap_or_default(),
            arguments: crate::wire::json_text(f.get("arguments")),
        }));
    }
    let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let stop = stop_from(str_of(choice, "finish_reason"), has_calls);
    let usage = body.get("usage").map(usage_from).unwrap_or_default();
    Ok(Response { meta, parts, stop, usage })
}
