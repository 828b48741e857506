//! Messages requests: what the gateway reads from a client's `POST /v1/messages` (or
//! `count_tokens`) body, the IR of it (ingress), and the body an Anthropic upstream
//! accepts for an IR request (egress).
//!
//! Egress meets the Messages API's rules, which other protocols do not have: turns
//! alternate starting with `user`; every `tool_use` is answered at the start of the very
//! next user turn; `max_tokens` is always present and above the thinking budget; thinking
//! blocks go back only when Claude made them, byte-exact and before their `tool_use`;
//! tool ids match `^[a-zA-Z0-9_-]+$`; no empty text blocks.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::carrier;
use crate::error::GatewayError;
use crate::ir::{
    Effort, Media, Message, Part, Reasoning, ReasoningRequest, Request, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult,
};
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{text_of, EncodeOptions, Envelope, Protocol, Target, DEFAULT_MAX_TOKENS};
use crate::wire;

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    let model = body.string("model")?;
    body.require("messages", JsonKind::Array)?;
    body.typed("max_tokens", JsonKind::Number)?;
    if let Some(system) = body.get("system") {
        if !matches!(JsonKind::of(system), JsonKind::String | JsonKind::Array | JsonKind::Null) {
            return Err(GatewayError::invalid(
                "Invalid type for 'system': expected a string or an array of text blocks.",
            )
            .with_param("system"));
        }
    }
    let stream = body.bool("stream")?;
    Ok(Envelope { model, stream, options: EncodeOptions::default() })
}


// ---------------------------------------------------------------------------------------
// Ingress: a client's Messages body as IR.
// ---------------------------------------------------------------------------------------

fn wrong_type(param: &str, expected: &str) -> GatewayError {
    GatewayError::invalid(format!("Invalid type for '{param}': expected {expected}.")).with_param(param)
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn opt_u64(v: &Value, key: &str, param: &str) -> Result<Option<u64>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .or_else(|| x.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| wrong_type(param, "a non-negative integer")),
    }
}

fn opt_f64(v: &Value, key: &str) -> Result<Option<f64>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(x) => x.as_f64().map(Some).ok_or_else(|| wrong_type(key, "a number")),
    }
}

fn opt_bool(v: &Value, key: &str, param: &str) -> Result<Option<bool>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(x) => x.as_bool().map(Some).ok_or_else(|| wrong_type(param, "a boolean")),
    }
}

fn opt_str<'a>(v: &'a Value, key: &str, param: &str) -> Result<Option<&'a str>, GatewayError> {
    match present(v, key) {
        None => Ok(None),
        Some(x) => x.as_str().map(Some).ok_or_else(|| wrong_type(param, "a string")),
    }
}

fn req_str<'a>(v: &'a Value, key: &str, param: &str) -> Result<&'a str, GatewayError> {
    opt_str(v, key, param)?
        .ok_or_else(|| GatewayError::invalid(format!("Missing required field '{param}'.")).with_param(param))
}

/// Ingress: a client request as IR. `model` is ignored (the gateway resolves it).
/// Not representable in the IR and dropped: where `cache_control` marks sit (only that the
/// caller caches is kept, as `prompt_cache`), `citations`, server tools and their blocks,
/// `service_tier`, `container`, `context_management`, `thinking.display:"summarized"`
/// beyond "show thoughts".
pub fn decode(body: &Value) -> Result<Request, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::invalid("Request body must be a JSON object."));
    }
    let mut req = Request { system: decode_system(body.get("system"))?, ..Request::default() };

    let messages = match body.get("messages") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(GatewayError::invalid("Missing required field 'messages'.").with_param("messages"))
        }
        Some(_) => return Err(wrong_type("messages", "an array of messages")),
    };
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages.{i}");
        if !m.is_object() {
            return Err(wrong_type(&param, "an object"));
        }
        let role = req_str(m, "role", &format!("{param}.role"))?;
        let parts = decode_content(m.get("content"), &format!("{param}.content"))?;
        match role {
            "user" => req.messages.push(Message { role: Role::User, parts }),
            "assistant" => req.messages.push(Message { role: Role::Assistant, parts }),
            // Mid-conversation system text: the IR has one system prompt, so it joins it.
            "system" => req.system.extend(parts.into_iter().filter(|p| matches!(p, Part::Text(_)))),
            other => {
                return Err(GatewayError::invalid(format!(
                    "Invalid value for '{param}.role': \"{other}\"; expected \"user\" or \"assistant\"."
                ))
                .with_param(format!("{param}.role")))
            }
        }
    }

    req.tools = decode_tools(body.get("tools"), &mut req.dropped_tools)?;
    if let Some(choice) = present(body, "tool_choice") {
        let (choice, parallel) = decode_tool_choice(choice)?;
        req.tool_choice = choice;
        req.parallel_tool_calls = parallel;
    }
    req.reasoning = decode_reasoning(body)?;
    req.response_format = decode_format(body)?;

    req.max_output_tokens = opt_u64(body, "max_tokens", "max_tokens")?;
    req.temperature = opt_f64(body, "temperature")?;
    req.top_p = opt_f64(body, "top_p")?;
    req.top_k = opt_u64(body, "top_k", "top_k")?;
    req.stop = match present(body, "stop_sequences") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(String::from).ok_or_else(|| wrong_type("stop_sequences", "an array of strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(wrong_type("stop_sequences", "an array of strings")),
    };
    req.stream = opt_bool(body, "stream", "stream")?.unwrap_or(false);
    if let Some(metadata) = present(body, "metadata") {
        if !metadata.is_object() {
            return Err(wrong_type("metadata", "an object"));
        }
        req.user = opt_str(metadata, "user_id", "metadata.user_id")?.map(String::from);
    }
    // The caller's own breakpoints are not kept, but that it caches is: a Claude upstream
    // then gets the gateway's breakpoints.
    let marked = |v: &Value| v.get("cache_control").is_some_and(|c| !c.is_null());
    let any_marked = |v: Option<&Value>| v.and_then(Value::as_array).is_some_and(|items| items.iter().any(marked));
    req.prompt_cache = marked(body)
        || any_marked(body.get("system"))
        || any_marked(body.get("tools"))
        || messages.iter().any(|m| marked(m) || any_marked(m.get("content")));
    Ok(req)
}

