//! The gateway's canonical intermediate representation (IR): one typed model of a
//! request, a response and a response stream that all four protocols convert to and
//! from (hub and spoke: four ingress and four egress adapters, not sixteen converters).
//!
//! It keeps what peers lose: reasoning blocks with their signature, encrypted payload or
//! redacted data and the protocol that produced them; tool call ids; cache and reasoning
//! token counts. Fields are protocol-neutral; each adapter maps them to its protocol's
//! names and rules (for example Claude's input count excludes cache reads).

use serde_json::{Map, Value};

use crate::protocols::Protocol;

/// A generation request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// System and developer instructions, in order (Responses `instructions` first).
    pub system: Vec<Part>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<ReasoningRequest>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub response_format: Option<ResponseFormat>,
    /// An end-user id (Chat/Responses `user`, Claude `metadata.user_id`).
    pub user: Option<String>,
    /// OpenAI-style string metadata.
    pub metadata: Option<Map<String, Value>>,
    pub stream: bool,
    /// Chat Completions `stream_options.include_usage`.
    pub include_usage: bool,
    /// Responses server-side history; only a Responses upstream can honour it.
    pub previous_response_id: Option<String>,
    pub store: Option<bool>,
    /// The client asked for prompt caching (`cache_control` marks, or OpenAI's
    /// `prompt_cache_key`): a `claude` upstream then gets cache breakpoints unless the
    /// model's `promptCache` option says otherwise.
    pub prompt_cache: bool,
    /// Tools of the client's request that run inside its own provider (OpenAI's hosted
    /// `web_search`, Anthropic's server tools): another provider cannot run them, so a
    /// converted request leaves them out and the caller learns their names from the
    /// `x-gateway-dropped-tools` response header.
    pub dropped_tools: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Media),
    /// A document (PDF, plain text…), for protocols that take files.
    File { media: Media, filename: Option<String> },
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    Reasoning(Reasoning),
}

/// Where media bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    Url { url: String, media_type: Option<String> },
    Base64 { media_type: String, data: String },
    FileId(String),
}

impl Media {
    /// Parses a `data:<type>;base64,<data>` URL; anything else is a plain URL.
    pub fn from_url(url: &str) -> Media {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return Media::Base64 { media_type: media_type.to_string(), data: data.to_string() };
                }
            }
        }
        Media::Url { url: url.to_string(), media_type: None }
    }

    /// Chat Completions' `input_audio` format (`wav`, `mp3`) of inline audio, or `None`
    /// (not audio, or a format Chat does not take); the media type when it is audio at all.
    pub fn audio(&self) -> Option<(&str, Option<&'static str>)> {
        match self {
            Media::Base64 { media_type, .. } if media_type.starts_with("audio/") => {
                let format = match media_type.as_str() {
                    "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
                    "audio/mp3" | "audio/mpeg" => Some("mp3"),
                    _ => None,
                };
                Some((media_type, format))
            }
            _ => None,
        }
    }

    /// A URL for protocols that take media as one string (data URL for inline bytes).
    pub fn to_url(&self) -> String {
        match self {
            Media::Url { url, .. } => url.clone(),
            Media::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            Media::FileId(id) => id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text (an object), as Chat and Responses carry them.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// The function's name, when the client protocol carries it (Gemini needs it).
    pub name: Option<String>,
    /// Text and images.
    pub content: Vec<Part>,
    pub is_error: bool,
}

impl ToolResult {
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A reasoning (thinking) block and everything needed to hand it back to the provider
/// that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reasoning {
    /// Visible thinking text or summary (may be empty).
    pub text: String,
    /// Claude `signature`, Gemini `thoughtSignature`.
    pub signature: Option<String>,
    /// Responses `encrypted_content`.
    pub encrypted: Option<String>,
    /// Claude `redacted_thinking.data`.
    pub redacted: Option<String>,
    /// Responses reasoning item id.
    pub id: Option<String>,
    /// The protocol of the provider that produced it; only that provider can verify it.
    pub origin: Option<Protocol>,
}

impl Reasoning {
    /// Whether the block carries anything a provider needs back (beyond visible text).
    pub fn has_payload(&self) -> bool {
        self.signature.is_some() || self.encrypted.is_some() || self.redacted.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
    /// A subset of tools; `required` means one must be called.
    Allowed { names: Vec<String>, required: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
    Max,
}

impl Effort {
    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "disable" | "disabled" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::XHigh,
            "max" => Effort::Max,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh => "xhigh",
            Effort::Max => "max",
        }
    }

    /// A thinking budget for protocols that take tokens (a gateway policy; no vendor
    /// defines the bridge).
    pub fn budget(self) -> u64 {
        match self {
            Effort::None => 0,
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 16384,
            Effort::XHigh => 24576,
            Effort::Max => 32768,
        }
    }

    pub fn from_budget(tokens: u64) -> Effort {
        match tokens {
            0 => Effort::None,
            1..=1535 => Effort::Minimal,
            1536..=4095 => Effort::Low,
            4096..=12287 => Effort::Medium,
            12288..=20479 => Effort::High,
            20480..=28671 => Effort::XHigh,
            _ => Effort::Max,
        }
    }
}

/// What the caller asked of reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReasoningRequest {
    pub effort: Option<Effort>,
    /// An explicit token budget (Claude `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u64>,
    /// Whether reasoning text should be returned (Responses summary, Gemini includeThoughts,
    /// Claude display).
    pub include_thoughts: Option<bool>,
    /// Explicitly off (Claude `disabled`, effort `none`, budget 0).
    pub disabled: bool,
}

