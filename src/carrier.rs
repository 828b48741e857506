//! Carrying reasoning through clients of another protocol, without server state.
//!
//! A provider only accepts reasoning it produced, and only byte-exact: Claude thinking
//! with its `signature`, a Responses reasoning item's `encrypted_content`, Gemini's
//! `thoughtSignature`. When a caller speaks another protocol, the gateway hands that
//! payload to the caller inside a field the caller's protocol echoes back unchanged on
//! the next turn, and recognises it there:
//!
//! | caller    | field carrying the packed reasoning                          |
//! |-----------|--------------------------------------------------------------|
//! | Claude    | a thinking block's `signature`                               |
//! | Gemini    | a part's `thoughtSignature` (valid base64, as SDKs require)  |
//! | Responses | a reasoning item's `encrypted_content`                       |
//! | Chat      | the id of the tool call the reasoning preceded               |
//!
//! A packed value is base64 of `GWR1` + compact JSON {o: origin, t: text (Claude only,
//! which needs it byte-exact), s: signature, e: encrypted, d: redacted, i: item id}.
//! Reasoning from the caller's own protocol is handed over natively, unpacked. On the
//! way out, egress encoders keep a reasoning block only when its origin is the upstream's
//! protocol and drop it otherwise (never turning it into text).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::ir::Reasoning;
use crate::protocols::Protocol;

const MAGIC: &[u8] = b"GWR1";
/// Separates a tool call id from the reasoning packed into it (Chat callers).
const ID_SEPARATOR: &str = "_gwr";

fn origin_name(p: Protocol) -> &'static str {
    match p {
        Protocol::OpenAiChat => "chat",
        Protocol::OpenAiResponses => "responses",
        Protocol::Claude => "claude",
        Protocol::Gemini => "gemini",
    }
}

fn origin_parse(s: &str) -> Option<Protocol> {
    Some(match s {
        "chat" => Protocol::OpenAiChat,
        "responses" => Protocol::OpenAiResponses,
        "claude" => Protocol::Claude,
        "gemini" => Protocol::Gemini,
        _ => return None,
    })
}

fn payload(r: &Reasoning) -> Vec<u8> {
    let mut v = json!({});
    if let Some(o) = r.origin {
        v["o"] = json!(origin_name(o));
    }
    if r.origin == Some(Protocol::Claude) && !r.text.is_empty() {
        v["t"] = json!(r.text);
    }
    for (key, value) in [("s", &r.signature), ("e", &r.encrypted), ("d", &r.redacted), ("i", &r.id)] {
        if let Some(x) = value {
            v[key] = json!(x);
        }
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    out
}

/// Standard, padded base64 (a valid Gemini `thoughtSignature`).
pub fn pack(r: &Reasoning) -> String {
    STANDARD.encode(payload(r))
}

/// URL-safe base64 without padding (fits in ids).
pub fn pack_url(r: &Reasoning) -> String {
    URL_SAFE_NO_PAD.encode(payload(r))
}

/// The reasoning in a packed value, or `None` when `s` is not one of ours.
pub fn unpack(s: &str) -> Option<Reasoning> {
    let bytes = STANDARD.decode(s).or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))).ok()?;
    let json = bytes.strip_prefix(MAGIC)?;
    let v: Value = serde_json::from_slice(json).ok()?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Some(Reasoning {
        text: get("t").unwrap_or_default(),
        signature: get("s"),
        encrypted: get("e"),
        redacted: get("d"),
        id: get("i"),
        origin: get("o").as_deref().and_then(origin_parse),
    })
}

/// The opaque value a caller of `client` gets for `r`: the native payload when `r` came
/// from the caller's own protocol (`None` if it had none), else the packed reasoning —
/// packed even without a payload, so that when it comes back its foreign origin is known
/// and it is not mistaken for the caller protocol's own.
pub fn to_client(r: &Reasoning, client: Protocol) -> Option<String> {
    if r.origin == Some(client) {
        return match client {
            Protocol::OpenAiResponses => r.encrypted.clone(),
            _ => r.signature.clone(),
        };
    }
    Some(pack(r))
}

/// Reasoning from the opaque value a caller of `client` sent back: ours unpacked, or the
/// caller protocol's native payload.
pub fn from_client(value: &str, client: Protocol, text: &str) -> Reasoning {
    if let Some(mut r) = unpack(value) {
        if r.text.is_empty() {
            r.text = text.to_string();
        }
        return r;
    }
    let mut r = Reasoning { text: text.to_string(), origin: Some(client), ..Reasoning::default() };
    match client {
        Protocol::OpenAiResponses => r.encrypted = Some(value.to_string()),
        _ => r.signature = Some(value.to_string()),
    }
    r
}

