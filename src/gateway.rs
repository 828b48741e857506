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
use crate::routing;
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
    /// An authenticated `GET /status`: answer with [`status_reply`].
    Status,
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
        Matched::Status => {
            return match setup {
                Setup::Ready { keys, .. } => match auth::check(&presented(req), false, keys) {
                    Ok(()) => Begin::Status,
                    Err(e) => Begin::Reply(Reply::error(&e, Protocol::OpenAiChat)),
                },
                Setup::Broken(why) => Begin::Reply(Reply::error(&GatewayError::new(ErrorKind::Internal, why.clone()), Protocol::OpenAiChat)),
            };
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
        Operation::Generate | Operation::CountTokens | Operation::Compact => {
            let max = config.limits.max_body_bytes;
            let declared = (req.header)("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Begin::Reply(Reply::error(&too_large(max), protocol));
            }
            Begin::ReadBody { route, max_body_bytes: max }
        }
    }
}

/// `/responses/compact` for a model no Responses provider serves.
fn compact_needs_responses(model: &str) -> GatewayError {
    GatewayError::invalid(format!(
        "Compaction (/responses/compact) runs on the Responses API, and no target of \"{model}\" speaks it. With Codex, configure the gateway as a custom model provider ([model_providers.<id>] with wire_api = \"responses\"): Codex then compacts the conversation with an ordinary request."
    ))
}

pub fn too_large(max: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge,
        format!("Request body is larger than this gateway's limit of {max} bytes (limits.maxBodyBytes)."),
    )
}

/// One upstream a planned request may go to, ready to send with any of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedTarget {
    /// `provider.model`.
    pub target_id: String,
    pub provider: String,
    pub upstream_model: String,
    pub url: String,
    /// The request headers for each key of the provider's pool.
    pub headers_per_key: Vec<Vec<(String, String)>>,
    pub body: Vec<u8>,
    /// `None` for passthrough; else how the answer is converted for the caller.
    pub conversion: Option<Conversion>,
}

impl PreparedTarget {
    pub fn request(&self, key: usize) -> UpstreamRequest {
        let headers = self.headers_per_key.get(key).or(self.headers_per_key.first()).cloned().unwrap_or_default();
        UpstreamRequest { url: self.url.clone(), headers, body: self.body.clone() }
    }
}

/// Where a planned request may go, in order, and the policy that governs the attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub targets: Vec<PreparedTarget>,
    pub protocol: Protocol,
    pub stream: bool,
    pub route: Option<String>,
    pub timeouts: crate::config::Timeouts,
    pub retry: crate::policy::RetryPolicy,
    pub breaker: crate::policy::BreakerPolicy,
    pub keepalive_ms: u64,
    pub log_requests: crate::config::LogRequests,
}

impl Forward {
    /// The attempt driver's view of the targets.
    pub fn candidates(&self) -> Vec<crate::attempts::Candidate> {
        self.targets
            .iter()
            .map(|t| crate::attempts::Candidate { target_id: t.target_id.clone(), provider_id: t.provider.clone(), keys: t.headers_per_key.len().max(1) })
            .collect()
    }
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
    /// A number in [0, 1) choosing among weighted route targets.
    pub pick: f64,
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
    if matches!(route.operation, Operation::CountTokens | Operation::Compact) {
        envelope.stream = false;
    }
    let model_name = envelope
        .model
        .clone()
        .ok_or_else(|| GatewayError::invalid("Missing required parameter: 'model'.").with_param("model"))?;
    resolution.model = Some(model_name.clone());
    let routed = routing::resolve(config, &model_name, protocol, ctx.pick)?;
    let first = routed.targets.first().ok_or_else(|| GatewayError::new(ErrorKind::NotFound, format!("The model \"{model_name}\" has no target.")))?;
    resolution.provider = Some(first.provider.id.clone());
    let query = route::query_pairs(req.query);
    let alt_sse = query.iter().any(|(k, v)| k == "alt" && v == "sse");
    let meta = ResponseMeta { id: ctx.request_id.replace('-', ""), model: model_name.clone(), created: ctx.now_unix_secs };

