use serde_json::{json, Value};

use super::{request, response, stream};
use crate::carrier;
use crate::config::{ModelOptions, Quirks};
use crate::error::{ErrorKind, GatewayError};
use crate::ir::*;
use crate::protocols::{Protocol, StreamDecoder, StreamEncoder, Target};
use crate::sse;

const REQUEST_RICH: &str = include_str!("../../../tests/fixtures/openai_responses/request_rich.json");
const RESPONSE_TOOL: &str = include_str!("../../../tests/fixtures/openai_responses/response_reasoning_tool.json");
const RESPONSE_INCOMPLETE: &str = include_str!("../../../tests/fixtures/openai_responses/response_incomplete.json");
const STREAM_TOOL: &str = include_str!("../../../tests/fixtures/openai_responses/stream_reasoning_tool.sse");
const STREAM_INCOMPLETE: &str = include_str!("../../../tests/fixtures/openai_responses/stream_incomplete.sse");
const STREAM_RAW_REASONING: &str = include_str!("../../../tests/fixtures/openai_responses/stream_reasoning_text.sse");
const STREAM_TRUNCATED: &str = include_str!("../../../tests/fixtures/openai_responses/stream_truncated.sse");
const STREAM_ERROR_NESTED: &str = include_str!("../../../tests/fixtures/openai_responses/stream_error_nested.sse");
const STREAM_ERROR_FLAT: &str = include_str!("../../../tests/fixtures/openai_responses/stream_error_flat.sse");
const STREAM_FAILED: &str = include_str!("../../../tests/fixtures/openai_responses/stream_failed.sse");

const R: Protocol = Protocol::OpenAiResponses;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn meta() -> ResponseMeta {
    ResponseMeta { id: "gw123".into(), model: "resp.gpt-5".into(), created: 1_760_000_000 }
}

fn target<'a>(options: &'a ModelOptions, quirks: Quirks) -> Target<'a> {
    Target { model: "gpt-5", options, quirks }
}

fn encode(req: &Request) -> Value {
    let options = ModelOptions::default();
    request::encode(req, &target(&options, Quirks::default())).unwrap()
}

fn text(s: &str) -> Part {
    Part::Text(s.into())
}

fn user(parts: Vec<Part>) -> Message {
    Message { role: Role::User, parts }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message { role: Role::Assistant, parts }
}

fn call(id: &str, name: &str, args: &str) -> Part {
    Part::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: args.into() })
}

fn native_reasoning(text: &str, enc: &str) -> Reasoning {
    Reasoning { text: text.into(), encrypted: Some(enc.into()), id: Some("rs_up9".into()), origin: Some(R), ..Default::default() }
}

fn claude_reasoning() -> Reasoning {
    Reasoning {
        text: "Let me think \"exactly\".".into(),
        signature: Some("EqQBCkYIBxgCKkA+/=".into()),
        origin: Some(Protocol::Claude),
        ..Default::default()
    }
}

// ------------------------------------------------------------------------------------
// Request decode (ingress)

#[test]
fn decodes_a_rich_request() {
    let req = request::decode(&parse(REQUEST_RICH)).unwrap();
    assert_eq!(req.system, vec![text("You are a coding agent."), text("Prefer short answers."), text("Be kind.")]);
    let expected_messages = vec![
        user(vec![
            text("What is in these files?"),
            Part::Image(Media::Url { url: "https://example.test/cat.png".into(), media_type: None }),
            Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }),
            Part::Image(Media::FileId("file-img1".into())),
            Part::File {
                media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBERi0xLjQ=".into() },
                filename: Some("spec.pdf".into()),
            },
            Part::File { media: Media::FileId("file-doc2".into()), filename: None },
            Part::File { media: Media::Url { url: "https://example.test/notes.pdf".into(), media_type: None }, filename: None },
        ]),
        assistant(vec![
            Part::Reasoning(Reasoning {
                text: "**Reading files**\n\nThen the weather.".into(),
                encrypted: Some("gAAAAABoEncrypted1==".into()),
                id: Some("rs_0a1".into()),
                origin: Some(R),
                ..Default::default()
            }),
            text("Let me check the weather too."),
            call("call_w1", "get_weather", "{\"city\":\"Paris\"}"),
            call("call_w2", "get_weather", "{\"city\":\"Rome\"}"),
        ]),
        user(vec![
            Part::ToolResult(ToolResult {
                call_id: "call_w1".into(),
                name: Some("get_weather".into()),
                content: vec![text("18C, sunny")],
                is_error: false,
            }),
            Part::ToolResult(ToolResult {
                call_id: "call_w2".into(),
                name: Some("get_weather".into()),
                content: vec![
                    text("22C"),
                    Part::Image(Media::Url { url: "https://example.test/rome.png".into(), media_type: None }),
                ],
                is_error: false,
            }),
        ]),
        assistant(vec![
            Part::Reasoning(Reasoning { id: Some("rs_0a5".into()), origin: Some(R), ..Default::default() }),
            text("I can't share that."),
        ]),
        user(vec![text("Thanks!")]),
    ];
    assert_eq!(req.messages, expected_messages);
    assert_eq!(
        req.tools,
        vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Weather for a city".into()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}),
                strict: Some(true),
            },
            Tool { name: "noop".into(), description: None, parameters: json!({"type": "object", "properties": {}}), strict: None },
        ]
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Allowed { names: vec!["get_weather".into()], required: true }));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(
        req.reasoning,
        Some(ReasoningRequest { effort: Some(Effort::High), budget_tokens: None, include_thoughts: Some(true), disabled: false })
    );
    assert_eq!(req.max_output_tokens, Some(4096));
    assert_eq!(req.temperature, Some(0.5));
    assert_eq!(req.top_p, Some(0.9));
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            strict: Some(true),
            description: Some("The answer".into()),
        })
    );
    assert_eq!(req.user.as_deref(), Some("user-42"));
    assert_eq!(req.metadata, json!({"trace": "t-1"}).as_object().cloned());
    assert!(req.stream);
    assert_eq!(req.store, Some(false));
    assert_eq!(req.previous_response_id.as_deref(), Some("resp_prev1"));
    assert!(req.stop.is_empty() && req.top_k.is_none() && req.seed.is_none());
}

#[test]
fn decodes_simple_forms() {
    let req = request::decode(&json!({"model": "m", "input": "Hi", "instructions": "Sys"})).unwrap();
    assert_eq!(req.system, vec![text("Sys")]);
    assert_eq!(req.messages, vec![user(vec![text("Hi")])]);
    assert!(!req.stream);
    assert_eq!(req.reasoning, None);

    let req = request::decode(&json!({"input": [], "tool_choice": {"type": "function", "name": "f"}, "reasoning": {"effort": "none", "summary": null}, "text": {"format": {"type": "json_object"}}, "user": "u1", "safety_identifier": "s1"})).unwrap();
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("f".into())));
    assert_eq!(req.reasoning, Some(ReasoningRequest { effort: Some(Effort::None), disabled: true, ..Default::default() }));
    assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(req.user.as_deref(), Some("u1"));
    for (choice, expected) in [("auto", ToolChoice::Auto), ("none", ToolChoice::None), ("required", ToolChoice::Required)] {
        assert_eq!(request::decode(&json!({"tool_choice": choice})).unwrap().tool_choice, Some(expected));
    }
    // Null reasoning summary: thoughts not requested; `{}` reasoning: nothing asked.
    assert_eq!(request::decode(&json!({"reasoning": {}})).unwrap().reasoning, None);
    let req = request::decode(&json!({"reasoning": {"summary": "auto"}})).unwrap();
    assert_eq!(req.reasoning.unwrap().include_thoughts, Some(true));
    // Consecutive user messages stay separate; a user message after tool outputs starts a new one.
    let req = request::decode(&json!({"input": [
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
        {"type": "function_call_output", "call_id": "c1", "output": "x"},
        {"role": "user", "content": "c"}
    ]}))
    .unwrap();
    assert_eq!(req.messages.len(), 4);
    assert_eq!(
        req.messages[2].parts,
        vec![Part::ToolResult(ToolResult { call_id: "c1".into(), name: None, content: vec![text("x")], is_error: false })]
    );
}

