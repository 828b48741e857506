//! Tool names as each upstream takes them.
//!
//! The protocols disagree on what a tool name may be: OpenAI takes `[a-zA-Z0-9_-]`, at most
//! 64 characters; Anthropic the same characters, at most 128; Gemini also `.` and `:`, must
//! start with a letter or `_`, at most 128. A name the upstream would reject (Claude Code's
//! long `mcp__server__tool` names sent to OpenAI, a Gemini `ns.tool` sent to Claude) is
//! renamed for that upstream only, to a fitting name that ends in a digest of the original
//! so distinct tools stay distinct; the conversion maps the upstream's calls back, so the
//! client only ever sees its own names.

use std::collections::HashMap;

use crate::ir::{Part, Request, ToolChoice};
use crate::protocols::Protocol;

fn max_len(upstream: Protocol) -> usize {
    match upstream {
        Protocol::OpenAiChat | Protocol::OpenAiResponses => 64,
        Protocol::Claude | Protocol::Gemini => 128,
    }
}

fn allowed(upstream: Protocol, c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || (upstream == Protocol::Gemini && (c == '.' || c == ':'))
}

/// Whether `name` starts as `upstream` requires (Gemini: a letter or `_`).
fn starts_right(upstream: Protocol, name: &str) -> bool {
    upstream != Protocol::Gemini || name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// Whether `upstream` takes `name` as it is.
pub fn fits(upstream: Protocol, name: &str) -> bool {
    !name.is_empty() && name.len() <= max_len(upstream) && name.chars().all(|c| allowed(upstream, c)) && starts_right(upstream, name)
}

/// The name `upstream` gets for a tool called `name` that does not fit: the fitting
/// characters (others become `_`), cut to leave room for `_` and 8 hex digits of a digest
/// of the whole original name.
pub fn fitted(upstream: Protocol, name: &str) -> String {
    let tag = format!("_{:08x}", crate::protocols::digest(name, 0) as u32);
    let mut out = String::new();
    if !starts_right(upstream, name) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if allowed(upstream, c) { c } else { '_' }));
    out.truncate(max_len(upstream) - tag.len());
    out + &tag
}

/// The request as `upstream` takes it, when some tool name needs renaming: the renamed
/// request and, for each renamed tool, (upstream name, client name). `None` when every
/// name fits (the request goes as it is).
pub fn fit_request(upstream: Protocol, req: &Request) -> Option<(Request, Vec<(String, String)>)> {
    let mut names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    for m in &req.messages {
        for p in &m.parts {
            match p {
                Part::ToolCall(c) => names.push(&c.name),
                Part::ToolResult(r) => names.extend(r.name.as_deref()),
                _ => {}
            }
        }
    }
    match &req.tool_choice {
        Some(ToolChoice::Named(n)) => names.push(n),
        Some(ToolChoice::Allowed { names: allowed, .. }) => names.extend(allowed.iter().map(String::as_str)),
        _ => {}
    }
    let renames: HashMap<String, String> =
        names.into_iter().filter(|n| !fits(upstream, n)).map(|n| (n.to_string(), fitted(upstream, n))).collect();
    if renames.is_empty() {
        return None;
    }
    let rename = |name: &mut String| {
        if let Some(new) = renames.get(name.as_str()) {
            *name = new.clone();
        }
    };
    let mut out = req.clone();
    out.tools.iter_mut().for_each(|t| rename(&mut t.name));
    for m in &mut out.messages {
        for p in &mut m.parts {
            match p {
                Part::ToolCall(c) => rename(&mut c.name),
                Part::ToolResult(r) => r.name.iter_mut().for_each(rename),
                _ => {}
            }
        }
    }
    match &mut out.tool_choice {
        Some(ToolChoice::Named(n)) => rename(n),
        Some(ToolChoice::Allowed { names, .. }) => names.iter_mut().for_each(rename),
        _ => {}
    }
    let map = renames.into_iter().map(|(client, upstream)| (upstream, client)).collect();
    Some((out, map))
}

/// The client's name for a tool the upstream called `name`.
pub fn client_name(map: &[(String, String)], name: &mut String) {
    if let Some((_, client)) = map.iter().find(|(upstream, _)| upstream == name) {
        *name = client.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Message, Role, Tool, ToolCall, ToolResult};

    #[test]
    fn names_fit_each_upstream() {
        let long = format!("mcp__{}__search", "a".repeat(70));
        for upstream in [Protocol::OpenAiChat, Protocol::OpenAiResponses, Protocol::Claude, Protocol::Gemini] {
            for name in [long.as_str(), "ns.tool:v2", "1st-tool", "ünï", ""] {
                let f = if fits(upstream, name) { name.to_string() } else { fitted(upstream, name) };
                assert!(fits(upstream, &f), "{upstream:?} {name:?} -> {f:?}");
            }
        }
        assert!(fits(Protocol::Claude, &long) && !fits(Protocol::OpenAiChat, &long));
        assert!(fits(Protocol::Gemini, "ns.tool:v2") && !fits(Protocol::Claude, "ns.tool:v2"));
        assert!(!fits(Protocol::Gemini, "1st-tool") && fits(Protocol::OpenAiChat, "1st-tool"));
        // Distinct names stay distinct even when their fitting characters agree.
        assert_ne!(fitted(Protocol::Claude, "a.b"), fitted(Protocol::Claude, "a:b"));
        assert_eq!(fitted(Protocol::Claude, "a.b"), fitted(Protocol::Claude, "a.b"));
    }

    #[test]
    fn a_request_is_renamed_everywhere_and_mapped_back() {
        let long = format!("mcp__github__{}", "list_pull_request_review_comments_".repeat(2));
        let tool = |name: &str| Tool { name: name.into(), description: None, parameters: serde_json::json!({"type": "object"}), strict: None };
        let req = Request {
            tools: vec![tool(&long), tool("read")],
            tool_choice: Some(ToolChoice::Named(long.clone())),
            messages: vec![
                Message { role: Role::User, parts: vec![Part::Text("hi".into())] },
                Message { role: Role::Assistant, parts: vec![Part::ToolCall(ToolCall { id: "c1".into(), name: long.clone(), arguments: "{}".into() })] },
                Message {
                    role: Role::User,
                    parts: vec![Part::ToolResult(ToolResult { call_id: "c1".into(), name: Some(long.clone()), content: vec![], is_error: false })],
                },
            ],
            ..Request::default()
        };
        assert!(fit_request(Protocol::Claude, &req).is_none(), "Claude takes 128 characters");
        let (sent, map) = fit_request(Protocol::OpenAiChat, &req).unwrap();
        let short = fitted(Protocol::OpenAiChat, &long);
        assert_eq!(sent.tools[0].name, short);
        assert_eq!(sent.tools[1].name, "read");
        assert_eq!(sent.tool_choice, Some(ToolChoice::Named(short.clone())));
        assert!(matches!(&sent.messages[1].parts[0], Part::ToolCall(c) if c.name == short));
        assert!(matches!(&sent.messages[2].parts[0], Part::ToolResult(r) if r.name.as_deref() == Some(short.as_str())));
        let mut called = short.clone();
        client_name(&map, &mut called);
        assert_eq!(called, long);
        let mut other = "read".to_string();
        client_name(&map, &mut other);
        assert_eq!(other, "read");
    }
}
