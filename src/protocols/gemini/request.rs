//! Gemini requests both ways: what the gateway reads from a client's `generateContent`
//! body (ingress, [`decode`]) and the body it sends a Gemini upstream (egress, [`encode`],
//! [`encode_count`]). The model comes from the URL path, never from the body.
//!
//! Ingress accepts the REST camelCase names and the snake_case names official samples
//! also use (`system_instruction`, `inline_data`, `mime_type`, `function_call`…).
//! Egress writes camelCase only.

use serde_json::{json, Map, Value};

use crate::carrier;
use crate::error::GatewayError;
use crate::ir::{
    self, Effort, Media, Message, Part, Reasoning, ReasoningRequest, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult,
};
use crate::json_fields::{JsonKind, JsonObject};
use crate::protocols::{EncodeOptions, Envelope, Protocol, Target};
use crate::wire;

pub fn envelope(body: &JsonObject) -> Result<Envelope, GatewayError> {
    body.typed("contents", JsonKind::Array)?;
    body.typed("generationConfig", JsonKind::Object)?;
    body.typed("systemInstruction", JsonKind::Object)?;
    body.typed("tools", JsonKind::Array)?;
    Ok(Envelope { model: None, stream: false, options: EncodeOptions::default() })
}


/// Prefix marking a tool call id Gemini itself returned (`functionCall.id`), so that
/// egress sends ids back to Gemini only when they are Gemini's own (ids of other
/// providers, or ids the gateway synthesised, never reach Gemini: it pairs calls and
/// responses by name and order).
pub const OWN_ID_PREFIX: &str = "gcall_";

/// The value Google documents for function calls that have no signature of their own
/// (history written by another model or provider): it tells Gemini 3 to skip thought
/// signature validation instead of answering 400 "Function call is missing a
/// thought_signature". See the Gemini/Vertex "thought signatures" pages (FAQ).
pub const DUMMY_SIGNATURE: &str = "skip_thought_signature_validator";

// ---------------------------------------------------------------------------------
// Ingress: a Gemini request as IR
// ---------------------------------------------------------------------------------

fn invalid(message: impl Into<String>, param: &str) -> GatewayError {
    GatewayError::invalid(message).with_param(param)
}

/// A field under its camelCase or snake_case name; `null` reads as absent.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake)).filter(|x| !x.is_null())
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn opt_str<'a>(v: &'a Value, camel: &str, snake: &str, parent: &str) -> Result<Option<&'a str>, GatewayError> {
    match field(v, camel, snake) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{} must be a string.", join(parent, camel)), &join(parent, camel))),
    }
}

fn opt_f64(v: &Value, camel: &str, snake: &str, parent: &str) -> Result<Option<f64>, GatewayError> {
    match field(v, camel, snake) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{} must be a number.", join(parent, camel)), &join(parent, camel))),
    }
}

/// An integer; proto3 JSON also allows 64-bit integers as decimal strings.
fn opt_i64(v: &Value, camel: &str, snake: &str, parent: &str) -> Result<Option<i64>, GatewayError> {
    let Some(x) = field(v, camel, snake) else { return Ok(None) };
    let n = match x {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| invalid(format!("{} must be an integer.", join(parent, camel)), &join(parent, camel)))
}

fn opt_u64(v: &Value, camel: &str, snake: &str, parent: &str) -> Result<Option<u64>, GatewayError> {
    match opt_i64(v, camel, snake, parent)? {
        None => Ok(None),
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(_) => Err(invalid(format!("{} must not be negative.", join(parent, camel)), &join(parent, camel))),
    }
}

fn opt_bool(v: &Value, camel: &str, snake: &str, parent: &str) -> Result<Option<bool>, GatewayError> {
    match field(v, camel, snake) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{} must be a boolean.", join(parent, camel)), &join(parent, camel))),
    }
}

fn opt_object<'a>(v: &'a Value, camel: &str, snake: &str, parent: &str) -> Result<Option<&'a Value>, GatewayError> {
    match field(v, camel, snake) {
        None => Ok(None),
        Some(x @ Value::Object(_)) => Ok(Some(x)),
        Some(_) => Err(invalid(format!("{} must be an object.", join(parent, camel)), &join(parent, camel))),
    }
}

fn opt_array<'a>(v: &'a Value, camel: &str, snake: &str, parent: &str) -> Result<&'a [Value], GatewayError> {
    match field(v, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(format!("{} must be an array.", join(parent, camel)), &join(parent, camel))),
    }
}

fn opt_strings(v: &Value, camel: &str, snake: &str, parent: &str) -> Result<Vec<String>, GatewayError> {
    let param = join(parent, camel);
    match field(v, camel, snake) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(|| invalid(format!("{param} must be a list of strings."), &param)))
            .collect(),
        Some(_) => Err(invalid(format!("{param} must be a list of strings."), &param)),
    }
}

/// Same-protocol passthrough: `thoughtSignature`s the gateway packed from another
/// provider's reasoning are not Gemini's: a function call keeps the documented
/// placeholder instead (Gemini 3 requires one on the current turn's calls), a thought
/// part goes, other parts lose the field. Whether anything changed.
pub fn drop_packed_reasoning(body: &mut Value) -> bool {
    let wrapper = ["generateContentRequest", "generate_content_request"].into_iter().find(|k| body.get(*k).is_some_and(Value::is_object));
    let target = match wrapper {
        Some(key) => &mut body[key],
        None => body,
    };
    let Some(contents) = target.get_mut("contents").and_then(Value::as_array_mut) else { return false };
    let mut changed = false;
    let count = contents.len();
    contents.retain_mut(|content| {
        let Some(parts) = content.get_mut("parts").and_then(Value::as_array_mut) else { return true };
        let before = parts.len();
        parts.retain_mut(|part| {
            let Some(key) = ["thoughtSignature", "thought_signature"]
                .into_iter()
                .find(|k| part.get(*k).and_then(Value::as_str).is_some_and(carrier::is_packed))
            else {
                return true;
            };
            changed = true;
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                return false;
            }
            if part.get("functionCall").or_else(|| part.get("function_call")).is_some() {
                part[key] = json!(DUMMY_SIGNATURE);
            } else if let Some(o) = part.as_object_mut() {
                o.remove(key);
            }
            true
        });
        parts.len() == before || !parts.is_empty()
    });
    if contents.len() != count {
        // A model turn that held only such a thought went: its neighbours join.
        wire::join_same_role(contents, |prev, c| match (prev.get_mut("parts").and_then(Value::as_array_mut), c.get("parts")) {
            (Some(parts), Some(Value::Array(more))) => {
                parts.extend(more.iter().cloned());
                Ok(())
            }
            _ => Err(c),
        });
    }
    changed
}

