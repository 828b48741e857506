//! The Workers edge: the only code that touches the platform (workers-rs).
//!
//! It reads the request and env, caches the parsed config per isolate, hands everything
//! to the sans-I/O core ([`crate::gateway`], [`crate::attempts`]), and carries out its
//! decisions: reply, or try the planned upstream targets in turn ([`forward`]), pumping a
//! committed stream to the caller ([`pump`]). It logs one JSON line per request.
//!
//! It takes the runtime's raw `Request` (not workers-rs's, which reads `request.cf` and
//! parses the URL eagerly) and keeps per-request JS work to what the core needs.

mod forward;
mod js;
mod pump;
mod state;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{console_error, Env};


use crate::attempts::Health;
use crate::config::{self, Config, LogRequests};
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::{self, Begin, Body, LogLine, Plan, Reply, Resolution, Setup};
use crate::protocols::Protocol;
use js::{ByteReader, Ctx};

/// The parsed config and gateway keys, kept while the env values they came from are
/// unchanged: parsing happens once per isolate, not per request. The values are kept as
/// JS values and compared in JS, so a request copies no config text into wasm.
struct Loaded {
    raw: [JsValue; 3],
    state: Rc<Result<(Config, Vec<String>), String>>,
}

/// The env entries the gateway's state is built from.
const SETUP_VARS: [&str; 3] = ["ANY_API_CONFIG", "WORKER_AUTH_KEY", "WORKER_AUTH_KEYS"];

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    /// Breakers and key cooldowns of this isolate.
    static HEALTH: RefCell<Health> = RefCell::new(Health::default());
    /// When this isolate last pulled the shared state (ms).
    static LAST_PULL: Cell<u64> = const { Cell::new(0) };
}

/// How often an isolate refreshes its view of the shared state.
const PULL_EVERY_MS: u64 = 5_000;

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn env_string(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

fn load(env: &Env) -> Rc<Result<(Config, Vec<String>), String>> {
    let raw = SETUP_VARS.map(|name| js_sys::Reflect::get(env, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED));
    LOADED.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(loaded) = cell.as_ref() {
            if loaded.raw == raw {
                return loaded.state.clone();
            }
        }
        let [config, key, keys] = raw.each_ref().map(JsValue::as_string);
        let state = Rc::new(build_state(config.as_deref(), &(key, keys)));
        *cell = Some(Loaded { raw, state: state.clone() });
        state
    })
}

fn build_state(raw_config: Option<&str>, raw_keys: &(Option<String>, Option<String>)) -> Result<(Config, Vec<String>), String> {
    let Some(text) = raw_config else {
        return Err("The gateway is not configured: ANY_API_CONFIG is not set. Add it as a Worker variable or secret (see .dev.vars.example and the README).".into());
    };
    let config = config::parse(text).map_err(|e| format!("ANY_API_CONFIG is invalid: {e}"))?;
    let keys = config::auth_keys(raw_keys.0.as_deref(), raw_keys.1.as_deref());
    if keys.is_empty() {
        return Err("No gateway key is configured: set WORKER_AUTH_KEY or WORKER_AUTH_KEYS (comma separated) so callers can authenticate.".into());
    }
    Ok((config, keys))
}

fn new_request_id() -> String {
    let mut id = String::with_capacity(32);
    for _ in 0..4 {
        let n = (js_sys::Math::random() * 4_294_967_296.0) as u32;
        id.push_str(&format!("{n:08x}"));
    }
    id
}

/// A response with the gateway's own headers added.
fn respond(status: u16, headers: &[(String, String)], request_id: &str, body: &JsValue) -> Result<web_sys::Response, JsValue> {
    let common = gateway::common_headers(request_id);
    let all = headers.iter().chain(common.iter()).map(|(n, v)| (n.as_str(), v.as_str()));
    js::respond(body, status, all)
}

fn body_value(body: Body) -> JsValue {
    match body {
        Body::Empty => JsValue::NULL,
        Body::Bytes(bytes) => Uint8Array::from(bytes.as_slice()).into(),
        // Every chunk is ready: one write of them all.
        Body::Chunks(chunks) => Uint8Array::from(chunks.concat().as_slice()).into(),
    }
}

fn to_response(reply: Reply, request_id: &str) -> Result<web_sys::Response, JsValue> {
    respond(reply.status, &reply.headers, request_id, &body_value(reply.body))
}

/// Path and query of a serialised request URL (`http://host/path?query`).
fn path_and_query(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = url[after_scheme..].find('/').map_or("/", |i| &url[after_scheme + i..]);
    let rest = rest.split('#').next().unwrap_or(rest);
    rest.split_once('?').unwrap_or((rest, ""))
}

/// The Worker's `fetch` handler (called by build/entry.mjs). Written out instead of
/// workers-rs's `#[event(fetch)]` to keep the runtime's own request and context objects.
#[wasm_bindgen]
pub async fn fetch(req: web_sys::Request, env: Env, ctx: Ctx) -> Result<web_sys::Response, JsValue> {
    match handle(req, env, ctx).await {
        Ok(response) => Ok(response),
        Err(e) => {
            console_error!("internal error: {}", js::describe(&e));
            js::respond(&JsValue::from_str("Internal error"), 500, std::iter::empty())
        }
    }
}

