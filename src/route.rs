//! Which protocol and operation a request path names.
//!
//! Paths are any-api's plus the ones real clients use: OpenAI-style (`/v1/...`, bare,
//! `/openai/v1/...`), Anthropic-style (`/claude/v1/...`, `/v1/messages`), Gemini-style
//! (`/gemini/v1beta/...`, `/v1beta/...`). An unknown path is a 404 and a known path with
//! the wrong method a 405, each in the protocol the path prefix suggests.

use crate::protocols::Protocol;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Create a response (streamed or not, as the body or, for Gemini, the method says).
    Generate,
    CountTokens,
    /// Responses `/responses/compact` (Codex's remote compaction when its provider is the
    /// built-in OpenAI one): only a Responses upstream can do it.
    Compact,
    ListModels,
    GetModel(String),
}

/// Gemini's `:method` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiMethod {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
}

impl GeminiMethod {
    pub fn name(self) -> &'static str {
        match self {
            GeminiMethod::GenerateContent => "generateContent",
            GeminiMethod::StreamGenerateContent => "streamGenerateContent",
            GeminiMethod::CountTokens => "countTokens",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub protocol: Protocol,
    pub operation: Operation,
    /// Gemini only: the model named in the path (percent-decoded) and the method.
    pub gemini: Option<(String, GeminiMethod)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// `GET /health` and friends: answered without auth, revealing nothing.
    Health,
    /// `GET /status`: breaker and key-pool state (authenticated).
    Status,
    Api(Route),
    MethodNotAllowed { protocol: Protocol, allow: &'static str },
    NotFound(Protocol),
}

const OPENAI_PREFIXES: [&str; 3] = ["/v1", "", "/openai/v1"];
const GEMINI_PREFIXES: [&str; 3] = ["/gemini/v1beta", "/v1beta", "/gemini/v1"];

/// The protocol an arbitrary path most likely belongs to, for rendering errors.
pub fn protocol_hint(path: &str) -> Protocol {
    if path.starts_with("/claude/") || path.starts_with("/v1/messages") || path.starts_with("/messages") || path == "/claude" {
        Protocol::Claude
    } else if path.starts_with("/gemini") || path.starts_with("/v1beta") {
        Protocol::Gemini
    } else if path.contains("/responses") {
        Protocol::OpenAiResponses
    } else {
        Protocol::OpenAiChat
    }
}

pub fn route(method: &str, raw_path: &str) -> Matched {
    let trimmed = raw_path.trim_end_matches('/');
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    let is = |m: &str| method.eq_ignore_ascii_case(m);

    if path == "/" || path == "/health" || path == "/v1/health" {
        return if is("GET") || is("HEAD") {
            Matched::Health
        } else {
            Matched::MethodNotAllowed { protocol: Protocol::OpenAiChat, allow: "GET, HEAD, OPTIONS" }
        };
    }

    if path == "/status" {
        return if is("GET") || is("HEAD") {
            Matched::Status
        } else {
            Matched::MethodNotAllowed { protocol: Protocol::OpenAiChat, allow: "GET, HEAD, OPTIONS" }
        };
    }

    let post = |protocol: Protocol, operation: Operation| {
        if is("POST") {
            Matched::Api(Route { protocol, operation, gemini: None })
        } else {
            Matched::MethodNotAllowed { protocol, allow: "POST, OPTIONS" }
        }
    };
    let get = |protocol: Protocol, operation: Operation| {
        if is("GET") || is("HEAD") {
            Matched::Api(Route { protocol, operation, gemini: None })
        } else {
            Matched::MethodNotAllowed { protocol, allow: "GET, HEAD, OPTIONS" }
        }
    };

    for prefix in OPENAI_PREFIXES {
        let Some(rest) = path.strip_prefix(prefix) else { continue };
        match rest {
            "/chat/completions" => return post(Protocol::OpenAiChat, Operation::Generate),
            "/responses" => return post(Protocol::OpenAiResponses, Operation::Generate),
            "/responses/input_tokens" => return post(Protocol::OpenAiResponses, Operation::CountTokens),
            "/responses/compact" => return post(Protocol::OpenAiResponses, Operation::Compact),
            "/models" => return get(Protocol::OpenAiChat, Operation::ListModels),
            _ => {}
        }
        if let Some(id) = rest.strip_prefix("/models/") {
            // `/v1/models/x:generateContent` is Gemini's v1 path, handled below.
            if !id.contains(':') {
                return get(Protocol::OpenAiChat, Operation::GetModel(percent_decode(id)));
            }
        }
    }

    // Bare `/messages` too: clients that take a base URL without `/v1` (SillyTavern's
    // Claude proxy setting) append only `/messages`.
    for prefix in ["/claude/v1", "/v1", "/claude", ""] {
        let Some(rest) = path.strip_prefix(prefix) else { continue };
        match rest {
            "/messages" => return post(Protocol::Claude, Operation::Generate),
            "/messages/count_tokens" => return post(Protocol::Claude, Operation::CountTokens),
            "/models" => return get(Protocol::Claude, Operation::ListModels),
            _ => {}
        }
        if let Some(id) = rest.strip_prefix("/models/") {
            if !id.contains(':') {
                return get(Protocol::Claude, Operation::GetModel(percent_decode(id)));
            }
        }
    }

    for prefix in GEMINI_PREFIXES.iter().chain(["/v1"].iter()) {
        let Some(rest) = path.strip_prefix(prefix) else { continue };
        if rest == "/models" {
            return get(Protocol::Gemini, Operation::ListModels);
        }
        let Some(spec) = rest.strip_prefix("/models/") else { continue };
        return match spec.rsplit_once(':') {
            None => get(Protocol::Gemini, Operation::GetModel(percent_decode(spec))),
            Some((model, action)) => {
                let method = match action {
                    "generateContent" => GeminiMethod::GenerateContent,
                    "streamGenerateContent" => GeminiMethod::StreamGenerateContent,
                    "countTokens" => GeminiMethod::CountTokens,
                    _ => return Matched::NotFound(Protocol::Gemini),
                };
                let operation = match method {
                    GeminiMethod::CountTokens => Operation::CountTokens,
                    _ => Operation::Generate,
                };
                if is("POST") {
                    Matched::Api(Route {
                        protocol: Protocol::Gemini,
                        operation,
                        gemini: Some((percent_decode(model), method)),
                    })
                } else {
                    Matched::MethodNotAllowed { protocol: Protocol::Gemini, allow: "POST, OPTIONS" }
                }
            }
        };
    }

    Matched::NotFound(protocol_hint(path))
}

/// Decodes `%XX` escapes; invalid escapes and non-UTF-8 results are kept as written.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Query string pairs, percent-decoded (`+` as space).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(method: &str, path: &str) -> Route {
        match route(method, path) {
            Matched::Api(r) => r,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn generation_paths() {
        for p in ["/v1/chat/completions", "/chat/completions", "/openai/v1/chat/completions/"] {
            assert_eq!(api("POST", p).protocol, Protocol::OpenAiChat);
        }
        for p in ["/openai/v1/responses", "/v1/responses", "/responses"] {
            assert_eq!(api("POST", p).protocol, Protocol::OpenAiResponses);
            assert_eq!(api("POST", &format!("{p}/compact")).operation, Operation::Compact);
        }
        for p in ["/claude/v1/messages", "/v1/messages", "/claude/messages", "/messages"] {
            assert_eq!(api("POST", p).protocol, Protocol::Claude);
            assert_eq!(api("POST", &format!("{p}/count_tokens")).operation, Operation::CountTokens);
        }
        for p in ["/gemini/v1beta", "/v1beta", "/gemini/v1", "/v1"] {
            let r = api("POST", &format!("{p}/models/gem.gemini-2.5-flash:streamGenerateContent"));
            assert_eq!(r.gemini, Some(("gem.gemini-2.5-flash".into(), GeminiMethod::StreamGenerateContent)));
            let r = api("POST", &format!("{p}/models/a%2Fb.c:countTokens"));
            assert_eq!(r.operation, Operation::CountTokens);
            assert_eq!(r.gemini.unwrap().0, "a/b.c");
        }
    }

    #[test]
    fn model_paths() {
        assert_eq!(api("GET", "/v1/models").operation, Operation::ListModels);
        assert_eq!(api("GET", "/models").protocol, Protocol::OpenAiChat);
        assert_eq!(api("GET", "/claude/v1/models").protocol, Protocol::Claude);
        assert_eq!(api("GET", "/gemini/v1beta/models").protocol, Protocol::Gemini);
        assert_eq!(api("GET", "/v1beta/models/p.m").operation, Operation::GetModel("p.m".into()));
        assert_eq!(api("GET", "/v1/models/p.m.x").operation, Operation::GetModel("p.m.x".into()));
    }

    #[test]
    fn errors_and_health() {
        assert_eq!(route("GET", "/health"), Matched::Health);
        assert_eq!(route("HEAD", "/"), Matched::Health);
        assert!(matches!(route("GET", "/v1/chat/completions"), Matched::MethodNotAllowed { .. }));
        assert!(matches!(route("POST", "/v1/models"), Matched::MethodNotAllowed { .. }));
        assert_eq!(route("POST", "/nope"), Matched::NotFound(Protocol::OpenAiChat));
        assert_eq!(route("POST", "/gemini/v1beta/models/x:explode"), Matched::NotFound(Protocol::Gemini));
        assert_eq!(route("POST", "/claude/v2/x"), Matched::NotFound(Protocol::Claude));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(query_pairs("?alt=sse&key=a%20b&x"), vec![("alt".into(), "sse".into()), ("key".into(), "a b".into()), ("x".into(), "".into())]);
    }
}
