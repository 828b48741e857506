//! Anthropic SSE, both ways: `message_start` (with input usage), `ping`, per-block
//! `content_block_start` / `content_block_delta` / `content_block_stop` with contiguous
//! indices, `message_delta` (stop reason, cumulative usage) and `message_stop`; an
//! `event: error` may come at any point. Every event carries an `event:` line, which the
//! Anthropic SDK requires.

use serde_json::{json, Value};

use crate::carrier;
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Reasoning, ResponseMeta, StopReason, StreamEvent, Usage};
use crate::protocols::{sse_head, write_sse, Protocol, StreamDecoder, StreamEncoder};
use crate::wire;

use super::response::{parse_stop_reason, read_usage, stop_reason, usage};

// ---------------------------------------------------------------------------------------
// Ingress: IR events as Anthropic SSE.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Open {
    #[default]
    None,
    Text,
    /// A thinking block; whether any thinking text went out in it.
    Thinking { sent_text: bool },
    Tool,
    /// A block sent whole (redacted thinking).
    Whole,
}

#[derive(Default)]
pub struct Encoder {
    open: Open,
    /// Blocks started so far (the open block's index is one less).
    blocks: u64,
    done: bool,
}

impl Encoder {
    fn write(out: &mut Vec<u8>, name: &str, data: Value) {
        sse_head(out, Some(name));
        let _ = serde_json::to_writer(&mut *out, &data);
        out.extend_from_slice(b"\n\n");
    }

    fn start_block(&mut self, out: &mut Vec<u8>, block: Value, open: Open) {
        self.close_block(out);
        Self::write(out, "content_block_start", wire::object([("type", json!("content_block_start")), ("index", json!(self.blocks)), ("content_block", block)]));
        self.blocks += 1;
        self.open = open;
    }

