//! Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}`, and in a
//! stream the same object as an `event: error`.

use serde_json::{json, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::protocols::Protocol;

pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed | ErrorKind::NotImplemented => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Internal | ErrorKind::UpstreamUnreachable => "api_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

/// The gateway error an Anthropic `error.type` stands for (unknown types are upstream
/// failures).
pub fn from_type(error_type: &str, message: impl Into<String>) -> GatewayError {
    let message = message.into();
    let kind = match error_type {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::PayloadTooLarge,
        "rate_limit_error" => ErrorKind::RateLimited,
        "api_error" => ErrorKind::Internal,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        "billing_error" => return GatewayError::from_upstream(402, message),
        _ => ErrorKind::Internal,
    };
    GatewayError::new(kind, message)
}

/// An Anthropic error object (`{"type":"error","error":{..}}` or the inner `{type,message}`)
/// as a gateway error; `None` when `v` is not one.
pub fn decode(v: &Value) -> Option<GatewayError> {
    let inner = match v.get("error") {
        Some(e @ Value::Object(_)) => e,
        Some(Value::String(s)) => return Some(GatewayError::new(ErrorKind::Internal, s.clone())),
        _ if v.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("_error")) => v,
        _ => return None,
    };
    let error_type = inner.get("type").and_then(Value::as_str).unwrap_or("api_error");
    let message = message(v).unwrap_or_else(|| format!("Upstream reported {error_type} without a message."));
    Some(from_type(error_type, message))
}

pub fn render(e: &GatewayError) -> String {
    json!({"type": "error", "error": {"type": error_type(e.kind), "message": e.message_for(Protocol::Claude)}}).to_string()
}

/// The message of an Anthropic error body: `{"type":"error","error":{"type","message"}}`,
/// and the shapes Anthropic-compatible servers and proxies in front of them use
/// (`{"error":"text"}`, `{"error":{"message"}}`, `{"message"}`, `{"detail"}`).
pub fn message(v: &Value) -> Option<String> {
    let text = |x: Option<&Value>| x.and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(String::from);
    match v.get("error") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
        Some(e @ Value::Object(_)) => {
            if let Some(m) = text(e.get("message")) {
                return Some(m);
            }
        }
        _ => {}
    }
    text(v.get("message")).or_else(|| text(v.get("detail")))
}