    // The IR, decoded once when some target needs it (conversion, echo, suffix aliases).
    // A request the IR cannot hold (a hosted tool, an item stored upstream) fails only the
    // targets that need it: a same-protocol target still takes it as it is.
    // Same-protocol targets pass through byte for byte, unless a suffix alias needs the IR.
    let converts = |t: &routing::Target| routed.reasoning.is_some() || t.provider.kind.protocol() != Some(protocol);
    let needs_ir = routed.targets.iter().any(converts);
    let ir = if needs_ir {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| GatewayError::invalid(format!("Request body is not valid JSON: {e}.")))?;
        if protocol == Protocol::OpenAiResponses {
            envelope.options.custom_tools = protocols::openai_responses::request::custom_tool_names(&value);
        }
        Some(protocols::decode_request(protocol, &value).map(|mut ir| {
            ir.stream = envelope.stream;
            if let Some(o) = routed.reasoning {
                ir.reasoning = Some(crate::ir::ReasoningRequest {
                    effort: Some(o.effort),
                    include_thoughts: Some(o.visible),
                    ..Default::default()
                });
            }
            ir
        }))
    } else {
        None
    };

    if route.operation == Operation::Compact && routed.targets.iter().all(converts) {
        return Err(compact_needs_responses(&model_name));
    }
    if first.provider.kind == ProviderType::Echo {
        let ir = ir.ok_or_else(|| GatewayError::new(ErrorKind::Internal, "echo needs the decoded request"))??;
        return Ok(Plan::Reply(echo_reply(protocol, route, &envelope, &ir, meta, alt_sse)));
    }

    // Same-protocol targets get the body as it is, less reasoning the gateway packed for
    // this caller from another provider (a fallback or a model switch earlier in the
    // conversation): their upstream would reject it.
    let cleaned = if routed.targets.iter().any(|t| !converts(t)) { protocols::without_packed_reasoning(protocol, body) } else { None };
    let (body, object) = match &cleaned {
        Some(cleaned) => (cleaned.as_slice(), JsonObject::parse(cleaned)?),
        None => (body, object),
    };
    let mut targets = Vec::new();
    let mut last_error = None;
    for t in &routed.targets {
        if t.provider.kind == ProviderType::Echo {
            continue;
        }
        let target_ir = match &ir {
            _ if !converts(t) => None,
            // Compaction exists on the Responses API only.
            _ if route.operation == Operation::Compact => continue,
            Some(Ok(ir)) => Some(ir),
            Some(Err(e)) => {
                last_error = Some(e.clone());
                continue;
            }
            None => None,
        };
        match prepare(req, route, &envelope, &object, body, target_ir, t, &meta, alt_sse, routed.reasoning.map(|o| !o.visible).unwrap_or(false), ctx) {
            Ok(Prepared::Target(p)) => targets.push(*p),
            Ok(Prepared::Reply(reply)) if targets.is_empty() => return Ok(Plan::Reply(reply)),
            Ok(Prepared::Reply(_)) => {}
            // A target that cannot take this request (a missing secret, something its
            // protocol cannot express) is left out while others remain.
            Err(e) => last_error = Some(e),
        }
    }
    if targets.is_empty() {
        return Err(last_error.unwrap_or_else(|| GatewayError::new(ErrorKind::Internal, "No usable target.")));
    }
    Ok(Plan::Forward(Forward {
        targets,
        protocol,
        stream: envelope.stream,
        route: routed.route.clone(),
        timeouts: config.timeouts,
        retry: config.retry,
        breaker: config.breaker,
        keepalive_ms: config.keepalive_ms,
        log_requests: config.log_requests,
    }))
}

