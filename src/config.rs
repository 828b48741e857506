//! `ANY_API_CONFIG`: parsing, validation and the typed configuration the gateway runs on.
//!
//! The schema is any-api's (`version`, `providers.<id>` with `type`, `baseURL`, `apiKey` /
//! `apiKeyEnv`, `headers`, `endpoints`, `quirks`, `options`, `models`) plus gateway
//! settings (`limits`, `timeouts`). The text may be JSONC. Validation runs once, when the
//! text is first seen, and reports every problem with its JSON path, so an operator can
//! fix a config in one go. Nothing here ever prints a key value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::policy::{BreakerPolicy, RetryPolicy};
use crate::protocols::Protocol;

pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_FIRST_BYTE_MS: u64 = 600_000;
pub const DEFAULT_IDLE_MS: u64 = 300_000;
pub const DEFAULT_TOTAL_MS: u64 = 1_800_000;
pub const DEFAULT_KEEPALIVE_MS: u64 = 15_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Sorted by id, so model lists are stable.
    pub providers: BTreeMap<String, Provider>,
    /// Named routes clients use as models.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Patterns sending bare vendor model names (`claude-…`) to a provider, first match
    /// wins; `None` means the built-in defaults (see `routing`).
    pub model_routing: Option<Vec<NameRule>>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    /// Keepalive interval during upstream silences in streams (0 = off).
    pub keepalive_ms: u64,
    /// The Durable Object binding sharing breaker and key state across isolates.
    pub state_binding: Option<String>,
    /// Which requests get a log line.
    pub log_requests: LogRequests,
}

/// `logRequests`: which requests get their structured log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogRequests {
    /// Every request (the default).
    #[default]
    All,
    /// Only requests that failed (status 400 or above), needed more than one attempt,
    /// or whose stream did not end complete.
    Errors,
    /// None.
    Off,
}

