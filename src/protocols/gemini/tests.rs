//! Gemini adapter tests over real-shaped wire fixtures (`tests/fixtures/gemini/`).

use serde_json::{json, Value};

use super::{request, response, stream};
use crate::carrier;
use crate::config::{ModelOptions, Quirks};
use crate::error::{ErrorKind, GatewayError};
use crate::ir::{
    Accumulator, Effort, Media, Message, Part, Reasoning, ReasoningRequest, Request, Response, ResponseFormat,
    ResponseMeta, Role, StopReason, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::protocols::{Protocol, StreamDecoder, StreamEncoder, StreamFraming, Target};
use crate::sse;

const REQUEST_RICH: &str = include_str!("../../../tests/fixtures/gemini/request_rich.json");
const REQUEST_SNAKE: &str = include_str!("../../../tests/fixtures/gemini/request_snake.json");
const RESPONSE_TOOLS: &str = include_str!("../../../tests/fixtures/gemini/response_tools.json");
const RESPONSE_TEXT: &str = include_str!("../../../tests/fixtures/gemini/response_text.json");
const RESPONSE_BLOCKED: &str = include_str!("../../../tests/fixtures/gemini/response_blocked.json");
const ERROR_429: &str = include_str!("../../../tests/fixtures/gemini/error_429.json");
const STREAM_TEXT: &str = include_str!("../../../tests/fixtures/gemini/stream_text.sse");
const STREAM_TOOLS: &str = include_str!("../../../tests/fixtures/gemini/stream_tools.sse");
const STREAM_TRUNCATED: &str = include_str!("../../../tests/fixtures/gemini/stream_truncated.sse");
const STREAM_ERROR: &str = include_str!("../../../tests/fixtures/gemini/stream_error.sse");
const STREAM_BLOCKED: &str = include_str!("../../../tests/fixtures/gemini/stream_blocked.sse");

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn meta() -> ResponseMeta {
    ResponseMeta { id: "gw0123456789abcdef99".into(), model: "google.gemini-3-flash".into(), created: 1_763_000_000 }
}

fn target<'a>(model: &'a str, options: &'a ModelOptions) -> Target<'a> {
    Target { model, options, quirks: Quirks::default() }
}

fn encode_with(req: &Request, model: &str) -> Value {
    let options = ModelOptions::default();
    request::encode(req, &target(model, &options)).unwrap()
}

fn text(t: &str) -> Part {
    Part::Text(t.into())
}

fn call(id: &str, name: &str, args: &str) -> Part {
    Part::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: args.into() })
}

fn result(id: &str, content: &str) -> Part {
    Part::ToolResult(ToolResult { call_id: id.into(), name: None, content: vec![text(content)], is_error: false })
}

fn user(parts: Vec<Part>) -> Message {
    Message { role: Role::User, parts }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message { role: Role::Assistant, parts }
}

fn gemini_sig(sig: &str) -> Part {
    Part::Reasoning(Reasoning { signature: Some(sig.into()), origin: Some(Protocol::Gemini), ..Reasoning::default() })
}

fn claude_thinking() -> Reasoning {
    Reasoning { text: "Let me think \"exactly\".".into(), signature: Some("EqQBCkYIBxgCKkA+/=".into()), origin: Some(Protocol::Claude), ..Reasoning::default() }
}

fn responses_reasoning() -> Reasoning {
    Reasoning {
        text: "Summary of reasoning.".into(),
        encrypted: Some("gAAAAABoEncrypted==".into()),
        id: Some("rs_68a1".into()),
        origin: Some(Protocol::OpenAiResponses),
        ..Reasoning::default()
    }
}

// ---------------------------------------------------------------------------------
// Ingress request decode
// ---------------------------------------------------------------------------------

#[test]
fn decodes_a_rich_request() {
    let req = request::decode(&parse(REQUEST_RICH)).unwrap();
    assert_eq!(req.system, vec![text("You are a helpful travel assistant."), text("Answer briefly.")]);
    assert_eq!(req.messages.len(), 5);

    let m0 = &req.messages[0];
    assert_eq!(m0.role, Role::User);
    assert_eq!(m0.parts.len(), 4);
    assert!(matches!(&m0.parts[1], Part::Image(Media::Base64 { media_type, data }) if media_type == "image/png" && data.starts_with("iVBOR")));
    assert_eq!(
        m0.parts[2],
        Part::File {
            media: Media::Url { url: "https://generativelanguage.googleapis.com/v1beta/files/abc123".into(), media_type: Some("application/pdf".into()) },
            filename: None
        }
    );
    assert_eq!(m0.parts[3], Part::Image(Media::Url { url: "https://example.com/cat.webp".into(), media_type: Some("image/webp".into()) }));

    let m1 = &req.messages[1];
    assert_eq!(m1.role, Role::Assistant);
    assert_eq!(
        m1.parts,
        vec![
            Part::Reasoning(Reasoning {
                text: "**Checking the weather**\nI should call the weather tool.".into(),
                signature: Some("CpoBAdHtim8xY2FsbF9zaWduYXR1cmVfMQ==".into()),
                origin: Some(Protocol::Gemini),
                ..Reasoning::default()
            }),
            call("call_get_weather_1_0", "get_weather", r#"{"city":"Paris","unit":"celsius"}"#),
            call("call_get_time_1_1", "get_time", r#"{"tz":"Europe/Paris"}"#),
        ]
    );

    assert_eq!(
        req.messages[2].parts,
        vec![
            Part::ToolResult(ToolResult { call_id: "call_get_weather_1_0".into(), name: Some("get_weather".into()), content: vec![text("18°C, cloudy")], is_error: false }),
            Part::ToolResult(ToolResult {
                call_id: "call_get_time_1_1".into(),
                name: Some("get_time".into()),
                content: vec![text("timezone service unavailable")],
                is_error: true
            }),
        ]
    );

    assert_eq!(
        req.messages[3].parts,
        vec![text("It is 18°C and cloudy in Paris."), gemini_sig("Q2lRQmRIdGltOGZpbmFs"), text(" I could not get the time.")]
    );
    assert_eq!(req.messages[4], user(vec![text("Thanks! Now book a table.")]));

    assert_eq!(req.tools.len(), 3);
    assert_eq!(
        req.tools[0],
        Tool {
            name: "get_weather".into(),
            description: Some("Current weather for a city".into()),
            parameters: json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "array", "items": {"type": "integer"}, "minItems": 1}
                },
                "required": ["city"]
            }),
            strict: None,
        }
    );
    assert_eq!(req.tools[1].parameters["additionalProperties"], json!(false));
    assert_eq!(req.tools[2].parameters, json!({"type": "object", "properties": {}}));
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("book_table".into())));

    assert_eq!(req.max_output_tokens, Some(2048));
    assert_eq!(req.temperature, Some(0.7));
    assert_eq!(req.top_p, Some(0.95));
    assert_eq!(req.top_k, Some(40));
    assert_eq!(req.stop, vec!["END".to_string()]);
    assert_eq!(req.seed, Some(42));
    assert_eq!(req.presence_penalty, Some(0.1));
    assert_eq!(req.frequency_penalty, Some(0.2));
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}),
            strict: None,
            description: None
        })
    );
    assert_eq!(req.reasoning, Some(ReasoningRequest { budget_tokens: Some(4096), include_thoughts: Some(true), ..ReasoningRequest::default() }));
    assert!(!req.stream);
}

#[test]
fn snake_case_requests_decode_like_camel_case() {
    let snake = parse(REQUEST_SNAKE);
    assert!(snake.get("system_instruction").is_some(), "fixture really is snake_case");
    assert_eq!(request::decode(&snake).unwrap(), request::decode(&parse(REQUEST_RICH)).unwrap());
}

