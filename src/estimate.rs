//! A documented token estimate for upstreams without a counting endpoint (OpenAI Chat
//! Completions): about four characters a token for all text — system, messages, tool
//! results, tool definitions (their JSON), tool call arguments and reasoning text — except
//! that a Chinese, Japanese or Korean character, a full-width form or an emoji counts as a
//! token of its own (tokenizers give them one or more each: four to a token would count
//! such text three to four times too low), plus a fixed cost per image (1,000) and per file
//! (1,500), plus 4 tokens of framing per message. Answers built from it carry the
//! `x-gateway-token-count: estimate` header.

use crate::ir::{Part, Request};

pub const IMAGE_TOKENS: u64 = 1_000;
pub const FILE_TOKENS: u64 = 1_500;
pub const MESSAGE_OVERHEAD: u64 = 4;

/// Text length in quarter tokens: most characters weigh one, a character tokenizers give
/// a token of its own weighs four.
fn chars(s: &str) -> u64 {
    s.chars().map(|c| if is_dense(c) { 4 } else { 1 }).sum()
}

fn is_dense(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF          // Hangul Jamo
        | 0x2E80..=0x9FFF        // CJK radicals, kana, CJK ideographs
        | 0xAC00..=0xD7AF        // Hangul syllables
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFF00..=0xFFEF        // full-width forms
        | 0x1F000..=0x1FAFF      // emoji
        | 0x20000..=0x3FFFF)     // CJK extensions
}

fn part_cost(p: &Part, text_chars: &mut u64) -> u64 {
    match p {
        Part::Text(t) => {
            *text_chars += chars(t);
            0
        }
        Part::Image(_) => IMAGE_TOKENS,
        Part::File { .. } => FILE_TOKENS,
        Part::ToolCall(c) => {
            *text_chars += chars(&c.name) + chars(&c.arguments);
            0
        }
        Part::ToolResult(r) => r.content.iter().map(|p| part_cost(p, text_chars)).sum(),
        Part::Reasoning(r) => {
            *text_chars += chars(&r.text);
            0
        }
    }
}

pub fn request_tokens(req: &Request) -> u64 {
    let mut text = 0u64;
    let mut fixed = 0u64;
    for p in &req.system {
        fixed += part_cost(p, &mut text);
    }
    for m in &req.messages {
        fixed += MESSAGE_OVERHEAD;
        for p in &m.parts {
            fixed += part_cost(p, &mut text);
        }
    }
    for t in &req.tools {
        text += chars(&t.name) + t.description.as_deref().map(chars).unwrap_or(0) + chars(&t.parameters.to_string());
    }
    text.div_ceil(4) + fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Media, Message, Role, Tool};

    #[test]
    fn counts_system_tools_and_images() {
        let mut req = Request { system: vec![Part::Text("a".repeat(40))], ..Default::default() };
        let base = request_tokens(&req);
        assert_eq!(base, 10);
        req.messages.push(Message { role: Role::User, parts: vec![Part::Image(Media::FileId("f".into()))] });
        assert_eq!(request_tokens(&req), base + MESSAGE_OVERHEAD + IMAGE_TOKENS);
        req.tools.push(Tool { name: "t".into(), description: None, parameters: serde_json::json!({"type": "object"}), strict: None });
        assert!(request_tokens(&req) > base + MESSAGE_OVERHEAD + IMAGE_TOKENS);
    }

    #[test]
    fn dense_scripts_count_a_token_a_character() {
        let text = |t: &str| request_tokens(&Request { system: vec![Part::Text(t.into())], ..Default::default() });
        assert_eq!(text("请用中文回答这个问题"), 10);
        assert_eq!(text("日本語のテキスト"), 8);
        assert_eq!(text("한국어 문장"), 6); // five syllables and a space: 5 + 1/4
        assert_eq!(text("café crème"), 3);
    }
}