fn err_of(body: Value) -> GatewayError {
    request::decode(&body).expect_err(&body.to_string())
}

#[test]
fn rejects_what_cannot_be_converted() {
    let e = err_of(json!({"input": [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "msg_9"}]}));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!(e.param.as_deref(), Some("input[1]"));
    assert!(e.message.contains("item_reference") && e.message.contains("msg_9") && e.message.contains("passthrough"), "{}", e.message);

    let e = err_of(json!({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}));
    assert_eq!(e.status(), 400);
    assert_eq!(e.param.as_deref(), Some("tools[1].type"));
    assert!(e.message.contains("'file_search'"), "{}", e.message);
    // A forced hosted search cannot be honoured by another provider.
    let e = err_of(json!({"tool_choice": {"type": "web_search_preview"}}));
    assert!(e.message.contains("web_search_preview"));
    let e = err_of(json!({"input": [{"type": "local_shell_call", "id": "lsh_1"}]}));
    assert_eq!(e.param.as_deref(), Some("input[0].type"));
    let e = err_of(json!({"conversation": "conv_1", "input": "x"}));
    assert_eq!(e.param.as_deref(), Some("conversation"));
}

#[test]
fn hosted_web_search_is_left_out() {
    // What Codex sends by default: its hosted search next to its function tools, and a
    // search OpenAI ran earlier in the session.
    let body = json!({
        "input": [
            {"role": "user", "content": "look it up"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "rust 2027"}},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found it"}]},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
            {"type": "web_search", "external_web_access": false},
            {"type": "web_search_preview"}
        ]
    });
    let req = request::decode(&body).unwrap();
    assert_eq!(req.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["shell"]);
    assert_eq!(req.dropped_tools, ["web_search", "web_search_preview"]);
    let texts: Vec<_> = req.messages.iter().map(|m| (m.role, m.parts.len())).collect();
    assert_eq!(texts, [(Role::User, 1), (Role::Assistant, 1), (Role::User, 1)]);
}

#[test]
fn wrong_types_name_the_parameter() {
    let cases = [
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"max_output_tokens": -5}), "max_output_tokens"),
        (json!({"stream": "yes"}), "stream"),
        (json!({"input": 3}), "input"),
        (json!({"instructions": ["a"]}), "instructions"),
        (json!({"input": [{"role": "user", "content": 5}]}), "input[0].content"),
        (json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}), "input[0].content[0].text"),
        (json!({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}), "input[0].content[0]"),
        (json!({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}), "input[0].content[0].type"),
        (json!({"input": [{"role": "tool", "content": "x"}]}), "input[0].role"),
        (json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}), "input[0].call_id"),
        (json!({"input": [{"type": "function_call_output", "call_id": "c"}]}), "input[0].output"),
        (json!({"input": ["hello"]}), "input[0]"),
        (json!({"tools": [{"type": "function"}]}), "tools[0].name"),
        (json!({"tools": {}}), "tools"),
        (json!({"tool_choice": "sometimes"}), "tool_choice"),
        (json!({"reasoning": {"effort": "extreme"}}), "reasoning.effort"),
        (json!({"reasoning": "high"}), "reasoning"),
        (json!({"text": {"format": {"type": "yaml"}}}), "text.format.type"),
        (json!({"metadata": [1]}), "metadata"),
        (json!({"previous_response_id": 7}), "previous_response_id"),
    ];
    for (body, param) in cases {
        let e = err_of(body.clone());
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
    assert_eq!(err_of(json!([1])).kind, ErrorKind::InvalidRequest);
}

#[test]
fn reasoning_from_other_providers_comes_back_through_encrypted_content() {
    // A Claude answer given to a Responses client…
    let answer = Response {
        meta: meta(),
        parts: vec![Part::Reasoning(claude_reasoning()), call("toolu_1", "f", "{}")],
        stop: StopReason::ToolUse,
        usage: Usage::default(),
    };
    let body = parse(&response::encode(&answer));
    let item = body["output"][0].clone();
    assert_eq!(item["type"], "reasoning");
    assert!(item["id"].as_str().unwrap().starts_with("rs_"));
    // …is echoed back on the next turn, and recognised as Claude's.
    let next = json!({"input": [{"role": "user", "content": "q"}, item, body["output"][1].clone(),
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"}]});
    let req = request::decode(&next).unwrap();
    assert_eq!(req.messages[1].parts[0], Part::Reasoning(claude_reasoning()));
    assert_eq!(req.messages[1].parts[1], call("toolu_1", "f", "{}"));
    // Which a Responses upstream drops and never turns into text.
    let out = encode(&req);
    let items = out["input"].as_array().unwrap();
    assert!(items.iter().all(|i| i["type"] != "reasoning"));
    assert!(!out.to_string().contains("exactly"));

    // Native reasoning passes natively, keeping the upstream's item id and payload.
    let r = native_reasoning("sum", "gAAAAenc");
    let answer = Response { meta: meta(), parts: vec![Part::Reasoning(r.clone()), text("hi")], stop: StopReason::EndTurn, usage: Usage::default() };
    let body = parse(&response::encode(&answer));
    assert_eq!(body["output"][0]["id"], "rs_up9");
    assert_eq!(body["output"][0]["encrypted_content"], "gAAAAenc");
    let req = request::decode(&json!({"input": [body["output"][0].clone()]})).unwrap();
    assert_eq!(req.messages[0].parts[0], Part::Reasoning(r));
}

// ------------------------------------------------------------------------------------
// Request encode (egress)

#[test]
fn encodes_the_rich_request_by_the_rules() {
    let req = request::decode(&parse(REQUEST_RICH)).unwrap();
    let body = encode(&req);
    assert_eq!(body["model"], "gpt-5");
    assert_eq!(body["instructions"], "You are a coding agent.\n\nPrefer short answers.\n\nBe kind.");
    let expected_input = json!([
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is in these files?"},
            {"type": "input_image", "image_url": "https://example.test/cat.png"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "input_image", "file_id": "file-img1"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0xLjQ=", "filename": "spec.pdf"},
            {"type": "input_file", "file_id": "file-doc2"},
            {"type": "input_file", "file_url": "https://example.test/notes.pdf"}
        ]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Reading files**\n\nThen the weather."}], "encrypted_content": "gAAAAABoEncrypted1=="},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check the weather too."}]},
        {"type": "function_call", "call_id": "call_w1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "call_w2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
        {"type": "function_call_output", "call_id": "call_w1", "output": "18C, sunny"},
        {"type": "function_call_output", "call_id": "call_w2", "output": [
            {"type": "input_text", "text": "22C"}, {"type": "input_image", "image_url": "https://example.test/rome.png"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I can't share that."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}
    ]);
    assert_eq!(body["input"], expected_input);
    assert_eq!(body["tools"], json!([
        {"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}, "strict": true},
        {"type": "function", "name": "noop", "parameters": {"type": "object", "properties": {}}, "strict": false}
    ]));
    assert_eq!(body["tool_choice"], json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]}));
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["reasoning"], json!({"effort": "high", "summary": "auto"}));
    assert_eq!(body["max_output_tokens"], 4096);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["text"], json!({"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": true, "description": "The answer"}}));
    assert_eq!(body["user"], "user-42");
    assert_eq!(body["metadata"], json!({"trace": "t-1"}));
    assert_eq!(body["store"], false);
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["previous_response_id"], "resp_prev1");
    assert_eq!(body["stream"], true);
}

