//! Anthropic clients get the combined OpenAI/Anthropic model list (see `openai_chat::models`).

pub use crate::protocols::openai_chat::models::{list, object};