/// Ingress: a client request as IR. A `countTokens` body wrapping its request in
/// `generateContentRequest` is read the same way.
pub fn decode(body: &Value) -> Result<ir::Request, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::invalid("The request body must be a JSON object."));
    }
    if field(body, "contents", "contents").is_none() {
        if let Some(inner) = opt_object(body, "generateContentRequest", "generate_content_request", "")? {
            return decode(inner);
        }
    }
    let mut req = ir::Request::default();

    if opt_str(body, "cachedContent", "cached_content", "")?.is_some() {
        return Err(invalid(
            "cachedContent refers to a Gemini context cache, which only a Gemini provider can use; send the contents instead.",
            "cachedContent",
        ));
    }

    if let Some(sys) = field(body, "systemInstruction", "system_instruction") {
        req.system = decode_system(sys)?;
    }

    let contents = match field(body, "contents", "contents") {
        None => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(invalid("contents must be an array of Content objects.", "contents")),
    };
    req.messages = decode_contents(contents)?;

    for (i, tool) in opt_array(body, "tools", "tools", "")?.iter().enumerate() {
        decode_tool(tool, &format!("tools[{i}]"), &mut req.tools)?;
    }

    if let Some(tc) = opt_object(body, "toolConfig", "tool_config", "")? {
        if let Some(fcc) = opt_object(tc, "functionCallingConfig", "function_calling_config", "toolConfig")? {
            req.tool_choice = decode_tool_choice(fcc)?;
        }
    }

    if let Some(gc) = opt_object(body, "generationConfig", "generation_config", "")? {
        decode_generation_config(gc, &mut req)?;
    }

    if let Some(Value::Object(labels)) = field(body, "labels", "labels") {
        let m: Map<String, Value> = labels.iter().filter(|(_, v)| v.is_string()).map(|(k, v)| (k.clone(), v.clone())).collect();
        if !m.is_empty() {
            req.metadata = Some(m);
        }
    }
    Ok(req)
}

fn decode_system(sys: &Value) -> Result<Vec<Part>, GatewayError> {
    let parts = match sys {
        Value::String(s) => return Ok(if s.is_empty() { Vec::new() } else { vec![Part::Text(s.clone())] }),
        Value::Object(_) => opt_array(sys, "parts", "parts", "systemInstruction")?,
        _ => return Err(invalid("systemInstruction must be a Content object ({\"parts\":[{\"text\":…}]}).", "systemInstruction")),
    };
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let param = format!("systemInstruction.parts[{i}]");
        if let Some(t) = opt_str(p, "text", "text", &param)? {
            if !t.is_empty() {
                out.push(Part::Text(t.to_string()));
            }
        }
    }
    Ok(out)
}

/// A function call of the model turn the next function responses answer.
struct CallSlot {
    id: String,
    name: String,
    answered: bool,
}

/// Characters allowed in synthesised ids (every protocol accepts `[A-Za-z0-9_-]`).
fn id_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// A stable id for a call Gemini sent without one: the same history always gives the
/// same id, so the function response of the next turn finds its call again.
fn synth_call_id(name: &str, turn: usize, n: usize) -> String {
    format!("call_{}_{turn}_{n}", id_safe(name))
}

fn decode_contents(contents: &[Value]) -> Result<Vec<Message>, GatewayError> {
    let mut messages: Vec<Message> = Vec::new();
    let mut slots: Vec<CallSlot> = Vec::new();
    for (ti, content) in contents.iter().enumerate() {
        let param = format!("contents[{ti}]");
        if !content.is_object() {
            return Err(invalid(format!("{param} must be a Content object."), &param));
        }
        let role = match opt_str(content, "role", "role", &param)? {
            None | Some("") | Some("user") | Some("function") | Some("tool") => Role::User,
            Some("model") | Some("assistant") => Role::Assistant,
            Some(other) => {
                return Err(invalid(
                    format!("{param}.role must be \"user\" or \"model\", got \"{other}\"."),
                    &format!("{param}.role"),
                ))
            }
        };
        let parts = opt_array(content, "parts", "parts", &param)?;
        let mut out: Vec<Part> = Vec::new();
        let mut new_slots: Vec<CallSlot> = Vec::new();
        for (pi, part) in parts.iter().enumerate() {
            decode_part(part, &format!("{param}.parts[{pi}]"), ti, &mut out, &mut slots, &mut new_slots)?;
        }
        if !new_slots.is_empty() {
            slots = new_slots;
        }
        if out.is_empty() {
            continue;
        }
        match messages.last_mut() {
            // Streamed answers reach history as one content per chunk: join them, so a
            // signature on a call finds the thought text before it.
            Some(last) if last.role == role => {
                for p in out {
                    push_part(&mut last.parts, p, role);
                }
            }
            _ => {
                let mut parts = Vec::new();
                for p in out {
                    push_part(&mut parts, p, role);
                }
                messages.push(Message { role, parts });
            }
        }
    }
    Ok(messages)
}

