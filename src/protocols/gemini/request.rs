//! What the gateway reads from a Gemini request. The model comes from the URL path.

use crate::error::GatewayError;
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{text_of, EncodeOptions, Envelope};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    if let Some(raw) = body.typed("contents", JsonKind::Array)? {
        let contents: Vec<serde_json::Value> = serde_json::from_str(raw.get()).unwrap_or_default();
        for (i, c) in contents.iter().enumerate() {
            if !c.is_object() || !c.get("parts").map(|p| p.is_array()).unwrap_or(false) {
                return Err(GatewayError::invalid(format!("Invalid value at 'contents[{i}]': each content needs a 'parts' array."))
                    .with_param(format!("contents[{i}].parts")));
            }
        }
    }
    body.typed("generationConfig", JsonKind::Object)?;
    body.typed("systemInstruction", JsonKind::Object)?;
    body.typed("tools", JsonKind::Array)?;
    Ok(Envelope { model: None, stream: false, options: EncodeOptions::default() })
}

/// Text of the last `user` (or role-less) content.
pub fn last_user_text(body: &JsonObject) -> String {
    let Some(raw) = body.get("contents") else { return String::new() };
    let contents: Vec<serde_json::Value> = serde_json::from_str(raw.get()).unwrap_or_default();
    contents
        .iter()
        .rev()
        .find(|c| matches!(c.get("role").and_then(|r| r.as_str()), None | Some("user")))
        .and_then(|c| c.get("parts").map(text_of))
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
