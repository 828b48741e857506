//! Tests of the Anthropic Messages adapter over real-shaped wire fixtures.

use serde_json::{json, Value};

use super::{request, response, stream};
use crate::carrier;
use crate::config::{ModelOptions, Quirks};
use crate::error::ErrorKind;
use crate::ir::*;
use crate::protocols::{Protocol, StreamDecoder, StreamEncoder, Target, DEFAULT_MAX_TOKENS};
use crate::sse;

const REQUEST_RICH: &str = include_str!("../../../tests/fixtures/claude/request_rich.json");
const RESPONSE_THINKING_TOOL: &str = include_str!("../../../tests/fixtures/claude/response_thinking_tool.json");
const STREAM_THINKING_TOOL: &str = include_str!("../../../tests/fixtures/claude/stream_thinking_tool.sse");
const STREAM_TEXT: &str = include_str!("../../../tests/fixtures/claude/stream_text.sse");
const STREAM_ERROR: &str = include_str!("../../../tests/fixtures/claude/stream_error.sse");
const ERROR_RATE_LIMIT: &str = include_str!("../../../tests/fixtures/claude/error_rate_limit.json");

fn meta() -> ResponseMeta {
    ResponseMeta { id: "gw7f3a".into(), model: "ant.claude-sonnet-4-6".into(), created: 1_700_000_000 }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn enc(req: &Request) -> Value {
    enc_with(req, &ModelOptions::default())
}

fn enc_with(req: &Request, options: &ModelOptions) -> Value {
    let target = Target { model: "claude-up", options, quirks: Quirks::default() };
    request::encode(req, &target).unwrap()
}

fn user(parts: Vec<Part>) -> Message {
    Message { role: Role::User, parts }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message { role: Role::Assistant, parts }
}

fn text(s: &str) -> Part {
    Part::Text(s.into())
}

fn call(id: &str, name: &str, args: &str) -> Part {
    Part::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: args.into() })
}

fn result(id: &str, s: &str) -> Part {
    Part::ToolResult(ToolResult { call_id: id.into(), name: None, content: vec![text(s)], is_error: false })
}

fn claude_thinking(t: &str, sig: &str) -> Part {
    Part::Reasoning(Reasoning { text: t.into(), signature: Some(sig.into()), origin: Some(Protocol::Claude), ..Default::default() })
}

fn req_of(messages: Vec<Message>) -> Request {
    Request { messages, ..Request::default() }
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Weather".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
    }
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap().to_string()).collect()
}

fn types(content: &Value) -> Vec<String> {
    content.as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap().to_string()).collect()
}

// ------------------------------------------------------------------ ingress decode

