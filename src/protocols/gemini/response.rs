//! `GenerateContentResponse` both ways: an IR response as a Gemini client's answer
//! (ingress, [`encode`]) and a Gemini upstream's answer as IR (egress, [`decode`]), plus
//! `countTokens` answers.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Accumulator, Part, Response, ResponseMeta, StopReason, Usage};
use crate::protocols::Protocol;
use crate::wire;

pub fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
    }
}

/// A Gemini `finishReason` as an IR stop reason. Gemini ends tool calls and stop
/// sequences with `STOP` too; `had_calls` tells a tool-call turn apart.
pub fn stop_of(reason: &str, had_calls: bool) -> StopReason {
    match reason {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "LANGUAGE" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" | "IMAGE_RECITATION" => StopReason::ContentFilter,
        _ if had_calls => StopReason::ToolUse,
        // STOP, and the reasons with no IR equivalent (OTHER, MALFORMED_FUNCTION_CALL,
        // UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, NO_IMAGE…): the turn simply ended.
        _ => StopReason::EndTurn,
    }
}

/// Gemini's candidate count excludes thoughts, which it reports separately.
pub fn usage(u: &Usage) -> Value {
    let mut usage = json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "totalTokenCount": u.input_tokens.saturating_add(u.output_tokens),
    });
    if u.reasoning_tokens > 0 {
        usage["thoughtsTokenCount"] = json!(u.reasoning_tokens);
    }
    if u.cache_read_tokens > 0 {
        usage["cachedContentTokenCount"] = json!(u.cache_read_tokens);
    }
    usage
}

/// `usageMetadata` as IR usage: the prompt count already includes cached tokens (tool
/// use prompts are added); output is candidates plus thoughts.
pub fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| wire::u64_of(u, k).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input_tokens: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        output_tokens: n("candidatesTokenCount").saturating_add(thoughts),
        cache_read_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// One `GenerateContentResponse` (a whole answer or one stream chunk).
pub fn chunk(meta: &ResponseMeta, parts: Value, finish: Option<StopReason>, u: Option<&Usage>) -> Value {
    let content = wire::object([("parts", parts), ("role", json!("model"))]);
    let mut candidate = wire::object([("content", content), ("index", json!(0))]);
    if let Some(stop) = finish {
        candidate["finishReason"] = json!(finish_reason(stop));
    }
    let mut chunk = json!({"candidates": [candidate], "modelVersion": meta.model, "responseId": meta.id});
    if let Some(u) = u {
        chunk["usageMetadata"] = usage(u);
    }
    chunk
}

/// A function call part for a Gemini client; the IR id goes along so that the client
/// sends it back on its function response.
pub(crate) fn function_call_part(id: &str, name: &str, arguments: &str) -> Value {
    json!({"functionCall": {"id": id, "name": name, "args": wire::arguments_object(arguments)}})
}

/// A thought part carrying a signature with no part after it to sit on.
pub(crate) fn signature_part(sig: &str) -> Value {
    json!({"text": "", "thought": true, "thoughtSignature": sig})
}

/// The answer's parts for a Gemini client.
///
/// Reasoning text goes out as thought parts; the reasoning's opaque value
/// (`carrier::to_client`) goes on the part right after it — the function call it
/// preceded, or the first text — the way Gemini places its own signatures, because
/// clients such as Gemini CLI drop thought parts from the history they send back but
/// keep `thoughtSignature` on other parts. Only a reasoning with nothing after it keeps
/// its signature on a thought part of its own.
pub fn parts(r: &Response) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for p in &r.parts {
        let mut part = match p {
            Part::Reasoning(reasoning) => {
                if !reasoning.text.is_empty() {
                    // The previous block's signature goes before this block's text, or
                    // the client's history would pair this text with it.
                    if let Some(prev) = pending.take() {
                        out.push(signature_part(&prev));
                    }
                    out.push(json!({"text": reasoning.text, "thought": true}));
                }
                if let Some(sig) = carrier::to_client(reasoning, Protocol::Gemini) {
                    if let Some(prev) = pending.replace(sig) {
                        out.push(signature_part(&prev));
                    }
                }
                continue;
            }
            Part::Text(t) => {
                if t.is_empty() && pending.is_none() {
                    continue;
                }
                json!({ "text": t })
            }
            Part::ToolCall(c) => function_call_part(&c.id, &c.name, &c.arguments),
            _ => continue,
        };
        if let Some(sig) = pending.take() {
            part["thoughtSignature"] = json!(sig);
        }
        out.push(part);
    }
    if let Some(sig) = pending {
        out.push(signature_part(&sig));
    }
    out
}

pub fn encode(r: &Response) -> String {
    let mut parts = parts(r);
    if parts.is_empty() {
        parts.push(json!({"text": ""}));
    }
    chunk(&r.meta, Value::Array(parts), Some(r.stop), Some(&r.usage)).to_string()
}

/// Egress: an upstream answer as IR (also a JSON array of stream chunks, as
/// `streamGenerateContent` answers without `alt=sse`). Parsed by the same state machine
/// as the stream, so both give the same IR.
pub fn decode(body: &Value, meta: ResponseMeta) -> Result<Response, GatewayError> {
    let mut decoder = super::stream::Decoder::new(meta);
    let mut events = Vec::new();
    match body {
        Value::Array(items) => {
            for item in items {
                decoder.chunk(item, &mut events)?;
            }
        }
        Value::Object(_) => decoder.chunk(body, &mut events)?,
        _ => return Err(GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer is not a Gemini GenerateContentResponse.")),
    }
    decoder.finish_lenient(&mut events);
    let mut acc = Accumulator::default();
    for e in &events {
        acc.push(e);
    }
    acc.into_response()
        .ok_or_else(|| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer is not a Gemini GenerateContentResponse."))
}

/// Egress: the token count in an upstream `countTokens` answer.
pub fn decode_count(body: &Value) -> Option<u64> {
    wire::u64_of(body, "totalTokens").or_else(|| wire::u64_of(body, "total_tokens"))
}

/// Ingress: a token count as a `countTokens` answer.
pub fn encode_count(n: u64) -> String {
    json!({ "totalTokens": n }).to_string()
}
