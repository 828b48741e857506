//! What the gateway reads from a Chat Completions request.

use serde_json::{json, Map, Value};

use crate::carrier;
use crate::error::GatewayError;
use crate::ir::{
    Effort, Media, Message, Part, ReasoningRequest, Request, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult,
};
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{EncodeOptions, Envelope, Protocol, Target};
use crate::wire::{self, array_of, bool_of, f64_of, i64_of, str_of, string_of, strings_of, u64_of};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    body.require("messages", JsonKind::Array)?;
    let stream = body.bool("stream")?;
    let include_usage = match body.typed("stream_options", JsonKind::Object)? {
        Some(raw) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .and_then(|v| v.get("include_usage").and_then(|u| u.as_bool()))
            .unwrap_or(false),
        None => false,
    };
    Ok(Envelope { model, stream, options: EncodeOptions { include_usage, ..EncodeOptions::default() } })
}


fn invalid(message: impl Into<String>, param: &str) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

/// Content parts of a user (or system) message.
fn content_parts(content: &Value, param: &str) -> Result<Vec<Part>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(if s.is_empty() { Vec::new() } else { vec![Part::Text(s.clone())] }),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                match str_of(p, "type") {
                    Some("text") | Some("input_text") | Some("output_text") => {
                        if let Some(t) = str_of(p, "text").filter(|t| !t.is_empty()) {
                            out.push(Part::Text(t.to_string()));
                        }
                    }
                    Some("refusal") => {
                        if let Some(t) = str_of(p, "refusal") {
                            out.push(Part::Text(t.to_string()));
                        }
                    }
                    Some("image_url") => {
                        let url = p.get("image_url").and_then(|u| u.as_str().or_else(|| str_of(u, "url")));
                        match url {
                            Some(url) => out.push(Part::Image(Media::from_url(url))),
                            None => return Err(invalid("image_url parts need image_url.url", &format!("{param}[{i}].image_url"))),
                        }
                    }
                    Some("file") => {
                        let file = p.get("file").cloned().unwrap_or(Value::Null);
                        let filename = string_of(&file, "filename");
                        let media = if let Some(data) = str_of(&file, "file_data") {
                            match Media::from_url(data) {
                                m @ Media::Base64 { .. } => m,
                                _ => Media::Base64 { media_type: "application/pdf".into(), data: data.to_string() },
                            }
                        } else if let Some(id) = str_of(&file, "file_id") {
                            Media::FileId(id.to_string())
                        } else {
                            return Err(invalid("file parts need file.file_data or file.file_id", &format!("{param}[{i}].file")));
                        };
                        out.push(Part::File { media, filename });
                    }
                    Some("input_audio") => {
                        let audio = p.get("input_audio").unwrap_or(&Value::Null);
                        let here = format!("{param}[{i}].input_audio");
                        let Some(data) = str_of(audio, "data") else {
                            return Err(invalid("input_audio parts need input_audio.data (base64 audio).", &format!("{here}.data")));
                        };
                        // Gemini's names for the two formats Chat takes.
                        let media_type = match str_of(audio, "format") {
                            Some("wav") => "audio/wav",
                            Some("mp3") => "audio/mp3",
                            _ => return Err(invalid("input_audio.format must be \"wav\" or \"mp3\".", &format!("{here}.format"))),
                        };
                        out.push(Part::File { media: Media::Base64 { media_type: media_type.into(), data: data.to_string() }, filename: None });
                    }
                    other => {
                        return Err(invalid(
                            format!("Unsupported content part type {:?}.", other.unwrap_or("(missing)")),
                            &format!("{param}[{i}].type"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid("Message content must be a string or an array of parts.", param)),
    }
}

fn parse_effort(v: Option<&str>, param: &str) -> Result<Option<Effort>, GatewayError> {
    match v {
        None => Ok(None),
        Some(s) => Effort::parse(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("Invalid reasoning effort {s:?}."), param)),
    }
}

/// Same-protocol passthrough: tool call ids the gateway extended with another provider's
/// packed reasoning go back to their plain form (the reasoning is of no use to a Chat
/// upstream, and such ids exceed OpenAI's length limit). Whether anything changed.
pub fn drop_packed_reasoning(body: &mut Value) -> bool {
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return false };
    let mut changed = false;
    let mut plain = |id: &mut Value| {
        if let Some((plain, Some(_))) = id.as_str().map(carrier::split_id) {
            *id = Value::String(plain);
            changed = true;
        }
    };
    for m in messages {
        if let Some(id) = m.get_mut("tool_call_id") {
            plain(id);
        }
        for call in m.get_mut("tool_calls").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(id) = call.get_mut("id") {
                plain(id);
            }
        }
    }
    changed
}

