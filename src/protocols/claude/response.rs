//! An IR response as an Anthropic `message` object.

use serde_json::{json, Value};

use crate::ir::{Response, StopReason, Usage};

pub fn stop_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::ContentFilter => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
    }
}

/// Anthropic counts input without cache reads and writes.
pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens.saturating_sub(u.cache_read_tokens + u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

pub fn encode(r: &Response) -> String {
    json!({
        "id": format!("msg_{}", r.meta.id),
        "type": "message",
        "role": "assistant",
        "model": r.meta.model,
        "content": [{"type": "text", "text": r.text()}],
        "stop_reason": stop_reason(r.stop),
        "stop_sequence": null,
        "usage": usage(&r.usage),
    })
    .to_string()
}

/// Egress: an upstream answer as IR.
pub fn decode(_body: &Value, _meta: crate::ir::ResponseMeta) -> Result<Response, crate::error::GatewayError> {
    Err(crate::error::GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
}

/// Egress: the token count in an upstream count answer.
pub fn decode_count(_body: &Value) -> Option<u64> {
    None
}

/// Ingress: a token count as this protocol's count answer.
pub fn encode_count(n: u64) -> String {
    serde_json::json!({"input_tokens": n}).to_string()
}
