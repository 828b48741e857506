use serde_json::{json, Value};

use super::{request, response, stream};
use crate::config::{ModelOptions, Quirks};
use crate::ir::{Accumulator, Part, Reasoning, ResponseMeta, Role, StopReason, StreamEvent, ToolChoice, Usage};
use crate::protocols::{EncodeOptions, Protocol, StreamEncoder, Target};

const RICH: &str = include_str!("../../../tests/fixtures/openai_chat/request_rich.json");
const STREAM: &str = include_str!("../../../tests/fixtures/openai_chat/stream_tools.sse");
const RESPONSE: &str = include_str!("../../../tests/fixtures/openai_chat/response_tools.json");

fn meta() -> ResponseMeta {
    ResponseMeta { id: "gw1".into(), model: "oai.gpt-4o".into(), created: 1_700_000_000 }
}

fn target<'a>(options: &'a ModelOptions) -> Target<'a> {
    Target { model: "gpt-4o-up", options, quirks: Quirks::default() }
}

#[test]
fn decodes_a_rich_request() {
    let req = request::decode(&serde_json::from_str(RICH).unwrap()).unwrap();
    assert_eq!(req.system, vec![Part::Text("You are terse.".into()), Part::Text("Use metric units.".into())]);
    // Tool results and the user's next text share one user turn (results first).
    assert_eq!(req.messages.len(), 3, "{:#?}", req.messages);
    assert_eq!(req.messages[0].role, Role::User);
    assert!(matches!(&req.messages[0].parts[1], Part::Image(crate::ir::Media::Base64 { media_type, .. }) if media_type == "image/png"));
    let assistant = &req.messages[1];
    assert!(matches!(&assistant.parts[0], Part::Reasoning(r) if r.text == "Two cities, two calls."));
    assert_eq!(assistant.parts.iter().filter(|p| matches!(p, Part::ToolCall(_))).count(), 2);
    // Both tool messages merged into one user turn, names looked up from the calls.
    let results = &req.messages[2];
    assert_eq!(results.role, Role::User);
    assert_eq!(results.parts.len(), 3);
    assert_eq!(results.parts[2], Part::Text("Thanks. Which is warmer?".into()));
    assert!(matches!(&results.parts[1], Part::ToolResult(r) if r.call_id == "call_2" && r.name.as_deref() == Some("get_weather") && r.text() == "22C cloudy"));
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("get_weather".into())));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.reasoning.unwrap().effort, Some(crate::ir::Effort::High));
    assert_eq!(req.max_output_tokens, Some(2000));
    assert_eq!(req.stop, vec!["END"]);
    assert!(req.stream && req.include_usage);
    assert!(matches!(req.response_format, Some(crate::ir::ResponseFormat::JsonSchema { ref name, .. }) if name == "answer"));
}

#[test]
fn encode_then_decode_keeps_the_request() {
    let original = request::decode(&serde_json::from_str(RICH).unwrap()).unwrap();
    let options = ModelOptions::default();
    let body = request::encode(&original, &target(&options)).unwrap();
    assert_eq!(body["model"], "gpt-4o-up");
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "You are terse.\n\nUse metric units."}));
    let tool_msgs: Vec<&Value> = body["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_msgs.len(), 2);
    // Chat-origin reasoning goes back as reasoning_content.
    assert!(body["messages"].as_array().unwrap().iter().any(|m| m["reasoning_content"] == "Two cities, two calls."));
    let again = request::decode(&body).unwrap();
    assert_eq!(again.messages, original.messages);
    assert_eq!(again.tools, original.tools);
    assert_eq!(again.tool_choice, original.tool_choice);
    assert_eq!(again.response_format, original.response_format);
}

#[test]
fn foreign_reasoning_is_dropped_not_turned_into_text() {
    let mut req = request::decode(&serde_json::from_str(RICH).unwrap()).unwrap();
    for m in &mut req.messages {
        for p in &mut m.parts {
            if let Part::Reasoning(r) = p {
                r.origin = Some(Protocol::Claude);
                r.signature = Some("sig".into());
            }
        }
    }
    let options = ModelOptions::default();
    let body = request::encode(&req, &target(&options)).unwrap().to_string();
    assert!(!body.contains("Two cities") && !body.contains("sig"), "{body}");
}

