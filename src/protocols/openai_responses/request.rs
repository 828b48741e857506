//! Responses requests: what the gateway reads from a client (`decode`, `envelope`,
//! `last_user_text`) and the body it sends to a Responses upstream (`encode`,
//! `encode_count`).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::carrier;
use crate::error::GatewayError;
use crate::ir::{
    Effort, Media, Message, Part, Reasoning, ReasoningRequest, Request, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult,
};
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{EncodeOptions, Envelope, Protocol, Target};
use crate::wire::{self, str_of};

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    if let Some(raw) = body.get("input") {
        let kind = JsonKind::of(raw);
        if !matches!(kind, JsonKind::String | JsonKind::Array | JsonKind::Null) {
            return Err(GatewayError::invalid(format!(
                "Invalid type for 'input': expected a string or an array, but got {}.",
                kind.name()
            ))
            .with_param("input"));
        }
    }
    body.typed("instructions", JsonKind::String)?;
    let stream = body.bool("stream")?;
    Ok(Envelope { model, stream, options: EncodeOptions::default() })
}

/// The names of the request's freeform (`custom`) tools: their calls go back to the
/// client as `custom_tool_call` items. Read when the request is converted.
pub fn custom_tool_names(body: &Value) -> Vec<String> {
    let tools = body.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    tools.iter().filter(|t| str_of(t, "type") == Some("custom")).filter_map(|t| str_of(t, "name").map(String::from)).collect()
}

/// A freeform tool's call as function arguments (`{"input": …}`), and back.
pub fn freeform_arguments(input: &str) -> String {
    json!({ "input": input }).to_string()
}

/// The text a freeform tool gets from a call's arguments: their `input` string (the
/// function form other providers were given), else the arguments as they are.
pub fn freeform_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => match o.get("input") {
            Some(Value::String(s)) => s.clone(),
            // A model that called it without writing anything.
            None if o.is_empty() => String::new(),
            _ => arguments.to_string(),
        },
        Ok(Value::String(s)) => s,
        _ => arguments.to_string(),
    }
}


// ---------------------------------------------------------------------------------------
// Typed field readers: absent and null read as `None`; a wrong type is a 400 naming the
// field the way OpenAI does (`input[2].content[0].text`).

pub(super) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> GatewayError {
    GatewayError::invalid(format!("Invalid type for '{param}': expected {expected}, but got {}.", kind_name(got)))
        .with_param(param)
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn opt_str<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(&join(path, key), "a string", other)),
    }
}

fn req_str<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, GatewayError> {
    opt_str(v, key, path)?.ok_or_else(|| {
        let param = join(path, key);
        GatewayError::invalid(format!("Missing required parameter: '{param}'.")).with_param(param)
    })
}

fn opt_bool(v: &Value, key: &str, path: &str) -> Result<Option<bool>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(&join(path, key), "a boolean", other)),
    }
}

fn opt_f64(v: &Value, key: &str, path: &str) -> Result<Option<f64>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(wrong_type(&join(path, key), "a number", other)),
    }
}

fn opt_u64(v: &Value, key: &str, path: &str) -> Result<Option<u64>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64)) {
            Some(x) => Ok(Some(x)),
            None => {
                let param = join(path, key);
                Err(GatewayError::invalid(format!("Invalid '{param}': expected a non-negative integer, but got {n}."))
                    .with_param(param))
            }
        },
        Some(other) => Err(wrong_type(&join(path, key), "an integer", other)),
    }
}

fn opt_i64(v: &Value, key: &str, path: &str) -> Result<Option<i64>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
        Some(other) => Err(wrong_type(&join(path, key), "an integer", other)),
    }
}

fn opt_array<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a [Value], GatewayError> {
    match present(v, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(wrong_type(&join(path, key), "an array", other)),
    }
}

fn opt_object<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a Map<String, Value>>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(wrong_type(&join(path, key), "an object", other)),
    }
}

fn unsupported(param: String, message: String) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

// ---------------------------------------------------------------------------------------
// Ingress: a Responses request as IR.