fn decode_system(system: Option<&Value>) -> Result<Vec<Part>, GatewayError> {
    match system {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(system_text(s).into_iter().collect()),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let text = match b {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(_) => opt_str(b, "text", &format!("system.{i}.text"))?,
                    _ => None,
                };
                out.extend(text.and_then(system_text));
            }
            Ok(out)
        }
        Some(_) => Err(wrong_type("system", "a string or an array of text blocks")),
    }
}

/// The line Claude Code puts first in its system prompt: Anthropic billing metadata whose
/// `cch=` part changes on every request.
const BILLING_LINE: &str = "x-anthropic-billing-header:";

/// A system text as other providers get it: without Claude Code's billing line, which means
/// nothing to them and, changing per request at the very start of the prompt, would defeat
/// their prefix-based prompt caching (same-protocol passthrough keeps it for Anthropic).
fn system_text(text: &str) -> Option<Part> {
    let text = match text.strip_prefix(BILLING_LINE) {
        Some(rest) => rest.split_once('\n').map_or("", |(_, after)| after),
        None => text,
    };
    (!text.trim().is_empty()).then(|| Part::Text(text.to_string()))
}

/// Message content: a string or an array of blocks.
fn decode_content(content: Option<&Value>, param: &str) -> Result<Vec<Part>, GatewayError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                decode_block(block, &format!("{param}.{j}"), &mut out)?;
            }
            Ok(out)
        }
        Some(_) => Err(wrong_type(param, "a string or an array of content blocks")),
    }
}

fn decode_block(block: &Value, param: &str, out: &mut Vec<Part>) -> Result<(), GatewayError> {
    if let Value::String(s) = block {
        if !s.is_empty() {
            out.push(Part::Text(s.clone()));
        }
        return Ok(());
    }
    if !block.is_object() {
        return Err(wrong_type(param, "a content block object"));
    }
    let kind = req_str(block, "type", &format!("{param}.type"))?;
    match kind {
        "text" => {
            let text = opt_str(block, "text", &format!("{param}.text"))?.unwrap_or_default();
            if !text.is_empty() {
                out.push(Part::Text(text.to_string()));
            }
        }
        "image" => out.push(Part::Image(decode_source(block, param)?)),
        "document" => decode_document(block, param, out)?,
        "search_result" => {
            // Text the client found; the IR has no search results, so it stays text.
            let text = text_of(block.get("content").unwrap_or(&Value::Null));
            if !text.is_empty() {
                out.push(Part::Text(text));
            }
        }
        "tool_use" => {
            let id = req_str(block, "id", &format!("{param}.id"))?;
            let name = req_str(block, "name", &format!("{param}.name"))?;
            out.push(Part::ToolCall(ToolCall {
                id: id.to_string(),
                name: name.to_string(),
                arguments: wire::json_text(block.get("input")),
            }));
        }
        "tool_result" => {
            let call_id = req_str(block, "tool_use_id", &format!("{param}.tool_use_id"))?;
            let content = decode_content(block.get("content"), &format!("{param}.content"))?
                .into_iter()
                .filter(|p| matches!(p, Part::Text(_) | Part::Image(_) | Part::File { .. }))
                .collect();
            let is_error = opt_bool(block, "is_error", &format!("{param}.is_error"))?.unwrap_or(false);
            out.push(Part::ToolResult(ToolResult { call_id: call_id.to_string(), name: None, content, is_error }));
        }
        "thinking" => {
            let text = opt_str(block, "thinking", &format!("{param}.thinking"))?.unwrap_or_default();
            let signature = opt_str(block, "signature", &format!("{param}.signature"))?.unwrap_or_default();
            let reasoning = if signature.is_empty() {
                // Unsigned thinking (another model's, or edited): nobody can verify it.
                Reasoning { text: text.to_string(), ..Reasoning::default() }
            } else {
                carrier::from_client(signature, Protocol::Claude, text)
            };
            out.push(Part::Reasoning(reasoning));
        }
        "redacted_thinking" => {
            let data = req_str(block, "data", &format!("{param}.data"))?;
            out.push(Part::Reasoning(Reasoning {
                redacted: Some(data.to_string()),
                origin: Some(Protocol::Claude),
                ..Reasoning::default()
            }));
        }
        // Server tools (web search, code execution, MCP…) run at Anthropic and have no
        // IR form; their blocks are left out.
        _ => {}
    }
    Ok(())
}

