//! OpenAI Responses (`POST /v1/responses`).

pub mod error;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod tests;