/// Ingress: a Chat Completions request as IR.
pub fn decode(body: &Value) -> Result<Request, GatewayError> {
    let mut req = Request::default();
    let messages = body.get("messages").and_then(Value::as_array).ok_or_else(|| invalid("'messages' must be an array.", "messages"))?;
    // Tool call id → function name, for tool messages (which carry only the id).
    let mut call_names: std::collections::HashMap<String, String> = Default::default();
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let role = str_of(m, "role").ok_or_else(|| invalid("Each message needs a 'role'.", &format!("{param}.role")))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => req.system.extend(content_parts(content, &format!("{param}.content"))?),
            "user" => push(&mut req.messages, Role::User, content_parts(content, &format!("{param}.content"))?),
            "assistant" => {
                let mut parts = Vec::new();
                if let Some(r) = str_of(m, "reasoning_content").or_else(|| str_of(m, "reasoning")).filter(|r| !r.is_empty()) {
                    parts.push(Part::Reasoning(crate::ir::Reasoning {
                        text: r.to_string(),
                        origin: Some(Protocol::OpenAiChat),
                        ..Default::default()
                    }));
                }
                parts.extend(content_parts(content, &format!("{param}.content"))?);
                if let Some(refusal) = str_of(m, "refusal").filter(|r| !r.is_empty()) {
                    parts.push(Part::Text(refusal.to_string()));
                }
                for (j, call) in array_of(m, "tool_calls").iter().enumerate() {
                    let cparam = format!("{param}.tool_calls[{j}]");
                    let id = str_of(call, "id").ok_or_else(|| invalid("Tool calls need an 'id'.", &format!("{cparam}.id")))?;
                    let function = call.get("function").ok_or_else(|| invalid("Tool calls need a 'function'.", &format!("{cparam}.function")))?;
                    let name = str_of(function, "name").ok_or_else(|| invalid("Tool calls need function.name.", &format!("{cparam}.function.name")))?;
                    let arguments = match function.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => "{}".to_string(),
                        Some(other) => other.to_string(),
                    };
                    let (plain_id, carried) = carrier::split_id(id);
                    if let Some(r) = carried {
                        parts.push(Part::Reasoning(r));
                    }
                    call_names.insert(id.to_string(), name.to_string());
                    parts.push(Part::ToolCall(ToolCall { id: plain_id, name: name.to_string(), arguments }));
                }
                push(&mut req.messages, Role::Assistant, parts);
            }
            "tool" | "function" => {
                let id = str_of(m, "tool_call_id").or_else(|| str_of(m, "name"))
                    .ok_or_else(|| invalid("Tool messages need a 'tool_call_id'.", &format!("{param}.tool_call_id")))?;
                let result = ToolResult {
                    call_id: carrier::split_id(id).0,
                    name: call_names.get(id).cloned().or_else(|| string_of(m, "name")),
                    content: content_parts(content, &format!("{param}.content"))?,
                    is_error: false,
                };
                push(&mut req.messages, Role::User, vec![Part::ToolResult(result)]);
            }
            other => return Err(invalid(format!("Unknown message role {other:?}."), &format!("{param}.role"))),
        }
    }

    for (i, t) in array_of(body, "tools").iter().enumerate() {
        match str_of(t, "type") {
            Some("function") | None => {
                let f = t.get("function").unwrap_or(t);
                let name = str_of(f, "name").ok_or_else(|| invalid("Function tools need a name.", &format!("tools[{i}].function.name")))?;
                req.tools.push(Tool {
                    name: name.to_string(),
                    description: string_of(f, "description"),
                    parameters: f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    strict: bool_of(f, "strict"),
                });
            }
            Some(other) => {
                return Err(invalid(format!("Tools of type {other:?} cannot be converted for this model's provider; only function tools can."), &format!("tools[{i}].type")))
            }
        }
    }
    req.tool_choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(invalid(format!("Invalid tool_choice {other:?}."), "tool_choice")),
        }),
        Some(v) => match str_of(v, "type") {
            Some("function") => Some(ToolChoice::Named(
                v.get("function").and_then(|f| str_of(f, "name")).ok_or_else(|| invalid("tool_choice.function.name is required.", "tool_choice"))?.to_string(),
            )),
            Some("allowed_tools") => {
                let a = v.get("allowed_tools").unwrap_or(&Value::Null);
                let names = array_of(a, "tools")
                    .iter()
                    .filter_map(|t| t.get("function").and_then(|f| str_of(f, "name")).or_else(|| str_of(t, "name")).map(String::from))
                    .collect();
                Some(ToolChoice::Allowed { names, required: str_of(a, "mode") == Some("required") })
            }
            _ => return Err(invalid("Unsupported tool_choice.", "tool_choice")),
        },
    };
    req.parallel_tool_calls = bool_of(body, "parallel_tool_calls");
    let effort = parse_effort(str_of(body, "reasoning_effort"), "reasoning_effort")?;
    if effort.is_some() {
        req.reasoning = Some(ReasoningRequest { effort, disabled: effort == Some(Effort::None), ..Default::default() });
    }
    req.max_output_tokens = u64_of(body, "max_completion_tokens").or_else(|| u64_of(body, "max_tokens"));
    if let Some(n) = u64_of(body, "n").filter(|&n| n > 1) {
        // One answer per request is all the other protocols produce: say so instead of
        // returning one choice where the caller counts on n.
        return Err(invalid(format!("n = {n} is not supported for this model: its provider produces one choice per request. Send {n} requests instead."), "n"));
    }
    req.temperature = f64_of(body, "temperature");
    req.top_p = f64_of(body, "top_p");
    req.stop = strings_of(body, "stop");
    req.seed = i64_of(body, "seed");
    req.presence_penalty = f64_of(body, "presence_penalty");
    req.frequency_penalty = f64_of(body, "frequency_penalty");
    req.response_format = match body.get("response_format") {
        None | Some(Value::Null) => None,
        Some(f) => Some(match str_of(f, "type") {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => {
                let js = f.get("json_schema").unwrap_or(&Value::Null);
                ResponseFormat::JsonSchema {
                    name: string_of(js, "name").unwrap_or_else(|| "response".into()),
                    schema: js.get("schema").cloned().unwrap_or_else(|| json!({})),
                    strict: bool_of(js, "strict"),
                    description: string_of(js, "description"),
                }
            }
            _ => return Err(invalid("Unsupported response_format type.", "response_format.type")),
        }),
    };
    req.user = string_of(body, "user").or_else(|| string_of(body, "safety_identifier"));
    req.metadata = body.get("metadata").and_then(Value::as_object).cloned();
    req.stream = bool_of(body, "stream").unwrap_or(false);
    req.include_usage = body.get("stream_options").and_then(|o| bool_of(o, "include_usage")).unwrap_or(false);
    req.store = bool_of(body, "store");
    // LiteLLM/OpenRouter clients mark content parts (or messages) with Anthropic's
    // `cache_control`; OpenAI's own hint is `prompt_cache_key`.
    let marked = |v: &Value| v.get("cache_control").is_some_and(|c| !c.is_null());
    req.prompt_cache = body.get("prompt_cache_key").is_some_and(|k| !k.is_null())
        || messages.iter().any(|m| marked(m) || m.get("content").and_then(Value::as_array).is_some_and(|parts| parts.iter().any(marked)));
    Ok(req)
}