/// The `source` of an image block.
fn decode_source(block: &Value, param: &str) -> Result<Media, GatewayError> {
    let source = match block.get("source") {
        Some(s @ Value::Object(_)) => s,
        _ => return Err(GatewayError::invalid(format!("Missing required field '{param}.source'.")).with_param(format!("{param}.source"))),
    };
    let sparam = format!("{param}.source");
    match wire::str_of(source, "type").unwrap_or("") {
        "base64" => Ok(Media::Base64 {
            media_type: req_str(source, "media_type", &format!("{sparam}.media_type"))?.to_string(),
            data: req_str(source, "data", &format!("{sparam}.data"))?.to_string(),
        }),
        "url" => Ok(Media::Url { url: req_str(source, "url", &format!("{sparam}.url"))?.to_string(), media_type: None }),
        "file" => Ok(Media::FileId(req_str(source, "file_id", &format!("{sparam}.file_id"))?.to_string())),
        other => Err(GatewayError::invalid(format!(
            "Unsupported value for '{sparam}.type': \"{other}\"; expected \"base64\", \"url\" or \"file\"."
        ))
        .with_param(format!("{sparam}.type"))),
    }
}

fn decode_document(block: &Value, param: &str, out: &mut Vec<Part>) -> Result<(), GatewayError> {
    let filename = wire::string_of(block, "title");
    let source = block.get("source").cloned().unwrap_or(Value::Null);
    let sparam = format!("{param}.source");
    match wire::str_of(&source, "type").unwrap_or("") {
        "text" => {
            let data = req_str(&source, "data", &format!("{sparam}.data"))?;
            let media_type = wire::str_of(&source, "media_type").unwrap_or("text/plain").to_string();
            out.push(Part::File { media: Media::Base64 { media_type, data: STANDARD.encode(data) }, filename });
        }
        "content" => {
            // A document made of blocks: its text and images, inline.
            let parts = decode_content(source.get("content"), &format!("{sparam}.content"))?;
            out.extend(parts.into_iter().filter(|p| matches!(p, Part::Text(_) | Part::Image(_))));
        }
        "base64" => {
            let data = req_str(&source, "data", &format!("{sparam}.data"))?;
            let media_type = wire::str_of(&source, "media_type").unwrap_or("application/pdf").to_string();
            out.push(Part::File { media: Media::Base64 { media_type, data: data.to_string() }, filename });
        }
        _ => out.push(Part::File { media: decode_source(block, param)?, filename }),
    }
    Ok(())
}

fn decode_tools(tools: Option<&Value>, dropped: &mut Vec<String>) -> Result<Vec<Tool>, GatewayError> {
    let items = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong_type("tools", "an array of tools")),
    };
    let mut out = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let param = format!("tools.{i}");
        if !t.is_object() {
            return Err(wrong_type(&param, "a tool object"));
        }
        let kind = opt_str(t, "type", &format!("{param}.type"))?;
        let schema = present(t, "input_schema");
        if schema.is_none() && kind.is_some_and(|k| k != "custom") {
            // A server tool (`web_search_20250305`, `bash_…`): nothing the IR can carry.
            dropped.push(kind.unwrap_or_default().to_string());
            continue;
        }
        let name = req_str(t, "name", &format!("{param}.name"))?;
        let parameters = match schema {
            None => json!({"type": "object", "properties": {}}),
            Some(s @ Value::Object(_)) => s.clone(),
            Some(_) => return Err(wrong_type(&format!("{param}.input_schema"), "a JSON Schema object")),
        };
        out.push(Tool {
            name: name.to_string(),
            description: opt_str(t, "description", &format!("{param}.description"))?.map(String::from),
            parameters,
            strict: opt_bool(t, "strict", &format!("{param}.strict"))?,
        });
    }
    Ok(out)
}

