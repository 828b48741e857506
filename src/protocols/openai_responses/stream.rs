//! IR stream events as Responses SSE: every event has an `event:` line and a `data:`
//! object with `type` and a `sequence_number` counting from 0:
//! `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`,
//! `response.content_part.done`, `response.output_item.done`, then `response.completed`
//! (or `response.incomplete` when the model was cut off).

use serde_json::{json, Value};

use crate::error::GatewayError;
use crate::ir::{ResponseMeta, StreamEvent};
use crate::protocols::{write_sse, StreamEncoder};

use super::response::{message_id, message_item, object, status_for};

#[derive(Default)]
pub struct Encoder {
    sequence: u64,
    meta: Option<ResponseMeta>,
    text: String,
    message_open: bool,
}

impl Encoder {
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        write_sse(out, Some(kind), &data.to_string());
    }

    fn open_message(&mut self, out: &mut Vec<u8>) {
        let Some(meta) = self.meta.clone() else { return };
        self.message_open = true;
        self.emit(out, "response.output_item.added", json!({"output_index": 0, "item": message_item(&meta, None)}));
        self.emit(out, "response.content_part.added", json!({
            "item_id": message_id(&meta), "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        }));
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningEnd(_) | StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta(_) => {}
            StreamEvent::Start { meta, .. } => {
                self.meta = Some(meta.clone());
                let response = object(meta, "in_progress", vec![], None, None);
                self.emit(out, "response.created", json!({"response": response}));
                let response = object(meta, "in_progress", vec![], None, None);
                self.emit(out, "response.in_progress", json!({"response": response}));
            }
            StreamEvent::TextDelta(delta) => {
                if !self.message_open {
                    self.open_message(out);
                }
                let Some(meta) = self.meta.clone() else { return };
                self.text.push_str(delta);
                self.emit(out, "response.output_text.delta", json!({
                    "item_id": message_id(&meta), "output_index": 0, "content_index": 0,
                    "delta": delta, "logprobs": [],
                }));
            }
            StreamEvent::Finish { stop, usage } => {
                let Some(meta) = self.meta.clone() else { return };
                if !self.message_open {
                    self.open_message(out);
                }
                let text = std::mem::take(&mut self.text);
                let id = message_id(&meta);
                self.emit(out, "response.output_text.done", json!({
                    "item_id": id, "output_index": 0, "content_index": 0, "text": text, "logprobs": [],
                }));
                self.emit(out, "response.content_part.done", json!({
                    "item_id": id, "output_index": 0, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []},
                }));
                let item = message_item(&meta, Some(&text));
                self.emit(out, "response.output_item.done", json!({"output_index": 0, "item": item.clone()}));
                let status = status_for(*stop);
                let response = object(&meta, status, vec![item], Some(*stop), Some(usage));
                let kind = if status == "completed" { "response.completed" } else { "response.incomplete" };
                self.emit(out, kind, json!({"response": response}));
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        let data = super::error::event(error, self.sequence);
        self.sequence += 1;
        write_sse(out, Some("error"), &data);
    }
}

/// Egress: an upstream stream as IR events.
pub struct Decoder {
    _meta: crate::ir::ResponseMeta,
}

impl Decoder {
    pub fn new(meta: crate::ir::ResponseMeta) -> Self {
        Decoder { _meta: meta }
    }
}

impl crate::protocols::StreamDecoder for Decoder {
    fn event(&mut self, _event: &crate::sse::Event, _out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
    }
    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
    }
}