impl ReasoningRequest {
    pub fn effective_effort(&self) -> Option<Effort> {
        if self.disabled {
            return Some(Effort::None);
        }
        self.effort.or(self.budget_tokens.map(Effort::from_budget))
    }

    pub fn effective_budget(&self) -> Option<u64> {
        if self.disabled {
            return Some(0);
        }
        self.budget_tokens.or(self.effort.map(Effort::budget))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, schema: Value, strict: Option<bool>, description: Option<String> },
}

/// Token counts, normalised: `input_tokens` includes cached tokens, `output_tokens`
/// includes reasoning tokens (OpenAI's convention; encoders subtract where their
/// protocol counts differently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    ContentFilter,
}

/// Identity of one response, fixed before the first byte goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// A gateway-made id without protocol prefix; encoders add `chatcmpl-`, `msg_`, ….
    pub id: String,
    /// The model name the caller used (`provider.model`).
    pub model: String,
    /// Unix seconds.
    pub created: u64,
}

/// A complete (non-streamed) model answer. Parts are text, reasoning and tool calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub meta: ResponseMeta,
    pub parts: Vec<Part>,
    pub stop: StopReason,
    pub usage: Usage,
}

impl Response {
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.parts.iter().filter_map(|p| match p {
            Part::ToolCall(c) => Some(c),
            _ => None,
        })
    }

    pub fn reasoning(&self) -> impl Iterator<Item = &Reasoning> {
        self.parts.iter().filter_map(|p| match p {
            Part::Reasoning(r) => Some(r),
            _ => None,
        })
    }
}

/// One step of a streamed answer: `Start`, then content events, then `Finish`.
/// Content is a sequence of blocks (text, reasoning, tool call); a block ends when a
/// block of another kind (or another tool call) starts, or at `Finish`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Start { meta: ResponseMeta, input_tokens: u64 },
    TextDelta(String),
    /// Visible reasoning text.
    ReasoningDelta(String),
    /// The end of a reasoning block, with its signature or encrypted payload (its text
    /// arrived in `ReasoningDelta`s; `reasoning.text` repeats it whole).
    ReasoningEnd(Reasoning),
    ToolCallStart { id: String, name: String },
    /// Arguments JSON text of the tool call started last.
    ToolCallDelta(String),
    Finish { stop: StopReason, usage: Usage },
}

/// Builds a [`Response`] from stream events (for callers that want the whole answer
/// from a streamed upstream, and for tests).
#[derive(Debug, Default)]
pub struct Accumulator {
    pub meta: Option<ResponseMeta>,
    pub parts: Vec<Part>,
    pub finish: Option<(StopReason, Usage)>,
    reasoning_text: String,
}

impl Accumulator {
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { meta, .. } => self.meta = Some(meta.clone()),
            StreamEvent::TextDelta(t) => match self.parts.last_mut() {
                Some(Part::Text(s)) => s.push_str(t),
                _ => self.parts.push(Part::Text(t.clone())),
            },
            StreamEvent::ReasoningDelta(t) => self.reasoning_text.push_str(t),
            StreamEvent::ReasoningEnd(r) => {
                let mut r = r.clone();
                if r.text.is_empty() {
                    r.text = std::mem::take(&mut self.reasoning_text);
                }
                self.reasoning_text.clear();
                self.parts.push(Part::Reasoning(r));
            }
            StreamEvent::ToolCallStart { id, name } => {
                self.parts.push(Part::ToolCall(ToolCall { id: id.clone(), name: name.clone(), arguments: String::new() }))
            }
            StreamEvent::ToolCallDelta(d) => {
                if let Some(Part::ToolCall(c)) = self.parts.last_mut() {
                    c.arguments.push_str(d);
                }
            }
            StreamEvent::Finish { stop, usage } => {
                if !self.reasoning_text.is_empty() {
                    let text = std::mem::take(&mut self.reasoning_text);
                    self.parts.push(Part::Reasoning(Reasoning { text, ..Reasoning::default() }));
                }
                self.finish = Some((*stop, *usage));
            }
        }
    }

    pub fn into_response(self) -> Option<Response> {
        let (stop, usage) = self.finish?;
        Some(Response { meta: self.meta?, parts: self.parts, stop, usage })
    }
}
