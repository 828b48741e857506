//! Responses clients list models at the same OpenAI endpoints as Chat clients.

pub use crate::protocols::openai_chat::models::{list, object};