enum Prepared {
    Target(Box<PreparedTarget>),
    /// Answered without the upstream (a token estimate).
    Reply(Reply),
}

#[allow(clippy::too_many_arguments)]
fn prepare(
    req: &Request,
    route: &Route,
    envelope: &Envelope,
    object: &JsonObject,
    body: &[u8],
    ir: Option<&crate::ir::Request>,
    t: &routing::Target,
    meta: &ResponseMeta,
    alt_sse: bool,
    hide_reasoning: bool,
    ctx: &Context,
) -> Result<Prepared, GatewayError> {
    let protocol = route.protocol;
    let provider = t.provider;
    let mut keys = Vec::new();
    let mut missing = Vec::new();
    for source in &provider.api_keys {
        match source {
            ApiKeySource::Inline(k) => keys.push(k.clone()),
            ApiKeySource::Env(name) => match (ctx.env)(name).map(|k| crate::config::normalize_key(&k)) {
                Some(k) if !k.is_empty() => keys.push(k),
                _ => missing.push(name.clone()),
            },
        }
    }
    if keys.is_empty() {
        let what = match missing.first() {
            Some(name) => format!("takes its key from the secret {name} (apiKeyEnv), which is not set. Set it with `wrangler secret put {name}` or in .dev.vars."),
            None => "has no API key configured.".to_string(),
        };
        return Err(GatewayError::new(ErrorKind::Internal, format!("Provider \"{}\" {what}", provider.id)));
    }

    let upstream_model = t.model.upstream_model.clone();
    let upstream_protocol = provider.kind.protocol().unwrap_or(protocol);
    // Tool names this upstream would reject go renamed; the answer maps them back.
    let (renamed, tool_names) = match ir.and_then(|ir| crate::tool_names::fit_request(upstream_protocol, ir)) {
        Some((renamed, map)) => (Some(renamed), map),
        None => (None, Vec::new()),
    };
    let ir = renamed.as_ref().or(ir);
    let conversion = match ir {
        Some(ir) => {
            let framing = if protocol == Protocol::Gemini && !alt_sse { StreamFraming::JsonArray } else { StreamFraming::Sse };
            Some(Conversion {
                client: protocol,
                upstream: upstream_protocol,
                meta: meta.clone(),
                options: envelope.options.clone(),
                framing,
                stream: envelope.stream,
                count: route.operation == Operation::CountTokens,
                hide_reasoning,
                dropped_tools: ir.dropped_tools.clone(),
                tool_names,
            })
        }
        None => None,
    };

    let (body, op, forwarded_query) = match (&conversion, ir) {
        (Some(c), Some(ir)) => {
            if ir.previous_response_id.is_some() && upstream_protocol != Protocol::OpenAiResponses {
                return Err(protocols::openai_chat::request::previous_response_id_error(&format!("a {}", upstream_protocol.name())));
            }
            let target = Target { model: &upstream_model, options: &t.model.options, quirks: provider.quirks };
            let body = if c.count {
                match upstream_protocol {
                    Protocol::Claude => protocols::claude::request::encode_count(ir, &target)?,
                    Protocol::Gemini => protocols::gemini::request::encode_count(ir, &target)?,
                    Protocol::OpenAiResponses => protocols::openai_responses::request::encode_count(ir, &target)?,
                    Protocol::OpenAiChat => {
                        // No counting endpoint on Chat Completions: a documented estimate.
                        let mut reply = Reply::json(200, crate::convert::encode_count(protocol, crate::estimate::request_tokens(ir)));
                        reply.headers.push((ESTIMATE_HEADER.into(), "estimate".into()));
                        return Ok(Prepared::Reply(reply));
                    }
                }
            } else {
                protocols::encode_request(upstream_protocol, ir, &target)?
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
        _ => {
            let body = match protocol {
                Protocol::Gemini => gemini_body(object, body, &upstream_model),
                _ => object.with_field("model", &serde_json::to_string(&upstream_model).unwrap_or_default()),
            };
            let op = match (&route.gemini, &route.operation) {
                (Some((_, method)), _) => UpstreamOp::Gemini(*method),
                (None, Operation::CountTokens) => UpstreamOp::CountTokens,
                (None, Operation::Compact) => UpstreamOp::Compact,
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
    };
    let base = provider.base_urls.first().cloned().unwrap_or_default();
    let url = upstream::url(provider, &base, op, &upstream_model, &forwarded_query);
    let accept = if conversion.is_some() { None } else { (req.header)("accept") };
    // A Claude caller's API version and betas (1M context, interleaved thinking…) go to a
    // Claude upstream even when a suffix alias converts the request.
    let (version, beta) = if conversion.is_some() && protocol != Protocol::Claude {
        (None, None)
    } else {
        ((req.header)("anthropic-version"), (req.header)("anthropic-beta"))
    };
    let headers_per_key = keys
        .iter()
        .map(|k| upstream::headers(provider, k, version.as_deref(), beta.as_deref(), accept.as_deref()))
        .collect();
    Ok(Prepared::Target(Box::new(PreparedTarget {
        target_id: t.id.clone(),
        provider: provider.id.clone(),
        upstream_model,
        url,
        headers_per_key,
        body,
        conversion,
    })))
}

/// `GET /status`: each target's breaker and each provider's key cooldowns as this
/// isolate sees them. Key values never appear, only their positions in the pool.
pub fn status_reply(config: &Config, health: &crate::attempts::Health, now_ms: u64) -> Reply {
    use crate::policy::BreakerState;
    let mut targets: Vec<(&String, &crate::policy::Breaker)> = health.breakers.iter().collect();
    targets.sort_by(|a, b| a.0.cmp(b.0));
    let targets: Vec<serde_json::Value> = targets
        .into_iter()
        .map(|(id, b)| {
            let state = match b.state(now_ms) {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half-open",
            };
            serde_json::json!({
                "target": id,
                "breaker": state,
                "consecutiveFailures": b.consecutive_failures,
                "openForMs": b.open_until_ms.saturating_sub(now_ms),
            })
        })
        .collect();
    let providers: Vec<serde_json::Value> = config
        .providers
        .values()
        .filter(|p| p.kind != ProviderType::Echo)
        .map(|p| {
            let pool = health.pools.get(&p.id);
            let keys: Vec<serde_json::Value> = (0..p.api_keys.len())
                .map(|i| {
                    let until = pool.and_then(|pool| pool.cooldown_until_ms.get(i).copied()).unwrap_or(0);
                    serde_json::json!({"key": i, "coolingDownForMs": until.saturating_sub(now_ms)})
                })
                .collect();
            serde_json::json!({"provider": p.id, "type": p.kind.protocol().map(|x| x.name()).unwrap_or("echo"), "keys": keys})
        })
        .collect();
    let scope = if config.state_binding.is_some() { "shared" } else { "isolate" };
    let body = serde_json::json!({"scope": scope, "targets": targets, "providers": providers});
    Reply::json(200, body.to_string())
}

/// Response header naming the client's tools a converted request left out.
pub const DROPPED_TOOLS_HEADER: &str = "x-gateway-dropped-tools";

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
    for (name, value) in upstream_headers {
        let lower = name.to_ascii_lowercase();
        if lower == "x-request-id" {
            out.push((upstream::UPSTREAM_REQUEST_ID.to_string(), value.clone()));
        } else if upstream::keep_response_header(&lower) {
            out.push((lower, value.clone()));
        }
    }
    out
}

/// Kept upstream headers minus those that describe the upstream's own body framing, for an
/// answer the gateway re-encodes.
pub fn without_framing(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(n, _)| !matches!(n.as_str(), "content-type" | "content-encoding" | "cache-control" | "x-accel-buffering"))
        .collect()
}

/// The headers of a committed stream. Every stream, SSE or Gemini's JSON array, goes out
/// uncompressed and uncached, or the runtime's gzip holds its chunks back. A converted one
/// (`converted`: the caller's framing) carries the caller protocol's content type instead
/// of the upstream's.
pub fn stream_reply_headers(kept: Vec<(String, String)>, converted: Option<StreamFraming>) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(kept.len() + 4);
    let kept = match converted {
        Some(framing) => {
            let content_type = if framing == StreamFraming::Sse { "text/event-stream; charset=utf-8" } else { "application/json" };
            headers.push(("content-type".to_string(), content_type.to_string()));
            without_framing(kept)
        }
        None => kept,
    };
    headers.extend(stream_headers());
    headers.extend(kept);
    headers
}

/// The headers of a 2xx answer relayed to the caller unparsed, as it arrives. Such a body
/// is sent uncompressed: when the upstream cuts it short, the runtime's compressor ends the
/// gzip stream as if it were complete (seen under workerd: a 200 with a clean chunked end
/// and an empty body), while an uncompressed body ends short of its length, so the caller's
/// HTTP client reports the broken transfer (and SDKs retry it).
pub fn relayed_reply_headers(mut kept: Vec<(String, String)>) -> Vec<(String, String)> {
    if !kept.iter().any(|(name, _)| name == "content-encoding") {
        kept.push(("content-encoding".into(), "identity".into()));
    }
    kept
}

/// Why an upstream attempt produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connection refused or reset, DNS failure, TLS failure… (the runtime's message).
    Unreachable(String),
    /// No response headers (or first stream event) within `ms`, per the named setting.
    Timeout { ms: u64, setting: &'static str },
    /// A 2xx stream that ended or failed before its first event.
    BrokenStream(String),
}

pub fn upstream_failure(forward: &Forward, target: &PreparedTarget, failure: &Failure) -> Reply {
    let provider = &target.provider;
    let e = match failure {
        Failure::Unreachable(why) => GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            format!("Provider \"{provider}\" could not be reached: {}", scrub(why, target)),
        ),
        Failure::Timeout { ms, setting } => GatewayError::new(
            ErrorKind::Timeout,
            format!("Provider \"{provider}\" did not answer within {ms} ms ({setting})."),
        ),
        Failure::BrokenStream(why) => GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            format!("Provider \"{provider}\" started a stream that failed before its first event: {}", scrub(why, target)),
        ),
    };
    Reply::error(&e, forward.protocol)
}