#[test]
fn count_tokens_bodies_decode_through_their_wrapper() {
    let body = json!({"generateContentRequest": {"model": "models/x", "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "sys"}]}}});
    let req = request::decode(&body).unwrap();
    assert_eq!(req.system, vec![text("sys")]);
    assert_eq!(req.messages, vec![user(vec![text("hi")])]);
}

#[test]
fn function_responses_find_their_calls() {
    // Ids given by the client (as the gateway hands them out) are kept.
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"id": "toolu_01", "name": "read", "args": {"p": "a"}}},
                                    {"functionCall": {"name": "read", "args": {"p": "b"}}}]},
        // Gemini CLI invents ids for calls that had none: matched by name and order.
        {"role": "user", "parts": [{"functionResponse": {"id": "toolu_01", "name": "read", "response": {"output": "A"}}},
                                   {"functionResponse": {"id": "read-1763000000-9f2c", "name": "read", "response": {"output": "B"}}},
                                   {"functionResponse": {"id": "orphan-1", "name": "write", "response": {"ok": true}}},
                                   {"functionResponse": {"name": "nothing", "response": {"output": "?"}}}]}
    ]});
    let req = request::decode(&body).unwrap();
    assert_eq!(req.messages[1].parts, vec![call("toolu_01", "read", r#"{"p":"a"}"#), call("call_read_1_1", "read", r#"{"p":"b"}"#)]);
    let ids: Vec<(&str, String)> = req.messages[2]
        .parts
        .iter()
        .map(|p| match p {
            Part::ToolResult(r) => (r.call_id.as_str(), r.text()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("toolu_01", "A".to_string()),
            ("call_read_1_1", "B".to_string()),
            ("orphan-1", r#"{"ok":true}"#.to_string()),
            ("call_nothing_2_3", "?".to_string()),
        ]
    );
}

#[test]
fn function_response_parts_and_odd_responses() {
    let body = json!({"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "shot", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "shot", "response": {"output": {"w": 10}},
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}}]}
    ]});
    let req = request::decode(&body).unwrap();
    let Part::ToolResult(r) = &req.messages[1].parts[0] else { panic!() };
    assert_eq!(r.call_id, "call_shot_0_0");
    assert_eq!(r.content, vec![text(r#"{"output":{"w":10}}"#), Part::Image(Media::Base64 { media_type: "image/png".into(), data: "AAAA".into() })]);
}

#[test]
fn streamed_history_chunks_join_and_signatures_find_their_thoughts() {
    // A client that stored each stream chunk as its own content.
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "q"}]},
        {"role": "model", "parts": [{"text": "**Plan**", "thought": true}]},
        {"role": "model", "parts": [{"text": " more", "thought": true}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2lnMQ=="}]},
        {"role": "model", "parts": [{"text": "Hel"}]},
        {"role": "model", "parts": [{"text": "lo"}]}
    ]});
    let req = request::decode(&body).unwrap();
    assert_eq!(req.messages.len(), 2);
    assert_eq!(
        req.messages[1].parts,
        vec![
            Part::Reasoning(Reasoning { text: "**Plan** more".into(), signature: Some("c2lnMQ==".into()), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
            call("call_f_3_0", "f", "{}"),
            text("Hello"),
        ]
    );
}

#[test]
fn decodes_tool_choice_modes() {
    let choice = |fcc: Value| request::decode(&json!({"contents": [], "toolConfig": {"functionCallingConfig": fcc}})).map(|r| r.tool_choice);
    assert_eq!(choice(json!({"mode": "AUTO"})).unwrap(), Some(ToolChoice::Auto));
    assert_eq!(choice(json!({"mode": "NONE"})).unwrap(), Some(ToolChoice::None));
    assert_eq!(choice(json!({"mode": "ANY"})).unwrap(), Some(ToolChoice::Required));
    assert_eq!(choice(json!({"mode": "any", "allowedFunctionNames": ["a", "b"]})).unwrap(), Some(ToolChoice::Allowed { names: vec!["a".into(), "b".into()], required: true }));
    assert_eq!(choice(json!({"mode": "VALIDATED", "allowed_function_names": ["a"]})).unwrap(), Some(ToolChoice::Allowed { names: vec!["a".into()], required: false }));
    assert_eq!(choice(json!({})).unwrap(), None);
    let e = choice(json!({"mode": "SOMETIMES"})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("toolConfig.functionCallingConfig.mode"));
}

#[test]
fn decodes_thinking_config() {
    let reasoning = |tc: Value| request::decode(&json!({"contents": [], "generationConfig": {"thinkingConfig": tc}})).map(|r| r.reasoning);
    assert_eq!(reasoning(json!({"thinkingBudget": 0})).unwrap(), Some(ReasoningRequest { disabled: true, ..Default::default() }));
    assert_eq!(reasoning(json!({"thinkingBudget": -1})).unwrap(), Some(ReasoningRequest { effort: Some(Effort::Medium), ..Default::default() }));
    assert_eq!(reasoning(json!({"thinking_level": "HIGH", "include_thoughts": true})).unwrap(),
        Some(ReasoningRequest { effort: Some(Effort::High), include_thoughts: Some(true), ..Default::default() }));
    assert_eq!(reasoning(json!({"thinkingLevel": "minimal"})).unwrap(), Some(ReasoningRequest { effort: Some(Effort::Minimal), ..Default::default() }));
    assert_eq!(reasoning(json!({})).unwrap(), None);
    assert_eq!(reasoning(json!({"thinkingLevel": "EXTREME"})).unwrap_err().param.as_deref(), Some("generationConfig.thinkingConfig.thinkingLevel"));
}

#[test]
fn response_formats_decode() {
    let format = |gc: Value| request::decode(&json!({"contents": [], "generationConfig": gc})).unwrap().response_format;
    assert_eq!(format(json!({"responseMimeType": "application/json"})), Some(ResponseFormat::JsonObject));
    assert_eq!(format(json!({"responseMimeType": "text/plain"})), Some(ResponseFormat::Text));
    assert!(matches!(format(json!({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})),
        Some(ResponseFormat::JsonSchema { schema, .. }) if schema == json!({"type": "object"})));
    assert_eq!(format(json!({})), None);
}

#[test]
fn wrong_types_are_400s_naming_the_field() {
    let cases = [
        (json!({"contents": {"role": "user"}}), "contents"),
        (json!({"contents": [{"parts": [{"text": 5}]}]}), "contents[0].parts[0].text"),
        (json!({"contents": [{"parts": "hi"}]}), "contents[0].parts"),
        (json!({"contents": [{"role": "system", "parts": []}]}), "contents[0].role"),
        (json!({"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}), "contents[0].parts[0].functionCall.name"),
        (json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "[1]"}}]}]}), "contents[0].parts[0].functionCall.args"),
        (json!({"contents": [{"parts": [{"inlineData": {"data": "AAAA"}}]}]}), "contents[0].parts[0].inlineData.mimeType"),
        (json!({"contents": [], "generationConfig": {"temperature": "hot"}}), "generationConfig.temperature"),
        (json!({"contents": [], "generationConfig": {"maxOutputTokens": -5}}), "generationConfig.maxOutputTokens"),
        (json!({"contents": [], "generationConfig": {"candidateCount": 2}}), "generationConfig.candidateCount"),
        (json!({"contents": [], "generationConfig": {"stopSequences": [1]}}), "generationConfig.stopSequences"),
        (json!({"contents": [], "tools": [{"googleSearch": {}}]}), "tools[0].googleSearch"),
        (json!({"contents": [], "tools": [{"functionDeclarations": [{"description": "x"}]}]}), "tools[0].functionDeclarations[0].name"),
        (json!({"contents": [], "cachedContent": "cachedContents/abc"}), "cachedContent"),
        (json!({"contents": [], "systemInstruction": 7}), "systemInstruction"),
        (json!({"contents": [], "generationConfig": []}), "generationConfig"),
    ];
    for (body, param) in cases {
        let e = request::decode(&body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
    assert!(request::decode(&json!([1])).is_err());
    // Numbers as proto3 JSON strings and a bare string system instruction are accepted.
    let req = request::decode(&json!({"contents": [], "systemInstruction": "be brief", "generationConfig": {"maxOutputTokens": "100", "seed": "7"}})).unwrap();
    assert_eq!((req.max_output_tokens, req.seed), (Some(100), Some(7)));
    assert_eq!(req.system, vec![text("be brief")]);
}

// ---------------------------------------------------------------------------------
// Egress request encode
// ---------------------------------------------------------------------------------

/// A Claude-style conversation in the current turn of a tool loop.
fn claude_conversation() -> Request {
    Request {
        system: vec![text("Be nice."), text("")],
        messages: vec![
            user(vec![text("Weather in Paris and Rome?")]),
            assistant(vec![
                Part::Reasoning(claude_thinking()),
                text("Let me check."),
                call("toolu_01A", "get_weather", r#"{"city":"Paris"}"#),
                call("toolu_01B", "get_weather", r#"{"city":"Rome"}"#),
            ]),
            user(vec![result("toolu_01A", "18C")]),
            user(vec![Part::ToolResult(ToolResult {
                call_id: "toolu_01B".into(),
                name: None,
                content: vec![text(r#"{"temp": 21}"#)],
                is_error: false,
            })]),
            assistant(vec![text("")]),
        ],
        ..Request::default()
    }
}

#[test]
fn encodes_turns_by_gemini_rules() {
    let body = encode_with(&claude_conversation(), "gemini-3-flash-preview");
    assert_eq!(body.get("model"), None, "the model goes in the URL");
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Be nice."}]}));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"text": "Let me check."},
                // Claude's thinking cannot go to Gemini; the current turn's calls get the dummy.
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": request::DUMMY_SIGNATURE},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            // Both responses in one user content, names looked up, results as objects.
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}
            ]}
        ])
    );
}

