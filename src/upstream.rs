//! Building the request that goes to a provider, and choosing which of its response
//! headers reach the caller.
//!
//! URLs are inferred as any-api does (a base ending in `/v1` gets `/chat/completions`,
//! otherwise `/v1/chat/completions`; Gemini gets `/v1beta` unless the base names a
//! version) unless the provider's `endpoints` give a path. Auth is the provider's own key
//! in the provider's own header; the caller's credentials are never copied.

use crate::config::{Provider, ProviderType};
use crate::route::GeminiMethod;

/// An HTTP request for the edge to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the gateway asks of the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOp {
    Generate,
    CountTokens,
    /// Responses `/compact`.
    Compact,
    Gemini(GeminiMethod),
}

pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

fn versioned(base: &str, tail: &str) -> String {
    if base.ends_with("/v1") {
        format!("{base}{tail}")
    } else {
        format!("{base}/v1{tail}")
    }
}

/// The endpoint URL on `base` for `op`. `model` is the upstream model name (used in
/// Gemini paths); `query` is appended as given (already encoded, without `?`).
pub fn url(provider: &Provider, base: &str, op: UpstreamOp, model: &str, query: &str) -> String {
    let e = &provider.endpoints;
    let mut url = match (provider.kind, op) {
        (ProviderType::OpenAiChat, _) => match &e.chat_completions_path {
            Some(p) => format!("{base}{p}"),
            None => versioned(base, "/chat/completions"),
        },
        (ProviderType::OpenAiResponses, op) => {
            let url = match &e.responses_path {
                Some(p) => format!("{base}{p}"),
                None => versioned(base, "/responses"),
            };
            match op {
                UpstreamOp::CountTokens => format!("{url}/input_tokens"),
                UpstreamOp::Compact => format!("{url}/compact"),
                _ => url,
            }
        }
        (ProviderType::Claude, op) => {
            let url = match &e.messages_path {
                Some(p) => format!("{base}{p}"),
                None => versioned(base, "/messages"),
            };
            if op == UpstreamOp::CountTokens {
                format!("{url}/count_tokens")
            } else {
                url
            }
        }
        (ProviderType::Gemini, op) => {
            let method = match op {
                UpstreamOp::Gemini(m) => m,
                UpstreamOp::CountTokens => GeminiMethod::CountTokens,
                UpstreamOp::Generate | UpstreamOp::Compact => GeminiMethod::GenerateContent,
            };
            let has_version = ["/v1beta", "/v1", "/v1alpha"].iter().any(|v| base.ends_with(v));
            let root = if has_version { base.to_string() } else { format!("{base}/v1beta") };
            format!("{root}/models/{}:{}", encode_path_segment(model), method.name())
        }
        (ProviderType::Echo, _) => String::new(),
    };
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(query);
    }
    url
}

fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Request headers for `provider`: content type, the provider's auth, the Anthropic
/// version/beta headers (the caller's when given), then the provider's configured
/// `headers`, which override everything before them.
pub fn headers(
    provider: &Provider,
    api_key: &str,
    anthropic_version: Option<&str>,
    anthropic_beta: Option<&str>,
    accept: Option<&str>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![("content-type".into(), "application/json".into())];
    if let Some(a) = accept {
        h.push(("accept".into(), a.into()));
    }
    match provider.kind {
        ProviderType::OpenAiChat | ProviderType::OpenAiResponses => {
            h.push(("authorization".into(), format!("Bearer {api_key}")));
        }
        ProviderType::Claude => {
            h.push(("x-api-key".into(), api_key.into()));
            let version = anthropic_version.filter(|v| !v.trim().is_empty()).unwrap_or(DEFAULT_ANTHROPIC_VERSION);
            h.push(("anthropic-version".into(), version.into()));
            if let Some(beta) = anthropic_beta.filter(|b| !b.trim().is_empty()) {
                h.push(("anthropic-beta".into(), beta.into()));
            }
        }
        ProviderType::Gemini => h.push(("x-goog-api-key".into(), api_key.into())),
        ProviderType::Echo => {}
    }
    for (name, value) in &provider.headers {
        h.retain(|(n, _)| n != name);
        h.push((name.clone(), value.clone()));
    }
    h
}

