//! Model objects in Gemini's format: `name: "models/<id>"` and the generation methods.

use serde_json::{json, Value};

use crate::models::ModelEntry;

pub fn object(m: &ModelEntry) -> Value {
    json!({
        "name": format!("models/{}", m.id),
        "baseModelId": m.id,
        "version": "1",
        "displayName": m.id,
        "description": format!("{} via provider {}", m.upstream_model, m.provider),
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

pub fn list(models: &[ModelEntry]) -> String {
    json!({"models": models.iter().map(object).collect::<Vec<_>>()}).to_string()
}
