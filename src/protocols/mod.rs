//! The four client protocols. Each has a folder with the same inner layout:
//! - `request`: what the gateway reads from a client request of that protocol;
//! - `response`: an IR [`crate::ir::Response`] as that protocol's JSON body;
//! - `stream`: IR [`crate::ir::StreamEvent`]s as that protocol's SSE events;
//! - `error`: a [`crate::error::GatewayError`] in that protocol's error shape;
//! - `models`: the model list and single-model objects in that protocol's format.

pub mod claude;
pub mod gemini;
pub mod openai_chat;
pub mod openai_responses;

use crate::error::GatewayError;
use crate::ir::{Request, Response, ResponseMeta, StreamEvent};

/// A client-facing API protocol, which is also a provider type of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    OpenAiChat,
    OpenAiResponses,
    Claude,
    Gemini,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenAiChat => "openai-chat-completions",
            Protocol::OpenAiResponses => "openai-responses",
            Protocol::Claude => "claude",
            Protocol::Gemini => "gemini",
        }
    }
}

/// How a streamed answer is framed for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFraming {
    /// Server-sent events (every protocol's normal streaming form).
    Sse,
    /// Gemini's `streamGenerateContent` without `?alt=sse`: one JSON array, element by element.
    JsonArray,
}

/// Options of the client request that shape the encoded answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// Chat Completions: `stream_options.include_usage`.
    pub include_usage: bool,
    /// Responses: the client's freeform (`custom`) tools, whose calls go back as
    /// `custom_tool_call` items (other providers saw them as functions taking `input`).
    pub custom_tools: Vec<String>,
}

/// Turns IR stream events into one protocol's wire bytes, keeping the per-stream state
/// (indices, sequence numbers, accumulated text) that protocol's grammar needs.
pub trait StreamEncoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// A failure after the stream started: the protocol's error event, then a clean end.
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>);
}

/// Turns one upstream protocol's stream into IR events.
pub trait StreamDecoder {
    /// One upstream SSE event (for Gemini's JSON-array framing, one array element as
    /// `data`). Appends the IR events it completes; an `Err` is an upstream error event.
    fn event(&mut self, event: &crate::sse::Event, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError>;
    /// The upstream body ended. `Err` when it ended before the protocol's terminal event.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError>;
}

/// What an egress encoder needs to know about the upstream model.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The model name the upstream knows.
    pub model: &'a str,
    pub options: &'a crate::config::ModelOptions,
    pub quirks: crate::config::Quirks,
}

/// An end-user id as an upstream with a length limit takes it (OpenAI: 64 characters,
/// Anthropic: 256). Longer ids (Claude Code's `metadata.user_id` is ~150 characters) become
/// a stable digest of themselves, so the upstream still sees one id per user instead of
/// rejecting every request.
pub fn user_id_within(id: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if id.len() <= max {
        return std::borrow::Cow::Borrowed(id);
    }
    // 128 bits: plenty to keep distinct users apart.
    std::borrow::Cow::Owned(format!("user-{:016x}{:016x}", digest(id, 0), digest(id, 1)))
}