/// Appends parts as a message of `role`, merging into the previous message when it has
/// the same role (consecutive tool messages become one turn of results).
fn push(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => messages.push(Message { role, parts }),
    }
}

fn text_value(parts: &[Part]) -> Value {
    let texts: Vec<&str> = parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect();
    Value::String(texts.join("\n\n"))
}

fn media_part(p: &Part) -> Result<Option<Value>, GatewayError> {
    if let Part::File { media: media @ Media::Base64 { data, .. }, .. } = p {
        if let Some((media_type, format)) = media.audio() {
            let Some(format) = format else {
                return Err(invalid(format!("Chat Completions takes wav or mp3 audio; this request has {media_type}."), "messages"));
            };
            return Ok(Some(json!({"type": "input_audio", "input_audio": {"data": data, "format": format}})));
        }
    }
    Ok(match p {
        Part::Text(t) => Some(json!({"type": "text", "text": t})),
        Part::Image(Media::FileId(id)) => {
            return Err(invalid(
                format!("The image \"{id}\" is given by file id; Chat Completions takes images only as URLs or base64 data, so send the image's URL or data instead."),
                "messages",
            ));
        }
        Part::Image(m) => Some(json!({"type": "image_url", "image_url": {"url": m.to_url()}})),
        Part::File { media, filename } => {
            let mut file = Map::new();
            match media {
                Media::FileId(id) => {
                    file.insert("file_id".into(), json!(id));
                }
                other => {
                    file.insert("file_data".into(), json!(other.to_url()));
                }
            }
            if let Some(f) = filename {
                file.insert("filename".into(), json!(f));
            }
            Some(json!({"type": "file", "file": file}))
        }
        _ => None,
    })
}