impl LogRequests {
    pub const NAMES: [&'static str; 3] = ["all", "errors", "off"];

    fn parse(s: &str) -> Option<LogRequests> {
        match s {
            "all" => Some(LogRequests::All),
            "errors" => Some(LogRequests::Errors),
            "off" => Some(LogRequests::Off),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Targets in order; the next one when a target fails.
    Fallback,
    /// One target picked by weight, then the rest in order when it fails.
    Weighted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub strategy: Strategy,
    /// `provider.model` names with weights (1 for fallback routes).
    pub targets: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRule {
    /// Glob patterns (`*` matches any run of characters).
    pub patterns: Vec<String>,
    pub provider: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (bytes); bigger bodies get a 413.
    pub max_body_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for an upstream's response headers (and, for streams, its first
    /// event).
    pub first_byte_ms: u64,
    /// Longest silence between two events of a stream.
    pub idle_ms: u64,
    /// Longest a whole request may take, stream included.
    pub total_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderType {
    OpenAiChat,
    OpenAiResponses,
    Claude,
    Gemini,
    /// Built in: answers locally, in the caller's protocol, from the request itself.
    Echo,
}

impl ProviderType {
    pub const NAMES: [&'static str; 5] =
        ["openai-chat-completions", "openai-responses", "claude", "gemini", "echo"];

    pub fn parse(name: &str) -> Option<ProviderType> {
        Some(match name {
            "openai-chat-completions" => ProviderType::OpenAiChat,
            "openai-responses" => ProviderType::OpenAiResponses,
            "claude" => ProviderType::Claude,
            "gemini" => ProviderType::Gemini,
            "echo" => ProviderType::Echo,
            _ => return None,
        })
    }

    /// The wire protocol the provider speaks; `None` for the built-in echo.
    pub fn protocol(self) -> Option<Protocol> {
        match self {
            ProviderType::OpenAiChat => Some(Protocol::OpenAiChat),
            ProviderType::OpenAiResponses => Some(Protocol::OpenAiResponses),
            ProviderType::Claude => Some(Protocol::Claude),
            ProviderType::Gemini => Some(Protocol::Gemini),
            ProviderType::Echo => None,
        }
    }
}

/// Where one of a provider's upstream keys comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    Inline(String),
    /// The name of a Worker secret or variable holding the key (a Workers secret holds
    /// at most 5 KB, so keys can live outside the config).
    Env(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub chat_completions_path: Option<String>,
    pub responses_path: Option<String>,
    pub messages_path: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// openai-responses: move `instructions` into a leading developer message.
    pub no_instructions: bool,
    /// openai-responses: never send `previous_response_id`.
    pub no_previous_response_id: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelOptions {
    pub reasoning_effort: Option<String>,
    pub max_instructions_chars: Option<u64>,
    pub max_tokens: Option<u64>,
    /// `promptCache`: whether converted requests to a `claude` upstream get Anthropic cache
    /// breakpoints (last tool, system, last message), so a growing conversation is read
    /// from the cache instead of paid in full each turn. Unset: when the client asks for
    /// caching (`cache_control` marks, `prompt_cache_key`).
    pub prompt_cache: Option<bool>,
}

impl ModelOptions {
    /// `self` with unset fields taken from `defaults`.
    fn or(&self, defaults: &ModelOptions) -> ModelOptions {
        ModelOptions {
            reasoning_effort: self.reasoning_effort.clone().or_else(|| defaults.reasoning_effort.clone()),
            max_instructions_chars: self.max_instructions_chars.or(defaults.max_instructions_chars),
            max_tokens: self.max_tokens.or(defaults.max_tokens),
            prompt_cache: self.prompt_cache.or(defaults.prompt_cache),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub upstream_model: String,
    /// Model options already merged over the provider's.
    pub options: ModelOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub kind: ProviderType,
    /// Normalised (scheme present, no trailing `/`); empty only for echo.
    pub base_urls: Vec<String>,
    /// The key pool: rotated per request; empty only for echo.
    pub api_keys: Vec<ApiKeySource>,
    pub headers: Vec<(String, String)>,
    pub endpoints: Endpoints,
    pub quirks: Quirks,
    pub options: ModelOptions,
    /// `None` when the provider lists no models: then any model name is accepted and
    /// sent upstream unchanged.
    pub models: Option<BTreeMap<String, ModelConfig>>,
}

impl Provider {
    /// The configuration of `name` on this provider, if the provider serves it.
    pub fn model(&self, name: &str) -> Option<ModelConfig> {
        match &self.models {
            Some(models) => models.get(name).cloned(),
            None => Some(ModelConfig { upstream_model: name.to_string(), options: self.options.clone() }),
        }
    }
}

/// Every problem found in a config, each prefixed with its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

/// Parses and validates `ANY_API_CONFIG` text (JSON or JSONC).
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    if text.trim().is_empty() {
        return Err(ConfigErrors(vec!["ANY_API_CONFIG is empty".into()]));
    }
    let root: Value = serde_json::from_str(&crate::jsonc::strip(text)).map_err(|e| {
        ConfigErrors(vec![format!(
            "ANY_API_CONFIG is not valid JSON/JSONC at line {} column {}: {}",
            e.line(),
            e.column(),
            describe_json_error(&e)
        )])
    })?;
    let mut v = Validator { errors: Vec::new() };
    let config = v.root(&root);
    if v.errors.is_empty() {
        config.ok_or_else(|| ConfigErrors(vec!["ANY_API_CONFIG is invalid".into()]))
    } else {
        Err(ConfigErrors(v.errors))
    }
}

/// serde_json's message without its own " at line L column C" suffix (we print ours).
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

struct Validator {
    errors: Vec<String>,
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Keys starting with `$` or `_` (`$schema`, `_comment`) are the operator's notes.
fn is_note(key: &str) -> bool {
    key.starts_with('$') || key.starts_with('_')
}

/// any-api's truthy values: `true`, `1`, `"1"`, `"true"`, `"yes"`, `"on"`.
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64().map(|f| f != 0.0).unwrap_or(false)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

/// Trims, drops surrounding quotes and a leading `Bearer ` (any-api's normalisation).
pub fn normalize_key(raw: &str) -> String {
    let mut k = raw.trim();
    if k.len() >= 2 && ((k.starts_with('"') && k.ends_with('"')) || (k.starts_with('\'') && k.ends_with('\''))) {
        k = k[1..k.len() - 1].trim();
    }
    if k.len() > 7 && k[..7].eq_ignore_ascii_case("bearer ") {
        k = k[7..].trim();
    }
    k.to_string()
}

impl Validator {
    fn err(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.errors.push(format!("{path}: {msg}"));
    }

    fn object<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.err(path, format!("expected an object, got {}", kind_name(other)));
                None
            }
        }
    }

    fn unknown_keys(&mut self, path: &str, map: &Map<String, Value>, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) && !is_note(key) {
                self.err(&join(path, key), format!("unknown field; expected one of {}", known.join(", ")));
            }
        }
    }

    fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::String(_) => {
                self.err(path, "must not be empty");
                None
            }
            other => {
                self.err(path, format!("expected a string, got {}", kind_name(other)));
                None
            }
        }
    }

    fn non_negative(&mut self, path: &str, v: &Value) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.err(path, format!("expected a non-negative integer, got {}", v));
                None
            }
        }
    }

    /// A value that may be one item or a non-empty list of them, with each item's path.
    fn one_or_many<'v>(&mut self, path: &str, v: &'v Value) -> Vec<(String, &'v Value)> {
        match v {
            Value::Array(items) if items.is_empty() => {
                self.err(path, "must not be an empty list");
                Vec::new()
            }
            Value::Array(items) => items.iter().enumerate().map(|(i, x)| (format!("{path}[{i}]"), x)).collect(),
            other => vec![(path.to_string(), other)],
        }
    }

    fn routes(&mut self, v: &Value, providers: &BTreeMap<String, Provider>) -> BTreeMap<String, RouteConfig> {
        let mut routes = BTreeMap::new();
        let Some(map) = self.object("routes", v) else { return routes };
        for (name, rv) in map {
            if is_note(name) {
                continue;
            }
            let path = join("routes", name);
            if name.contains('.') || name.trim().is_empty() {
                self.err(&path, "route names must be non-empty and contain no '.' (that is how provider.model names are told apart)");
                continue;
            }
            let Some(r) = self.object(&path, rv) else { continue };
            self.unknown_keys(&path, r, &["strategy", "targets"]);
            let strategy = match r.get("strategy").and_then(Value::as_str) {
                None | Some("fallback") => Strategy::Fallback,
                Some("weighted") | Some("loadbalance") => Strategy::Weighted,
                Some(other) => {
                    self.err(&join(&path, "strategy"), format!("unknown strategy \"{other}\"; expected fallback or weighted"));
                    continue;
                }
            };
            let mut targets = Vec::new();
            match r.get("targets") {
                Some(Value::Array(items)) if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        let tpath = format!("{path}.targets[{i}]");
                        let (model, weight) = match item {
                            Value::String(m) => (m.trim().to_string(), 1),
                            Value::Object(o) => {
                                let Some(m) = o.get("model").and_then(Value::as_str) else {
                                    self.err(&tpath, "expected {\"model\": \"provider.model\", \"weight\": n}");
                                    continue;
                                };
                                let weight = match o.get("weight") {
                                    None => 1,
                                    Some(w) => self.non_negative(&join(&tpath, "weight"), w).unwrap_or(1) as u32,
                                };
                                (m.trim().to_string(), weight)
                            }
                            other => {
                                self.err(&tpath, format!("expected \"provider.model\" or an object, got {}", kind_name(other)));
                                continue;
                            }
                        };
                        let resolvable = model
                            .split_once('.')
                            .and_then(|(p, m)| providers.get(p).map(|prov| prov.model(m).is_some()))
                            .unwrap_or(false);
                        if !resolvable {
                            self.err(&tpath, format!("\"{model}\" is not a configured provider.model"));
                            continue;
                        }
                        targets.push((model, weight));
                    }
                    if strategy == Strategy::Weighted && targets.iter().all(|(_, w)| *w == 0) {
                        self.err(&join(&path, "targets"), "a weighted route needs at least one target with a weight above 0");
                    }
                }
                _ => {
                    self.err(&join(&path, "targets"), "expected a non-empty list of provider.model names");
                    continue;
                }
            }
            routes.insert(name.clone(), RouteConfig { strategy, targets });
        }
        routes
    }

    fn model_routing(&mut self, v: &Value, providers: &BTreeMap<String, Provider>) -> Vec<NameRule> {
        let mut rules = Vec::new();
        let Value::Array(items) = v else {
            self.err("modelRouting", format!("expected a list of {{\"match\": \"claude-*\", \"provider\": \"id\"}}, got {}", kind_name(v)));
            return rules;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("modelRouting[{i}]");
            let Some(m) = self.object(&path, item) else { continue };
            self.unknown_keys(&path, m, &["match", "provider"]);
            let mut patterns = Vec::new();
            match m.get("match") {
                Some(v) => {
                    for (ppath, p) in self.one_or_many(&join(&path, "match"), v) {
                        if let Some(p) = self.string(&ppath, p) {
                            patterns.push(p);
                        }
                    }
                }
                None => self.err(&join(&path, "match"), "missing; a pattern such as \"claude-*\""),
            }
            let provider = match m.get("provider").and_then(|p| self.string(&join(&path, "provider"), p)) {
                Some(p) if providers.contains_key(&p) => p,
                Some(p) => {
                    self.err(&join(&path, "provider"), format!("no provider \"{p}\" is configured"));
                    continue;
                }
                None => continue,
            };
            rules.push(NameRule { patterns, provider });
        }
        rules
    }

    fn positive(&mut self, path: &str, v: &Value) -> Option<u64> {
        match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.err(path, format!("expected a positive integer, got {}", v));
                None
            }
        }
    }

    fn root(&mut self, root: &Value) -> Option<Config> {
        let Some(map) = root.as_object() else {
            self.err("ANY_API_CONFIG", format!("must be a JSON object, got {}", kind_name(root)));
            return None;
        };
        self.unknown_keys(
            "",
            map,
            &["version", "providers", "routes", "modelRouting", "limits", "timeouts", "retry", "breaker", "keepaliveMs", "stateBinding", "logRequests"],
        );
        match map.get("version") {
            None => {}
            Some(v) if v.as_u64() == Some(1) || v.as_str() == Some("1") => {}
            Some(v) => self.err("version", format!("unsupported version {v}; only 1 is supported")),
        }
        let mut providers = BTreeMap::new();
        match map.get("providers") {
            None => self.err("providers", "missing; configure at least one provider"),
            Some(v) => {
                if let Some(pmap) = self.object("providers", v) {
                    if pmap.is_empty() {
                        self.err("providers", "no providers configured");
                    }
                    for (id, pv) in pmap {
                        if is_note(id) {
                            continue;
                        }
                        if let Some(p) = self.provider(id, pv) {
                            providers.insert(id.clone(), p);
                        }
                    }
                }
            }
        }
        let mut limits = Limits { max_body_bytes: DEFAULT_MAX_BODY_BYTES };
        if let Some(v) = map.get("limits") {
            if let Some(m) = self.object("limits", v) {
                self.unknown_keys("limits", m, &["maxBodyBytes"]);
                if let Some(n) = m.get("maxBodyBytes") {
                    limits.max_body_bytes = self.positive("limits.maxBodyBytes", n).unwrap_or(limits.max_body_bytes);
                }
            }
        }
        let mut timeouts = Timeouts { first_byte_ms: DEFAULT_FIRST_BYTE_MS, idle_ms: DEFAULT_IDLE_MS, total_ms: DEFAULT_TOTAL_MS };
        if let Some(v) = map.get("timeouts") {
            if let Some(m) = self.object("timeouts", v) {
                self.unknown_keys("timeouts", m, &["firstByteMs", "idleMs", "totalMs"]);
                for (key, slot) in [("firstByteMs", &mut timeouts.first_byte_ms), ("idleMs", &mut timeouts.idle_ms), ("totalMs", &mut timeouts.total_ms)] {
                    if let Some(n) = m.get(key) {
                        *slot = self.positive(&format!("timeouts.{key}"), n).unwrap_or(*slot);
                    }
                }
            }
        }
        let mut retry = RetryPolicy::default();
        if let Some(v) = map.get("retry") {
            if let Some(m) = self.object("retry", v) {
                let known = ["attemptsPerTarget", "maxAttempts", "backoffMs", "maxBackoffMs", "maxRetryAfterMs", "deadlineMs", "maxSubrequests"];
                self.unknown_keys("retry", m, &known);
                for (key, value) in m {
                    let path = format!("retry.{key}");
                    match key.as_str() {
                        "attemptsPerTarget" => retry.attempts_per_target = self.positive(&path, value).unwrap_or(1) as u32,
                        "maxAttempts" => retry.max_attempts = self.positive(&path, value).unwrap_or(1) as u32,
                        "backoffMs" => retry.backoff_ms = self.non_negative(&path, value).unwrap_or(0),
                        "maxBackoffMs" => retry.max_backoff_ms = self.non_negative(&path, value).unwrap_or(0),
                        "maxRetryAfterMs" => retry.max_retry_after_ms = self.non_negative(&path, value).unwrap_or(0),
                        "deadlineMs" => retry.deadline_ms = self.positive(&path, value).unwrap_or(1),
                        "maxSubrequests" => retry.max_subrequests = self.positive(&path, value).unwrap_or(1) as u32,
                        _ => {}
                    }
                }
            }
        }
        let mut breaker = BreakerPolicy::default();
        if let Some(v) = map.get("breaker") {
            if let Some(m) = self.object("breaker", v) {
                self.unknown_keys("breaker", m, &["failures", "cooldownMs"]);
                if let Some(n) = m.get("failures") {
                    breaker.failures = self.positive("breaker.failures", n).unwrap_or(3) as u32;
                }
                if let Some(n) = m.get("cooldownMs") {
                    breaker.cooldown_ms = self.positive("breaker.cooldownMs", n).unwrap_or(60_000);
                }
            }
        }
        let keepalive_ms = match map.get("keepaliveMs") {
            Some(v) => self.non_negative("keepaliveMs", v).unwrap_or(DEFAULT_KEEPALIVE_MS),
            None => DEFAULT_KEEPALIVE_MS,
        };
        let state_binding = map.get("stateBinding").and_then(|v| self.string("stateBinding", v));
        let log_requests = match map.get("logRequests") {
            None => LogRequests::All,
            Some(v) => {
                let parsed = v.as_str().and_then(|s| LogRequests::parse(s.trim()));
                if parsed.is_none() {
                    self.err("logRequests", format!("unknown value {v}; expected one of {}", LogRequests::NAMES.join(", ")));
                }
                parsed.unwrap_or_default()
            }
        };
        let routes = match map.get("routes") {
            Some(v) => self.routes(v, &providers),
            None => BTreeMap::new(),
        };
        let model_routing = map.get("modelRouting").map(|v| self.model_routing(v, &providers));
        Some(Config { providers, routes, model_routing, limits, timeouts, retry, breaker, keepalive_ms, state_binding, log_requests })
    }

    fn provider(&mut self, id: &str, v: &Value) -> Option<Provider> {
        let path = format!("providers.{id}");
        if id.is_empty() {
            self.err(&path, "provider id must not be empty");
        }
        if id.contains('.') {
            self.err(&path, "provider id must not contain '.' (models are named provider.model, split at the first '.')");
        }
        let map = self.object(&path, v)?;
        self.unknown_keys(
            &path,
            map,
            &["type", "baseURL", "baseUrl", "url", "apiKey", "apiKeyEnv", "headers", "endpoints", "quirks", "options", "models"],
        );
        let kind = match map.get("type") {
            None => {
                self.err(&join(&path, "type"), format!("missing; expected one of {}", ProviderType::NAMES.join(", ")));
                None
            }
            Some(Value::String(s)) => {
                let kind = ProviderType::parse(s.trim());
                if kind.is_none() {
                    self.err(&join(&path, "type"), format!("unknown type \"{s}\"; expected one of {}", ProviderType::NAMES.join(", ")));
                }
                kind
            }
            Some(other) => {
                self.err(&join(&path, "type"), format!("expected a string, got {}", kind_name(other)));
                None
            }
        };
        let echo = kind == Some(ProviderType::Echo);

        let url_keys: Vec<&str> = ["baseURL", "baseUrl", "url"].into_iter().filter(|k| map.contains_key(*k)).collect();
        if url_keys.len() > 1 {
            self.err(&path, format!("set only one of {}", url_keys.join(", ")));
        }
        let mut base_urls = Vec::new();
        match url_keys.first() {
            None if !echo => self.err(&join(&path, "baseURL"), "missing; the upstream's base URL, e.g. \"https://api.openai.com/v1\""),
            None => {}
            Some(key) => {
                let upath = join(&path, key);
                match &map[*key] {
                    Value::String(s) => base_urls.extend(self.url(&upath, s)),
                    Value::Array(list) if !list.is_empty() => {
                        for (i, item) in list.iter().enumerate() {
                            let ipath = format!("{upath}[{i}]");
                            if let Some(s) = self.string(&ipath, item) {
                                base_urls.extend(self.url(&ipath, &s));
                            }
                        }
                    }
                    other => self.err(&upath, format!("expected a URL string or a non-empty list of them, got {}", kind_name(other))),
                }
            }
        }

        let mut api_keys = Vec::new();
        match (map.get("apiKey"), map.get("apiKeyEnv")) {
            (Some(_), Some(_)) => self.err(&path, "set apiKey or apiKeyEnv, not both"),
            (Some(v), None) => {
                for (kpath, item) in self.one_or_many(&join(&path, "apiKey"), v) {
                    match item {
                        Value::String(s) if !normalize_key(s).is_empty() => api_keys.push(ApiKeySource::Inline(normalize_key(s))),
                        Value::String(_) => self.err(&kpath, "must not be empty"),
                        other => self.err(&kpath, format!("expected a string, got {}", kind_name(other))),
                    }
                }
            }
            (None, Some(v)) => {
                for (kpath, item) in self.one_or_many(&join(&path, "apiKeyEnv"), v) {
                    if let Some(name) = self.string(&kpath, item) {
                        api_keys.push(ApiKeySource::Env(name));
                    }
                }
            }
            (None, None) => {
                if !echo {
                    self.err(&path, "missing apiKey or apiKeyEnv (the name of a Worker secret holding the upstream key)");
                }
            }
        }

        let mut headers = Vec::new();
        if let Some(v) = map.get("headers") {
            let hpath = join(&path, "headers");
            if let Some(h) = self.object(&hpath, v) {
                for (name, value) in h {
                    let valid_name = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                    if !valid_name {
                        self.err(&join(&hpath, name), "not a valid HTTP header name");
                        continue;
                    }
                    match value {
                        Value::String(s) if !s.contains(['\r', '\n', '\0']) => headers.push((name.to_ascii_lowercase(), s.clone())),
                        Value::String(_) => self.err(&join(&hpath, name), "header values must not contain line breaks or NUL"),
                        other => self.err(&join(&hpath, name), format!("expected a string, got {}", kind_name(other))),
                    }
                }
            }
        }

        let mut endpoints = Endpoints::default();
        if let Some(v) = map.get("endpoints") {
            let epath = join(&path, "endpoints");
            if let Some(e) = self.object(&epath, v) {
                let known = ["chatCompletionsPath", "chat_completions_path", "responsesPath", "responses_path", "messagesPath", "messages_path"];
                self.unknown_keys(&epath, e, &known);
                for (key, value) in e {
                    if is_note(key) || !known.contains(&key.as_str()) {
                        continue;
                    }
                    let Some(p) = self.string(&join(&epath, key), value) else { continue };
                    let p = if p.starts_with('/') { p } else { format!("/{p}") };
                    match key.as_str() {
                        "chatCompletionsPath" | "chat_completions_path" => endpoints.chat_completions_path = Some(p),
                        "responsesPath" | "responses_path" => endpoints.responses_path = Some(p),
                        _ => endpoints.messages_path = Some(p),
                    }
                }
            }
        }

        let mut quirks = Quirks::default();
        if let Some(v) = map.get("quirks") {
            let qpath = join(&path, "quirks");
            if let Some(q) = self.object(&qpath, v) {
                self.unknown_keys(&qpath, q, &["noInstructions", "noPreviousResponseId"]);
                for (key, value) in q {
                    let target = match key.as_str() {
                        "noInstructions" => &mut quirks.no_instructions,
                        "noPreviousResponseId" => &mut quirks.no_previous_response_id,
                        _ => continue,
                    };
                    match truthy(value) {
                        Some(b) => *target = b,
                        None => self.err(&join(&qpath, key), format!("expected true or false, got {value}")),
                    }
                }
            }
        }

        let options = match map.get("options") {
            Some(v) => self.options(&join(&path, "options"), v),
            None => ModelOptions::default(),
        };

        let models = map.get("models").map(|v| self.models(&join(&path, "models"), v, &options));

        Some(Provider {
            id: id.to_string(),
            kind: kind?,
            base_urls,
            api_keys,
            headers,
            endpoints,
            quirks,
            options,
            models,
        })
    }

    fn url(&mut self, path: &str, raw: &str) -> Option<String> {
        let s = raw.trim();
        let with_scheme = if s.starts_with("http://") || s.starts_with("https://") {
            s.to_string()
        } else if s.contains("://") {
            self.err(path, format!("unsupported URL scheme in \"{s}\"; use http:// or https://"));
            return None;
        } else {
            format!("https://{s}")
        };
        let trimmed = with_scheme.trim_end_matches('/').to_string();
        let host = trimmed.split("://").nth(1).unwrap_or("").split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || trimmed.contains(char::is_whitespace) || trimmed.contains(['?', '#']) {
            self.err(path, format!("not a valid base URL: \"{s}\""));
            return None;
        }
        Some(trimmed)
    }

    fn options(&mut self, path: &str, v: &Value) -> ModelOptions {
        let mut options = ModelOptions::default();
        let Some(map) = self.object(path, v) else { return options };
        self.unknown_keys(path, map, &["reasoningEffort", "maxInstructionsChars", "maxTokens", "maxOutputTokens", "promptCache"]);
        for (key, value) in map {
            let kpath = join(path, key);
            match key.as_str() {
                "reasoningEffort" => {
                    const EFFORTS: [&str; 11] = ["none", "minimal", "low", "medium", "high", "xhigh", "max", "off", "disable", "disabled", "auto"];
                    if let Some(s) = self.string(&kpath, value) {
                        if EFFORTS.contains(&s.to_ascii_lowercase().as_str()) {
                            options.reasoning_effort = Some(s.to_ascii_lowercase());
                        } else {
                            self.err(&kpath, format!("unknown effort \"{s}\"; expected one of {}", EFFORTS.join(", ")));
                        }
                    }
                }
                "maxInstructionsChars" => options.max_instructions_chars = self.positive(&kpath, value),
                "maxTokens" | "maxOutputTokens" => options.max_tokens = self.positive(&kpath, value),
                "promptCache" => match value {
                    Value::Bool(b) => options.prompt_cache = Some(*b),
                    other => self.err(&kpath, format!("expected true or false, got {}", kind_name(other))),
                },
                _ => {}
            }
        }
        options
    }

    /// `models` as an object (`name → {upstreamModel, options}` or `name → "upstream"`)
    /// or as a list of names.
    fn models(&mut self, path: &str, v: &Value, defaults: &ModelOptions) -> BTreeMap<String, ModelConfig> {
        let mut models = BTreeMap::new();
        let plain = |name: &str| ModelConfig { upstream_model: name.to_string(), options: defaults.clone() };
        match v {
            Value::Array(names) => {
                for (i, item) in names.iter().enumerate() {
                    if let Some(name) = self.string(&format!("{path}[{i}]"), item) {
                        models.insert(name.clone(), plain(&name));
                    }
                }
            }
            Value::Object(map) => {
                for (name, mv) in map {
                    if is_note(name) {
                        continue;
                    }
                    let mpath = join(path, name);
                    if name.trim().is_empty() {
                        self.err(&mpath, "model name must not be empty");
                        continue;
                    }
                    let config = match mv {
                        Value::Null => plain(name),
                        Value::String(up) if !up.trim().is_empty() => ModelConfig { upstream_model: up.trim().to_string(), options: defaults.clone() },
                        Value::Object(m) => {
                            self.unknown_keys(&mpath, m, &["upstreamModel", "options", "quirks"]);
                            let upstream_model = match m.get("upstreamModel") {
                                Some(u) => self.string(&join(&mpath, "upstreamModel"), u).unwrap_or_else(|| name.clone()),
                                None => name.clone(),
                            };
                            let options = match m.get("options") {
                                Some(o) => self.options(&join(&mpath, "options"), o).or(defaults),
                                None => defaults.clone(),
                            };
                            if let Some(q) = m.get("quirks") {
                                self.object(&join(&mpath, "quirks"), q);
                            }
                            ModelConfig { upstream_model, options }
                        }
                        other => {
                            self.err(&mpath, format!("expected an object like {{\"upstreamModel\": \"...\"}}, got {}", kind_name(other)));
                            continue;
                        }
                    };
                    models.insert(name.clone(), config);
                }
            }
            other => self.err(path, format!("expected an object of models or a list of model names, got {}", kind_name(other))),
        }
        models
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Gateway keys from `WORKER_AUTH_KEY` and `WORKER_AUTH_KEYS` (comma separated), trimmed,
/// normalised like upstream keys, de-duplicated, empty entries dropped.
pub fn auth_keys(single: Option<&str>, list: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for raw in single.into_iter().chain(list.into_iter().flat_map(|l| l.split(','))) {
        let k = normalize_key(raw);
        if !k.is_empty() && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = parse(
            r#"{
              // comment
              "version": 1,
              "providers": {
                "oa": {"type": "openai-chat-completions", "baseURL": "api.openai.com/v1/", "apiKey": " Bearer sk-1 ",
                       "headers": {"X-Org": "o"}, "quirks": {"noInstructions": "yes"},
                       "options": {"maxTokens": 100},
                       "models": {"gpt": {"upstreamModel": "gpt-4o", "options": {"reasoningEffort": "High"}}, "mini": "gpt-4o-mini",},
                },
                "an": {"type": "claude", "baseUrl": ["https://a.test", "http://b.test"], "apiKeyEnv": "ANT_KEY", "models": ["claude-x"]},
                "e": {"type": "echo"},
              },
              "limits": {"maxBodyBytes": 1000},
              "timeouts": {"firstByteMs": 5000},
            }"#,
        )
        .unwrap();
        let oa = &c.providers["oa"];
        assert_eq!(oa.base_urls, vec!["https://api.openai.com/v1"]);
        assert_eq!(oa.api_keys, vec![ApiKeySource::Inline("sk-1".into())]);
        assert_eq!(oa.headers, vec![("x-org".to_string(), "o".to_string())]);
        assert!(oa.quirks.no_instructions);
        let gpt = oa.model("gpt").unwrap();
        assert_eq!(gpt.upstream_model, "gpt-4o");
        assert_eq!(gpt.options.reasoning_effort.as_deref(), Some("high"));
        assert_eq!(gpt.options.max_tokens, Some(100));
        assert_eq!(oa.model("mini").unwrap().upstream_model, "gpt-4o-mini");
        assert!(oa.model("other").is_none());
        let an = &c.providers["an"];
        assert_eq!(an.base_urls.len(), 2);
        assert_eq!(an.api_keys, vec![ApiKeySource::Env("ANT_KEY".into())]);
        assert_eq!(an.model("claude-x").unwrap().upstream_model, "claude-x");
        assert_eq!(c.providers["e"].model("anything").unwrap().upstream_model, "anything");
        assert_eq!(c.limits.max_body_bytes, 1000);
        assert_eq!(c.timeouts.first_byte_ms, 5000);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let errors = parse(
            r#"{"version": 2, "providers": {
                "oa": {"type": "openai-chat", "baseURL": "https://x.test", "apiKey": "k"},
                "b.c": {"type": "gemini", "baseURL": "ftp://x", "apiKey": 5, "modles": {}},
                "d": {"type": "claude"}
            }, "extra": 1}"#,
        )
        .unwrap_err()
        .0;
        let has = |s: &str| errors.iter().any(|e| e.contains(s));
        assert!(has("version: unsupported version 2"), "{errors:?}");
        assert!(has("providers.oa.type: unknown type \"openai-chat\"; expected one of openai-chat-completions"), "{errors:?}");
        assert!(has("providers.b.c: provider id must not contain '.'"), "{errors:?}");
        assert!(has("providers.b.c.baseURL: unsupported URL scheme"), "{errors:?}");
        assert!(has("providers.b.c.apiKey: expected a string, got a number"), "{errors:?}");
        assert!(has("providers.b.c.modles: unknown field"), "{errors:?}");
        assert!(has("providers.d.baseURL: missing"), "{errors:?}");
        assert!(has("providers.d: missing apiKey or apiKeyEnv"), "{errors:?}");
        assert!(has("extra: unknown field"), "{errors:?}");
    }

    #[test]
    fn rejects_bad_text_and_shapes() {
        assert!(parse("").is_err());
        let e = parse("{\n\"providers\": }").unwrap_err();
        assert!(e.0[0].contains("line 2"), "{e}");
        assert!(parse("[]").unwrap_err().0[0].contains("must be a JSON object"));
        assert!(parse(r#"{"providers": {}}"#).unwrap_err().0[0].contains("no providers"));
    }

    #[test]
    fn never_echoes_key_values() {
        let e = parse(r#"{"providers": {"a": {"type": "nope", "baseURL": "https://x", "apiKey": "sk-secret-123"}}}"#).unwrap_err();
        assert!(!e.to_string().contains("sk-secret-123"));
    }

    #[test]
    fn auth_keys_are_normalised() {
        assert_eq!(auth_keys(Some(" a "), Some("b, ,a,\"c\"")), vec!["a", "b", "c"]);
        assert!(auth_keys(None, Some(" , ")).is_empty());
    }
}

#[cfg(test)]
mod routing_config_tests {
    use super::*;

    #[test]
    fn routes_rules_pools_and_policies() {
        let c = parse(
            r#"{"providers": {
                  "a": {"type": "claude", "baseURL": "https://a.test", "apiKey": ["k1", "k2"], "models": ["m1"]},
                  "b": {"type": "gemini", "baseURL": "https://b.test", "apiKeyEnv": ["B1", "B2"]}
                },
                "routes": {
                  "smart": {"strategy": "fallback", "targets": ["a.m1", "b.gemini-2.5-pro"]},
                  "lb": {"strategy": "weighted", "targets": [{"model": "a.m1", "weight": 3}, {"model": "b.x", "weight": 1}]}
                },
                "modelRouting": [{"match": ["claude-*"], "provider": "a"}, {"match": "*/*", "provider": "b"}],
                "retry": {"attemptsPerTarget": 3, "maxAttempts": 5, "deadlineMs": 30000},
                "breaker": {"failures": 2, "cooldownMs": 1000},
                "timeouts": {"firstByteMs": 1000, "idleMs": 2000, "totalMs": 3000},
                "keepaliveMs": 0,
                "stateBinding": "GATEWAY_STATE",
                "logRequests": "errors"}"#,
        )
        .unwrap();
        assert_eq!(c.log_requests, LogRequests::Errors);
        assert_eq!(c.providers["a"].api_keys.len(), 2);
        assert_eq!(c.providers["b"].api_keys, vec![ApiKeySource::Env("B1".into()), ApiKeySource::Env("B2".into())]);
        assert_eq!(c.routes["smart"].targets, vec![("a.m1".to_string(), 1), ("b.gemini-2.5-pro".to_string(), 1)]);
        assert_eq!(c.routes["lb"].strategy, Strategy::Weighted);
        assert_eq!(c.model_routing.as_ref().unwrap()[1].patterns, vec!["*/*"]);
        assert_eq!((c.retry.attempts_per_target, c.retry.max_attempts, c.retry.deadline_ms), (3, 5, 30_000));
        assert_eq!((c.breaker.failures, c.breaker.cooldown_ms), (2, 1000));
        assert_eq!((c.timeouts.idle_ms, c.timeouts.total_ms, c.keepalive_ms), (2000, 3000, 0));
        assert_eq!(c.state_binding.as_deref(), Some("GATEWAY_STATE"));
    }

    #[test]
    fn prompt_cache_option_merges_and_is_checked() {
        let c = parse(r#"{"providers": {"a": {"type": "claude", "baseURL": "https://a.test", "apiKey": "k",
            "options": {"promptCache": true}, "models": {"m1": {}, "m2": {"options": {"promptCache": false}}}}}}"#)
        .unwrap();
        let models = c.providers["a"].models.as_ref().unwrap();
        assert_eq!(models["m1"].options.prompt_cache, Some(true));
        assert_eq!(models["m2"].options.prompt_cache, Some(false));
        let errors = parse(r#"{"providers": {"a": {"type": "claude", "baseURL": "https://a.test", "apiKey": "k", "options": {"promptCache": "yes"}}}}"#)
            .unwrap_err()
            .0;
        assert_eq!(errors, vec!["providers.a.options.promptCache: expected true or false, got a string".to_string()]);
    }

    #[test]
    fn bad_routes_are_reported_with_paths() {
        let errors = parse(
            r#"{"providers": {"a": {"type": "claude", "baseURL": "https://a.test", "apiKey": [], "models": ["m1"]}},
                "routes": {"x.y": {"targets": ["a.m1"]}, "r": {"strategy": "random", "targets": ["a.m1"]},
                           "s": {"targets": ["a.nope", "zz.m"]}, "t": {"targets": []}},
                "modelRouting": [{"match": "claude-*", "provider": "ghost"}]}"#,
        )
        .unwrap_err()
        .0;
        let has = |s: &str| errors.iter().any(|e| e.contains(s));
        assert!(has("providers.a.apiKey: must not be an empty list"), "{errors:?}");
        assert!(has("routes.x.y: route names must be non-empty and contain no '.'"), "{errors:?}");
        assert!(has("routes.r.strategy: unknown strategy \"random\""), "{errors:?}");
        let bad_log = parse(r#"{"providers": {"a": {"type": "echo"}}, "logRequests": "some"}"#).unwrap_err().0;
        assert_eq!(bad_log, vec!["logRequests: unknown value \"some\"; expected one of all, errors, off".to_string()]);
        assert_eq!(parse(r#"{"providers": {"a": {"type": "echo"}}}"#).unwrap().log_requests, LogRequests::All);
        let bad_headers = parse(r#"{"providers": {"a": {"type": "claude", "baseURL": "https://a.test", "apiKey": "k",
            "headers": {"x-a": "1\n2", "x-b": "1\u00002", "bad name": "v"}}}}"#).unwrap_err().0;
        assert_eq!(bad_headers.len(), 3, "{bad_headers:?}");
        assert!(bad_headers.iter().any(|e| e == "providers.a.headers.x-b: header values must not contain line breaks or NUL"), "{bad_headers:?}");
        assert!(has("routes.s.targets[0]: \"a.nope\" is not a configured provider.model"), "{errors:?}");
        assert!(has("routes.s.targets[1]"), "{errors:?}");
        assert!(has("routes.t.targets: expected a non-empty list"), "{errors:?}");
        assert!(has("modelRouting[0].provider: no provider \"ghost\""), "{errors:?}");
    }
}
