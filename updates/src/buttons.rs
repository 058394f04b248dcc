//! What an inline button carries: `<action>:<id>:<owner>` in at most 64 bytes (Telegram's
//! limit on `callback_data`).
//!
//! The owner is the user whose task the button belongs to. The presser may be someone
//! else (in a group): the relay reads the owner to route the press to the owner's
//! AgentCore session, and the bot checks the presser before acting.

/// Telegram's limit on `callback_data`, in bytes.
pub const MAX_DATA_BYTES: usize = 64;

/// The data of one button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonData {
    /// What the button does (`[a-z_]`, e.g. `cancel`).
    pub action: String,
    /// What it acts on (e.g. a task id; `[A-Za-z0-9_-]`).
    pub id: String,
    /// The user whose task it belongs to.
    pub owner: i64,
}

impl ButtonData {
    /// Data for `action` on `id` of `owner`; `None` when it would not fit or has
    /// characters outside the format.
    pub fn new(action: &str, id: &str, owner: i64) -> Option<Self> {
        let data = Self {
            action: action.to_string(),
            id: id.to_string(),
            owner,
        };
        let valid = !action.is_empty()
            && action.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && data.encode().len() <= MAX_DATA_BYTES;
        valid.then_some(data)
    }

    /// The `callback_data` string.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.action, self.id, self.owner)
    }

    /// Reads `callback_data`; `None` for anything this bot did not make.
    pub fn decode(data: &str) -> Option<Self> {
        let mut parts = data.splitn(3, ':');
        let (action, id, owner) = (parts.next()?, parts.next()?, parts.next()?);
        Self::new(action, id, owner.parse().ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_and_fits() {
        let data = ButtonData::new("cancel", "123", -1_001_234_567_890).unwrap();
        assert_eq!(data.encode(), "cancel:123:-1001234567890");
        assert_eq!(ButtonData::decode(&data.encode()), Some(data));
        let long_id = "x".repeat(60);
        assert_eq!(ButtonData::new("cancel", &long_id, 1), None);
    }

    #[test]
    fn foreign_or_damaged_data_is_refused() {
        for data in [
            "",
            "cancel",
            "cancel:1",
            "cancel:1:me",
            "Cancel:1:2",
            "a:b:c:d",
            "a:b c:1",
        ] {
            assert_eq!(ButtonData::decode(data), None, "{data:?}");
        }
    }
}