async fn handle(req: web_sys::Request, env: Env, ctx: Ctx) -> Result<web_sys::Response, JsValue> {
    let started = now_ms();
    let request_id = new_request_id();
    let url = req.url();
    let (path, query) = path_and_query(&url);
    let method = req.method();
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let mut log = LogLine { request_id: request_id.clone(), method: method.clone(), path: path.to_string(), ..LogLine::default() };

    let state = load(&env);
    let setup = match state.as_ref() {
        Ok((config, keys)) => Setup::Ready { config, keys },
        Err(why) => Setup::Broken(why.clone()),
    };
    let greq = gateway::Request { method: &method, path, query, header: &header };

    let plan = match gateway::begin(&greq, &setup) {
        Begin::Reply(reply) => Plan::Reply(reply),
        Begin::Status => {
            if let Setup::Ready { config, .. } = &setup {
                if let Some(binding) = &config.state_binding {
                    // Show the shared view, not only this isolate's.
                    state::sync_state(env.clone(), binding.clone(), false).await;
                }
            }
            let reply = match &setup {
                Setup::Ready { config, .. } => HEALTH.with(|h| gateway::status_reply(config, &h.borrow(), now_ms())),
                Setup::Broken(why) => Reply::error(&GatewayError::new(ErrorKind::Internal, why.clone()), Protocol::OpenAiChat),
            };
            Plan::Reply(reply)
        }
        Begin::ReadBody { route, max_body_bytes } => {
            log.protocol = Some(route.protocol.name());
            match (&setup, read_body(&req, &header, max_body_bytes).await) {
                (_, Err(e)) => Plan::Reply(Reply::error(&e, route.protocol)),
                (Setup::Broken(why), _) => Plan::Reply(Reply::error(&GatewayError::new(ErrorKind::Internal, why.clone()), route.protocol)),
                (Setup::Ready { config, .. }, Ok(body)) => {
                    let env_lookup = |name: &str| env_string(&env, name);
                    let ctx = gateway::Context {
                        request_id: &request_id,
                        now_unix_secs: started / 1000,
                        env: &env_lookup,
                        pick: js_sys::Math::random(),
                    };
                    let mut resolution = Resolution::default();
                    let plan = gateway::plan(&greq, &route, &body, config, &ctx, &mut resolution);
                    log.provider = resolution.provider;
                    log.model = resolution.model;
                    plan
                }
            }
        }
    };

    let (response, handoff) = match plan {
        Plan::Reply(reply) => {
            log.status = reply.status;
            (to_response(reply, &request_id), forward::Handoff::No)
        }
        Plan::Forward(forward) => {
            let binding = match state.as_ref() {
                Ok((config, _)) => config.state_binding.clone(),
                Err(_) => None,
            };
            let mut changed = false;
            let result = forward::forward_request(forward, &request_id, started, req.signal(), &ctx, &mut log, &mut changed).await;
            if let Some(binding) = binding {
                let due = now_ms().saturating_sub(LAST_PULL.with(Cell::get)) >= PULL_EVERY_MS;
                if changed || due {
                    LAST_PULL.with(|t| t.set(now_ms()));
                    js::wait_until(&ctx, state::sync_state(env.clone(), binding, changed));
                }
            }
            match result {
                Ok((response, handoff)) => (Ok(response), handoff),
                Err(e) => (Err(e), forward::Handoff::No),
            }
        }
    };
    // A broken setup always logs: the operator has to see it.
    let setting = state.as_ref().as_ref().map_or(LogRequests::All, |(config, _)| config.log_requests);
    if handoff == forward::Handoff::No && log.wanted(setting) {
        log.duration_ms = now_ms().saturating_sub(started);
        js::log_soon(&ctx, &log.to_json());
    }
    response
}

/// Reads the body, stopping as soon as it exceeds `max` bytes.
async fn read_body(req: &web_sys::Request, header: &dyn Fn(&str) -> Option<String>, max: u64) -> Result<Vec<u8>, GatewayError> {
    let unreadable = || GatewayError::invalid("The request body could not be read.");
    let Some(stream) = req.body() else { return Ok(Vec::new()) };
    // With a declared length (already checked against `max`), one native read is cheapest.
    let declared = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n <= max) {
        let buffer = JsFuture::from(req.array_buffer().map_err(|_| unreadable())?).await.map_err(|_| unreadable())?;
        return Ok(Uint8Array::new(&buffer).to_vec());
    }
    let reader = ByteReader::new(&stream).map_err(|_| unreadable())?;
    let mut body = Vec::new();
    while let Some(chunk) = reader.read().await.map_err(|_| unreadable())? {
        if body.len() as u64 + chunk.len() as u64 > max {
            // Drain (and drop) the rest: the runtime faults a Worker that answers while
            // the request body is still being read.
            while let Ok(Some(_)) = reader.read().await {}
            return Err(gateway::too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
