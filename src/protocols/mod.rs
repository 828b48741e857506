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
use crate::ir::{Response, StreamEvent};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// Chat Completions: `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Turns IR stream events into one protocol's wire bytes, keeping the per-stream state
/// (indices, sequence numbers, accumulated text) that protocol's grammar needs.
pub trait StreamEncoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// A failure after the stream started: the protocol's error event, then a clean end.
    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>);
}

pub fn encode_response(protocol: Protocol, response: &Response, options: EncodeOptions) -> String {
    let _ = options;
    match protocol {
        Protocol::OpenAiChat => openai_chat::response::encode(response),
        Protocol::OpenAiResponses => openai_responses::response::encode(response),
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
        Protocol::OpenAiResponses => Box::new(openai_responses::stream::Encoder::default()),
        Protocol::Claude => Box::new(claude::stream::Encoder::default()),
        Protocol::Gemini => Box::new(gemini::stream::Encoder::new(framing)),
    }
}

/// Writes one SSE event: an optional `event:` line and a single-line `data:` payload.
pub(crate) fn write_sse(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
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

/// The last element of the array field `key` whose `role` is one of `roles`.
pub(crate) fn last_with_role(
    body: &crate::json_fields::JsonObject,
    key: &str,
    roles: &[&str],
) -> Option<serde_json::Value> {
    let raw = body.get(key)?;
    let items: Vec<serde_json::Value> = serde_json::from_str(raw.get()).ok()?;
    items.into_iter().rev().find(|m| {
        m.get("role").and_then(|r| r.as_str()).map(|r| roles.contains(&r)).unwrap_or(false)
    })
}