fn decode_tool_choice(v: &Value) -> Result<(Option<ToolChoice>, Option<bool>), GatewayError> {
    if !v.is_object() {
        return Err(wrong_type("tool_choice", "an object"));
    }
    let choice = match req_str(v, "type", "tool_choice.type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Named(req_str(v, "name", "tool_choice.name")?.to_string()),
        other => {
            return Err(GatewayError::invalid(format!(
                "Invalid value for 'tool_choice.type': \"{other}\"; expected \"auto\", \"any\", \"tool\" or \"none\"."
            ))
            .with_param("tool_choice.type"))
        }
    };
    let disable = opt_bool(v, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use")?;
    Ok((Some(choice), disable.map(|d| !d)))
}

fn decode_reasoning(body: &Value) -> Result<Option<ReasoningRequest>, GatewayError> {
    let output_config = present(body, "output_config");
    if output_config.is_some_and(|o| !o.is_object()) {
        return Err(wrong_type("output_config", "an object"));
    }
    let effort = match output_config.map(|o| opt_str(o, "effort", "output_config.effort")).transpose()?.flatten() {
        None => None,
        Some(s) => Some(Effort::parse(s).ok_or_else(|| {
            GatewayError::invalid(format!(
                "Invalid value for 'output_config.effort': \"{s}\"; expected \"low\", \"medium\", \"high\", \"xhigh\" or \"max\"."
            ))
            .with_param("output_config.effort")
        })?),
    };
    let Some(thinking) = present(body, "thinking") else {
        return Ok(effort.map(|e| ReasoningRequest { effort: Some(e), ..ReasoningRequest::default() }));
    };
    if !thinking.is_object() {
        return Err(wrong_type("thinking", "an object"));
    }
    let include_thoughts = match opt_str(thinking, "display", "thinking.display")? {
        Some("omitted") => Some(false),
        Some(_) => Some(true),
        None => None,
    };
    let mut r = ReasoningRequest { effort, include_thoughts, ..ReasoningRequest::default() };
    match req_str(thinking, "type", "thinking.type")? {
        "enabled" => {
            r.budget_tokens = Some(opt_u64(thinking, "budget_tokens", "thinking.budget_tokens")?.ok_or_else(|| {
                GatewayError::invalid("Missing required field 'thinking.budget_tokens'.").with_param("thinking.budget_tokens")
            })?);
        }
        "adaptive" => {}
        "disabled" => r = ReasoningRequest { disabled: true, ..ReasoningRequest::default() },
        other => {
            return Err(GatewayError::invalid(format!(
                "Invalid value for 'thinking.type': \"{other}\"; expected \"enabled\", \"adaptive\" or \"disabled\"."
            ))
            .with_param("thinking.type"))
        }
    }
    Ok(Some(r))
}

fn decode_format(body: &Value) -> Result<Option<ResponseFormat>, GatewayError> {
    let format = present(body, "output_config")
        .and_then(|o| present(o, "format"))
        .map(|f| (f, "output_config.format"))
        .or_else(|| present(body, "output_format").map(|f| (f, "output_format")));
    let Some((format, param)) = format else { return Ok(None) };
    if !format.is_object() {
        return Err(wrong_type(param, "an object"));
    }
    match wire::str_of(format, "type") {
        Some("json_schema") => {
            let schema = match present(format, "schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => return Err(wrong_type(&format!("{param}.schema"), "a JSON Schema object")),
            };
            Ok(Some(ResponseFormat::JsonSchema { name: "output".to_string(), schema, strict: None, description: None }))
        }
        _ => Err(GatewayError::invalid(format!("Invalid value for '{param}.type': expected \"json_schema\"."))
            .with_param(format!("{param}.type"))),
    }
}

// ---------------------------------------------------------------------------------------
// Egress: IR as an Anthropic Messages body.
// ---------------------------------------------------------------------------------------

/// Text of the user turn inserted when a history starts with the assistant.
const CONTINUE_TEXT: &str = "(continue)";
/// Result text for a tool call the history never answered.
const MISSING_RESULT_TEXT: &str = "No result was provided for this tool call.";
/// Anthropic's minimum thinking budget.
const MIN_BUDGET: u64 = 1024;

/// A tool id Anthropic accepts (`^[a-zA-Z0-9_-]+$`): valid ids unchanged, others with
/// invalid characters replaced and a hash of the original appended, so that the mapping
/// is deterministic (a `tool_use` and its `tool_result` get the same id in every request)
/// and distinct ids stay distinct.
pub fn tool_id(id: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(valid) {
        return id.to_string();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let cleaned: String = id.chars().map(|c| if valid(c) { c } else { '_' }).take(48).collect();
    format!("{cleaned}_{hash:016x}")
}

/// Egress: IR as an upstream request body.
pub fn encode(req: &Request, target: &Target) -> Result<Value, GatewayError> {
    Ok(Value::Object(build(req, target)?))
}

/// The `count_tokens` body for `req`: what `encode` sends minus generation settings
/// (no `max_tokens`).
pub fn encode_count(req: &Request, target: &Target) -> Result<Value, GatewayError> {
    let full = build(req, target)?;
    let mut out = Map::new();
    for key in ["model", "system", "messages", "tools", "tool_choice", "thinking"] {
        if let Some(v) = full.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// One Anthropic turn being built: tool results kept apart until pairing.
struct Turn {
    role: Role,
    blocks: Vec<Value>,
    /// `(sanitised tool_use_id, tool_result block)`.
    results: Vec<(String, Value)>,
}

fn build(req: &Request, target: &Target) -> Result<Map<String, Value>, GatewayError> {
    if req.previous_response_id.is_some() {
        return Err(GatewayError::invalid(
            "'previous_response_id' needs a provider that keeps conversation state (OpenAI Responses); \
             this model's provider speaks Anthropic Messages, so send the whole conversation instead.",
        )
        .with_param("previous_response_id"));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));

    let mut turns = encode_turns(&req.messages)?;
    // Opus/Sonnet 4.6 and later refuse a conversation that ends with the assistant (a
    // prefill, as chat apps' "continue" sends): the model answers the last user turn instead.
    if adaptive_thinking(target.model) && turns.len() > 1 && turns.last().is_some_and(|t| t.role == Role::Assistant && !t.blocks.iter().any(is_tool_use)) {
        turns.pop();
    }
    // Thinking budget (None = off) and max_tokens above it.
    let mut budget = thinking_budget(req, target).map(|b| b.max(MIN_BUDGET));
    if budget.is_some() && !tool_loop_has_thinking(&turns) {
        // Anthropic requires the assistant turns of an ongoing tool loop to start with
        // their thinking; the history has none we can send, so this request goes without.
        budget = None;
    }
    let mut max_tokens = req.max_output_tokens.or(target.options.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(b) = budget {
        if max_tokens <= b {
            max_tokens = b.saturating_add(max_tokens.max(1));
        }
    }
    if budget.is_none() {
        // A final assistant turn (prefill) may not hold thinking when thinking is off.
        if let Some(last) = turns.last_mut().filter(|t| t.role == Role::Assistant) {
            last.blocks.retain(|b| !is_thinking(b));
            if last.blocks.is_empty() {
                turns.pop();
            }
        }
    }
    if turns.is_empty() {
        return Err(GatewayError::invalid("The request has no message with content; Anthropic needs at least one.")
            .with_param("messages"));
    }
    // A prefill may not end in whitespace.
    if let Some(last) = turns.last_mut().filter(|t| t.role == Role::Assistant) {
        if let Some(Value::Object(b)) = last.blocks.last_mut() {
            if b.get("type").and_then(Value::as_str) == Some("text") {
                let trimmed = b.get("text").and_then(Value::as_str).unwrap_or("").trim_end().to_string();
                if trimmed.is_empty() {
                    last.blocks.pop();
                } else {
                    b.insert("text".into(), json!(trimmed));
                }
            }
        }
        if last.blocks.is_empty() {
            turns.pop();
        }
    }
    let history_tools: Vec<String> = tool_names_in(&turns);

    let system: Vec<Value> = req
        .system
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.trim().is_empty() => Some(json!({"type": "text", "text": t})),
            _ => None,
        })
        .collect();
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|t| {
                    let role = if t.role == Role::User { "user" } else { "assistant" };
                    wire::object([("role", json!(role)), ("content", Value::Array(t.blocks))])
                })
                .collect(),
        ),
    );
    body.insert("max_tokens".into(), json!(max_tokens));

    // Tools and tool_choice.
    let mut tools: Vec<&Tool> = req.tools.iter().collect();
    let mut choice = req.tool_choice.clone();
    if let Some(ToolChoice::Allowed { names, required }) = &choice {
        tools.retain(|t| names.contains(&t.name));
        choice = Some(if *required { ToolChoice::Required } else { ToolChoice::Auto });
    }
    let mut tool_values: Vec<Value> = tools.iter().map(|t| encode_tool(t)).collect();
    if tool_values.is_empty() && !history_tools.is_empty() {
        // Anthropic refuses a history with tool blocks and no tools; declare the ones the
        // history used and forbid calling them.
        tool_values = history_tools.iter().map(|n| json!({"name": n, "input_schema": {"type": "object"}})).collect();
        choice = Some(ToolChoice::None);
    }
    if !tool_values.is_empty() {
        body.insert("tools".into(), Value::Array(tool_values));
        let mut tc = match choice {
            None if req.parallel_tool_calls == Some(false) => Some(json!({"type": "auto"})),
            None => None,
            Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
            Some(ToolChoice::Required) => Some(json!({"type": "any"})),
            Some(ToolChoice::Named(n)) => Some(json!({"type": "tool", "name": n})),
            Some(ToolChoice::Allowed { .. }) => Some(json!({"type": "auto"})),
        };
        if let Some(Value::Object(tc)) = tc.as_mut() {
            let kind = tc.get("type").and_then(Value::as_str).unwrap_or("auto").to_string();
            if budget.is_some() && (kind == "any" || kind == "tool") {
                // "Thinking may not be enabled when tool_choice forces tool use."
                tc.remove("name");
                tc.insert("type".into(), json!("auto"));
            }
            if kind != "none" && req.parallel_tool_calls == Some(false) {
                tc.insert("disable_parallel_tool_use".into(), json!(true));
            }
        }
        if let Some(tc) = tc {
            body.insert("tool_choice".into(), tc);
        }
    }

    if let Some(b) = budget {
        if adaptive_thinking(target.model) {
            // Claude 4.6+ takes adaptive thinking with an effort; budgets are deprecated
            // there and rejected by Opus 4.7.
            let effort = match req.reasoning.and_then(|r| r.effort) {
                Some(Effort::None | Effort::Minimal | Effort::Low) => "low",
                Some(Effort::Medium) => "medium",
                Some(Effort::High) => "high",
                Some(Effort::XHigh) => "xhigh",
                Some(Effort::Max) => "max",
                None => match Effort::from_budget(b) {
                    Effort::None | Effort::Minimal | Effort::Low => "low",
                    Effort::Medium => "medium",
                    _ => "high",
                },
            };
            body.insert("thinking".into(), json!({"type": "adaptive"}));
            body.insert("output_config".into(), json!({"effort": effort}));
        } else {
            body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": b}));
        }
    }

    // Sampling. With thinking on, Anthropic takes no temperature or top_k, and top_p only
    // from 0.95 to 1.
    let thinking = budget.is_some();
    if let Some(t) = req.temperature.filter(|_| !thinking) {
        body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    } else if let Some(p) = req.top_p {
        if !thinking || p >= 0.95 {
            body.insert("top_p".into(), json!(p.clamp(0.0, 1.0)));
        }
    }
    if let Some(k) = req.top_k.filter(|_| !thinking) {
        body.insert("top_k".into(), json!(k));
    }
    let stop: Vec<&String> = req.stop.iter().filter(|s| !s.trim().is_empty()).collect();
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &req.response_format {
        let config = body.entry("output_config").or_insert_with(|| json!({}));
        config["format"] = json!({"type": "json_schema", "schema": schema});
    }
    if let Some(user) = req.user.as_deref().filter(|u| !u.is_empty()) {
        body.insert("metadata".into(), json!({"user_id": crate::protocols::user_id_within(user, 256)}));
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
    }
    if target.options.prompt_cache.unwrap_or(req.prompt_cache) {
        add_cache_breakpoints(&mut body);
    }
    Ok(body)
}

