//! Converting an upstream's answer into the caller's protocol, sans I/O.
//!
//! [`StreamConverter`] is the streaming pipeline: upstream bytes → SSE decoder → the
//! upstream protocol's stream decoder → IR events → the caller protocol's encoder →
//! bytes, one chunk in, the bytes it completes out, nothing buffered beyond the event in
//! progress. A mid-stream upstream error, garbage, or an upstream stream that ends
//! before its terminal event becomes the caller protocol's error event, then a clean end.
//! [`convert_body`] does the same for whole (non-streamed) answers and error bodies.

use crate::error::{ErrorKind, GatewayError};
use crate::ir::{ResponseMeta, StreamEvent};
use crate::protocols::{self, EncodeOptions, Protocol, StreamDecoder, StreamEncoder, StreamFraming};
use crate::{sse, tool_names};

/// How to turn one upstream answer into the caller's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub client: Protocol,
    pub upstream: Protocol,
    pub meta: ResponseMeta,
    pub options: EncodeOptions,
    pub framing: StreamFraming,
    pub stream: bool,
    /// A token-count request (count_tokens / countTokens / input_tokens).
    pub count: bool,
    /// Reasoning is produced but not shown to the caller (a `-thinking` alias).
    pub hide_reasoning: bool,
    /// The client's tools this upstream cannot run, left out ([`crate::ir::Request::dropped_tools`]).
    pub dropped_tools: Vec<String>,
    /// (upstream name, client name) of tools renamed for this upstream ([`crate::tool_names`]).
    pub tool_names: Vec<(String, String)>,
}

pub struct StreamConverter {
    sse: sse::Decoder,
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    events: Vec<StreamEvent>,
    /// Set once the caller's stream has ended (cleanly or with an error event).
    closed: bool,
    started: bool,
    hide_reasoning: bool,
    tool_names: Vec<(String, String)>,
    failure: Option<GatewayError>,
}

impl StreamConverter {
    pub fn new(c: &Conversion) -> Self {
        StreamConverter {
            sse: sse::Decoder::new(),
            decoder: protocols::stream_decoder(c.upstream, c.meta.clone()),
            encoder: protocols::stream_encoder(c.client, c.options.clone(), c.framing),
            events: Vec::new(),
            closed: false,
            started: false,
            hide_reasoning: c.hide_reasoning,
            tool_names: c.tool_names.clone(),
            failure: None,
        }
    }

    /// Whether the first IR event (the answer's start) has gone to the caller: before
    /// it, a failure can still be retried elsewhere.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether the caller's stream is complete; later input is ignored.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds upstream bytes; returns the caller's bytes they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        for event in self.sse.feed(chunk) {
            if let Err(e) = self.decoder.event(&event, &mut self.events) {
                self.fail(&e, &mut out);
                return out;
            }
            self.drain(&mut out);
            if self.closed {
                break;
            }
        }
        out
    }

    /// The upstream body ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        let (last, _incomplete) = self.sse.finish();
        if let Some(event) = last {
            if let Err(e) = self.decoder.event(&event, &mut self.events) {
                self.fail(&e, &mut out);
                return out;
            }
        }
        match self.decoder.finish(&mut self.events) {
            Ok(()) => self.drain(&mut out),
            Err(e) => {
                self.drain(&mut out);
                self.fail(&e, &mut out);
            }
        }
        self.closed = true;
        out
    }

    /// The upstream connection failed mid-stream (reset, timeout).
    pub fn abort(&mut self, error: &GatewayError) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.closed {
            self.drain(&mut out);
            self.fail(error, &mut out);
        }
        out
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for mut event in self.events.drain(..) {
            if let StreamEvent::ToolCallStart { name, .. } = &mut event {
                tool_names::client_name(&self.tool_names, name);
            }
            if self.hide_reasoning && matches!(event, StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningEnd(_)) {
                continue;
            }
            if matches!(event, StreamEvent::Start { .. }) {
                self.started = true;
            }
            self.encoder.event(&event, out);
            if matches!(event, StreamEvent::Finish { .. }) {
                self.closed = true;
            }
        }
    }

    fn fail(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        self.encoder.error(error, out);
        self.closed = true;
        self.failure = Some(error.clone());
    }

    /// The error that ended the stream, if one did.
    pub fn failure(&self) -> Option<&GatewayError> {
        self.failure.as_ref()
    }
}

/// A whole upstream answer (2xx) in the caller's protocol: `Ok(json)` or the error to
/// render (an unparseable or unusable upstream body is a 502).
pub fn convert_body(c: &Conversion, body: &[u8]) -> Result<String, GatewayError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream answered with a body that is not valid JSON.")
    })?;
    if c.count {
        let n = match c.upstream {
            Protocol::Claude => protocols::claude::response::decode_count(&value),
            Protocol::Gemini => protocols::gemini::response::decode_count(&value),
            Protocol::OpenAiResponses => protocols::openai_responses::response::decode_count(&value),
            Protocol::OpenAiChat => None,
        }
        .ok_or_else(|| GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream's token count answer has no count."))?;
        return Ok(encode_count(c.client, n));
    }
    let mut response = protocols::decode_response(c.upstream, &value, c.meta.clone())?;
    if c.hide_reasoning {
        response.parts.retain(|p| !matches!(p, crate::ir::Part::Reasoning(_)));
    }
    for part in &mut response.parts {
        if let crate::ir::Part::ToolCall(call) = part {
            tool_names::client_name(&c.tool_names, &mut call.name);
        }
    }
    Ok(protocols::encode_response(c.client, &response, &c.options))
}

/// A token count in the caller's protocol.
pub fn encode_count(client: Protocol, n: u64) -> String {
    match client {
        Protocol::Claude => protocols::claude::response::encode_count(n),
        Protocol::Gemini => protocols::gemini::response::encode_count(n),
        _ => protocols::openai_responses::response::encode_count(n),
    }
}
