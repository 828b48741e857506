//! Responses SSE. Every event has an `event:` line and a `data:` object with `type` and
//! a `sequence_number` counting from 0: `response.created`, `response.in_progress`, then
//! per output item `response.output_item.added` → its content events →
//! `response.output_item.done`, then `response.completed` (or `response.incomplete`,
//! or `error` + `response.failed`).
//!
//! Item content events: a message has `content_part.added`, `output_text.delta`…,
//! `output_text.done`, `content_part.done`; a reasoning item has
//! `reasoning_summary_part.added`, `reasoning_summary_text.delta`…,
//! `reasoning_summary_text.done`, `reasoning_summary_part.done` (only when it has text);
//! a function call has `function_call_arguments.delta`…, `function_call_arguments.done`;
//! a call of one of the client's freeform (`custom`) tools has one
//! `custom_tool_call_input.delta` and `custom_tool_call_input.done` once it is complete
//! (other providers wrote its input as a JSON string argument).

use serde_json::{json, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Reasoning, ResponseMeta, StopReason, StreamEvent, ToolCall, Usage};
use crate::protocols::{sse_head, write_sse, StreamDecoder, StreamEncoder};
use crate::sse;
use crate::wire;

use super::request::freeform_input;
use super::response::{
    call_item, custom_tool_call_item, function_call_id, function_call_item, message_id, message_item, object, output_text, reasoning_id,
    reasoning_item, reasoning_of, status_for, stop_of, upstream_error, usage_of,
};

// ---------------------------------------------------------------------------------------
// Ingress: IR events as Responses SSE.

/// The output item being streamed.
enum Open {
    None,
    Message { id: String, text: String },
    Reasoning { id: String, text: String, part_open: bool },
    Call { id: String, call: ToolCall },
}

pub struct Encoder {
    sequence: u64,
    meta: Option<ResponseMeta>,
    open: Open,
    /// Completed output items, for the terminal `response` object.
    done: Vec<Value>,
    n_msg: usize,
    n_rs: usize,
    n_fc: usize,
    /// A terminal event was written; later events are ignored.
    ended: bool,
    /// The client's freeform tools: their calls go out whole at their end, as
    /// `custom_tool_call` items with `custom_tool_call_input` events.
    custom_tools: Vec<String>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(Vec::new())
    }
}

impl Encoder {
    pub fn new(custom_tools: Vec<String>) -> Self {
        Encoder { sequence: 0, meta: None, open: Open::None, done: Vec::new(), n_msg: 0, n_rs: 0, n_fc: 0, ended: false, custom_tools }
    }

    /// Writes an event: `data`'s fields, then `type` and `sequence_number` (the order the
    /// previous encoder produced), serialised straight into `out`.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        let sequence = self.sequence;
        self.sequence += 1;
        sse_head(out, Some(kind));
        match &data {
            Value::Object(m) if !m.is_empty() && !m.contains_key("type") && !m.contains_key("sequence_number") => {
                let _ = serde_json::to_writer(&mut *out, &data);
                out.pop(); // its closing brace
                out.extend_from_slice(b",\"type\":");
                let _ = serde_json::to_writer(&mut *out, kind);
                out.extend_from_slice(format!(",\"sequence_number\":{sequence}}}").as_bytes());
            }
            _ => {
                data["type"] = json!(kind);
                data["sequence_number"] = json!(sequence);
                let _ = serde_json::to_writer(&mut *out, &data);
            }
        }
        out.extend_from_slice(b"\n\n");
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn item_added(&mut self, out: &mut Vec<u8>, item: Value) {
        let index = self.output_index();
        self.emit(out, "response.output_item.added", wire::object([("output_index", json!(index)), ("item", item)]));
    }

    fn item_done(&mut self, out: &mut Vec<u8>, item: Value) {
        let index = self.output_index();
        self.emit(out, "response.output_item.done", wire::object([("output_index", json!(index)), ("item", item.clone())]));
        self.done.push(item);
    }