/// Appends items to the IR conversation, grouping them the way the IR wants turns:
/// consecutive assistant items (messages, function calls, reasoning) form one assistant
/// message; consecutive `function_call_output`s form one user message.
#[derive(Default)]
struct Conversation {
    messages: Vec<Message>,
    /// call_id → function name, to fill `ToolResult.name`.
    call_names: HashMap<String, String>,
}

impl Conversation {
    fn assistant(&mut self, part: Part) {
        match self.messages.last_mut() {
            Some(m) if m.role == Role::Assistant => m.parts.push(part),
            _ => self.messages.push(Message { role: Role::Assistant, parts: vec![part] }),
        }
    }

    fn tool_result(&mut self, part: Part) {
        match self.messages.last_mut() {
            Some(m) if m.role == Role::User && matches!(m.parts.last(), Some(Part::ToolResult(_))) => m.parts.push(part),
            _ => self.messages.push(Message { role: Role::User, parts: vec![part] }),
        }
    }

    fn user(&mut self, parts: Vec<Part>) {
        if !parts.is_empty() {
            self.messages.push(Message { role: Role::User, parts });
        }
    }

    fn assistant_parts(&mut self, parts: Vec<Part>) {
        for p in parts {
            self.assistant(p);
        }
    }
}

/// Guesses a media type from a file name (for `file_data` sent as bare base64).
fn media_type_for(filename: Option<&str>) -> String {
    let ext = filename.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "application/pdf",
    }
    .to_string()
}

/// One content part of a message or a function call output.
fn content_part(p: &Value, path: &str) -> Result<Part, GatewayError> {
    if !p.is_object() {
        return Err(wrong_type(path, "an object", p));
    }
    let kind = req_str(p, "type", path)?;
    match kind {
        "input_text" | "output_text" | "text" => Ok(Part::Text(req_str(p, "text", path)?.to_string())),
        "refusal" => Ok(Part::Text(req_str(p, "refusal", path)?.to_string())),
        "input_image" | "image" => {
            let url = match present(p, "image_url") {
                None => None,
                Some(Value::String(s)) => Some(s.as_str()),
                // Chat's `{url}` shape, tolerated.
                Some(Value::Object(o)) if o.get("url").and_then(Value::as_str).is_some() => {
                    o.get("url").and_then(Value::as_str)
                }
                Some(other) => return Err(wrong_type(&join(path, "image_url"), "a string", other)),
            };
            if let Some(url) = url {
                return Ok(Part::Image(Media::from_url(url)));
            }
            if let Some(id) = opt_str(p, "file_id", path)? {
                return Ok(Part::Image(Media::FileId(id.to_string())));
            }
            Err(GatewayError::invalid(format!("'{path}' of type 'input_image' needs an 'image_url' or a 'file_id'."))
                .with_param(path.to_string()))
        }
        "input_file" | "file" => {
            let filename = opt_str(p, "filename", path)?.map(String::from);
            let media = if let Some(data) = opt_str(p, "file_data", path)? {
                if data.starts_with("data:") {
                    Media::from_url(data)
                } else {
                    Media::Base64 { media_type: media_type_for(filename.as_deref()), data: data.to_string() }
                }
            } else if let Some(url) = opt_str(p, "file_url", path)? {
                Media::Url { url: url.to_string(), media_type: None }
            } else if let Some(id) = opt_str(p, "file_id", path)? {
                Media::FileId(id.to_string())
            } else {
                return Err(GatewayError::invalid(format!(
                    "'{path}' of type 'input_file' needs 'file_data', 'file_url' or 'file_id'."
                ))
                .with_param(path.to_string()));
            };
            Ok(Part::File { media, filename })
        }
        other => Err(unsupported(
            join(path, "type"),
            format!("Content part type '{other}' in '{path}' is not supported when converting to another protocol."),
        )),
    }
}

/// A message's `content`: a string or a list of parts.
fn content(v: &Value, path: &str) -> Result<Vec<Part>, GatewayError> {
    match present(v, "content") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(if s.is_empty() { Vec::new() } else { vec![Part::Text(s.clone())] }),
        Some(Value::Array(parts)) => {
            let base = join(path, "content");
            parts.iter().enumerate().map(|(j, p)| content_part(p, &format!("{base}[{j}]"))).collect()
        }
        Some(other) => Err(wrong_type(&join(path, "content"), "a string or an array", other)),
    }
}

