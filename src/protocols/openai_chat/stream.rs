//! IR stream events as `chat.completion.chunk` SSE: a role chunk first, content deltas,
//! a finish chunk, a usage chunk when `stream_options.include_usage` asked for it, then
//! `data: [DONE]`. Every chunk repeats the same id, created and model. Reasoning goes
//! out as `delta.reasoning_content` (the DeepSeek convention most Chat clients read);
//! tool calls as `delta.tool_calls` by index. The [`Decoder`] reads the same grammar
//! from an upstream.

use serde_json::{json, Value};

use crate::error::{ErrorKind, GatewayError};
use crate::ir::{Reasoning, ResponseMeta, StreamEvent, ToolCall, Usage};
use crate::protocols::{sse_head, write_sse, EncodeOptions, Protocol, StreamDecoder, StreamEncoder};
use crate::sse;
use crate::wire::{str_of, string_of};

use super::response::{call_id, finish_reason, stop_from, usage, usage_from};

pub struct Encoder {
    options: EncodeOptions,
    /// Every chunk's bytes up to its `choices` (stable id, created, model), written once.
    head: String,
    next_tool: usize,
    /// The last finished reasoning block, until we know whether a tool call follows it.
    reasoning: Option<Reasoning>,
    /// Whether the open reasoning block's text went out in deltas.
    reasoning_streamed: bool,
}

impl Encoder {
    pub fn new(options: EncodeOptions) -> Self {
        let mut encoder = Encoder { options, head: String::new(), next_tool: 0, reasoning: None, reasoning_streamed: false };
        encoder.set_meta(None);
        encoder
    }

    fn set_meta(&mut self, meta: Option<&ResponseMeta>) {
        let head = json!({
            "id": format!("chatcmpl-{}", meta.map(|m| m.id.as_str()).unwrap_or("")),
            "object": "chat.completion.chunk",
            "created": meta.map(|m| m.created).unwrap_or(0),
            "model": meta.map(|m| m.model.as_str()).unwrap_or(""),
        })
        .to_string();
        // `{…}` without its closing brace: each chunk appends `,"choices":…}`.
        self.head = head[..head.len() - 1].to_string();
    }