/// Appends a part to a message. In a model turn, text fragments join (a streamed
/// answer's chunks), and unsigned thought text joins the signed reasoning after it: the
/// gateway's encoder (like Gemini) puts a reasoning block's signature on the part after
/// its thought text, where clients that drop thought parts from history still keep it.
fn push_part(parts: &mut Vec<Part>, part: Part, role: Role) {
    if role == Role::Assistant {
        match (parts.last_mut(), part) {
            (Some(Part::Text(a)), Part::Text(b)) => a.push_str(&b),
            (Some(Part::Reasoning(a)), Part::Reasoning(b)) if is_bare(a) && is_bare(&b) => a.text.push_str(&b.text),
            // Any signed block (also one the carrier brought back without a payload, such
            // as Chat's reasoning) takes the thought text before it.
            (Some(Part::Reasoning(a)), Part::Reasoning(mut b)) if is_bare(a) && !is_bare(&b) => {
                // Claude's text travels inside the packed value, byte-exact; any other
                // reasoning's text is the thought text the client sent around it.
                if b.origin != Some(Protocol::Claude) || b.text.is_empty() {
                    b.text = format!("{}{}", a.text, b.text);
                }
                *a = b;
            }
            (_, part) => parts.push(part),
        }
    } else {
        parts.push(part);
    }
}

/// Thought text without any payload or known origin.
fn is_bare(r: &Reasoning) -> bool {
    !r.has_payload() && r.origin.is_none() && r.id.is_none()
}

/// The reasoning a `thoughtSignature` carries (the caller's own Gemini signature, or a
/// block of another provider the gateway packed into it).
fn signed(sig: &str, own_text: &str) -> Part {
    Part::Reasoning(carrier::from_client(sig, Protocol::Gemini, own_text))
}

fn media_of(blob: &Value, param: &str, inline: bool) -> Result<(Media, Option<String>, bool), GatewayError> {
    let mime = opt_str(blob, "mimeType", "mime_type", param)?.map(String::from);
    let name = opt_str(blob, "displayName", "display_name", param)?.map(String::from);
    if inline {
        let data = opt_str(blob, "data", "data", param)?
            .ok_or_else(|| invalid(format!("{param}.data is required."), &format!("{param}.data")))?;
        let mime = mime.ok_or_else(|| invalid(format!("{param}.mimeType is required."), &format!("{param}.mimeType")))?;
        let image = mime.starts_with("image/");
        Ok((Media::Base64 { media_type: mime, data: data.to_string() }, name, image))
    } else {
        let uri = opt_str(blob, "fileUri", "file_uri", param)?
            .ok_or_else(|| invalid(format!("{param}.fileUri is required."), &format!("{param}.fileUri")))?;
        let mime = mime.or_else(|| guess_mime(uri).map(String::from));
        let image = mime.as_deref().map(|m| m.starts_with("image/")).unwrap_or(false);
        Ok((Media::Url { url: uri.to_string(), media_type: mime }, name, image))
    }
}

fn media_part(media: Media, filename: Option<String>, image: bool) -> Part {
    if image {
        Part::Image(media)
    } else {
        Part::File { media, filename }
    }
}

fn decode_part(
    p: &Value,
    param: &str,
    turn: usize,
    out: &mut Vec<Part>,
    slots: &mut [CallSlot],
    new_slots: &mut Vec<CallSlot>,
) -> Result<(), GatewayError> {
    if !p.is_object() {
        return Err(invalid(format!("{param} must be a Part object."), param));
    }
    // The validator-skipping dummy carries no reasoning (the gateway itself adds it).
    let sig = opt_str(p, "thoughtSignature", "thought_signature", param)?.filter(|s| !s.is_empty() && *s != DUMMY_SIGNATURE);
    let thought = opt_bool(p, "thought", "thought", param)?.unwrap_or(false);

    if let Some(text) = opt_str(p, "text", "text", param)? {
        if thought {
            match sig {
                Some(sig) => out.push(signed(sig, text)),
                None if !text.is_empty() => out.push(Part::Reasoning(Reasoning { text: text.to_string(), ..Reasoning::default() })),
                None => {}
            }
        } else {
            if let Some(sig) = sig {
                out.push(signed(sig, ""));
            }
            if !text.is_empty() {
                out.push(Part::Text(text.to_string()));
            }
        }
        return Ok(());
    }

    if let Some(sig) = sig {
        out.push(signed(sig, ""));
    }

    if let Some(blob) = opt_object(p, "inlineData", "inline_data", param)? {
        let (media, name, image) = media_of(blob, &join(param, "inlineData"), true)?;
        out.push(media_part(media, name, image));
    } else if let Some(file) = opt_object(p, "fileData", "file_data", param)? {
        let (media, name, image) = media_of(file, &join(param, "fileData"), false)?;
        out.push(media_part(media, name, image));
    } else if let Some(fc) = opt_object(p, "functionCall", "function_call", param)? {
        let fparam = join(param, "functionCall");
        let name = opt_str(fc, "name", "name", &fparam)?
            .ok_or_else(|| invalid(format!("{fparam}.name is required."), &format!("{fparam}.name")))?;
        let id = match opt_str(fc, "id", "id", &fparam)?.filter(|s| !s.is_empty()) {
            Some(id) => id.to_string(),
            None => synth_call_id(name, turn, new_slots.len()),
        };
        let arguments = match field(fc, "args", "args") {
            None => "{}".to_string(),
            Some(a @ Value::Object(_)) => a.to_string(),
            Some(_) => return Err(invalid(format!("{fparam}.args must be an object."), &format!("{fparam}.args"))),
        };
        new_slots.push(CallSlot { id: id.clone(), name: name.to_string(), answered: false });
        out.push(Part::ToolCall(ToolCall { id, name: name.to_string(), arguments }));
    } else if let Some(fr) = opt_object(p, "functionResponse", "function_response", param)? {
        let fparam = join(param, "functionResponse");
        let name = opt_str(fr, "name", "name", &fparam)?.unwrap_or_default().to_string();
        let given = opt_str(fr, "id", "id", &fparam)?.filter(|s| !s.is_empty());
        let call_id = match_call(slots, given, &name).unwrap_or_else(|| match given {
            Some(id) => id.to_string(),
            None => synth_call_id(&name, turn, out.iter().filter(|p| matches!(p, Part::ToolResult(_))).count()),
        });
        let (text, is_error) = response_text(field(fr, "response", "response"));
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(Part::Text(text));
        }
        for (i, rp) in opt_array(fr, "parts", "parts", &fparam)?.iter().enumerate() {
            let rparam = format!("{fparam}.parts[{i}]");
            if let Some(blob) = opt_object(rp, "inlineData", "inline_data", &rparam)? {
                let (media, name, image) = media_of(blob, &join(&rparam, "inlineData"), true)?;
                content.push(media_part(media, name, image));
            } else if let Some(file) = opt_object(rp, "fileData", "file_data", &rparam)? {
                let (media, name, image) = media_of(file, &join(&rparam, "fileData"), false)?;
                content.push(media_part(media, name, image));
            }
        }
        out.push(Part::ToolResult(ToolResult {
            call_id,
            name: if name.is_empty() { None } else { Some(name) },
            content,
            is_error,
        }));
    } else if let Some(code) = opt_object(p, "executableCode", "executable_code", param)? {
        let lang = str_field(code, "language").unwrap_or("").to_ascii_lowercase();
        let body = str_field(code, "code").unwrap_or("");
        out.push(Part::Text(format!("```{lang}\n{body}\n```")));
    } else if let Some(result) = opt_object(p, "codeExecutionResult", "code_execution_result", param)? {
        if let Some(o) = str_field(result, "output").filter(|o| !o.is_empty()) {
            out.push(Part::Text(o.to_string()));
        }
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The call a function response answers: its own id when that names a call of the
/// previous model turn, else the first unanswered call with the same name (Gemini
/// pairs calls and responses by name and order).
fn match_call(slots: &mut [CallSlot], given: Option<&str>, name: &str) -> Option<String> {
    if let Some(id) = given {
        if let Some(s) = slots.iter_mut().find(|s| s.id == id) {
            s.answered = true;
            return Some(s.id.clone());
        }
    }
    let s = slots.iter_mut().find(|s| !s.answered && s.name == name)?;
    s.answered = true;
    Some(s.id.clone())
}

/// A function response's `response` as tool result text: `{"output": "<text>"}` gives
/// the text, `{"error": …}` alone an error, any other object its JSON text.
fn response_text(v: Option<&Value>) -> (String, bool) {
    let as_text = |x: &Value| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        None => (String::new(), false),
        Some(Value::Object(m)) if m.len() == 1 => {
            if let Some(Value::String(s)) = m.get("output") {
                (s.clone(), false)
            } else if let Some(e) = m.get("error") {
                (as_text(e), true)
            } else {
                (Value::Object(m.clone()).to_string(), false)
            }
        }
        Some(other) => (as_text(other), false),
    }
}

