//! JSONC support for `ANY_API_CONFIG`: `//` and `/* */` comments and trailing commas.
//!
//! A small lexer, not a regex: it knows where strings begin and end, so a URL such as
//! `"https://x"` or a value containing `,}` is never touched. Comments and trailing
//! commas are replaced by spaces (newlines kept), so serde_json's line/column in an
//! error message still point at the right place in the operator's text.

/// Returns plain JSON with the same line and column layout as `input`.
pub fn strip(input: &str) -> String {
    let src = input.strip_prefix('\u{feff}').unwrap_or(input);
    let without_comments = blank_comments(src);
    blank_trailing_commas(&without_comments)
}

fn blank_comments(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            let end = string_end(bytes, i);
            out.extend_from_slice(&bytes[i..end]);
            i = end;
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            out.extend_from_slice(b"  ");
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                i += 1;
            }
            if i < bytes.len() {
                out.extend_from_slice(b"  ");
                i += 2;
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes, and whole multi-byte sequences were
    // either copied or each of their bytes blanked, so the result stays valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

fn blank_trailing_commas(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i),
            b',' => {
                let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
                if matches!(next, Some(b'}') | Some(b']')) {
                    out[i] = b' ';
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Index just past the string literal starting at `start` (a `"`), or the end of input.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::strip;

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(&strip(s)).expect("valid after stripping")
    }

    #[test]
    fn strips_comments_and_trailing_commas() {
        let v = parse(
            "\u{feff}{\n // line\n \"a\": [1, 2, /* two */ ],\n \"b\": {\"c\": \"d\",},\n}",
        );
        assert_eq!(v, serde_json::json!({"a": [1, 2], "b": {"c": "d"}}));
    }

    #[test]
    fn leaves_strings_alone() {
        let v = parse(r#"{"url": "https://x.test/v1", "s": "a,}b /* c */ \"//\"", }"#);
        assert_eq!(v["url"], "https://x.test/v1");
        assert_eq!(v["s"], "a,}b /* c */ \"//\"");
    }

    #[test]
    fn keeps_line_numbers() {
        let err = serde_json::from_str::<serde_json::Value>(&strip("{\n/* x\n y */\n \"a\": tru,\n}"))
            .unwrap_err();
        assert_eq!(err.line(), 4);
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in ["\"abc", "/* never closed", "{\"a\": \"\\", "//", ",", "\"\\"] {
            let _ = strip(s);
        }
    }
}
