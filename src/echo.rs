//! The built-in `echo` provider: answers locally, in the caller's protocol, streamed or
//! not, with a reply built from the caller's last user text and token counts estimated
//! from the request. It needs no upstream and no key, so a fresh gateway serves every
//! SDK immediately, and it measures the gateway's own overhead. Requests go through the
//! caller protocol's full decoder first, so echo rejects what a real conversion would.

use crate::ir::{Part, Request, Response, ResponseMeta, Role, StopReason, StreamEvent, Usage};
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

/// Text of the last user message (tool results are not user text).
pub fn last_user_text(req: &Request) -> String {
    req.messages
        .iter()
        .rev()
        .filter(|m| m.role == Role::User)
        .find_map(|m| {
            let text: String = m.parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect();
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_default()
}

/// The complete echo answer.
pub fn response(req: &Request, meta: ResponseMeta) -> Response {
    let text = reply_text(&last_user_text(req));
    let usage = Usage {
        input_tokens: crate::estimate::request_tokens(req).max(1),
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
        return vec![protocols::encode_response(protocol, response, &envelope.options).into_bytes()];
    }
    let mut encoder = protocols::stream_encoder(protocol, envelope.options.clone(), framing);
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
    use serde_json::json;

    fn meta() -> ResponseMeta {
        ResponseMeta { id: "abc".into(), model: "echo.m".into(), created: 1 }
    }

    #[test]
    fn replies_from_the_last_user_text() {
        let chat = json!({"model":"echo.m","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"hello there"}]}]});
        let claude = json!({"model":"echo.m","max_tokens":5,"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"hello there"}]}]});
        for (p, body) in [(Protocol::OpenAiChat, chat), (Protocol::Claude, claude)] {
            let r = response(&protocols::decode_request(p, &body).unwrap(), meta());
            assert_eq!(r.text(), "Echo: hello there");
            assert!(r.usage.input_tokens > 3);
            assert_eq!(r.usage.output_tokens, 5);
        }
        let gem = protocols::decode_request(Protocol::Gemini, &json!({"contents":[{"parts":[{"text":"hi"}]}]})).unwrap();
        assert_eq!(response(&gem, meta()).text(), "Echo: hi");
        let resp = protocols::decode_request(Protocol::OpenAiResponses, &json!({"model":"m","input":"yo"})).unwrap();
        assert_eq!(response(&resp, meta()).text(), "Echo: yo");
    }

    #[test]
    fn stream_deltas_join_to_the_text() {
        let req = protocols::decode_request(Protocol::OpenAiResponses, &json!({"input":"a b  c"})).unwrap();
        let r = response(&req, meta());
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