    fn open_message(&mut self, out: &mut Vec<u8>, meta: &ResponseMeta) {
        let id = message_id(meta, self.n_msg);
        self.n_msg += 1;
        self.item_added(out, message_item(&id, None, "in_progress"));
        let index = self.output_index();
        self.emit(out, "response.content_part.added", json!({
            "item_id": id, "output_index": index, "content_index": 0, "part": output_text(""),
        }));
        self.open = Open::Message { id, text: String::new() };
    }

    fn open_reasoning(&mut self, out: &mut Vec<u8>, meta: &ResponseMeta) {
        let id = reasoning_id(meta, self.n_rs);
        self.n_rs += 1;
        self.item_added(out, json!({"type": "reasoning", "id": id, "summary": []}));
        self.open = Open::Reasoning { id, text: String::new(), part_open: false };
    }

    fn summary_part_added(&mut self, out: &mut Vec<u8>, id: &str) {
        let index = self.output_index();
        self.emit(out, "response.reasoning_summary_part.added", json!({
            "item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""},
        }));
    }

    fn summary_delta(&mut self, out: &mut Vec<u8>, id: &str, delta: &str) {
        let index = self.output_index();
        self.emit_delta(out, "response.reasoning_summary_text.delta", id, index, Some("summary_index"), delta, false);
    }

    /// A `*.delta` event (most of a stream), written without building a JSON value: the same
    /// bytes [`Encoder::emit`] writes for `{"item_id", "output_index", <slot>: 0, "delta"
    /// [, "logprobs": []]}`.
    #[allow(clippy::too_many_arguments)]
    fn emit_delta(&mut self, out: &mut Vec<u8>, kind: &str, id: &str, index: usize, slot: Option<&str>, delta: &str, logprobs: bool) {
        let sequence = self.sequence;
        self.sequence += 1;
        sse_head(out, Some(kind));
        out.extend_from_slice(b"{\"item_id\":");
        let _ = serde_json::to_writer(&mut *out, id);
        out.extend_from_slice(format!(",\"output_index\":{index},").as_bytes());
        if let Some(slot) = slot {
            out.extend_from_slice(format!("\"{slot}\":0,").as_bytes());
        }
        out.extend_from_slice(b"\"delta\":");
        let _ = serde_json::to_writer(&mut *out, delta);
        if logprobs {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        out.extend_from_slice(b",\"type\":");
        let _ = serde_json::to_writer(&mut *out, kind);
        out.extend_from_slice(format!(",\"sequence_number\":{sequence}}}\n\n").as_bytes());
    }

    /// Ends the open reasoning item with `r` (its payload), or with its text alone.
    fn close_reasoning(&mut self, out: &mut Vec<u8>, id: String, mut text: String, mut part_open: bool, r: Option<&Reasoning>) {
        let index = self.output_index();
        if !part_open && text.is_empty() {
            if let Some(r) = r.filter(|r| !r.text.is_empty()) {
                // The text came whole with the end of the block: stream it as one delta.
                self.summary_part_added(out, &id);
                self.summary_delta(out, &id, &r.text);
                text = r.text.clone();
                part_open = true;
            }
        }
        if part_open {
            self.emit(out, "response.reasoning_summary_text.done", json!({
                "item_id": id, "output_index": index, "summary_index": 0, "text": text,
            }));
            self.emit(out, "response.reasoning_summary_part.done", json!({
                "item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text},
            }));
        }
        let fallback;
        let r = match r {
            Some(r) => r,
            None => {
                fallback = Reasoning { text: text.clone(), ..Reasoning::default() };
                &fallback
            }
        };
        let item = reasoning_item(&id, r, &text);
        self.item_done(out, item);
    }

    /// Closes the open item, whatever it is.
    fn close(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message { id, text } => {
                let index = self.output_index();
                self.emit(out, "response.output_text.done", json!({
                    "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": [],
                }));
                self.emit(out, "response.content_part.done", json!({
                    "item_id": id, "output_index": index, "content_index": 0, "part": output_text(&text),
                }));
                self.item_done(out, message_item(&id, Some(&[text.as_str()]), "completed"));
            }
            Open::Reasoning { id, text, part_open } => self.close_reasoning(out, id, text, part_open, None),
            Open::Call { id, call } if self.custom_tools.contains(&call.name) => {
                let index = self.output_index();
                let input = freeform_input(&call.arguments);
                if !input.is_empty() {
                    self.emit(out, "response.custom_tool_call_input.delta", json!({"item_id": id, "output_index": index, "delta": input}));
                }
                self.emit(out, "response.custom_tool_call_input.done", json!({"item_id": id, "output_index": index, "input": input}));
                self.item_done(out, custom_tool_call_item(&id, &call, &input));
            }
            Open::Call { id, call } => {
                let index = self.output_index();
                self.emit(out, "response.function_call_arguments.done", json!({
                    "item_id": id, "output_index": index, "name": call.name, "arguments": call.arguments,
                }));
                self.item_done(out, function_call_item(&id, &call, "completed"));
            }
        }
    }