/// Anthropic cache breakpoints (`cache_control: ephemeral`) on the last tool, the last
/// system block and the last block of the last message that can hold one (not thinking,
/// not empty text): each turn then reads the prefix the previous turn wrote. At most three
/// of Anthropic's four; a prefix below the model's minimum is simply not cached.
fn add_cache_breakpoints(body: &mut Map<String, Value>) {
    let mark = |block: &mut Value| {
        if let Value::Object(b) = block {
            b.insert("cache_control".into(), json!({"type": "ephemeral"}));
        }
    };
    let cacheable = |block: &Value| match block.get("type").and_then(Value::as_str) {
        Some("thinking" | "redacted_thinking") | None => false,
        Some("text") => block.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty()),
        Some(_) => true,
    };
    for key in ["tools", "system"] {
        if let Some(last) = body.get_mut(key).and_then(Value::as_array_mut).and_then(|a| a.last_mut()) {
            mark(last);
        }
    }
    let last_message = body.get_mut("messages").and_then(Value::as_array_mut).and_then(|m| m.last_mut());
    if let Some(blocks) = last_message.and_then(|m| m.get_mut("content")).and_then(Value::as_array_mut) {
        if let Some(block) = blocks.iter_mut().rev().find(|b| cacheable(b)) {
            mark(block);
        }
    }
}

