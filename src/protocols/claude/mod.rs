//! Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`).

pub mod error;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod tests;