#[test]
fn only_the_current_turn_gets_dummy_signatures_and_gemini_signatures_go_back_in_place() {
    let req = Request {
        messages: vec![
            user(vec![text("first")]),
            assistant(vec![call("call_a", "f", "{}")]),
            user(vec![result("call_a", "r1")]),
            assistant(vec![text("done")]),
            user(vec![text("second")]),
            assistant(vec![
                Part::Reasoning(Reasoning { text: "thought text".into(), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
                gemini_sig("U0lHX0NBTEw="),
                call("gcall_abc", "f", r#"{"x":1}"#),
                call("call_b", "f", "{}"),
            ]),
            user(vec![
                Part::ToolResult(ToolResult { call_id: "gcall_abc".into(), name: Some("f".into()), content: vec![text("boom")], is_error: true }),
                result("call_b", "ok"),
                text("and also this"),
            ]),
            assistant(vec![text("Answer"), gemini_sig("U0lHX1RFWFQ="), Part::Reasoning(responses_reasoning())]),
            user(vec![text("third")]),
            assistant(vec![call("call_c", "g", "{}")]),
            user(vec![result("call_c", "r3")]),
            assistant(vec![gemini_sig("TE9ORQ==")]),
        ],
        ..Request::default()
    };
    let body = encode_with(&req, "gemini-3-pro-preview");
    let contents = body["contents"].as_array().unwrap();
    let roles: Vec<&str> = contents.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["user", "model", "user", "model", "user", "model", "user", "model", "user", "model", "user", "model"]);
    // An earlier turn: no dummy.
    assert_eq!(contents[1]["parts"], json!([{"functionCall": {"name": "f", "args": {}}}]));
    // Gemini's own signature goes back on the call it came with, its own id too.
    assert_eq!(
        contents[5]["parts"],
        json!([
            {"functionCall": {"name": "f", "args": {"x": 1}, "id": "abc"}, "thoughtSignature": "U0lHX0NBTEw="},
            {"functionCall": {"name": "f", "args": {}}}
        ])
    );
    assert_eq!(
        contents[6]["parts"],
        json!([
            {"functionResponse": {"name": "f", "response": {"error": "boom"}, "id": "abc"}},
            {"functionResponse": {"name": "f", "response": {"output": "ok"}}},
            {"text": "and also this"}
        ])
    );
    // A signature that came on an answer part goes back on that part; foreign reasoning is dropped.
    assert_eq!(contents[7]["parts"], json!([{"text": "Answer", "thoughtSignature": "U0lHX1RFWFQ="}]));
    // The current turn (after "third"): the call gets the dummy.
    assert_eq!(contents[9]["parts"][0]["thoughtSignature"], json!(request::DUMMY_SIGNATURE));
    // A lone signature keeps its place on an empty text part.
    assert_eq!(contents[11]["parts"], json!([{"text": "", "thoughtSignature": "TE9ORQ=="}]));
}

#[test]
fn repairs_histories_gemini_would_reject() {
    let req = Request {
        messages: vec![
            // Starts with a model call (history cut by the client).
            assistant(vec![call("c1", "f", "not json")]),
            user(vec![result("c1", "r")]),
            // A result whose call is gone and whose name is unknown.
            user(vec![text("hm")]),
            assistant(vec![text("ok")]),
            user(vec![result("lost", "value")]),
            // Reasoning of other providers only: the message vanishes.
            assistant(vec![Part::Reasoning(claude_thinking())]),
            user(vec![text("next")]),
        ],
        ..Request::default()
    };
    let body = encode_with(&req, "gemini-2.5-flash");
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(contents[1]["parts"][0]["functionCall"], json!({"name": "f", "args": {"_raw": "not json"}}));
    assert_eq!(contents[2]["parts"], json!([{"functionResponse": {"name": "f", "response": {"output": "r"}}}, {"text": "hm"}]));
    assert_eq!(contents[3]["parts"], json!([{"text": "ok"}]));
    assert_eq!(contents[4]["parts"], json!([{"text": "Result of tool call lost: value"}, {"text": "next"}]));
    assert_eq!(contents.len(), 5);
    for c in contents {
        assert!(!c["parts"].as_array().unwrap().is_empty());
    }
}

#[test]
fn encodes_media() {
    let req = Request {
        messages: vec![user(vec![
            Part::Image(Media::Url { url: "https://example.com/a/b.PNG?x=1".into(), media_type: None }),
            Part::Image(Media::Url { url: "https://example.com/image".into(), media_type: None }),
            Part::Image(Media::from_url("data:image/gif;base64,R0lG")),
            Part::Image(Media::Url { url: "data:image/webp;base64,UklG".into(), media_type: None }),
            Part::File { media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBERi0=".into() }, filename: Some("r.pdf".into()) },
            Part::File { media: Media::Url { url: "gs://bucket/doc".into(), media_type: Some("text/plain".into()) }, filename: None },
            Part::File { media: Media::FileId("files/abc-123".into()), filename: None },
        ])],
        ..Request::default()
    };
    let body = encode_with(&req, "gemini-2.5-flash");
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/b.PNG?x=1"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/image"}},
            {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
            {"inlineData": {"mimeType": "image/webp", "data": "UklG"}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            {"fileData": {"mimeType": "text/plain", "fileUri": "gs://bucket/doc"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "files/abc-123"}}
        ])
    );
    let req = Request { messages: vec![user(vec![Part::File { media: Media::FileId("file-abc".into()), filename: None }])], ..Request::default() };
    let options = ModelOptions::default();
    let e = request::encode(&req, &target("gemini-2.5-flash", &options)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(e.message.contains("file-abc"));
}

fn tool(name: &str, parameters: Value) -> Tool {
    Tool { name: name.into(), description: Some(format!("{name} tool")), parameters, strict: Some(true) }
}

#[test]
fn encodes_tools_as_json_schema_and_tool_choice() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "mode": {"const": "fast"},
            "tags": {"type": "array", "items": {"type": ["string", "null"]}},
            "nested": {"$ref": "#/$defs/N"}
        },
        "$defs": {"N": {"type": "object", "properties": {"k": {"type": "integer"}}, "additionalProperties": false}},
        "required": ["mode"],
        "additionalProperties": false
    });
    let mut req = Request {
        messages: vec![user(vec![text("hi")])],
        tools: vec![tool("a", schema), tool("b", Value::Null)],
        ..Request::default()
    };
    let body = encode_with(&req, "gemini-2.5-flash");
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "a", "description": "a tool", "parametersJsonSchema": {
                "type": "object",
                "properties": {
                    "mode": {"enum": ["fast"]},
                    "tags": {"type": "array", "items": {"type": ["string", "null"]}},
                    "nested": {"$ref": "#/$defs/N"}
                },
                "$defs": {"N": {"type": "object", "properties": {"k": {"type": "integer"}}, "additionalProperties": false}},
                "required": ["mode"],
                "additionalProperties": false
            }},
            {"name": "b", "description": "b tool", "parametersJsonSchema": {"type": "object", "properties": {}}}
        ]}])
    );
    assert_eq!(body.get("toolConfig"), None);

    let config = |req: &Request| encode_with(req, "gemini-2.5-flash").get("toolConfig").cloned();
    req.tool_choice = Some(ToolChoice::Auto);
    assert_eq!(config(&req), Some(json!({"functionCallingConfig": {"mode": "AUTO"}})));
    req.tool_choice = Some(ToolChoice::None);
    assert_eq!(config(&req), Some(json!({"functionCallingConfig": {"mode": "NONE"}})));
    req.tool_choice = Some(ToolChoice::Required);
    assert_eq!(config(&req), Some(json!({"functionCallingConfig": {"mode": "ANY"}})));
    req.tool_choice = Some(ToolChoice::Named("b".into()));
    assert_eq!(config(&req), Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}})));
    req.tool_choice = Some(ToolChoice::Allowed { names: vec!["a".into(), "b".into()], required: true });
    assert_eq!(config(&req), Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}})));
    req.tool_choice = Some(ToolChoice::Allowed { names: vec!["b".into()], required: false });
    let body = encode_with(&req, "gemini-2.5-flash");
    assert_eq!(body["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
    let names: Vec<&str> = body["tools"][0]["functionDeclarations"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["b"]);
}

#[test]
fn encodes_generation_config() {
    let req = Request {
        messages: vec![user(vec![text("hi")])],
        temperature: Some(0.3),
        top_p: Some(0.9),
        top_k: Some(20),
        stop: vec!["STOP".into(), String::new()],
        seed: Some(1 << 40),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "out".into(),
            schema: json!({"$schema": "x", "type": "object"}),
            strict: Some(true),
            description: None,
        }),
        user: Some("u1".into()),
        parallel_tool_calls: Some(false),
        ..Request::default()
    };
    let options = ModelOptions { max_tokens: Some(1000), ..ModelOptions::default() };
    let body = request::encode(&req, &target("gemini-2.5-flash", &options)).unwrap();
    assert_eq!(
        body["generationConfig"],
        json!({
            "maxOutputTokens": 1000,
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 20,
            "stopSequences": ["STOP"],
            "seed": (1i64 << 40) & 0x7fff_ffff,
            "presencePenalty": 0.5,
            "frequencyPenalty": -0.5,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"}
        })
    );
    let mut req = Request { messages: vec![user(vec![text("hi")])], max_output_tokens: Some(50), response_format: Some(ResponseFormat::JsonObject), ..Request::default() };
    let body = request::encode(&req, &target("gemini-2.5-flash", &options)).unwrap();
    assert_eq!(body["generationConfig"], json!({"maxOutputTokens": 50, "responseMimeType": "application/json"}));
    req.previous_response_id = Some("resp_1".into());
    assert_eq!(request::encode(&req, &target("gemini-2.5-flash", &options)).unwrap_err().param.as_deref(), Some("previous_response_id"));
}

