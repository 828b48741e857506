use super::*;
use serde_json::Value;

const CONFIG: &str = r#"{
  "providers": {
    "oai": {"type": "openai-chat-completions", "baseURL": "http://up.test/v1", "apiKey": "sk-upstream-1", "models": {"mini": {"upstreamModel": "gpt-4o-mini"}}},
    "resp": {"type": "openai-responses", "baseURL": "http://up.test", "apiKeyEnv": "RESP_KEY", "models": ["gpt-5"]},
    "ant": {"type": "claude", "baseURL": "http://up.test", "apiKey": "sk-ant-1", "models": ["claude-x"]},
    "gem": {"type": "gemini", "baseURL": "http://up.test", "apiKey": "AIza-1", "models": ["gemini-2.5-flash"]},
    "echo": {"type": "echo"}
  },
  "limits": {"maxBodyBytes": 4000}
}"#;

struct Fixture {
    config: Config,
    keys: Vec<String>,
}

fn fixture() -> Fixture {
    Fixture { config: crate::config::parse(CONFIG).unwrap(), keys: vec!["gw-key".into()] }
}

fn headers_fn(headers: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[allow(clippy::result_large_err)] // a test helper: the plan as it is
fn run(f: &Fixture, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> Result<Reply, Forward> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let header = headers_fn(headers);
    let req = Request { method, path, query, header: &header };
    let setup = Setup::Ready { config: &f.config, keys: &f.keys };
    match begin(&req, &setup) {
        Begin::Reply(r) => Ok(r),
        Begin::Status => Ok(status_reply(&f.config, &crate::attempts::Health::default(), 0)),
        Begin::ReadBody { route, .. } => {
            let env = |name: &str| (name == "RESP_KEY").then(|| "sk-from-env".to_string());
            let ctx = Context { request_id: "req-1", now_unix_secs: 1_700_000_000, env: &env, pick: 0.0 };
            let mut resolution = Resolution::default();
            match plan(&req, &route, body.as_bytes(), &f.config, &ctx, &mut resolution) {
                Plan::Reply(r) => Ok(r),
                Plan::Forward(fw) => Err(fw),
            }
        }
    }
}

fn reply(f: &Fixture, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    run(f, method, path, headers, body).unwrap_or_else(|fw| panic!("expected a reply, got a forward to {}", fw.targets[0].url))
}

fn forward(f: &Fixture, path: &str, headers: &[(&str, &str)], body: &str) -> Forward {
    match run(f, "POST", path, headers, body) {
        Err(fw) => fw,
        Ok(r) => panic!("expected a forward, got {} {:?}", r.status, r.body),
    }
}

fn req0(fw: &Forward) -> crate::upstream::UpstreamRequest {
    fw.targets[0].request(0)
}

fn json(r: &Reply) -> Value {
    match &r.body {
        Body::Bytes(b) => serde_json::from_slice(b).unwrap(),
        other => panic!("not a JSON body: {other:?}"),
    }
}

const AUTH: (&str, &str) = ("authorization", "Bearer gw-key");

#[test]
fn preflight_and_health_need_no_auth() {
    let f = fixture();
    let r = reply(&f, "OPTIONS", "/v1/chat/completions", &[], "");
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-headers").unwrap().contains("x-goog-api-key"));
    assert_eq!(reply(&f, "GET", "/health", &[], "").status, 200);
    let head = reply(&f, "HEAD", "/", &[], "");
    assert_eq!((head.status, head.body), (200, Body::Empty));
}

#[test]
fn broken_setup_fails_closed_in_the_callers_format() {
    let header = headers_fn(&[AUTH]);
    let req = Request { method: "POST", path: "/v1/messages", query: "", header: &header };
    let setup = Setup::Broken("ANY_API_CONFIG is missing: set it".into());
    let Begin::Reply(r) = begin(&req, &setup) else { panic!() };
    assert_eq!(r.status, 500);
    assert_eq!(json(&r)["error"]["type"], "api_error");
    assert!(json(&r)["error"]["message"].as_str().unwrap().contains("ANY_API_CONFIG"));
}

#[test]
fn auth_is_checked_per_protocol() {
    let f = fixture();
    let r = reply(&f, "POST", "/v1/chat/completions", &[], "{}");
    assert_eq!(r.status, 401);
    assert_eq!(json(&r)["error"]["code"], "invalid_api_key");
    let r = reply(&f, "POST", "/v1/messages", &[("x-api-key", "nope")], "{}");
    assert_eq!(json(&r)["error"]["type"], "authentication_error");
    let r = reply(&f, "GET", "/v1beta/models?key=gw-key", &[], "");
    assert_eq!(r.status, 200);
    let r = reply(&f, "GET", "/v1beta/models", &[("x-goog-api-key", "bad")], "");
    assert_eq!(json(&r)["error"]["status"], "UNAUTHENTICATED");
}

#[test]
fn lists_models_in_each_format() {
    let f = fixture();
    let list = json(&reply(&f, "GET", "/v1/models", &[AUTH], ""));
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["ant.claude-x", "gem.gemini-2.5-flash", "oai.mini", "resp.gpt-5"]);
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let gem = json(&reply(&f, "GET", "/gemini/v1beta/models", &[AUTH], ""));
    assert_eq!(gem["models"][0]["name"], "models/ant.claude-x");
    let one = json(&reply(&f, "GET", "/v1beta/models/oai.mini", &[AUTH], ""));
    assert_eq!(one["name"], "models/oai.mini");
    let missing = reply(&f, "GET", "/claude/v1/models/oai.nope", &[AUTH], "");
    assert_eq!(missing.status, 404);
}

