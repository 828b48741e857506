//! Reading and rewriting the top level of a JSON request body without re-encoding it.
//!
//! Passthrough must forward a client's body with only `model` changed: every other
//! value (Claude thinking signatures, numbers like `1.0`, unknown fields) has to reach
//! the upstream byte for byte. [`JsonObject`] parses only the top level into ordered
//! `(key, raw value)` pairs (serde_json's `RawValue`: validated, never turned into a
//! tree), answers type questions about fields with messages a caller can act on, and
//! writes the object back with chosen fields replaced.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::GatewayError;

/// The JSON type of a raw value, named as error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl JsonKind {
    pub fn of(raw: &RawValue) -> JsonKind {
        match raw.get().as_bytes().first() {
            Some(b'{') => JsonKind::Object,
            Some(b'[') => JsonKind::Array,
            Some(b'"') => JsonKind::String,
            Some(b't') | Some(b'f') => JsonKind::Bool,
            Some(b'n') => JsonKind::Null,
            _ => JsonKind::Number,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Object => "an object",
            JsonKind::Array => "an array",
            JsonKind::String => "a string",
            JsonKind::Number => "a number",
            JsonKind::Bool => "a boolean",
            JsonKind::Null => "null",
        }
    }
}

/// A JSON object's top level, in source order, with values kept raw.
#[derive(Debug)]
pub struct JsonObject<'a> {
    entries: Vec<(String, &'a RawValue)>,
}

impl<'a> JsonObject<'a> {
    /// Parses `body`, which must be a JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, GatewayError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(GatewayError::invalid("Request body is empty; expected a JSON object."));
        }
        match serde_json::from_slice::<Entries<'a>>(body) {
            Ok(Entries(entries)) => Ok(JsonObject { entries }),
            Err(e) if e.is_data() => {
                Err(GatewayError::invalid("Request body must be a JSON object."))
            }
            Err(e) => Err(GatewayError::invalid(format!("Request body is not valid JSON: {e}."))),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        // The last occurrence wins, as in serde_json and JavaScript.
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The field's raw value, `None` when absent or `null`, or a 400 naming the field when
    /// it has another type than `expected`.
    pub fn typed(&self, key: &str, expected: JsonKind) -> Result<Option<&'a RawValue>, GatewayError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => match JsonKind::of(raw) {
                JsonKind::Null => Ok(None),
                kind if kind == expected => Ok(Some(raw)),
                kind => Err(GatewayError::invalid(format!(
                    "Invalid type for '{key}': expected {}, but got {}.",
                    expected.name(),
                    kind.name()
                ))
                .with_param(key)),
            },
        }
    }

    pub fn require(&self, key: &str, expected: JsonKind) -> Result<&'a RawValue, GatewayError> {
        self.typed(key, expected)?.ok_or_else(|| {
            GatewayError::invalid(format!("Missing required parameter: '{key}'.")).with_param(key)
        })
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, GatewayError> {
        match self.typed(key, JsonKind::String)? {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|_| GatewayError::invalid(format!("Invalid string for '{key}'."))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, GatewayError> {
        Ok(self.typed(key, JsonKind::Bool)?.map(|raw| raw.get() == "true").unwrap_or(false))
    }

    /// The object re-encoded with `key` set to the JSON text `value` (added at the end
    /// when absent). Every other value is copied byte for byte.
    pub fn with_field(&self, key: &str, value: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.entries.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + value.len() + 8,
        );
        out.push(b'{');
        let mut replaced = false;
        let mut first = true;
        for (k, v) in &self.entries {
            let text = if k == key {
                if replaced {
                    continue; // drop duplicates of the replaced key
                }
                replaced = true;
                value
            } else {
                v.get()
            };
            if !first {
                out.push(b',');
            }
            first = false;
            write_key(&mut out, k);
            out.extend_from_slice(text.as_bytes());
        }
        if !replaced {
            if !first {
                out.push(b',');
            }
            write_key(&mut out, key);
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'}');
        out
    }
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    // Serialising a &str cannot fail.
    out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
    out.push(b':');
}

struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_model() {
        let body = br#"{ "model" : "p.m", "x": {"sig": "a\u00e9==", "n": 1.0 },"messages":[ 1, 2 ] }"#;
        let obj = JsonObject::parse(body).unwrap();
        let out = String::from_utf8(obj.with_field("model", "\"up\"")).unwrap();
        assert_eq!(out, r#"{"model":"up","x":{"sig": "a\u00e9==", "n": 1.0 },"messages":[ 1, 2 ]}"#);
    }

    #[test]
    fn adds_a_missing_field() {
        let obj = JsonObject::parse(b"{}").unwrap();
        assert_eq!(obj.with_field("model", "\"m\""), br#"{"model":"m"}"#);
    }

    #[test]
    fn reports_types_and_syntax() {
        let obj = JsonObject::parse(br#"{"model": 5, "stream": null, "messages": []}"#).unwrap();
        let err = obj.string("model").unwrap_err();
        assert_eq!(err.message, "Invalid type for 'model': expected a string, but got a number.");
        assert_eq!(err.param.as_deref(), Some("model"));
        assert!(!obj.bool("stream").unwrap());
        assert!(obj.require("input", JsonKind::Array).is_err());
        assert!(JsonObject::parse(b"[1]").unwrap_err().message.contains("JSON object"));
        assert!(JsonObject::parse(b"{\"a\":").unwrap_err().message.contains("not valid JSON"));
        assert!(JsonObject::parse(b"  ").unwrap_err().message.contains("empty"));
        assert!(JsonObject::parse(b"\xff\xfe").is_err());
    }
}