#[test]
fn assistant_history_never_uses_input_text() {
    let req = Request {
        messages: vec![user(vec![text("q")]), assistant(vec![text("a1"), text("a2")]), user(vec![text("q2")])],
        ..Default::default()
    };
    let body = encode(&req);
    for item in body["input"].as_array().unwrap() {
        for part in item["content"].as_array().unwrap() {
            let expected = if item["role"] == "assistant" { "output_text" } else { "input_text" };
            assert_eq!(part["type"], expected, "{item}");
        }
    }
    assert_eq!(body["input"][1]["content"].as_array().unwrap().len(), 2);
}

#[test]
fn drops_what_responses_rejects() {
    let req = Request {
        messages: vec![user(vec![text("q")])],
        stop: vec!["END".into()],
        top_k: Some(40),
        seed: Some(7),
        presence_penalty: Some(0.1),
        frequency_penalty: Some(0.2),
        include_usage: true,
        ..Default::default()
    };
    let body = encode(&req);
    for key in ["stop", "top_k", "seed", "presence_penalty", "frequency_penalty", "stream_options", "max_output_tokens", "instructions", "reasoning", "tools", "tool_choice"] {
        assert!(body.get(key).is_none(), "{key} in {body}");
    }
    assert_eq!(body["stream"], false);
}

#[test]
fn system_goes_to_instructions_or_a_developer_message() {
    let req = Request { system: vec![text("One"), text("Two")], messages: vec![user(vec![text("q")])], ..Default::default() };
    let options = ModelOptions::default();
    let quirks = Quirks { no_instructions: true, no_previous_response_id: false };
    let body = request::encode(&req, &target(&options, quirks)).unwrap();
    assert!(body.get("instructions").is_none());
    assert_eq!(body["input"][0], json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "One\n\nTwo"}]}));
    assert_eq!(body["input"][1]["role"], "user");

    // Truncation only when configured.
    let long = "é".repeat(50);
    let req = Request { system: vec![Part::Text(long.clone())], ..Default::default() };
    assert_eq!(encode(&req)["instructions"], long);
    let options = ModelOptions { max_instructions_chars: Some(10), ..Default::default() };
    let body = request::encode(&req, &target(&options, Quirks::default())).unwrap();
    assert_eq!(body["instructions"], "é".repeat(10));
    let body = request::encode(&req, &target(&options, quirks)).unwrap();
    assert_eq!(body["input"][0]["content"][0]["text"], "é".repeat(10));
}

#[test]
fn previous_response_id_and_store() {
    let req = Request { previous_response_id: Some("resp_1".into()), store: Some(true), ..Default::default() };
    let body = encode(&req);
    assert_eq!(body["previous_response_id"], "resp_1");
    assert_eq!(body["store"], true);
    let options = ModelOptions::default();
    let quirks = Quirks { no_instructions: false, no_previous_response_id: true };
    let body = request::encode(&req, &target(&options, quirks)).unwrap();
    assert!(body.get("previous_response_id").is_none());

    // A reasoning item without payload is a reference: sent only when stored.
    let r = Reasoning { text: "s".into(), id: Some("rs_5".into()), origin: Some(R), ..Default::default() };
    let mut req = Request { messages: vec![assistant(vec![Part::Reasoning(r), text("a")])], ..Default::default() };
    assert_eq!(encode(&req)["input"].as_array().unwrap().len(), 1);
    req.store = Some(true);
    let body = encode(&req);
    assert_eq!(body["input"][0], json!({"type": "reasoning", "id": "rs_5", "summary": [{"type": "summary_text", "text": "s"}]}));
}

#[test]
fn reasoning_controls() {
    let options = |effort: Option<&str>| ModelOptions { reasoning_effort: effort.map(String::from), ..Default::default() };
    let body_with = |req: &Request, opts: &ModelOptions| request::encode(req, &target(opts, Quirks::default())).unwrap();
    let plain = Request::default();
    assert_eq!(body_with(&plain, &options(Some("low")))["reasoning"], json!({"effort": "low"}));
    for off in ["off", "none", "disable", "disabled"] {
        assert!(body_with(&plain, &options(Some(off))).get("reasoning").is_none(), "{off}");
    }
    let asked = Request { reasoning: Some(ReasoningRequest { effort: Some(Effort::Minimal), ..Default::default() }), ..Default::default() };
    // Asked-for reasoning is shown unless the caller said not to.
    assert_eq!(body_with(&asked, &options(Some("high")))["reasoning"], json!({"effort": "minimal", "summary": "auto"}));
    let hidden = Request { reasoning: Some(ReasoningRequest { effort: Some(Effort::Low), include_thoughts: Some(false), ..Default::default() }), ..Default::default() };
    assert_eq!(body_with(&hidden, &options(None))["reasoning"], json!({"effort": "low"}));
    let budget = Request { reasoning: Some(ReasoningRequest { budget_tokens: Some(3000), include_thoughts: Some(true), ..Default::default() }), ..Default::default() };
    assert_eq!(body_with(&budget, &options(None))["reasoning"], json!({"effort": "low", "summary": "auto"}));
    let disabled = Request { reasoning: Some(ReasoningRequest { disabled: true, include_thoughts: Some(true), ..Default::default() }), ..Default::default() };
    assert_eq!(body_with(&disabled, &options(Some("high")))["reasoning"], json!({"effort": "none"}));
    let thoughts = Request { reasoning: Some(ReasoningRequest { include_thoughts: Some(true), ..Default::default() }), ..Default::default() };
    assert_eq!(body_with(&thoughts, &options(None))["reasoning"], json!({"summary": "auto"}));
    // Config max tokens as the default.
    let opts = ModelOptions { max_tokens: Some(1234), ..Default::default() };
    assert_eq!(body_with(&plain, &opts)["max_output_tokens"], 1234);
    let own = Request { max_output_tokens: Some(99), ..Default::default() };
    assert_eq!(body_with(&own, &opts)["max_output_tokens"], 99);
    let tiny = Request { max_output_tokens: Some(1), ..Default::default() };
    assert_eq!(body_with(&tiny, &opts)["max_output_tokens"], 16);
}

