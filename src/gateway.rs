//! The gateway's request handling as plain functions: request parts in, decisions out.
//!
//! The edge drives a request in two steps. [`begin`] routes, answers what needs no body
//! (CORS preflight, health, model lists, errors) and checks auth and size; [`plan`]
//! takes the body and either answers (echo, errors) or returns the upstream request to
//! send. When the upstream answers, [`upstream_reply_headers`] picks the headers the
//! caller gets, and [`upstream_failure`] turns a failed attempt into the caller's error.
//! No I/O happens here, so all of it is tested natively.

use crate::auth::{self, Presented};
use crate::config::{ApiKeySource, Config, ProviderType};
use crate::convert::Conversion;
use crate::echo;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::ResponseMeta;
use crate::json_fields::{JsonKind, JsonObject};
use crate::models;
use crate::protocols::{self, Envelope, Protocol, StreamFraming, Target};
use crate::route::{self, GeminiMethod, Matched, Operation, Route};
use crate::upstream::{self, UpstreamOp, UpstreamRequest};

/// The parts of an incoming request the core looks at.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header lookup by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

/// What the gateway was configured with, or why it cannot serve.
pub enum Setup<'a> {
    Ready { config: &'a Config, keys: &'a [String] },
    /// A message for the operator: what to fix (never a secret).
    Broken(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Sent as a stream, one chunk at a time.
    Chunks(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Bytes(body.into_bytes()),
        }
    }

    pub fn error(e: &GatewayError, protocol: Protocol) -> Reply {
        let mut reply = Reply::json(e.status_for(protocol), e.render(protocol));
        if e.kind == ErrorKind::Authentication {
            reply.headers.push(("www-authenticate".into(), "Bearer".into()));
        }
        reply
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The outcome of [`begin`].
pub enum Begin {
    Reply(Reply),
    /// Read the body (at most `max_body_bytes`) and call [`plan`].
    ReadBody { route: Route, max_body_bytes: u64 },
}

/// Headers allowed in CORS preflights when the browser does not list its own.
const CORS_HEADERS: &str = "authorization, content-type, x-api-key, x-goog-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, openai-organization, openai-project, x-stainless-os, x-stainless-lang, x-stainless-package-version, x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, x-stainless-retry-count, x-stainless-timeout, x-goog-api-client, x-request-id";

/// Headers every response carries: the request id and CORS.
pub fn common_headers(request_id: &str) -> Vec<(String, String)> {
    vec![
        ("x-request-id".into(), request_id.into()),
        ("access-control-allow-origin".into(), "*".into()),
        ("access-control-expose-headers".into(), "*".into()),
    ]
}

fn preflight(req: &Request) -> Reply {
    let allow_headers = (req.header)("access-control-request-headers").unwrap_or_else(|| CORS_HEADERS.to_string());
    Reply {
        status: 204,
        headers: vec![
            ("access-control-allow-methods".into(), "GET, HEAD, POST, OPTIONS".into()),
            ("access-control-allow-headers".into(), allow_headers),
            ("access-control-max-age".into(), "86400".into()),
            ("vary".into(), "Origin, Access-Control-Request-Headers".into()),
        ],
        body: Body::Empty,
    }
}

fn presented(req: &Request) -> Presented {
    let query_key = route::query_pairs(req.query).into_iter().find(|(k, _)| k == "key").map(|(_, v)| v);
    Presented {
        authorization: (req.header)("authorization"),
        x_api_key: (req.header)("x-api-key"),
        x_goog_api_key: (req.header)("x-goog-api-key"),
        query_key,
    }
}

pub fn begin(req: &Request, setup: &Setup) -> Begin {
    if req.method.eq_ignore_ascii_case("OPTIONS") {
        return Begin::Reply(preflight(req));
    }
    let route = match route::route(req.method, req.path) {
        Matched::Health => {
            let body = if req.method.eq_ignore_ascii_case("HEAD") { Body::Empty } else { Body::Bytes(br#"{"status":"ok"}"#.to_vec()) };
            return Begin::Reply(Reply { status: 200, headers: vec![("content-type".into(), "application/json".into())], body });
        }
        Matched::NotFound(protocol) => {
            let e = GatewayError::new(ErrorKind::NotFound, format!("No endpoint {} {} on this gateway.", req.method, req.path));
            return Begin::Reply(Reply::error(&e, protocol));
        }
        // Codex first tries a WebSocket on /v1/responses and falls back to HTTP only on 426.
        Matched::MethodNotAllowed { protocol: Protocol::OpenAiResponses, .. }
            if (req.header)("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) =>
        {
            let e = GatewayError::new(ErrorKind::InvalidRequest, "WebSocket mode is not supported; use HTTP (POST with stream: true).");
            let mut reply = Reply::error(&e, Protocol::OpenAiResponses);
            reply.status = 426;
            reply.headers.push(("upgrade".into(), "HTTP/1.1".into()));
            return Begin::Reply(reply);
        }
        Matched::MethodNotAllowed { protocol, allow } => {
            let e = GatewayError::new(
                ErrorKind::MethodNotAllowed,
                format!("Method {} is not allowed on {}; allowed: {allow}.", req.method, req.path),
            );
            let mut reply = Reply::error(&e, protocol);
            reply.headers.push(("allow".into(), allow.into()));
            return Begin::Reply(reply);
        }
        Matched::Api(route) => route,
    };
    let protocol = route.protocol;
    let (config, keys) = match setup {
        Setup::Ready { config, keys } => (*config, *keys),
        Setup::Broken(why) => {
            return Begin::Reply(Reply::error(&GatewayError::new(ErrorKind::Internal, why.clone()), protocol));
        }
    };
    if let Err(e) = auth::check(&presented(req), protocol == Protocol::Gemini, keys) {
        return Begin::Reply(Reply::error(&e, protocol));
    }
    match &route.operation {
        Operation::ListModels => {
            let list = models::list(config);
            let body = match protocol {
                Protocol::Gemini => protocols::gemini::models::list(&list),
                _ => protocols::openai_chat::models::list(&list),
            };
            Begin::Reply(Reply::json(200, body))
        }
        Operation::GetModel(id) => {
            let wanted = id.strip_prefix("models/").unwrap_or(id);
            match models::list(config).into_iter().find(|m| m.id == wanted) {
                Some(m) => {
                    let body = match protocol {
                        Protocol::Gemini => protocols::gemini::models::object(&m),
                        _ => protocols::openai_chat::models::object(&m),
                    };
                    Begin::Reply(Reply::json(200, body.to_string()))
                }
                None => {
                    let e = match models::resolve(config, wanted, protocol) {
                        Err(e) => e,
                        // Providers without a model list accept any name but list none.
                        Ok(_) => GatewayError::new(ErrorKind::NotFound, format!("The model \"{wanted}\" is accepted by its provider but not listed.")).with_param("model"),
                    };
                    Begin::Reply(Reply::error(&e, protocol))
                }
            }
        }
        Operation::Generate | Operation::CountTokens => {
            let max = config.limits.max_body_bytes;
            let declared = (req.header)("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Begin::Reply(Reply::error(&too_large(max), protocol));
            }
            Begin::ReadBody { route, max_body_bytes: max }
        }
    }
}

pub fn too_large(max: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge,
        format!("Request body is larger than this gateway's limit of {max} bytes (limits.maxBodyBytes)."),
    )
}

/// Where a planned request goes and how to report on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub request: UpstreamRequest,
    pub protocol: Protocol,
    pub stream: bool,
    pub provider: String,
    pub upstream_model: String,
    pub first_byte_ms: u64,
    /// `None` for passthrough; else how the answer is converted for the caller.
    pub conversion: Option<Conversion>,
}

pub enum Plan {
    Reply(Reply),
    Forward(Forward),
}

/// Facts of the request the edge supplies: its id, the clock, and env lookups for
/// `apiKeyEnv` secrets.
pub struct Context<'a> {
    pub request_id: &'a str,
    pub now_unix_secs: u64,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// For logs: which provider and model a request resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub provider: Option<String>,
    pub model: Option<String>,
}

pub fn plan(req: &Request, route: &Route, body: &[u8], config: &Config, ctx: &Context, resolution: &mut Resolution) -> Plan {
    match plan_inner(req, route, body, config, ctx, resolution) {
        Ok(plan) => plan,
        Err(e) => Plan::Reply(Reply::error(&e, route.protocol)),
    }
}

fn plan_inner(req: &Request, route: &Route, body: &[u8], config: &Config, ctx: &Context, resolution: &mut Resolution) -> Result<Plan, GatewayError> {
    let protocol = route.protocol;
    if body.len() as u64 > config.limits.max_body_bytes {
        return Err(too_large(config.limits.max_body_bytes));
    }
    let object = JsonObject::parse(body)?;
    let mut envelope = match protocol {
        Protocol::OpenAiChat => protocols::openai_chat::request::envelope(&object)?,
        Protocol::OpenAiResponses => protocols::openai_responses::request::envelope(&object)?,
        Protocol::Claude => protocols::claude::request::envelope(&object)?,
        Protocol::Gemini => protocols::gemini::request::envelope(&object)?,
    };
    if let Some((model, method)) = &route.gemini {
        envelope.model = Some(model.strip_prefix("models/").unwrap_or(model).to_string());
        envelope.stream = *method == GeminiMethod::StreamGenerateContent;
    }
    if route.operation == Operation::CountTokens {
        envelope.stream = false;
    }
    let model_name = envelope
        .model
        .clone()
        .ok_or_else(|| GatewayError::invalid("Missing required parameter: 'model'.").with_param("model"))?;
    resolution.model = Some(model_name.clone());
    let resolved = models::resolve(config, &model_name, protocol)?;
    let provider = resolved.provider;
    resolution.provider = Some(provider.id.clone());
    let query = route::query_pairs(req.query);
    let alt_sse = query.iter().any(|(k, v)| k == "alt" && v == "sse");

    if provider.kind == ProviderType::Echo {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| GatewayError::invalid(format!("Request body is not valid JSON: {e}.")))?;
        let ir = protocols::decode_request(protocol, &value)?;
        let meta = ResponseMeta { id: ctx.request_id.replace('-', ""), model: model_name, created: ctx.now_unix_secs };
        return Ok(Plan::Reply(echo_reply(protocol, route, &envelope, &ir, meta, alt_sse)));
    }

    let api_key = match &provider.api_key {
        ApiKeySource::Inline(k) => k.clone(),
        ApiKeySource::Env(name) => match (ctx.env)(name).map(|k| crate::config::normalize_key(&k)) {
            Some(k) if !k.is_empty() => k,
            _ => {
                return Err(GatewayError::new(
                    ErrorKind::Internal,
                    format!("Provider \"{}\" takes its key from the secret {name} (apiKeyEnv), which is not set. Set it with `wrangler secret put {name}` or in .dev.vars.", provider.id),
                ))
            }
        },
        ApiKeySource::None => {
            return Err(GatewayError::new(ErrorKind::Internal, format!("Provider \"{}\" has no API key configured.", provider.id)))
        }
    };

    let upstream_model = resolved.model.upstream_model.clone();
    let upstream_protocol = provider.kind.protocol().unwrap_or(protocol);
    let passthrough = upstream_protocol == protocol;
    let conversion = if passthrough {
        None
    } else {
        let meta = ResponseMeta { id: ctx.request_id.replace('-', ""), model: model_name.clone(), created: ctx.now_unix_secs };
        let framing = if protocol == Protocol::Gemini && !alt_sse { StreamFraming::JsonArray } else { StreamFraming::Sse };
        Some(Conversion {
            client: protocol,
            upstream: upstream_protocol,
            meta,
            options: envelope.options,
            framing,
            stream: envelope.stream,
            count: route.operation == Operation::CountTokens,
        })
    };

    let (body, op, forwarded_query) = match &conversion {
        None => {
            let body = match protocol {
                Protocol::Gemini => gemini_body(&object, body, &upstream_model),
                _ => object.with_field("model", &serde_json::to_string(&upstream_model).unwrap_or_default()),
            };
            let op = match (&route.gemini, &route.operation) {
                (Some((_, method)), _) => UpstreamOp::Gemini(*method),
                (None, Operation::CountTokens) => UpstreamOp::CountTokens,
                _ => UpstreamOp::Generate,
            };
            // The caller's query minus its gateway key (Gemini's `alt=sse`, Anthropic's `beta=true`).
            let query = req
                .query
                .split('&')
                .filter(|p| !p.is_empty() && p.split('=').next() != Some("key"))
                .collect::<Vec<_>>()
                .join("&");
            (body, op, query)
        }
        Some(c) => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| GatewayError::invalid(format!("Request body is not valid JSON: {e}.")))?;
            let mut ir = protocols::decode_request(protocol, &value)?;
            ir.stream = envelope.stream;
            if ir.previous_response_id.is_some() && upstream_protocol != Protocol::OpenAiResponses {
                return Err(protocols::openai_chat::request::previous_response_id_error(&format!("a {}", upstream_protocol.name())));
            }
            let target = Target { model: &upstream_model, options: &resolved.model.options, quirks: provider.quirks };
            let body = if c.count {
                match upstream_protocol {
                    Protocol::Claude => protocols::claude::request::encode_count(&ir, &target)?,
                    Protocol::Gemini => protocols::gemini::request::encode_count(&ir, &target)?,
                    Protocol::OpenAiResponses => protocols::openai_responses::request::encode_count(&ir, &target)?,
                    Protocol::OpenAiChat => {
                        // No counting endpoint on Chat Completions: a documented estimate.
                        let mut reply = Reply::json(200, crate::convert::encode_count(protocol, crate::estimate::request_tokens(&ir)));
                        reply.headers.push((ESTIMATE_HEADER.into(), "estimate".into()));
                        return Ok(Plan::Reply(reply));
                    }
                }
            } else {
                protocols::encode_request(upstream_protocol, &ir, &target)?
            };
            let op = match (upstream_protocol, c.count, c.stream) {
                (_, true, _) => UpstreamOp::CountTokens,
                (Protocol::Gemini, false, true) => UpstreamOp::Gemini(GeminiMethod::StreamGenerateContent),
                (Protocol::Gemini, false, false) => UpstreamOp::Gemini(GeminiMethod::GenerateContent),
                _ => UpstreamOp::Generate,
            };
            let query = if upstream_protocol == Protocol::Gemini && c.stream && !c.count { "alt=sse".to_string() } else { String::new() };
            (serde_json::to_vec(&body).unwrap_or_default(), op, query)
        }
    };
    let base = provider.base_urls.first().cloned().unwrap_or_default();
    let url = upstream::url(provider, &base, op, &upstream_model, &forwarded_query);
    let accept = if conversion.is_some() { None } else { (req.header)("accept") };
    let headers = upstream::headers(
        provider,
        &api_key,
        (req.header)("anthropic-version").as_deref(),
        (req.header)("anthropic-beta").as_deref(),
        accept.as_deref(),
    );
    Ok(Plan::Forward(Forward {
        request: UpstreamRequest { url, headers, body },
        protocol,
        stream: envelope.stream,
        provider: provider.id.clone(),
        upstream_model,
        first_byte_ms: config.timeouts.first_byte_ms,
        conversion,
    }))
}

