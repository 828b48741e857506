//! One error taxonomy for the whole gateway, rendered in each client protocol's own shape.
//!
//! Every failure the gateway itself produces is a [`GatewayError`]: a kind (which fixes
//! the HTTP status) and a message written for the person reading it. The protocol
//! modules turn it into OpenAI `{"error":{...}}`, Anthropic `{"type":"error",...}` or
//! Google `{"error":{"code","message","status"}}`, so every SDK raises its own typed
//! exception. Messages never contain a secret: callers build them from names, never
//! from key values.

use crate::protocols::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed JSON, wrong types, missing fields, bad model name (400).
    InvalidRequest,
    /// Missing or wrong gateway key (401).
    Authentication,
    /// The key may not do this (403).
    PermissionDenied,
    /// Unknown model, provider or path (404).
    NotFound,
    /// A known path with the wrong HTTP method (405).
    MethodNotAllowed,
    /// Body larger than the configured limit (413).
    PayloadTooLarge,
    /// Rate limited (429).
    RateLimited,
    /// The gateway is misconfigured or hit a bug (500).
    Internal,
    /// Something this build does not do yet for this pair of protocols (501).
    NotImplemented,
    /// The upstream could not be reached or answered with something unusable (502).
    UpstreamUnreachable,
    /// The upstream is overloaded (503).
    Overloaded,
    /// The upstream did not answer in time (504).
    Timeout,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::NotImplemented => 501,
            ErrorKind::UpstreamUnreachable => 502,
            ErrorKind::Overloaded => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field the error is about, when there is one (OpenAI's `param`).
    pub param: Option<String>,
    /// An upstream's own 4xx status kept as is (402, 409, 422…) when the kind's default
    /// status would say less.
    pub status_override: Option<u16>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError { kind, message: message.into(), param: None, status_override: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.status_override.unwrap_or(self.kind.status())
    }

    /// The HTTP status a caller of `protocol` gets: Anthropic reports overload as 529.
    pub fn status_for(&self, protocol: Protocol) -> u16 {
        if self.kind == ErrorKind::Overloaded && protocol == Protocol::Claude {
            529
        } else {
            self.status()
        }
    }

    /// The kind an upstream HTTP status stands for.
    pub fn kind_for_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            408 | 504 => ErrorKind::Timeout,
            503 | 529 => ErrorKind::Overloaded,
            501 => ErrorKind::NotImplemented,
            400..=499 => ErrorKind::InvalidRequest,
            502 => ErrorKind::UpstreamUnreachable,
            _ => ErrorKind::Internal,
        }
    }

    /// An error an upstream returned, in the gateway's taxonomy.
    pub fn from_upstream(status: u16, message: impl Into<String>) -> Self {
        let kind = Self::kind_for_status(status);
        let mut e = GatewayError::new(kind, message);
        if (400..500).contains(&status) && kind.status() != status {
            e.status_override = Some(status);
        }
        e
    }

    /// The JSON body of this error in `protocol`'s format.
    pub fn render(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::OpenAiChat | Protocol::OpenAiResponses => {
                crate::protocols::openai_chat::error::render(self)
            }
            Protocol::Claude => crate::protocols::claude::error::render(self),
            Protocol::Gemini => crate::protocols::gemini::error::render(self),
        }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(e: &GatewayError, p: Protocol) -> Value {
        serde_json::from_str(&e.render(p)).unwrap()
    }

    #[test]
    fn renders_each_protocol_shape() {
        let e = GatewayError::new(ErrorKind::NotFound, "model \"x.y\" not found").with_param("model");
        let oa = body(&e, Protocol::OpenAiChat);
        assert_eq!(oa["error"]["message"], "model \"x.y\" not found");
        assert_eq!(oa["error"]["param"], "model");
        assert_eq!(oa["error"]["code"], "model_not_found");
        let an = body(&e, Protocol::Claude);
        assert_eq!(an["type"], "error");
        assert_eq!(an["error"]["type"], "not_found_error");
        let ge = body(&e, Protocol::Gemini);
        assert_eq!(ge["error"]["code"], 404);
        assert_eq!(ge["error"]["status"], "NOT_FOUND");
    }

    #[test]
    fn statuses_follow_kinds() {
        let cases = [
            (ErrorKind::InvalidRequest, 400, "invalid_request_error", "INVALID_ARGUMENT"),
            (ErrorKind::Authentication, 401, "authentication_error", "UNAUTHENTICATED"),
            (ErrorKind::PayloadTooLarge, 413, "request_too_large", "INVALID_ARGUMENT"),
            (ErrorKind::RateLimited, 429, "rate_limit_error", "RESOURCE_EXHAUSTED"),
            (ErrorKind::Internal, 500, "api_error", "INTERNAL"),
            (ErrorKind::NotImplemented, 501, "invalid_request_error", "UNIMPLEMENTED"),
            (ErrorKind::UpstreamUnreachable, 502, "api_error", "UNAVAILABLE"),
            (ErrorKind::Overloaded, 503, "overloaded_error", "UNAVAILABLE"),
            (ErrorKind::Timeout, 504, "timeout_error", "DEADLINE_EXCEEDED"),
        ];
        for (kind, status, claude_type, google_status) in cases {
            let e = GatewayError::new(kind, "m");
            assert_eq!(e.status(), status);
            assert_eq!(body(&e, Protocol::Claude)["error"]["type"], claude_type);
            assert_eq!(body(&e, Protocol::Gemini)["error"]["status"], google_status);
            assert_eq!(body(&e, Protocol::OpenAiResponses)["error"]["message"], "m");
        }
    }
}
