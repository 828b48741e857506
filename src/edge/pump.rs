//! A committed stream on its way to the caller: upstream bytes are read in one task,
//! converted (or passed through) event by event, and written into a native pipe whose
//! other end is the response body. It sends keepalives during upstream silences, ends
//! with the caller protocol's error event on idle/total timeouts, a broken upstream or a
//! passthrough stream cut before its terminal event, and stops reading the upstream when
//! the caller goes away. One re-armable timer serves the whole stream: it is armed for
//! the earliest deadline and re-checked when it fires, never reset per chunk.

use std::rc::Rc;

use super::js::{self, before, ByteReader, Ctx, PipeWriter, ReadFuture, Timer};
use super::forward::CallerWatch;
use super::now_ms;
use crate::config::LogRequests;
use crate::convert::{Conversion, StreamConverter};
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::{Forward, LogLine};
use crate::protocols::{self, Protocol, StreamFraming};
use crate::sse;

pub struct Pump {
    protocol: Protocol,
    converter: Option<StreamConverter>,
    /// Passthrough: SSE framing, to find the first event and event boundaries.
    sse: Option<sse::Decoder>,
    event_stream: bool,
    seen_event: bool,
    /// Bytes peeked before the commit, until [`Pump::start`] queues them.
    pending: Vec<u8>,
    /// Whether the bytes sent so far end at an event boundary (keepalives only go there).
    at_boundary: bool,
    keepalive: Option<&'static [u8]>,
    keepalive_ms: u64,
    idle_ms: u64,
    deadline_ms: u64,
    /// When upstream bytes last arrived (keepalives do not count).
    last_data_ms: u64,
    /// When bytes (data or keepalive) last went to the caller.
    last_sent_ms: u64,
    /// Passthrough SSE: whether the protocol's terminal event went by.
    terminated: bool,
    log_requests: LogRequests,
}

/// What to do after a step of the stream.
enum Next {
    Continue,
    /// Write these last bytes, end the body (`how` it ended, for the log line), and stop
    /// reading the upstream if it is still sending.
    End { cancel_upstream: bool, how: &'static str },
}

/// How a stream ended, as the log line says it.
const COMPLETE: &str = "complete";
const TRUNCATED: &str = "truncated";
const UPSTREAM_ERROR: &str = "upstream_error";
const TIMEOUT: &str = "timeout";
const CALLER_GONE: &str = "caller_gone";

impl Pump {
    pub fn new(forward: &Forward, conversion: Option<&Conversion>, event_stream: bool, started: u64) -> Pump {
        let protocol = conversion.map(|c| c.client).unwrap_or(forward.protocol);
        let framing = conversion.map(|c| c.framing).unwrap_or(if event_stream { StreamFraming::Sse } else { StreamFraming::JsonArray });
        let keepalive: Option<&'static [u8]> = match (framing, protocol) {
            (StreamFraming::JsonArray, _) => None,
            (_, Protocol::Claude) => Some(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
            _ => Some(b": keepalive\n\n"),
        };
        let now = now_ms();
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
            last_data_ms: now,
            last_sent_ms: now,
            terminated: false,
            log_requests: forward.log_requests,
        }
    }

