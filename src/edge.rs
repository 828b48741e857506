//! The Workers edge: the only code that touches the platform (workers-rs).
//!
//! It reads the request and env, caches the parsed config per isolate, hands everything
//! to the sans-I/O core in [`crate::gateway`], and carries out its decisions: reply, or
//! fetch the upstream (with a first-byte timeout) and stream its body straight back as a
//! JS `ReadableStream`, so passthrough bytes never enter wasm memory. It logs one JSON
//! line per request.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use wasm_bindgen::JsValue;
use worker::{
    console_log, event, AbortController, Context, Date, Delay, Env, Fetch, Headers, Method, Request, RequestInit, Response,
    ResponseBuilder,
};

use crate::config::{self, Config};
use crate::convert::{self, Conversion, StreamConverter};
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::{self, Begin, Body, Failure, LogLine, Plan, Reply, Resolution, Setup};
use crate::protocols::{self, StreamFraming};

/// The parsed config and gateway keys, kept while the env strings they came from are
/// unchanged: parsing happens once per isolate, not per request.
struct Loaded {
    raw_config: Option<String>,
    raw_keys: (Option<String>, Option<String>),
    state: Rc<Result<(Config, Vec<String>), String>>,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

fn env_string(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

fn load(env: &Env) -> Rc<Result<(Config, Vec<String>), String>> {
    let raw_config = env_string(env, "ANY_API_CONFIG");
    let raw_keys = (env_string(env, "WORKER_AUTH_KEY"), env_string(env, "WORKER_AUTH_KEYS"));
    LOADED.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(loaded) = cell.as_ref() {
            if loaded.raw_config == raw_config && loaded.raw_keys == raw_keys {
                return loaded.state.clone();
            }
        }
        let state = Rc::new(build_state(raw_config.as_deref(), &raw_keys));
        *cell = Some(Loaded { raw_config, raw_keys, state: state.clone() });
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
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
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

    let reply = match gateway::begin(&greq, &setup) {
        Begin::Reply(reply) => Ok(reply),
        Begin::ReadBody { route, max_body_bytes } => {
            log.protocol = Some(route.protocol.name());
            // Setup is Ready here: begin only asks for the body after auth passed.
            let Setup::Ready { config, .. } = &setup else { unreachable_reply() };
            match read_body(&mut req, max_body_bytes).await {
                Err(e) => Ok(Reply::error(&e, route.protocol)),
                Ok(body) => {
                    let env_lookup = |name: &str| env_string(&env, name);
                    let ctx = gateway::Context { request_id: &request_id, now_unix_secs: started / 1000, env: &env_lookup };
                    let mut resolution = Resolution::default();
                    let plan = gateway::plan(&greq, &route, &body, config, &ctx, &mut resolution);
                    log.provider = resolution.provider;
                    log.model = resolution.model;
                    match plan {
                        Plan::Reply(reply) => Ok(reply),
                        Plan::Forward(forward) => Err(forward),
                    }
                }
            }
        }
    };

    let response = match reply {
        Ok(reply) => {
            log.status = reply.status;
            to_response(reply, &request_id)
        }
        Err(forward) => match send_upstream(&forward).await {
            Ok(upstream) => {
                log.upstream_status = Some(upstream.status_code());
                match &forward.conversion {
                    None => {
                        log.status = upstream.status_code();
                        relay(upstream, &request_id)
                    }
                    Some(conversion) => converted(conversion, upstream, &request_id, &mut log).await,
                }
            }
            Err(failure) => {
                log.error = Some(match &failure {
                    Failure::Timeout => "upstream timeout".to_string(),
                    Failure::Unreachable(_) => "upstream unreachable".to_string(),
                });
                let reply = gateway::upstream_failure(&forward, &failure);
                log.status = reply.status;
                to_response(reply, &request_id)
            }
        },
    };
    log.duration_ms = Date::now().as_millis().saturating_sub(started);
    console_log!("{}", log.to_json());
    response
}

fn unreachable_reply() -> ! {
    // `begin` returns ReadBody only for a Ready setup; keep the wasm free of panics
    // anyway by aborting the request instead of unwinding.
    wasm_bindgen::throw_str("gateway setup changed during a request")
}

/// Reads the body, stopping as soon as it exceeds `max` bytes.
async fn read_body(req: &mut Request, max: u64) -> Result<Vec<u8>, crate::error::GatewayError> {
    let mut stream = match req.stream() {
        Ok(s) => s,
        Err(_) => return Ok(Vec::new()),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| crate::error::GatewayError::invalid("The request body could not be read."))?;
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

async fn send_upstream(forward: &gateway::Forward) -> Result<Response, Failure> {
    let headers = Headers::new();
    for (name, value) in &forward.request.headers {
        let _ = headers.set(name, value);
    }
    let body = js_sys::Uint8Array::from(forward.request.body.as_slice());
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from(body)));
    let request = Request::new_with_init(&forward.request.url, &init).map_err(|e| Failure::Unreachable(e.to_string()))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let timer = Delay::from(Duration::from_millis(forward.first_byte_ms));
    let outcome = match select(sending, timer).await {
        Either::Left((Ok(response), _)) => Ok(response),
        Either::Left((Err(e), _)) => Err(Failure::Unreachable(e.to_string())),
        Either::Right(_) => {
            controller.abort();
            Err(Failure::Timeout)
        }
    };
    outcome
}

/// Streams the upstream's answer back unparsed, with the headers the caller should see.
fn relay(upstream: Response, request_id: &str) -> worker::Result<Response> {
    let status = upstream.status_code();
    let upstream_headers: Vec<(String, String)> = upstream.headers().entries().collect();
    let headers = headers_of(&gateway::upstream_reply_headers(&upstream_headers), request_id);
    let raw: web_sys::Response = upstream.into();
    let builder = ResponseBuilder::new().with_status(status).with_headers(headers);
    Ok(match raw.body() {
        Some(stream) => builder.stream(stream),
        None => builder.empty(),
    })
}

/// Largest upstream body read whole (non-streamed answers and error bodies).
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

/// The upstream's answer converted into the caller's protocol.
async fn converted(c: &Conversion, mut upstream: Response, request_id: &str, log: &mut LogLine) -> worker::Result<Response> {
    let status = upstream.status_code();
    let upstream_headers: Vec<(String, String)> = upstream.headers().entries().collect();
    // Retry hints and rate-limit headers, without the upstream's content type.
    let mut kept: Vec<(String, String)> =
        gateway::upstream_reply_headers(&upstream_headers).into_iter().filter(|(n, _)| n != "content-type").collect();
    kept.retain(|(n, _)| n != "content-encoding" && n != "cache-control" && n != "x-accel-buffering");

    if !(200..300).contains(&status) {
        let error = match read_upstream(&mut upstream).await {
            Ok(body) => protocols::decode_error(c.upstream, status, &body),
            Err(e) => e,
        };
        log.error = Some(format!("upstream error {status}"));
        let mut reply = Reply::error(&error, c.client);
        log.status = reply.status;
        reply.headers.extend(kept);
        return to_response(reply, request_id);
    }

    if c.stream && !c.count {
        log.status = 200;
        let content_type = if c.framing == StreamFraming::Sse { "text/event-stream; charset=utf-8" } else { "application/json" };
        let mut headers = vec![("content-type".to_string(), content_type.to_string())];
        headers.extend(gateway::stream_headers());
        headers.extend(kept);
        let body = match upstream.stream() {
            Ok(s) => s,
            Err(_) => {
                let reply = Reply::error(&GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream stream could not be read."), c.client);
                return to_response(reply, request_id);
            }
        };
        let state = (body, StreamConverter::new(c), false);
        let stream = futures::stream::unfold(state, |(mut body, mut conv, done)| async move {
            if done {
                return None;
            }
            loop {
                let (out, finished) = match body.next().await {
                    Some(Ok(chunk)) => {
                        let out = conv.feed(&chunk);
                        (out, conv.is_closed())
                    }
                    Some(Err(_)) => {
                        let e = GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream connection failed mid-stream.");
                        (conv.abort(&e), true)
                    }
                    None => (conv.finish(), true),
                };
                if finished || !out.is_empty() {
                    return Some((Ok::<Vec<u8>, worker::Error>(out), (body, conv, finished)));
                }
            }
        });
        return ResponseBuilder::new().with_status(200).with_headers(headers_of(&headers, request_id)).from_stream(stream);
    }

    let reply = match read_upstream(&mut upstream).await.and_then(|body| convert::convert_body(c, &body)) {
        Ok(json) => {
            let mut reply = Reply::json(200, json);
            reply.headers.extend(kept);
            reply
        }
        Err(e) => {
            log.error = Some(e.message.chars().take(200).collect());
            Reply::error(&e, c.client)
        }
    };
    log.status = reply.status;
    to_response(reply, request_id)
}