#[test]
fn unknown_paths_and_methods() {
    let f = fixture();
    let r = reply(&f, "POST", "/v2/whatever", &[AUTH], "");
    assert_eq!(r.status, 404);
    let r = reply(&f, "GET", "/claude/v1/messages", &[AUTH], "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(json(&r)["type"], "error");
}

#[test]
fn bad_bodies_are_400_in_the_callers_format() {
    let f = fixture();
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH], "{not json");
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"]["message"].as_str().unwrap().contains("not valid JSON"));
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH], r#"{"model": 5, "messages": []}"#);
    assert_eq!(json(&r)["error"]["param"], "model");
    let r = reply(&f, "POST", "/v1/messages", &[AUTH], r#"{"model": "ant.claude-x", "messages": "hi"}"#);
    assert_eq!(json(&r)["error"]["type"], "invalid_request_error");
    let r = reply(&f, "POST", "/v1beta/models/gem.gemini-2.5-flash:generateContent", &[AUTH], r#"{"contents": {}}"#);
    assert_eq!(json(&r)["error"]["status"], "INVALID_ARGUMENT");
    let r = reply(&f, "POST", "/v1/responses", &[AUTH], r#"{"model": "resp.gpt-5", "input": 3}"#);
    assert_eq!(r.status, 400);
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH], r#"{"messages": []}"#);
    assert_eq!(json(&r)["error"]["message"], "Missing required parameter: 'model'.");
}

#[test]
fn oversized_bodies_are_413() {
    let f = fixture();
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH, ("content-length", "9000")], "{}");
    assert_eq!(r.status, 413);
    let big = format!(r#"{{"model":"echo.x","messages":[{{"role":"user","content":"{}"}}]}}"#, "a".repeat(6000));
    assert_eq!(reply(&f, "POST", "/v1/chat/completions", &[AUTH], &big).status, 413);
}

#[test]
fn unknown_models_are_404() {
    let f = fixture();
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH], r#"{"model": "oai.gpt-9", "messages": []}"#);
    assert_eq!(r.status, 404);
    assert_eq!(json(&r)["error"]["code"], "model_not_found");
    assert!(json(&r)["error"]["message"].as_str().unwrap().contains("oai.gpt-9"));
}