/// Whether an upstream response header is passed on to the caller: content type, retry
/// hints, rate-limit headers and request ids. Hop-by-hop headers, cookies and
/// compression headers (the runtime decodes bodies) are not.
pub fn keep_response_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "content-type" | "retry-after" | "retry-after-ms" | "x-should-retry" | "request-id"
            | "openai-processing-ms" | "openai-version" | "openai-model" | "x-goog-request-id"
    ) || n.starts_with("x-ratelimit-")
        || n.starts_with("anthropic-ratelimit-")
        || n.starts_with("anthropic-priority-")
}

/// The caller's `x-request-id` is always the gateway's own; the upstream's is kept under
/// this name.
pub const UPSTREAM_REQUEST_ID: &str = "x-upstream-request-id";

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: &str, base: &str, extra: &str) -> Provider {
        let text = format!(r#"{{"providers": {{"p": {{"type": "{kind}", "baseURL": "{base}", "apiKey": "k"{extra}}}}}}}"#);
        crate::config::parse(&text).unwrap().providers["p"].clone()
    }

    #[test]
    fn infers_urls_like_any_api() {
        let chat = provider("openai-chat-completions", "https://a.test/v1", "");
        assert_eq!(url(&chat, &chat.base_urls[0], UpstreamOp::Generate, "m", ""), "https://a.test/v1/chat/completions");
        let chat = provider("openai-chat-completions", "https://a.test/api", "");
        assert_eq!(url(&chat, &chat.base_urls[0], UpstreamOp::Generate, "m", ""), "https://a.test/api/v1/chat/completions");
        let resp = provider("openai-responses", "https://a.test", "");
        assert_eq!(url(&resp, &resp.base_urls[0], UpstreamOp::CountTokens, "m", ""), "https://a.test/v1/responses/input_tokens");
        assert_eq!(url(&resp, &resp.base_urls[0], UpstreamOp::Compact, "m", ""), "https://a.test/v1/responses/compact");
        let claude = provider("claude", "https://a.test", r#", "endpoints": {"messagesPath": "custom/msgs"}"#);
        assert_eq!(url(&claude, &claude.base_urls[0], UpstreamOp::CountTokens, "m", ""), "https://a.test/custom/msgs/count_tokens");
        let gem = provider("gemini", "https://g.test", "");
        assert_eq!(
            url(&gem, &gem.base_urls[0], UpstreamOp::Gemini(GeminiMethod::StreamGenerateContent), "gemini 2/x", "alt=sse"),
            "https://g.test/v1beta/models/gemini%202%2Fx:streamGenerateContent?alt=sse"
        );
        let gem = provider("gemini", "https://g.test/v1", "");
        assert_eq!(url(&gem, &gem.base_urls[0], UpstreamOp::Generate, "m", ""), "https://g.test/v1/models/m:generateContent");
    }

    #[test]
    fn auth_headers_per_provider() {
        let get = |h: &[(String, String)], n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let claude = provider("claude", "https://a.test", r#", "headers": {"X-Extra": "1", "anthropic-version": "2024-01-01"}"#);
        let h = headers(&claude, "sk", Some("2023-06-01"), Some("b1"), None);
        assert_eq!(get(&h, "x-api-key").as_deref(), Some("sk"));
        assert_eq!(get(&h, "anthropic-version").as_deref(), Some("2024-01-01"));
        assert_eq!(get(&h, "anthropic-beta").as_deref(), Some("b1"));
        assert_eq!(get(&h, "x-extra").as_deref(), Some("1"));
        let h = headers(&provider("gemini", "https://g", ""), "gk", None, None, None);
        assert_eq!(get(&h, "x-goog-api-key").as_deref(), Some("gk"));
        assert!(get(&h, "authorization").is_none());
        let h = headers(&provider("openai-responses", "https://o", ""), "ok", None, None, None);
        assert_eq!(get(&h, "authorization").as_deref(), Some("Bearer ok"));
    }

    #[test]
    fn response_header_filter() {
        for keep in ["Content-Type", "retry-after", "x-ratelimit-remaining-requests", "anthropic-ratelimit-tokens-reset", "request-id"] {
            assert!(keep_response_header(keep), "{keep}");
        }
        for drop in ["set-cookie", "content-encoding", "content-length", "transfer-encoding", "connection", "x-request-id"] {
            assert!(!keep_response_header(drop), "{drop}");
        }
    }
}