    /// A `content_block_delta` of the open block (most of a stream), serialising only `delta`.
    fn delta(&self, out: &mut Vec<u8>, delta: Value) {
        let index = self.blocks.saturating_sub(1);
        sse_head(out, Some("content_block_delta"));
        out.extend_from_slice(format!("{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":").as_bytes());
        let _ = serde_json::to_writer(&mut *out, &delta);
        out.extend_from_slice(b"}\n\n");
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        match self.open {
            Open::None => return,
            Open::Thinking { .. } => {
                // Reasoning that ended without its `ReasoningEnd` (no payload): still
                // marked, so that it is known as not Claude's when it comes back.
                if let Some(sig) = carrier::to_client(&Reasoning::default(), Protocol::Claude) {
                    self.delta(out, json!({"type": "signature_delta", "signature": sig}));
                }
            }
            Open::Text | Open::Tool | Open::Whole => {}
        }
        self.open = Open::None;
        let index = self.blocks.saturating_sub(1);
        Self::write(out, "content_block_stop", json!({"type": "content_block_stop", "index": index}));
    }

    fn thinking_block() -> Value {
        json!({"type": "thinking", "thinking": "", "signature": ""})
    }

    fn reasoning_end(&mut self, r: &Reasoning, out: &mut Vec<u8>) {
        if r.origin == Some(Protocol::Claude) {
            if let Some(data) = &r.redacted {
                self.start_block(out, json!({"type": "redacted_thinking", "data": data}), Open::Whole);
                self.close_block(out);
                return;
            }
        }
        let sent_text = match self.open {
            Open::Thinking { sent_text } => sent_text,
            _ => {
                self.start_block(out, Self::thinking_block(), Open::Thinking { sent_text: false });
                false
            }
        };
        if !sent_text && !r.text.is_empty() {
            self.delta(out, json!({"type": "thinking_delta", "thinking": r.text}));
        }
        if let Some(sig) = carrier::to_client(r, Protocol::Claude).filter(|s| !s.is_empty()) {
            self.delta(out, json!({"type": "signature_delta", "signature": sig}));
        }
        self.open = Open::None;
        let index = self.blocks.saturating_sub(1);
        Self::write(out, "content_block_stop", json!({"type": "content_block_stop", "index": index}));
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { meta, input_tokens } => {
                let start_usage = usage(&Usage { input_tokens: *input_tokens, output_tokens: 1, ..Usage::default() });
                let message = json!({
                    "id": format!("msg_{}", meta.id), "type": "message", "role": "assistant",
                    "model": meta.model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": start_usage,
                });
                Self::write(out, "message_start", json!({"type": "message_start", "message": message}));
                write_sse(out, Some("ping"), r#"{"type":"ping"}"#);
            }
            StreamEvent::TextDelta(text) => {
                if text.is_empty() {
                    return;
                }
                if self.open != Open::Text {
                    self.start_block(out, json!({"type": "text", "text": ""}), Open::Text);
                }
                self.delta(out, json!({"type": "text_delta", "text": text}));
            }
            StreamEvent::ReasoningDelta(text) => {
                if text.is_empty() {
                    return;
                }
                if !matches!(self.open, Open::Thinking { .. }) {
                    self.start_block(out, Self::thinking_block(), Open::Thinking { sent_text: false });
                }
                self.delta(out, json!({"type": "thinking_delta", "thinking": text}));
                self.open = Open::Thinking { sent_text: true };
            }
            StreamEvent::ReasoningEnd(r) => self.reasoning_end(r, out),
            StreamEvent::ToolCallStart { id, name } => {
                self.start_block(out, json!({"type": "tool_use", "id": id, "name": name, "input": {}}), Open::Tool);
            }
            StreamEvent::ToolCallDelta(args) => {
                if self.open == Open::Tool && !args.is_empty() {
                    self.delta(out, json!({"type": "input_json_delta", "partial_json": args}));
                }
            }
            StreamEvent::Finish { stop, usage: u } => {
                self.close_block(out);
                let delta = json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason(*stop), "stop_sequence": null},
                    "usage": usage(u),
                });
                Self::write(out, "message_delta", delta);
                write_sse(out, Some("message_stop"), r#"{"type":"message_stop"}"#);
                self.done = true;
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        write_sse(out, Some("error"), &super::error::render(error));
        self.done = true;
    }
}

// ---------------------------------------------------------------------------------------
// Egress: an Anthropic upstream's SSE as IR events.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
enum Block {
    #[default]
    None,
    Text,
    Thinking {
        text: String,
        signature: String,
    },
    /// A client tool call; the input given whole in `content_block_start`, if any, goes
    /// out at the stop unless `input_json_delta`s came.
    Tool {
        start_input: Option<String>,
        got_delta: bool,
    },
    /// Redacted thinking (already emitted) and server-tool blocks (not in the IR).
    Other,
}

pub struct Decoder {
    meta: ResponseMeta,
    started: bool,
    done: bool,
    block: Block,
    stop: Option<StopReason>,
    saw_tool: bool,
    calls: usize,
    /// Anthropic's uncached input count, kept apart from the IR total.
    input: u64,
    usage: Usage,
}

impl Decoder {
    pub fn new(meta: ResponseMeta) -> Self {
        Decoder {
            meta,
            started: false,
            done: false,
            block: Block::None,
            stop: None,
            saw_tool: false,
            calls: 0,
            input: 0,
            usage: Usage::default(),
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { meta: self.meta.clone(), input_tokens: self.usage.input_tokens });
        }
    }

    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        match std::mem::take(&mut self.block) {
            Block::Thinking { text, signature } => out.push(StreamEvent::ReasoningEnd(Reasoning {
                text,
                signature: (!signature.is_empty()).then_some(signature),
                origin: Some(Protocol::Claude),
                ..Reasoning::default()
            })),
            Block::Tool { start_input: Some(input), got_delta: false } => out.push(StreamEvent::ToolCallDelta(input)),
            _ => {}
        }
    }