    /// Takes upstream bytes before the commit; `Some(error)` when the first event is an
    /// upstream error (the attempt failed and may be retried).
    pub fn peek(&mut self, chunk: &[u8]) -> Option<GatewayError> {
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
                        // An error event fails the attempt before the caller sees it.
                        if let Some(e) = protocols::first_event_error(self.protocol, &first) {
                            return Some(e);
                        }
                        self.seen_event = true;
                    }
                }
                self.at_boundary = ends_event(&self.pending);
            }
            (None, None) => {
                self.pending.extend_from_slice(chunk);
                self.seen_event = !self.pending.is_empty();
            }
        }
        None
    }

    /// Queues the bytes peeked before the commit as the caller's first write (before the
    /// response is handed over, so the runtime finds them on its first read).
    pub fn start(&mut self, out: &mut PipeWriter) {
        if !self.pending.is_empty() {
            out.start(&std::mem::take(&mut self.pending));
            self.last_sent_ms = now_ms();
        }
    }

    pub fn committed(&self) -> bool {
        self.seen_event
    }

    /// Pumps the rest of the upstream stream into `out`, then ends it.
    /// `timer` may still be armed for an earlier deadline: firing early only means a re-check.
    pub async fn run(self, upstream: ByteReader, out: PipeWriter, timer: Timer, watch: Rc<CallerWatch>, mut log: LogLine, started: u64, ctx: Ctx) {
        let setting = self.log_requests;
        let end = self.pump(upstream, out, timer, &watch).await;
        log.stream_end = Some(end);
        log.duration_ms = now_ms().saturating_sub(started);
        if log.wanted(setting) {
            js::log_soon(&ctx, &log.to_json());
        }
    }

    /// The stream loop; returns how the stream ended.
    async fn pump(mut self, upstream: ByteReader, mut out: PipeWriter, mut timer: Timer, watch: &CallerWatch) -> &'static str {
        let mut reading: Option<ReadFuture> = None;
        let mut bytes = Vec::new();
        loop {
            if !bytes.is_empty() {
                if out.write(&bytes).await.is_err() {
                    upstream.cancel();
                    return CALLER_GONE;
                }
                self.last_sent_ms = now_ms();
            }
            let now = now_ms();
            let mut wake_at = (self.last_data_ms + self.idle_ms).min(self.deadline_ms);
            if self.keepalive.is_some() && self.at_boundary {
                wake_at = wake_at.min(self.last_sent_ms + self.keepalive_ms);
            }
            timer.fire_by(wake_at, now);
            let read = reading.get_or_insert_with(|| upstream.read());
            let next = match before(read, &mut timer).await {
                Some(result) => {
                    reading = None;
                    match result {
                        Ok(Some(chunk)) => {
                            self.last_data_ms = now_ms();
                            self.on_chunk(chunk)
                        }
                        Ok(None) => self.on_end(),
                        Err(_) => {
                            let e = GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream connection failed mid-stream.");
                            (self.error_bytes(&e), Next::End { cancel_upstream: false, how: UPSTREAM_ERROR })
                        }
                    }
                }
                None => self.on_timer(watch),
            };
            match next {
                (b, Next::Continue) => bytes = b,
                (last, Next::End { cancel_upstream, how }) => {
                    if cancel_upstream {
                        upstream.cancel();
                    }
                    if !last.is_empty() && out.write(&last).await.is_err() {
                        return CALLER_GONE;
                    }
                    out.close().await;
                    return how;
                }
            }
        }
    }

    fn on_chunk(&mut self, chunk: Vec<u8>) -> (Vec<u8>, Next) {
        match &mut self.converter {
            Some(conv) => {
                let out = conv.feed(&chunk);
                // The caller's stream is complete; whatever the upstream still sends is not read.
                let next = match (conv.is_closed(), conv.failure()) {
                    (false, _) => Next::Continue,
                    (true, None) => Next::End { cancel_upstream: true, how: COMPLETE },
                    (true, Some(_)) => Next::End { cancel_upstream: true, how: UPSTREAM_ERROR },
                };
                (out, next)
            }
            None => {
                self.at_boundary = ends_event(&chunk);
                let protocol = self.protocol;
                if let Some(decoder) = &mut self.sse {
                    if decoder.feed(&chunk).iter().any(|e| is_terminal(protocol, e)) {
                        self.terminated = true;
                    }
                }
                (chunk, Next::Continue)
            }
        }
    }

    fn on_end(&mut self) -> (Vec<u8>, Next) {
        let (last, how) = match &mut self.converter {
            Some(conv) => {
                let last = conv.finish();
                (last, if conv.failure().is_some() { TRUNCATED } else { COMPLETE })
            }
            // A passthrough stream that ended before its terminal event: tell the caller
            // instead of ending as if it were complete.
            None if self.sse.is_some() && !self.terminated => {
                let e = GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream stream ended before the response was complete.");
                (self.error_bytes(&e), TRUNCATED)
            }
            None => (Vec::new(), COMPLETE),
        };
        (last, Next::End { cancel_upstream: false, how })
    }

    /// The timer fired: a deadline, a keepalive, or nothing due yet (data came meanwhile).
    fn on_timer(&mut self, watch: &CallerWatch) -> (Vec<u8>, Next) {
        let now = now_ms();
        if watch.gone() {
            return (Vec::new(), Next::End { cancel_upstream: true, how: CALLER_GONE });
        }
        if now >= self.deadline_ms || now >= self.last_data_ms + self.idle_ms {
            let setting = if now >= self.deadline_ms { "timeouts.totalMs" } else { "timeouts.idleMs" };
            let e = GatewayError::new(ErrorKind::Timeout, format!("The upstream stream stalled past {setting}."));
            return (self.error_bytes(&e), Next::End { cancel_upstream: true, how: TIMEOUT });
        }
        match self.keepalive {
            Some(k) if self.at_boundary && now >= self.last_sent_ms + self.keepalive_ms => (k.to_vec(), Next::Continue),
            _ => (Vec::new(), Next::Continue),
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
}

fn ends_event(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n\n") || bytes.ends_with(b"\r\n\r\n")
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