/// A stable 64-bit digest of `text` (FNV-1a; `seed` picks one of several independent
/// ones), for names and ids that must be shortened without colliding.
pub fn digest(text: &str, seed: u64) -> u64 {
    let offset = 0xcbf2_9ce4_8422_2325_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    text.bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Default `max_tokens` for upstreams that require one (Claude) when neither the caller
/// nor the config (`options.maxTokens`) gives one.
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

pub fn encode_response(protocol: Protocol, response: &Response, options: &EncodeOptions) -> String {
    match protocol {
        Protocol::OpenAiChat => openai_chat::response::encode(response),
        Protocol::OpenAiResponses => openai_responses::response::encode_for(response, &options.custom_tools),
        Protocol::Claude => claude::response::encode(response),
        Protocol::Gemini => gemini::response::encode(response),
    }
}

pub fn stream_encoder(
    protocol: Protocol,
    options: EncodeOptions,
    framing: StreamFraming,
) -> Box<dyn StreamEncoder> {
    match protocol {
        Protocol::OpenAiChat => Box::new(openai_chat::stream::Encoder::new(options)),
        Protocol::OpenAiResponses => Box::new(openai_responses::stream::Encoder::new(options.custom_tools)),
        Protocol::Claude => Box::new(claude::stream::Encoder::default()),
        Protocol::Gemini => Box::new(gemini::stream::Encoder::new(framing)),
    }
}

/// Ingress: a client request body of `protocol` as IR.
pub fn decode_request(protocol: Protocol, body: &serde_json::Value) -> Result<Request, GatewayError> {
    match protocol {
        Protocol::OpenAiChat => openai_chat::request::decode(body),
        Protocol::OpenAiResponses => openai_responses::request::decode(body),
        Protocol::Claude => claude::request::decode(body),
        Protocol::Gemini => gemini::request::decode(body),
    }
}

/// A same-protocol request without the reasoning the gateway packed for its caller from
/// other providers (see [`crate::carrier`]): that reasoning is foreign to this upstream,
/// which would reject it. `None` when there is none (the body goes as it is).
pub fn without_packed_reasoning(protocol: Protocol, body: &[u8]) -> Option<Vec<u8>> {
    if !crate::carrier::may_hold_packed(body) {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let changed = match protocol {
        Protocol::OpenAiChat => openai_chat::request::drop_packed_reasoning(&mut value),
        Protocol::OpenAiResponses => openai_responses::request::drop_packed_reasoning(&mut value),
        Protocol::Claude => claude::request::drop_packed_reasoning(&mut value),
        Protocol::Gemini => gemini::request::drop_packed_reasoning(&mut value),
    };
    changed.then(|| serde_json::to_vec(&value).ok()).flatten()
}

/// Egress: an IR request as an upstream body of `protocol`.
pub fn encode_request(protocol: Protocol, request: &Request, target: &Target) -> Result<serde_json::Value, GatewayError> {
    match protocol {
        Protocol::OpenAiChat => openai_chat::request::encode(request, target),
        Protocol::OpenAiResponses => openai_responses::request::encode(request, target),
        Protocol::Claude => claude::request::encode(request, target),
        Protocol::Gemini => gemini::request::encode(request, target),
    }
}

/// Egress: an upstream's whole answer as IR.
pub fn decode_response(protocol: Protocol, body: &serde_json::Value, meta: ResponseMeta) -> Result<Response, GatewayError> {
    match protocol {
        Protocol::OpenAiChat => openai_chat::response::decode(body, meta),
        Protocol::OpenAiResponses => openai_responses::response::decode(body, meta),
        Protocol::Claude => claude::response::decode(body, meta),
        Protocol::Gemini => gemini::response::decode(body, meta),
    }
}

pub fn stream_decoder(protocol: Protocol, meta: ResponseMeta) -> Box<dyn StreamDecoder> {
    match protocol {
        Protocol::OpenAiChat => Box::new(openai_chat::stream::Decoder::new(meta)),
        Protocol::OpenAiResponses => Box::new(openai_responses::stream::Decoder::new(meta)),
        Protocol::Claude => Box::new(claude::stream::Decoder::new(meta)),
        Protocol::Gemini => Box::new(gemini::stream::Decoder::new(meta)),
    }
}

/// The upstream error a passthrough stream's first event carries, if it is one: the
/// attempt then failed and may be retried before the caller sees a byte. Only error events
/// count; any answer reaches a same-protocol caller as the upstream sent it (a Gemini turn
/// that failed to form its tool call too: only converted, it is a failed attempt).
pub fn first_event_error(protocol: Protocol, event: &crate::sse::Event) -> Option<GatewayError> {
    let meta = ResponseMeta { id: String::new(), model: String::new(), created: 0 };
    let mut probe = match protocol {
        Protocol::Gemini => Box::new(gemini::stream::Decoder::new(meta).passing_failed_calls()),
        _ => stream_decoder(protocol, meta),
    };
    probe.event(event, &mut Vec::new()).err()
}

/// Runs a whole upstream SSE body, delivered in `pieces`, through `decoder`: the IR
/// events it produced and how the stream ended (an upstream error event, garbage, or a
/// missing terminal event is `Err`, with the events before it).
pub fn decode_sse(decoder: &mut dyn StreamDecoder, pieces: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), GatewayError>) {
    let mut sse = crate::sse::Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        for event in sse.feed(piece) {
            if let Err(e) = decoder.event(&event, &mut out) {
                return (out, Err(e));
            }
        }
    }
    if let (Some(event), _) = sse.finish() {
        if let Err(e) = decoder.event(&event, &mut out) {
            return (out, Err(e));
        }
    }
    let end = decoder.finish(&mut out);
    (out, end)
}

/// A tiny deterministic xorshift generator for the adapters' never-panic tests.
#[cfg(test)]
pub(crate) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Egress: an upstream's non-2xx answer as a gateway error (message kept, status mapped).
pub fn decode_error(protocol: Protocol, status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| match protocol {
        Protocol::OpenAiChat | Protocol::OpenAiResponses => openai_chat::error::message(v),
        Protocol::Claude => claude::error::message(v),
        Protocol::Gemini => gemini::error::message(v),
    });
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(500).collect();
        if text.is_empty() { format!("Upstream answered HTTP {status} with an empty body.") } else { text }
    });
    GatewayError::from_upstream(status, message)
}

/// Writes one SSE event: an optional `event:` line and a single-line `data:` payload.
pub(crate) fn write_sse(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    sse_head(out, event);
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Starts an SSE event up to its `data: ` (encoders that serialise the payload straight
/// into `out` then end it with `\n\n`).
pub(crate) fn sse_head(out: &mut Vec<u8>, event: Option<&str>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
}

/// What the gateway must know of a client request before deciding where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `provider.model` as the caller wrote it (from the body, or Gemini's URL).
    pub model: Option<String>,
    pub stream: bool,
    pub options: EncodeOptions,
}

/// Concatenated text of a content value that is either a string or a list of parts
/// carrying `text` (OpenAI, Anthropic and Gemini all fit this shape).
pub(crate) fn text_of(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

