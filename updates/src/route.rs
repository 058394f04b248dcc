//! Whose an update is: the user whose task and workspace it concerns (the *owner*, which
//! picks the AgentCore session) and the user who sent it (the *sender*, whom the allow-list
//! checks). They differ for a button pressed by someone other than the task's owner.

use sha2::{Digest, Sha256};

use crate::buttons::ButtonData;
use crate::update::Incoming;

/// The prefix of every runtime session id [`session_id`] derives.
pub const SESSION_PREFIX: &str = "telegram-";

/// Whose an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The user whose session the update goes to.
    pub owner: i64,
    /// The user who sent it (wrote, pressed a button, pressed Stop).
    pub sender: i64,
}

/// Whose `incoming` is; `None` for an update the bot ignores.
///
/// A message is its sender's. A button press goes to the owner written in the button's data
/// (so a press in a group reaches the session where the owner's task runs); a press on a
/// button this bot did not make goes to the presser, whose session answers it. A Stop on a
/// draft has no sender: drafts live only in private chats, whose id is the user's.
pub fn route(incoming: &Incoming) -> Option<Route> {
    match incoming {
        Incoming::Message(message) => Some(Route {
            owner: message.from,
            sender: message.from,
        }),
        Incoming::Button(press) => Some(Route {
            owner: ButtonData::decode(&press.data).map_or(press.from, |data| data.owner),
            sender: press.from,
        }),
        Incoming::Stop(stop) => Some(Route {
            owner: stop.chat_id,
            sender: stop.chat_id,
        }),
        Incoming::Ignored(_) => None,
    }
}

/// The AgentCore runtime session for `owner`'s updates to the bot `bot_id`.
///
/// Deterministic, so every update of a user reaches the same microVM while it lives and the
/// same id comes back after a redeploy; a digest, so user ids do not appear in AgentCore's
/// logs and the length is fixed (73 characters, within AgentCore's 33–256); keyed by the bot
/// too, so two bots sharing a runtime never share a session.
pub fn session_id(bot_id: i64, owner: i64) -> String {
    let digest = Sha256::new()
        .chain_update(b"agent-host telegram session v1\0")
        .chain_update(bot_id.to_string())
        .chain_update(b"\0")
        .chain_update(owner.to_string())
        .finalize();
    let mut id = String::with_capacity(SESSION_PREFIX.len() + 64);
    id.push_str(SESSION_PREFIX);
    for byte in digest {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The bot's id: the number before the `:` of its token; `None` for something that is not
/// a bot token.
pub fn bot_id(token: &str) -> Option<i64> {
    let (id, secret) = token.trim().split_once(':')?;
    if secret.is_empty() {
        return None;
    }
    id.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::update::read;

    #[test]
    fn a_message_is_its_senders() {
        let update = json!({"update_id": 1, "message": {"message_id": 5,
            "from": {"id": 42}, "chat": {"id": -100, "type": "group"}, "text": "hi"}});
        assert_eq!(
            route(&read(&update)),
            Some(Route {
                owner: 42,
                sender: 42
            })
        );
    }

    #[test]
    fn a_button_goes_to_the_owner_in_its_data_and_a_foreign_one_to_the_presser() {
        let press = |data: &str| {
            json!({"update_id": 1, "callback_query": {"id": "q", "from": {"id": 7},
                "message": {"message_id": 3, "chat": {"id": -100}}, "data": data}})
        };
        assert_eq!(
            route(&read(&press("cancel:12:42"))),
            Some(Route {
                owner: 42,
                sender: 7
            })
        );
        assert_eq!(
            route(&read(&press("somebody else's"))),
            Some(Route {
                owner: 7,
                sender: 7
            })
        );
    }

    #[test]
    fn a_stop_is_the_private_chats_and_ignored_kinds_have_no_route() {
        let stop = json!({"update_id": 1, "stopped_message_generation":
            {"chat": {"id": 42, "type": "private"}, "draft_id": 9}});
        assert_eq!(
            route(&read(&stop)),
            Some(Route {
                owner: 42,
                sender: 42
            })
        );
        let edited = json!({"update_id": 1, "edited_message": {"text": "x"}});
        assert_eq!(route(&read(&edited)), None);
    }

    #[test]
    fn session_ids_are_stable_distinct_and_within_agentcores_limits() {
        let id = session_id(123, 42);
        assert_eq!(id, session_id(123, 42));
        assert!((33..=256).contains(&id.len()), "{}", id.len());
        assert!(id.starts_with(SESSION_PREFIX));
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_ne!(id, session_id(123, 43));
        assert_ne!(id, session_id(124, 42));
        // Pinned: a changed derivation would move every user to a new, empty session.
        assert_eq!(
            id,
            "telegram-f3d8cb16c081e023f37421b59fe8c3e7dc633e3558a5bd4aefa6780143e47be3"
        );
    }

    #[test]
    fn the_bot_id_is_read_from_the_token() {
        assert_eq!(bot_id("123456:AAE-secret"), Some(123456));
        assert_eq!(bot_id("123456"), None);
        assert_eq!(bot_id("abc:def"), None);
        assert_eq!(bot_id("123:"), None);
        assert_eq!(bot_id("-5:x"), None);
    }
}