#[test]
fn decodes_a_rich_request() {
    let r = request::decode(&parse(REQUEST_RICH)).unwrap();
    assert_eq!(r.system, vec![text("You are a careful assistant."), text("Answer briefly.")]);
    assert_eq!(r.messages.len(), 3);

    let u = &r.messages[0];
    assert_eq!(u.role, Role::User);
    assert_eq!(u.parts[1], Part::Image(Media::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }));
    assert_eq!(u.parts[2], Part::Image(Media::Url { url: "https://example.com/cat.jpg".into(), media_type: None }));
    assert_eq!(
        u.parts[3],
        Part::File {
            media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBERi0xLjQ=".into() },
            filename: Some("report.pdf".into())
        }
    );
    match &u.parts[4] {
        Part::File { media: Media::Base64 { media_type, data }, .. } => {
            assert_eq!(media_type, "text/plain");
            assert_eq!(data, "cGxhaW4gbm90ZXM=");
        }
        other => panic!("{other:?}"),
    }

    let a = &r.messages[1];
    assert_eq!(a.role, Role::Assistant);
    assert_eq!(a.parts[0], claude_thinking("The user wants two things.\n\"Weather\" needs the tool.", "EqQBCkgIARABGAIiQL+/sig=="));
    assert_eq!(
        a.parts[1],
        Part::Reasoning(Reasoning { redacted: Some("EmwKAhgBEgy3redacted==".into()), origin: Some(Protocol::Claude), ..Default::default() })
    );
    assert_eq!(a.parts[3], call("toolu_01A09q90qw90lq917835lq9", "get_weather", r#"{"city":"Paris","unit":"celsius"}"#));
    assert_eq!(a.parts[4], call("toolu_01B", "get_time", "{}"));

    let t = &r.messages[2];
    assert_eq!(t.parts[0], result("toolu_01A09q90qw90lq917835lq9", "18°C, cloudy"));
    assert_eq!(
        t.parts[1],
        Part::ToolResult(ToolResult { call_id: "toolu_01B".into(), name: None, content: vec![text("clock unavailable")], is_error: true })
    );
    assert_eq!(t.parts[2], text("Thanks!"));

    assert_eq!(r.tools.len(), 2, "the server tool has no IR form");
    assert_eq!(r.dropped_tools, ["web_search_20250305"]);
    assert_eq!(r.tools[0].name, "get_weather");
    assert_eq!(r.tools[0].parameters["required"], json!(["city"]));
    assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(r.parallel_tool_calls, Some(false));
    let reasoning = r.reasoning.unwrap();
    assert_eq!(reasoning.budget_tokens, Some(2048));
    assert_eq!(reasoning.effort, Some(Effort::Medium));
    assert_eq!(r.max_output_tokens, Some(4096));
    assert_eq!(r.temperature, Some(1.0));
    assert_eq!(r.top_k, Some(40));
    assert_eq!(r.stop, vec!["\n\nHuman:".to_string()]);
    assert_eq!(r.user.as_deref(), Some("user-42"));
    assert!(r.stream);
}

#[test]
fn decodes_thinking_controls_and_formats() {
    let r = request::decode(&json!({"messages": [], "thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}}})).unwrap();
    let rr = r.reasoning.unwrap();
    assert_eq!((rr.effort, rr.budget_tokens, rr.include_thoughts, rr.disabled), (Some(Effort::High), None, Some(false), false));
    assert!(matches!(r.response_format, Some(ResponseFormat::JsonSchema { ref schema, .. }) if schema == &json!({"type": "object"})));

    let r = request::decode(&json!({"messages": [], "thinking": {"type": "disabled"}})).unwrap();
    assert!(r.reasoning.unwrap().disabled);
    let r = request::decode(&json!({"messages": [], "system": "Be terse."})).unwrap();
    assert_eq!(r.system, vec![text("Be terse.")]);
    assert_eq!(r.reasoning, None);

    for (choice, expected, parallel) in [
        (json!({"type": "any"}), ToolChoice::Required, None),
        (json!({"type": "none"}), ToolChoice::None, None),
        (json!({"type": "tool", "name": "x", "disable_parallel_tool_use": true}), ToolChoice::Named("x".into()), Some(false)),
    ] {
        let r = request::decode(&json!({"messages": [], "tool_choice": choice})).unwrap();
        assert_eq!(r.tool_choice, Some(expected));
        assert_eq!(r.parallel_tool_calls, parallel);
    }
}

#[test]
fn claude_code_billing_line_is_not_converted() {
    // Claude Code's first system block; its cch= changes on every request.
    let billing = "x-anthropic-billing-header: cc_version=2.1.177.01c; cc_entrypoint=cli; cch=36ee5;";
    let r = request::decode(&json!({"messages": [], "system": [
        {"type": "text", "text": billing},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ]}))
    .unwrap();
    assert_eq!(r.system, vec![text("You are Claude Code.")]);
    // The same line leading a single system string: only that line goes.
    let r = request::decode(&json!({"messages": [], "system": format!("{billing}\nYou are Claude Code.\nBe brief.")})).unwrap();
    assert_eq!(r.system, vec![text("You are Claude Code.\nBe brief.")]);
    // Elsewhere the words are ordinary text.
    let r = request::decode(&json!({"messages": [], "system": format!("Quote: {billing}")})).unwrap();
    assert_eq!(r.system, vec![text(&format!("Quote: {billing}"))]);
}

#[test]
fn client_thinking_goes_through_the_carrier() {
    // A signature that is our packed Gemini reasoning comes back as Gemini's.
    let gemini = Reasoning { text: "plan".into(), signature: Some("CpoBAb4+/==".into()), origin: Some(Protocol::Gemini), ..Default::default() };
    let packed = carrier::to_client(&gemini, Protocol::Claude).unwrap();
    let body = json!({"messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "plan", "signature": packed},
        {"type": "thinking", "thinking": "unsigned", "signature": ""},
    ]}]});
    let r = request::decode(&body).unwrap();
    assert_eq!(r.messages[0].parts[0], Part::Reasoning(gemini));
    assert_eq!(r.messages[0].parts[1], Part::Reasoning(Reasoning { text: "unsigned".into(), ..Default::default() }));
}

#[test]
fn wrong_types_are_invalid_requests_with_a_param() {
    let cases = [
        (json!({"messages": "hi"}), "messages"),
        (json!({}), "messages"),
        (json!({"messages": [], "max_tokens": "10"}), "max_tokens"),
        (json!({"messages": [], "temperature": "hot"}), "temperature"),
        (json!({"messages": [], "system": 5}), "system"),
        (json!({"messages": [{"role": "robot", "content": "x"}]}), "messages.0.role"),
        (json!({"messages": [{"role": "user", "content": 3}]}), "messages.0.content"),
        (json!({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}), "messages.0.content.0.tool_use_id"),
        (json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]}), "messages.0.content.0.source.type"),
        (json!({"messages": [], "tools": {}}), "tools"),
        (json!({"messages": [], "tool_choice": {"type": "sometimes"}}), "tool_choice.type"),
        (json!({"messages": [], "thinking": {"type": "enabled"}}), "thinking.budget_tokens"),
        (json!({"messages": [], "output_config": {"effort": "extreme"}}), "output_config.effort"),
        (json!({"messages": [], "stop_sequences": "x"}), "stop_sequences"),
        (json!({"messages": [], "metadata": {"user_id": 7}}), "metadata.user_id"),
    ];
    for (body, param) in cases {
        let e = request::decode(&body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{body}");
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
    assert!(request::decode(&json!([1])).is_err());
}

// ------------------------------------------------------------------ egress encode

#[test]
fn claude_to_claude_keeps_the_conversation_byte_exact() {
    let original = parse(REQUEST_RICH);
    let ir = request::decode(&original).unwrap();
    let body = enc(&ir);
    assert_eq!(body["model"], "claude-up");
    // The caller caches: the gateway's breakpoints (here on the last system block) stand in
    // for its own.
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are a careful assistant."}, {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}])
    );
    // Thinking blocks come back unchanged, in order, before the tool_use.
    let a = &body["messages"][1]["content"];
    assert_eq!(a[0], original["messages"][1]["content"][0]);
    assert_eq!(a[1], original["messages"][1]["content"][1]);
    assert_eq!(types(a), ["thinking", "redacted_thinking", "text", "tool_use", "tool_use"]);
    assert_eq!(a[3], original["messages"][1]["content"][3]);
    let u = &body["messages"][0]["content"];
    assert_eq!(u[1], original["messages"][0]["content"][1]);
    assert_eq!(u[2], original["messages"][0]["content"][2]);
    assert_eq!(u[3], original["messages"][0]["content"][3]);
    assert_eq!(u[4], json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}}));
    assert_eq!(body["messages"][2]["content"][0], original["messages"][2]["content"][0]);
    assert_eq!(body["messages"][2]["content"][1]["content"], "clock unavailable");
    assert_eq!(body["messages"][2]["content"][1]["is_error"], true);
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    assert_eq!(body["tools"][0], json!({"name": "get_weather", "description": "Current weather", "input_schema": original["tools"][0]["input_schema"]}));
    // Thinking on: no temperature or top_k.
    assert!(body.get("temperature").is_none() && body.get("top_k").is_none());
    assert_eq!(body["stop_sequences"], json!(["\n\nHuman:"]));
    assert_eq!(body["metadata"], json!({"user_id": "user-42"}));
    assert_eq!(body["stream"], true);
}

