//! An IR response as a Responses `response` object.

use serde_json::{json, Value};

use crate::ir::{Response, ResponseMeta, StopReason, Usage};

pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

pub fn message_id(meta: &ResponseMeta) -> String {
    format!("msg_{}", meta.id)
}

pub fn message_item(meta: &ResponseMeta, text: Option<&str>) -> Value {
    let content = match text {
        Some(t) => json!([{"type": "output_text", "text": t, "annotations": [], "logprobs": []}]),
        None => json!([]),
    };
    json!({
        "type": "message",
        "id": message_id(meta),
        "status": if text.is_some() { "completed" } else { "in_progress" },
        "role": "assistant",
        "content": content,
    })
}

/// The `response` object; `status` is `in_progress`, `completed` or `incomplete`.
pub fn object(meta: &ResponseMeta, status: &str, output: Vec<Value>, stop: Option<StopReason>, u: Option<&Usage>) -> Value {
    let incomplete = match stop {
        Some(StopReason::MaxTokens) => json!({"reason": "max_output_tokens"}),
        Some(StopReason::ContentFilter) => json!({"reason": "content_filter"}),
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

pub fn encode(r: &Response) -> String {
    let text = r.text();
    let output = vec![message_item(&r.meta, Some(&text))];
    object(&r.meta, status_for(r.stop), output, Some(r.stop), Some(&r.usage)).to_string()
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
