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
