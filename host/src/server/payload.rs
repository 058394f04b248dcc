//! The two shapes `/invocations` accepts, parsed from raw bytes without ever panicking:
//!
//! 1. a raw Telegram `Update` (what the relay forwards), recognised by `update_id`;
//! 2. a direct request `{"prompt": "...", "user_id": "...", "mode": "async" | "sync" | "stream"}`.
//!
//! Every refusal says what was wrong and what is accepted.

use serde_json::{Map, Value};

/// Longest prompt accepted, in bytes.
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// What the caller wants back from a direct request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Acknowledge at once; the task runs in the background.
    #[default]
    Async,
    /// Answer with the final result.
    Sync,
    /// Server-Sent Events of the task's progress.
    Stream,
}

/// A direct request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectRequest {
    /// What to do.
    pub prompt: String,
    /// Whose task it is (the user key).
    pub user_id: String,
    /// How to answer.
    pub mode: Mode,
}

/// The parts of a Telegram update the host acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct TelegramUpdate {
    /// The update's id.
    pub update_id: i64,
    /// The sender's user id, when the update has a sender.
    pub user_id: Option<String>,
    /// The chat to answer in.
    pub chat_id: Option<i64>,
    /// The message text (or a media caption).
    pub text: Option<String>,
    /// The whole update, for the Telegram front end.
    pub raw: Value,
}

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Forwarded by the relay.
    Telegram(TelegramUpdate),
    /// From any other caller.
    Direct(DirectRequest),
}

/// Why a body was refused; becomes a 400 with `error` and `details`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not UTF-8.
    #[error("Invalid encoding")]
    Encoding(String),
    /// The body is not JSON.
    #[error("Invalid JSON")]
    Json(String),
    /// JSON of no accepted shape.
    #[error("Unrecognized payload")]
    Shape(String),
    /// An accepted shape with a bad field.
    #[error("Invalid request")]
    Field(String),
}

impl PayloadError {
    /// The human explanation (the `details` of the error body).
    pub fn details(&self) -> &str {
        match self {
            PayloadError::Encoding(d)
            | PayloadError::Json(d)
            | PayloadError::Shape(d)
            | PayloadError::Field(d) => d,
        }
    }
}

/// The accepted shapes, for error messages.
pub const ACCEPTED_SHAPES: &str = "send either a Telegram Update (an object with an integer \
    \"update_id\") or a direct request {\"prompt\": string, \"user_id\": string, \
    \"mode\": \"async\" | \"sync\" | \"stream\" (optional, default \"async\")}";

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Invocation, PayloadError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        PayloadError::Encoding(format!(
            "the body is not valid UTF-8 ({error}); send UTF-8 JSON"
        ))
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|error| PayloadError::Json(format!("the body is not valid JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(PayloadError::Shape(format!(
            "the body is JSON but not an object; {ACCEPTED_SHAPES}"
        )));
    };
    if object.contains_key("update_id") {
        return telegram(object).map(Invocation::Telegram);
    }
    if object.contains_key("prompt") || object.contains_key("user_id") {
        return direct(&object).map(Invocation::Direct);
    }
    let keys: Vec<&str> = object.keys().map(String::as_str).take(10).collect();
    Err(PayloadError::Shape(format!(
        "an object with keys [{}] is neither accepted shape; {ACCEPTED_SHAPES}",
        keys.join(", ")
    )))
}

fn direct(object: &Map<String, Value>) -> Result<DirectRequest, PayloadError> {
    for key in object.keys() {
        if !["prompt", "user_id", "mode"].contains(&key.as_str()) {
            return Err(PayloadError::Field(format!(
                "unexpected field {key:?} in a direct request; the fields are prompt, user_id and mode"
            )));
        }
    }
    let prompt = match object.get("prompt") {
        Some(Value::String(prompt)) if !prompt.trim().is_empty() => prompt.clone(),
        Some(Value::String(_)) => {
            return Err(field("\"prompt\" is empty: say what the agent should do"));
        }
        Some(other) => {
            return Err(field(&format!(
                "\"prompt\" must be a string, not {}",
                kind(other)
            )));
        }
        None => return Err(field("\"prompt\" is missing: say what the agent should do")),
    };
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(field(&format!(
            "\"prompt\" is {} bytes, over the limit of {MAX_PROMPT_BYTES} bytes",
            prompt.len()
        )));
    }
    let user_id = match object.get("user_id") {
        Some(Value::String(user)) => user.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        Some(other) => {
            return Err(field(&format!(
                "\"user_id\" must be a string (or an integer), not {}",
                kind(other)
            )));
        }
        None => return Err(field("\"user_id\" is missing: say whose task this is")),
    };
    let mode = match object.get("mode") {
        None => Mode::Async,
        Some(Value::String(mode)) => match mode.as_str() {
            "async" => Mode::Async,
            "sync" => Mode::Sync,
            "stream" => Mode::Stream,
            other => {
                return Err(field(&format!(
                    "\"mode\" is {other:?}; use \"async\", \"sync\" or \"stream\""
                )));
            }
        },
        Some(other) => {
            return Err(field(&format!(
                "\"mode\" must be a string, not {}",
                kind(other)
            )));
        }
    };
    Ok(DirectRequest {
        prompt,
        user_id,
        mode,
    })
}