    fn block_start(&mut self, block: &Value, out: &mut Vec<StreamEvent>) {
        self.close_block(out);
        match wire::str_of(block, "type") {
            Some("text") => {
                if let Some(t) = wire::str_of(block, "text").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_string()));
                }
                self.block = Block::Text;
            }
            Some("thinking") => {
                let text = wire::string_of(block, "thinking").unwrap_or_default();
                if !text.is_empty() {
                    out.push(StreamEvent::ReasoningDelta(text.clone()));
                }
                self.block = Block::Thinking { text, signature: wire::string_of(block, "signature").unwrap_or_default() };
            }
            Some("redacted_thinking") => {
                out.push(StreamEvent::ReasoningEnd(Reasoning {
                    redacted: wire::string_of(block, "data"),
                    origin: Some(Protocol::Claude),
                    ..Reasoning::default()
                }));
                self.block = Block::Other;
            }
            Some("tool_use") => {
                let id = wire::string_of(block, "id")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| wire::synth_id("call_", &self.meta.id, self.calls));
                self.calls += 1;
                self.saw_tool = true;
                out.push(StreamEvent::ToolCallStart { id, name: wire::string_of(block, "name").unwrap_or_default() });
                let start_input = match block.get("input") {
                    Some(Value::Object(m)) if !m.is_empty() => Some(Value::Object(m.clone()).to_string()),
                    _ => None,
                };
                self.block = Block::Tool { start_input, got_delta: false };
            }
            _ => self.block = Block::Other,
        }
    }

    fn block_delta(&mut self, delta: &Value, out: &mut Vec<StreamEvent>) {
        match wire::str_of(delta, "type") {
            Some("text_delta") => {
                if let Some(t) = wire::str_of(delta, "text").filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_string()));
                }
            }
            Some("thinking_delta") => {
                if let Some(t) = wire::str_of(delta, "thinking").filter(|t| !t.is_empty()) {
                    if let Block::Thinking { text, .. } = &mut self.block {
                        text.push_str(t);
                    }
                    out.push(StreamEvent::ReasoningDelta(t.to_string()));
                }
            }
            Some("signature_delta") => {
                if let (Block::Thinking { signature, .. }, Some(s)) = (&mut self.block, wire::str_of(delta, "signature")) {
                    signature.push_str(s);
                }
            }
            Some("input_json_delta") => {
                if let Block::Tool { got_delta, start_input } = &mut self.block {
                    if let Some(p) = wire::str_of(delta, "partial_json").filter(|p| !p.is_empty()) {
                        *got_delta = true;
                        *start_input = None;
                        out.push(StreamEvent::ToolCallDelta(p.to_string()));
                    }
                }
            }
            // citations_delta and anything newer: not in the IR.
            _ => {}
        }
    }
}

fn early_end() -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamUnreachable,
        "The upstream stream ended early, before its message_stop event; the answer is incomplete.",
    )
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &crate::sse::Event, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.done {
            return Ok(());
        }
        if event.data.trim().is_empty() {
            return Ok(());
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|_| {
            GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream sent a stream event that is not valid JSON.")
        })?;
        let kind = wire::str_of(&data, "type").or(event.event.as_deref()).unwrap_or("");
        match kind {
            "ping" => {}
            "error" => {
                self.done = true;
                return Err(super::error::decode(&data).unwrap_or_else(|| {
                    GatewayError::new(ErrorKind::Internal, "The upstream reported an error in its stream.")
                }));
            }
            "message_start" => {
                if let Some(u) = data.get("message").and_then(|m| m.get("usage")) {
                    read_usage(u, &mut self.input, &mut self.usage);
                }
                self.ensure_started(out);
            }
            "content_block_start" => {
                self.ensure_started(out);
                let block = data.get("content_block").cloned().unwrap_or(Value::Null);
                self.block_start(&block, out);
            }
            "content_block_delta" => {
                self.ensure_started(out);
                if let Some(delta) = data.get("delta") {
                    self.block_delta(delta, out);
                }
            }
            "content_block_stop" => self.close_block(out),
            "message_delta" => {
                if let Some(s) = data.get("delta").and_then(|d| wire::str_of(d, "stop_reason")) {
                    self.stop = parse_stop_reason(s).or(self.stop);
                }
                if let Some(u) = data.get("usage") {
                    read_usage(u, &mut self.input, &mut self.usage);
                }
            }
            "message_stop" => {
                self.ensure_started(out);
                self.close_block(out);
                let stop = self.stop.unwrap_or(if self.saw_tool { StopReason::ToolUse } else { StopReason::EndTurn });
                out.push(StreamEvent::Finish { stop, usage: self.usage });
                self.done = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.done {
            Ok(())
        } else {
            Err(early_end())
        }
    }
}
