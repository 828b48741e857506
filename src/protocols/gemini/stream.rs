//! Gemini streams both ways.
//!
//! Ingress ([`Encoder`]): IR stream events as Gemini stream chunks, each a whole
//! `GenerateContentResponse` with the new parts; the last one carries `finishReason` and
//! `usageMetadata`. Framed as SSE `data:` lines (`?alt=sse`) or, without it, as the
//! elements of one JSON array.
//!
//! Egress ([`Decoder`]): a Gemini upstream's `alt=sse` chunks as IR events. Gemini
//! sends function calls whole (one part), so each becomes a `ToolCallStart` and a
//! single `ToolCallDelta`.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Reasoning, ResponseMeta, StopReason, StreamEvent, Usage};
use crate::protocols::{sse_head, Protocol, StreamDecoder, StreamEncoder, StreamFraming};
use crate::wire;

use super::request::OWN_ID_PREFIX;
use super::response::{chunk, function_call_part, signature_part, stop_of, usage_of};

/// A function call whose arguments are still arriving.
struct OpenCall {
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

pub struct Encoder {
    framing: StreamFraming,
    meta: Option<ResponseMeta>,
    wrote_element: bool,
    closed: bool,
    /// A reasoning signature waiting for the next part (see `response::parts`).
    pending_signature: Option<String>,
    /// Gemini clients get function calls whole: arguments are buffered until the call ends.
    call: Option<OpenCall>,
    /// Whether the open reasoning block's text went out as deltas.
    reasoning_streamed: bool,
    /// Every chunk's `"modelVersion":…,"responseId":…}`, written once per stream.
    tail: String,
}

impl Encoder {
    pub fn new(framing: StreamFraming) -> Self {
        Encoder {
            framing,
            meta: None,
            wrote_element: false,
            closed: false,
            pending_signature: None,
            call: None,
            reasoning_streamed: false,
            tail: Self::tail_of(None),
        }
    }

    fn tail_of(meta: Option<&ResponseMeta>) -> String {
        let fields = json!({"modelVersion": meta.map_or("", |m| m.model.as_str()), "responseId": meta.map_or("", |m| m.id.as_str())});
        let text = fields.to_string();
        text[1..].to_string()
    }

    fn write(&mut self, out: &mut Vec<u8>, data: &[u8], last: bool) {
        match self.framing {
            StreamFraming::Sse => {
                sse_head(out, None);
                out.extend_from_slice(data);
                out.extend_from_slice(b"\n\n");
            }
            StreamFraming::JsonArray => {
                out.extend_from_slice(if self.wrote_element { b",\r\n" } else { b"[" });
                out.extend_from_slice(data);
                self.wrote_element = true;
                if last {
                    out.extend_from_slice(b"]");
                }
            }
        }
        if last {
            self.closed = true;
        }
    }

    fn meta(&self) -> ResponseMeta {
        self.meta.clone().unwrap_or(ResponseMeta { id: String::new(), model: String::new(), created: 0 })
    }

    /// A chunk of parts without finish or usage, which is most of a stream: written as
    /// `response::chunk` would be, serialising only the parts.
    fn emit(&mut self, out: &mut Vec<u8>, parts: Vec<Value>) {
        let mut data = Vec::with_capacity(128 + self.tail.len());
        data.extend_from_slice(b"{\"candidates\":[{\"content\":{\"parts\":");
        let _ = serde_json::to_writer(&mut data, &parts);
        data.extend_from_slice(b",\"role\":\"model\"},\"index\":0}],");
        data.extend_from_slice(self.tail.as_bytes());
        self.write(out, &data, false);
    }

    /// A signature still waiting when the next block's thought text starts belongs to
    /// the block before: it goes out first, on its own part, so that the client's history
    /// pairs each thought text with its own signature (see `response::parts`).
    fn flush_signature(&mut self, out: &mut Vec<u8>) {
        if let Some(sig) = self.pending_signature.take() {
            self.emit(out, vec![signature_part(&sig)]);
        }
    }

