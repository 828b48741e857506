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

    /// Whether this is a prompt too long for the model's context window, in any provider's
    /// words, with (prompt tokens, limit) when the words carry them.
    pub fn context_overflow(&self) -> Option<Option<(u64, u64)>> {
        if self.kind != ErrorKind::InvalidRequest {
            return None;
        }
        let m = self.message.to_ascii_lowercase();
        let after = |marker: &str| m.find(marker).and_then(|i| first_number(&m[i + marker.len()..]));
        if m.starts_with("prompt is too long") {
            // Anthropic: "prompt is too long: 210000 tokens > 200000 maximum"
            return Some(after("prompt is too long").zip(after(" > ")));
        }
        if m.contains("maximum context length") {
            // OpenAI and compatible servers: "…maximum context length is 128000 tokens.
            // However, your messages resulted in 130000 tokens" / "…you requested 5000
            // tokens (4000 in the messages, 1000 in the completion)"
            let prompt = after("resulted in").or_else(|| after("(")).or_else(|| after("requested"));
            return Some(prompt.zip(after("maximum context length")));
        }
        if m.contains("input token count") && m.contains("exceeds the maximum number of tokens") {
            // Gemini: "The input token count (1234567) exceeds the maximum number of tokens
            // allowed (1048576)."
            return Some(after("input token count").zip(after("tokens allowed")));
        }
        if m.contains("exceeds the context window") {
            // OpenAI Responses: "Your input exceeds the context window of this model."
            return Some(None);
        }
        None
    }

    /// The message in the words `protocol`'s clients look for: a context overflow says it
    /// as that provider does (Claude Code and Codex compact the conversation on it).
    pub fn message_for(&self, protocol: Protocol) -> std::borrow::Cow<'_, str> {
        let Some(tokens) = self.context_overflow() else { return self.message.as_str().into() };
        let m = self.message.to_ascii_lowercase();
        match (protocol, tokens) {
            (Protocol::Claude, _) if m.starts_with("prompt is too long") => self.message.as_str().into(),
            (Protocol::Claude, Some((prompt, limit))) => format!("prompt is too long: {prompt} tokens > {limit} maximum").into(),
            (Protocol::Claude, None) => format!("prompt is too long: {}", self.message).into(),
            (Protocol::OpenAiChat | Protocol::OpenAiResponses, Some((prompt, limit))) if !m.contains("maximum context length") => format!(
                "This model's maximum context length is {limit} tokens. However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."
            )
            .into(),
            (Protocol::Gemini, Some((prompt, limit))) if !m.contains("input token count") => {
                format!("The input token count ({prompt}) exceeds the maximum number of tokens allowed ({limit}).").into()
            }
            _ => self.message.as_str().into(),
        }
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

/// The first run of digits in `s` (thousands separators skipped), within its first 40 bytes.
fn first_number(s: &str) -> Option<u64> {
    let start = s.bytes().take(40).position(|b| b.is_ascii_digit())?;
    let digits: String = s[start..].chars().take_while(|c| c.is_ascii_digit() || *c == ',').filter(char::is_ascii_digit).collect();
    digits.parse().ok()
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
    fn context_overflows_are_said_as_each_client_expects() {
        let anthropic = GatewayError::invalid("prompt is too long: 210000 tokens > 200000 maximum");
        let openai = GatewayError::invalid("This model's maximum context length is 128000 tokens. However, your messages resulted in 130,500 tokens. Please reduce the length of the messages.");
        let vllm = GatewayError::invalid("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).");
        let gemini = GatewayError::invalid("The input token count (1234567) exceeds the maximum number of tokens allowed (1048576).");
        let responses = GatewayError::invalid("Your input exceeds the context window of this model. Please adjust your input and try again.");
        assert_eq!(anthropic.context_overflow(), Some(Some((210000, 200000))));
        assert_eq!(openai.context_overflow(), Some(Some((130500, 128000))));
        assert_eq!(vllm.context_overflow(), Some(Some((4000, 4096))));
        assert_eq!(gemini.context_overflow(), Some(Some((1234567, 1048576))));
        assert_eq!(responses.context_overflow(), Some(None));
        assert_eq!(GatewayError::invalid("messages: too many").context_overflow(), None);
        assert_eq!(GatewayError::new(ErrorKind::Internal, "prompt is too long: 1 tokens > 0 maximum").context_overflow(), None);

        assert_eq!(openai.message_for(Protocol::Claude), "prompt is too long: 130500 tokens > 128000 maximum");
        assert_eq!(responses.message_for(Protocol::Claude), format!("prompt is too long: {}", responses.message));
        assert_eq!(anthropic.message_for(Protocol::Claude), anthropic.message);
        assert!(gemini.message_for(Protocol::OpenAiResponses).starts_with("This model's maximum context length is 1048576 tokens. However, your messages resulted in 1234567 tokens."));
        assert_eq!(anthropic.message_for(Protocol::Gemini), "The input token count (210000) exceeds the maximum number of tokens allowed (200000).");
        let oa = body(&anthropic, Protocol::OpenAiChat);
        assert_eq!(oa["error"]["code"], "context_length_exceeded");
        assert!(oa["error"]["message"].as_str().unwrap().contains("maximum context length is 200000 tokens"));
        assert_eq!(body(&openai, Protocol::Claude)["error"]["message"], "prompt is too long: 130500 tokens > 128000 maximum");
        assert_eq!(body(&openai, Protocol::Gemini)["error"]["status"], "INVALID_ARGUMENT");
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