/// Whether `model` takes `thinking: {type: "adaptive"}` + `output_config.effort` rather
/// than a token budget: Claude models of generation 4.6 and later (`claude-opus-4-7`,
/// `claude-sonnet-4-6`, `claude-*-5…`).
pub fn adaptive_thinking(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let Some(rest) = name.strip_prefix("claude-") else { return false };
    let mut numbers = rest.split(['-', '.']).filter_map(|p| p.parse::<u32>().ok()).filter(|n| *n < 100);
    match (numbers.next(), numbers.next()) {
        (Some(major), _) if major >= 5 => true,
        (Some(4), Some(minor)) => minor >= 6,
        _ => false,
    }
}

/// The thinking budget for this request, `None` when thinking stays off.
fn thinking_budget(req: &Request, target: &Target) -> Option<u64> {
    let configured = target.options.reasoning_effort.as_deref().and_then(Effort::parse);
    let r = match req.reasoning {
        Some(r) => r,
        None => ReasoningRequest { effort: Some(configured?), ..ReasoningRequest::default() },
    };
    if r.disabled {
        return None;
    }
    let budget = match (r.budget_tokens, r.effort) {
        (Some(b), _) => b,
        (None, Some(e)) => e.budget(),
        // Reasoning asked for without a level: the configured one, else medium.
        (None, None) => configured.unwrap_or(Effort::Medium).budget(),
    };
    (budget > 0).then_some(budget)
}

/// Same-protocol passthrough: removes the thinking blocks the gateway packed for this
/// caller from another provider's reasoning (their `signature` is ours, which Anthropic
/// would reject), and switches thinking off when an ongoing tool loop is left without the
/// thinking Anthropic requires there. Whether anything changed.
pub fn drop_packed_reasoning(body: &mut Value) -> bool {
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return false };
    let packed = |b: &Value| is_thinking(b) && [b.get("signature"), b.get("data")].into_iter().flatten().filter_map(Value::as_str).any(carrier::is_packed);
    let mut changed = false;
    let count = messages.len();
    messages.retain_mut(|m| {
        let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) else { return true };
        let before = blocks.len();
        blocks.retain(|b| !packed(b));
        changed |= blocks.len() != before;
        blocks.len() == before || !blocks.is_empty()
    });
    if !changed {
        return false;
    }
    if messages.len() != count {
        // An assistant turn that held only such thinking went: its neighbours join.
        wire::join_same_role(messages, |prev, m| {
            let mut blocks = content_blocks(prev.get("content"));
            blocks.extend(content_blocks(m.get("content")));
            prev["content"] = Value::Array(blocks);
            Ok(())
        });
    }
    if !loop_has_thinking(messages, message_role, message_blocks) {
        if let Some(o) = body.as_object_mut() {
            o.remove("thinking");
        }
    }
    true
}