fn decode_tool(tool: &Value, param: &str, tools: &mut Vec<Tool>) -> Result<(), GatewayError> {
    let Some(obj) = tool.as_object() else {
        return Err(invalid(format!("{param} must be a Tool object."), param));
    };
    for (key, value) in obj {
        if value.is_null() || key == "functionDeclarations" || key == "function_declarations" {
            continue;
        }
        return Err(invalid(
            format!("{param}.{key}: Gemini built-in tools (googleSearch, codeExecution, urlContext…) are only available when the model is served by a Gemini provider."),
            &format!("{param}.{key}"),
        ));
    }
    for (i, d) in opt_array(tool, "functionDeclarations", "function_declarations", param)?.iter().enumerate() {
        let dparam = format!("{param}.functionDeclarations[{i}]");
        if !d.is_object() {
            return Err(invalid(format!("{dparam} must be a FunctionDeclaration object."), &dparam));
        }
        let name = opt_str(d, "name", "name", &dparam)?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("{dparam}.name is required."), &format!("{dparam}.name")))?;
        let description = opt_str(d, "description", "description", &dparam)?.map(String::from);
        let schema = field(d, "parametersJsonSchema", "parameters_json_schema").or_else(|| field(d, "parameters", "parameters"));
        let parameters = match schema {
            None => json!({"type": "object", "properties": {}}),
            Some(s @ Value::Object(_)) => to_json_schema(s),
            Some(_) => return Err(invalid(format!("{dparam}.parameters must be an object."), &format!("{dparam}.parameters"))),
        };
        tools.push(Tool { name: name.to_string(), description, parameters, strict: None });
    }
    Ok(())
}

fn decode_tool_choice(fcc: &Value) -> Result<Option<ToolChoice>, GatewayError> {
    let param = "toolConfig.functionCallingConfig";
    let mode = opt_str(fcc, "mode", "mode", param)?.map(|m| m.to_ascii_uppercase());
    let names = opt_strings(fcc, "allowedFunctionNames", "allowed_function_names", param)?;
    Ok(match mode.as_deref() {
        Some("ANY") => Some(match names.len() {
            0 => ToolChoice::Required,
            1 => ToolChoice::Named(names.into_iter().next().unwrap_or_default()),
            _ => ToolChoice::Allowed { names, required: true },
        }),
        Some("NONE") => Some(ToolChoice::None),
        Some("AUTO") | Some("VALIDATED") | Some("MODE_UNSPECIFIED") | None => {
            if !names.is_empty() {
                Some(ToolChoice::Allowed { names, required: false })
            } else if matches!(mode.as_deref(), Some("AUTO") | Some("VALIDATED")) {
                Some(ToolChoice::Auto)
            } else {
                None
            }
        }
        Some(other) => {
            return Err(invalid(
                format!("{param}.mode must be AUTO, ANY, NONE or VALIDATED, got \"{other}\"."),
                &format!("{param}.mode"),
            ))
        }
    })
}