/// Egress: IR as a Chat Completions request.
pub fn encode(req: &Request, target: &Target) -> Result<Value, GatewayError> {
    if req.previous_response_id.is_some() {
        return Err(previous_response_id_error("an openai-chat-completions"));
    }
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": text_value(&req.system)}));
    }
    for m in &req.messages {
        match m.role {
            Role::User => {
                let mut rest = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult(r) => {
                            let mut text = r.text();
                            if r.is_error && !text.starts_with("Error") {
                                text = format!("Error: {text}");
                            }
                            messages.push(json!({"role": "tool", "tool_call_id": r.call_id, "content": text}));
                            // Tool messages hold text only: a result's images follow in
                            // the user message after the results.
                            for p in r.content.iter().filter(|p| !matches!(p, Part::Text(_))) {
                                rest.extend(media_part(p)?);
                            }
                        }
                        other => rest.extend(media_part(other)?),
                    }
                }
                if !rest.is_empty() {
                    let content = if rest.len() == 1 && rest[0]["type"] == "text" { rest[0]["text"].clone() } else { Value::Array(rest) };
                    messages.push(wire::object([("role", json!("user")), ("content", content)]));
                }
            }
            Role::Assistant => {
                let mut msg = json!({"role": "assistant"});
                let text: Vec<&str> = m.parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect();
                msg["content"] = if text.is_empty() { Value::Null } else { json!(text.join("")) };
                let reasoning: Vec<&str> = m.parts.iter().filter_map(|p| match p {
                    Part::Reasoning(r) if carrier::accepted_by(r, Protocol::OpenAiChat) && !r.text.is_empty() => Some(r.text.as_str()),
                    _ => None,
                }).collect();
                if !reasoning.is_empty() {
                    msg["reasoning_content"] = json!(reasoning.join(""));
                }
                // What a Chat upstream gave besides the text goes back where it came from:
                // OpenRouter's `reasoning_details` on the message, Gemini's thought signature
                // on the call it preceded.
                let mut details = Vec::new();
                let mut calls = Vec::new();
                let mut signature = None;
                for p in &m.parts {
                    match p {
                        Part::Reasoning(r) if carrier::accepted_by(r, Protocol::OpenAiChat) => {
                            if let Some(Ok(Value::Array(items))) = r.encrypted.as_deref().map(serde_json::from_str) {
                                details.extend(items);
                            }
                            signature = r.signature.clone();
                        }
                        Part::ToolCall(c) => {
                            let arguments = if c.arguments.trim().is_empty() { "{}" } else { c.arguments.as_str() };
                            let mut call = json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments}});
                            if let Some(sig) = signature.take() {
                                call["extra_content"] = json!({"google": {"thought_signature": sig}});
                            }
                            calls.push(call);
                        }
                        _ => {}
                    }
                }
                if !details.is_empty() {
                    msg["reasoning_details"] = Value::Array(details);
                }
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                if msg["content"].is_null() && msg.get("tool_calls").is_none() {
                    continue;
                }
                messages.push(msg);
            }
        }
    }
    let mut body = wire::object([("model", json!(target.model)), ("messages", Value::Array(messages))]);
    if !req.tools.is_empty() {
        body["tools"] = Value::Array(req.tools.iter().map(|t| {
            let mut f = wire::object([("name", json!(t.name)), ("parameters", t.parameters.clone())]);
            if let Some(d) = &t.description { f["description"] = json!(d); }
            if let Some(s) = t.strict { f["strict"] = json!(s); }
            wire::object([("type", json!("function")), ("function", f)])
        }).collect());
        if let Some(p) = req.parallel_tool_calls {
            body["parallel_tool_calls"] = json!(p);
        }
    }
    if let Some(choice) = &req.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            ToolChoice::Allowed { names, required } => json!({"type": "allowed_tools", "allowed_tools": {
                "mode": if *required { "required" } else { "auto" },
                "tools": names.iter().map(|n| json!({"type": "function", "function": {"name": n}})).collect::<Vec<_>>(),
            }}),
        };
    }
    let effort = match &req.reasoning {
        Some(r) => r.effective_effort(),
        None => target.options.reasoning_effort.as_deref().and_then(Effort::parse),
    };
    if let Some(e) = effort.filter(|e| *e != Effort::None) {
        body["reasoning_effort"] = json!(e.name());
    }
    if let Some(n) = req.max_output_tokens.or(target.options.max_tokens) {
        body["max_completion_tokens"] = json!(n);
    }
    for (key, value) in [("temperature", req.temperature), ("top_p", req.top_p), ("presence_penalty", req.presence_penalty), ("frequency_penalty", req.frequency_penalty)] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop.iter().take(4).collect::<Vec<_>>());
    }
    if let Some(seed) = req.seed {
        body["seed"] = json!(seed);
    }
    if let Some(f) = &req.response_format {
        body["response_format"] = match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema { name, schema, strict, description } => {
                let mut js = json!({"name": name, "schema": schema});
                if let Some(s) = strict { js["strict"] = json!(s); }
                if let Some(d) = description { js["description"] = json!(d); }
                json!({"type": "json_schema", "json_schema": js})
            }
        };
    }
    if let Some(u) = &req.user {
        body["user"] = json!(crate::protocols::user_id_within(u, 64));
    }
    if req.stream {
        body["stream"] = json!(true);
        // Usage is needed to report it in any client protocol.
        body["stream_options"] = json!({"include_usage": true});
    }
    Ok(body)
}

/// `previous_response_id` names server-side state only OpenAI's Responses API holds.
pub fn previous_response_id_error(upstream: &str) -> GatewayError {
    invalid(
        format!("previous_response_id refers to conversation state stored by the OpenAI Responses API, but this model is served by {upstream} provider, which cannot resolve it. Send the full conversation in 'input' instead (store: false), or use a model on an openai-responses provider."),
        "previous_response_id",
    )
}