#[test]
fn config_effort_and_max_tokens_apply_when_the_request_has_none() {
    let req = request::decode(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let options = ModelOptions { reasoning_effort: Some("low".into()), max_tokens: Some(77), ..Default::default() };
    let body = request::encode(&req, &target(&options)).unwrap();
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["max_completion_tokens"], 77);
    assert!(body.get("stream").is_none());
}

#[test]
fn long_user_ids_fit_openai_s_limit() {
    // Claude Code's metadata.user_id is ~150 characters; OpenAI takes at most 64.
    let claude_code = format!("user_{}_account_{}_session_{}", "ab12".repeat(16), "0f0f0f0f-1111-2222-3333-444444444444", "5555");
    let options = ModelOptions::default();
    let sent = |user: &str| {
        let req = crate::ir::Request { user: Some(user.to_string()), ..request::decode(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap() };
        request::encode(&req, &target(&options)).unwrap()["user"].as_str().unwrap().to_string()
    };
    let a = sent(&claude_code);
    assert!(a.len() <= 64 && a.starts_with("user-"), "{a}");
    assert_eq!(a, sent(&claude_code), "one id per user, request after request");
    assert_ne!(a, sent(&claude_code.replace("5555", "6666")));
    assert_eq!(sent("alice"), "alice");
    let r = crate::ir::Request { user: Some(claude_code), ..Default::default() };
    let body = crate::protocols::openai_responses::request::encode(&r, &target(&options)).unwrap();
    assert_eq!(body["user"].as_str().unwrap(), a);
}

#[test]
fn several_choices_are_a_clear_400() {
    let e = request::decode(&json!({"messages": [{"role": "user", "content": "hi"}], "n": 3})).unwrap_err();
    assert_eq!((e.status(), e.param.as_deref()), (400, Some("n")));
    assert!(e.message.contains("n = 3"), "{}", e.message);
    assert!(request::decode(&json!({"messages": [{"role": "user", "content": "hi"}], "n": 1})).is_ok());
}

#[test]
fn image_by_file_id_is_a_clear_400() {
    use crate::ir::{Media, Message, Part, Request, Role};
    let req = Request {
        messages: vec![Message { role: Role::User, parts: vec![Part::Text("what is it?".into()), Part::Image(Media::FileId("file-abc".into()))] }],
        ..Request::default()
    };
    let options = ModelOptions::default();
    let e = super::request::encode(&req, &target(&options)).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.message.contains("file-abc") && e.message.contains("URL or data"), "{}", e.message);
}

#[test]
fn previous_response_id_is_a_clear_400() {
    let mut req = request::decode(&json!({"messages": []})).unwrap();
    req.previous_response_id = Some("resp_1".into());
    let options = ModelOptions::default();
    let e = request::encode(&req, &target(&options)).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.message.contains("previous_response_id"));
}