#[test]
fn turns_alternate_and_start_with_user() {
    let req = req_of(vec![
        assistant(vec![text("Hello! How can I help?")]),
        user(vec![text("first")]),
        user(vec![text(""), text("second")]),
        assistant(vec![text("")]),
        user(vec![text("third")]),
    ]);
    let body = enc(&req);
    assert_eq!(roles(&body), ["user", "assistant", "user"]);
    assert_eq!(body["messages"][0]["content"], json!([{"type": "text", "text": "(continue)"}]));
    assert_eq!(types(&body["messages"][2]["content"]), ["text", "text", "text"]);
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);

    let e = request::encode(&req_of(vec![user(vec![text("")])]), &Target { model: "m", options: &ModelOptions::default(), quirks: Quirks::default() }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

#[test]
fn tool_results_from_separate_messages_open_the_next_user_turn() {
    // Chat-style history: one message per tool result, then user text.
    let req = Request {
        tools: vec![weather_tool()],
        messages: vec![
            user(vec![text("weather in Paris and Rome?")]),
            assistant(vec![text("Checking."), call("call_1", "get_weather", r#"{"city":"Paris"}"#), call("call_2", "get_weather", "")]),
            user(vec![text("also hurry")]),
            user(vec![result("call_2", "21C")]),
            user(vec![result("call_1", "18C"), result("call_1", "duplicate")]),
        ],
        ..Request::default()
    };
    let body = enc(&req);
    assert_eq!(roles(&body), ["user", "assistant", "user"]);
    let a = &body["messages"][1]["content"];
    assert_eq!(a[2], json!({"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}));
    let u = &body["messages"][2]["content"];
    assert_eq!(types(u), ["tool_result", "tool_result", "text"]);
    assert_eq!(u[0], json!({"type": "tool_result", "tool_use_id": "call_2", "content": "21C"}));
    assert_eq!(u[1]["tool_use_id"], "call_1");
    assert_eq!(u[1]["content"], "18C");
    assert_eq!(u[2]["text"], "also hurry");
}

#[test]
fn unanswered_calls_get_an_error_result_and_stray_results_become_text() {
    let req = Request {
        tools: vec![weather_tool()],
        messages: vec![
            user(vec![result("call_9", "late result"), text("hi")]),
            assistant(vec![call("call_1", "get_weather", "{}")]),
            assistant(vec![text("More.")]),
            user(vec![text("and?")]),
            assistant(vec![call("call_3", "get_weather", "{}")]),
        ],
        ..Request::default()
    };
    let body = enc(&req);
    assert_eq!(roles(&body), ["user", "assistant", "user", "assistant", "user"], "{body}");
    let first = &body["messages"][0]["content"];
    assert_eq!(types(first), ["text", "text"]);
    assert!(first[0]["text"].as_str().unwrap().contains("late result"));
    // Consecutive assistant messages merged; the call answered by a placeholder.
    assert_eq!(types(&body["messages"][1]["content"]), ["tool_use", "text"]);
    let u = &body["messages"][2]["content"];
    assert_eq!(u[0]["tool_use_id"], "call_1");
    assert_eq!(u[0]["is_error"], true);
    assert_eq!(u[1]["text"], "and?");
    // A trailing unanswered call gets its placeholder turn too.
    assert_eq!(body["messages"][4]["content"][0]["tool_use_id"], "call_3");
}

#[test]
fn a_trailing_unanswered_call_is_answered_by_a_placeholder() {
    let req = Request {
        tools: vec![weather_tool()],
        messages: vec![user(vec![text("go")]), assistant(vec![call("call_1", "get_weather", "{}")])],
        ..Request::default()
    };
    let body = enc(&req);
    assert_eq!(roles(&body), ["user", "assistant", "user"]);
    assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
}

#[test]
fn tool_ids_are_sanitised_deterministically() {
    let req = Request {
        tools: vec![weather_tool()],
        messages: vec![
            user(vec![text("x")]),
            assistant(vec![call("functions.get_weather:0", "get_weather", "{}"), call("functions.get_weather:1", "get_weather", "{}")]),
            user(vec![result("functions.get_weather:1", "b"), result("functions.get_weather:0", "a")]),
        ],
        ..Request::default()
    };
    let body = enc(&req);
    let a = &body["messages"][1]["content"];
    let u = &body["messages"][2]["content"];
    let id0 = a[0]["id"].as_str().unwrap();
    let id1 = a[1]["id"].as_str().unwrap();
    assert_ne!(id0, id1);
    for id in [id0, id1] {
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{id}");
        assert!(id.starts_with("functions_get_weather_"));
    }
    assert_eq!(u[0]["tool_use_id"], id1);
    assert_eq!(u[1]["tool_use_id"], id0);
    assert_eq!(request::tool_id("toolu_01A"), "toolu_01A");
    assert_eq!(request::tool_id("a.b"), request::tool_id("a.b"));
    assert_ne!(request::tool_id("a.b"), request::tool_id("a:b"));
    assert!(!request::tool_id("").is_empty());
}

#[test]
fn max_tokens_comes_from_request_then_options_then_default() {
    let base = req_of(vec![user(vec![text("hi")])]);
    assert_eq!(enc(&base)["max_tokens"], DEFAULT_MAX_TOKENS);
    let opts = ModelOptions { max_tokens: Some(1000), ..Default::default() };
    assert_eq!(enc_with(&base, &opts)["max_tokens"], 1000);
    let mut r = base.clone();
    r.max_output_tokens = Some(77);
    assert_eq!(enc_with(&r, &opts)["max_tokens"], 77);
}

#[test]
fn sampling_rules() {
    let mut r = req_of(vec![user(vec![text("hi")])]);
    r.temperature = Some(1.7);
    r.top_p = Some(0.5);
    r.top_k = Some(5);
    r.seed = Some(3);
    r.presence_penalty = Some(0.5);
    r.frequency_penalty = Some(0.5);
    r.stop = vec!["END".into(), " ".into()];
    r.user = Some("u1".into());
    r.metadata = Some(serde_json::Map::new());
    let body = enc(&r);
    assert_eq!(body["temperature"], 1.0);
    assert!(body.get("top_p").is_none());
    assert_eq!(body["top_k"], 5);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"], json!({"user_id": "u1"}));
    for k in ["seed", "presence_penalty", "frequency_penalty", "thinking", "stream", "tools", "tool_choice"] {
        assert!(body.get(k).is_none(), "{k}");
    }
    r.temperature = Some(-1.0);
    assert_eq!(enc(&r)["temperature"], 0.0);
    r.temperature = None;
    assert_eq!(enc(&r)["top_p"], 0.5);
}

#[test]
fn media_and_documents() {
    let r = req_of(vec![user(vec![
        Part::Image(Media::from_url("data:image/jpeg;base64,/9j/4AAQ")),
        Part::Image(Media::from_url("https://x.test/a.png")),
        Part::File { media: Media::Base64 { media_type: "application/pdf".into(), data: "JVBE".into() }, filename: Some("a.pdf".into()) },
        Part::File { media: Media::Base64 { media_type: "text/markdown".into(), data: "IyBIaQ==".into() }, filename: None },
        Part::File { media: Media::Url { url: "https://x.test/b.pdf".into(), media_type: None }, filename: None },
        Part::File { media: Media::FileId("file_011".into()), filename: None },
    ])]);
    let c = enc(&r)["messages"][0]["content"].clone();
    assert_eq!(c[0], json!({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}));
    assert_eq!(c[1], json!({"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}));
    assert_eq!(c[2], json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "a.pdf"}));
    assert_eq!(c[3], json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "# Hi"}}));
    assert_eq!(c[4], json!({"type": "document", "source": {"type": "url", "url": "https://x.test/b.pdf"}}));
    assert_eq!(c[5]["source"], json!({"type": "file", "file_id": "file_011"}));

    let bad = req_of(vec![user(vec![Part::File { media: Media::Base64 { media_type: "application/zip".into(), data: "UEs=".into() }, filename: None }])]);
    let target = Target { model: "m", options: &ModelOptions::default(), quirks: Quirks::default() };
    assert_eq!(request::encode(&bad, &target).unwrap_err().kind, ErrorKind::InvalidRequest);
}

#[test]
fn tool_choice_mapping() {
    let mut tools = vec![weather_tool()];
    tools.push(Tool { name: "get_time".into(), description: None, parameters: Value::Null, strict: Some(true) });
    let base = Request { tools, messages: vec![user(vec![text("hi")])], ..Request::default() };
    let cases = [
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
        (Some(ToolChoice::Required), Some(false), json!({"type": "any", "disable_parallel_tool_use": true})),
        (Some(ToolChoice::Named("get_time".into())), None, json!({"type": "tool", "name": "get_time"})),
        (None, Some(false), json!({"type": "auto", "disable_parallel_tool_use": true})),
    ];
    for (choice, parallel, expected) in cases {
        let body = enc(&Request { tool_choice: choice.clone(), parallel_tool_calls: parallel, ..base.clone() });
        assert_eq!(body["tool_choice"], expected, "{choice:?}");
        assert_eq!(body["tools"].as_array().unwrap().len(), 2);
    }
    let body = enc(&base);
    assert!(body.get("tool_choice").is_none());
    assert_eq!(body["tools"][1], json!({"name": "get_time", "input_schema": {"type": "object", "properties": {}}}));

    let body = enc(&Request { tool_choice: Some(ToolChoice::Allowed { names: vec!["get_time".into()], required: true }), ..base.clone() });
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(body["tools"][0]["name"], "get_time");
}

#[test]
fn history_with_tool_blocks_but_no_tools_declares_them() {
    let req = req_of(vec![
        user(vec![text("x")]),
        assistant(vec![call("toolu_1", "lookup", "{}")]),
        user(vec![result("toolu_1", "ok"), text("summarise")]),
    ]);
    let body = enc(&req);
    assert_eq!(body["tools"], json!([{"name": "lookup", "input_schema": {"type": "object"}}]));
    assert_eq!(body["tool_choice"], json!({"type": "none"}));
}

#[test]
fn thinking_from_effort_budget_and_options() {
    let base = req_of(vec![user(vec![text("hi")])]);
    let with = |rr: ReasoningRequest| Request { reasoning: Some(rr), ..base.clone() };

    let body = enc(&with(ReasoningRequest { effort: Some(Effort::High), ..Default::default() }));
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 16384}));
    assert!(body["max_tokens"].as_u64().unwrap() > 16384);

    let body = enc(&Request { max_output_tokens: Some(500), ..with(ReasoningRequest { budget_tokens: Some(100), ..Default::default() }) });
    assert_eq!(body["thinking"]["budget_tokens"], 1024);
    assert!(body["max_tokens"].as_u64().unwrap() > 1024);

    let body = enc(&Request { max_output_tokens: Some(20000), ..with(ReasoningRequest { budget_tokens: Some(4000), ..Default::default() }) });
    assert_eq!(body["max_tokens"], 20000);

    for off in [
        ReasoningRequest { disabled: true, ..Default::default() },
        ReasoningRequest { effort: Some(Effort::None), ..Default::default() },
        ReasoningRequest { budget_tokens: Some(0), ..Default::default() },
    ] {
        assert!(enc(&with(off)).get("thinking").is_none(), "{off:?}");
    }

    let opts = ModelOptions { reasoning_effort: Some("low".into()), ..Default::default() };
    assert_eq!(enc_with(&base, &opts)["thinking"]["budget_tokens"], 2048);
    // The request's own setting wins over the configured one.
    let off = with(ReasoningRequest { disabled: true, ..Default::default() });
    assert!(enc_with(&off, &opts).get("thinking").is_none());
    // Reasoning asked for without a level: medium.
    let body = enc(&with(ReasoningRequest { include_thoughts: Some(true), ..Default::default() }));
    assert_eq!(body["thinking"]["budget_tokens"], 8192);
}

#[test]
fn thinking_downgrades_forced_tool_choice_and_sampling() {
    let req = Request {
        tools: vec![weather_tool()],
        tool_choice: Some(ToolChoice::Named("get_weather".into())),
        parallel_tool_calls: Some(false),
        reasoning: Some(ReasoningRequest { effort: Some(Effort::Low), ..Default::default() }),
        temperature: Some(0.2),
        top_p: Some(0.97),
        top_k: Some(3),
        messages: vec![user(vec![text("hi")])],
        ..Request::default()
    };
    let body = enc(&req);
    assert_eq!(body["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    assert!(body.get("temperature").is_none() && body.get("top_k").is_none());
    assert_eq!(body["top_p"], 0.97);
}

#[test]
fn thinking_is_off_when_the_tool_loop_has_no_claude_thinking() {
    let foreign = Part::Reasoning(Reasoning { text: "r".into(), encrypted: Some("gAAA".into()), origin: Some(Protocol::OpenAiResponses), ..Default::default() });
    let loop_req = |thinking: Part| Request {
        tools: vec![weather_tool()],
        reasoning: Some(ReasoningRequest { effort: Some(Effort::Medium), ..Default::default() }),
        messages: vec![
            user(vec![text("weather?")]),
            assistant(vec![thinking, call("call_1", "get_weather", "{}")]),
            user(vec![result("call_1", "sunny")]),
        ],
        ..Request::default()
    };
    let body = enc(&loop_req(foreign));
    assert!(body.get("thinking").is_none(), "{body}");
    assert_eq!(types(&body["messages"][1]["content"]), ["tool_use"], "foreign reasoning is dropped, not turned into text");
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);

    let body = enc(&loop_req(claude_thinking("t", "sig")));
    assert_eq!(body["thinking"]["type"], "enabled");
    assert_eq!(body["messages"][1]["content"][0], json!({"type": "thinking", "thinking": "t", "signature": "sig"}));

    // A finished loop (a new user question) does not need thinking.
    let mut r = loop_req(Part::Text("".into()));
    r.messages.push(assistant(vec![text("Sunny.")]));
    r.messages.push(user(vec![text("thanks")]));
    assert_eq!(enc(&r)["thinking"]["type"], "enabled");
}

#[test]
fn thinking_is_hoisted_before_text_in_an_assistant_turn() {
    // A Chat client puts the text first and the reasoning just before its call.
    let req = Request {
        tools: vec![weather_tool()],
        reasoning: Some(ReasoningRequest { effort: Some(Effort::Medium), ..Default::default() }),
        messages: vec![
            user(vec![text("weather?")]),
            assistant(vec![text("Let me look."), claude_thinking("t", "sig"), call("call_1", "get_weather", "{}")]),
            user(vec![result("call_1", "sunny")]),
        ],
        ..Request::default()
    };
    let body = enc(&req);
    assert_eq!(types(&body["messages"][1]["content"]), ["thinking", "text", "tool_use"]);
    assert_eq!(body["thinking"]["type"], "enabled");
}

#[test]
fn prefill_is_trimmed_and_loses_thinking_when_thinking_is_off() {
    let req = req_of(vec![user(vec![text("hi")]), assistant(vec![claude_thinking("t", "s"), text("Sure:  \n")])]);
    let body = enc(&req);
    assert_eq!(body["messages"][1]["content"], json!([{"type": "text", "text": "Sure:"}]));
}

#[test]
fn structured_output_and_unsupported_fields() {
    let mut r = req_of(vec![user(vec![text("hi")])]);
    r.response_format = Some(ResponseFormat::JsonSchema { name: "x".into(), schema: json!({"type": "object"}), strict: Some(true), description: None });
    assert_eq!(enc(&r)["output_config"], json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}));
    r.response_format = Some(ResponseFormat::JsonObject);
    assert!(enc(&r).get("output_config").is_none());
    r.previous_response_id = Some("resp_1".into());
    let target = Target { model: "m", options: &ModelOptions::default(), quirks: Quirks::default() };
    let e = request::encode(&r, &target).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("previous_response_id"));
}