fn texts(list: &[Value]) -> String {
    list.iter().filter_map(|s| s.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n\n")
}

/// A `reasoning` input item.
fn reasoning_item(item: &Value, path: &str) -> Result<Reasoning, GatewayError> {
    let summary = opt_array(item, "summary", path)?;
    let raw = opt_array(item, "content", path)?;
    let text = if summary.is_empty() { texts(raw) } else { texts(summary) };
    let id = opt_str(item, "id", path)?.map(String::from);
    let r = match opt_str(item, "encrypted_content", path)? {
        Some(enc) if !enc.is_empty() => {
            let mut r = carrier::from_client(enc, Protocol::OpenAiResponses, &text);
            if r.origin == Some(Protocol::OpenAiResponses) && r.id.is_none() {
                r.id = id;
            }
            r
        }
        _ => Reasoning { text, id, origin: Some(Protocol::OpenAiResponses), ..Reasoning::default() },
    };
    Ok(r)
}

fn input_items(items: &[Value], req: &mut Request) -> Result<Vec<Message>, GatewayError> {
    let mut conv = Conversation::default();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        if !item.is_object() {
            return Err(wrong_type(&path, "an object", item));
        }
        let kind = opt_str(item, "type", &path)?;
        match kind {
            None | Some("message") => {
                let role = req_str(item, "role", &path)?;
                let parts = content(item, &path)?;
                match role {
                    "user" => conv.user(parts),
                    "assistant" => conv.assistant_parts(parts),
                    "system" | "developer" => req.system.extend(parts),
                    other => {
                        return Err(GatewayError::invalid(format!(
                            "Invalid value for '{path}.role': '{other}'. Supported values are: 'user', 'assistant', 'system' and 'developer'."
                        ))
                        .with_param(format!("{path}.role")))
                    }
                }
            }
            Some("function_call") => {
                let call_id = req_str(item, "call_id", &path)?.to_string();
                let name = req_str(item, "name", &path)?.to_string();
                let arguments = match present(item, "arguments") {
                    None => "{}".to_string(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
                    Some(other) => return Err(wrong_type(&format!("{path}.arguments"), "a string", other)),
                };
                conv.call_names.insert(call_id.clone(), name.clone());
                conv.assistant(Part::ToolCall(ToolCall { id: call_id, name, arguments }));
            }
            Some("custom_tool_call") => {
                let call_id = req_str(item, "call_id", &path)?.to_string();
                let name = req_str(item, "name", &path)?.to_string();
                let input = opt_str(item, "input", &path)?.unwrap_or_default();
                conv.call_names.insert(call_id.clone(), name.clone());
                conv.assistant(Part::ToolCall(ToolCall { id: call_id, name, arguments: freeform_arguments(input) }));
            }
            Some("function_call_output" | "custom_tool_call_output") => {
                let call_id = req_str(item, "call_id", &path)?.to_string();
                let content = match item.get("output") {
                    Some(Value::String(s)) => vec![Part::Text(s.clone())],
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| content_part(p, &format!("{path}.output[{j}]")))
                        .collect::<Result<Vec<_>, _>>()?,
                    None | Some(Value::Null) => {
                        return Err(GatewayError::invalid(format!("Missing required parameter: '{path}.output'."))
                            .with_param(format!("{path}.output")))
                    }
                    Some(other) => return Err(wrong_type(&format!("{path}.output"), "a string or an array", other)),
                };
                let name = conv.call_names.get(&call_id).cloned();
                conv.tool_result(Part::ToolResult(ToolResult { call_id, name, content, is_error: false }));
            }
            Some("reasoning") => {
                let r = reasoning_item(item, &path)?;
                conv.assistant(Part::Reasoning(r));
            }
            // A search OpenAI ran: its results stay with OpenAI, and the answer built on them
            // follows as an assistant message, which is what another provider gets.
            Some("web_search_call") => {}
            Some("item_reference") => {
                let id = item.get("id").and_then(Value::as_str).unwrap_or("");
                return Err(unsupported(
                    path.clone(),
                    format!(
                        "'{path}' is an item_reference ('{id}'): it points to an item stored by the upstream, which the gateway cannot resolve when converting to another protocol. Send the full items instead, or use a model whose upstream speaks the Responses API (passthrough)."
                    ),
                ));
            }
            Some(other) => {
                return Err(unsupported(
                    format!("{path}.type"),
                    format!("Input item type '{other}' ('{path}') is not supported when converting to another protocol."),
                ))
            }
        }
    }
    Ok(conv.messages)
}

