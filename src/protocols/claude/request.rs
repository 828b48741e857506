//! What the gateway reads from a Messages (or count_tokens) request.

use crate::error::GatewayError;
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{last_with_role, text_of, EncodeOptions, Envelope};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    body.require("messages", JsonKind::Array)?;
    body.typed("max_tokens", JsonKind::Number)?;
    if let Some(system) = body.get("system") {
        if !matches!(JsonKind::of(system), JsonKind::String | JsonKind::Array | JsonKind::Null) {
            return Err(GatewayError::invalid(
                "Invalid type for 'system': expected a string or an array of text blocks.",
            )
            .with_param("system"));
        }
    }
    let stream = body.bool("stream")?;
    Ok(Envelope { model, stream, options: EncodeOptions::default() })
}

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

/// Egress: the upstream's token-count request body.
pub fn encode_count(_req: &crate::ir::Request, _target: &crate::protocols::Target) -> Result<serde_json::Value, GatewayError> {
    Err(GatewayError::new(crate::error::ErrorKind::NotImplemented, "not implemented yet"))
}