#[test]
fn bad_requests_name_the_field() {
    for (body, param) in [
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
        (json!({"messages": [{"role": "wizard", "content": "x"}]}), "messages[0].role"),
        (json!({"messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
        (json!({"messages": [{"role": "tool", "content": "x"}]}), "messages[0].tool_call_id"),
        (json!({"messages": [], "tools": [{"type": "web_search"}]}), "tools[0].type"),
        (json!({"messages": [], "reasoning_effort": "galactic"}), "reasoning_effort"),
    ] {
        let e = request::decode(&body).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
}

#[test]
fn response_decode_and_encode_round_trip() {
    let r = response::decode(&serde_json::from_str(RESPONSE).unwrap(), meta()).unwrap();
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage, Usage { input_tokens: 120, output_tokens: 30, cache_read_tokens: 64, cache_write_tokens: 0, reasoning_tokens: 10 });
    assert!(matches!(&r.parts[0], Part::Reasoning(x) if x.origin == Some(Protocol::OpenAiChat)));
    let wire: Value = serde_json::from_str(&response::encode(&r)).unwrap();
    assert_eq!(wire["id"], "chatcmpl-gw1");
    assert_eq!(wire["model"], "oai.gpt-4o");
    assert_eq!(wire["choices"][0]["message"]["reasoning_content"], "Weather needs a tool.");
    assert_eq!(wire["choices"][0]["finish_reason"], "tool_calls");
    let back = response::decode(&wire, meta()).unwrap();
    assert_eq!(back.parts, r.parts);
    assert_eq!(back.usage, r.usage);
}

/// Answers of OpenAI-compatible servers: empty or repeated call ids, DeepSeek's cache usage.
#[test]
fn compatible_server_answers_get_distinct_call_ids_and_cache_usage() {
    let body = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [
        {"id": "", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "same", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        {"id": "same", "type": "function", "function": {"name": "c", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 80, "prompt_cache_miss_tokens": 20}});
    let r = response::decode(&body, meta()).unwrap();
    let ids: Vec<&str> = r.tool_calls().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_eq!(ids[1], "same");
    assert!(ids[0] != ids[2] && ids[1] != ids[2]);
    assert_eq!(r.usage.cache_read_tokens, 80);
}

#[test]
fn gemini_signature_travels_in_the_tool_call_id() {
    let sig = Reasoning { signature: Some("CpoB/+==".into()), origin: Some(Protocol::Gemini), ..Default::default() };
    let call = crate::ir::ToolCall { id: "call_x".into(), name: "f".into(), arguments: "{}".into() };
    let r = crate::ir::Response {
        meta: meta(),
        parts: vec![Part::Reasoning(sig.clone()), Part::ToolCall(call.clone())],
        stop: StopReason::ToolUse,
        usage: Usage::default(),
    };
    let wire: Value = serde_json::from_str(&response::encode(&r)).unwrap();
    let id = wire["choices"][0]["message"]["tool_calls"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("call_x_gwr"));
    let next = json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": id, "content": "ok"}
    ]});
    let req = request::decode(&next).unwrap();
    assert_eq!(req.messages[1].parts, vec![Part::Reasoning(sig), Part::ToolCall(call)]);
    assert!(matches!(&req.messages[2].parts[0], Part::ToolResult(t) if t.call_id == "call_x"));
}

fn decode_stream(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, crate::error::GatewayError> {
    let (events, end) = crate::protocols::decode_sse(&mut stream::Decoder::new(meta()), chunks);
    end.map(|()| events)
}

#[test]
fn stream_decodes_text_reasoning_tools_and_usage_at_any_split() {
    let events = decode_stream(&[STREAM.as_bytes()]).unwrap();
    let mut acc = Accumulator::default();
    events.iter().for_each(|e| acc.push(e));
    let r = acc.into_response().unwrap();
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage.cache_read_tokens, 64);
    assert_eq!(r.usage.reasoning_tokens, 8);
    assert!(matches!(&r.parts[0], Part::Reasoning(x) if x.text == "Need both."));
    assert_eq!(r.parts[1], Part::Text("Checking é.".into()));
    let calls: Vec<_> = r.tool_calls().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str())).collect();
    assert_eq!(calls, vec![("call_abc", "get_weather", "{\"city\":\"Paris\"}"), ("call_def", "get_time", "{}")]);
    let bytes = STREAM.as_bytes();
    for split in (0..bytes.len()).step_by(7) {
        assert_eq!(decode_stream(&[&bytes[..split], &bytes[split..]]).unwrap(), events, "split {split}");
    }
}