#[test]
fn tool_choices_and_formats() {
    let cases = [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (ToolChoice::Named("f".into()), json!({"type": "function", "name": "f"})),
        (ToolChoice::Allowed { names: vec!["a".into(), "b".into()], required: false }, json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]})),
    ];
    for (choice, wire) in cases {
        let req = Request { tool_choice: Some(choice.clone()), ..Default::default() };
        let body = encode(&req);
        assert_eq!(body["tool_choice"], wire);
        assert_eq!(request::decode(&body).unwrap().tool_choice, Some(choice));
    }
    for format in [ResponseFormat::Text, ResponseFormat::JsonObject, ResponseFormat::JsonSchema { name: "n".into(), schema: json!({"type": "object"}), strict: None, description: None }] {
        let req = Request { response_format: Some(format.clone()), ..Default::default() };
        assert_eq!(request::decode(&encode(&req)).unwrap().response_format, Some(format));
    }
}

#[test]
fn request_round_trips_through_the_wire() {
    let req = Request {
        system: vec![text("Be brief.")],
        messages: vec![
            user(vec![
                text("Look"),
                Part::Image(Media::Base64 { media_type: "image/jpeg".into(), data: "/9j/4AAQ".into() }),
                Part::File { media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBE".into() }, filename: Some("a.pdf".into()) },
            ]),
            assistant(vec![
                Part::Reasoning(Reasoning { text: "plan".into(), encrypted: Some("gAAAA1".into()), origin: Some(R), ..Default::default() }),
                call("call_1", "f", "{\"x\":1}"),
                Part::Reasoning(Reasoning { encrypted: Some("gAAAA2".into()), origin: Some(R), ..Default::default() }),
                call("call_2", "g", "{}"),
            ]),
            user(vec![
                Part::ToolResult(ToolResult { call_id: "call_1".into(), name: Some("f".into()), content: vec![text("1")], is_error: false }),
                Part::ToolResult(ToolResult { call_id: "call_2".into(), name: Some("g".into()), content: vec![text("2")], is_error: false }),
            ]),
            assistant(vec![text("done")]),
            user(vec![text("more")]),
        ],
        tools: vec![Tool { name: "f".into(), description: Some("d".into()), parameters: json!({"type": "object"}), strict: Some(false) }],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        reasoning: Some(ReasoningRequest { effort: Some(Effort::Medium), include_thoughts: Some(true), ..Default::default() }),
        max_output_tokens: Some(100),
        temperature: Some(1.0),
        top_p: Some(0.5),
        user: Some("u".into()),
        metadata: json!({"k": "v"}).as_object().cloned(),
        stream: true,
        store: Some(false),
        previous_response_id: Some("resp_0".into()),
        ..Default::default()
    };
    let body = encode(&req);
    // P-R2: each reasoning item sits right before the call it produced.
    let kinds: Vec<&str> = body["input"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "reasoning", "function_call", "reasoning", "function_call", "function_call_output", "function_call_output", "message", "message"]);
    assert_eq!(request::decode(&body).unwrap(), req);
}

#[test]
fn count_body_is_the_prompt_only() {
    let req = request::decode(&parse(REQUEST_RICH)).unwrap();
    let options = ModelOptions { max_tokens: Some(10), ..Default::default() };
    let body = request::encode_count(&req, &target(&options, Quirks::default())).unwrap();
    for key in ["stream", "store", "include", "max_output_tokens", "temperature", "top_p", "user", "metadata"] {
        assert!(body.get(key).is_none(), "{key}");
    }
    let full = encode(&req);
    for key in ["model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text", "previous_response_id"] {
        assert_eq!(body[key], full[key], "{key}");
    }
}

// ------------------------------------------------------------------------------------
// Responses (non-streamed)

#[test]
fn decodes_an_upstream_response() {
    let r = response::decode(&parse(RESPONSE_TOOL), meta()).unwrap();
    assert_eq!(r.meta, meta());
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning(Reasoning {
                text: "**Checking weather**\n\nNeed the tool.".into(),
                encrypted: Some("gAAAAABoEncryptedXYZ==".into()),
                id: Some("rs_68a1r".into()),
                origin: Some(R),
                ..Default::default()
            }),
            text("Checking Paris and Rome."),
            call("call_abc", "get_weather", "{\"city\":\"Paris\"}"),
            call("call_def", "get_weather", "{\"city\":\"Rome\"}"),
        ]
    );
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage, Usage { input_tokens: 120, output_tokens: 300, cache_read_tokens: 64, cache_write_tokens: 0, reasoning_tokens: 256 });

    let r = response::decode(&parse(RESPONSE_INCOMPLETE), meta()).unwrap();
    assert_eq!(r.stop, StopReason::MaxTokens);
    assert_eq!(r.text(), "The answer is");
    let mut filtered = parse(RESPONSE_INCOMPLETE);
    filtered["incomplete_details"]["reason"] = json!("content_filter");
    assert_eq!(response::decode(&filtered, meta()).unwrap().stop, StopReason::ContentFilter);

    // Missing call ids are synthesised; refusals are text.
    let body = json!({"status": "completed", "output": [
        {"type": "function_call", "name": "f", "arguments": {"a": 1}},
        {"type": "message", "content": [{"type": "refusal", "refusal": "No."}]}]});
    let r = response::decode(&body, meta()).unwrap();
    assert_eq!(r.parts, vec![call(&crate::wire::synth_id("call_", "gw123", 0), "f", "{\"a\":1}"), text("No.")]);
}

#[test]
fn upstream_failures_are_errors() {
    let failed = json!({"status": "failed", "output": [], "error": {"code": "rate_limit_exceeded", "message": "Slow down"}});
    let e = response::decode(&failed, meta()).unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::RateLimited, "Slow down"));
    let e = response::decode(&json!({"error": {"message": "bad", "type": "invalid_request_error", "code": null}}), meta()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    let e = response::decode(&json!({"hello": 1}), meta()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UpstreamUnreachable);
}

#[test]
fn encodes_responses_for_clients() {
    let r = Response {
        meta: meta(),
        parts: vec![
            Part::Reasoning(Reasoning { text: "think".into(), ..Default::default() }),
            text("Hello "),
            text("world"),
            call("call_1", "f", "{\"a\":1}"),
            Part::Reasoning(native_reasoning("", "gAAAAnative")),
            call("call_2", "g", "{}"),
        ],
        stop: StopReason::ToolUse,
        usage: Usage { input_tokens: 100, output_tokens: 50, cache_read_tokens: 20, cache_write_tokens: 5, reasoning_tokens: 30 },
    };
    let body = parse(&response::encode(&r));
    assert_eq!(body["id"], "resp_gw123");
    assert_eq!(body["object"], "response");
    assert_eq!(body["model"], "resp.gpt-5");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["incomplete_details"], Value::Null);
    let output = body["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "message", "function_call", "reasoning", "function_call"]);
    assert_eq!(output[0]["summary"], json!([{"type": "summary_text", "text": "think"}]));
    // Reasoning of unknown origin is packed so it is never mistaken for OpenAI's own.
    assert!(carrier::unpack(output[0]["encrypted_content"].as_str().unwrap()).is_some());
    assert_eq!(output[1]["content"].as_array().unwrap().len(), 2);
    assert_eq!(output[1]["role"], "assistant");
    assert_eq!(output[2]["call_id"], "call_1");
    assert!(output[2]["id"].as_str().unwrap().starts_with("fc_"));
    assert_ne!(output[2]["id"], output[4]["id"]);
    assert_eq!(output[3], json!({"type": "reasoning", "id": "rs_up9", "summary": [], "encrypted_content": "gAAAAnative"}));
    assert_eq!(body["usage"], json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 5}, "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 30}, "total_tokens": 150}));

    let cut = Response { meta: meta(), parts: vec![text("par")], stop: StopReason::MaxTokens, usage: Usage::default() };
    let body = parse(&response::encode(&cut));
    assert_eq!(body["status"], "incomplete");
    assert_eq!(body["incomplete_details"], json!({"reason": "max_output_tokens"}));
    let filtered = Response { stop: StopReason::ContentFilter, ..cut };
    assert_eq!(parse(&response::encode(&filtered))["incomplete_details"], json!({"reason": "content_filter"}));
}

