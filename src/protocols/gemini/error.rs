//! Errors in Google's RPC-status shape: `{"error":{"code","message","status"}}`; in an
//! SSE stream the same object as a `data:` line.

use serde_json::json;

use crate::error::{ErrorKind, GatewayError};

pub fn status_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed | ErrorKind::PayloadTooLarge => {
            "INVALID_ARGUMENT"
        }
        ErrorKind::Authentication => "UNAUTHENTICATED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited => "RESOURCE_EXHAUSTED",
        ErrorKind::Internal => "INTERNAL",
        ErrorKind::NotImplemented => "UNIMPLEMENTED",
        ErrorKind::UpstreamUnreachable | ErrorKind::Overloaded => "UNAVAILABLE",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
    }
}

pub fn render(e: &GatewayError) -> String {
    json!({"error": {"code": e.status(), "message": e.message, "status": status_name(e.kind)}}).to_string()
}

/// The message of a Google error body (also an array-wrapped one).
pub fn message(v: &serde_json::Value) -> Option<String> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.get("error").and_then(|e| e.get("message")).and_then(|m| m.as_str()).map(String::from)
}