#[test]
fn encodes_thinking_per_model_generation() {
    let thinking = |reasoning: Option<ReasoningRequest>, model: &str, effort_option: Option<&str>| {
        let req = Request { messages: vec![user(vec![text("hi")])], reasoning, ..Request::default() };
        let options = ModelOptions { reasoning_effort: effort_option.map(String::from), ..ModelOptions::default() };
        request::encode(&req, &target(model, &options)).unwrap()["generationConfig"].get("thinkingConfig").cloned()
    };
    let effort = |e| Some(ReasoningRequest { effort: Some(e), ..Default::default() });
    assert_eq!(thinking(effort(Effort::High), "gemini-2.5-flash", None), Some(json!({"thinkingBudget": 16384, "includeThoughts": true})));
    assert_eq!(thinking(effort(Effort::Max), "gemini-2.5-flash", None), Some(json!({"thinkingBudget": 24576, "includeThoughts": true})));
    assert_eq!(thinking(Some(ReasoningRequest { disabled: true, ..Default::default() }), "gemini-2.5-flash", None), Some(json!({"thinkingBudget": 0})));
    assert_eq!(thinking(Some(ReasoningRequest { disabled: true, ..Default::default() }), "gemini-2.5-pro", None), Some(json!({"thinkingBudget": 128})));
    assert_eq!(thinking(Some(ReasoningRequest { budget_tokens: Some(5000), include_thoughts: Some(false), ..Default::default() }), "models/gemini-2.5-pro", None),
        Some(json!({"thinkingBudget": 5000})));
    assert_eq!(thinking(effort(Effort::Medium), "gemini-3-pro-preview", None), Some(json!({"thinkingLevel": "HIGH", "includeThoughts": true})));
    assert_eq!(thinking(effort(Effort::Low), "gemini-3-pro-preview", None), Some(json!({"thinkingLevel": "LOW", "includeThoughts": true})));
    assert_eq!(thinking(effort(Effort::Medium), "gemini-3-flash-preview", None), Some(json!({"thinkingLevel": "MEDIUM", "includeThoughts": true})));
    assert_eq!(thinking(Some(ReasoningRequest { budget_tokens: Some(1024), ..Default::default() }), "gemini-3-flash-preview", None),
        Some(json!({"thinkingLevel": "MINIMAL", "includeThoughts": true})));
    assert_eq!(thinking(Some(ReasoningRequest { include_thoughts: Some(true), ..Default::default() }), "gemini-3-flash-preview", None),
        Some(json!({"includeThoughts": true})));
    // The configured effort applies when the caller says nothing, without thought text.
    assert_eq!(thinking(None, "gemini-3-flash-preview", Some("low")), Some(json!({"thinkingLevel": "LOW"})));
    assert_eq!(thinking(None, "gemini-3-flash-preview", None), None);
    assert_eq!(thinking(None, "gemini-3-flash-preview", Some("bogus")), None);
}

