//! Errors in Google's RPC-status shape: `{"error":{"code","message","status","details"}}`;
//! in an SSE stream the same object as a `data:` line.

use serde_json::{json, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::protocols::Protocol;

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
    json!({"error": {"code": e.status(), "message": e.message_for(Protocol::Gemini), "status": status_name(e.kind)}}).to_string()
}

/// The HTTP status a Google RPC status name stands for.
fn http_of_status(status: &str) -> Option<u16> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

/// The error object of a body: `{"error":{…}}`, also wrapped in an array (as
/// `streamGenerateContent` without `alt=sse` answers).
fn error_object(v: &Value) -> Option<&Value> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.get("error").filter(|e| !e.is_null())
}

/// The message of a Google error body. A bare string `error` (some proxies) is taken as
/// is; without a message the status name stands in. A retry delay Google gives only in
/// `details[].retryDelay` is appended, so that callers of other protocols see it.
pub fn message(v: &Value) -> Option<String> {
    let e = error_object(v)?;
    if let Some(s) = e.as_str() {
        return Some(s.to_string());
    }
    let mut msg = e
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .or_else(|| e.get("status").and_then(Value::as_str))?
        .to_string();
    let delay = e
        .get("details")
        .and_then(Value::as_array)
        .and_then(|d| d.iter().find_map(|x| x.get("retryDelay").and_then(Value::as_str)));
    if let Some(delay) = delay {
        if !msg.contains("retry") {
            msg.push_str(&format!(" (retry after {delay})"));
        }
    }
    Some(msg)
}

/// A Google error body (an error chunk in a stream, or a 200 answer that is an error)
/// as a gateway error; `None` when `v` is not one.
pub fn from_body(v: &Value) -> Option<GatewayError> {
    let e = error_object(v)?;
    let message = message(v).unwrap_or_else(|| "The upstream reported an error.".to_string());
    let code = e
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .map(|c| c as u16)
        .or_else(|| e.get("status").and_then(Value::as_str).and_then(http_of_status))
        .unwrap_or(502);
    Some(GatewayError::from_upstream(code, message))
}
