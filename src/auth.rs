//! Inbound authentication: which gateway key the caller presented, and whether it is one
//! of ours.
//!
//! Callers' SDKs put keys in different places: `Authorization: Bearer` (OpenAI, and the
//! Anthropic SDK with an auth token), a bare `Authorization` value, `x-api-key`
//! (Anthropic), and on Gemini paths `x-goog-api-key` or `?key=`. Every presented value
//! is compared in constant time against every configured key. The caller's key is only
//! read here; nothing it touches goes upstream.

use crate::config::normalize_key;
use crate::error::{ErrorKind, GatewayError};

/// The credentials a request carries, as raw header/query values.
#[derive(Debug, Default, Clone)]
pub struct Presented {
    pub authorization: Option<String>,
    pub x_api_key: Option<String>,
    pub x_goog_api_key: Option<String>,
    pub query_key: Option<String>,
}

impl Presented {
    /// The candidate keys, in the order they are looked at. Google's two places only
    /// count on Gemini-protocol paths.
    fn candidates(&self, gemini_path: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(auth) = &self.authorization {
            let auth = auth.trim();
            let key = if auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ") {
                &auth[7..]
            } else {
                auth
            };
            out.push(normalize_key(key));
        }
        if let Some(k) = &self.x_api_key {
            out.push(normalize_key(k));
        }
        if gemini_path {
            out.extend(self.x_goog_api_key.iter().map(|k| normalize_key(k)));
            out.extend(self.query_key.iter().map(|k| normalize_key(k)));
        }
        out.retain(|k| !k.is_empty());
        out
    }
}

/// Accepts the request when any presented key equals any configured key.
pub fn check(presented: &Presented, gemini_path: bool, keys: &[String]) -> Result<(), GatewayError> {
    let candidates = presented.candidates(gemini_path);
    if candidates.is_empty() {
        let places = if gemini_path {
            "the x-goog-api-key header, the key query parameter, Authorization: Bearer or x-api-key"
        } else {
            "Authorization: Bearer <key> or the x-api-key header"
        };
        return Err(GatewayError::new(
            ErrorKind::Authentication,
            format!("Missing API key. Send the gateway key (WORKER_AUTH_KEY) in {places}."),
        ));
    }
    let mut ok = false;
    for c in &candidates {
        for k in keys {
            ok |= constant_time_eq(c.as_bytes(), k.as_bytes());
        }
    }
    if ok {
        Ok(())
    } else {
        Err(GatewayError::new(ErrorKind::Authentication, "Invalid API key for this gateway."))
    }
}

/// Compares without an early exit, so timing reveals at most the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec!["k1".into(), "key-two".into()]
    }

    #[test]
    fn accepts_every_documented_place() {
        let cases = [
            Presented { authorization: Some("Bearer k1".into()), ..Default::default() },
            Presented { authorization: Some("bearer  key-two ".into()), ..Default::default() },
            Presented { authorization: Some("k1".into()), ..Default::default() },
            Presented { x_api_key: Some("key-two".into()), ..Default::default() },
        ];
        for p in cases {
            assert!(check(&p, false, &keys()).is_ok(), "{p:?}");
        }
        let goog = Presented { x_goog_api_key: Some("k1".into()), ..Default::default() };
        assert!(check(&goog, true, &keys()).is_ok());
        let query = Presented { query_key: Some("k1".into()), ..Default::default() };
        assert!(check(&query, true, &keys()).is_ok());
    }

    #[test]
    fn google_places_only_on_gemini_paths() {
        let goog = Presented { x_goog_api_key: Some("k1".into()), ..Default::default() };
        assert!(check(&goog, false, &keys()).unwrap_err().message.contains("Missing"));
    }

    #[test]
    fn rejects_wrong_and_missing() {
        let wrong = Presented { authorization: Some("Bearer k2".into()), ..Default::default() };
        let e = check(&wrong, false, &keys()).unwrap_err();
        assert_eq!(e.status(), 401);
        assert!(!e.message.contains("k2"));
        let prefix = Presented { x_api_key: Some("k".into()), ..Default::default() };
        assert!(check(&prefix, false, &keys()).is_err());
        assert!(check(&Presented::default(), false, &keys()).is_err());
        let empty = Presented { authorization: Some("Bearer ".into()), ..Default::default() };
        assert!(check(&empty, false, &keys()).is_err());
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
        let long = vec![b'a'; 256];
        assert!(!constant_time_eq(&long, &[]));
    }
}