/// Tool-call chunks as OpenAI-compatible servers send them, which do not all number calls
/// the way OpenAI does.
#[test]
fn tool_calls_from_compatible_servers_keep_each_call_whole() {
    let calls = |chunks: &[&str]| {
        let sse: String = chunks.iter().map(|c| format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{c}]}}}}]}}\n\n")).collect();
        let sse = sse + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
        let mut acc = Accumulator::default();
        decode_stream(&[sse.as_bytes()]).unwrap().iter().for_each(|e| acc.push(e));
        let r = acc.into_response().unwrap();
        r.tool_calls().map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone())).collect::<Vec<_>>()
    };
    let owned = |v: &[(&str, &str, &str)]| v.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<Vec<_>>();
    // Parallel calls all numbered 0, each with its own id (seen from Ollama-style servers).
    let same_index = calls(&[
        r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":"{\"x\":"}}"#,
        r#"{"index":0,"function":{"arguments":"1}"}}"#,
        r#"{"index":0,"id":"c2","type":"function","function":{"name":"b","arguments":"{}"}}"#,
    ]);
    assert_eq!(same_index, owned(&[("c1", "a", "{\"x\":1}"), ("c2", "b", "{}")]));
    // No index at all: arguments continue the open call; an id or another name starts one.
    let no_index = calls(&[
        r#"{"id":"c1","type":"function","function":{"name":"a","arguments":""}}"#,
        r#"{"function":{"arguments":"{\"x\":1}"}}"#,
        r#"{"id":"c2","type":"function","function":{"name":"b","arguments":"{}"}}"#,
        r#"{"function":{"name":"c","arguments":"{}"}}"#,
    ]);
    assert_eq!(no_index[..2], owned(&[("c1", "a", "{\"x\":1}"), ("c2", "b", "{}")])[..]);
    assert_eq!((no_index.len(), no_index[2].1.as_str(), no_index[2].2.as_str()), (3, "c", "{}"));
    // The id and name repeated on every chunk of one call (seen too) stay one call.
    let repeated = calls(&[
        r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":"{\"x\""}}"#,
        r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":":1}"}}"#,
    ]);
    assert_eq!(repeated, owned(&[("c1", "a", "{\"x\":1}")]));
    // One id for two calls: the second gets its own, and its repeated id does not split it.
    let dup = calls(&[
        r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}}"#,
        r#"{"index":1,"id":"c1","type":"function","function":{"name":"b","arguments":"{\"y\""}}"#,
        r#"{"index":1,"id":"c1","function":{"arguments":":2}"}}"#,
    ]);
    assert_eq!((dup.len(), dup[1].1.as_str(), dup[1].2.as_str()), (2, "b", "{\"y\":2}"));
    assert_ne!(dup[0].0, dup[1].0);
    // An id that changes before the call's arguments are whole does not split it.
    let changing = calls(&[
        r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":"{\"x\""}}"#,
        r#"{"index":0,"id":"c1b","function":{"arguments":":1}"}}"#,
    ]);
    assert_eq!(changing, owned(&[("c1", "a", "{\"x\":1}")]));
    // Arguments sent as an object rather than JSON text.
    let object_args = calls(&[r#"{"index":0,"id":"c1","type":"function","function":{"name":"a","arguments":{"x":1}}}"#]);
    assert_eq!(object_args, owned(&[("c1", "a", "{\"x\":1}")]));
}

#[test]
fn truncated_and_error_streams_are_errors() {
    let cut = &STREAM[..STREAM.find("\"finish_reason\":\"tool_calls\"").unwrap() - 60];
    let e = decode_stream(&[cut.as_bytes()]).unwrap_err();
    assert_eq!(e.status(), 502);
    let err = "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"rate_limit_exceeded\"}}\n\n";
    let e = decode_stream(&[err.as_bytes()]).unwrap_err();
    assert_eq!(e.status(), 429);
    assert_eq!(e.message, "Rate limit reached");
    assert!(decode_stream(&[b"data: {not json\n\n"]).is_err());
}

#[test]
fn encoder_output_decodes_to_the_same_answer() {
    let events = decode_stream(&[STREAM.as_bytes()]).unwrap();
    let mut enc = stream::Encoder::new(EncodeOptions { include_usage: true, ..EncodeOptions::default() });
    let mut wire = Vec::new();
    for e in &events {
        enc.event(e, &mut wire);
    }
    let text = String::from_utf8(wire.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(text.contains("\"choices\":[],\"usage\""));
    let again = decode_stream(&[&wire]).unwrap();
    let (mut a, mut b) = (Accumulator::default(), Accumulator::default());
    events.iter().for_each(|e| a.push(e));
    again.iter().for_each(|e| b.push(e));
    let (a, b) = (a.into_response().unwrap(), b.into_response().unwrap());
    assert_eq!(a.parts, b.parts);
    assert_eq!(a.usage, b.usage);
    assert_eq!(a.stop, b.stop);
}

#[test]
fn reasoning_that_arrives_whole_still_shows() {
    use crate::ir::{Reasoning, StopReason, Usage};
    let whole = Reasoning { text: "because".into(), signature: Some("sig".into()), ..Reasoning::default() };
    let streamed = Reasoning { text: "then".into(), ..Reasoning::default() };
    let events = [
        StreamEvent::Start { meta: meta(), input_tokens: 1 },
        StreamEvent::ReasoningEnd(whole),
        StreamEvent::ReasoningDelta("then".into()),
        StreamEvent::ReasoningEnd(streamed),
        StreamEvent::TextDelta("ok".into()),
        StreamEvent::Finish { stop: StopReason::EndTurn, usage: Usage::default() },
    ];
    let mut enc = stream::Encoder::new(EncodeOptions::default());
    let mut wire = Vec::new();
    events.iter().for_each(|e| enc.event(e, &mut wire));
    let text = String::from_utf8(wire).unwrap();
    assert_eq!(text.matches("\"reasoning_content\":\"because\"").count(), 1, "{text}");
    assert_eq!(text.matches("\"reasoning_content\":\"then\"").count(), 1, "{text}");
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 6] = [b"", b"data: \n\n", b"data: []\n\n", b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":5}]}}]}\n\n", b"\xff\xfe\n\n", b"data: {\"choices\":7}\n\n"];
    for i in inputs {
        let _ = decode_stream(&[i]);
    }
    for body in [json!(null), json!([]), json!({"choices": [{"message": 5}]}), json!({"choices": "x"})] {
        let _ = response::decode(&body, meta());
        let _ = request::decode(&body);
    }
}

#[test]
fn cache_hints_ask_for_prompt_caching() {
    let ask = |body: Value| super::request::decode(&body).unwrap().prompt_cache;
    let user = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
    assert!(!ask(user(json!("hi"))));
    assert!(ask(user(json!([{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}]))));
    assert!(ask(json!({"messages": [{"role": "system", "content": "x", "cache_control": {"type": "ephemeral"}}]})));
    assert!(ask(json!({"messages": [{"role": "user", "content": "hi"}], "prompt_cache_key": "k1"})));
}

#[test]
fn audio_input_reaches_chat_and_gemini_and_is_refused_clearly_elsewhere() {
    use crate::ir::Media;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is said?"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]}]});
    let ir = request::decode(&body).unwrap();
    let audio = Media::Base64 { media_type: "audio/wav".into(), data: "UklGRg==".into() };
    assert_eq!(ir.messages[0].parts[1], Part::File { media: audio, filename: None });

    let options = ModelOptions::default();
    let chat = request::encode(&ir, &target(&options)).unwrap();
    assert_eq!(chat["messages"][0]["content"][1], json!({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}));
    let gemini = crate::protocols::gemini::request::encode(&ir, &target(&options)).unwrap();
    assert_eq!(gemini["contents"][0]["parts"][1], json!({"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}));
    let claude = crate::protocols::claude::request::encode(&ir, &target(&options)).unwrap_err();
    assert!(claude.message.contains("audio/wav"), "{}", claude.message);
    let responses = crate::protocols::openai_responses::request::encode(&ir, &target(&options)).unwrap_err();
    assert!(responses.message.contains("no audio input"), "{}", responses.message);

    // Gemini's other audio formats have no Chat equivalent; a malformed part is the caller's error.
    let mut ogg = ir.clone();
    ogg.messages[0].parts[1] = Part::File { media: Media::Base64 { media_type: "audio/ogg".into(), data: "T2dn".into() }, filename: None };
    assert!(request::encode(&ogg, &target(&options)).unwrap_err().message.contains("wav or mp3"));
    for part in [json!({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}), json!({"type": "input_audio"})] {
        let bad = json!({"model": "m", "messages": [{"role": "user", "content": [part]}]});
        assert_eq!(request::decode(&bad).unwrap_err().status(), 400);
    }
}

#[test]
fn stream_chunks_keep_the_chunk_object_s_fields_and_order() {
    // The encoder writes chunks from a head serialised once per stream.
    let mut enc = stream::Encoder::new(EncodeOptions { include_usage: true, ..EncodeOptions::default() });
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 1 }, &mut out);
    enc.event(&StreamEvent::TextDelta("say \"hi\"".into()), &mut out);
    enc.event(&StreamEvent::Finish { stop: StopReason::EndTurn, usage: Usage { input_tokens: 3, output_tokens: 2, ..Usage::default() } }, &mut out);
    let head = json!({"id": "chatcmpl-gw1", "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": "oai.gpt-4o"});
    let with = |extra: Value| {
        let mut chunk = head.clone();
        chunk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        format!("data: {chunk}\n\n")
    };
    let choice = |delta: Value, finish: Value| with(json!({"choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}));
    let expected = [
        choice(json!({"role": "assistant", "content": ""}), Value::Null),
        choice(json!({"content": "say \"hi\""}), Value::Null),
        choice(json!({}), json!("stop")),
        with(json!({"choices": [], "usage": super::response::usage(&Usage { input_tokens: 3, output_tokens: 2, ..Usage::default() })})),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

/// OpenRouter's `reasoning_details` and Gemini's OpenAI-compatible thought signatures:
/// read from whole and streamed answers, and sent back where they came from.
#[test]
fn reasoning_details_and_call_thought_signatures_go_back_to_a_chat_upstream() {
    let details = json!([{"type": "reasoning.text", "text": "Plan it.", "signature": "sig-1", "format": "anthropic-claude-v1", "index": 0},
                         {"type": "reasoning.encrypted", "data": "ENC==", "format": "google-gemini-v1", "index": 1}]);
    let whole = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "reasoning": "Plan it.", "reasoning_details": details,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "GSIG=="}}}]}}]});
    let from_whole = response::decode(&whole, meta()).unwrap();

    let chunk = |delta: Value| format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": delta}]}));
    let sse = [
        chunk(json!({"role": "assistant", "reasoning": "Plan ", "reasoning_details": [{"type": "reasoning.text", "text": "Plan ", "format": "anthropic-claude-v1", "index": 0}]})),
        chunk(json!({"reasoning": "it.", "reasoning_details": [{"type": "reasoning.text", "text": "it.", "index": 0}]})),
        chunk(json!({"reasoning_details": [{"type": "reasoning.text", "text": "", "signature": "sig-1", "index": 0}, {"type": "reasoning.encrypted", "data": "ENC==", "format": "google-gemini-v1", "index": 1}]})),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}, "extra_content": {"google": {"thought_signature": "GSIG=="}}}]})),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n".to_string(),
    ]
    .concat();
    let mut acc = Accumulator::default();
    decode_stream(&[sse.as_bytes()]).unwrap().iter().for_each(|e| acc.push(e));
    let from_stream = acc.into_response().unwrap();

    for answer in [from_whole, from_stream] {
        let mut req = request::decode(&json!({"messages": [{"role": "user", "content": "go"}]})).unwrap();
        req.messages.push(crate::ir::Message { role: Role::Assistant, parts: answer.parts.clone() });
        let options = ModelOptions::default();
        let body = request::encode(&req, &target(&options)).unwrap();
        let m = &body["messages"][1];
        let mut sent = m["reasoning_details"].clone();
        sent.as_array_mut().unwrap().iter_mut().for_each(|d| d.as_object_mut().unwrap().retain(|k, _| k != "index"));
        let mut want = details.clone();
        want.as_array_mut().unwrap().iter_mut().for_each(|d| d.as_object_mut().unwrap().retain(|k, _| k != "index"));
        assert_eq!(sent, want, "{:?}", answer.parts);
        assert_eq!(m["reasoning_content"], "Plan it.");
        assert_eq!(m["tool_calls"][0]["extra_content"]["google"]["thought_signature"], "GSIG==");
        // Another provider cannot take it back.
        assert!(answer.parts.iter().all(|p| !matches!(p, Part::Reasoning(r) if r.origin != Some(Protocol::OpenAiChat))));
    }
}
