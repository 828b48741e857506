//! The Workers edge: the only code that touches the platform (workers-rs).
//!
//! It reads the request and env, caches the parsed config per isolate, hands everything
//! to the sans-I/O core ([`crate::gateway`], [`crate::attempts`]), and carries out its
//! decisions: reply, or try the planned upstream targets in turn. An attempt counts as
//! answered only once the upstream sent its headers and, for a stream, a first good
//! event; until then every failure can be retried elsewhere and the caller has seen
//! nothing. A committed stream is pumped to the caller event by event, with keepalives
//! during upstream silences and idle/total timeouts. It logs one JSON line per request.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_log, durable_object, event, ByteStream, Context, Date, Delay, DurableObject, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, ResponseBuilder, State,
};

use crate::attempts::{Driver, Health, Step};
use crate::config::{self, Config};
use crate::convert::{self, Conversion, StreamConverter};
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::{self, Begin, Body, Failure, Forward, LogLine, Plan, PreparedTarget, Reply, Resolution, Setup};
use crate::policy::{self, Outcome};
use crate::protocols::{self, Protocol, StreamFraming};
use crate::sse;

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

/// The shared breaker and key-cooldown state (`stateBinding`): isolates push their view
/// after a request that changed it and pull the merged view every few seconds, both in
/// `waitUntil`, so the happy path never waits on it.
#[durable_object]
pub struct GatewayState {
    health: RefCell<Health>,
}

