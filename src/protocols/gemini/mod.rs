//! Google Gemini (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent`,
//! `:countTokens`).

pub mod error;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod tests;
