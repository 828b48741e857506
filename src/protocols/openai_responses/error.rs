//! Errors: the same `{"error":{...}}` body as Chat Completions. In a stream, an `error`
//! event carrying both the documented flat fields (`type`, `code`, `message`, `param`,
//! `sequence_number`) and the nested `error` object that production sends and the
//! official SDK raises on (protocols.md §2.3), followed by `response.failed`.

use serde_json::{json, Value};

use crate::error::GatewayError;

pub use crate::protocols::openai_chat::error::render;

/// The code an error is known by in Responses (`code`, else the OpenAI error type).
fn code(object: &Value) -> String {
    object["code"].as_str().or(object["type"].as_str()).unwrap_or("server_error").to_string()
}

/// The payload of a stream `error` event.
pub fn event(e: &GatewayError, sequence_number: u64) -> String {
    let object = crate::protocols::openai_chat::error::object(e);
    let code = code(&object);
    json!({
        "type": "error",
        "code": code,
        "message": object["message"],
        "param": e.param,
        "sequence_number": sequence_number,
        "error": {
            "type": object["type"],
            "code": code,
            "message": object["message"],
            "param": e.param,
        },
    })
    .to_string()
}

/// `response.error` of a failed response: `{code, message}`.
pub fn response_error(e: &GatewayError) -> Value {
    let object = crate::protocols::openai_chat::error::object(e);
    json!({"code": code(&object), "message": object["message"]})
}