#[test]
fn passthrough_rewrites_only_the_model() {
    let f = fixture();
    let body = r#"{"model":"oai.mini","messages":[{"role":"user","content":"hi"}],"temperature":1.0,"stream":true}"#;
    let fw = forward(&f, "/v1/chat/completions", &[AUTH], body);
    assert_eq!(req0(&fw).url, "http://up.test/v1/chat/completions");
    assert_eq!(
        String::from_utf8(req0(&fw).body.clone()).unwrap(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":1.0,"stream":true}"#
    );
    assert!(fw.stream);
    let r0 = req0(&fw);
    let auth: Vec<_> = r0.headers.iter().filter(|(k, _)| k == "authorization").collect();
    assert_eq!(auth, vec![&("authorization".to_string(), "Bearer sk-upstream-1".to_string())]);
    assert!(!format!("{:?}", req0(&fw)).contains("gw-key"));
}

#[test]
fn passthrough_auth_per_provider() {
    let f = fixture();
    let fw = forward(&f, "/v1/responses", &[AUTH], r#"{"model":"resp.gpt-5","input":"x"}"#);
    assert!(req0(&fw).headers.contains(&("authorization".into(), "Bearer sk-from-env".into())));
    let fw = forward(
        &f,
        "/v1/messages?beta=true",
        &[("x-api-key", "gw-key"), ("anthropic-version", "2023-06-01"), ("anthropic-beta", "b1")],
        r#"{"model":"ant.claude-x","max_tokens":5,"messages":[]}"#,
    );
    assert_eq!(req0(&fw).url, "http://up.test/v1/messages?beta=true");
    assert!(req0(&fw).headers.contains(&("x-api-key".into(), "sk-ant-1".into())));
    assert!(req0(&fw).headers.contains(&("anthropic-beta".into(), "b1".into())));
    let fw = forward(&f, "/v1/messages/count_tokens", &[AUTH], r#"{"model":"ant.claude-x","messages":[]}"#);
    assert_eq!(req0(&fw).url, "http://up.test/v1/messages/count_tokens");
}

#[test]
fn gemini_passthrough_strips_the_key_and_keeps_alt() {
    let f = fixture();
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let fw = forward(&f, "/gemini/v1beta/models/gem.gemini-2.5-flash:streamGenerateContent?alt=sse&key=gw-key", &[], body);
    assert_eq!(req0(&fw).url, "http://up.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_eq!(req0(&fw).body, body.as_bytes());
    assert!(fw.stream);
    assert!(req0(&fw).headers.contains(&("x-goog-api-key".into(), "AIza-1".into())));
    let count = r#"{"generateContentRequest":{"model":"models/gem.gemini-2.5-flash","contents":[]}}"#;
    let fw = forward(&f, "/v1beta/models/gem.gemini-2.5-flash:countTokens", &[AUTH], count);
    assert_eq!(
        String::from_utf8(req0(&fw).body).unwrap(),
        r#"{"generateContentRequest":{"model":"models/gemini-2.5-flash","contents":[]}}"#
    );
}

#[test]
fn missing_env_key_is_a_500_naming_the_secret() {
    let f = fixture();
    let header = headers_fn(&[AUTH]);
    let req = Request { method: "POST", path: "/v1/responses", query: "", header: &header };
    let setup = Setup::Ready { config: &f.config, keys: &f.keys };
    let Begin::ReadBody { route, .. } = begin(&req, &setup) else { panic!() };
    let env = |_: &str| None;
    let ctx = Context { request_id: "r", now_unix_secs: 0, env: &env, pick: 0.0 };
    let Plan::Reply(r) = plan(&req, &route, br#"{"model":"resp.gpt-5"}"#, &f.config, &ctx, &mut Resolution::default()) else { panic!() };
    assert_eq!(r.status, 500);
    assert!(json(&r)["error"]["message"].as_str().unwrap().contains("RESP_KEY"));
}

#[test]
fn cross_protocol_requests_are_converted() {
    let f = fixture();
    let body = r#"{"model":"ant.claude-x","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}"#;
    let fw = forward(&f, "/v1/chat/completions", &[AUTH], body);
    assert_eq!(req0(&fw).url, "http://up.test/v1/messages");
    assert!(req0(&fw).headers.contains(&("anthropic-version".into(), "2023-06-01".into())));
    let sent: Value = serde_json::from_slice(&req0(&fw).body).unwrap();
    assert_eq!(sent["model"], "claude-x");
    assert_eq!(sent["system"][0]["text"], "Be brief.");
    assert_eq!(sent["max_tokens"], 8192);
    assert_eq!(sent["stream"], true);
    let c = fw.targets[0].conversion.clone().expect("a conversion");
    assert_eq!((c.client, c.upstream, c.stream), (Protocol::OpenAiChat, Protocol::Claude, true));
    assert_eq!(c.meta.model, "ant.claude-x");
}

fn sse_datas(r: &Reply) -> Vec<(Option<String>, String)> {
    let Body::Chunks(chunks) = &r.body else { panic!("not streamed: {:?}", r.body) };
    let mut d = crate::sse::Decoder::new();
    chunks.iter().flat_map(|c| d.feed(c)).map(|e| (e.event, e.data)).collect()
}

#[test]
fn echo_answers_every_protocol() {
    let f = fixture();
    let chat = json(&reply(&f, "POST", "/v1/chat/completions", &[AUTH], r#"{"model":"echo.e1","messages":[{"role":"user","content":"ping"}]}"#));
    assert_eq!(chat["choices"][0]["message"]["content"], "Echo: ping");
    assert_eq!(chat["model"], "echo.e1");
    assert!(chat["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let claude = json(&reply(&f, "POST", "/v1/messages", &[AUTH], r#"{"model":"echo.e1","max_tokens":9,"messages":[{"role":"user","content":"ping"}]}"#));
    assert_eq!(claude["content"][0]["text"], "Echo: ping");
    assert_eq!(claude["stop_reason"], "end_turn");
    let resp = json(&reply(&f, "POST", "/v1/responses", &[AUTH], r#"{"model":"echo.e1","input":"ping"}"#));
    assert_eq!(resp["output"][0]["content"][0]["text"], "Echo: ping");
    assert_eq!(resp["status"], "completed");
    let gem = json(&reply(&f, "POST", "/v1beta/models/echo.e1:generateContent", &[AUTH], r#"{"contents":[{"parts":[{"text":"ping"}]}]}"#));
    assert_eq!(gem["candidates"][0]["content"]["parts"][0]["text"], "Echo: ping");
    assert_eq!(gem["candidates"][0]["finishReason"], "STOP");
    let count = json(&reply(&f, "POST", "/v1/messages/count_tokens", &[AUTH], r#"{"model":"echo.e1","messages":[{"role":"user","content":"ping"}]}"#));
    assert!(count["input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn echo_streams_in_each_grammar() {
    let f = fixture();
    let r = reply(&f, "POST", "/v1/chat/completions", &[AUTH], r#"{"model":"echo.e","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}"#);
    assert_eq!(r.header("content-encoding"), Some("identity"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let events = sse_datas(&r);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let text: String = events.iter().filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok()).filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(String::from)).collect();
    assert_eq!(text, "Echo: a b");

    let r = reply(&f, "POST", "/v1/messages", &[AUTH], r#"{"model":"echo.e","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"a"}]}"#);
    let names: Vec<String> = sse_datas(&r).into_iter().map(|(e, _)| e.unwrap()).collect();
    assert_eq!(names.first().unwrap(), "message_start");
    assert_eq!(names.last().unwrap(), "message_stop");
    assert!(names.contains(&"content_block_start".to_string()) && names.contains(&"message_delta".to_string()));

    let r = reply(&f, "POST", "/v1/responses", &[AUTH], r#"{"model":"echo.e","stream":true,"input":"a"}"#);
    let events = sse_datas(&r);
    for (i, (name, data)) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"].as_str(), name.as_deref());
        assert_eq!(v["sequence_number"], i as u64);
    }
    assert_eq!(events.last().unwrap().0.as_deref(), Some("response.completed"));

    let r = reply(&f, "POST", "/v1beta/models/echo.e:streamGenerateContent?alt=sse", &[AUTH], r#"{"contents":[{"parts":[{"text":"a"}]}]}"#);
    let last: Value = serde_json::from_str(&sse_datas(&r).last().unwrap().1).unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);

    let r = reply(&f, "POST", "/v1beta/models/echo.e:streamGenerateContent", &[AUTH], r#"{"contents":[{"parts":[{"text":"a"}]}]}"#);
    let Body::Chunks(chunks) = &r.body else { panic!() };
    let array: Value = serde_json::from_slice(&chunks.concat()).unwrap();
    assert!(array.as_array().unwrap().len() >= 2);
}

#[test]
fn upstream_headers_and_failures() {
    let headers = upstream_reply_headers(&[
        ("Content-Type".into(), "text/event-stream".into()),
        ("x-request-id".into(), "up-1".into()),
        ("retry-after".into(), "7".into()),
        ("set-cookie".into(), "a=b".into()),
        ("x-ratelimit-remaining-tokens".into(), "10".into()),
    ]);
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("x-upstream-request-id"), Some("up-1"));
    assert_eq!(get("retry-after"), Some("7"));
    assert_eq!(get("set-cookie"), None);
    assert_eq!(get("x-ratelimit-remaining-tokens"), Some("10"));

    // A JSON answer relayed as it arrives is sent uncompressed.
    let json = relayed_reply_headers(upstream_reply_headers(&[("content-type".into(), "application/json".into())]));
    assert!(json.contains(&("content-encoding".into(), "identity".into())));

    // Every committed stream goes out uncompressed and uncached, each header once; a
    // converted one with the caller's content type instead of the upstream's.
    let values = |hs: &[(String, String)], n: &str| hs.iter().filter(|(k, _)| k == n).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let passthrough = stream_reply_headers(headers.clone(), None);
    let json_array = stream_reply_headers(upstream_reply_headers(&[("content-type".into(), "application/json".into())]), None);
    let converted = stream_reply_headers(headers.clone(), Some(StreamFraming::JsonArray));
    for hs in [&passthrough, &json_array, &converted] {
        assert_eq!(values(hs, "content-encoding"), ["identity"]);
        assert_eq!(values(hs, "cache-control"), ["no-cache"]);
        assert_eq!(values(hs, "content-type").len(), 1);
    }
    assert_eq!(values(&passthrough, "content-type"), ["text/event-stream"]);
    assert_eq!(values(&converted, "content-type"), ["application/json"]);
    assert_eq!(values(&converted, "x-upstream-request-id"), ["up-1"]);

    let f = fixture();
    let fw = forward(&f, "/v1/messages", &[AUTH], r#"{"model":"ant.claude-x","messages":[]}"#);
    let r = upstream_failure(&fw, &fw.targets[0], &Failure::Unreachable("connect failed with key sk-ant-1".into()));
    assert_eq!(r.status, 502);
    let text = String::from_utf8(match r.body { Body::Bytes(b) => b, _ => vec![] }).unwrap();
    assert!(!text.contains("sk-ant-1") && text.contains("[redacted]"), "{text}");
    let r = upstream_failure(&fw, &fw.targets[0], &Failure::Timeout { ms: 3000, setting: "timeouts.firstByteMs" });
    assert_eq!(r.status, 504);
}

#[test]
fn websocket_attempts_on_responses_get_426() {
    let f = fixture();
    let r = reply(&f, "GET", "/v1/responses", &[AUTH, ("upgrade", "websocket")], "");
    assert_eq!(r.status, 426);
    assert_eq!(reply(&f, "GET", "/v1/responses", &[AUTH], "").status, 405);
}

#[test]
fn status_needs_auth_and_shows_no_keys() {
    let f = fixture();
    assert_eq!(reply(&f, "GET", "/status", &[], "").status, 401);
    let r = reply(&f, "GET", "/status", &[AUTH], "");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(match r.body { Body::Bytes(b) => b, _ => vec![] }).unwrap();
    assert!(text.contains("\"providers\"") && !text.contains("sk-upstream-1") && !text.contains("AIza-1"), "{text}");
}

#[test]
fn routes_plan_every_target_in_order() {
    let config = crate::config::parse(r#"{"providers": {
        "a": {"type": "claude", "baseURL": "http://a.test", "apiKey": ["k1", "k2"], "models": ["m"]},
        "b": {"type": "openai-chat-completions", "baseURL": "http://b.test/v1", "apiKeyEnv": "MISSING", "models": ["m"]},
        "c": {"type": "gemini", "baseURL": "http://c.test", "apiKey": "k3", "models": ["m"]}},
        "routes": {"smart": {"targets": ["a.m", "b.m", "c.m"]}}}"#).unwrap();
    let f = Fixture { config, keys: vec!["gw-key".into()] };
    let fw = forward(&f, "/v1/chat/completions", &[AUTH], r#"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#);
    // b's secret is missing: it is left out, the others stay in order.
    let ids: Vec<&str> = fw.targets.iter().map(|t| t.target_id.as_str()).collect();
    assert_eq!(ids, vec!["a.m", "c.m"]);
    assert_eq!(fw.route.as_deref(), Some("smart"));
    assert_eq!(fw.targets[0].headers_per_key.len(), 2);
    assert!(fw.targets[0].request(1).headers.contains(&("x-api-key".into(), "k2".into())));
    assert_eq!(fw.targets[1].url, "http://c.test/v1beta/models/m:generateContent");
    let candidates = fw.candidates();
    assert_eq!((candidates[0].keys, candidates[1].keys), (2, 1));
}

#[test]
fn thinking_suffixes_convert_even_within_a_protocol() {
    let f = fixture();
    let fw = forward(&f, "/v1/messages", &[AUTH], r#"{"model":"ant.claude-x-thinking","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#);
    let sent: Value = serde_json::from_slice(&req0(&fw).body).unwrap();
    assert_eq!(sent["model"], "claude-x");
    assert_eq!(sent["thinking"]["type"], "enabled");
    assert!(fw.targets[0].conversion.as_ref().unwrap().hide_reasoning);
    // The caller's betas go along, and its caching survives as the gateway's breakpoints.
    let beta = ("anthropic-beta", "context-1m-2025-08-07");
    let body = r#"{"model":"ant.claude-x-thinking","max_tokens":100,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}"#;
    let fw = forward(&f, "/v1/messages", &[AUTH, beta], body);
    let up = req0(&fw);
    assert!(up.headers.iter().any(|(n, v)| n == "anthropic-beta" && v == "context-1m-2025-08-07"), "{:?}", up.headers);
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(sent["system"][0]["cache_control"]["type"], "ephemeral", "{sent}");
}

#[test]
fn mixed_routes_pass_same_protocol_targets_through_untouched() {
    let config = crate::config::parse(r#"{"providers": {
        "ant": {"type": "claude", "baseURL": "http://a.test", "apiKey": "k1", "models": ["c"]},
        "oai": {"type": "openai-chat-completions", "baseURL": "http://b.test/v1", "apiKey": "k2", "models": ["g"]}},
        "routes": {"mix": {"targets": ["ant.c", "oai.g"]}}}"#).unwrap();
    let f = Fixture { config, keys: vec!["gw-key".into()] };
    let body = r#"{"model":"mix","max_tokens":5,"service_tier":"auto","messages":[{"role":"user","content":"hello"}]}"#;
    let fw = forward(&f, "/v1/messages", &[AUTH], body);
    assert!(fw.targets[0].conversion.is_none());
    assert_eq!(String::from_utf8(req0(&fw).body).unwrap(), body.replace("\"mix\"", "\"c\""));
    assert!(fw.targets[1].conversion.is_some());
}

#[test]
fn reasoning_packed_from_another_provider_never_reaches_a_same_protocol_upstream() {
    use crate::carrier;
    use crate::ir::Reasoning;
    let f = fixture();
    let foreign = Reasoning { encrypted: Some("gAAAA".into()), origin: Some(Protocol::OpenAiResponses), ..Default::default() };
    let sent = |path: &str, body: String| -> Value { serde_json::from_slice(&req0(&forward(&f, path, &[AUTH], &body)).body).unwrap() };

    // Claude: the packed thinking block goes, Claude's own stays byte-exact, cache marks stay;
    // the tool loop now lacks thinking, so thinking is switched off.
    let body = format!(
        r#"{{"model":"ant.claude-x","max_tokens":900,"thinking":{{"type":"enabled","budget_tokens":500}},"system":[{{"type":"text","text":"s","cache_control":{{"type":"ephemeral"}}}}],"messages":[
        {{"role":"user","content":"q1"}},
        {{"role":"assistant","content":[{{"type":"thinking","thinking":"mine","signature":"EqQB+/="}},{{"type":"text","text":"a1"}}]}},
        {{"role":"user","content":"q2"}},
        {{"role":"assistant","content":[{{"type":"thinking","thinking":"t","signature":"{p}"}},{{"type":"tool_use","id":"toolu_1","name":"f","input":{{}}}}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}}]}}]}}"#,
        p = carrier::pack(&foreign)
    );
    let v = sent("/v1/messages", body);
    assert_eq!(v["messages"][1]["content"][0]["signature"], "EqQB+/=");
    assert_eq!(v["messages"][3]["content"].as_array().unwrap().len(), 1);
    assert_eq!(v["messages"][3]["content"][0]["type"], "tool_use");
    assert!(v.get("thinking").is_none());
    assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
    // Outside a tool loop thinking stays on.
    let body = format!(
        r#"{{"model":"ant.claude-x","max_tokens":900,"thinking":{{"type":"enabled","budget_tokens":500}},"messages":[{{"role":"user","content":"q1"}},{{"role":"assistant","content":[{{"type":"thinking","thinking":"t","signature":"{p}"}},{{"type":"text","text":"a"}}]}},{{"role":"user","content":"q2"}}]}}"#,
        p = carrier::pack(&foreign)
    );
    let v = sent("/v1/messages", body);
    assert_eq!(v["thinking"]["type"], "enabled");
    assert_eq!(v["messages"][1]["content"], serde_json::json!([{"type": "text", "text": "a"}]));
    // A turn that held nothing else goes, and the user turns around it join.
    let body = format!(
        r#"{{"model":"ant.claude-x","max_tokens":9,"messages":[{{"role":"user","content":"q1"}},{{"role":"assistant","content":[{{"type":"thinking","thinking":"t","signature":"{p}"}}]}},{{"role":"user","content":[{{"type":"text","text":"q2"}}]}}]}}"#,
        p = carrier::pack(&foreign)
    );
    let v = sent("/v1/messages", body);
    assert_eq!(v["messages"], serde_json::json!([{"role": "user", "content": [{"type": "text", "text": "q1"}, {"type": "text", "text": "q2"}]}]));

    // Chat: tool call ids carrying packed reasoning go back to their plain form.
    let id = carrier::id_with("call_1", &foreign);
    let body = format!(
        r#"{{"model":"oai.mini","messages":[{{"role":"user","content":"q"}},{{"role":"assistant","content":null,"tool_calls":[{{"id":"{id}","type":"function","function":{{"name":"f","arguments":"{{}}"}}}}]}},{{"role":"tool","tool_call_id":"{id}","content":"r"}}]}}"#
    );
    let v = sent("/v1/chat/completions", body);
    assert_eq!(v["messages"][1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(v["messages"][2]["tool_call_id"], "call_1");

    // Responses: the packed reasoning item goes, OpenAI's own stays.
    let claude = Reasoning { text: "t".into(), signature: Some("EqQB".into()), origin: Some(Protocol::Claude), ..Default::default() };
    let body = format!(
        r#"{{"model":"resp.gpt-5","input":[{{"role":"user","content":"q"}},{{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"{p}"}},{{"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gAAAA"}},{{"type":"function_call","call_id":"c1","name":"f","arguments":"{{}}"}},{{"type":"function_call_output","call_id":"c1","output":"r"}}]}}"#,
        p = carrier::pack(&claude)
    );
    let v = sent("/v1/responses", body);
    let kinds: Vec<&str> = v["input"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap_or("message")).collect();
    assert_eq!(kinds, ["message", "reasoning", "function_call", "function_call_output"]);
    assert_eq!(v["input"][1]["encrypted_content"], "gAAAA");

    // Gemini: a call keeps the placeholder signature, a packed thought part goes.
    let body = format!(
        r#"{{"contents":[{{"role":"user","parts":[{{"text":"q"}}]}},{{"role":"model","parts":[{{"text":"t","thought":true,"thoughtSignature":"{p}"}},{{"functionCall":{{"name":"f","args":{{}}}},"thoughtSignature":"{p}"}}]}},{{"role":"user","parts":[{{"functionResponse":{{"name":"f","response":{{"r":1}}}}}}]}}]}}"#,
        p = carrier::pack(&claude)
    );
    let v = sent("/v1beta/models/gem.gemini-2.5-flash:generateContent", body);
    let parts = v["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["thoughtSignature"], crate::protocols::gemini::request::DUMMY_SIGNATURE);
    let body = format!(
        r#"{{"contents":[{{"role":"user","parts":[{{"text":"q1"}}]}},{{"role":"model","parts":[{{"text":"t","thought":true,"thoughtSignature":"{p}"}}]}},{{"role":"user","parts":[{{"text":"q2"}}]}}]}}"#,
        p = carrier::pack(&claude)
    );
    let v = sent("/v1beta/models/gem.gemini-2.5-flash:generateContent", body);
    assert_eq!(v["contents"], serde_json::json!([{"role": "user", "parts": [{"text": "q1"}, {"text": "q2"}]}]));

    // Without any, the body goes byte for byte.
    let body = r#"{"model":"ant.claude-x","max_tokens":9,"messages":[{"role":"user","content":"R1dSMX is just text"}]}"#;
    assert_eq!(String::from_utf8(req0(&forward(&f, "/v1/messages", &[AUTH], body)).body).unwrap(), body.replace("ant.claude-x", "claude-x"));
}

#[test]
fn what_only_passthrough_can_carry_leaves_out_just_the_converting_targets() {
    let config = crate::config::parse(r#"{"providers": {
        "resp": {"type": "openai-responses", "baseURL": "http://r.test/v1", "apiKey": "k1", "models": ["g"]},
        "ant": {"type": "claude", "baseURL": "http://a.test", "apiKey": "k2", "models": ["c"]}},
        "routes": {"primary": {"targets": ["resp.g", "ant.c"]}, "fallback": {"targets": ["ant.c", "resp.g"]}}}"#).unwrap();
    let f = Fixture { config, keys: vec!["gw-key".into()] };
    let body = |model: &str| format!(r#"{{"model":"{model}","input":"hi","tools":[{{"type":"file_search","vector_store_ids":["vs_1"]}}]}}"#);
    for route in ["primary", "fallback"] {
        let fw = forward(&f, "/v1/responses", &[AUTH], &body(route));
        let ids: Vec<&str> = fw.targets.iter().map(|t| t.target_id.as_str()).collect();
        assert_eq!(ids, ["resp.g"], "{route}");
        assert!(fw.targets[0].conversion.is_none());
    }
    // With no target that can take it, the caller learns why.
    let r = reply(&f, "POST", "/v1/responses", &[AUTH], &body("ant.c"));
    assert_eq!(r.status, 400);
    let text = String::from_utf8(match r.body { Body::Bytes(b) => b, _ => vec![] }).unwrap();
    assert!(text.contains("file_search"), "{text}");
}

#[test]
fn compaction_goes_only_to_a_responses_upstream() {
    let f = fixture();
    let body = r#"{"model":"resp.gpt-5","input":[{"role":"user","content":"hi"}],"instructions":"be brief"}"#;
    let fw = forward(&f, "/v1/responses/compact", &[AUTH], body);
    assert_eq!(fw.targets[0].url, "http://up.test/v1/responses/compact");
    assert!(fw.targets[0].conversion.is_none() && !fw.stream);
    assert_eq!(String::from_utf8(req0(&fw).body).unwrap(), body.replace("resp.gpt-5", "gpt-5"));
    // Another provider cannot produce OpenAI's compaction item: the caller is told what to do.
    for model in ["ant.claude-x", "echo.x", "resp.gpt-5-thinking"] {
        let r = reply(&f, "POST", "/v1/responses/compact", &[AUTH], &body.replace("resp.gpt-5", model));
        assert_eq!(r.status, 400, "{model}");
        let text = String::from_utf8(match r.body { Body::Bytes(b) => b, _ => vec![] }).unwrap();
        assert!(text.contains("/responses/compact") && text.contains("wire_api"), "{text}");
    }
}

#[test]
fn log_requests_setting_picks_the_lines() {
    use crate::config::LogRequests::{All, Errors, Off};
    let ok = LogLine { status: 200, ..LogLine::default() };
    let failed = LogLine { status: 502, error: Some("gave up after 2 attempt(s)".into()), ..LogLine::default() };
    let stream_ok = LogLine { status: 200, stream_end: Some("complete"), ..LogLine::default() };
    let stream_cut = LogLine { status: 200, stream_end: Some("truncated"), ..LogLine::default() };
    let record = |outcome: &str| crate::attempts::AttemptRecord { target: "a.m".into(), key: None, outcome: outcome.into(), duration_ms: 1 };
    let fell_back = LogLine { status: 200, attempts: vec![record("connect"), record("ok")], ..LogLine::default() };
    for line in [&ok, &failed, &stream_ok, &stream_cut, &fell_back] {
        assert!(line.wanted(All));
        assert!(!line.wanted(Off));
    }
    let wanted: Vec<bool> = [&ok, &failed, &stream_ok, &stream_cut, &fell_back].iter().map(|l| l.wanted(Errors)).collect();
    assert_eq!(wanted, vec![false, true, false, true, true]);
}
