//! An LLM API gateway for Cloudflare Workers.
//!
//! The crate is split in two, as `shared/design.md` describes:
//! - a platform-free core (everything but [`edge`]) that decides what to do with a request
//!   and renders every answer; it compiles and is tested natively with `cargo test`;
//! - a thin edge ([`edge`], wasm32 only) that moves bytes between the Workers runtime
//!   (Request, Env, fetch, ReadableStream) and the core.

pub mod attempts;
pub mod auth;
pub mod carrier;
pub mod config;
pub mod convert;
pub mod echo;
pub mod error;
pub mod estimate;
pub mod gateway;
pub mod ir;
pub mod jsonc;
pub mod json_fields;
pub mod models;
pub mod policy;
pub mod protocols;
pub mod route;
pub mod routing;
pub mod sse;
pub mod tool_names;
pub mod upstream;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod edge;
