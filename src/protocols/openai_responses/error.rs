//! Errors: the same `{"error":{...}}` body as Chat Completions; in a stream, an `error`
//! event whose payload carries `type`, `code`, `message`, `param` and `sequence_number`.

use serde_json::json;

use crate::error::GatewayError;

pub use crate::protocols::openai_chat::error::render;

pub fn event(e: &GatewayError, sequence_number: u64) -> String {
    let object = crate::protocols::openai_chat::error::object(e);
    json!({
        "type": "error",
        "code": object["code"].as_str().unwrap_or(object["type"].as_str().unwrap_or("server_error")),
        "message": e.message,
        "param": e.param,
        "sequence_number": sequence_number,
    })
    .to_string()
}