#[test]
fn responses_round_trip() {
    let usage = Usage { input_tokens: 7, output_tokens: 9, cache_read_tokens: 3, cache_write_tokens: 1, reasoning_tokens: 4 };
    let cases = [
        (vec![text("Hi")], StopReason::EndTurn),
        (vec![Part::Reasoning(native_reasoning("why", "gAAAAx")), call("call_9", "f", "{\"q\":\"é\"}"), call("call_8", "f", "{}")], StopReason::ToolUse),
        (vec![Part::Reasoning(native_reasoning("", "gAAAAy")), text("a"), text("b")], StopReason::MaxTokens),
        (vec![text("x")], StopReason::ContentFilter),
        (vec![], StopReason::EndTurn),
    ];
    for (parts, stop) in cases {
        let r = Response { meta: meta(), parts, stop, usage };
        let back = response::decode(&parse(&response::encode(&r)), meta()).unwrap();
        assert_eq!(back, r);
    }
    // Responses has no stop-sequence status: it reads back as a natural end.
    let r = Response { meta: meta(), parts: vec![text("x")], stop: StopReason::StopSequence, usage };
    assert_eq!(response::decode(&parse(&response::encode(&r)), meta()).unwrap().stop, StopReason::EndTurn);
}

#[test]
fn count_bodies() {
    assert_eq!(response::decode_count(&json!({"object": "response.input_tokens", "input_tokens": 42})), Some(42));
    assert_eq!(response::decode_count(&json!({"input_tokens": "x"})), None);
    assert_eq!(parse(&response::encode_count(7)), json!({"object": "response.input_tokens", "input_tokens": 7}));
}

// ------------------------------------------------------------------------------------
// Stream decode (egress)

/// Runs `text` split at `splits` through the SSE and stream decoders.
fn decode_stream(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), GatewayError>) {
    crate::protocols::decode_sse(&mut stream::Decoder::new(meta()), chunks)
}

fn decode_whole(text: &str) -> (Vec<StreamEvent>, Result<(), GatewayError>) {
    decode_stream(&[text.as_bytes()])
}

fn accumulate(events: &[StreamEvent]) -> Response {
    let mut acc = Accumulator::default();
    for e in events {
        acc.push(e);
    }
    acc.into_response().expect("complete stream")
}

fn completed_response(sse_text: &str) -> Value {
    let mut d = sse::Decoder::new();
    d.feed(sse_text.as_bytes())
        .into_iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .find(|v| v["type"] == "response.completed" || v["type"] == "response.incomplete")
        .map(|v| v["response"].clone())
        .unwrap()
}

#[test]
fn decodes_an_upstream_stream() {
    let (events, end) = decode_whole(STREAM_TOOL);
    end.unwrap();
    let reasoning = Reasoning {
        text: "**Checking weather**\n\nNeed the tool.".into(),
        encrypted: Some("gAAAAABoFinalEnc==".into()),
        id: Some("rs_up1".into()),
        origin: Some(R),
        ..Default::default()
    };
    let expected = vec![
        StreamEvent::Start { meta: meta(), input_tokens: 0 },
        StreamEvent::ReasoningDelta("**Checking ".into()),
        StreamEvent::ReasoningDelta("weather**".into()),
        StreamEvent::ReasoningDelta("\n\n".into()),
        StreamEvent::ReasoningDelta("Need the tool.".into()),
        StreamEvent::ReasoningEnd(reasoning),
        StreamEvent::TextDelta("Checking ".into()),
        StreamEvent::TextDelta("Paris. é漢".into()),
        StreamEvent::ToolCallStart { id: "call_abc".into(), name: "get_weather".into() },
        StreamEvent::ToolCallDelta("{\"city\":".into()),
        StreamEvent::ToolCallDelta("\"Paris\"}".into()),
        StreamEvent::ToolCallStart { id: "call_def".into(), name: "get_time".into() },
        StreamEvent::ToolCallDelta("{}".into()),
        StreamEvent::Finish {
            stop: StopReason::ToolUse,
            usage: Usage { input_tokens: 120, output_tokens: 300, cache_read_tokens: 64, cache_write_tokens: 0, reasoning_tokens: 256 },
        },
    ];
    assert_eq!(events, expected);
    // The stream and the final response object say the same thing.
    let whole = response::decode(&completed_response(STREAM_TOOL), meta()).unwrap();
    assert_eq!(accumulate(&events), whole);
}

#[test]
fn every_byte_split_decodes_the_same() {
    for fixture in [STREAM_TOOL, STREAM_INCOMPLETE, STREAM_RAW_REASONING, STREAM_ERROR_NESTED] {
        let (whole, whole_end) = decode_whole(fixture);
        let bytes = fixture.as_bytes();
        for split in 0..=bytes.len() {
            let (events, end) = decode_stream(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(events, whole, "split at {split}");
            assert_eq!(end, whole_end, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_stream(&singles).0, whole);
    }
}

#[test]
fn decodes_incomplete_and_raw_reasoning_streams() {
    let (events, end) = decode_whole(STREAM_INCOMPLETE);
    end.unwrap();
    let r = accumulate(&events);
    assert_eq!(r.text(), "Hello");
    assert_eq!(r.stop, StopReason::MaxTokens);
    assert_eq!(r.usage.total(), 11);
    assert_eq!(r, response::decode(&completed_response(STREAM_INCOMPLETE), meta()).unwrap());

    let (events, end) = decode_whole(STREAM_RAW_REASONING);
    end.unwrap();
    let r = accumulate(&events);
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning(Reasoning { text: "User greets. Reply.".into(), id: Some("rs_oss".into()), origin: Some(R), ..Default::default() }),
            text("Hi!"),
        ]
    );
    assert_eq!(r.stop, StopReason::EndTurn);
    assert_eq!(r.usage.reasoning_tokens, 4);
}