/// OpenAI's hosted web search under its names. Codex sends one on every request unless
/// its `web_search` setting is "disabled", so it is left out (see [`Request::dropped_tools`])
/// rather than failing the request.
const HOSTED_WEB_SEARCH: [&str; 4] = ["web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"];

fn decode_tools(body: &Value, dropped: &mut Vec<String>) -> Result<Vec<Tool>, GatewayError> {
    let mut tools = Vec::new();
    for (i, t) in opt_array(body, "tools", "")?.iter().enumerate() {
        let path = format!("tools[{i}]");
        if !t.is_object() {
            return Err(wrong_type(&path, "an object", t));
        }
        let kind = req_str(t, "type", &path)?;
        if kind == "custom" {
            tools.push(freeform_tool(t, &path)?);
            continue;
        }
        if HOSTED_WEB_SEARCH.contains(&kind) {
            dropped.push(kind.to_string());
            continue;
        }
        if kind != "function" {
            return Err(unsupported(
                format!("{path}.type"),
                format!(
                    "Tool type '{kind}' ('{path}') is not supported when converting to another protocol; only 'function' and 'custom' tools can be converted (hosted web search is left out). Use a model whose upstream speaks the Responses API for built-in tools."
                ),
            ));
        }
        let name = req_str(t, "name", &path)?.to_string();
        let description = opt_str(t, "description", &path)?.map(String::from);
        let parameters = match present(t, "parameters") {
            None => json!({"type": "object", "properties": {}}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(other) => return Err(wrong_type(&format!("{path}.parameters"), "an object", other)),
        };
        let strict = opt_bool(t, "strict", &path)?;
        tools.push(Tool { name, description, parameters, strict });
    }
    Ok(tools)
}

/// A freeform (`custom`) tool as a function with one string parameter, `input`; a grammar
/// its input must follow is spelled out in the description.
fn freeform_tool(t: &Value, path: &str) -> Result<Tool, GatewayError> {
    let name = req_str(t, "name", path)?.to_string();
    let mut description = opt_str(t, "description", path)?.unwrap_or_default().to_string();
    if let Some(format) = present(t, "format") {
        if str_of(format, "type") == Some("grammar") {
            let syntax = str_of(format, "syntax").unwrap_or("lark");
            let definition = str_of(format, "definition").unwrap_or_default();
            description.push_str(&format!("\n\nThe input must follow this {syntax} grammar:\n{definition}"));
        }
    }
    let parameters = json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The raw input of this freeform tool."}},
        "required": ["input"],
    });
    Ok(Tool { name, description: Some(description.trim().to_string()).filter(|d| !d.is_empty()), parameters, strict: None })
}

fn decode_tool_choice(body: &Value) -> Result<Option<ToolChoice>, GatewayError> {
    let Some(v) = present(body, "tool_choice") else { return Ok(None) };
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(GatewayError::invalid(format!(
                "Invalid value for 'tool_choice': '{other}'. Supported values are: 'none', 'auto' and 'required'."
            ))
            .with_param("tool_choice")),
        },
        Value::Object(_) => {
            let kind = req_str(v, "type", "tool_choice")?;
            match kind {
                "function" | "custom" => Ok(Some(ToolChoice::Named(req_str(v, "name", "tool_choice")?.to_string()))),
                "allowed_tools" => {
                    let required = match opt_str(v, "mode", "tool_choice")? {
                        None | Some("auto") => false,
                        Some("required") => true,
                        Some(other) => {
                            return Err(GatewayError::invalid(format!(
                                "Invalid value for 'tool_choice.mode': '{other}'. Supported values are: 'auto' and 'required'."
                            ))
                            .with_param("tool_choice.mode"))
                        }
                    };
                    let mut names = Vec::new();
                    for (i, t) in opt_array(v, "tools", "tool_choice")?.iter().enumerate() {
                        let path = format!("tool_choice.tools[{i}]");
                        match opt_str(t, "type", &path)? {
                            None | Some("function" | "custom") => names.push(req_str(t, "name", &path)?.to_string()),
                            Some(other) => {
                                return Err(unsupported(
                                    format!("{path}.type"),
                                    format!("Allowed tool type '{other}' is not supported when converting to another protocol."),
                                ))
                            }
                        }
                    }
                    Ok(Some(ToolChoice::Allowed { names, required }))
                }
                other => Err(unsupported(
                    "tool_choice.type".into(),
                    format!("tool_choice of type '{other}' is not supported when converting to another protocol."),
                )),
            }
        }
        other => Err(wrong_type("tool_choice", "a string or an object", other)),
    }
}