/// Response header marking a token count the gateway estimated (no upstream counter).
pub const ESTIMATE_HEADER: &str = "x-gateway-token-count";

/// Gemini bodies carry no model, except countTokens' nested `generateContentRequest`,
/// whose `model` is rewritten; anything else is forwarded byte for byte.
fn gemini_body(object: &JsonObject, body: &[u8], upstream_model: &str) -> Vec<u8> {
    let Some(inner) = object.get("generateContentRequest") else { return body.to_vec() };
    if JsonKind::of(inner) != JsonKind::Object {
        return body.to_vec();
    }
    let Ok(inner) = JsonObject::parse(inner.get().as_bytes()) else { return body.to_vec() };
    if inner.get("model").is_none() {
        return body.to_vec();
    }
    let model = serde_json::to_string(&format!("models/{upstream_model}")).unwrap_or_default();
    let rewritten = String::from_utf8(inner.with_field("model", &model)).unwrap_or_default();
    object.with_field("generateContentRequest", &rewritten)
}

fn echo_reply(protocol: Protocol, route: &Route, envelope: &Envelope, ir: &crate::ir::Request, meta: ResponseMeta, alt_sse: bool) -> Reply {
    if route.operation == Operation::CountTokens {
        let n = crate::estimate::request_tokens(ir).max(1);
        let mut reply = Reply::json(200, crate::convert::encode_count(protocol, n));
        reply.headers.push((ESTIMATE_HEADER.into(), "estimate".into()));
        return reply;
    }
    let framing = if protocol == Protocol::Gemini && !alt_sse { StreamFraming::JsonArray } else { StreamFraming::Sse };
    let response = echo::response(ir, meta);
    let chunks = echo::encode(protocol, envelope, framing, &response);
    if !envelope.stream {
        return Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Bytes(chunks.concat()),
        };
    }
    let content_type = if framing == StreamFraming::Sse { "text/event-stream; charset=utf-8" } else { "application/json" };
    let mut headers = vec![("content-type".to_string(), content_type.to_string())];
    headers.extend(stream_headers());
    Reply { status: 200, headers, body: Body::Chunks(chunks) }
}

