//! What the gateway reads from a Responses request.

use serde_json::Value;

use crate::error::GatewayError;
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{text_of, EncodeOptions, Envelope};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    if let Some(raw) = body.get("input") {
        let kind = JsonKind::of(raw);
        if !matches!(kind, JsonKind::String | JsonKind::Array | JsonKind::Null) {
            return Err(GatewayError::invalid(format!(
                "Invalid type for 'input': expected a string or an array, but got {}.",
                kind.name()
            ))
            .with_param("input"));
        }
    }
    body.typed("instructions", JsonKind::String)?;
    let stream = body.bool("stream")?;
    Ok(Envelope { model, stream, options: EncodeOptions::default() })
}

/// `input` when it is a string, else the text of its last `user` message item.
pub fn last_user_text(body: &JsonObject) -> String {
    let Some(raw) = body.get("input") else { return String::new() };
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(items)) => items
            .iter()
            .rev()
            .find(|i| i.get("role").and_then(|r| r.as_str()) == Some("user"))
            .and_then(|i| i.get("content").map(text_of))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Ingress: a client request as IR.
pub fn decode(_body: &serde_json::Value) -> Result<crate::ir::Request, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "conversion from this protocol is not implemented yet"))
}

/// Egress: IR as an upstream request body.
pub fn encode(_req: &crate::ir::Request, _target: &crate::protocols::Target) -> Result<serde_json::Value, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "conversion to this protocol is not implemented yet"))
}

/// Egress: the upstream's token-count request body.
pub fn encode_count(_req: &crate::ir::Request, _target: &crate::protocols::Target) -> Result<serde_json::Value, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
}