/// Removes any header value of the upstream request (keys!) from a runtime message.
fn scrub(message: &str, target: &PreparedTarget) -> String {
    let mut out: String = message.chars().take(300).collect();
    for (_, value) in target.headers_per_key.iter().flatten() {
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
    /// Until the last byte went to the caller (for a stream: the whole stream).
    pub duration_ms: u64,
    /// Streams: until the response started (headers and the first event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    /// Streams: how the stream ended (`complete`, `truncated`, `upstream_error`,
    /// `timeout`, `caller_gone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_end: Option<&'static str>,
    pub upstream_status: Option<u16>,
    pub error: Option<String>,
    /// The route name, when the model was one.
    pub route: Option<String>,
    /// The target that answered (`provider.model`) and the upstream model name.
    pub target: Option<String>,
    pub upstream_model: Option<String>,
    /// Every attempt: target, key index (pools only), outcome, duration.
    pub attempts: Vec<crate::attempts::AttemptRecord>,
}

impl LogLine {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether this line is written under the `logRequests` setting.
    pub fn wanted(&self, setting: crate::config::LogRequests) -> bool {
        use crate::config::LogRequests;
        match setting {
            LogRequests::All => true,
            LogRequests::Off => false,
            LogRequests::Errors => {
                self.status >= 400 || self.error.is_some() || self.attempts.len() > 1 || self.stream_end.is_some_and(|end| end != "complete")
            }
        }
    }
}

#[cfg(test)]
mod tests;