    fn take_call_part(&mut self) -> Option<Value> {
        let call = self.call.take()?;
        let mut part = function_call_part(&call.id, &call.name, &call.arguments);
        if let Some(sig) = call.signature {
            part["thoughtSignature"] = json!(sig);
        }
        Some(part)
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        // A call ends at the next event that is not one of its argument deltas.
        if !matches!(event, StreamEvent::ToolCallDelta(_) | StreamEvent::Finish { .. }) {
            if let Some(part) = self.take_call_part() {
                self.emit(out, vec![part]);
            }
        }
        match event {
            StreamEvent::Start { meta, .. } => {
                self.tail = Self::tail_of(Some(meta));
                self.meta = Some(meta.clone());
            }
            StreamEvent::TextDelta(text) => {
                self.reasoning_streamed = false;
                if text.is_empty() && self.pending_signature.is_none() {
                    return;
                }
                let mut part = json!({ "text": text });
                if let Some(sig) = self.pending_signature.take() {
                    part["thoughtSignature"] = json!(sig);
                }
                self.emit(out, vec![part]);
            }
            StreamEvent::ReasoningDelta(text) => {
                if !text.is_empty() {
                    self.reasoning_streamed = true;
                    self.flush_signature(out);
                    self.emit(out, vec![json!({"text": text, "thought": true})]);
                }
            }
            StreamEvent::ReasoningEnd(r) => {
                if !std::mem::take(&mut self.reasoning_streamed) && !r.text.is_empty() {
                    self.flush_signature(out);
                    self.emit(out, vec![json!({"text": r.text, "thought": true})]);
                }
                if let Some(sig) = carrier::to_client(r, Protocol::Gemini) {
                    if let Some(prev) = self.pending_signature.replace(sig) {
                        self.emit(out, vec![signature_part(&prev)]);
                    }
                }
            }
            StreamEvent::ToolCallStart { id, name } => {
                self.reasoning_streamed = false;
                self.call = Some(OpenCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: self.pending_signature.take(),
                });
            }
            StreamEvent::ToolCallDelta(delta) => {
                if let Some(call) = self.call.as_mut() {
                    call.arguments.push_str(delta);
                }
            }
            StreamEvent::Finish { stop, usage } => {
                let mut parts = Vec::new();
                parts.extend(self.take_call_part());
                if let Some(sig) = self.pending_signature.take() {
                    parts.push(signature_part(&sig));
                }
                if parts.is_empty() {
                    parts.push(json!({"text": ""}));
                }
                let data = chunk(&self.meta(), Value::Array(parts), Some(*stop), Some(usage)).to_string();
                self.write(out, data.as_bytes(), true);
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        let data = super::error::render(error);
        self.write(out, data.as_bytes(), true);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Text,
    Reasoning,
    Tool,
}

/// Egress: an upstream stream (or the chunks of a whole answer) as IR events.
pub struct Decoder {
    meta: ResponseMeta,
    started: bool,
    finished: bool,
    block: Block,
    /// Text of the open reasoning block (`ReasoningEnd` repeats it whole).
    reasoning_text: String,
    calls: usize,
    /// Whether answer text (not thoughts) went by.
    answered: bool,
    /// Whether a turn that failed to form its tool call is an error (converting) or just
    /// an ended answer (a passthrough probe).
    failed_calls_are_errors: bool,
    usage: Usage,
}

/// Finish reasons of a turn that failed to form its tool call. With nothing answered
/// before them they are a failed attempt (retried like a broken stream, as Gemini CLI
/// retries them), not an empty answer that would silently end a client's agent turn.
const FAILED_CALL_REASONS: [&str; 3] = ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"];

impl Decoder {
    pub fn new(meta: ResponseMeta) -> Self {
        Decoder {
            meta,
            started: false,
            finished: false,
            block: Block::None,
            reasoning_text: String::new(),
            calls: 0,
            answered: false,
            failed_calls_are_errors: true,
            usage: Usage::default(),
        }
    }

    /// A decoder that reads a turn which failed to form its tool call as an ended answer.
    pub fn passing_failed_calls(mut self) -> Self {
        self.failed_calls_are_errors = false;
        self
    }

    /// One `GenerateContentResponse` chunk.
    pub(crate) fn chunk(&mut self, v: &Value, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        if let Some(e) = super::error::from_body(v) {
            return Err(e);
        }
        if !v.is_object() {
            return Err(GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream sent a stream chunk that is not a JSON object."));
        }
        // Code Assist wraps each chunk in {"response": …}.
        let v = match v.get("response") {
            Some(inner @ Value::Object(_)) if v.get("candidates").is_none() => inner,
            _ => v,
        };
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = usage_of(u);
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { meta: self.meta.clone(), input_tokens: self.usage.input_tokens });
        }
        let candidate = wire::array_of(v, "candidates")
            .iter()
            .find(|c| wire::u64_of(c, "index").unwrap_or(0) == 0);
        match candidate {
            Some(c) => {
                let parts = c.get("content").map(|content| wire::array_of(content, "parts")).unwrap_or(&[]);
                for p in parts {
                    self.part(p, out);
                }
                if let Some(reason) = wire::str_of(c, "finishReason").filter(|r| !r.is_empty() && *r != "FINISH_REASON_UNSPECIFIED") {
                    if self.failed_calls_are_errors && FAILED_CALL_REASONS.contains(&reason) && !self.answered && self.calls == 0 {
                        let detail: String = wire::str_of(c, "finishMessage").unwrap_or("").chars().take(300).collect();
                        let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
                        return Err(GatewayError::new(
                            ErrorKind::UpstreamUnreachable,
                            format!("Gemini ended the answer with {reason}, having failed to form a tool call{detail}"),
                        ));
                    }
                    let stop = stop_of(reason, self.calls > 0);
                    self.finish_with(stop, out);
                }
            }
            None => {
                let blocked = v.get("promptFeedback").and_then(|f| wire::str_of(f, "blockReason")).is_some();
                if blocked {
                    self.finish_with(StopReason::ContentFilter, out);
                }
            }
        }
        Ok(())
    }

    fn end_reasoning(&mut self, signature: Option<&str>, out: &mut Vec<StreamEvent>) {
        if self.block == Block::Reasoning || signature.is_some() {
            let text = if self.block == Block::Reasoning { std::mem::take(&mut self.reasoning_text) } else { String::new() };
            out.push(StreamEvent::ReasoningEnd(Reasoning {
                text,
                signature: signature.map(String::from),
                origin: Some(Protocol::Gemini),
                ..Reasoning::default()
            }));
            self.block = Block::None;
        }
    }

    fn part(&mut self, p: &Value, out: &mut Vec<StreamEvent>) {
        let sig = wire::str_of(p, "thoughtSignature").filter(|s| !s.is_empty());
        let thought = wire::bool_of(p, "thought").unwrap_or(false);
        if let Some(fc) = p.get("functionCall").filter(|f| f.is_object()) {
            // A signature on a call belongs to the thinking that led to it.
            self.end_reasoning(sig, out);
            let name = wire::str_of(fc, "name").unwrap_or_default().to_string();
            let id = match wire::str_of(fc, "id").filter(|s| !s.is_empty()) {
                Some(id) => format!("{OWN_ID_PREFIX}{id}"),
                None => wire::synth_id("call_", &self.meta.id, self.calls),
            };
            self.calls += 1;
            out.push(StreamEvent::ToolCallStart { id, name });
            out.push(StreamEvent::ToolCallDelta(wire::json_text(fc.get("args"))));
            self.block = Block::Tool;
        } else if let Some(text) = wire::str_of(p, "text") {
            if thought {
                if self.block != Block::Reasoning {
                    self.block = Block::Reasoning;
                    self.reasoning_text.clear();
                }
                if !text.is_empty() {
                    self.reasoning_text.push_str(text);
                    out.push(StreamEvent::ReasoningDelta(text.to_string()));
                }
                if sig.is_some() {
                    self.end_reasoning(sig, out);
                }
            } else {
                self.end_reasoning(None, out);
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta(text.to_string()));
                    self.block = Block::Text;
                    self.answered = true;
                }
                // A signature on an answer part comes after its text in the IR; egress
                // puts it back on that part.
                if sig.is_some() {
                    self.end_reasoning(sig, out);
                }
            }
        } else if sig.is_some() {
            // A part the IR cannot hold (inline data, code) still hands its signature on.
            self.end_reasoning(None, out);
            self.end_reasoning(sig, out);
        }
    }

    fn finish_with(&mut self, stop: StopReason, out: &mut Vec<StreamEvent>) {
        self.end_reasoning(None, out);
        out.push(StreamEvent::Finish { stop, usage: self.usage });
        self.finished = true;
    }

    /// Ends a whole (non-streamed) answer, which may lack a finish reason.
    pub(crate) fn finish_lenient(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { meta: self.meta.clone(), input_tokens: self.usage.input_tokens });
        }
        if !self.finished {
            let stop = if self.calls > 0 { StopReason::ToolUse } else { StopReason::EndTurn };
            self.finish_with(stop, out);
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &crate::sse::Event, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" || self.finished {
            return Ok(());
        }
        let value: Value = serde_json::from_str(data).map_err(|_| {
            GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream sent a stream chunk that is not valid JSON.")
        })?;
        match &value {
            Value::Array(items) => {
                for item in items {
                    self.chunk(item, out)?;
                }
                Ok(())
            }
            _ => self.chunk(&value, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        let _ = out;
        if self.finished {
            return Ok(());
        }
        Err(GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            "The upstream stream ended early: Gemini closed it before sending a finishReason.",
        ))
    }
}
