//! The gateway's canonical intermediate representation (IR) of model output.
//!
//! Every producer of an answer (the echo provider now; upstream decoders as conversion
//! lands) emits these types, and every client protocol has an encoder from them to its
//! own wire format (`protocols::*::response` for whole responses, `protocols::*::stream`
//! for SSE). Fields are protocol-neutral; each encoder maps them to its protocol's names
//! and semantics (for example Claude's input count excludes cache reads).

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
        self.input_tokens + self.output_tokens
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

/// One content part of model output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPart {
    Text(String),
}

/// A complete (non-streamed) model answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub meta: ResponseMeta,
    pub parts: Vec<OutputPart>,
    pub stop: StopReason,
    pub usage: Usage,
}

impl Response {
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                OutputPart::Text(t) => t.as_str(),
            })
            .collect()
    }
}

/// One step of a streamed answer, in order: `Start`, any number of deltas, `Finish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Start { meta: ResponseMeta, input_tokens: u64 },
    TextDelta(String),
    Finish { stop: StopReason, usage: Usage },
}