fn decode_reasoning(body: &Value) -> Result<Option<ReasoningRequest>, GatewayError> {
    let Some(r) = opt_object(body, "reasoning", "")? else { return Ok(None) };
    let r = Value::Object(r.clone());
    let mut out = ReasoningRequest::default();
    let mut any = false;
    if let Some(e) = opt_str(&r, "effort", "reasoning")? {
        let effort = Effort::parse(e).ok_or_else(|| {
            GatewayError::invalid(format!(
                "Invalid value for 'reasoning.effort': '{e}'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', 'xhigh' and 'max'."
            ))
            .with_param("reasoning.effort")
        })?;
        out.effort = Some(effort);
        out.disabled = effort == Effort::None;
        any = true;
    }
    let summary = opt_str(&r, "summary", "reasoning")?;
    let generate = opt_str(&r, "generate_summary", "reasoning")?;
    if summary.is_some() || generate.is_some() {
        out.include_thoughts = Some(true);
        any = true;
    }
    Ok(any.then_some(out))
}

fn decode_format(body: &Value) -> Result<Option<ResponseFormat>, GatewayError> {
    let Some(text) = opt_object(body, "text", "")? else { return Ok(None) };
    let text = Value::Object(text.clone());
    let Some(f) = opt_object(&text, "format", "text")? else { return Ok(None) };
    let f = Value::Object(f.clone());
    let path = "text.format";
    match req_str(&f, "type", path)? {
        "text" => Ok(Some(ResponseFormat::Text)),
        "json_object" => Ok(Some(ResponseFormat::JsonObject)),
        "json_schema" => {
            let schema = match present(&f, "schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                None => json!({}),
                Some(other) => return Err(wrong_type("text.format.schema", "an object", other)),
            };
            Ok(Some(ResponseFormat::JsonSchema {
                name: opt_str(&f, "name", path)?.unwrap_or("response").to_string(),
                schema,
                strict: opt_bool(&f, "strict", path)?,
                description: opt_str(&f, "description", path)?.map(String::from),
            }))
        }
        other => Err(GatewayError::invalid(format!(
            "Invalid value for 'text.format.type': '{other}'. Supported values are: 'text', 'json_object' and 'json_schema'."
        ))
        .with_param("text.format.type")),
    }
}

/// Same-protocol passthrough: removes the reasoning items whose `encrypted_content` the
/// gateway packed from another provider's reasoning (OpenAI could not decrypt it).
/// Whether anything changed.
pub fn drop_packed_reasoning(body: &mut Value) -> bool {
    let Some(items) = body.get_mut("input").and_then(Value::as_array_mut) else { return false };
    let before = items.len();
    items.retain(|item| {
        !(item.get("type").and_then(Value::as_str) == Some("reasoning")
            && item.get("encrypted_content").and_then(Value::as_str).is_some_and(carrier::is_packed))
    });
    items.len() != before
}