#[test]
fn encodes_count_tokens_bodies() {
    let mut req = claude_conversation();
    req.tools = vec![tool("get_weather", json!({"type": "object"}))];
    req.temperature = Some(1.0);
    let options = ModelOptions::default();
    let body = request::encode_count(&req, &target("gemini-2.5-flash", &options)).unwrap();
    let inner = &body["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert_eq!(inner["contents"], encode_with(&req, "gemini-2.5-flash")["contents"]);
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "Be nice.");
    assert_eq!(inner["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(inner.get("generationConfig"), None);
    assert_eq!(body.as_object().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------

#[test]
fn decodes_an_answer_with_thoughts_and_calls() {
    let r = response::decode(&parse(RESPONSE_TOOLS), meta()).unwrap();
    assert_eq!(r.meta, meta());
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning(Reasoning {
                text: "**Planning the lookup**\nThe user wants weather and time.".into(),
                signature: Some("CpoBAdHtim9dP2VhZ2xlX3NpZw==".into()),
                origin: Some(Protocol::Gemini),
                ..Reasoning::default()
            }),
            call("call_gw0123456789abcd_0", "get_weather", r#"{"city":"Paris"}"#),
            call("call_gw0123456789abcd_1", "get_time", r#"{"tz":"Europe/Paris"}"#),
        ]
    );
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage, Usage { input_tokens: 120, output_tokens: 230, cache_read_tokens: 64, cache_write_tokens: 0, reasoning_tokens: 200 });
}

#[test]
fn decodes_an_answer_with_a_signature_on_its_text() {
    let r = response::decode(&parse(RESPONSE_TEXT), meta()).unwrap();
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning(Reasoning { text: "**Answering**\nSimple question.".into(), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
            text("The capital of France is Paris."),
            gemini_sig("Q2lRQmRIdGltOHRleHRfc2ln"),
        ]
    );
    assert_eq!(r.stop, StopReason::EndTurn);
    assert_eq!(r.usage.output_tokens, 48);
}

#[test]
fn decodes_blocks_errors_ids_and_finish_reasons() {
    let r = response::decode(&parse(RESPONSE_BLOCKED), meta()).unwrap();
    assert_eq!((r.stop, r.parts.len(), r.usage.input_tokens), (StopReason::ContentFilter, 0, 9));

    let e = response::decode(&parse(ERROR_429), meta()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(e.message.contains("quota") && e.message.contains("22s"), "{}", e.message);

    let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"id": "fc7", "name": "f", "args": {"a": [1]}}}]}, "finishReason": "STOP"}]});
    let r = response::decode(&body, meta()).unwrap();
    assert_eq!(r.parts, vec![call("gcall_fc7", "f", r#"{"a":[1]}"#)]);

    for (reason, stop) in [
        ("MAX_TOKENS", StopReason::MaxTokens),
        ("SAFETY", StopReason::ContentFilter),
        ("RECITATION", StopReason::ContentFilter),
        ("PROHIBITED_CONTENT", StopReason::ContentFilter),
        ("MALFORMED_FUNCTION_CALL", StopReason::EndTurn),
        ("OTHER", StopReason::EndTurn),
    ] {
        let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": reason}]});
        assert_eq!(response::decode(&body, meta()).unwrap().stop, stop, "{reason}");
    }
    // A turn that failed to form its tool call, with nothing answered: a failed attempt
    // (a 502 the gateway retries), streamed or not, thoughts or not.
    let failed = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "plan", "thought": true}]},
        "finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "Malformed function call: print(default_api.f(a=))"}]});
    let e = response::decode(&failed, meta()).unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(e.message.contains("MALFORMED_FUNCTION_CALL") && e.message.contains("default_api.f"), "{}", e.message);
    let sse = format!("data: {failed}\r\n\r\n");
    let (events, end) = decode_stream(&[sse.as_bytes()]);
    assert_eq!(end.unwrap_err().status(), 502);
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));
    let bare = json!({"candidates": [{"finishReason": "UNEXPECTED_TOOL_CALL"}]});
    assert_eq!(response::decode(&bare, meta()).unwrap_err().status(), 502);
    // Passed through to a Gemini caller, it is the answer as Gemini gave it; an error
    // object still fails the attempt.
    let first = |v: &Value| crate::protocols::first_event_error(Protocol::Gemini, &crate::sse::Event { event: None, data: v.to_string(), id: None });
    assert!(first(&failed).is_none());
    assert_eq!(first(&parse(ERROR_429)).map(|e| e.kind), Some(ErrorKind::RateLimited));
    // Text before the failed call: the answer stands, ending the turn.
    let texted = json!({"candidates": [{"content": {"parts": [{"text": "Let me check."}]}, "finishReason": "MALFORMED_FUNCTION_CALL"}]});
    assert_eq!(response::decode(&texted, meta()).unwrap().stop, StopReason::EndTurn);
    // No finish reason in a whole answer: it simply ended.
    let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]});
    assert_eq!(response::decode(&body, meta()).unwrap().stop, StopReason::EndTurn);
    // A JSON array of chunks (streamGenerateContent without alt=sse).
    let body = json!([
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}
    ]);
    let r = response::decode(&body, meta()).unwrap();
    assert_eq!((r.text(), r.usage.total()), ("Hello".to_string(), 5));
    assert_eq!(response::decode(&json!("nope"), meta()).unwrap_err().kind, ErrorKind::UpstreamUnreachable);
}

fn rich_response() -> Response {
    Response {
        meta: meta(),
        parts: vec![
            Part::Reasoning(claude_thinking()),
            text("I'll look that up."),
            Part::Reasoning(responses_reasoning()),
            call("toolu_01X", "get_weather", r#"{"city":"Paris"}"#),
            call("toolu_01Y", "get_time", ""),
        ],
        stop: StopReason::ToolUse,
        usage: Usage { input_tokens: 100, output_tokens: 50, cache_read_tokens: 30, cache_write_tokens: 0, reasoning_tokens: 20 },
    }
}

#[test]
fn encodes_answers_for_gemini_clients() {
    let r = rich_response();
    let wire = parse(&response::encode(&r));
    let claude_sig = carrier::to_client(&claude_thinking(), Protocol::Gemini).unwrap();
    let responses_sig = carrier::to_client(&responses_reasoning(), Protocol::Gemini).unwrap();
    assert_eq!(
        wire,
        json!({
            "candidates": [{
                "content": {"parts": [
                    {"text": "Let me think \"exactly\".", "thought": true},
                    {"text": "I'll look that up.", "thoughtSignature": claude_sig},
                    {"text": "Summary of reasoning.", "thought": true},
                    {"functionCall": {"id": "toolu_01X", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": responses_sig},
                    {"functionCall": {"id": "toolu_01Y", "name": "get_time", "args": {}}}
                ], "role": "model"},
                "index": 0,
                "finishReason": "STOP"
            }],
            "modelVersion": "google.gemini-3-flash",
            "responseId": "gw0123456789abcdef99",
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 30, "totalTokenCount": 150, "thoughtsTokenCount": 20, "cachedContentTokenCount": 30}
        })
    );
    for (stop, reason) in [(StopReason::MaxTokens, "MAX_TOKENS"), (StopReason::ContentFilter, "SAFETY"), (StopReason::EndTurn, "STOP"), (StopReason::StopSequence, "STOP")] {
        let r = Response { meta: meta(), parts: vec![], stop, usage: Usage::default() };
        let wire = parse(&response::encode(&r));
        assert_eq!(wire["candidates"][0]["finishReason"], reason);
        assert_eq!(wire["candidates"][0]["content"]["parts"], json!([{"text": ""}]));
    }
    // A trailing reasoning keeps its signature on its own thought part.
    let r = Response { meta: meta(), parts: vec![text("x"), Part::Reasoning(claude_thinking())], stop: StopReason::MaxTokens, usage: Usage::default() };
    let parts = parse(&response::encode(&r))["candidates"][0]["content"]["parts"].clone();
    assert_eq!(parts[2], json!({"text": "", "thought": true, "thoughtSignature": claude_sig}));
}

/// The answer as the client sends it back as history, read again.
fn as_history(parts: Value, then: Value) -> Request {
    request::decode(&json!({"contents": [
        {"role": "user", "parts": [{"text": "question"}]},
        {"role": "model", "parts": parts},
        then
    ]}))
    .unwrap()
}

#[test]
fn answers_come_back_from_gemini_clients_as_they_went_out() {
    let r = rich_response();
    let parts = parse(&response::encode(&r))["candidates"][0]["content"]["parts"].clone();
    let req = as_history(
        parts,
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "toolu_01X", "name": "get_weather", "response": {"output": "sunny"}}},
            {"functionResponse": {"id": "toolu_01Y", "name": "get_time", "response": {"output": "noon"}}}
        ]}),
    );
    let mut expected = r.parts.clone();
    expected[4] = call("toolu_01Y", "get_time", "{}");
    assert_eq!(req.messages[1].parts, expected);
    let ids: Vec<&str> = req.messages[2].parts.iter().filter_map(|p| if let Part::ToolResult(t) = p { Some(t.call_id.as_str()) } else { None }).collect();
    assert_eq!(ids, vec!["toolu_01X", "toolu_01Y"]);

    // Also when the client drops thought parts (Gemini CLI): payloads survive; Claude's text too.
    let parts = parse(&response::encode(&r))["candidates"][0]["content"]["parts"].clone();
    let kept: Vec<Value> = parts.as_array().unwrap().iter().filter(|p| p.get("thought").is_none()).cloned().collect();
    let req = as_history(Value::Array(kept), json!({"role": "user", "parts": [{"text": "more"}]}));
    assert_eq!(req.messages[1].parts[0], Part::Reasoning(claude_thinking()));
    let Part::Reasoning(rr) = &req.messages[1].parts[2] else { panic!() };
    assert_eq!((rr.encrypted.as_deref(), rr.id.as_deref(), rr.origin), (Some("gAAAAABoEncrypted=="), Some("rs_68a1"), Some(Protocol::OpenAiResponses)));
}