#[test]
fn done_events_stand_in_for_missing_deltas() {
    let sse_text = [
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "S"}], "encrypted_content": "E"}}),
        json!({"type": "response.output_item.added", "output_index": 1, "item": {"type": "message", "id": "m1", "role": "assistant", "content": []}}),
        json!({"type": "response.output_text.done", "item_id": "m1", "output_index": 1, "content_index": 0, "text": "T"}),
        json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "message", "id": "m1", "content": [{"type": "output_text", "text": "T"}]}}),
        json!({"type": "response.output_item.done", "output_index": 2, "item": {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"}}),
        json!({"type": "response.output_item.added", "output_index": 3, "item": {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "g", "arguments": ""}}),
        json!({"type": "response.function_call_arguments.done", "item_id": "fc_2", "output_index": 3, "arguments": "{}"}),
        json!({"type": "response.output_item.done", "output_index": 3, "item": {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "g", "arguments": "{}"}}),
        json!({"type": "response.completed", "response": {"status": "completed", "output": []}}),
    ]
    .iter()
    .map(|v| format!("data: {v}\n\n"))
    .collect::<String>();
    let (events, end) = decode_whole(&sse_text);
    end.unwrap();
    let r = accumulate(&events);
    assert_eq!(
        r.parts,
        vec![
            Part::Reasoning(Reasoning { text: "S".into(), encrypted: Some("E".into()), id: Some("rs_1".into()), origin: Some(R), ..Default::default() }),
            text("T"),
            call("c1", "f", "{\"a\":1}"),
            call("c2", "g", "{}"),
        ]
    );
    assert_eq!(r.stop, StopReason::ToolUse);
    assert!(matches!(events[0], StreamEvent::Start { .. }));
}

#[test]
fn truncated_streams_are_errors() {
    let (events, end) = decode_whole(STREAM_TRUNCATED);
    let e = end.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UpstreamUnreachable);
    assert!(e.message.contains("ended early"));
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::TextDelta(_))).count(), 2);
    let (_, end) = decode_whole("");
    assert!(end.is_err());
    // Cut before the terminal event, at every point.
    let cut = STREAM_TOOL.rfind("event: response.completed").unwrap();
    for at in (0..cut).step_by(97) {
        assert!(decode_whole(&STREAM_TOOL[..at]).1.is_err(), "cut at {at}");
    }
}

#[test]
fn error_events_map_to_kinds() {
    let (events, end) = decode_whole(STREAM_ERROR_NESTED);
    let e = end.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.message, "Rate limit reached for gpt-5 on tokens per min (TPM).");
    assert_eq!(events, vec![StreamEvent::Start { meta: meta(), input_tokens: 0 }]);
    let e = decode_whole(STREAM_ERROR_FLAT).1.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    assert_eq!(e.message, "The server had an error processing your request.");
    let e = decode_whole(STREAM_FAILED).1.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!(e.message, "Invalid prompt: flagged.");
    for (code, kind) in [
        ("server_is_overloaded", ErrorKind::Overloaded),
        ("too_many_requests", ErrorKind::RateLimited),
        ("invalid_image_url", ErrorKind::InvalidRequest),
        ("something_new", ErrorKind::Internal),
    ] {
        let text = format!("event: error\ndata: {}\n\n", json!({"type": "error", "code": code, "message": "m", "param": null, "sequence_number": 0}));
        assert_eq!(decode_whole(&text).1.unwrap_err().kind, kind, "{code}");
    }
}

// ------------------------------------------------------------------------------------
// Stream encode (ingress)

fn encode_events(events: &[StreamEvent]) -> Vec<u8> {
    let mut enc = stream::Encoder::default();
    let mut out = Vec::new();
    for e in events {
        enc.event(e, &mut out);
    }
    out
}

/// Parses encoder output, checking the framing every event must have.
fn parse_frames(bytes: &[u8]) -> Vec<Value> {
    let mut d = sse::Decoder::new();
    let events = d.feed(bytes);
    assert_eq!(d.finish(), (None, false));
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["type"].as_str(), e.event.as_deref(), "event line matches type");
            assert_eq!(v["sequence_number"], i as u64, "sequence numbers count from 0");
            v
        })
        .collect()
}

fn types(frames: &[Value]) -> Vec<String> {
    frames.iter().map(|f| f["type"].as_str().unwrap().to_string()).collect()
}

fn ir_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start { meta: meta(), input_tokens: 12 },
        StreamEvent::ReasoningDelta("Think ".into()),
        StreamEvent::ReasoningDelta("more".into()),
        StreamEvent::ReasoningEnd(native_reasoning("Think more", "gAAAAstream")),
        StreamEvent::TextDelta("Hi ".into()),
        StreamEvent::TextDelta("there".into()),
        StreamEvent::ToolCallStart { id: "call_1".into(), name: "f".into() },
        StreamEvent::ToolCallDelta("{\"a\":".into()),
        StreamEvent::ToolCallDelta("1}".into()),
        StreamEvent::ToolCallStart { id: "call_2".into(), name: "g".into() },
        StreamEvent::ToolCallDelta("{}".into()),
        StreamEvent::Finish { stop: StopReason::ToolUse, usage: Usage { input_tokens: 12, output_tokens: 40, reasoning_tokens: 20, ..Default::default() } },
    ]
}

#[test]
fn stream_encoder_writes_the_exact_grammar() {
    let frames = parse_frames(&encode_events(&ir_events()));
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(types(&frames), expected);
    assert_eq!(frames[0]["response"]["status"], "in_progress");
    assert_eq!(frames[0]["response"]["id"], "resp_gw123");

    // Items: indices increase, ids agree between added, content events and done.
    let added: Vec<&Value> = frames.iter().filter(|f| f["type"] == "response.output_item.added").collect();
    let done: Vec<&Value> = frames.iter().filter(|f| f["type"] == "response.output_item.done").collect();
    for (i, (a, d)) in added.iter().zip(&done).enumerate() {
        assert_eq!(a["output_index"], i);
        assert_eq!(d["output_index"], i);
        assert_eq!(a["item"]["id"], d["item"]["id"]);
    }
    for f in &frames {
        if let Some(item_id) = f.get("item_id") {
            let index = f["output_index"].as_u64().unwrap() as usize;
            assert_eq!(*item_id, added[index]["item"]["id"], "{f}");
        }
    }
    assert_eq!(done[0]["item"]["encrypted_content"], "gAAAAstream");
    assert_eq!(done[0]["item"]["summary"], json!([{"type": "summary_text", "text": "Think more"}]));
    assert_eq!(added[0]["item"].get("encrypted_content"), None);
    assert_eq!(done[1]["item"]["content"][0]["text"], "Hi there");
    assert_eq!(added[2]["item"]["call_id"], "call_1");
    assert_eq!(added[2]["item"]["arguments"], "");
    assert_eq!(done[2]["item"]["arguments"], "{\"a\":1}");
    assert_eq!(frames[19]["arguments"], "{\"a\":1}");
    assert_eq!(frames[19]["name"], "f");

    let last = frames.last().unwrap();
    assert_eq!(last["response"]["status"], "completed");
    let output: Vec<Value> = done.iter().map(|d| d["item"].clone()).collect();
    assert_eq!(last["response"]["output"], Value::Array(output));
    assert_eq!(last["response"]["usage"]["output_tokens_details"]["reasoning_tokens"], 20);
    assert_eq!(last["response"]["usage"]["total_tokens"], 52);
}

#[test]
fn stream_encode_then_decode_keeps_the_answer() {
    let events = ir_events();
    let bytes = encode_events(&events);
    let (decoded, end) = decode_stream(&[&bytes]);
    end.unwrap();
    let mut back = accumulate(&decoded);
    let mut original = accumulate(&events);
    // Streamed reasoning items get gateway ids (the IR carries the upstream's only at the end).
    for r in [&mut back, &mut original] {
        for p in &mut r.parts {
            if let Part::Reasoning(x) = p {
                x.id = None;
            }
        }
    }
    assert_eq!(back, original);
    // And the same bytes as a whole response object agree too.
    let text = String::from_utf8(bytes).unwrap();
    let mut whole = response::decode(&completed_response(&text), meta()).unwrap();
    for p in &mut whole.parts {
        if let Part::Reasoning(x) = p {
            x.id = None;
        }
    }
    assert_eq!(whole, back);
}