    /// Writes one chunk as an SSE event: the fixed head, then this chunk's choice. Text
    /// deltas are most of a stream; only their own bytes are serialised.
    fn chunk(&self, out: &mut Vec<u8>, delta: &Value, finish: Option<&str>) {
        sse_head(out, None);
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        let _ = serde_json::to_writer(&mut *out, delta);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        let _ = serde_json::to_writer(&mut *out, &finish);
        out.extend_from_slice(b"}]}\n\n");
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        let reasoning = self.reasoning.take();
        match event {
            StreamEvent::Start { meta, .. } => {
                self.set_meta(Some(meta));
                self.chunk(out, &json!({"role": "assistant", "content": ""}), None);
            }
            StreamEvent::TextDelta(text) => self.chunk(out, &json!({"content": text}), None),
            StreamEvent::ReasoningDelta(text) => {
                self.reasoning_streamed = true;
                self.chunk(out, &json!({"reasoning_content": text}), None)
            }
            StreamEvent::ReasoningEnd(r) => {
                // A block whose text came whole (no deltas) still shows.
                if !std::mem::take(&mut self.reasoning_streamed) && !r.text.is_empty() {
                    self.chunk(out, &json!({"reasoning_content": r.text}), None);
                }
                self.reasoning = Some(r.clone());
            }
            StreamEvent::ToolCallStart { id, name } => {
                let call = ToolCall { id: id.clone(), name: name.clone(), arguments: String::new() };
                let id = call_id(&call, reasoning.as_ref());
                let index = self.next_tool;
                self.next_tool += 1;
                let delta = json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
                self.chunk(out, &delta, None);
            }
            StreamEvent::ToolCallDelta(args) => {
                let index = self.next_tool.saturating_sub(1);
                let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": args}}]});
                self.chunk(out, &delta, None);
            }
            StreamEvent::Finish { stop, usage: u } => {
                self.chunk(out, &json!({}), Some(finish_reason(*stop)));
                if self.options.include_usage {
                    sse_head(out, None);
                    out.extend_from_slice(self.head.as_bytes());
                    out.extend_from_slice(b",\"choices\":[],\"usage\":");
                    let _ = serde_json::to_writer(&mut *out, &usage(u));
                    out.extend_from_slice(b"}\n\n");
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

/// Reads a Chat Completions upstream stream.
pub struct Decoder {
    meta: ResponseMeta,
    started: bool,
    reasoning: Option<String>,
    /// `reasoning_details` of the open reasoning, joined as they stream.
    details: Vec<Value>,
    /// Index, id and name of the tool call being streamed, as the upstream gave them.
    tool_index: Option<u64>,
    tool_id: Option<String>,
    tool_name: Option<String>,
    /// The open call's arguments so far.
    tool_args: String,
    /// Ids given to calls so far: a repeated upstream id gets a fresh one.
    used_ids: Vec<String>,
    tool_calls: usize,
    finish: Option<String>,
    usage: Usage,
    done: bool,
}

impl Decoder {
    pub fn new(meta: ResponseMeta) -> Self {
        Decoder { meta, started: false, reasoning: None, details: Vec::new(), tool_index: None, tool_id: None, tool_name: None, tool_args: String::new(), used_ids: Vec::new(), tool_calls: 0, finish: None, usage: Usage::default(), done: false }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { meta: self.meta.clone(), input_tokens: 0 });
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<StreamEvent>) {
        let encrypted = super::response::reasoning_details_payload(std::mem::take(&mut self.details));
        if self.reasoning.is_some() || encrypted.is_some() {
            let text = self.reasoning.take().unwrap_or_default();
            out.push(StreamEvent::ReasoningEnd(Reasoning { text, encrypted, origin: Some(Protocol::OpenAiChat), ..Default::default() }));
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.start(out);
        self.close_reasoning(out);
        self.done = true;
        let stop = stop_from(self.finish.as_deref(), self.tool_calls > 0);
        out.push(StreamEvent::Finish { stop, usage: self.usage });
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &sse::Event, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.end(out);
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| {
            GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream sent a stream event that is not valid JSON.")
        })?;
        if let Some(e) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = super::error::message(&chunk).unwrap_or_else(|| e.to_string());
            let kind = match str_of(e, "type").or_else(|| str_of(e, "code")) {
                Some(t) if t.contains("rate_limit") => ErrorKind::RateLimited,
                Some(t) if t.contains("overloaded") => ErrorKind::Overloaded,
                Some("invalid_request_error") => ErrorKind::InvalidRequest,
                _ => ErrorKind::Internal,
            };
            return Err(GatewayError::new(kind, message));
        }
        self.start(out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage_from(u);
        }
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else { return Ok(()) };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(r) = str_of(delta, "reasoning_content").or_else(|| str_of(delta, "reasoning")).filter(|r| !r.is_empty()) {
            self.reasoning.get_or_insert_with(String::new).push_str(r);
            out.push(StreamEvent::ReasoningDelta(r.to_string()));
        }
        if let Some(items) = delta.get("reasoning_details").and_then(Value::as_array) {
            super::response::merge_reasoning_details(&mut self.details, items);
        }
        if let Some(t) = str_of(delta, "content").filter(|t| !t.is_empty()) {
            self.close_reasoning(out);
            out.push(StreamEvent::TextDelta(t.to_string()));
        }
        if let Some(t) = str_of(delta, "refusal").filter(|t| !t.is_empty()) {
            self.close_reasoning(out);
            out.push(StreamEvent::TextDelta(t.to_string()));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                let function = call.get("function").unwrap_or(&Value::Null);
                let id = string_of(call, "id").filter(|id| !id.is_empty());
                let name = string_of(function, "name").filter(|n| !n.is_empty());
                let index = call.get("index").and_then(Value::as_u64);
                // OpenAI numbers calls and sends the id once. Some compatible servers number
                // every call 0, or not at all, or repeat the id on each chunk: another id,
                // or another name without an index, is another call.
                // Only once the open call's arguments are whole, should an id change mid-call.
                let other_id = id.is_some() && id != self.tool_id;
                let open_call_whole = || self.tool_args.trim().is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(&self.tool_args).is_ok();
                let new_call = match (index, self.tool_index) {
                    (_, None) => true,
                    (Some(i), Some(open)) => i != open || (other_id && open_call_whole()),
                    (None, Some(_)) => (other_id || (id.is_none() && name.is_some() && name != self.tool_name)) && open_call_whole(),
                };
                if new_call {
                    self.close_reasoning(out);
                    self.tool_index = Some(index.unwrap_or(self.tool_calls as u64));
                    self.tool_id = id.clone();
                    let id = id
                        .filter(|id| !self.used_ids.contains(id))
                        .unwrap_or_else(|| crate::wire::synth_id("call_", &self.meta.id, self.tool_calls));
                    self.used_ids.push(id.clone());
                    self.tool_name = name.clone();
                    self.tool_args.clear();
                    self.tool_calls += 1;
                    if let Some(signature) = super::response::call_thought_signature(call) {
                        out.push(StreamEvent::ReasoningEnd(Reasoning { signature: Some(signature), origin: Some(Protocol::OpenAiChat), ..Default::default() }));
                    }
                    out.push(StreamEvent::ToolCallStart { id, name: name.unwrap_or_default() });
                }
                let args = match function.get("arguments") {
                    Some(Value::String(args)) if !args.is_empty() => args.clone(),
                    // A whole call with its arguments as an object (some compatible servers).
                    Some(args @ Value::Object(_)) => args.to_string(),
                    _ => continue,
                };
                self.tool_args.push_str(&args);
                out.push(StreamEvent::ToolCallDelta(args));
            }
        }
        if let Some(reason) = str_of(choice, "finish_reason") {
            self.finish = Some(reason.to_string());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), GatewayError> {
        if self.done {
            return Ok(());
        }
        if self.finish.is_some() {
            // Some OpenAI-compatible servers end without `[DONE]` after the finish chunk.
            self.end(out);
            return Ok(());
        }
        Err(GatewayError::new(ErrorKind::UpstreamUnreachable, "The upstream stream ended before the response was complete."))
    }
}