    fn terminal(&mut self, out: &mut Vec<u8>, stop: StopReason, usage: &Usage) {
        let Some(meta) = self.meta.clone() else { return };
        self.close(out);
        let status = status_for(stop);
        let response = object(&meta, status, self.done.clone(), Some(stop), Some(usage));
        let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.emit(out, kind, wire::object([("response", response)]));
        self.ended = true;
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if let StreamEvent::Start { meta, .. } = event {
            if self.meta.is_some() {
                return;
            }
            self.meta = Some(meta.clone());
            let response = object(meta, "in_progress", vec![], None, None);
            self.emit(out, "response.created", wire::object([("response", response.clone())]));
            self.emit(out, "response.in_progress", wire::object([("response", response)]));
            return;
        }
        let Some(meta) = self.meta.clone() else { return };
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta(delta) => {
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(out);
                    self.open_message(out, &meta);
                }
                if delta.is_empty() {
                    return;
                }
                let index = self.output_index();
                let Open::Message { id, text } = &mut self.open else { return };
                text.push_str(delta);
                let id = id.clone();
                self.emit_delta(out, "response.output_text.delta", &id, index, Some("content_index"), delta, true);
            }
            StreamEvent::ReasoningDelta(delta) => {
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(out);
                    self.open_reasoning(out, &meta);
                }
                if delta.is_empty() {
                    return;
                }
                let (id, first) = match &mut self.open {
                    Open::Reasoning { id, text, part_open } => {
                        text.push_str(delta);
                        let first = !*part_open;
                        *part_open = true;
                        (id.clone(), first)
                    }
                    _ => return,
                };
                if first {
                    self.summary_part_added(out, &id);
                }
                self.summary_delta(out, &id, delta);
            }
            StreamEvent::ReasoningEnd(r) => {
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(out);
                    self.open_reasoning(out, &meta);
                }
                if let Open::Reasoning { id, text, part_open } = std::mem::replace(&mut self.open, Open::None) {
                    self.close_reasoning(out, id, text, part_open, Some(r));
                }
            }
            StreamEvent::ToolCallStart { id, name } => {
                self.close(out);
                let item_id = function_call_id(&meta, self.n_fc);
                self.n_fc += 1;
                let call = ToolCall { id: id.clone(), name: name.clone(), arguments: String::new() };
                self.item_added(out, call_item(&item_id, &call, "in_progress", &self.custom_tools));
                self.open = Open::Call { id: item_id, call };
            }
            StreamEvent::ToolCallDelta(delta) => {
                if delta.is_empty() {
                    return;
                }
                let index = self.output_index();
                let Open::Call { id, call } = &mut self.open else { return };
                call.arguments.push_str(delta);
                // A freeform call's input is only known whole (it is a JSON string
                // inside the arguments): it goes out when the call ends.
                if self.custom_tools.contains(&call.name) {
                    return;
                }
                let id = id.clone();
                self.emit_delta(out, "response.function_call_arguments.delta", &id, index, None, delta, false);
            }
            StreamEvent::Finish { stop, usage } => self.terminal(out, *stop, usage),
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let data = super::error::event(error, self.sequence);
        self.sequence += 1;
        write_sse(out, Some("error"), &data);
        let Some(meta) = self.meta.clone() else { return };
        let mut response = object(&meta, "failed", self.done.clone(), None, None);
        response["error"] = super::error::response_error(error);
        self.emit(out, "response.failed", wire::object([("response", response)]));
    }
}