/// Ingress: a client request as IR.
pub fn decode(body: &Value) -> Result<Request, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::invalid(format!("The request body must be a JSON object, but got {}.", kind_name(body))));
    }
    for (key, what) in [("conversation", "a conversation"), ("prompt", "a prompt template")] {
        if present(body, key).is_some() {
            return Err(unsupported(
                key.to_string(),
                format!(
                    "'{key}' refers to {what} stored by the upstream, which the gateway cannot resolve when converting to another protocol. Send the full input instead, or use a model whose upstream speaks the Responses API (passthrough)."
                ),
            ));
        }
    }
    let mut req = Request::default();
    if let Some(instructions) = opt_str(body, "instructions", "")? {
        if !instructions.is_empty() {
            req.system.push(Part::Text(instructions.to_string()));
        }
    }
    req.messages = match present(body, "input") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Message { role: Role::User, parts: vec![Part::Text(s.clone())] }],
        Some(Value::Array(items)) => input_items(items, &mut req)?,
        Some(other) => return Err(wrong_type("input", "a string or an array", other)),
    };
    req.tools = decode_tools(body, &mut req.dropped_tools)?;
    req.tool_choice = decode_tool_choice(body)?;
    req.parallel_tool_calls = opt_bool(body, "parallel_tool_calls", "")?;
    req.reasoning = decode_reasoning(body)?;
    req.max_output_tokens = opt_u64(body, "max_output_tokens", "")?;
    req.temperature = opt_f64(body, "temperature", "")?;
    req.top_p = opt_f64(body, "top_p", "")?;
    // Not Responses fields; read when a lenient client sends them anyway.
    req.top_k = opt_u64(body, "top_k", "")?;
    req.stop = match present(body, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        Some(other) => return Err(wrong_type("stop", "a string or an array", other)),
    };
    req.seed = opt_i64(body, "seed", "")?;
    req.presence_penalty = opt_f64(body, "presence_penalty", "")?;
    req.frequency_penalty = opt_f64(body, "frequency_penalty", "")?;
    req.response_format = decode_format(body)?;
    req.user = match opt_str(body, "user", "")? {
        Some(u) => Some(u.to_string()),
        None => opt_str(body, "safety_identifier", "")?.map(String::from),
    };
    req.metadata = opt_object(body, "metadata", "")?.cloned();
    req.stream = opt_bool(body, "stream", "")?.unwrap_or(false);
    req.store = opt_bool(body, "store", "")?;
    // Codex always sends one: a long agent conversation worth caching.
    req.prompt_cache = str_of(body, "prompt_cache_key").is_some_and(|k| !k.is_empty());
    req.previous_response_id = opt_str(body, "previous_response_id", "")?.map(String::from);
    Ok(req)
}

// ---------------------------------------------------------------------------------------
// Egress: IR as a Responses upstream body.

fn truncate_chars(s: &str, max: u64) -> String {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    match s.char_indices().nth(max) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

fn image_part(media: &Media) -> Value {
    match media {
        Media::FileId(id) => json!({"type": "input_image", "file_id": id}),
        other => json!({"type": "input_image", "image_url": other.to_url()}),
    }
}

fn extension_for(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/html" => "html",
        "application/json" => "json",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "bin",
    }
}

fn file_part(media: &Media, filename: Option<&str>) -> Value {
    let mut v = json!({"type": "input_file"});
    match media {
        Media::FileId(id) => v["file_id"] = json!(id),
        Media::Url { url, .. } => v["file_url"] = json!(url),
        Media::Base64 { media_type, .. } => {
            v["file_data"] = json!(media.to_url());
            // OpenAI wants a file name with inline file data.
            let name = filename.map(String::from).unwrap_or_else(|| format!("file.{}", extension_for(media_type)));
            v["filename"] = json!(name);
            return v;
        }
    }
    if let Some(f) = filename {
        v["filename"] = json!(f);
    }
    v
}

/// A user-side content part (`input_*`); `None` for parts that are not content.
fn input_content(p: &Part) -> Option<Value> {
    match p {
        Part::Text(t) => Some(json!({"type": "input_text", "text": t})),
        Part::Image(m) => Some(image_part(m)),
        Part::File { media, filename } => Some(file_part(media, filename.as_deref())),
        _ => None,
    }
}

fn tool_output(r: &ToolResult) -> Value {
    let only_text = r.content.iter().all(|p| matches!(p, Part::Text(_)));
    if only_text {
        json!(r.text())
    } else {
        Value::Array(r.content.iter().filter_map(input_content).collect())
    }
}