fn decode_generation_config(gc: &Value, req: &mut ir::Request) -> Result<(), GatewayError> {
    let p = "generationConfig";
    req.max_output_tokens = opt_u64(gc, "maxOutputTokens", "max_output_tokens", p)?;
    req.temperature = opt_f64(gc, "temperature", "temperature", p)?;
    req.top_p = opt_f64(gc, "topP", "top_p", p)?;
    req.top_k = opt_f64(gc, "topK", "top_k", p)?.map(|k| if k > 0.0 { k as u64 } else { 0 });
    req.stop = opt_strings(gc, "stopSequences", "stop_sequences", p)?;
    req.seed = opt_i64(gc, "seed", "seed", p)?;
    req.presence_penalty = opt_f64(gc, "presencePenalty", "presence_penalty", p)?;
    req.frequency_penalty = opt_f64(gc, "frequencyPenalty", "frequency_penalty", p)?;
    if let Some(n) = opt_u64(gc, "candidateCount", "candidate_count", p)? {
        if n > 1 {
            return Err(invalid(
                "candidateCount greater than 1 is not supported for this model.",
                "generationConfig.candidateCount",
            ));
        }
    }

    let mime = opt_str(gc, "responseMimeType", "response_mime_type", p)?;
    let schema = match field(gc, "responseJsonSchema", "response_json_schema").or_else(|| field(gc, "responseSchema", "response_schema")) {
        None => None,
        Some(s @ Value::Object(_)) => Some(to_json_schema(s)),
        Some(_) => return Err(invalid("generationConfig.responseSchema must be an object.", "generationConfig.responseSchema")),
    };
    req.response_format = match (mime, schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema { name: "response".into(), schema, strict: None, description: None }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        _ => None,
    };

    if let Some(tc) = opt_object(gc, "thinkingConfig", "thinking_config", p)? {
        let tp = "generationConfig.thinkingConfig";
        let mut r = ReasoningRequest {
            include_thoughts: opt_bool(tc, "includeThoughts", "include_thoughts", tp)?,
            ..ReasoningRequest::default()
        };
        match opt_i64(tc, "thinkingBudget", "thinking_budget", tp)? {
            None => {}
            Some(0) => r.disabled = true,
            // -1: "dynamic", the model decides; a middle effort is the closest request.
            Some(n) if n < 0 => r.effort = Some(Effort::Medium),
            Some(n) => r.budget_tokens = Some(n as u64),
        }
        if let Some(level) = opt_str(tc, "thinkingLevel", "thinking_level", tp)? {
            let level = level.to_ascii_lowercase();
            if level != "thinking_level_unspecified" {
                let effort = Effort::parse(&level).ok_or_else(|| {
                    invalid(
                        format!("{tp}.thinkingLevel must be MINIMAL, LOW, MEDIUM or HIGH, got \"{level}\"."),
                        &format!("{tp}.thinkingLevel"),
                    )
                })?;
                r.effort = Some(effort);
                if effort == Effort::None {
                    r.disabled = true;
                }
            }
        }
        if r != ReasoningRequest::default() {
            req.reasoning = Some(r);
        }
    }
    Ok(())
}

const SCHEMA_MAPS: [&str; 4] = ["properties", "$defs", "definitions", "patternProperties"];
const SCHEMA_LISTS: [&str; 4] = ["anyOf", "oneOf", "allOf", "prefixItems"];
const SCHEMA_ONES: [&str; 4] = ["items", "additionalProperties", "not", "contains"];
const SCHEMA_INTS: [&str; 6] = ["minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"];

