//! Anthropic `message` objects: an IR response as one (ingress) and an upstream's one as
//! IR (egress); also the `count_tokens` answer.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Part, Reasoning, Response, ResponseMeta, StopReason, ToolCall, Usage};
use crate::protocols::Protocol;
use crate::wire;

pub fn stop_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

/// An Anthropic `stop_reason` in the IR (`None` for null or unknown values).
pub fn parse_stop_reason(s: &str) -> Option<StopReason> {
    Some(match s {
        "end_turn" => StopReason::EndTurn,
        // A paused server-tool turn: the answer so far is complete as far as the IR goes.
        "pause_turn" => StopReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        _ => return None,
    })
}

/// Anthropic counts input without cache reads and writes; the thinking share of the
/// output goes in `output_tokens_details` when known.
pub fn usage(u: &Usage) -> Value {
    let mut v = json!({
        "input_tokens": u.input_tokens.saturating_sub(u.cache_read_tokens.saturating_add(u.cache_write_tokens)),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    });
    if u.reasoning_tokens > 0 {
        v["output_tokens_details"] = json!({"thinking_tokens": u.reasoning_tokens});
    }
    v
}

/// Reads an Anthropic usage object into `u`, field by field (a `message_delta` may carry
/// only some; its values are cumulative). `input` keeps Anthropic's uncached input count.
pub(crate) fn read_usage(v: &Value, input: &mut u64, u: &mut Usage) {
    if let Some(n) = wire::u64_of(v, "input_tokens") {
        *input = n;
    }
    if let Some(n) = wire::u64_of(v, "output_tokens") {
        u.output_tokens = n;
    }
    if let Some(n) = wire::u64_of(v, "cache_read_input_tokens") {
        u.cache_read_tokens = n;
    }
    if let Some(n) = wire::u64_of(v, "cache_creation_input_tokens") {
        u.cache_write_tokens = n;
    }
    if let Some(n) = v.get("output_tokens_details").and_then(|d| wire::u64_of(d, "thinking_tokens")) {
        u.reasoning_tokens = n;
    }
    u.input_tokens = input.saturating_add(u.cache_read_tokens).saturating_add(u.cache_write_tokens);
}

/// An IR reasoning block as the thinking block an Anthropic client gets: Claude's own
/// redacted thinking natively, everything else as `thinking` whose signature carries it.
pub(crate) fn reasoning_block(r: &Reasoning) -> Value {
    if r.origin == Some(Protocol::Claude) {
        if let Some(data) = &r.redacted {
            return json!({"type": "redacted_thinking", "data": data});
        }
    }
    let signature = carrier::to_client(r, Protocol::Claude).unwrap_or_default();
    json!({"type": "thinking", "thinking": r.text, "signature": signature})
}

pub fn encode(r: &Response) -> String {
    let mut content: Vec<Value> = Vec::new();
    for part in &r.parts {
        match part {
            Part::Text(t) if !t.is_empty() => content.push(json!({"type": "text", "text": t})),
            Part::Reasoning(x) => content.push(reasoning_block(x)),
            Part::ToolCall(c) => content.push(json!({
                "type": "tool_use", "id": c.id, "name": c.name, "input": wire::arguments_object(&c.arguments),
            })),
            _ => {}
        }
    }
    json!({
        "id": format!("msg_{}", r.meta.id),
        "type": "message",
        "role": "assistant",
        "model": r.meta.model,
        "content": content,
        "stop_reason": stop_reason(r.stop),
        "stop_sequence": null,
        "usage": usage(&r.usage),
    })
    .to_string()
}

fn unusable(what: &str) -> GatewayError {
    GatewayError::new(ErrorKind::UpstreamUnreachable, format!("The upstream answered with {what}, not an Anthropic message."))
}

/// Egress: an upstream answer as IR.
pub fn decode(body: &Value, meta: ResponseMeta) -> Result<Response, GatewayError> {
    if body.get("type").and_then(Value::as_str) == Some("error") {
        return Err(super::error::decode(body).unwrap_or_else(|| unusable("an error without details")));
    }
    let Some(blocks) = body.get("content").and_then(Value::as_array) else {
        return Err(unusable(if body.is_object() { "an object without content" } else { "something else" }));
    };
    let mut parts: Vec<Part> = Vec::new();
    let mut calls = 0;
    for b in blocks {
        match wire::str_of(b, "type") {
            Some("text") => {
                let text = wire::str_of(b, "text").unwrap_or_default();
                match parts.last_mut() {
                    Some(Part::Text(prev)) => prev.push_str(text),
                    _ if text.is_empty() => {}
                    _ => parts.push(Part::Text(text.to_string())),
                }
            }
            Some("thinking") => parts.push(Part::Reasoning(Reasoning {
                text: wire::string_of(b, "thinking").unwrap_or_default(),
                signature: wire::string_of(b, "signature").filter(|s| !s.is_empty()),
                origin: Some(Protocol::Claude),
                ..Reasoning::default()
            })),
            Some("redacted_thinking") => parts.push(Part::Reasoning(Reasoning {
                redacted: wire::string_of(b, "data"),
                origin: Some(Protocol::Claude),
                ..Reasoning::default()
            })),
            Some("tool_use") => {
                let id = wire::string_of(b, "id")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| wire::synth_id("call_", &meta.id, calls));
                calls += 1;
                parts.push(Part::ToolCall(ToolCall {
                    id,
                    name: wire::string_of(b, "name").unwrap_or_default(),
                    arguments: wire::json_text(b.get("input")),
                }));
            }
            // Server tool blocks ran at Anthropic; the IR has no place for them.
            _ => {}
        }
    }
    let stop = wire::str_of(body, "stop_reason").and_then(parse_stop_reason).unwrap_or(if calls > 0 {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    });
    let mut usage = Usage::default();
    let mut input = 0;
    if let Some(u) = body.get("usage") {
        read_usage(u, &mut input, &mut usage);
    }
    Ok(Response { meta, parts, stop, usage })
}

/// The `input_tokens` of a `count_tokens` answer.
pub fn decode_count(body: &Value) -> Option<u64> {
    wire::u64_of(body, "input_tokens")
}

/// A `count_tokens` answer.
pub fn encode_count(n: u64) -> String {
    json!({"input_tokens": n}).to_string()
}
