//! IR stream events as `chat.completion.chunk` SSE: a role chunk first, content deltas,
//! a finish chunk, a usage chunk when `stream_options.include_usage` asked for it, then
//! `data: [DONE]`. Every chunk repeats the same id, created and model.

use serde_json::json;

use crate::error::GatewayError;
use crate::ir::{ResponseMeta, StreamEvent};
use crate::protocols::{write_sse, EncodeOptions, StreamEncoder};

use super::response::{finish_reason, usage};

pub struct Encoder {
    options: EncodeOptions,
    meta: Option<ResponseMeta>,
}

impl Encoder {
    pub fn new(options: EncodeOptions) -> Self {
        Encoder { options, meta: None }
    }

    fn chunk(&self, choices: serde_json::Value, extra: Option<(&str, serde_json::Value)>) -> String {
        let meta = self.meta.as_ref();
        let mut chunk = json!({
            "id": format!("chatcmpl-{}", meta.map(|m| m.id.as_str()).unwrap_or("")),
            "object": "chat.completion.chunk",
            "created": meta.map(|m| m.created).unwrap_or(0),
            "model": meta.map(|m| m.model.as_str()).unwrap_or(""),
            "choices": choices,
        });
        if let Some((key, value)) = extra {
            chunk[key] = value;
        }
        chunk.to_string()
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningEnd(_) | StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta(_) => {}
            StreamEvent::Start { meta, .. } => {
                self.meta = Some(meta.clone());
                let choices = json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]);
                write_sse(out, None, &self.chunk(choices, None));
            }
            StreamEvent::TextDelta(text) => {
                let choices = json!([{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}]);
                write_sse(out, None, &self.chunk(choices, None));
            }
            StreamEvent::Finish { stop, usage: u } => {
                let choices = json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(*stop)}]);
                write_sse(out, None, &self.chunk(choices, None));
                if self.options.include_usage {
                    write_sse(out, None, &self.chunk(json!([]), Some(("usage", usage(u)))));
                }
                write_sse(out, None, "[DONE]");
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        write_sse(out, None, &super::error::render(error));
        write_sse(out, None, "[DONE]");
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