#[test]
fn gemini_answers_go_back_to_gemini_with_signatures_in_place() {
    for fixture in [RESPONSE_TOOLS, RESPONSE_TEXT] {
        let wire = parse(fixture);
        let r = response::decode(&wire, meta()).unwrap();
        let req = Request { messages: vec![user(vec![text("question")]), assistant(r.parts.clone())], ..Request::default() };
        let body = encode_with(&req, "gemini-3-flash-preview");
        let original: Vec<Value> = wire["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("thought").is_none())
            .cloned()
            .collect();
        assert_eq!(body["contents"][1]["parts"], Value::Array(original));
    }
}

#[test]
fn response_round_trip_keeps_what_gemini_holds() {
    let r = Response {
        meta: meta(),
        parts: vec![
            Part::Reasoning(Reasoning { text: "plan".into(), signature: Some("c2ln".into()), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
            call("gcall_1", "f", r#"{"a":1}"#),
            call("gcall_2", "g", r#"{"b":[true,null]}"#),
        ],
        stop: StopReason::ToolUse,
        usage: Usage { input_tokens: 10, output_tokens: 9, cache_read_tokens: 4, cache_write_tokens: 0, reasoning_tokens: 5 },
    };
    let wire = parse(&response::encode(&r));
    let mut back = response::decode(&wire, meta()).unwrap();
    // Ids the gateway hands out come back marked as Gemini's own.
    for p in back.parts.iter_mut() {
        if let Part::ToolCall(c) = p {
            c.id = c.id.strip_prefix(request::OWN_ID_PREFIX).unwrap().to_string();
        }
    }
    assert_eq!(back, r);
}

#[test]
fn token_counts() {
    assert_eq!(response::decode_count(&json!({"totalTokens": 31, "promptTokensDetails": []})), Some(31));
    assert_eq!(response::decode_count(&json!({"error": {}})), None);
    assert_eq!(parse(&response::encode_count(12)), json!({"totalTokens": 12}));
}

#[test]
fn error_bodies() {
    let v = parse(ERROR_429);
    assert_eq!(
        super::error::message(&v).unwrap(),
        "You exceeded your current quota, please check your plan and billing details. (retry after 22s)"
    );
    assert_eq!(super::error::message(&json!([{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}])).as_deref(), Some("bad"));
    assert_eq!(super::error::message(&json!({"error": "plain"})).as_deref(), Some("plain"));
    assert_eq!(super::error::message(&json!({"error": {"status": "UNAVAILABLE"}})).as_deref(), Some("UNAVAILABLE"));
    assert_eq!(super::error::message(&json!({"message": "x"})), None);
    let e = crate::protocols::decode_error(Protocol::Gemini, 429, ERROR_429.as_bytes());
    assert_eq!(e.kind, ErrorKind::RateLimited);
    let e = super::error::from_body(&json!({"error": {"message": "m", "status": "DEADLINE_EXCEEDED"}})).unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    let rendered = parse(&super::error::render(&GatewayError::new(ErrorKind::Overloaded, "busy")));
    assert_eq!(rendered, json!({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}));
}

// ---------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------

/// Decodes SSE text fed in the given pieces; `Err` carries the events before the error.
fn decode_stream(pieces: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), GatewayError>) {
    crate::protocols::decode_sse(&mut stream::Decoder::new(meta()), pieces)
}

fn accumulate(events: &[StreamEvent]) -> Response {
    let mut acc = Accumulator::default();
    for e in events {
        acc.push(e);
    }
    acc.into_response().unwrap()
}

#[test]
fn stream_decode_is_the_same_at_every_split() {
    for fixture in [STREAM_TEXT, STREAM_TOOLS, STREAM_BLOCKED] {
        let bytes = fixture.as_bytes();
        let (whole, result) = decode_stream(&[bytes]);
        result.unwrap();
        for split in 0..=bytes.len() {
            let (events, result) = decode_stream(&[&bytes[..split], &bytes[split..]]);
            result.unwrap();
            assert_eq!(events, whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_stream(&singles).0, whole);
    }
}

#[test]
fn decodes_a_streamed_answer() {
    let (events, result) = decode_stream(&[STREAM_TEXT.as_bytes()]);
    result.unwrap();
    assert_eq!(events[0], StreamEvent::Start { meta: meta(), input_tokens: 40 });
    let thought = "**Weighing options**\nThe user asks about weather.";
    assert_eq!(
        events[1..],
        [
            StreamEvent::ReasoningDelta("**Weighing options**\nThe user asks".into()),
            StreamEvent::ReasoningDelta(" about weather.".into()),
            StreamEvent::ReasoningEnd(Reasoning { text: thought.into(), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
            StreamEvent::TextDelta("The weather".into()),
            StreamEvent::TextDelta(" is sunny, 24°C ☀️.".into()),
            StreamEvent::ReasoningEnd(Reasoning { signature: Some("AY89a18iU2lnbmF0dXJlX2VuZA==".into()), origin: Some(Protocol::Gemini), ..Reasoning::default() }),
            StreamEvent::Finish {
                stop: StopReason::EndTurn,
                usage: Usage { input_tokens: 40, output_tokens: 129, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 120 }
            },
        ]
    );
}

/// The `data:` payloads of an SSE text, as JSON.
fn sse_payloads(text: &str) -> Vec<Value> {
    let mut d = sse::Decoder::new();
    let mut events = d.feed(text.as_bytes());
    events.extend(d.finish().0);
    events.iter().map(|e| {
        assert_eq!(e.event, None, "Gemini streams have no event names");
        parse(&e.data)
    }).collect()
}

#[test]
fn streamed_and_whole_answers_decode_alike() {
    for fixture in [STREAM_TEXT, STREAM_TOOLS, STREAM_BLOCKED] {
        let (events, result) = decode_stream(&[fixture.as_bytes()]);
        result.unwrap();
        let whole = response::decode(&Value::Array(sse_payloads(fixture)), meta()).unwrap();
        assert_eq!(accumulate(&events), whole);
    }
    let (events, _) = decode_stream(&[STREAM_TOOLS.as_bytes()]);
    let r = accumulate(&events);
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.tool_calls().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["call_gw0123456789abcd_0", "call_gw0123456789abcd_1"]);
    assert!(matches!(&r.parts[0], Part::Reasoning(x) if x.signature.as_deref() == Some("CpoBAdHtim9dP2VhZ2xlX3NpZw==") && x.text.starts_with("**Planning**")));
    let (events, _) = decode_stream(&[STREAM_BLOCKED.as_bytes()]);
    assert_eq!(accumulate(&events).stop, StopReason::ContentFilter);
}

#[test]
fn stream_errors_and_truncation() {
    let (events, result) = decode_stream(&[STREAM_ERROR.as_bytes()]);
    let e = result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(e.message, "The model is overloaded. Please try again later.");
    assert_eq!(events.len(), 3, "start and two reasoning deltas came first");

    let (events, result) = decode_stream(&[STREAM_TRUNCATED.as_bytes()]);
    let e = result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UpstreamUnreachable);
    assert!(e.message.contains("ended early"));
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Finish { .. })));

    let (_, result) = decode_stream(&[b"data: {\"candidates\": [\n\n"]);
    assert_eq!(result.unwrap_err().kind, ErrorKind::UpstreamUnreachable);
    let (events, result) = decode_stream(&[b""]);
    assert!(events.is_empty() && result.is_err());
    // Chunks after the finish are ignored.
    let text = format!("{STREAM_TOOLS}data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"late\"}}]}}}}]}}\r\n\r\n");
    let (events, result) = decode_stream(&[text.as_bytes()]);
    result.unwrap();
    assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })));
}

