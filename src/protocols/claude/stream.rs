//! IR stream events as Anthropic SSE: `message_start` (with input usage), `ping`,
//! per-block `content_block_start` / `content_block_delta` / `content_block_stop` with
//! their index, `message_delta` (stop reason, output usage) and `message_stop`. Every
//! event carries an `event:` line, which the Anthropic SDK requires.

use serde_json::json;

use crate::error::GatewayError;
use crate::ir::{StreamEvent, Usage};
use crate::protocols::{write_sse, StreamEncoder};

use super::response::{stop_reason, usage};

#[derive(Default)]
pub struct Encoder {
    block_open: bool,
    next_index: u64,
}

impl Encoder {
    fn close_block(&mut self, out: &mut Vec<u8>) {
        if self.block_open {
            self.block_open = false;
            let index = self.next_index;
            self.next_index += 1;
            write_sse(out, Some("content_block_stop"), &json!({"type": "content_block_stop", "index": index}).to_string());
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningEnd(_) | StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta(_) => {}
            StreamEvent::Start { meta, input_tokens } => {
                let start_usage = usage(&Usage { input_tokens: *input_tokens, output_tokens: 1, ..Usage::default() });
                let message = json!({
                    "id": format!("msg_{}", meta.id), "type": "message", "role": "assistant",
                    "model": meta.model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": start_usage,
                });
                write_sse(out, Some("message_start"), &json!({"type": "message_start", "message": message}).to_string());
                write_sse(out, Some("ping"), r#"{"type":"ping"}"#);
            }
            StreamEvent::TextDelta(text) => {
                if !self.block_open {
                    self.block_open = true;
                    let start = json!({"type": "content_block_start", "index": self.next_index, "content_block": {"type": "text", "text": ""}});
                    write_sse(out, Some("content_block_start"), &start.to_string());
                }
                let delta = json!({"type": "content_block_delta", "index": self.next_index, "delta": {"type": "text_delta", "text": text}});
                write_sse(out, Some("content_block_delta"), &delta.to_string());
            }
            StreamEvent::Finish { stop, usage: u } => {
                self.close_block(out);
                let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(*stop), "stop_sequence": null}, "usage": usage(u)});
                write_sse(out, Some("message_delta"), &delta.to_string());
                write_sse(out, Some("message_stop"), r#"{"type":"message_stop"}"#);
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        write_sse(out, Some("error"), &super::error::render(error));
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