#[test]
fn stream_encoder_edge_cases() {
    // Reasoning that arrives whole at its end, and payload-only reasoning.
    let events = vec![
        StreamEvent::Start { meta: meta(), input_tokens: 0 },
        StreamEvent::ReasoningEnd(claude_reasoning()),
        StreamEvent::ReasoningEnd(Reasoning { signature: Some("CpoB".into()), origin: Some(Protocol::Gemini), ..Default::default() }),
        StreamEvent::TextDelta("ok".into()),
        StreamEvent::Finish { stop: StopReason::MaxTokens, usage: Usage::default() },
        StreamEvent::TextDelta("after the end".into()),
    ];
    let frames = parse_frames(&encode_events(&events));
    assert_eq!(
        types(&frames)[2..13],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ]
    );
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    assert!(!frames.iter().any(|f| f.to_string().contains("after the end")));
    // The Claude block goes to the client packed, and comes back as Claude's.
    let item = last["response"]["output"][0].clone();
    let req = request::decode(&json!({"input": [item]})).unwrap();
    assert_eq!(req.messages[0].parts[0], Part::Reasoning(claude_reasoning()));
    let item = last["response"]["output"][1].clone();
    assert_eq!(item["summary"], json!([]));
    let req = request::decode(&json!({"input": [item]})).unwrap();
    assert_eq!(req.messages[0].parts[0], Part::Reasoning(Reasoning { signature: Some("CpoB".into()), origin: Some(Protocol::Gemini), ..Default::default() }));

    // An empty answer.
    let frames = parse_frames(&encode_events(&[StreamEvent::Start { meta: meta(), input_tokens: 0 }, StreamEvent::Finish { stop: StopReason::EndTurn, usage: Usage::default() }]));
    assert_eq!(types(&frames), ["response.created", "response.in_progress", "response.completed"]);
    assert_eq!(frames[2]["response"]["output"], json!([]));
    // Nothing before Start.
    assert!(encode_events(&[StreamEvent::TextDelta("x".into())]).is_empty());
}

#[test]
fn stream_errors_carry_both_shapes_then_fail_the_response() {
    let mut enc = stream::Encoder::default();
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 0 }, &mut out);
    enc.event(&StreamEvent::TextDelta("par".into()), &mut out);
    let err = GatewayError::new(ErrorKind::RateLimited, "Upstream rate limit");
    enc.error(&err, &mut out);
    enc.event(&StreamEvent::TextDelta("more".into()), &mut out);
    enc.error(&err, &mut out);
    let frames = parse_frames(&out);
    assert_eq!(types(&frames)[frames.len() - 2..], ["error", "response.failed"]);
    let e = &frames[frames.len() - 2];
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert_eq!(e["message"], "Upstream rate limit");
    assert!(e.get("param").is_some());
    assert_eq!(e["error"], json!({"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "Upstream rate limit", "param": null}));
    let failed = &frames[frames.len() - 1]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], json!({"code": "rate_limit_exceeded", "message": "Upstream rate limit"}));
    // The gateway's own decoder reads it back as the same kind of error.
    let (_, end) = decode_stream(&[&out]);
    let back = end.unwrap_err();
    assert_eq!((back.kind, back.message.as_str()), (ErrorKind::RateLimited, "Upstream rate limit"));

    // Server errors without a code use the type; before Start only the error event goes out.
    let mut enc = stream::Encoder::default();
    let mut out = Vec::new();
    enc.error(&GatewayError::new(ErrorKind::Internal, "boom"), &mut out);
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["code"], "server_error");
    assert_eq!(frames[0]["error"]["code"], "server_error");
}

// ------------------------------------------------------------------------------------
// Garbage never panics

use crate::protocols::TestRng as Rng;

fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(""),
        json!("x"),
        json!(true),
        json!([]),
        json!({}),
        json!([null, 1, "a"]),
        json!({"type": "function_call"}),
        json!({"type": "reasoning", "encrypted_content": 5}),
        json!({"type": "message", "role": "assistant", "content": [{}]}),
    ]
}