fn stream_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start { meta: meta(), input_tokens: 100 },
        StreamEvent::ReasoningDelta("Let me think ".into()),
        StreamEvent::ReasoningDelta("\"exactly\".".into()),
        StreamEvent::ReasoningEnd(claude_thinking()),
        StreamEvent::TextDelta("I'll look".into()),
        StreamEvent::TextDelta(" that up.".into()),
        // Reasoning whose text arrives only at its end.
        StreamEvent::ReasoningEnd(responses_reasoning()),
        StreamEvent::ToolCallStart { id: "toolu_01X".into(), name: "get_weather".into() },
        StreamEvent::ToolCallDelta("{\"city\":".into()),
        StreamEvent::ToolCallDelta("\"Paris\"}".into()),
        StreamEvent::ToolCallStart { id: "toolu_01Y".into(), name: "get_time".into() },
        StreamEvent::Finish { stop: StopReason::ToolUse, usage: Usage { input_tokens: 100, output_tokens: 50, cache_read_tokens: 30, cache_write_tokens: 0, reasoning_tokens: 20 } },
    ]
}

#[test]
fn stream_encoder_writes_gemini_chunks() {
    let mut enc = stream::Encoder::new(StreamFraming::Sse);
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    for e in stream_events() {
        let before = out.len();
        enc.event(&e, &mut out);
        sizes.push(out.len() - before);
    }
    // Text and thoughts go out at once; a call waits for its last argument.
    assert_eq!(sizes[0], 0);
    assert!(sizes[1] > 0 && sizes[4] > 0);
    assert_eq!((sizes[7], sizes[8], sizes[9]), (0, 0, 0));
    assert!(sizes[10] > 0, "the first call went out when the second started");

    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("\n\n"));
    let chunks = sse_payloads(&text);
    let parts: Vec<Value> = chunks.iter().map(|c| c["candidates"][0]["content"]["parts"].clone()).collect();
    let claude_sig = carrier::to_client(&claude_thinking(), Protocol::Gemini).unwrap();
    let responses_sig = carrier::to_client(&responses_reasoning(), Protocol::Gemini).unwrap();
    assert_eq!(
        parts,
        vec![
            json!([{"text": "Let me think ", "thought": true}]),
            json!([{"text": "\"exactly\".", "thought": true}]),
            json!([{"text": "I'll look", "thoughtSignature": claude_sig}]),
            json!([{"text": " that up."}]),
            json!([{"text": "Summary of reasoning.", "thought": true}]),
            json!([{"functionCall": {"id": "toolu_01X", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": responses_sig}]),
            json!([{"functionCall": {"id": "toolu_01Y", "name": "get_time", "args": {}}}]),
        ]
    );
    for c in &chunks[..chunks.len() - 1] {
        assert_eq!(c["candidates"][0].get("finishReason"), None);
        assert_eq!(c.get("usageMetadata"), None);
        assert_eq!(c["responseId"], "gw0123456789abcdef99");
        assert_eq!(c["modelVersion"], "google.gemini-3-flash");
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"], json!({"promptTokenCount": 100, "candidatesTokenCount": 30, "totalTokenCount": 150, "thoughtsTokenCount": 20, "cachedContentTokenCount": 30}));

    // The streamed answer, kept as history one content per chunk, reads back as sent.
    let contents: Vec<Value> = std::iter::once(json!({"role": "user", "parts": [{"text": "q"}]}))
        .chain(chunks.iter().map(|c| c["candidates"][0]["content"].clone()))
        .collect();
    let req = request::decode(&json!({ "contents": contents })).unwrap();
    assert_eq!(req.messages[1].parts, rich_response().parts.into_iter().map(|p| match p {
        Part::ToolCall(c) if c.arguments.is_empty() => Part::ToolCall(ToolCall { arguments: "{}".into(), ..c }),
        p => p,
    }).collect::<Vec<_>>());

    // Our own decoder reads the encoder's stream.
    let (events, result) = decode_stream(&[text.as_bytes()]);
    result.unwrap();
    let r = accumulate(&events);
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage, Usage { input_tokens: 100, output_tokens: 50, cache_read_tokens: 30, cache_write_tokens: 0, reasoning_tokens: 20 });
    assert_eq!(r.tool_calls().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["gcall_toolu_01X", "gcall_toolu_01Y"]);
}

#[test]
fn stream_encoder_json_array_framing_and_errors() {
    let mut enc = stream::Encoder::new(StreamFraming::JsonArray);
    let mut out = Vec::new();
    for e in stream_events() {
        enc.event(&e, &mut out);
    }
    enc.event(&StreamEvent::TextDelta("after the end".into()), &mut out);
    let array = parse(std::str::from_utf8(&out).unwrap());
    assert_eq!(array.as_array().unwrap().len(), 7);
    assert!(!String::from_utf8_lossy(&out).contains("after the end"));

    // An error mid-stream: the error object, then the end.
    let mut enc = stream::Encoder::new(StreamFraming::JsonArray);
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 0 }, &mut out);
    enc.event(&StreamEvent::TextDelta("partial".into()), &mut out);
    enc.error(&GatewayError::new(ErrorKind::Overloaded, "upstream busy"), &mut out);
    enc.event(&StreamEvent::TextDelta("more".into()), &mut out);
    let array = parse(std::str::from_utf8(&out).unwrap());
    assert_eq!(array[1], json!({"error": {"code": 503, "message": "upstream busy", "status": "UNAVAILABLE"}}));
    assert_eq!(array.as_array().unwrap().len(), 2);

    let mut enc = stream::Encoder::new(StreamFraming::Sse);
    let mut out = Vec::new();
    enc.error(&GatewayError::new(ErrorKind::RateLimited, "slow down"), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "data: {\"error\":{\"code\":429,\"message\":\"slow down\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n");

    // Nothing but a finish: one chunk with an empty text part.
    let mut enc = stream::Encoder::new(StreamFraming::Sse);
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 0 }, &mut out);
    enc.event(&StreamEvent::Finish { stop: StopReason::MaxTokens, usage: Usage::default() }, &mut out);
    let chunks = sse_payloads(&String::from_utf8(out).unwrap());
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["candidates"][0]["content"]["parts"], json!([{"text": ""}]));
    assert_eq!(chunks[0]["candidates"][0]["finishReason"], "MAX_TOKENS");
}

