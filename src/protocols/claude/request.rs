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