fn message_role(message: &Value) -> Role {
    if message.get("role").and_then(Value::as_str) == Some("user") { Role::User } else { Role::Assistant }
}

/// A raw message's content blocks (none for string content).
fn message_blocks(message: &Value) -> &[Value] {
    message.get("content").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A message's content as blocks (a string is one text block).
fn content_blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => Vec::new(),
    }
}

fn is_thinking(block: &Value) -> bool {
    matches!(block.get("type").and_then(Value::as_str), Some("thinking" | "redacted_thinking"))
}

fn is_tool_use(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str) == Some("tool_use")
}

/// Whether every assistant turn with a `tool_use` in the current tool loop (the turns
/// after the last user turn that holds no tool result) starts with a thinking block.
fn tool_loop_has_thinking(turns: &[Turn]) -> bool {
    loop_has_thinking(turns, |t| t.role, |t: &Turn| t.blocks.as_slice())
}

/// [`tool_loop_has_thinking`] over any list of turns (the encoder's, or a request's raw
/// messages), given each turn's role and content blocks.
fn loop_has_thinking<T>(turns: &[T], role: impl Fn(&T) -> Role, blocks: impl Fn(&T) -> &[Value]) -> bool {
    let start = turns
        .iter()
        .rposition(|t| role(t) == Role::User && !blocks(t).iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")))
        .map(|i| i + 1)
        .unwrap_or(0);
    turns[start.min(turns.len())..]
        .iter()
        .filter(|t| role(t) == Role::Assistant && blocks(t).iter().any(is_tool_use))
        .all(|t| blocks(t).first().is_some_and(is_thinking))
}

fn tool_names_in(turns: &[Turn]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for t in turns {
        for b in t.blocks.iter().filter(|b| is_tool_use(b)) {
            if let Some(n) = b.get("name").and_then(Value::as_str) {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
    }
    names
}

fn encode_tool(t: &Tool) -> Value {
    let schema = match &t.parameters {
        Value::Object(m) => {
            let mut m = m.clone();
            if !m.contains_key("type") {
                m.insert("type".into(), json!("object"));
            }
            Value::Object(m)
        }
        _ => json!({"type": "object", "properties": {}}),
    };
    let mut v = wire::object([("name", json!(t.name)), ("input_schema", schema)]);
    if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
        v["description"] = json!(d);
    }
    v
}

/// Messages as alternating Anthropic turns with every `tool_use` answered at the start
/// of the next user turn.
fn encode_turns(messages: &[Message]) -> Result<Vec<Turn>, GatewayError> {
    // 1. Blocks per message; empty messages dropped; same-role neighbours merged.
    let mut merged: Vec<Turn> = Vec::new();
    for m in messages {
        let mut turn = Turn { role: m.role, blocks: Vec::new(), results: Vec::new() };
        for part in &m.parts {
            encode_part(m.role, part, &mut turn)?;
        }
        if turn.blocks.is_empty() && turn.results.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some(prev) if prev.role == turn.role => {
                prev.blocks.extend(turn.blocks);
                prev.results.extend(turn.results);
            }
            _ => merged.push(turn),
        }
    }

    // 2. Pair tool results with the tool_use turn before them.
    let mut out: Vec<Turn> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for turn in merged {
        match turn.role {
            Role::Assistant => {
                if !pending.is_empty() {
                    out.push(placeholder_turn(&pending));
                }
                let mut turn = turn;
                hoist_thinking(&mut turn.blocks);
                pending.clear();
                for id in turn.blocks.iter().filter(|b| is_tool_use(b)).filter_map(|b| b.get("id").and_then(Value::as_str)) {
                    if !pending.iter().any(|p| p == id) {
                        pending.push(id.to_string());
                    }
                }
                out.push(turn);
            }
            Role::User => {
                let mut answered: HashSet<String> = HashSet::new();
                let mut first: Vec<Value> = Vec::new();
                let mut orphans: Vec<Value> = Vec::new();
                for (id, block) in turn.results {
                    if pending.contains(&id) {
                        if answered.insert(id) {
                            first.push(block);
                        }
                    } else {
                        orphans.push(orphan_text(&id, &block));
                    }
                }
                for id in pending.iter().filter(|id| !answered.contains(*id)) {
                    first.push(missing_result(id));
                }
                pending.clear();
                first.extend(orphans);
                first.extend(turn.blocks);
                if !first.is_empty() {
                    out.push(Turn { role: Role::User, blocks: first, results: Vec::new() });
                }
            }
        }
    }
    if !pending.is_empty() {
        out.push(placeholder_turn(&pending));
    }
    if out.first().is_some_and(|t| t.role == Role::Assistant) {
        out.insert(0, Turn { role: Role::User, blocks: vec![json!({"type": "text", "text": CONTINUE_TEXT})], results: Vec::new() });
    }
    Ok(out)
}

/// Moves the thinking blocks that precede the first `tool_use` to the front of an
/// assistant turn (keeping their order): Anthropic wants the turn to start with its
/// thinking, and clients of other protocols may have put text first.
fn hoist_thinking(blocks: &mut Vec<Value>) {
    if blocks.first().is_none_or(is_thinking) {
        return;
    }
    let end = blocks.iter().position(is_tool_use).unwrap_or(blocks.len());
    let (thinking, other): (Vec<Value>, Vec<Value>) = blocks.drain(..end).partition(is_thinking);
    let rest = std::mem::take(blocks);
    blocks.extend(thinking);
    blocks.extend(other);
    blocks.extend(rest);
}

fn missing_result(id: &str) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": MISSING_RESULT_TEXT, "is_error": true})
}