fn telegram(object: Map<String, Value>) -> Result<TelegramUpdate, PayloadError> {
    let update_id = object
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            field("\"update_id\" must be an integer (this looks like a Telegram Update)")
        })?;
    let message = [
        "message",
        "edited_message",
        "channel_post",
        "business_message",
    ]
    .iter()
    .find_map(|key| object.get(*key))
    .filter(|m| m.is_object());
    let callback = object.get("callback_query").filter(|c| c.is_object());
    let sender = message.or(callback).and_then(|m| m.get("from"));
    let user_id = sender
        .and_then(|from| from.get("id"))
        .and_then(|id| match id {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        });
    let chat_id = message
        .or_else(|| callback.and_then(|c| c.get("message")))
        .and_then(|m| m.get("chat"))
        .and_then(|chat| chat.get("id"))
        .and_then(Value::as_i64);
    let text = message
        .and_then(|m| m.get("text").or_else(|| m.get("caption")))
        .or_else(|| callback.and_then(|c| c.get("data")))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(TelegramUpdate {
        update_id,
        user_id,
        chat_id,
        text,
        raw: Value::Object(object),
    })
}

fn field(message: &str) -> PayloadError {
    PayloadError::Field(message.to_string())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn direct_requests_parse_with_defaults() {
        let parsed = parse(br#"{"prompt":"fix it","user_id":"42"}"#).unwrap();
        assert_eq!(
            parsed,
            Invocation::Direct(DirectRequest {
                prompt: "fix it".into(),
                user_id: "42".into(),
                mode: Mode::Async
            })
        );
        let parsed = parse(br#"{"prompt":"p","user_id":7,"mode":"stream"}"#).unwrap();
        assert!(matches!(
            parsed,
            Invocation::Direct(DirectRequest {
                mode: Mode::Stream,
                ..
            })
        ));
    }

    #[test]
    fn telegram_updates_are_recognised() {
        let body = br#"{"update_id":1,"message":{"message_id":5,"from":{"id":99,"is_bot":false},
            "chat":{"id":99,"type":"private"},"text":"hello"}}"#;
        let Invocation::Telegram(update) = parse(body).unwrap() else {
            panic!("not telegram")
        };
        assert_eq!(update.update_id, 1);
        assert_eq!(update.user_id.as_deref(), Some("99"));
        assert_eq!(update.chat_id, Some(99));
        assert_eq!(update.text.as_deref(), Some("hello"));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"\xff\xfe", "Invalid encoding", "UTF-8"),
            (b"{nope", "Invalid JSON", "not valid JSON"),
            (b"[1,2]", "Unrecognized payload", "not an object"),
            (br#"{"hello":1}"#, "Unrecognized payload", "update_id"),
            (
                br#"{"prompt":1,"user_id":"a"}"#,
                "Invalid request",
                "\"prompt\" must be a string",
            ),
            (
                br#"{"prompt":"x"}"#,
                "Invalid request",
                "\"user_id\" is missing",
            ),
            (
                br#"{"prompt":"","user_id":"a"}"#,
                "Invalid request",
                "empty",
            ),
            (
                br#"{"prompt":"x","user_id":"a","mode":"later"}"#,
                "Invalid request",
                "\"sync\"",
            ),
            (
                br#"{"prompt":"x","user_id":"a","prmopt":1}"#,
                "Invalid request",
                "prmopt",
            ),
            (br#"{"update_id":"x"}"#, "Invalid request", "integer"),
        ];
        for (body, error, detail) in cases {
            let refused = parse(body).unwrap_err();
            assert_eq!(refused.to_string(), *error, "{body:?}");
            assert!(
                refused.details().contains(detail),
                "{body:?}: {}",
                refused.details()
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn arbitrary_json_objects_never_panic(
            keys in proptest::collection::vec(
                prop_oneof![Just("prompt".to_string()), Just("user_id".to_string()),
                            Just("mode".to_string()), Just("update_id".to_string()),
                            Just("message".to_string()), "[a-z]{1,8}"], 0..6),
            values in proptest::collection::vec(
                prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from),
                            any::<i64>().prop_map(Value::from), any::<f64>().prop_map(Value::from),
                            ".{0,20}".prop_map(Value::from),
                            Just(serde_json::json!({"from": {"id": 1}, "chat": {"id": 2}, "text": "t"}))], 0..6),
        ) {
            let object: Map<String, Value> = keys.into_iter().zip(values).collect();
            let body = serde_json::to_vec(&Value::Object(object)).unwrap();
            let _ = parse(&body);
        }
    }
}
