//! IR stream events as Gemini stream chunks: each chunk a whole `GenerateContentResponse`
//! with new parts; the last one carries `finishReason` and `usageMetadata`. Framed as
//! SSE `data:` lines (`?alt=sse`) or, without it, as the elements of one JSON array.

use serde_json::json;

use crate::error::GatewayError;
use crate::ir::{ResponseMeta, StreamEvent};
use crate::protocols::{write_sse, StreamEncoder, StreamFraming};

use super::response::chunk;

pub struct Encoder {
    framing: StreamFraming,
    meta: Option<ResponseMeta>,
    wrote_element: bool,
}

impl Encoder {
    pub fn new(framing: StreamFraming) -> Self {
        Encoder { framing, meta: None, wrote_element: false }
    }

    fn write(&mut self, out: &mut Vec<u8>, data: &str, last: bool) {
        match self.framing {
            StreamFraming::Sse => write_sse(out, None, data),
            StreamFraming::JsonArray => {
                out.extend_from_slice(if self.wrote_element { b",\r\n" } else { b"[" });
                out.extend_from_slice(data.as_bytes());
                self.wrote_element = true;
                if last {
                    out.extend_from_slice(b"]");
                }
            }
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningEnd(_) | StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta(_) => {}
            StreamEvent::Start { meta, .. } => self.meta = Some(meta.clone()),
            StreamEvent::TextDelta(text) => {
                let Some(meta) = self.meta.as_ref() else { return };
                let data = chunk(meta, json!([{"text": text}]), None, None).to_string();
                self.write(out, &data, false);
            }
            StreamEvent::Finish { stop, usage } => {
                let Some(meta) = self.meta.as_ref() else { return };
                let data = chunk(meta, json!([{"text": ""}]), Some(*stop), Some(usage)).to_string();
                self.write(out, &data, true);
            }
        }
    }

    fn error(&mut self, error: &GatewayError, out: &mut Vec<u8>) {
        let data = super::error::render(error);
        self.write(out, &data, true);
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
