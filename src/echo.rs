//! The built-in `echo` provider: answers locally, in the caller's protocol, streamed or
//! not, with a reply built from the caller's last user text and token counts estimated
//! from the request. It needs no upstream and no key, so a fresh gateway serves every
//! SDK immediately, and it measures the gateway's own overhead.

use crate::ir::{Part, Response, ResponseMeta, StopReason, StreamEvent, Usage};
use crate::json_fields::JsonObject;
use crate::protocols::{self, Envelope, Protocol, StreamFraming};

/// The reply text for `last_user_text`.
pub fn reply_text(last_user_text: &str) -> String {
    let text = last_user_text.trim();
    if text.is_empty() {
        "Echo: (no user text)".to_string()
    } else {
        format!("Echo: {text}")
    }
}

/// A rough token count (about four characters a token), never zero for non-empty text.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated input tokens: every string value of the body but the model name, plus a
/// few tokens of framing per message.
pub fn estimate_input_tokens(body: &JsonObject) -> u64 {
    fn walk(v: &serde_json::Value, chars: &mut u64, objects: &mut u64) {
        match v {
            serde_json::Value::String(s) => *chars += s.chars().count() as u64,
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, chars, objects)),
            serde_json::Value::Object(map) => {
                *objects += 1;
                map.values().for_each(|i| walk(i, chars, objects));
            }
            _ => {}
        }
    }
    let (mut chars, mut objects) = (0u64, 0u64);
    for key in ["messages", "input", "instructions", "system", "contents", "systemInstruction", "tools"] {
        if let Some(raw) = body.get(key) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                walk(&v, &mut chars, &mut objects);
            }
        }
    }
    chars.div_ceil(4) + objects + 3
}

pub fn last_user_text(protocol: Protocol, body: &JsonObject) -> String {
    match protocol {
        Protocol::OpenAiChat => protocols::openai_chat::request::last_user_text(body),
        Protocol::OpenAiResponses => protocols::openai_responses::request::last_user_text(body),
        Protocol::Claude => protocols::claude::request::last_user_text(body),
        Protocol::Gemini => protocols::gemini::request::last_user_text(body),
    }
}

/// The complete echo answer.
pub fn response(protocol: Protocol, body: &JsonObject, meta: ResponseMeta) -> Response {
    let text = reply_text(&last_user_text(protocol, body));
    let usage = Usage {
        input_tokens: estimate_input_tokens(body),
        output_tokens: estimate_tokens(&text),
        ..Usage::default()
    };
    Response { meta, parts: vec![Part::Text(text)], stop: StopReason::EndTurn, usage }
}

/// The echo answer as stream events: one text delta per word.
pub fn events(response: &Response) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start { meta: response.meta.clone(), input_tokens: response.usage.input_tokens }];
    let text = response.text();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && i > start {
            events.push(StreamEvent::TextDelta(text[start..i].to_string()));
            start = i;
        }
    }
    if start < text.len() {
        events.push(StreamEvent::TextDelta(text[start..].to_string()));
    }
    events.push(StreamEvent::Finish { stop: response.stop, usage: response.usage });
    events
}

/// Encodes the echo answer for the caller: one whole body, or one chunk per event.
pub fn encode(protocol: Protocol, envelope: &Envelope, framing: StreamFraming, response: &Response) -> Vec<Vec<u8>> {
    if !envelope.stream {
        return vec![protocols::encode_response(protocol, response, envelope.options).into_bytes()];
    }
    let mut encoder = protocols::stream_encoder(protocol, envelope.options, framing);
    events(response)
        .iter()
        .map(|event| {
            let mut out = Vec::new();
            encoder.event(event, &mut out);
            out
        })
        .filter(|chunk| !chunk.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ResponseMeta {
        ResponseMeta { id: "abc".into(), model: "echo.m".into(), created: 1 }
    }

    #[test]
    fn replies_from_the_last_user_text() {
        let body = br#"{"model":"echo.m","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"hello there"}]}]}"#;
        let obj = JsonObject::parse(body).unwrap();
        for p in [Protocol::OpenAiChat, Protocol::Claude] {
            let r = response(p, &obj, meta());
            assert_eq!(r.text(), "Echo: hello there");
            assert!(r.usage.input_tokens > 3);
            assert_eq!(r.usage.output_tokens, 5);
        }
        let gem = JsonObject::parse(br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#).unwrap();
        assert_eq!(response(Protocol::Gemini, &gem, meta()).text(), "Echo: hi");
        let resp = JsonObject::parse(br#"{"model":"m","input":"yo"}"#).unwrap();
        assert_eq!(response(Protocol::OpenAiResponses, &resp, meta()).text(), "Echo: yo");
    }

    #[test]
    fn stream_deltas_join_to_the_text() {
        let obj = JsonObject::parse(br#"{"input":"a b  c"}"#).unwrap();
        let r = response(Protocol::OpenAiResponses, &obj, meta());
        let joined: String = events(&r)
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(joined, r.text());
    }
}
