//! An IR response as a `chat.completion` object.

use serde_json::{json, Value};

use crate::ir::{Response, StopReason, Usage};

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
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

pub fn encode(r: &Response) -> String {
    json!({
        "id": format!("chatcmpl-{}", r.meta.id),
        "object": "chat.completion",
        "created": r.meta.created,
        "model": r.meta.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": r.text(), "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason(r.stop),
        }],
        "usage": usage(&r.usage),
    })
    .to_string()
}

/// Egress: an upstream answer as IR.
pub fn decode(_body: &Value, _meta: crate::ir::ResponseMeta) -> Result<Response, crate::error::GatewayError> {
    Err(crate::error::GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
}
