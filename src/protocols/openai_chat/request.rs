//! What the gateway reads from a Chat Completions request.

use crate::error::GatewayError;
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{last_with_role, text_of, EncodeOptions, Envelope};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    body.require("messages", JsonKind::Array)?;
    let stream = body.bool("stream")?;
    let include_usage = match body.typed("stream_options", JsonKind::Object)? {
        Some(raw) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .and_then(|v| v.get("include_usage").and_then(|u| u.as_bool()))
            .unwrap_or(false),
        None => false,
    };
    Ok(Envelope { model, stream, options: EncodeOptions { include_usage } })
}

/// Text of the last `user` message.
pub fn last_user_text(body: &JsonObject) -> String {
    last_with_role(body, "messages", &["user"])
        .and_then(|m| m.get("content").map(text_of))
        .unwrap_or_default()
}

/// Ingress: a client request as IR.
pub fn decode(_body: &serde_json::Value) -> Result<crate::ir::Request, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "conversion from this protocol is not implemented yet"))
}

/// Egress: IR as an upstream request body.
pub fn encode(_req: &crate::ir::Request, _target: &crate::protocols::Target) -> Result<serde_json::Value, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "conversion to this protocol is not implemented yet"))
}