// ---------------------------------------------------------------------------------
// Garbage in: never a panic
// ---------------------------------------------------------------------------------

use crate::protocols::TestRng as Rng;

const KEYS: &[&str] = &[
    "contents", "role", "parts", "text", "thought", "thoughtSignature", "thought_signature", "inlineData", "mimeType", "data",
    "fileData", "fileUri", "functionCall", "function_call", "name", "args", "id", "functionResponse", "response", "output", "error",
    "systemInstruction", "tools", "functionDeclarations", "parameters", "parametersJsonSchema", "type", "properties", "items",
    "nullable", "toolConfig", "functionCallingConfig", "mode", "allowedFunctionNames", "generationConfig", "maxOutputTokens",
    "temperature", "topK", "seed", "stopSequences", "responseMimeType", "responseSchema", "thinkingConfig", "thinkingBudget",
    "thinkingLevel", "includeThoughts", "candidates", "content", "finishReason", "usageMetadata", "promptTokenCount",
    "candidatesTokenCount", "thoughtsTokenCount", "promptFeedback", "blockReason", "index", "code", "message", "status",
    "generateContentRequest", "executableCode", "codeExecutionResult", "anyOf", "labels",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 4 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(100_000) as i64 - 50_000),
        3 => json!(-1.5e300),
        4 => json!(["user", "model", "STOP", "OBJECT", "ANY", "", "AUTO", "MAX_TOKENS", "R0lG", "image/png", "HIGH"][rng.below(11) as usize]),
        5 => json!("\u{0}\u{fffd}é"),
        6 | 7 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                let k = KEYS[rng.below(KEYS.len() as u64) as usize];
                m.insert(k.into(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let options = ModelOptions { reasoning_effort: Some("high".into()), max_tokens: Some(10), ..ModelOptions::default() };
    for _ in 0..4000 {
        let v = random_value(&mut rng, 0);
        if let Ok(req) = request::decode(&v) {
            let _ = request::encode(&req, &target("gemini-2.5-pro", &options));
            let _ = request::encode_count(&req, &target("gemini-3-pro-preview", &options));
        }
        let _ = response::decode(&v, meta());
        let _ = super::error::message(&v);
        let _ = response::decode_count(&v);
        let mut d = stream::Decoder::new(meta());
        let mut out = Vec::new();
        let event = sse::Event { event: None, data: v.to_string(), id: None };
        let _ = d.event(&event, &mut out);
        let _ = d.finish(&mut out);
    }
    // Every prefix of every fixture.
    for fixture in [REQUEST_RICH, RESPONSE_TOOLS, RESPONSE_TEXT, STREAM_TEXT, STREAM_TOOLS, ERROR_429] {
        let bytes = fixture.as_bytes();
        for cut in 0..bytes.len() {
            let piece = &bytes[..cut];
            if let Ok(v) = serde_json::from_slice::<Value>(piece) {
                let _ = request::decode(&v);
                let _ = response::decode(&v, meta());
            }
            let _ = decode_stream(&[piece]);
        }
    }
    // Random bytes through the stream decoder.
    for _ in 0..300 {
        let bytes: Vec<u8> = (0..rng.below(200)).map(|_| b"data: {}[]\"\r\n:x"[rng.below(15) as usize]).collect();
        let _ = decode_stream(&[&bytes]);
    }
    // Odd IR through the encoders.
    let odd = Request {
        system: vec![Part::Reasoning(Reasoning::default()), text("")],
        messages: vec![
            user(vec![Part::ToolResult(ToolResult { call_id: String::new(), name: Some(String::new()), content: vec![], is_error: true })]),
            assistant(vec![gemini_sig(""), gemini_sig("x"), Part::ToolResult(ToolResult { call_id: "a".into(), name: None, content: vec![], is_error: false })]),
            assistant(vec![call("", "", "[1,2"), Part::Image(Media::FileId("files/x".into()))]),
            user(vec![]),
        ],
        tools: vec![tool("t", json!("not a schema"))],
        tool_choice: Some(ToolChoice::Allowed { names: vec![], required: false }),
        seed: Some(i64::MIN),
        ..Request::default()
    };
    let _ = request::encode(&odd, &target("", &options));
    let r = Response { meta: meta(), parts: odd.messages.iter().flat_map(|m| m.parts.clone()).collect(), stop: StopReason::EndTurn, usage: Usage::default() };
    let _ = response::encode(&r);
    let mut enc = stream::Encoder::new(StreamFraming::JsonArray);
    let mut out = Vec::new();
    enc.event(&StreamEvent::ToolCallDelta("x".into()), &mut out);
    enc.event(&StreamEvent::ReasoningEnd(Reasoning::default()), &mut out);
    enc.event(&StreamEvent::Finish { stop: StopReason::EndTurn, usage: Usage { input_tokens: u64::MAX, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 5 } }, &mut out);
}

#[test]
fn gemini_schemas_become_json_schema() {
    let schema = json!({
        "type": "OBJECT",
        "properties": {
            "n": {"type": "INTEGER", "enum": ["1", "2"], "format": "int32"},
            "s": {"type": "STRING", "format": "enum", "enum": ["a"], "example": "a"},
            "o": {"anyOf": [{"type": "NUMBER"}, {"type": "NULL"}]},
            "l": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {"x": {"type": "BOOLEAN", "nullable": true}}}, "maxItems": "3"}
        },
        "propertyOrdering": ["n", "s", "o", "l"]
    });
    assert_eq!(
        request::to_json_schema(&schema),
        json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "enum": [1, 2], "format": "int32"},
                "s": {"type": "string", "enum": ["a"]},
                "o": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                "l": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": ["boolean", "null"]}}}, "maxItems": 3}
            }
        })
    );
    // Effort "none" never asks for thought text.
    let req = Request { messages: vec![user(vec![text("hi")])], reasoning: Some(ReasoningRequest { effort: Some(Effort::None), ..Default::default() }), ..Request::default() };
    assert_eq!(encode_with(&req, "gemini-3-flash-preview")["generationConfig"]["thinkingConfig"], json!({"thinkingLevel": "MINIMAL"}));
    assert_eq!(encode_with(&req, "gemini-2.5-flash")["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 0}));
}

#[test]
fn tool_results_with_text_stay_in_the_current_turn() {
    let req = Request {
        messages: vec![
            user(vec![text("go")]),
            assistant(vec![call("toolu_1", "f", "{}")]),
            user(vec![result("toolu_1", "r"), text("<system-reminder>keep going</system-reminder>")]),
            assistant(vec![call("toolu_2", "f", "{}")]),
            user(vec![result("toolu_2", "r")]),
        ],
        ..Request::default()
    };
    let body = encode_with(&req, "gemini-3-flash-preview");
    assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], json!(request::DUMMY_SIGNATURE));
    assert_eq!(body["contents"][3]["parts"][0]["thoughtSignature"], json!(request::DUMMY_SIGNATURE));
}

#[test]
fn stream_chunks_are_written_as_response_chunk_writes_them() {
    // The encoder writes its delta chunks from a template; they must stay `response::chunk`'s bytes.
    let mut enc = stream::Encoder::new(StreamFraming::Sse);
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 1 }, &mut out);
    enc.event(&StreamEvent::TextDelta("say \"hi\"\n".into()), &mut out);
    let expected = response::chunk(&meta(), json!([{"text": "say \"hi\"\n"}]), None, None).to_string();
    assert_eq!(String::from_utf8(out).unwrap(), format!("data: {expected}\n\n"));
}
