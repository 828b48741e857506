//! Small readers for wire JSON (`serde_json::Value`) shared by the protocol adapters:
//! absent and wrongly typed fields read as `None`/empty, never as a panic.

use serde_json::Value;

/// A JSON object whose values are moved in, in order. (`json!` copies every interpolated
/// value through the serializer: a deep copy of a whole conversation when it is one.)
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn string_of(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).map(String::from)
}

pub fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(|x| x.as_u64().or_else(|| x.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)))
}

pub fn i64_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

pub fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

pub fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

pub fn array_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A string field, or a string list field, as a list (`stop: "x"` or `stop: ["x"]`).
pub fn strings_of(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

/// JSON text of an object-valued argument; `{}` for null/absent.
pub fn json_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Parses tool-call arguments text into an object; models sometimes emit invalid or
/// empty JSON, which becomes `{}` (empty) or `{"_raw": text}` (invalid) rather than an error.
pub fn arguments_object(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(other) => serde_json::json!({ "value": other }),
        Err(_) => serde_json::json!({ "_raw": text }),
    }
}

/// A deterministic id unique within one response: `<prefix><response id>_<n>`.
pub fn synth_id(prefix: &str, response_id: &str, n: usize) -> String {
    let short: String = response_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{prefix}{short}_{n}")
}

/// Joins each run of consecutive items with the same `role` into the run's first item:
/// `join(first, next)` takes `next` in, or hands it back to stay a separate item.
pub fn join_same_role(items: &mut Vec<Value>, mut join: impl FnMut(&mut Value, Value) -> Result<(), Value>) {
    let mut joined: Vec<Value> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let item = match joined.last_mut() {
            Some(prev) if prev.get("role") == item.get("role") => match join(prev, item) {
                Ok(()) => continue,
                Err(item) => item,
            },
            _ => item,
        };
        joined.push(item);
    }
    *items = joined;
}