/// Headers that keep event streams from being cached or compressed (and so buffered)
/// on the way to the caller.
pub fn stream_headers() -> Vec<(String, String)> {
    vec![
        ("cache-control".into(), "no-cache".into()),
        ("content-encoding".into(), "identity".into()),
        ("x-accel-buffering".into(), "no".into()),
    ]
}

/// The headers the caller gets with an upstream's answer.
pub fn upstream_reply_headers(upstream_headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut event_stream = false;
    for (name, value) in upstream_headers {
        let lower = name.to_ascii_lowercase();
        if lower == "x-request-id" {
            out.push((upstream::UPSTREAM_REQUEST_ID.to_string(), value.clone()));
        } else if upstream::keep_response_header(&lower) {
            if lower == "content-type" && value.to_ascii_lowercase().starts_with("text/event-stream") {
                event_stream = true;
            }
            out.push((lower, value.clone()));
        }
    }
    if event_stream {
        out.extend(stream_headers());
    }
    out
}

/// Why an upstream attempt produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connection refused or reset, DNS failure, TLS failure… (the runtime's message).
    Unreachable(String),
    /// No response headers within `first_byte_ms`.
    Timeout,
}

pub fn upstream_failure(forward: &Forward, failure: &Failure) -> Reply {
    let e = match failure {
        Failure::Unreachable(why) => GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            format!("Provider \"{}\" could not be reached: {}", forward.provider, scrub(why, &forward.request)),
        ),
        Failure::Timeout => GatewayError::new(
            ErrorKind::Timeout,
            format!(
                "Provider \"{}\" did not answer within {} ms (timeouts.firstByteMs).",
                forward.provider, forward.first_byte_ms
            ),
        ),
    };
    Reply::error(&e, forward.protocol)
}

/// Removes any header value of the upstream request (keys!) from a runtime message.
fn scrub(message: &str, request: &UpstreamRequest) -> String {
    let mut out: String = message.chars().take(300).collect();
    for (_, value) in &request.headers {
        if value.len() >= 8 {
            out = out.replace(value.as_str(), "[redacted]");
            if let Some(bare) = value.strip_prefix("Bearer ") {
                out = out.replace(bare, "[redacted]");
            }
        }
    }
    out
}

/// One structured log line per request. Never holds a key or a body.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub protocol: Option<&'static str>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: u16,
    pub duration_ms: u64,
    pub upstream_status: Option<u16>,
    pub error: Option<String>,
}

impl LogLine {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