impl DurableObject for GatewayState {
    fn new(_state: State, _env: Env) -> Self {
        GatewayState { health: RefCell::new(Health::default()) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.method() == Method::Post {
            let body = req.bytes().await?;
            if let Ok(theirs) = serde_json::from_slice::<Health>(&body) {
                self.health.borrow_mut().merge(&theirs);
            }
        }
        let text = serde_json::to_string(&*self.health.borrow()).unwrap_or_default();
        Response::ok(text)
    }
}

/// Pushes this isolate's state (or only pulls, with `push` false) and merges the answer.
async fn sync_state(env: Env, binding: String, push: bool) {
    let result: worker::Result<()> = async {
        let stub = env.durable_object(&binding)?.id_from_name("gateway-state")?.get_stub()?;
        let mut init = RequestInit::new();
        if push {
            let body = HEALTH.with(|h| serde_json::to_string(&*h.borrow()).unwrap_or_default());
            init.with_method(Method::Post).with_body(Some(JsValue::from_str(&body)));
        }
        let req = Request::new_with_init("https://gateway-state/sync", &init)?;
        let mut resp = stub.fetch_with_request(req).await?;
        let text = resp.text().await?;
        if let Ok(theirs) = serde_json::from_str::<Health>(&text) {
            HEALTH.with(|h| h.borrow_mut().merge(&theirs));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        console_log!("{}", serde_json::json!({"stateSync": "failed", "binding": binding, "error": e.to_string()}));
    }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
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

fn headers_of(reply_headers: &[(String, String)], request_id: &str) -> Headers {
    let headers = Headers::new();
    for (name, value) in reply_headers.iter().chain(gateway::common_headers(request_id).iter()) {
        let _ = headers.set(name, value);
    }
    headers
}

fn to_response(reply: Reply, request_id: &str) -> worker::Result<Response> {
    let headers = headers_of(&reply.headers, request_id);
    let builder = ResponseBuilder::new().with_status(reply.status).with_headers(headers);
    match reply.body {
        Body::Empty => Ok(builder.empty()),
        Body::Bytes(bytes) => Ok(builder.fixed(bytes)),
        Body::Chunks(chunks) => builder.from_stream(futures::stream::iter(chunks.into_iter().map(Ok::<Vec<u8>, worker::Error>))),
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = now_ms();
    let request_id = new_request_id();
    let url = req.url()?;
    let method = req.method().to_string();
    let path = url.path().to_string();
    let query = url.query().unwrap_or("").to_string();
    let header = {
        let headers = req.headers().clone();
        move |name: &str| headers.get(name).ok().flatten()
    };
    let mut log = LogLine { request_id: request_id.clone(), method: method.clone(), path: path.clone(), ..LogLine::default() };

    let state = load(&env);
    let setup = match state.as_ref() {
        Ok((config, keys)) => Setup::Ready { config, keys },
        Err(why) => Setup::Broken(why.clone()),
    };
    let greq = gateway::Request { method: &method, path: &path, query: &query, header: &header };

    let plan = match gateway::begin(&greq, &setup) {
        Begin::Reply(reply) => Plan::Reply(reply),
        Begin::Status => {
            if let Setup::Ready { config, .. } = &setup {
                if let Some(binding) = &config.state_binding {
                    // Show the shared view, not only this isolate's.
                    sync_state(env.clone(), binding.clone(), false).await;
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
            match (&setup, read_body(&mut req, max_body_bytes).await) {
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

    let response = match plan {
        Plan::Reply(reply) => {
            log.status = reply.status;
            to_response(reply, &request_id)
        }
        Plan::Forward(forward) => {
            let signal = req.inner().signal();
            let binding = match state.as_ref() {
                Ok((config, _)) => config.state_binding.clone(),
                Err(_) => None,
            };
            let mut changed = false;
            let response = forward_request(forward, &request_id, started, signal, &mut log, &mut changed).await;
            if let Some(binding) = binding {
                let due = now_ms().saturating_sub(LAST_PULL.with(Cell::get)) >= PULL_EVERY_MS;
                if changed || due {
                    LAST_PULL.with(|t| t.set(now_ms()));
                    ctx.wait_until(sync_state(env.clone(), binding, changed));
                }
            }
            response
        }
    };
    log.duration_ms = now_ms().saturating_sub(started);
    // Logged after the response is handed back, so logging never delays the first byte.
    let line = log.to_json();
    ctx.wait_until(async move { console_log!("{}", line) });
    response
}

/// Reads the body, stopping as soon as it exceeds `max` bytes.
async fn read_body(req: &mut Request, max: u64) -> Result<Vec<u8>, GatewayError> {
    // With a declared length (already checked against `max`), one native read is cheapest.
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n <= max) {
        return req.bytes().await.map_err(|_| GatewayError::invalid("The request body could not be read."));
    }
    let mut stream = match req.stream() {
        Ok(s) => s,
        Err(_) => return Ok(Vec::new()),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| GatewayError::invalid("The request body could not be read."))?;
        if body.len() as u64 + chunk.len() as u64 > max {
            // Drain (and drop) the rest: the runtime faults a Worker that answers while
            // the request body is still being read.
            while let Some(Ok(_)) = stream.next().await {}
            return Err(gateway::too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Aborts the in-flight upstream fetch when the caller goes away (`request.signal`,
/// compatibility flag `enable_request_signal`). Dropping it removes the listener.
struct CallerWatch {
    current: Rc<RefCell<Option<web_sys::AbortController>>>,
    gone: Rc<Cell<bool>>,
    signal: web_sys::AbortSignal,
    _listener: Closure<dyn FnMut()>,
}

impl CallerWatch {
    fn new(signal: web_sys::AbortSignal) -> Self {
        let current: Rc<RefCell<Option<web_sys::AbortController>>> = Rc::new(RefCell::new(None));
        let gone = Rc::new(Cell::new(signal.aborted()));
        let (c, g) = (current.clone(), gone.clone());
        let listener = Closure::<dyn FnMut()>::new(move || {
            g.set(true);
            if let Some(controller) = c.borrow().as_ref() {
                controller.abort();
            }
        });
        signal.set_onabort(Some(listener.as_ref().unchecked_ref()));
        CallerWatch { current, gone, signal, _listener: listener }
    }

    fn gone(&self) -> bool {
        self.gone.get()
    }

    /// A controller for the next upstream fetch, aborted if the caller leaves.
    fn controller(&self) -> web_sys::AbortController {
        let controller = web_sys::AbortController::new().unwrap_or_else(|_| wasm_bindgen::throw_str("AbortController unavailable"));
        *self.current.borrow_mut() = Some(controller.clone());
        controller
    }
}

impl Drop for CallerWatch {
    fn drop(&mut self) {
        self.signal.set_onabort(None);
    }
}

/// A failed attempt: what the policy learns, and what the caller gets if it was the last.
struct Failed {
    outcome: Outcome,
    reply: Reply,
}

/// An answer the caller will get: the attempt is committed.
struct Committed {
    status: u16,
    headers: Vec<(String, String)>,
    body: CommittedBody,
}

enum CommittedBody {
    Reply(Body),
    /// Passthrough bytes straight from the upstream's JS stream (never enters wasm).
    Raw(web_sys::ReadableStream),
    Pump(Box<Pump>),
}

async fn forward_request(
    forward: Forward,
    request_id: &str,
    started: u64,
    signal: web_sys::AbortSignal,
    log: &mut LogLine,
    changed: &mut bool,
) -> worker::Result<Response> {
    let watch = Rc::new(CallerWatch::new(signal));
    log.route = forward.route.clone();
    let mut driver = Driver::new(forward.candidates(), forward.retry, forward.breaker, now_ms());
    let mut last: Option<Reply> = None;
    loop {
        let step = HEALTH.with(|h| driver.next(&mut h.borrow_mut(), now_ms()));
        match step {
            Step::Try { target, key } => {
                let t = &forward.targets[target];
                let result = attempt(&forward, t, key, started, &watch).await;
                let outcome = match &result {
                    Ok(_) => Outcome::Success,
                    Err(f) => f.outcome.clone(),
                };
                HEALTH.with(|h| driver.report(&mut h.borrow_mut(), target, key, &outcome, now_ms(), js_sys::Math::random()));
                *changed |= driver.changed_health;
                match result {
                    Ok(committed) => {
                        log.attempts = std::mem::take(&mut driver.log);
                        log.status = committed.status;
                        log.upstream_status = Some(committed.status);
                        log.target = Some(t.target_id.clone());
                        log.upstream_model = Some(t.upstream_model.clone());
                        log.provider = Some(t.provider.clone());
                        let mut headers = committed.headers;
                        headers.push(("x-gateway-provider".into(), t.provider.clone()));
                        headers.push(("x-gateway-model".into(), t.upstream_model.clone()));
                        headers.push(("x-gateway-attempts".into(), driver.attempts().to_string()));
                        let builder = ResponseBuilder::new().with_status(committed.status).with_headers(headers_of(&headers, request_id));
                        return match committed.body {
                            CommittedBody::Reply(Body::Empty) => Ok(builder.empty()),
                            CommittedBody::Reply(Body::Bytes(b)) => Ok(builder.fixed(b)),
                            CommittedBody::Reply(Body::Chunks(c)) => builder.from_stream(futures::stream::iter(c.into_iter().map(Ok::<Vec<u8>, worker::Error>))),
                            CommittedBody::Raw(stream) => Ok(builder.stream(stream)),
                            CommittedBody::Pump(pump) => builder.from_stream(pump.into_stream(watch)),
                        };
                    }
                    Err(failed) => {
                        if let Outcome::Status { code, .. } = failed.outcome {
                            log.upstream_status = Some(code);
                        }
                        last = Some(failed.reply);
                    }
                }
                if watch.gone() {
                    break;
                }
            }
            Step::Wait { ms } => {
                let left = (forward.timeouts.total_ms).saturating_sub(now_ms().saturating_sub(started));
                Delay::from(Duration::from_millis(ms.min(left))).await;
            }
            Step::Exhausted => break,
        }
    }
    log.attempts = std::mem::take(&mut driver.log);
    let reply = last.unwrap_or_else(|| {
        let e = GatewayError::new(ErrorKind::Overloaded, "Every upstream for this model is unavailable right now (circuit open or keys cooling down); try again shortly.");
        Reply::error(&e, forward.protocol)
    });
    log.status = reply.status;
    log.error = Some(format!("gave up after {} attempt(s)", driver.attempts()));
    let mut reply = reply;
    reply.headers.push(("x-gateway-attempts".into(), driver.attempts().to_string()));
    to_response(reply, request_id)
}

/// Awaits `fut` for at most `ms`.
async fn within<F: std::future::Future + Unpin>(fut: F, ms: u64) -> Option<F::Output> {
    match select(fut, Delay::from(Duration::from_millis(ms))).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

async fn attempt(forward: &Forward, t: &PreparedTarget, key: usize, started: u64, watch: &Rc<CallerWatch>) -> Result<Committed, Failed> {
    let request = t.request(key);
    let fail = |f: Failure, outcome: Outcome| Failed { reply: gateway::upstream_failure(forward, t, &f), outcome };
    let total_left = forward.timeouts.total_ms.saturating_sub(now_ms().saturating_sub(started)).max(1);
    let first_byte = forward.timeouts.first_byte_ms.min(total_left);
    let timeout = || fail(Failure::Timeout { ms: forward.timeouts.first_byte_ms, setting: "timeouts.firstByteMs" }, Outcome::Timeout);

    let headers = Headers::new();
    for (name, value) in &request.headers {
        let _ = headers.set(name, value);
    }
    let body = js_sys::Uint8Array::from(request.body.as_slice());
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from(body)));
    let upstream_request = Request::new_with_init(&request.url, &init).map_err(|e| fail(Failure::Unreachable(e.to_string()), Outcome::Connect))?;
    let controller = watch.controller();
    let signal = worker::AbortSignal::from(controller.signal());
    let fetch = Fetch::Request(upstream_request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let mut upstream = match within(sending, first_byte).await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(fail(Failure::Unreachable(e.to_string()), Outcome::Connect)),
        None => {
            controller.abort();
            return Err(timeout());
        }
    };

    let status = upstream.status_code();
    let upstream_headers: Vec<(String, String)> = upstream.headers().entries().collect();
    let header = |name: &str| upstream_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let kept = gateway::upstream_reply_headers(&upstream_headers);
    let conversion = t.conversion.as_ref();

    if !(200..300).contains(&status) {
        let retry_after_ms = policy::retry_after_ms(header("retry-after"), header("retry-after-ms"), now_ms());
        let bytes = read_upstream(&mut upstream).await.unwrap_or_default();
        let reply = match conversion {
            None => Reply { status, headers: kept, body: Body::Bytes(bytes) },
            Some(c) => {
                let e = protocols::decode_error(c.upstream, status, &bytes);
                let mut reply = Reply::error(&e, c.client);
                reply.headers.extend(without_framing(kept));
                reply
            }
        };
        return Err(Failed { outcome: Outcome::Status { code: status, retry_after_ms }, reply });
    }

    let is_stream = match conversion {
        Some(c) => c.stream && !c.count,
        None => forward.stream,
    };
    if !is_stream {
        return match conversion {
            // Passthrough answers stream straight through, unparsed.
            None => {
                let raw: web_sys::Response = upstream.into();
                let body = match raw.body() {
                    Some(stream) => CommittedBody::Raw(stream),
                    None => CommittedBody::Reply(Body::Empty),
                };
                Ok(Committed { status, headers: kept, body })
            }
            Some(c) => {
                let left = forward.timeouts.total_ms.saturating_sub(now_ms().saturating_sub(started)).max(1);
                let bytes = match within(Box::pin(read_upstream(&mut upstream)), left).await {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Err(Failed { outcome: Outcome::BrokenStream, reply: Reply::error(&e, c.client) }),
                    None => return Err(fail(Failure::Timeout { ms: forward.timeouts.total_ms, setting: "timeouts.totalMs" }, Outcome::Timeout)),
                };
                match convert::convert_body(c, &bytes) {
                    Ok(json) => {
                        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
                        headers.extend(without_framing(kept));
                        Ok(Committed { status: 200, headers, body: CommittedBody::Reply(Body::Bytes(json.into_bytes())) })
                    }
                    // Garbage or an error object under a 2xx: another attempt may do better.
                    Err(e) => Err(Failed { outcome: Outcome::BrokenStream, reply: Reply::error(&e, c.client) }),
                }
            }
        };
    }

    // A stream: wait for its first event before committing.
    let mut body = match upstream.stream() {
        Ok(s) => s,
        Err(_) => return Err(fail(Failure::BrokenStream("no body".into()), Outcome::BrokenStream)),
    };
    let event_stream = header("content-type").is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
    // A passthrough caller that asked for SSE and got something else (an HTML error page,
    // garbage) under a 2xx: not an answer; another attempt may do better.
    let expects_sse = forward.stream && (forward.protocol != Protocol::Gemini || t.url.contains("alt=sse"));
    if conversion.is_none() && expects_sse && !event_stream {
        controller.abort();
        let why = format!("expected an event stream, got {}", header("content-type").unwrap_or("no content type"));
        return Err(fail(Failure::BrokenStream(why), Outcome::BrokenStream));
    }
    let mut pump = Pump::new(forward, conversion, event_stream, started);
    loop {
        let next = match within(body.next(), first_byte).await {
            None => {
                controller.abort();
                return Err(timeout());
            }
            Some(n) => n,
        };
        match next {
            Some(Ok(chunk)) => {
                if let Some(e) = pump.peek(&chunk) {
                    controller.abort();
                    let protocol = conversion.map(|c| c.client).unwrap_or(forward.protocol);
                    let outcome = match e.kind {
                        ErrorKind::RateLimited => Outcome::Status { code: 429, retry_after_ms: None },
                        ErrorKind::Overloaded => Outcome::Status { code: 529, retry_after_ms: None },
                        ErrorKind::InvalidRequest => Outcome::Status { code: 400, retry_after_ms: None },
                        _ => Outcome::BrokenStream,
                    };
                    return Err(Failed { outcome, reply: Reply::error(&e, protocol) });
                }
                if pump.committed() {
                    break;
                }
            }
            Some(Err(e)) => return Err(fail(Failure::BrokenStream(e.to_string()), Outcome::BrokenStream)),
            None => {
                // Ended before any event (an aborted body also reads as an end).
                return Err(fail(Failure::BrokenStream("the stream ended before its first event".into()), Outcome::BrokenStream));
            }
        }
    }
    let mut headers = match conversion {
        Some(c) => {
            let content_type = if c.framing == StreamFraming::Sse { "text/event-stream; charset=utf-8" } else { "application/json" };
            let mut h = vec![("content-type".to_string(), content_type.to_string())];
            h.extend(gateway::stream_headers());
            h.extend(without_framing(kept));
            h
        }
        None => kept,
    };
    if !event_stream && conversion.is_none() {
        headers.retain(|(n, _)| n != "content-encoding");
    }
    pump.body = Some(body);
    pump.controller = Some(controller);
    Ok(Committed { status: 200.max(status), headers, body: CommittedBody::Pump(Box::new(pump)) })
}

/// Upstream headers minus those that describe its own body framing.
fn without_framing(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(n, _)| !matches!(n.as_str(), "content-type" | "content-encoding" | "cache-control" | "x-accel-buffering"))
        .collect()
}

/// Largest upstream body read whole (non-streamed converted answers and error bodies).
const MAX_UPSTREAM_BODY: usize = 32 * 1024 * 1024;

async fn read_upstream(upstream: &mut Response) -> Result<Vec<u8>, GatewayError> {
    let mut stream = upstream
        .stream()
        .map_err(|_| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer could not be read."))?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream connection failed while sending its answer."))?;
        body.extend_from_slice(&chunk);
        if body.len() > MAX_UPSTREAM_BODY {
            return Err(GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer is larger than the gateway reads whole (32 MiB)."));
        }
    }
    Ok(body)
}

/// A committed stream on its way to the caller: converted (or passed through) event by
/// event, with keepalives in long silences and idle/total limits.
struct Pump {
    protocol: Protocol,
    converter: Option<StreamConverter>,
    /// Passthrough: SSE framing, to find the first event and event boundaries.
    sse: Option<sse::Decoder>,
    event_stream: bool,
    seen_event: bool,
    /// Bytes ready for the caller.
    pending: Vec<u8>,
    /// Whether the bytes sent so far end at an event boundary (keepalives only go there).
    at_boundary: bool,
    keepalive: Option<&'static [u8]>,
    keepalive_ms: u64,
    idle_ms: u64,
    deadline_ms: u64,
    /// When upstream bytes last arrived (keepalives do not count).
    last_data_ms: u64,
    /// Passthrough SSE: whether the protocol's terminal event went by.
    terminated: bool,
    body: Option<ByteStream>,
    controller: Option<web_sys::AbortController>,
    done: bool,
}

impl Pump {
    fn new(forward: &Forward, conversion: Option<&Conversion>, event_stream: bool, started: u64) -> Pump {
        let protocol = conversion.map(|c| c.client).unwrap_or(forward.protocol);
        let framing = conversion.map(|c| c.framing).unwrap_or(if event_stream { StreamFraming::Sse } else { StreamFraming::JsonArray });
        let keepalive: Option<&'static [u8]> = match (framing, protocol) {
            (StreamFraming::JsonArray, _) => None,
            (_, Protocol::Claude) => Some(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
            _ => Some(b": keepalive\n\n"),
        };
        Pump {
            protocol,
            converter: conversion.map(StreamConverter::new),
            sse: (conversion.is_none() && event_stream).then(sse::Decoder::new),
            event_stream,
            seen_event: false,
            pending: Vec::new(),
            at_boundary: true,
            keepalive: if forward.keepalive_ms > 0 { keepalive } else { None },
            keepalive_ms: forward.keepalive_ms,
            idle_ms: forward.timeouts.idle_ms,
            deadline_ms: started + forward.timeouts.total_ms,
            last_data_ms: now_ms(),
            terminated: false,
            body: None,
            controller: None,
            done: false,
        }
    }

    /// Takes upstream bytes before the commit; `Some(error)` when the first event is an
    /// upstream error (the attempt failed and may be retried).
    fn peek(&mut self, chunk: &[u8]) -> Option<GatewayError> {
        match (&mut self.converter, &mut self.sse) {
            (Some(conv), _) => {
                let out = conv.feed(chunk);
                if !conv.started() {
                    if let Some(e) = conv.failure() {
                        return Some(e.clone());
                    }
                }
                self.pending.extend(out);
                self.seen_event = conv.started();
            }
            (None, Some(decoder)) => {
                self.pending.extend_from_slice(chunk);
                let events = decoder.feed(chunk);
                if events.iter().any(|e| is_terminal(self.protocol, e)) {
                    self.terminated = true;
                }
                if !self.seen_event {
                    if let Some(first) = events.into_iter().next() {
                        // Feed the first event to a fresh decoder of the protocol: an
                        // error event fails the attempt before the caller sees it.
                        let meta = crate::ir::ResponseMeta { id: String::new(), model: String::new(), created: 0 };
                        let mut probe = protocols::stream_decoder(self.protocol, meta);
                        if let Err(e) = probe.event(&first, &mut Vec::new()) {
                            return Some(e);
                        }
                        self.seen_event = true;
                    }
                }
                self.at_boundary = self.pending.ends_with(b"\n\n") || self.pending.ends_with(b"\r\n\r\n");
            }
            (None, None) => {
                self.pending.extend_from_slice(chunk);
                self.seen_event = !self.pending.is_empty();
            }
        }
        None
    }

    fn committed(&self) -> bool {
        self.seen_event
    }

    /// Passthrough SSE: notes whether the protocol's terminal event has gone by.
    fn watch_termination(&mut self, chunk: &[u8]) {
        let protocol = self.protocol;
        if let Some(decoder) = &mut self.sse {
            for event in decoder.feed(chunk) {
                if is_terminal(protocol, &event) {
                    self.terminated = true;
                }
            }
        }
    }

    fn error_bytes(&mut self, e: &GatewayError) -> Vec<u8> {
        if let Some(conv) = &mut self.converter {
            return conv.abort(e);
        }
        if !self.event_stream {
            return Vec::new();
        }
        // Passthrough: the caller protocol's own error event, at an event boundary.
        let mut out = Vec::new();
        if !self.at_boundary {
            out.extend_from_slice(b"\n\n");
        }
        let mut encoder = protocols::stream_encoder(self.protocol, Default::default(), StreamFraming::Sse);
        encoder.error(e, &mut out);
        out
    }

    fn into_stream(self: Box<Self>, watch: Rc<CallerWatch>) -> impl futures::Stream<Item = worker::Result<Vec<u8>>> {
        futures::stream::unfold((self, watch), |(mut pump, watch)| async move {
            if !pump.pending.is_empty() {
                let out = std::mem::take(&mut pump.pending);
                return Some((Ok(out), (pump, watch)));
            }
            if pump.done {
                if let Some(c) = pump.controller.take() {
                    c.abort();
                }
                return None;
            }
            loop {
                let last_data = pump.last_data_ms;
                let now = now_ms();
                let idle_at = last_data + pump.idle_ms;
                let until_limit = idle_at.min(pump.deadline_ms).saturating_sub(now);
                let wait = match pump.keepalive {
                    Some(_) if pump.at_boundary => until_limit.min(pump.keepalive_ms),
                    _ => until_limit,
                };
                let body = pump.body.as_mut()?;
                let next = match select(body.next(), Delay::from(Duration::from_millis(wait.max(1)))).await {
                    Either::Left((next, _)) => Some(next),
                    Either::Right(_) => None,
                };
                let out = match next {
                    Some(Some(Ok(chunk))) => {
                        pump.last_data_ms = now_ms();
                        match &mut pump.converter {
                            Some(conv) => {
                                let out = conv.feed(&chunk);
                                if conv.is_closed() {
                                    pump.done = true;
                                }
                                out
                            }
                            None => {
                                pump.at_boundary = chunk.ends_with(b"\n\n") || chunk.ends_with(b"\r\n\r\n");
                                pump.watch_termination(&chunk);
                                chunk
                            }
                        }
                    }
                    Some(Some(Err(_))) => {
                        pump.done = true;
                        let e = GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream connection failed mid-stream.");
                        pump.error_bytes(&e)
                    }
                    Some(None) => {
                        pump.done = true;
                        match &mut pump.converter {
                            Some(conv) => conv.finish(),
                            // A passthrough stream that ended before its terminal event:
                            // tell the caller instead of ending as if it were complete.
                            None if pump.sse.is_some() && !pump.terminated => {
                                let e = GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream stream ended before the response was complete.");
                                pump.error_bytes(&e)
                            }
                            None => Vec::new(),
                        }
                    }
                    None => {
                        let now = now_ms();
                        if watch.gone() {
                            pump.done = true;
                            Vec::new()
                        } else if now >= pump.deadline_ms || now >= last_data + pump.idle_ms {
                            pump.done = true;
                            let setting = if now >= pump.deadline_ms { "timeouts.totalMs" } else { "timeouts.idleMs" };
                            let e = GatewayError::new(ErrorKind::Timeout, format!("The upstream stream stalled past {setting}."));
                            pump.error_bytes(&e)
                        } else {
                            pump.keepalive.map(|k| k.to_vec()).unwrap_or_default()
                        }
                    }
                };
                if !out.is_empty() || pump.done {
                    if pump.done {
                        if let Some(c) = pump.controller.take() {
                            c.abort();
                        }
                    }
                    if out.is_empty() {
                        return None;
                    }
                    return Some((Ok(out), (pump, watch)));
                }
            }
        })
    }
}

/// Whether an SSE event ends its protocol's stream.
fn is_terminal(protocol: Protocol, event: &sse::Event) -> bool {
    match protocol {
        // Some compatible servers omit `[DONE]` after the finish chunk.
        Protocol::OpenAiChat => event.data.trim() == "[DONE]" || event.data.contains("\"finish_reason\":\""),
        Protocol::Claude => event.event.as_deref() == Some("message_stop") || event.data.contains("\"type\":\"message_stop\""),
        Protocol::OpenAiResponses => matches!(
            event.event.as_deref(),
            Some("response.completed" | "response.incomplete" | "response.failed" | "error")
        ),
        Protocol::Gemini => event.data.contains("\"finishReason\"") || event.data.contains("\"error\""),
    }
}
