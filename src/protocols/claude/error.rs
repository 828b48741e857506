//! Errors in Anthropic's shape: `{"type":"error","error":{"type","message"}}`, and in a
//! stream the same object as an `event: error`.

use serde_json::json;

use crate::error::{ErrorKind, GatewayError};

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

pub fn render(e: &GatewayError) -> String {
    json!({"type": "error", "error": {"type": error_type(e.kind), "message": e.message}}).to_string()
}

/// The message of an Anthropic error body.
pub fn message(v: &serde_json::Value) -> Option<String> {
    v.get("error").and_then(|e| e.get("message")).and_then(|m| m.as_str()).map(String::from)
}