fn reasoning_out(r: &Reasoning, store: bool) -> Option<Value> {
    if !carrier::accepted_by(r, Protocol::OpenAiResponses) {
        return None;
    }
    let summary = if r.text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": r.text}]) };
    let mut item = json!({"type": "reasoning", "summary": summary});
    match &r.encrypted {
        // Stateless replay: the encrypted payload is the item. The id is left out, as
        // Codex does: under `store:false` an id points at nothing, and ids the gateway
        // synthesised for streamed items are not the upstream's.
        Some(enc) => item["encrypted_content"] = json!(enc),
        // Without a payload the item is only a reference to server-side state.
        None => {
            let id = r.id.as_ref()?;
            if !store {
                return None;
            }
            item["id"] = json!(id);
        }
    }
    Some(item)
}

fn input_messages(req: &Request, store: bool) -> Vec<Value> {
    let mut items = Vec::new();
    for m in &req.messages {
        let mut pending: Vec<Value> = Vec::new();
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let flush = |pending: &mut Vec<Value>, items: &mut Vec<Value>| {
            if !pending.is_empty() {
                items.push(wire::object([("type", json!("message")), ("role", json!(role)), ("content", Value::Array(std::mem::take(pending)))]));
            }
        };
        for (k, p) in m.parts.iter().enumerate() {
            match (m.role, p) {
                (Role::Assistant, Part::Text(t)) => pending.push(json!({"type": "output_text", "text": t})),
                (Role::User, Part::Text(_) | Part::Image(_) | Part::File { .. }) => pending.extend(input_content(p)),
                // Responses has no images in assistant messages; nothing sensible to send.
                (Role::Assistant, Part::Image(_) | Part::File { .. }) => {}
                (_, Part::ToolCall(c)) => {
                    flush(&mut pending, &mut items);
                    items.push(json!({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}));
                }
                (_, Part::ToolResult(r)) => {
                    flush(&mut pending, &mut items);
                    items.push(wire::object([("type", json!("function_call_output")), ("call_id", json!(r.call_id)), ("output", tool_output(r))]));
                }
                (_, Part::Reasoning(r)) => {
                    // OpenAI rejects a reasoning item without the item it produced
                    // ("…provided without its required following item"); one that
                    // produced nothing is of no use to the model either.
                    let produced = m.parts.get(k + 1..).unwrap_or(&[]).iter().any(|p| matches!(p, Part::Text(_) | Part::ToolCall(_)));
                    if let Some(item) = reasoning_out(r, store).filter(|_| produced) {
                        flush(&mut pending, &mut items);
                        items.push(item);
                    }
                }
            }
        }
        flush(&mut pending, &mut items);
    }
    items
}

fn tool_choice_out(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Named(n) => json!({"type": "function", "name": n}),
        ToolChoice::Allowed { names, required } => json!({
            "type": "allowed_tools",
            "mode": if *required { "required" } else { "auto" },
            "tools": names.iter().map(|n| json!({"type": "function", "name": n})).collect::<Vec<_>>(),
        }),
    }
}

fn reasoning_control(req: &Request, target: &Target) -> Option<Value> {
    let mut out = Map::new();
    let effort = req.reasoning.as_ref().and_then(ReasoningRequest::effective_effort);
    match effort {
        Some(e) => {
            out.insert("effort".into(), json!(e.name()));
        }
        None => {
            if let Some(configured) = target.options.reasoning_effort.as_deref() {
                match Effort::parse(configured) {
                    Some(Effort::None) => {}
                    Some(e) => {
                        out.insert("effort".into(), json!(e.name()));
                    }
                    // An effort name this build does not know: the operator's word.
                    None if !configured.trim().is_empty() => {
                        out.insert("effort".into(), json!(configured.trim()));
                    }
                    None => {}
                }
            }
        }
    }
    // A caller that asks for reasoning sees it (in its own protocol's place) unless it
    // said otherwise; Responses only returns summaries when asked.
    let wants_thoughts = req.reasoning.as_ref().map(|r| r.include_thoughts != Some(false)).unwrap_or(false);
    if wants_thoughts && effort != Some(Effort::None) {
        out.insert("summary".into(), json!("auto"));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn format_out(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, schema, strict, description } => {
            let mut v = json!({"type": "json_schema", "name": name, "schema": schema});
            if let Some(s) = strict {
                v["strict"] = json!(s);
            }
            if let Some(d) = description {
                v["description"] = json!(d);
            }
            v
        }
    }
}