// ---------------------------------------------------------------------------------------
// Egress: a Responses upstream stream as IR events.

pub struct Decoder {
    meta: ResponseMeta,
    started: bool,
    finished: bool,
    /// The function call item streaming now (its item id), and whether any of its
    /// arguments were passed on.
    call: Option<String>,
    call_args_seen: bool,
    calls: usize,
    /// Text of the message item streaming now was passed on.
    text_seen: bool,
    /// The reasoning item being streamed: text passed on so far, and the last summary index.
    reasoning_text: String,
    summary_index: Option<u64>,
}

impl Decoder {
    pub fn new(meta: ResponseMeta) -> Self {
        Decoder {
            meta,
            started: false,
            finished: false,
            call: None,
            call_args_seen: false,
            calls: 0,
            text_seen: false,
            reasoning_text: String::new(),
            summary_index: None,
        }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>, input_tokens: u64) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { meta: self.meta.clone(), input_tokens });
        }
    }

    /// Whether an event's `item_id` names the call streaming now (a missing id does).
    fn is_current_call(&self, data: &Value) -> bool {
        match (&self.call, wire::str_of(data, "item_id")) {
            (None, _) => false,
            (Some(_), None) | (Some(_), Some("")) => true,
            (Some(current), Some(id)) => current.is_empty() || current == id,
        }
    }

    fn start_call(&mut self, item: &Value, out: &mut Vec<StreamEvent>) {
        let id = wire::string_of(item, "call_id")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| wire::synth_id("call_", &self.meta.id, self.calls));
        self.calls += 1;
        let name = wire::string_of(item, "name").unwrap_or_default();
        out.push(StreamEvent::ToolCallStart { id, name });
        self.call = Some(wire::string_of(item, "id").unwrap_or_default());
        self.call_args_seen = false;
        self.call_arguments(wire::str_of(item, "arguments"), out);
    }

    fn call_arguments(&mut self, args: Option<&str>, out: &mut Vec<StreamEvent>) {
        if let Some(a) = args.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallDelta(a.to_string()));
            self.call_args_seen = true;
        }
    }

    fn text(&mut self, text: Option<&str>, out: &mut Vec<StreamEvent>) {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::TextDelta(t.to_string()));
            self.text_seen = true;
        }
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<StreamEvent>) {
        if !delta.is_empty() {
            self.reasoning_text.push_str(delta);
            out.push(StreamEvent::ReasoningDelta(delta.to_string()));
        }
    }

    fn item_added(&mut self, item: &Value, out: &mut Vec<StreamEvent>) {
        match wire::str_of(item, "type") {
            Some("function_call") => self.start_call(item, out),
            Some("reasoning") => {
                self.reasoning_text.clear();
                self.summary_index = None;
            }
            Some("message") => self.text_seen = false,
            _ => {}
        }
    }

    fn item_done(&mut self, item: &Value, out: &mut Vec<StreamEvent>) {
        match wire::str_of(item, "type") {
            Some("reasoning") => {
                // Use this item's `encrypted_content`: the one in `output_item.added`
                // may be incomplete.
                let mut r = reasoning_of(item);
                if self.reasoning_text.is_empty() {
                    self.reasoning_delta(&r.text.clone(), out);
                }
                r.text = std::mem::take(&mut self.reasoning_text);
                self.summary_index = None;
                out.push(StreamEvent::ReasoningEnd(r));
            }
            Some("function_call") => {
                let id = wire::str_of(item, "id").unwrap_or("");
                let announced = match &self.call {
                    Some(current) => current.is_empty() || id.is_empty() || current == id,
                    None => false,
                };
                if !announced {
                    self.start_call(item, out);
                } else if !self.call_args_seen {
                    self.call_arguments(wire::str_of(item, "arguments"), out);
                }
                self.call = None;
            }
            Some("message") => {
                if !self.text_seen {
                    for c in wire::array_of(item, "content") {
                        let text = match wire::str_of(c, "type") {
                            Some("refusal") => wire::str_of(c, "refusal"),
                            _ => wire::str_of(c, "text"),
                        };
                        self.text(text, out);
                    }
                }
                self.text_seen = false;
            }
            _ => {}
        }
    }

    fn finish_with(&mut self, response: &Value, out: &mut Vec<StreamEvent>) {
        let output_calls = wire::array_of(response, "output")
            .iter()
            .any(|i| wire::str_of(i, "type") == Some("function_call"));
        let stop = stop_of(response, self.calls > 0 || output_calls);
        let usage = response.get("usage").map(usage_of).unwrap_or_default();
        out.push(StreamEvent::Finish { stop, usage });
        self.finished = true;
    }

    fn content(&mut self, kind: &str, data: &Value, out: &mut Vec<StreamEvent>) {
        let empty = Value::Null;
        match kind {
            "response.output_item.added" => self.item_added(data.get("item").unwrap_or(&empty), out),
            "response.output_item.done" => self.item_done(data.get("item").unwrap_or(&empty), out),
            "response.output_text.delta" | "response.refusal.delta" => self.text(wire::str_of(data, "delta"), out),
            "response.output_text.done" | "response.refusal.done" if !self.text_seen => {
                let text = wire::str_of(data, "text").or_else(|| wire::str_of(data, "refusal"));
                self.text(text, out);
            }
            // Arguments name their call by item id (`fc_…`), not call id (P-R7).
            "response.function_call_arguments.delta" if self.is_current_call(data) => {
                self.call_arguments(wire::str_of(data, "delta"), out);
            }
            "response.function_call_arguments.done" if self.is_current_call(data) && !self.call_args_seen => {
                self.call_arguments(wire::str_of(data, "arguments"), out);
            }
            "response.reasoning_summary_part.added" => {
                let index = wire::u64_of(data, "summary_index").unwrap_or(0);
                if self.summary_index.is_some_and(|prev| prev != index) && !self.reasoning_text.is_empty() {
                    self.reasoning_delta("\n\n", out);
                }
                self.summary_index = Some(index);
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(d) = wire::str_of(data, "delta") {
                    self.reasoning_delta(d, out);
                }
            }
            _ => {}
        }
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &sse::Event, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        let trimmed = event.data.trim();
        if trimmed.is_empty() || trimmed == "[DONE]" {
            return Ok(());
        }
        let Ok(data) = serde_json::from_str::<Value>(trimmed) else { return Ok(()) };
        let kind = wire::string_of(&data, "type").or_else(|| event.event.clone()).unwrap_or_default();
        let empty = Value::Null;
        let response = data.get("response").unwrap_or(&empty);
        match kind.as_str() {
            "error" => {
                // Documented flat (`code`, `message`), observed nested under `error` (P-R8).
                let nested = data.get("error").filter(|e| e.is_object());
                return Err(upstream_error(nested.unwrap_or(&data)));
            }
            "response.failed" => {
                let e = response.get("error").filter(|e| e.is_object()).cloned().unwrap_or_else(|| {
                    json!({"code": "server_error", "message": "The upstream reported the response as failed."})
                });
                return Err(upstream_error(&e));
            }
            "response.created" | "response.in_progress" | "response.queued" => {
                let input = response.get("usage").and_then(|u| wire::u64_of(u, "input_tokens")).unwrap_or(0);
                self.start(out, input);
            }
            "response.completed" | "response.incomplete" => {
                self.start(out, 0);
                self.finish_with(response, out);
            }
            _ => {
                self.start(out, 0);
                self.content(&kind, &data, out);
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.finished {
            Ok(())
        } else {
            Err(GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                "The upstream stream ended early, before its terminal event (response.completed).",
            ))
        }
    }
}