#[test]
fn count_tokens_body() {
    let ir = request::decode(&parse(REQUEST_RICH)).unwrap();
    let target = Target { model: "claude-up", options: &ModelOptions::default(), quirks: Quirks::default() };
    let body = request::encode_count(&ir, &target).unwrap();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["model", "system", "messages", "tools", "tool_choice", "thinking"]);
    assert_eq!(response::decode_count(&json!({"input_tokens": 2095})), Some(2095));
    assert_eq!(response::decode_count(&json!({})), None);
    assert_eq!(parse(&response::encode_count(14)), json!({"input_tokens": 14}));
}

// ------------------------------------------------------------------ responses

#[test]
fn decodes_a_response_with_thinking_and_tools() {
    let r = response::decode(&parse(RESPONSE_THINKING_TOOL), meta()).unwrap();
    assert_eq!(r.meta, meta());
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage, Usage { input_tokens: 2150, output_tokens: 120, cache_read_tokens: 2000, cache_write_tokens: 100, reasoning_tokens: 80 });
    assert_eq!(r.parts.len(), 4);
    assert_eq!(
        r.parts[0],
        claude_thinking("Let me check the weather.\nThe user said \"Paris\".", "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/sig==")
    );
    assert!(matches!(&r.parts[1], Part::Reasoning(x) if x.redacted.as_deref() == Some("EmwKAhgBEgy3va3pzix/redacted")));
    assert_eq!(r.parts[2], text("I'll look that up."));
    assert_eq!(r.parts[3], call("toolu_01A09q90qw90lq917835lq9", "get_weather", r#"{"city":"Paris"}"#));
}

#[test]
fn response_round_trips_through_the_wire() {
    let r = response::decode(&parse(RESPONSE_THINKING_TOOL), meta()).unwrap();
    let wire = parse(&response::encode(&r));
    assert_eq!(wire["id"], "msg_gw7f3a");
    assert_eq!(wire["model"], "ant.claude-sonnet-4-6");
    assert_eq!(wire["usage"]["input_tokens"], 50);
    assert_eq!(wire["usage"]["cache_read_input_tokens"], 2000);
    let original = parse(RESPONSE_THINKING_TOOL);
    assert_eq!(wire["content"], original["content"]);
    let back = response::decode(&wire, meta()).unwrap();
    assert_eq!(back.parts, r.parts);
    assert_eq!(back.stop, r.stop);
    assert_eq!((back.usage.input_tokens, back.usage.output_tokens, back.usage.cache_read_tokens, back.usage.cache_write_tokens), (2150, 120, 2000, 100));
}

#[test]
fn foreign_reasoning_reaches_a_claude_client_and_comes_back() {
    let foreign = Reasoning { text: "summary".into(), encrypted: Some("gAAAAB==".into()), id: Some("rs_1".into()), origin: Some(Protocol::OpenAiResponses), ..Default::default() };
    let r = Response {
        meta: meta(),
        parts: vec![Part::Reasoning(foreign.clone()), call("call_x", "f", r#"{"a":1}"#), text("")],
        stop: StopReason::ToolUse,
        usage: Usage::default(),
    };
    let wire = parse(&response::encode(&r));
    assert_eq!(types(&wire["content"]), ["thinking", "tool_use"]);
    assert_eq!(wire["content"][1]["input"], json!({"a": 1}));
    // The client sends the assistant turn back: the reasoning is Responses' again.
    let body = json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": wire["content"]}]});
    let ir = request::decode(&body).unwrap();
    assert_eq!(ir.messages[1].parts[0], Part::Reasoning(foreign));
    // …and is not sent to a Claude upstream.
    let up = enc(&ir);
    assert_eq!(types(&up["messages"][1]["content"]), ["tool_use"]);
}

#[test]
fn stop_reasons_and_odd_responses() {
    for (wire, stop) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("tool_use", StopReason::ToolUse),
        ("refusal", StopReason::ContentFilter),
        ("pause_turn", StopReason::EndTurn),
        ("model_context_window_exceeded", StopReason::MaxTokens),
    ] {
        let r = response::decode(&json!({"content": [], "stop_reason": wire}), meta()).unwrap();
        assert_eq!(r.stop, stop);
        if wire != "pause_turn" && wire != "model_context_window_exceeded" {
            assert_eq!(parse(&response::encode(&r))["stop_reason"], wire);
        }
    }
    // A tool call without an id gets a synthesised one.
    let r = response::decode(&json!({"content": [{"type": "tool_use", "name": "f"}]}), meta()).unwrap();
    assert_eq!(r.parts[0], call("call_gw7f3a_0", "f", "{}"));
    assert_eq!(r.stop, StopReason::ToolUse);
    let e = response::decode(&parse(ERROR_RATE_LIMIT), meta()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(response::decode(&json!({"id": "x"}), meta()).unwrap_err().kind, ErrorKind::UpstreamUnreachable);
    assert_eq!(response::decode(&json!("text"), meta()).unwrap_err().kind, ErrorKind::UpstreamUnreachable);
}

#[test]
fn error_bodies() {
    assert_eq!(super::error::message(&parse(ERROR_RATE_LIMIT)).unwrap(), "Number of request tokens has exceeded your per-minute rate limit");
    assert_eq!(super::error::message(&json!({"error": "bad gateway"})).as_deref(), Some("bad gateway"));
    assert_eq!(super::error::message(&json!({"message": "m"})).as_deref(), Some("m"));
    assert_eq!(super::error::message(&json!({"ok": true})), None);
    let e = super::error::decode(&json!({"type": "error", "error": {"type": "billing_error", "message": "pay"}})).unwrap();
    assert_eq!(e.status(), 402);
    let e = crate::protocols::decode_error(Protocol::Claude, 529, ERROR_RATE_LIMIT.as_bytes());
    assert_eq!(e.kind, ErrorKind::Overloaded);
}

// ------------------------------------------------------------------ stream decode

fn decode_stream_chunks(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), crate::error::GatewayError>) {
    crate::protocols::decode_sse(&mut stream::Decoder::new(meta()), chunks)
}

fn decode_stream(text: &str) -> (Vec<StreamEvent>, Result<(), crate::error::GatewayError>) {
    decode_stream_chunks(&[text.as_bytes()])
}

#[test]
fn decodes_a_thinking_and_tool_stream() {
    let (events, end) = decode_stream(STREAM_THINKING_TOOL);
    end.unwrap();
    let sig = "EqQBCgIYAhIM1gbcDa9+/sig==";
    let expected = vec![
        StreamEvent::Start { meta: meta(), input_tokens: 1482 },
        StreamEvent::ReasoningDelta("Need the weather ".into()),
        StreamEvent::ReasoningDelta("in Paris, café ☕.".into()),
        StreamEvent::ReasoningEnd(Reasoning { text: "Need the weather in Paris, café ☕.".into(), signature: Some(sig.into()), origin: Some(Protocol::Claude), ..Default::default() }),
        StreamEvent::ReasoningEnd(Reasoning { redacted: Some("EmwKAhgBEgy3va3pzix/redacted".into()), origin: Some(Protocol::Claude), ..Default::default() }),
        StreamEvent::TextDelta("Let me ".into()),
        StreamEvent::TextDelta("check.".into()),
        StreamEvent::ToolCallStart { id: "toolu_01A".into(), name: "get_weather".into() },
        StreamEvent::ToolCallDelta("{\"city\":".into()),
        StreamEvent::ToolCallDelta("\"Paris\"}".into()),
        StreamEvent::ToolCallStart { id: "toolu_01B".into(), name: "get_time".into() },
        StreamEvent::Finish {
            stop: StopReason::ToolUse,
            usage: Usage { input_tokens: 1482, output_tokens: 89, cache_read_tokens: 1000, cache_write_tokens: 10, reasoning_tokens: 30 },
        },
    ];
    assert_eq!(events, expected);
    let mut acc = Accumulator::default();
    events.iter().for_each(|e| acc.push(e));
    let r = acc.into_response().unwrap();
    assert_eq!(r.tool_calls().count(), 2);
    assert_eq!(r.text(), "Let me check.");
}

#[test]
fn stream_decode_is_the_same_at_every_split() {
    for fixture in [STREAM_THINKING_TOOL, STREAM_TEXT, STREAM_ERROR] {
        let whole = decode_stream(fixture);
        let bytes = fixture.as_bytes();
        for split in 0..=bytes.len() {
            let got = decode_stream_chunks(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(got, whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_stream_chunks(&singles), whole);
    }
}

#[test]
fn decodes_a_crlf_text_stream_with_usage_in_message_delta() {
    let (events, end) = decode_stream(STREAM_TEXT);
    end.unwrap();
    assert_eq!(events[0], StreamEvent::Start { meta: meta(), input_tokens: 12 });
    assert_eq!(events[1], StreamEvent::TextDelta("Hello".into()));
    assert_eq!(events.last().unwrap(), &StreamEvent::Finish { stop: StopReason::StopSequence, usage: Usage { input_tokens: 12, output_tokens: 15, ..Default::default() } });
}

#[test]
fn stream_errors_and_truncation() {
    let (events, end) = decode_stream(STREAM_ERROR);
    let e = end.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(e.message, "Overloaded");
    assert_eq!(events.last().unwrap(), &StreamEvent::TextDelta("Partial".into()));

    for (kind, expected) in [
        ("rate_limit_error", ErrorKind::RateLimited),
        ("api_error", ErrorKind::Internal),
        ("invalid_request_error", ErrorKind::InvalidRequest),
        ("timeout_error", ErrorKind::Timeout),
        ("something_new", ErrorKind::Internal),
    ] {
        let text = format!("event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":\"m\"}}}}\n\n");
        assert_eq!(decode_stream(&text).1.unwrap_err().kind, expected);
    }

    // Cut before message_stop, at every event boundary and inside events.
    let cut = STREAM_THINKING_TOOL.rfind("event: message_stop").unwrap();
    for end in (0..cut).step_by(7) {
        let (_, r) = decode_stream_chunks(&[&STREAM_THINKING_TOOL.as_bytes()[..end]]);
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UpstreamUnreachable, "cut at {end}");
    }
    let (_, r) = decode_stream("");
    assert!(r.unwrap_err().message.contains("ended early"));
    let (_, r) = decode_stream("event: message_start\ndata: {not json\n\n");
    assert_eq!(r.unwrap_err().kind, ErrorKind::UpstreamUnreachable);
}

#[test]
fn a_stream_whose_tool_input_arrives_whole_still_yields_arguments() {
    let text = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":1}}}\n\n\
        event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let (events, end) = decode_stream(text);
    end.unwrap();
    assert!(matches!(events[0], StreamEvent::Start { .. }));
    assert_eq!(events[2], StreamEvent::ToolCallDelta("{\"a\":1}".into()));
    assert!(matches!(events[3], StreamEvent::Finish { stop: StopReason::ToolUse, .. }));
}

// ------------------------------------------------------------------ stream encode

/// Parses encoder output: checks every event's name matches its `type`, returns the data.
fn parse_sse(bytes: &[u8]) -> Vec<Value> {
    let mut d = sse::Decoder::new();
    let mut events = d.feed(bytes);
    let (last, incomplete) = d.finish();
    assert!(!incomplete && last.is_none(), "every event is complete");
    events
        .drain(..)
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.event.as_deref(), v["type"].as_str(), "event name matches type");
            v
        })
        .collect()
}

