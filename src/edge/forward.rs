//! Carrying out a planned forward: the attempt loop the core's [`Driver`] steers, one
//! upstream attempt at a time. An attempt counts as answered only once the upstream sent
//! its headers and, for a stream, a first good event; until then every failure can be
//! retried elsewhere and the caller has seen nothing.

use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};

use super::js::{self, before, describe, sleep, ByteReader, Ctx, PipeWriter, Timer};
use super::pump::Pump;
use super::{body_value, now_ms, respond, to_response, HEALTH};
use crate::attempts::{Driver, Step};
use crate::convert;
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::{self, Body, Failure, Forward, LogLine, PreparedTarget, Reply};
use crate::policy::{self, Outcome};
use crate::protocols::{self, Protocol, StreamFraming};

/// Whether the caller went away (`request.signal`, compatibility flag
/// `enable_request_signal`); every upstream fetch is aborted with it.
pub struct CallerWatch {
    signal: web_sys::AbortSignal,
}

impl CallerWatch {
    pub fn gone(&self) -> bool {
        self.signal.aborted()
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
    /// A stream whose first event went by: the rest is pumped by [`Pump::run`], with the
    /// attempt's timer.
    Pump(Box<Pump>, ByteReader, Timer),
}

pub async fn forward_request(
    forward: Forward,
    request_id: &str,
    started: u64,
    signal: web_sys::AbortSignal,
    ctx: &Ctx,
    log: &mut LogLine,
    changed: &mut bool,
) -> Result<(web_sys::Response, Handoff), JsValue> {
    let watch = Rc::new(CallerWatch { signal });
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
                        if let Some(c) = t.conversion.as_ref().filter(|c| !c.dropped_tools.is_empty()) {
                            headers.push((gateway::DROPPED_TOOLS_HEADER.into(), c.dropped_tools.join(", ")));
                        }
                        let status = committed.status;
                        return match committed.body {
                            CommittedBody::Reply(body) => Ok((respond(status, &headers, request_id, &body_value(body))?, Handoff::No)),
                            CommittedBody::Raw(stream) => Ok((respond(status, &headers, request_id, &stream)?, Handoff::No)),
                            CommittedBody::Pump(mut pump, upstream, timer) => {
                                let (mut out, body) = PipeWriter::new()?;
                                pump.start(&mut out);
                                // The stream logs its line when it ends, with how it ended.
                                let mut line = std::mem::take(log);
                                line.first_byte_ms = Some(now_ms().saturating_sub(started));
                                js::wait_until(ctx, pump.run(upstream, out, timer, watch, line, started, JsValue::from(ctx).unchecked_into()));
                                Ok((respond(status, &headers, request_id, &body)?, Handoff::Logged))
                            }
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
                sleep(ms.min(left)).await;
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
    Ok((to_response(reply, request_id)?, Handoff::No))
}

/// Whether the request's log line went along with a committed stream.
#[derive(PartialEq)]
pub enum Handoff {
    No,
    Logged,
}

async fn attempt(forward: &Forward, t: &PreparedTarget, key: usize, started: u64, watch: &Rc<CallerWatch>) -> Result<Committed, Failed> {
    let request = t.request(key);
    let fail = |f: Failure, outcome: Outcome| Failed { reply: gateway::upstream_failure(forward, t, &f), outcome };
    let now = now_ms();
    let total_left = forward.timeouts.total_ms.saturating_sub(now.saturating_sub(started)).max(1);
    let first_byte = forward.timeouts.first_byte_ms.min(total_left);
    let timeout = || fail(Failure::Timeout { ms: forward.timeouts.first_byte_ms, setting: "timeouts.firstByteMs" }, Outcome::Timeout);
    // One timer bounds the whole wait for headers and the first event.
    let mut first_byte_timer = Timer::new();
    first_byte_timer.fire_by(now + first_byte, now);

    let (controller, sending) = js::upstream_fetch(&request.url, &request.headers, &request.body, &watch.signal)
        .map_err(|e| fail(Failure::Unreachable(describe(&e)), Outcome::Connect))?;
    let upstream: web_sys::Response = match before(sending, &mut first_byte_timer).await {
        Some(Ok(r)) => r.unchecked_into(),
        Some(Err(e)) => return Err(fail(Failure::Unreachable(describe(&e)), Outcome::Connect)),
        None => {
            controller.abort();
            return Err(timeout());
        }
    };

    let status = upstream.status();
    let upstream_headers = js::header_pairs(&upstream.headers());
    let header = |name: &str| upstream_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let kept = gateway::upstream_reply_headers(&upstream_headers);
    let conversion = t.conversion.as_ref();

    if !(200..300).contains(&status) {
        let retry_after_ms = policy::retry_after_ms(header("retry-after"), header("retry-after-ms"), now_ms());
        let bytes = read_upstream(&upstream).await.unwrap_or_default();
        let reply = match conversion {
            None => Reply { status, headers: kept, body: Body::Bytes(bytes) },
            Some(c) => {
                let e = protocols::decode_error(c.upstream, status, &bytes);
                let mut reply = Reply::error(&e, c.client);
                reply.headers.extend(gateway::without_framing(kept));
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
                let body = match upstream.body() {
                    Some(stream) => CommittedBody::Raw(stream),
                    None => CommittedBody::Reply(Body::Empty),
                };
                Ok(Committed { status, headers: gateway::relayed_reply_headers(kept), body })
            }
            Some(c) => {
                let mut total_timer = Timer::new();
                let now = now_ms();
                total_timer.fire_by(started + forward.timeouts.total_ms, now);
                let bytes = match before(Box::pin(read_upstream(&upstream)), &mut total_timer).await {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Err(Failed { outcome: Outcome::BrokenStream, reply: Reply::error(&e, c.client) }),
                    None => {
                        controller.abort();
                        return Err(fail(Failure::Timeout { ms: forward.timeouts.total_ms, setting: "timeouts.totalMs" }, Outcome::Timeout));
                    }
                };
                match convert::convert_body(c, &bytes) {
                    Ok(json) => {
                        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
                        headers.extend(gateway::without_framing(kept));
                        Ok(Committed { status: 200, headers, body: CommittedBody::Reply(Body::Bytes(json.into_bytes())) })
                    }
                    // Garbage or an error object under a 2xx: another attempt may do better.
                    Err(e) => Err(Failed { outcome: Outcome::BrokenStream, reply: Reply::error(&e, c.client) }),
                }
            }
        };
    }

    // A stream: wait for its first event before committing.
    let Some(reader) = upstream.body().and_then(|b| ByteReader::new(&b).ok()) else {
        return Err(fail(Failure::BrokenStream("no body".into()), Outcome::BrokenStream));
    };
    let event_stream = header("content-type").is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
    // A passthrough caller that asked for SSE and got something else (an HTML error page,
    // garbage) under a 2xx: not an answer; another attempt may do better.
    let expects_sse = forward.stream && (forward.protocol != Protocol::Gemini || t.url.contains("alt=sse"));
    if conversion.is_none() && expects_sse && !event_stream {
        reader.cancel();
        let why = format!("expected an event stream, got {}", header("content-type").unwrap_or("no content type"));
        return Err(fail(Failure::BrokenStream(why), Outcome::BrokenStream));
    }
    let mut pump = Pump::new(forward, conversion, event_stream, started);
    loop {
        let mut read = reader.read();
        let next = match before(&mut read, &mut first_byte_timer).await {
            None => {
                reader.cancel();
                return Err(timeout());
            }
            Some(n) => n,
        };
        match next {
            Ok(Some(chunk)) => {
                if let Some(e) = pump.peek(&chunk) {
                    reader.cancel();
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
            Err(e) => return Err(fail(Failure::BrokenStream(describe(&e)), Outcome::BrokenStream)),
            // Ended before any event (an aborted body also reads as an end).
            Ok(None) => return Err(fail(Failure::BrokenStream("the stream ended before its first event".into()), Outcome::BrokenStream)),
        }
    }
    let headers = gateway::stream_reply_headers(kept, conversion.map(|c| c.framing));
    Ok(Committed { status: 200.max(status), headers, body: CommittedBody::Pump(Box::new(pump), reader, first_byte_timer) })
}

/// Largest upstream body read whole (non-streamed converted answers and error bodies).
const MAX_UPSTREAM_BODY: usize = 32 * 1024 * 1024;

async fn read_upstream(upstream: &web_sys::Response) -> Result<Vec<u8>, GatewayError> {
    let Some(stream) = upstream.body() else { return Ok(Vec::new()) };
    let reader = ByteReader::new(&stream).map_err(|_| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer could not be read."))?;
    let mut body = Vec::new();
    loop {
        let chunk = reader
            .read()
            .await
            .map_err(|_| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream connection failed while sending its answer."))?;
        let Some(chunk) = chunk else { return Ok(body) };
        body.extend_from_slice(&chunk);
        if body.len() > MAX_UPSTREAM_BODY {
            reader.cancel();
            return Err(GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answer is larger than the gateway reads whole (32 MiB)."));
        }
    }
}
