//! Errors in OpenAI's shape, shared by Chat Completions and Responses:
//! `{"error":{"message","type","param","code"}}`.

use serde_json::json;

use crate::error::{ErrorKind, GatewayError};
use crate::protocols::Protocol;

fn type_and_code(e: &GatewayError) -> (&'static str, Option<&'static str>) {
    match e.kind {
        ErrorKind::InvalidRequest if e.context_overflow().is_some() => ("invalid_request_error", Some("context_length_exceeded")),
        ErrorKind::InvalidRequest => ("invalid_request_error", None),
        ErrorKind::Authentication => ("invalid_request_error", Some("invalid_api_key")),
        ErrorKind::PermissionDenied => ("permission_error", Some("permission_denied")),
        ErrorKind::NotFound if e.param.as_deref() == Some("model") => {
            ("invalid_request_error", Some("model_not_found"))
        }
        ErrorKind::NotFound => ("invalid_request_error", Some("not_found")),
        ErrorKind::MethodNotAllowed => ("invalid_request_error", Some("method_not_allowed")),
        ErrorKind::PayloadTooLarge => ("invalid_request_error", Some("request_too_large")),
        ErrorKind::RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
        ErrorKind::Internal => ("server_error", None),
        ErrorKind::NotImplemented => ("invalid_request_error", Some("not_implemented")),
        ErrorKind::UpstreamUnreachable => ("server_error", Some("upstream_unreachable")),
        ErrorKind::Overloaded => ("server_error", Some("overloaded")),
        ErrorKind::Timeout => ("server_error", Some("upstream_timeout")),
    }
}

pub fn object(e: &GatewayError) -> serde_json::Value {
    let (kind, code) = type_and_code(e);
    json!({"message": e.message_for(Protocol::OpenAiChat), "type": kind, "param": e.param, "code": code})
}

pub fn render(e: &GatewayError) -> String {
    json!({ "error": object(e) }).to_string()
}

/// The message of an OpenAI-shaped error body (`{"error":{"message"}}`, also the nested
/// Responses stream shape).
pub fn message(v: &serde_json::Value) -> Option<String> {
    let e = v.get("error").unwrap_or(v);
    e.get("message").and_then(|m| m.as_str()).map(String::from)
}
