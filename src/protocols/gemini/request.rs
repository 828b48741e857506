//! What the gateway reads from a Gemini request. The model comes from the URL path.

use crate::error::GatewayError;
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{text_of, EncodeOptions, Envelope};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    body.typed("contents", JsonKind::Array)?;
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
