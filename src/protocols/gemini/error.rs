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
