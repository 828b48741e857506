//! An IR response as a `GenerateContentResponse`.

use serde_json::{json, Value};

use crate::ir::{Response, ResponseMeta, StopReason, Usage};

pub fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
    }
}

/// Gemini's candidate count excludes thoughts, which it reports separately.
pub fn usage(u: &Usage) -> Value {
    let mut usage = json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "totalTokenCount": u.total(),
    });
    if u.reasoning_tokens > 0 {
        usage["thoughtsTokenCount"] = json!(u.reasoning_tokens);
    }
    if u.cache_read_tokens > 0 {
        usage["cachedContentTokenCount"] = json!(u.cache_read_tokens);
    }
    usage
}

/// One `GenerateContentResponse` (a whole answer or one stream chunk).
pub fn chunk(meta: &ResponseMeta, parts: Value, finish: Option<StopReason>, u: Option<&Usage>) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(stop) = finish {
        candidate["finishReason"] = json!(finish_reason(stop));
    }
    let mut chunk = json!({"candidates": [candidate], "modelVersion": meta.model, "responseId": meta.id});
    if let Some(u) = u {
        chunk["usageMetadata"] = usage(u);
    }
    chunk
}

pub fn encode(r: &Response) -> String {
    chunk(&r.meta, json!([{"text": r.text()}]), Some(r.stop), Some(&r.usage)).to_string()
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
