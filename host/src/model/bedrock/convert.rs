//! JSON ↔ `aws_smithy_types::Document`.
//!
//! `Document` objects are `HashMap`s, whose iteration (and so serialisation) order is
//! random per map. Anything that is part of the cached request prefix (tool schemas, past
//! tool inputs) must therefore be converted **once** and the result reused, or the bytes
//! sent change between requests and prompt caching misses.

use std::collections::HashMap;

use aws_smithy_types::{Document, Number};
use serde_json::Value;

/// `value` as a `Document`.
pub fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// `document` as JSON.
pub fn to_json(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Document::Object(map) => {
            // Sorted keys: the same document always gives the same JSON text.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&map[k])))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_a_round_trip() {
        let value = json!({"a": [1, -2, 3.5, true, null], "b": {"c": "é"}, "d": u64::MAX});
        assert_eq!(to_json(&to_document(&value)), value);
    }
}