/// Checks Anthropic's grammar: message_start first, blocks started and stopped in order
/// with contiguous indices, message_delta then message_stop last.
fn check_grammar(events: &[Value]) {
    assert_eq!(events[0]["type"], "message_start");
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut finished = false;
    for e in &events[1..] {
        assert!(!finished, "nothing after message_stop");
        match e["type"].as_str().unwrap() {
            "ping" => {}
            "content_block_start" => {
                assert!(open.is_none(), "one block at a time");
                assert_eq!(e["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(Some(e["index"].as_u64().unwrap()), open),
            "content_block_stop" => {
                assert_eq!(Some(e["index"].as_u64().unwrap()), open);
                open = None;
            }
            "message_delta" => assert!(open.is_none()),
            "message_stop" => finished = true,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(finished);
}

fn encode_events(events: &[StreamEvent]) -> Vec<u8> {
    let mut enc = stream::Encoder::default();
    let mut out = Vec::new();
    for e in events {
        enc.event(e, &mut out);
    }
    out
}

#[test]
fn stream_encode_round_trips_through_the_decoder() {
    let (events, _) = decode_stream(STREAM_THINKING_TOOL);
    let bytes = encode_events(&events);
    let parsed = parse_sse(&bytes);
    check_grammar(&parsed);
    let text = String::from_utf8(bytes).unwrap();
    let (again, end) = decode_stream(&text);
    end.unwrap();
    assert_eq!(again, events);
    // The signature_delta carries the native signature, before the block's stop.
    let sig = parsed.iter().position(|e| e["delta"]["type"] == "signature_delta").unwrap();
    assert_eq!(parsed[sig]["delta"]["signature"], "EqQBCgIYAhIM1gbcDa9+/sig==");
    assert_eq!(parsed[sig + 1]["type"], "content_block_stop");
    let md = parsed.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(md["usage"], json!({"input_tokens": 472, "output_tokens": 89, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 1000, "output_tokens_details": {"thinking_tokens": 30}}));
    assert_eq!(md["delta"]["stop_reason"], "tool_use");
}

#[test]
fn stream_encode_of_foreign_reasoning_and_edge_cases() {
    let foreign = Reasoning { text: "sum".into(), signature: Some("CpoB".into()), origin: Some(Protocol::Gemini), ..Default::default() };
    let events = vec![
        StreamEvent::Start { meta: meta(), input_tokens: 5 },
        StreamEvent::ReasoningDelta("sum".into()),
        StreamEvent::ReasoningEnd(foreign.clone()),
        // Reasoning without deltas, then text, reasoning without an end.
        StreamEvent::ReasoningEnd(Reasoning { text: "whole".into(), ..Default::default() }),
        StreamEvent::TextDelta("".into()),
        StreamEvent::TextDelta("Hi".into()),
        StreamEvent::ReasoningDelta("dangling".into()),
        StreamEvent::ToolCallDelta("ignored".into()),
        StreamEvent::ToolCallStart { id: "call_1".into(), name: "f".into() },
        StreamEvent::ToolCallDelta("".into()),
        StreamEvent::ToolCallDelta("{}".into()),
        StreamEvent::Finish { stop: StopReason::ContentFilter, usage: Usage { input_tokens: 5, output_tokens: 3, ..Default::default() } },
        StreamEvent::TextDelta("after the end".into()),
    ];
    let bytes = encode_events(&events);
    let parsed = parse_sse(&bytes);
    check_grammar(&parsed);
    let sigs: Vec<&Value> = parsed.iter().filter(|e| e["delta"]["type"] == "signature_delta").collect();
    assert_eq!(sigs.len(), 3);
    assert_eq!(carrier::from_client(sigs[0]["delta"]["signature"].as_str().unwrap(), Protocol::Claude, "sum"), foreign);
    let deltas: Vec<&Value> = parsed.iter().filter(|e| e["delta"]["type"] == "thinking_delta").collect();
    assert_eq!(deltas[1]["delta"]["thinking"], "whole");
    let md = parsed.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(md["delta"]["stop_reason"], "refusal");
    let tool = parsed.iter().find(|e| e["content_block"]["type"] == "tool_use").unwrap();
    assert_eq!(tool["content_block"], json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}}));
    let json_deltas = parsed.iter().filter(|e| e["delta"]["type"] == "input_json_delta").count();
    assert_eq!(json_deltas, 1);
}

#[test]
fn stream_encode_error_ends_the_stream() {
    let mut enc = stream::Encoder::default();
    let mut out = Vec::new();
    enc.event(&StreamEvent::Start { meta: meta(), input_tokens: 1 }, &mut out);
    enc.event(&StreamEvent::TextDelta("x".into()), &mut out);
    enc.error(&crate::error::GatewayError::new(ErrorKind::Overloaded, "Overloaded"), &mut out);
    enc.event(&StreamEvent::TextDelta("y".into()), &mut out);
    let parsed = parse_sse(&out);
    let last = parsed.last().unwrap();
    assert_eq!(last, &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    assert_eq!(parsed.len(), 5);
    // And the egress decoder reads it back as the same error.
    let (_, end) = decode_stream(std::str::from_utf8(&out).unwrap());
    assert_eq!(end.unwrap_err().kind, ErrorKind::Overloaded);
}

#[test]
fn message_start_carries_input_usage() {
    let out = encode_events(&[StreamEvent::Start { meta: meta(), input_tokens: 42 }]);
    let parsed = parse_sse(&out);
    assert_eq!(parsed[0]["message"]["id"], "msg_gw7f3a");
    assert_eq!(parsed[0]["message"]["usage"]["input_tokens"], 42);
    assert_eq!(parsed[1]["type"], "ping");
}

// ------------------------------------------------------------------ never panic

use crate::protocols::TestRng as Rng;

const WORDS: &[&str] = &[
    "type", "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "source",
    "base64", "url", "file", "content", "role", "user", "assistant", "system", "id", "name", "input", "signature",
    "data", "messages", "tools", "tool_choice", "auto", "any", "tool", "none", "enabled", "adaptive", "disabled",
    "budget_tokens", "max_tokens", "media_type", "tool_use_id", "is_error", "input_schema", "output_config",
    "effort", "format", "json_schema", "schema", "stop_reason", "usage", "input_tokens", "delta", "index",
    "content_block", "message", "error", "partial_json", "thinking_delta", "signature_delta", "text_delta",
    "input_json_delta", "message_start", "message_delta", "message_stop", "content_block_start",
    "content_block_delta", "content_block_stop", "metadata", "user_id", "stop_sequences", "title",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 4 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(100_000)),
        3 => json!(-(rng.below(1000) as f64) / 7.0),
        4 => json!(WORDS[rng.below(WORDS.len() as u64) as usize]),
        5 | 6 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(6) {
                let k = WORDS[rng.below(WORDS.len() as u64) as usize];
                m.insert(k.into(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(5)).map(|_| random_value(rng, depth + 1)).collect()),
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let options = ModelOptions { reasoning_effort: Some("high".into()), ..Default::default() };
    let target = Target { model: "m", options: &options, quirks: Quirks::default() };
    for _ in 0..4000 {
        let v = random_value(&mut rng, 0);
        if let Ok(ir) = request::decode(&v) {
            let _ = request::encode(&ir, &target);
            let _ = request::encode_count(&ir, &target);
        }
        if let Ok(r) = response::decode(&v, meta()) {
            let _ = response::encode(&r);
        }
        let _ = response::decode_count(&v);
        let _ = super::error::message(&v);
        let mut dec = stream::Decoder::new(meta());
        let mut out = Vec::new();
        let ev = sse::Event { event: None, data: v.to_string(), id: None };
        let _ = dec.event(&ev, &mut out);
        let _ = dec.finish(&mut out);
    }
    // Random byte streams and shuffled real events.
    let real: Vec<&str> = STREAM_THINKING_TOOL.split("\n\n").collect();
    for _ in 0..500 {
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..rng.below(30) {
            if rng.below(3) == 0 {
                bytes.extend((0..rng.below(20)).map(|_| rng.below(256) as u8));
            } else {
                bytes.extend_from_slice(real[rng.below(real.len() as u64) as usize].as_bytes());
                bytes.extend_from_slice(b"\n\n");
            }
        }
        let (events, _) = decode_stream_chunks(&[&bytes]);
        let mut enc = stream::Encoder::default();
        let mut out = Vec::new();
        for e in &events {
            enc.event(e, &mut out);
        }
    }
    // Random IR through the egress encoder.
    for _ in 0..2000 {
        let mut messages = Vec::new();
        for _ in 0..rng.below(8) {
            let role = if rng.below(2) == 0 { Role::User } else { Role::Assistant };
            let mut parts = Vec::new();
            for _ in 0..rng.below(5) {
                let id = ["a", "b", "c.d", ""][rng.below(4) as usize];
                parts.push(match rng.below(6) {
                    0 => text(["", "x", " "][rng.below(3) as usize]),
                    1 => call(id, "f", ["", "{", "[1]", "{\"a\":1}"][rng.below(4) as usize]),
                    2 => result(id, "r"),
                    3 => claude_thinking("t", ["", "s"][rng.below(2) as usize]),
                    4 => Part::Reasoning(Reasoning { redacted: Some("d".into()), origin: Some(Protocol::Claude), ..Default::default() }),
                    _ => Part::Image(Media::Url { url: "u".into(), media_type: None }),
                });
            }
            messages.push(Message { role, parts });
        }
        let req = Request {
            messages,
            tool_choice: [None, Some(ToolChoice::Required), Some(ToolChoice::Allowed { names: vec!["f".into()], required: false })][rng.below(3) as usize].clone(),
            reasoning: [None, Some(ReasoningRequest { budget_tokens: Some(rng.below(40_000)), ..Default::default() })][rng.below(2) as usize],
            ..Request::default()
        };
        if let Ok(body) = request::encode(&req, &target) {
            check_alternation(&body);
        }
    }
}

/// The invariants every encoded body meets.
fn check_alternation(body: &Value) {
    let msgs = body["messages"].as_array().unwrap();
    assert!(!msgs.is_empty());
    assert_eq!(msgs[0]["role"], "user");
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if i > 0 {
            assert_ne!(m["role"], msgs[i - 1]["role"], "{body}");
        }
        let content = m["content"].as_array().unwrap();
        assert!(!content.is_empty());
        for b in content {
            if b["type"] == "text" {
                assert!(!b["text"].as_str().unwrap().trim().is_empty());
            }
            for key in ["id", "tool_use_id"] {
                if let Some(id) = b[key].as_str() {
                    assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
                }
            }
        }
        if m["role"] == "user" {
            let results: Vec<String> = content.iter().take_while(|b| b["type"] == "tool_result").map(|b| b["tool_use_id"].as_str().unwrap().to_string()).collect();
            let mut expect = pending.clone();
            expect.sort();
            expect.dedup();
            let mut got = results.clone();
            got.sort();
            assert_eq!(got, expect, "{body}");
            assert!(content.iter().skip(results.len()).all(|b| b["type"] != "tool_result"));
            pending.clear();
        } else {
            pending = content.iter().filter(|b| b["type"] == "tool_use").map(|b| b["id"].as_str().unwrap().to_string()).collect();
        }
    }
    assert!(pending.is_empty(), "{body}");
    if let Some(budget) = body["thinking"]["budget_tokens"].as_u64() {
        assert!(budget >= 1024 && budget < body["max_tokens"].as_u64().unwrap());
        assert!(!matches!(body["tool_choice"]["type"].as_str(), Some("any" | "tool")));
    }
}

#[test]
fn newer_models_get_adaptive_thinking() {
    use super::request::adaptive_thinking;
    for (model, adaptive) in [
        ("claude-opus-4-7", true),
        ("claude-sonnet-4-6", true),
        ("claude-sonnet-4-5", false),
        ("claude-sonnet-4-5-20250929", false),
        ("claude-3-7-sonnet-20250219", false),
        ("claude-opus-5", true),
        ("anthropic/claude-opus-4.6", true),
        ("gpt-4o", false),
    ] {
        assert_eq!(adaptive_thinking(model), adaptive, "{model}");
    }
    let req = crate::protocols::openai_chat::request::decode(&serde_json::json!({
        "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    }))
    .unwrap();
    let options = crate::config::ModelOptions::default();
    let target = crate::protocols::Target { model: "claude-opus-4-7", options: &options, quirks: Default::default() };
    let body = super::request::encode(&req, &target).unwrap();
    assert_eq!(body["thinking"], serde_json::json!({"type": "adaptive"}));
    assert_eq!(body["output_config"]["effort"], "high");
    assert_eq!(body["output_config"]["format"]["type"], "json_schema");
}

#[test]
fn prefill_goes_only_to_models_that_take_it() {
    let req = req_of(vec![user(vec![text("Write a haiku")]), assistant(vec![text("Autumn moon")])]);
    let options = ModelOptions::default();
    for (model, roles) in [("claude-sonnet-4-5", vec!["user", "assistant"]), ("claude-sonnet-4-6", vec!["user"]), ("claude-opus-4-7", vec!["user"])] {
        let target = Target { model, options: &options, quirks: Quirks::default() };
        let body = request::encode(&req, &target).unwrap();
        let got: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(got, roles, "{model}");
    }
}

#[test]
fn prompt_cache_marks_tools_system_and_the_last_message() {
    let mut req = req_of(vec![
        user(vec![text("weather?")]),
        assistant(vec![claude_thinking("hmm", "sig"), call("toolu_1", "get_weather", r#"{"city":"Paris"}"#)]),
        user(vec![result("toolu_1", "sunny"), text("and tomorrow?")]),
    ]);
    req.system = vec![text("You are terse."), text("Use metric units.")];
    req.tools = vec![weather_tool(), Tool { name: "get_time".into(), ..weather_tool() }];
    let marked = |body: &Value| -> Vec<String> {
        let mut at = Vec::new();
        for (key, items) in [("tools", &body["tools"]), ("system", &body["system"])] {
            for (i, item) in items.as_array().into_iter().flatten().enumerate() {
                if item.get("cache_control").is_some() {
                    at.push(format!("{key}[{i}]"));
                }
            }
        }
        for (m, msg) in body["messages"].as_array().unwrap().iter().enumerate() {
            for (b, block) in msg["content"].as_array().unwrap().iter().enumerate() {
                if block.get("cache_control").is_some() {
                    assert_eq!(block["cache_control"], json!({"type": "ephemeral"}));
                    at.push(format!("messages[{m}].content[{b}]"));
                }
            }
        }
        at
    };
    assert!(marked(&enc(&req)).is_empty(), "no breakpoints unless configured or asked for");
    let options = ModelOptions { prompt_cache: Some(true), ..ModelOptions::default() };
    let body = enc_with(&req, &options);
    assert_eq!(marked(&body), vec!["tools[1]", "system[1]", "messages[2].content[1]"], "{body:#}");
    // A client that asked for caching gets it, unless the model's option turns it off.
    req.prompt_cache = true;
    assert_eq!(marked(&enc(&req)).len(), 3);
    let off = ModelOptions { prompt_cache: Some(false), ..ModelOptions::default() };
    assert!(marked(&enc_with(&req, &off)).is_empty());
}