/// Every variant of `v` with one node replaced by one of the odd values.
fn mutations(v: &Value) -> Vec<Value> {
    fn walk(v: &Value, path: &mut Vec<Result<String, usize>>, out: &mut Vec<Vec<Result<String, usize>>>) {
        out.push(path.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(Ok(k.clone()));
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(Err(i));
                    walk(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut paths = Vec::new();
    walk(v, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for path in paths {
        for odd in odd_values() {
            let mut copy = v.clone();
            let mut node = &mut copy;
            for step in &path {
                node = match step {
                    Ok(k) => &mut node[k.as_str()],
                    Err(i) => &mut node[*i],
                };
            }
            *node = odd;
            out.push(copy);
        }
    }
    out
}

#[test]
fn garbage_requests_and_responses_never_panic() {
    for body in mutations(&parse(REQUEST_RICH)) {
        if let Ok(req) = request::decode(&body) {
            let _ = encode(&req);
        }
    }
    for fixture in [RESPONSE_TOOL, RESPONSE_INCOMPLETE] {
        for body in mutations(&parse(fixture)) {
            if let Ok(r) = response::decode(&body, meta()) {
                let _ = response::encode(&r);
            }
        }
    }
    let _ = response::decode_count(&json!(null));
}

#[test]
fn garbage_streams_never_panic() {
    // Mutated JSON in every event of the fixtures.
    for fixture in [STREAM_TOOL, STREAM_RAW_REASONING] {
        let mut d = sse::Decoder::new();
        let events = d.feed(fixture.as_bytes());
        for (i, ev) in events.iter().enumerate() {
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { continue };
            for m in mutations(&v).into_iter().step_by(7) {
                let mut dec = stream::Decoder::new(meta());
                let mut out = Vec::new();
                for (j, e) in events.iter().enumerate() {
                    let e = if i == j { sse::Event { data: m.to_string(), ..e.clone() } } else { e.clone() };
                    if dec.event(&e, &mut out).is_err() {
                        break;
                    }
                }
                let _ = dec.finish(&mut out);
            }
        }
    }
    // Random bytes and random event orders.
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut d = sse::Decoder::new();
    let events = d.feed(STREAM_TOOL.as_bytes());
    for _ in 0..300 {
        let mut dec = stream::Decoder::new(meta());
        let mut out = Vec::new();
        for _ in 0..20 {
            let e = &events[rng.below(events.len() as u64) as usize];
            let _ = dec.event(e, &mut out);
        }
        let bytes: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
        let _ = dec.event(&sse::Event { event: None, data: String::from_utf8_lossy(&bytes).into_owned(), id: None }, &mut out);
        let _ = dec.finish(&mut out);
    }
    // Random IR event sequences through the encoder keep the framing valid.
    let pool = ir_events();
    for _ in 0..300 {
        let mut enc = stream::Encoder::default();
        let mut out = Vec::new();
        enc.event(&pool[0], &mut out);
        for _ in 0..15 {
            enc.event(&pool[rng.below(pool.len() as u64) as usize], &mut out);
        }
        if rng.below(3) == 0 {
            enc.error(&GatewayError::new(ErrorKind::Timeout, "t"), &mut out);
        }
        parse_frames(&out);
    }
}

#[test]
fn reasoning_that_produced_nothing_is_not_replayed() {
    let r = Part::Reasoning(native_reasoning("s", "gAAAAz"));
    let req = Request {
        messages: vec![
            user(vec![text("q")]),
            assistant(vec![r.clone()]),
            user(vec![text("again")]),
            assistant(vec![r.clone(), r.clone(), text("a")]),
        ],
        ..Default::default()
    };
    let kinds: Vec<String> =
        encode(&req)["input"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["message", "message", "reasoning", "reasoning", "message"]);
}

/// Codex's freeform `apply_patch`: a `custom` tool reaches other providers as a function
/// taking `input`, and its calls come back to the client as `custom_tool_call` items.
#[test]
fn freeform_tools_travel_as_functions_and_come_back_as_custom_calls() {
    let body = json!({
        "model": "ant.claude",
        "input": [
            {"role": "user", "content": "fix it"},
            {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "custom", "name": "apply_patch", "description": "Edit files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}},
        ],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
    });
    let req = request::decode(&body).unwrap();
    let tool = &req.tools[1];
    assert_eq!(tool.name, "apply_patch");
    assert_eq!(tool.parameters["required"], json!(["input"]));
    assert!(tool.description.as_deref().unwrap().contains("lark grammar:\nstart: begin_patch"));
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("apply_patch".into())));
    let call = ToolCall { id: "call_1".into(), name: "apply_patch".into(), arguments: request::freeform_arguments("*** Begin Patch\n*** End Patch") };
    assert_eq!(req.messages[1].parts, vec![Part::ToolCall(call)]);
    assert!(matches!(&req.messages[2].parts[0], Part::ToolResult(r) if r.call_id == "call_1" && r.name.as_deref() == Some("apply_patch")));

    assert_eq!(request::freeform_input(r#"{"input":"x"}"#), "x");
    assert_eq!(request::freeform_input("{}"), "");
    assert_eq!(request::freeform_input("raw text"), "raw text");

    let custom = request::custom_tool_names(&body);
    assert_eq!(custom, vec!["apply_patch".to_string()]);

    // Whole answers.
    let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
    let answer = Response {
        meta: meta(),
        parts: vec![
            Part::ToolCall(ToolCall { id: "toolu_1".into(), name: "apply_patch".into(), arguments: json!({"input": patch}).to_string() }),
            Part::ToolCall(ToolCall { id: "toolu_2".into(), name: "shell".into(), arguments: r#"{"cmd":"ls"}"#.into() }),
        ],
        stop: StopReason::ToolUse,
        usage: Usage::default(),
    };
    let out = parse(&response::encode_for(&answer, &custom));
    assert_eq!(out["output"][0]["type"], "custom_tool_call");
    assert_eq!(out["output"][0]["input"], patch);
    assert_eq!(out["output"][0]["call_id"], "toolu_1");
    assert_eq!(out["output"][1]["type"], "function_call");

    // Streams: the input goes out whole when the call ends.
    let mut enc = stream::Encoder::new(custom);
    let mut wire = Vec::new();
    let args = json!({"input": patch}).to_string();
    let (a, b) = args.split_at(10);
    for e in [
        StreamEvent::Start { meta: meta(), input_tokens: 5 },
        StreamEvent::ToolCallStart { id: "toolu_1".into(), name: "apply_patch".into() },
        StreamEvent::ToolCallDelta(a.into()),
        StreamEvent::ToolCallDelta(b.into()),
        StreamEvent::Finish { stop: StopReason::ToolUse, usage: Usage::default() },
    ] {
        enc.event(&e, &mut wire);
    }
    let events: Vec<Value> = String::from_utf8(wire).unwrap().lines().filter_map(|l| l.strip_prefix("data: ")).map(parse).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(!kinds.contains(&"response.function_call_arguments.delta"), "{kinds:?}");
    let added = events.iter().find(|e| e["type"] == "response.output_item.added").unwrap();
    assert_eq!(added["item"]["type"], "custom_tool_call");
    let delta = events.iter().find(|e| e["type"] == "response.custom_tool_call_input.delta").unwrap();
    assert_eq!(delta["delta"], patch);
    let done = events.iter().find(|e| e["type"] == "response.custom_tool_call_input.done").unwrap();
    assert_eq!(done["input"], patch);
    let completed = events.iter().find(|e| e["type"] == "response.completed").unwrap();
    assert_eq!(completed["response"]["output"][0]["input"], patch);
}

/// A request as Codex CLI sends it (fields it always sets, history of an earlier turn with
/// reasoning, a shell call and its output) decodes for conversion.
#[test]
fn codex_shaped_request_decodes() {
    let body = json!({
        "model": "ant.claude-sonnet-4-5",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}], "content": null, "encrypted_content": null},
            {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"output\":\"a.txt\\n\",\"metadata\":{\"exit_code\":0}}"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a.txt"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "patch it"}]},
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                            "required": ["command"], "additionalProperties": false}},
            {"type": "custom", "name": "apply_patch", "description": "Use apply_patch to edit files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "5f0c",
        "text": {"verbosity": "medium"},
    });
    let req = request::decode(&body).unwrap();
    assert_eq!(req.tools.len(), 2);
    assert!(req.prompt_cache, "prompt_cache_key asks for caching");
    assert!(req.messages.iter().any(|m| m.parts.iter().any(|p| matches!(p, Part::ToolResult(r) if r.call_id == "call_1"))));
    let options = ModelOptions::default();
    for upstream in [Protocol::OpenAiChat, Protocol::Claude, Protocol::Gemini] {
        let wire = crate::protocols::encode_request(upstream, &req, &target(&options, Quirks::default())).unwrap();
        assert!(wire.to_string().contains("apply_patch"), "{upstream:?}");
    }
}

#[test]
fn delta_events_have_the_fields_and_order_of_the_other_events() {
    let mut enc = stream::Encoder::new(Vec::new());
    let mut out = Vec::new();
    for e in [
        StreamEvent::Start { meta: meta(), input_tokens: 3 },
        StreamEvent::ReasoningDelta("think \"hard\"".into()),
        StreamEvent::TextDelta("line\nnext".into()),
        StreamEvent::ToolCallStart { id: "call_1".into(), name: "f".into() },
        StreamEvent::ToolCallDelta("{\"a\":1}".into()),
        StreamEvent::Finish { stop: StopReason::ToolUse, usage: Usage::default() },
    ] {
        enc.event(&e, &mut out);
    }
    let mut seen = Vec::new();
    for (sequence, event) in sse::Decoder::new().feed(&out).into_iter().enumerate() {
        let data: Value = serde_json::from_str(&event.data).unwrap();
        let keys: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(data["sequence_number"], json!(sequence), "{}", event.data);
        assert_eq!(data["type"].as_str(), event.event.as_deref());
        let expected: &[&str] = match event.event.as_deref() {
            Some("response.output_text.delta") => &["item_id", "output_index", "content_index", "delta", "logprobs", "type", "sequence_number"],
            Some("response.reasoning_summary_text.delta") => &["item_id", "output_index", "summary_index", "delta", "type", "sequence_number"],
            Some("response.function_call_arguments.delta") => &["item_id", "output_index", "delta", "type", "sequence_number"],
            _ => continue,
        };
        assert_eq!(keys, expected);
        seen.push((data["delta"].as_str().unwrap().to_string(), data["item_id"].as_str().unwrap().to_string()));
    }
    let deltas: Vec<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(deltas, ["think \"hard\"", "line\nnext", "{\"a\":1}"]);
    assert!(seen.iter().all(|(_, id)| !id.is_empty()));
}