fn placeholder_turn(ids: &[String]) -> Turn {
    Turn { role: Role::User, blocks: ids.iter().map(|id| missing_result(id)).collect(), results: Vec::new() }
}

/// A tool result whose call is not in the turn before it, as text (a `tool_result`
/// there would be refused).
fn orphan_text(id: &str, block: &Value) -> Value {
    let content = match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(c @ Value::Array(_)) => text_of(c),
        _ => String::new(),
    };
    let error = if block.get("is_error").and_then(Value::as_bool) == Some(true) { " (error)" } else { "" };
    json!({"type": "text", "text": format!("[Result of tool call {id}{error}]\n{content}")})
}

fn encode_part(role: Role, part: &Part, turn: &mut Turn) -> Result<(), GatewayError> {
    match (role, part) {
        (_, Part::Text(t)) if !t.trim().is_empty() => turn.blocks.push(json!({"type": "text", "text": t})),
        (Role::User, Part::Image(media)) => turn.blocks.push(image_block(media)),
        (Role::User, Part::File { media, filename }) => turn.blocks.push(document_block(media, filename.as_deref())?),
        (Role::User, Part::ToolResult(r)) => {
            let id = tool_id(&r.call_id);
            turn.results.push((id.clone(), tool_result_block(&id, r)?));
        }
        (Role::Assistant, Part::ToolCall(c)) => turn.blocks.push(json!({
            "type": "tool_use",
            "id": tool_id(&c.id),
            "name": c.name,
            "input": wire::arguments_object(&c.arguments),
        })),
        // Only Claude can verify Claude's thinking; anything else is dropped, never
        // turned into text. Unsigned Claude thinking cannot be sent either.
        (Role::Assistant, Part::Reasoning(r)) if carrier::accepted_by(r, Protocol::Claude) => {
            if let Some(data) = &r.redacted {
                turn.blocks.push(json!({"type": "redacted_thinking", "data": data}));
            } else if let Some(sig) = r.signature.as_deref().filter(|s| !s.is_empty()) {
                turn.blocks.push(json!({"type": "thinking", "thinking": r.text, "signature": sig}));
            }
        }
        // Empty text, assistant media, user-side calls and reasoning have no Anthropic form.
        _ => {}
    }
    Ok(())
}

fn image_block(media: &Media) -> Value {
    json!({"type": "image", "source": media_source(media)})
}

fn media_source(media: &Media) -> Value {
    match media {
        Media::Base64 { media_type, data } => {
            let media_type = if media_type.eq_ignore_ascii_case("image/jpg") { "image/jpeg" } else { media_type.as_str() };
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Url { url, .. } => json!({"type": "url", "url": url}),
        Media::FileId(id) => json!({"type": "file", "file_id": id}),
    }
}

fn document_block(media: &Media, filename: Option<&str>) -> Result<Value, GatewayError> {
    let source = match media {
        Media::Base64 { media_type, .. } if media_type.starts_with("image/") => return Ok(image_block(media)),
        Media::Base64 { media_type, data } if media_type == "application/pdf" => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Base64 { media_type, data } if media_type.starts_with("text/") || media_type.ends_with("json") => {
            let text = STANDARD
                .decode(data.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| GatewayError::invalid(format!("A {media_type} file is not valid base64 UTF-8 text.")))?;
            json!({"type": "text", "media_type": "text/plain", "data": text})
        }
        Media::Base64 { media_type, .. } => {
            return Err(GatewayError::invalid(format!(
                "Claude accepts PDF, plain-text and image files; this request has a {media_type} file."
            )))
        }
        Media::Url { url, media_type } if media_type.as_deref().is_some_and(|t| t.starts_with("image/")) => {
            return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
        }
        Media::Url { url, .. } => json!({"type": "url", "url": url}),
        Media::FileId(id) => json!({"type": "file", "file_id": id}),
    };
    let mut block = json!({"type": "document", "source": source});
    if let Some(name) = filename.filter(|n| !n.is_empty()) {
        block["title"] = json!(name);
    }
    Ok(block)
}

fn tool_result_block(id: &str, r: &ToolResult) -> Result<Value, GatewayError> {
    let mut content: Vec<Value> = Vec::new();
    for p in &r.content {
        match p {
            Part::Text(t) if !t.trim().is_empty() => content.push(json!({"type": "text", "text": t})),
            Part::Image(m) => content.push(image_block(m)),
            Part::File { media, filename } => content.push(document_block(media, filename.as_deref())?),
            _ => {}
        }
    }
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    match content.as_slice() {
        [] => {}
        [only] if only.get("type").and_then(Value::as_str) == Some("text") => {
            block["content"] = only.get("text").cloned().unwrap_or(Value::Null);
        }
        _ => block["content"] = Value::Array(content),
    }
    if r.is_error {
        block["is_error"] = json!(true);
    }
    Ok(block)
}