/// A tool call id carrying `r` (for Chat callers, whose only echoed field is the id).
pub fn id_with(id: &str, r: &Reasoning) -> String {
    format!("{id}{ID_SEPARATOR}{}", pack_url(r))
}

/// Splits an id made by [`id_with`] into the plain id and the reasoning; other ids come
/// back unchanged with `None`.
pub fn split_id(id: &str) -> (String, Option<Reasoning>) {
    if let Some((plain, packed)) = id.split_once(ID_SEPARATOR) {
        if let Some(r) = unpack(packed) {
            return (plain.to_string(), Some(r));
        }
    }
    (id.to_string(), None)
}

/// Where every packed value starts: base64 of `GWR1` and the top bits of `{` (alike in
/// both alphabets).
const PACKED_START: &[u8] = b"R1dSMX";

/// Whether `body` may hold a packed value (a fast scan; [`is_packed`] decides).
pub fn may_hold_packed(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(i) = memchr::memchr(PACKED_START[0], rest) {
        if rest[i..].starts_with(PACKED_START) {
            return true;
        }
        rest = &rest[i + 1..];
    }
    false
}

/// Whether `s` is a packed value (as a whole, not an id carrying one).
pub fn is_packed(s: &str) -> bool {
    s.as_bytes().starts_with(PACKED_START) && unpack(s).is_some()
}

/// Whether an upstream speaking `upstream` can take `r` back.
pub fn accepted_by(r: &Reasoning, upstream: Protocol) -> bool {
    r.origin == Some(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude() -> Reasoning {
        Reasoning { text: "think\n\"exact\"".into(), signature: Some("EqQB+/=".into()), origin: Some(Protocol::Claude), ..Default::default() }
    }

    #[test]
    fn packs_and_unpacks_exactly() {
        for r in [
            claude(),
            Reasoning { encrypted: Some("gAAAA".into()), id: Some("rs_1".into()), origin: Some(Protocol::OpenAiResponses), ..Default::default() },
            Reasoning { signature: Some("CpoB".into()), origin: Some(Protocol::Gemini), ..Default::default() },
        ] {
            assert_eq!(unpack(&pack(&r)).unwrap(), r);
            assert_eq!(unpack(&pack_url(&r)).unwrap(), r);
        }
        assert!(unpack("EqQBCgIYAh").is_none());
        assert!(unpack("not base64!").is_none());
    }

    #[test]
    fn packed_values_are_base64_a_gemini_sdk_round_trips() {
        let packed = pack(&claude());
        let bytes = STANDARD.decode(&packed).unwrap();
        assert_eq!(STANDARD.encode(bytes), packed);
    }

    #[test]
    fn native_payloads_pass_natively() {
        let r = claude();
        assert_eq!(to_client(&r, Protocol::Claude).as_deref(), Some("EqQB+/="));
        let back = from_client("EqQB+/=", Protocol::Claude, "think\n\"exact\"");
        assert_eq!(back, r);
        let to_gemini = to_client(&r, Protocol::Gemini).unwrap();
        assert_eq!(from_client(&to_gemini, Protocol::Gemini, "summary"), r);
        let plain = Reasoning { text: "t".into(), ..Default::default() };
        let packed = to_client(&plain, Protocol::Claude).unwrap();
        assert_eq!(from_client(&packed, Protocol::Claude, "t").origin, None);
    }

    #[test]
    fn packed_values_are_found_by_their_start() {
        for r in [claude(), Reasoning::default(), Reasoning { text: "t".into(), ..Default::default() }] {
            for packed in [pack(&r), pack_url(&r), id_with("call_1", &r)] {
                assert!(may_hold_packed(format!("{{\"x\":\"{packed}\"}}").as_bytes()), "{packed}");
            }
            assert!(is_packed(&pack(&r)) && is_packed(&pack_url(&r)));
        }
        assert!(!may_hold_packed(br#"{"signature":"EqQBCgIYAh"}"#));
        assert!(!is_packed("R1dSMXnot-ours"));
    }

    #[test]
    fn ids_carry_reasoning() {
        let r = Reasoning { signature: Some("CpoB/+==".into()), origin: Some(Protocol::Gemini), ..Default::default() };
        let id = id_with("call_abc", &r);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
        assert_eq!(split_id(&id), ("call_abc".to_string(), Some(r)));
        assert_eq!(split_id("call_x_gwrnope"), ("call_x_gwrnope".to_string(), None));
        assert_eq!(split_id("toolu_1"), ("toolu_1".to_string(), None));
    }
}
