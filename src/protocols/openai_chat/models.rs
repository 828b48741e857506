//! Model objects in the OpenAI list format, which the Anthropic SDK parses too.
//!
//! One object carries both vocabularies: OpenAI's `id/object/created/owned_by` and
//! Anthropic's `type/id/display_name/created_at`, and the list has both `object: "list"`
//! and Anthropic's `has_more/first_id/last_id`. So `/v1/models` answers Codex, the
//! OpenAI SDKs and Claude Code (which also lists models on a gateway) alike.

use serde_json::{json, Value};

use crate::models::ModelEntry;

pub fn object(m: &ModelEntry) -> Value {
    json!({
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": m.provider,
        "type": "model",
        "display_name": m.id,
        "created_at": "1970-01-01T00:00:00Z",
    })
}

pub fn list(models: &[ModelEntry]) -> String {
    json!({
        "object": "list",
        "data": models.iter().map(object).collect::<Vec<_>>(),
        "has_more": false,
        "first_id": models.first().map(|m| m.id.as_str()),
        "last_id": models.last().map(|m| m.id.as_str()),
    })
    .to_string()
}