/// What `encode` and `encode_count` share: the prompt, tools and controls.
fn prompt(req: &Request, target: &Target, store: bool) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));

    let mut input = Vec::new();
    let system_text = req
        .system
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let system_text = match target.options.max_instructions_chars {
        Some(max) => truncate_chars(&system_text, max),
        None => system_text,
    };
    // Images or files in the system prompt can only travel as a developer message.
    let system_media: Vec<Value> =
        req.system.iter().filter(|p| !matches!(p, Part::Text(_))).filter_map(input_content).collect();
    if !system_text.is_empty() {
        if target.quirks.no_instructions {
            input.push(json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": system_text}]}));
        } else {
            body.insert("instructions".into(), json!(system_text));
        }
    }
    if !system_media.is_empty() {
        input.push(wire::object([("type", json!("message")), ("role", json!("developer")), ("content", Value::Array(system_media))]));
    }
    input.extend(input_messages(req, store));
    body.insert("input".into(), Value::Array(input));

    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                // Responses defaults `strict` to true, which rejects ordinary schemas.
                let mut v = wire::object([("type", json!("function")), ("name", json!(t.name)), ("parameters", t.parameters.clone()),
                    ("strict", json!(t.strict.unwrap_or(false)))]);
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = &req.tool_choice {
        body.insert("tool_choice".into(), tool_choice_out(c));
    }
    if let Some(p) = req.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(r) = reasoning_control(req, target) {
        body.insert("reasoning".into(), r);
    }
    if let Some(f) = &req.response_format {
        body.insert("text".into(), json!({"format": format_out(f)}));
    }
    if let Some(id) = &req.previous_response_id {
        if !target.quirks.no_previous_response_id {
            body.insert("previous_response_id".into(), json!(id));
        }
    }
    body
}

/// The smallest `max_output_tokens` OpenAI accepts.
const MIN_MAX_OUTPUT_TOKENS: u64 = 16;

/// Egress: IR as an upstream request body. Stateless by default (`store:false` with
/// encrypted reasoning included) so reasoning can be replayed on the next turn.
pub fn encode(req: &Request, target: &Target) -> Result<Value, GatewayError> {
    no_audio(req)?;
    let store = req.store.unwrap_or(false);
    let mut body = prompt(req, target, store);
    if let Some(n) = req.max_output_tokens.or(target.options.max_tokens) {
        // OpenAI rejects values below 16 ("integer below minimum value"); callers of
        // other protocols send smaller ones (Claude Code probes with `max_tokens: 1`).
        body.insert("max_output_tokens".into(), json!(n.max(MIN_MAX_OUTPUT_TOKENS)));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    // stop, top_k, seed and penalties do not exist in Responses (P-R5): dropped.
    if let Some(u) = &req.user {
        body.insert("user".into(), json!(crate::protocols::user_id_within(u, 64)));
    }
    if let Some(m) = &req.metadata {
        body.insert("metadata".into(), Value::Object(m.clone()));
    }
    body.insert("store".into(), json!(store));
    body.insert("include".into(), json!(["reasoning.encrypted_content"]));
    body.insert("stream".into(), json!(req.stream));
    Ok(Value::Object(body))
}

/// The Responses API takes no audio input: a clear 400 instead of the upstream's.
fn no_audio(req: &Request) -> Result<(), GatewayError> {
    let audio = req.messages.iter().flat_map(|m| &m.parts).find_map(|p| match p {
        Part::File { media, .. } => media.audio().map(|(t, _)| t.to_string()),
        _ => None,
    });
    match audio {
        Some(t) => Err(GatewayError::invalid(format!("The Responses API takes no audio input; this request has {t}."))),
        None => Ok(()),
    }
}

/// Egress: the body of `POST /v1/responses/input_tokens` — the prompt part of
/// [`encode`] (that endpoint takes no sampling, output, store or stream fields).
pub fn encode_count(req: &Request, target: &Target) -> Result<Value, GatewayError> {
    no_audio(req)?;
    Ok(Value::Object(prompt(req, target, req.store.unwrap_or(false))))
}