/// A Gemini `Schema` (OpenAPI subset, upper-case types as google-genai sends them,
/// `nullable`, `propertyOrdering`) as plain JSON Schema; real JSON Schema
/// (`parametersJsonSchema`) passes through with the same normalisations.
pub fn to_json_schema(s: &Value) -> Value {
    let Value::Object(m) = s else { return s.clone() };
    let mut out = Map::new();
    let nullable = m.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    for (key, value) in m {
        match key.as_str() {
            "nullable" | "propertyOrdering" | "example" => {}
            "type" => match value {
                Value::String(t) => {
                    let t = t.to_ascii_lowercase();
                    if t != "type_unspecified" {
                        out.insert(key.clone(), json!(t));
                    }
                }
                Value::Array(ts) => {
                    let ts: Vec<Value> = ts.iter().map(|t| t.as_str().map(|t| json!(t.to_ascii_lowercase())).unwrap_or_else(|| t.clone())).collect();
                    out.insert(key.clone(), Value::Array(ts));
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            k if SCHEMA_MAPS.contains(&k) => match value {
                Value::Object(props) => {
                    out.insert(key.clone(), Value::Object(props.iter().map(|(n, v)| (n.clone(), to_json_schema(v))).collect()));
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            k if SCHEMA_LISTS.contains(&k) => match value {
                Value::Array(items) => {
                    out.insert(key.clone(), Value::Array(items.iter().map(to_json_schema).collect()));
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            k if SCHEMA_ONES.contains(&k) => {
                out.insert(key.clone(), to_json_schema(value));
            }
            k if SCHEMA_INTS.contains(&k) => {
                let v = match value {
                    Value::String(s) => s.trim().parse::<u64>().map(|n| json!(n)).unwrap_or_else(|_| value.clone()),
                    other => other.clone(),
                };
                out.insert(key.clone(), v);
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // `Schema` enums are strings even for numbers; `format: "enum"` marks a string enum.
    if out.get("format").and_then(Value::as_str) == Some("enum") {
        out.remove("format");
    }
    if matches!(out.get("type").and_then(Value::as_str), Some("integer") | Some("number")) {
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            for v in values.iter_mut() {
                if let Some(n) = v.as_str().and_then(|s| serde_json::from_str::<serde_json::Number>(s.trim()).ok()) {
                    *v = Value::Number(n);
                }
            }
        }
    }
    if nullable {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => ts.push(json!("null")),
            _ => {}
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------
// Egress: IR as a Gemini request body
// ---------------------------------------------------------------------------------

/// A MIME type from a URL's file extension.
pub fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit('/').next()?.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

/// Whether `id` is a call id Gemini returned itself; gives the id Gemini knows.
fn own_id(id: &str) -> Option<&str> {
    id.strip_prefix(OWN_ID_PREFIX).filter(|s| !s.is_empty())
}

fn media_json(media: &Media, image: bool, param: &str) -> Result<Value, GatewayError> {
    Ok(match media {
        Media::Base64 { media_type, data } => json!({"inlineData": {"mimeType": media_type, "data": data}}),
        Media::Url { url, media_type } => {
            if url.starts_with("data:") {
                if let m @ Media::Base64 { .. } = Media::from_url(url) {
                    return media_json(&m, image, param);
                }
            }
            let fallback = if image { "image/jpeg" } else { "application/pdf" };
            let mime = media_type.clone().or_else(|| guess_mime(url).map(String::from)).unwrap_or_else(|| fallback.to_string());
            json!({"fileData": {"mimeType": mime, "fileUri": url}})
        }
        Media::FileId(id) => {
            if id.starts_with("files/") || id.starts_with("https://") || id.starts_with("gs://") {
                let fallback = if image { "image/jpeg" } else { "application/pdf" };
                let mime = guess_mime(id).unwrap_or(fallback);
                json!({"fileData": {"mimeType": mime, "fileUri": id}})
            } else {
                return Err(invalid(
                    format!("The file id \"{id}\" belongs to another provider's file storage, which Gemini cannot read; send the file's data or URL instead."),
                    param,
                ));
            }
        }
    })
}

/// The object a function response carries: `{"output": …}`, `{"error": …}`, or the
/// result itself when it already is a JSON object (Gemini requires an object).
fn function_response_value(r: &ToolResult) -> Value {
    let text = r.text();
    if r.is_error {
        return wire::object([("error", Value::String(text))]);
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => wire::object([("output", Value::String(text))]),
    }
}

/// Gemini's contents: roles, signatures and the turn rules it enforces.
fn encode_contents(req: &ir::Request) -> Result<Vec<Value>, GatewayError> {
    // Names of calls by id: function responses need the name.
    let mut names: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for m in &req.messages {
        for p in &m.parts {
            if let Part::ToolCall(c) = p {
                names.insert(c.id.as_str(), c.name.as_str());
            }
        }
    }

    let mut contents: Vec<(Role, Vec<Value>)> = Vec::new();
    for (mi, m) in req.messages.iter().enumerate() {
        let param = format!("messages[{mi}]");
        let parts = match m.role {
            Role::Assistant => encode_model_parts(&m.parts, &param)?,
            Role::User => encode_user_parts(&m.parts, &names, &param)?,
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((role, prev)) if *role == m.role => prev.extend(parts),
            _ => contents.push((m.role, parts)),
        }
    }

    // Within a user content, function responses first (they answer the model turn
    // before), then the user's own parts; a response with no call right before it
    // cannot be sent as one (400), so it becomes text.
    for i in 0..contents.len() {
        if contents[i].0 != Role::User {
            continue;
        }
        let after_calls = i > 0 && contents[i - 1].0 == Role::Assistant && contents[i - 1].1.iter().any(|p| p.get("functionCall").is_some());
        let parts = std::mem::take(&mut contents[i].1);
        let (mut responses, others): (Vec<Value>, Vec<Value>) = parts.into_iter().partition(|p| p.get("functionResponse").is_some());
        if !after_calls {
            responses = responses.into_iter().map(response_as_text).collect();
        }
        responses.extend(others);
        contents[i].1 = responses;
    }

    // A model turn with function calls must follow a user turn.
    if let Some((Role::Assistant, parts)) = contents.first() {
        if parts.iter().any(|p| p.get("functionCall").is_some()) {
            contents.insert(0, (Role::User, vec![json!({"text": "(continuing an earlier conversation)"})]));
        }
    }

    // The current turn: every model content after the last user content that is the
    // user's own input, without function responses (a content mixing both counts as
    // part of the tool loop, erring towards more dummies, which cost nothing). Gemini 3
    // validates the thought signature of the first function call of each step of the
    // current turn and answers 400 for a call without one; calls written by another
    // provider (or whose signature the caller could not keep) get the documented dummy.
    let last_user_input = contents
        .iter()
        .rposition(|(role, parts)| *role == Role::User && !parts.iter().any(|p| p.get("functionResponse").is_some()));
    let start = last_user_input.map(|i| i + 1).unwrap_or(0);
    for (role, parts) in contents.iter_mut().skip(start) {
        if *role != Role::Assistant {
            continue;
        }
        if let Some(first_call) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) {
            if first_call.get("thoughtSignature").is_none() {
                first_call["thoughtSignature"] = json!(DUMMY_SIGNATURE);
            }
        }
    }

    Ok(contents
        .into_iter()
        .map(|(role, parts)| wire::object([("role", json!(if role == Role::User { "user" } else { "model" })), ("parts", Value::Array(parts))]))
        .collect())
}

fn response_as_text(part: Value) -> Value {
    let fr = part.get("functionResponse").cloned().unwrap_or(Value::Null);
    let name = fr.get("name").and_then(Value::as_str).unwrap_or("tool");
    let body = fr.get("response").map(|r| r.to_string()).unwrap_or_default();
    json!({"text": format!("Result of {name}: {body}")})
}

fn encode_user_parts(parts: &[Part], names: &std::collections::HashMap<&str, &str>, param: &str) -> Result<Vec<Value>, GatewayError> {
    let mut out = Vec::new();
    let mut extra = Vec::new();
    for (pi, p) in parts.iter().enumerate() {
        let pparam = format!("{param}.content[{pi}]");
        match p {
            Part::Text(t) if !t.is_empty() => out.push(json!({"text": t})),
            Part::Text(_) | Part::Reasoning(_) => {}
            Part::Image(media) => out.push(media_json(media, true, &pparam)?),
            Part::File { media, .. } => out.push(media_json(media, false, &pparam)?),
            Part::ToolCall(_) => {}
            Part::ToolResult(r) => {
                let name = r.name.as_deref().filter(|n| !n.is_empty()).or_else(|| names.get(r.call_id.as_str()).copied());
                let Some(name) = name else {
                    // No call by that id and no name: Gemini cannot take it as a function response.
                    out.push(json!({"text": format!("Result of tool call {}: {}", r.call_id, r.text())}));
                    continue;
                };
                let mut fr = wire::object([("name", json!(name)), ("response", function_response_value(r))]);
                if let Some(id) = own_id(&r.call_id) {
                    fr["id"] = json!(id);
                }
                out.push(wire::object([("functionResponse", fr)]));
                // Images returned by a tool go next to the responses, which every
                // Gemini model accepts (multimodal function responses are Gemini 3 only).
                for c in &r.content {
                    match c {
                        Part::Image(media) => extra.push(media_json(media, true, &pparam)?),
                        Part::File { media, .. } => extra.push(media_json(media, false, &pparam)?),
                        _ => {}
                    }
                }
            }
        }
    }
    out.extend(extra);
    Ok(out)
}

fn encode_model_parts(parts: &[Part], param: &str) -> Result<Vec<Value>, GatewayError> {
    let mut out: Vec<Value> = Vec::new();
    // The IR index of the part that produced `out`'s last element.
    let mut last_from: Option<usize> = None;
    // A signature waiting for the next part.
    let mut pending: Option<String> = None;
    for (pi, p) in parts.iter().enumerate() {
        let pparam = format!("{param}.content[{pi}]");
        let mut part = match p {
            Part::Reasoning(r) => {
                // Only Gemini's own signatures go back; thought text is never resent.
                let Some(sig) = r.signature.as_ref().filter(|_| carrier::accepted_by(r, Protocol::Gemini)) else { continue };
                if let Some(prev) = pending.take() {
                    out.push(json!({"text": "", "thoughtSignature": prev}));
                    last_from = None;
                }
                let before_call = matches!(parts.get(pi + 1), Some(Part::ToolCall(_)));
                // Gemini's decoders put a signature that came on a text part right after
                // that part: give it back to the same part, as Gemini sent it.
                let after_own_part = pi > 0 && last_from == Some(pi - 1);
                match out.last_mut() {
                    Some(prev)
                        if !before_call
                            && after_own_part
                            && prev.get("thoughtSignature").is_none()
                            && prev.get("functionCall").is_none() =>
                    {
                        prev["thoughtSignature"] = json!(sig);
                    }
                    _ => pending = Some(sig.clone()),
                }
                continue;
            }
            Part::Text(t) => {
                if t.is_empty() && pending.is_none() {
                    continue;
                }
                json!({"text": t})
            }
            Part::ToolCall(c) => {
                let mut fc = json!({"name": c.name, "args": wire::arguments_object(&c.arguments)});
                if let Some(id) = own_id(&c.id) {
                    fc["id"] = json!(id);
                }
                json!({ "functionCall": fc })
            }
            Part::Image(media) => media_json(media, true, &pparam)?,
            Part::File { media, .. } => media_json(media, false, &pparam)?,
            Part::ToolResult(_) => continue,
        };
        if let Some(sig) = pending.take() {
            part["thoughtSignature"] = json!(sig);
        }
        out.push(part);
        last_from = Some(pi);
    }
    if let Some(sig) = pending {
        out.push(json!({"text": "", "thoughtSignature": sig}));
    }
    Ok(out)
}

/// JSON Schema for `parametersJsonSchema` / `responseJsonSchema`.
///
/// Choice (protocols.md §4.1, P-G8): schemas go to Gemini as JSON Schema in
/// `parametersJsonSchema`/`responseJsonSchema`, which take `additionalProperties`,
/// `$ref`/`$defs`, `anyOf`/`oneOf` and `["x","null"]` types that the OpenAPI-style
/// `parameters`/`responseSchema` reject, so no lossy rewrite into `Schema` is needed.
/// Only `$schema` is removed (a meta-schema URI Gemini does not take) and `const`
/// becomes a one-value `enum` (Gemini's documented subset has `enum`, not `const`);
/// everything else is kept as the caller wrote it.
pub fn clean_schema(s: &Value) -> Value {
    let Value::Object(m) = s else { return s.clone() };
    let mut out = Map::new();
    for (key, value) in m {
        match key.as_str() {
            "$schema" => {}
            "const" if !m.contains_key("enum") => {
                out.insert("enum".into(), json!([value]));
            }
            k if SCHEMA_MAPS.contains(&k) => match value {
                Value::Object(props) => {
                    out.insert(key.clone(), Value::Object(props.iter().map(|(n, v)| (n.clone(), clean_schema(v))).collect()));
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            k if SCHEMA_LISTS.contains(&k) => match value {
                Value::Array(items) => {
                    out.insert(key.clone(), Value::Array(items.iter().map(clean_schema).collect()));
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            k if SCHEMA_ONES.contains(&k) => {
                out.insert(key.clone(), clean_schema(value));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn encode_system(req: &ir::Request) -> Option<Value> {
    let parts: Vec<Value> = req
        .system
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(json!({"text": t})),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(wire::object([("parts", Value::Array(parts))]))
    }
}

/// `tools` and `toolConfig`.
fn encode_tools(req: &ir::Request) -> (Option<Value>, Option<Value>) {
    if req.tools.is_empty() {
        return (None, None);
    }
    // An allowed subset the model may ignore: Gemini limits names only with ANY, so
    // declare just that subset and leave the mode AUTO.
    let subset: Option<&[String]> = match &req.tool_choice {
        Some(ToolChoice::Allowed { names, required: false }) => Some(names),
        _ => None,
    };
    let decls: Vec<Value> = req
        .tools
        .iter()
        .filter(|t| subset.map(|s| s.contains(&t.name)).unwrap_or(true))
        .map(|t| {
            let mut d = json!({"name": t.name});
            if let Some(desc) = t.description.as_ref().filter(|d| !d.is_empty()) {
                d["description"] = json!(desc);
            }
            let params = if t.parameters.is_object() { clean_schema(&t.parameters) } else { json!({"type": "object", "properties": {}}) };
            d["parametersJsonSchema"] = params;
            d
        })
        .collect();
    if decls.is_empty() {
        return (None, None);
    }
    let config = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Auto) | Some(ToolChoice::Allowed { required: false, .. }) => Some(json!({"mode": "AUTO"})),
        Some(ToolChoice::None) => Some(json!({"mode": "NONE"})),
        Some(ToolChoice::Required) => Some(json!({"mode": "ANY"})),
        Some(ToolChoice::Named(name)) => Some(json!({"mode": "ANY", "allowedFunctionNames": [name]})),
        Some(ToolChoice::Allowed { names, required: true }) => Some(json!({"mode": "ANY", "allowedFunctionNames": names})),
    };
    (
        Some(json!([{ "functionDeclarations": decls }])),
        config.map(|c| json!({ "functionCallingConfig": c })),
    )
}

/// Gemini 2.x takes a token budget; Gemini 3 and later a thinking level.
fn takes_budget(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.contains("gemini-2") || m.contains("gemini-1")
}

fn thinking_config(req: &ir::Request, target: &Target) -> Option<Value> {
    let from_caller = req.reasoning.is_some();
    let r = match req.reasoning {
        Some(r) => r,
        None => {
            let effort = target.options.reasoning_effort.as_deref().and_then(Effort::parse)?;
            ReasoningRequest { effort: Some(effort), disabled: effort == Effort::None, ..ReasoningRequest::default() }
        }
    };
    let model = target.model.to_ascii_lowercase();
    let pro = model.contains("pro");
    let mut config = Map::new();
    let asked = r.effort.is_some() || r.budget_tokens.is_some() || r.disabled;
    if asked {
        if takes_budget(&model) {
            let mut budget = r.effective_budget().unwrap_or(0);
            if pro {
                // 2.5 Pro cannot switch thinking off; 128 is its smallest budget.
                budget = budget.clamp(128, 32768);
            } else {
                budget = budget.min(24576);
            }
            config.insert("thinkingBudget".into(), json!(budget));
        } else if let Some(effort) = r.effective_effort() {
            let level = match effort {
                // Gemini 3 Pro knows only LOW and HIGH.
                Effort::None | Effort::Minimal | Effort::Low if pro => "LOW",
                _ if pro => "HIGH",
                Effort::None | Effort::Minimal => "MINIMAL",
                Effort::Low => "LOW",
                Effort::Medium => "MEDIUM",
                Effort::High | Effort::XHigh | Effort::Max => "HIGH",
            };
            config.insert("thinkingLevel".into(), json!(level));
        }
    }
    let off = r.disabled || r.effort == Some(Effort::None);
    let include = match r.include_thoughts {
        Some(b) => b,
        None => from_caller && asked,
    };
    if include && !off {
        config.insert("includeThoughts".into(), json!(true));
    }
    if config.is_empty() {
        None
    } else {
        Some(Value::Object(config))
    }
}

fn generation_config(req: &ir::Request, target: &Target) -> Map<String, Value> {
    let mut gc = Map::new();
    if let Some(n) = req.max_output_tokens.or(target.options.max_tokens) {
        gc.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        gc.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        gc.insert("topP".into(), json!(p));
    }
    if let Some(k) = req.top_k {
        gc.insert("topK".into(), json!(k));
    }
    let stops: Vec<&String> = req.stop.iter().filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        gc.insert("stopSequences".into(), json!(stops));
    }
    if let Some(seed) = req.seed {
        // Gemini's seed is an int32.
        let seed = if i32::try_from(seed).is_ok() { seed } else { seed & 0x7fff_ffff };
        gc.insert("seed".into(), json!(seed));
    }
    if let Some(p) = req.presence_penalty {
        gc.insert("presencePenalty".into(), json!(p));
    }
    if let Some(p) = req.frequency_penalty {
        gc.insert("frequencyPenalty".into(), json!(p));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
            gc.insert("responseJsonSchema".into(), clean_schema(schema));
        }
    }
    if let Some(tc) = thinking_config(req, target) {
        gc.insert("thinkingConfig".into(), tc);
    }
    gc
}

/// Egress: IR as a `generateContent` / `streamGenerateContent` body. The model goes in
/// the URL, not the body; `stream` likewise (the gateway picks the method).
pub fn encode(req: &ir::Request, target: &Target) -> Result<Value, GatewayError> {
    if req.previous_response_id.is_some() {
        return Err(invalid(
            "previous_response_id refers to conversation state stored by OpenAI, which a Gemini provider does not have; send the whole conversation instead.",
            "previous_response_id",
        ));
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(encode_contents(req)?));
    if let Some(sys) = encode_system(req) {
        body.insert("systemInstruction".into(), sys);
    }
    let (tools, tool_config) = encode_tools(req);
    if let Some(t) = tools {
        body.insert("tools".into(), t);
    }
    if let Some(tc) = tool_config {
        body.insert("toolConfig".into(), tc);
    }
    let gc = generation_config(req, target);
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    Ok(Value::Object(body))
}

/// Egress: a `countTokens` body. The `generateContentRequest` form (rather than bare
/// `contents`) makes Gemini count the system instruction and tools too.
pub fn encode_count(req: &ir::Request, target: &Target) -> Result<Value, GatewayError> {
    let full = encode(req, target)?;
    let mut inner = Map::new();
    inner.insert("model".into(), json!(format!("models/{}", target.model.strip_prefix("models/").unwrap_or(target.model))));
    for key in ["contents", "systemInstruction", "tools"] {
        if let Some(v) = full.get(key) {
            inner.insert(key.into(), v.clone());
        }
    }
    Ok(json!({ "generateContentRequest": Value::Object(inner) }))
}
