//! OpenAI Chat Completions (`POST /v1/chat/completions`).

pub mod error;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod tests;
