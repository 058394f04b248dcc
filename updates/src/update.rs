//! Reading a raw Telegram `Update` into what the bot acts on. Lenient on purpose: a field
//! the bot does not use may be anything, and an update kind it does not know becomes
//! [`Incoming::Ignored`] with the reason, never an error.

use serde_json::Value;

/// What kind of chat a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A one-to-one chat with the bot.
    Private,
    /// A group, supergroup or anything else shared.
    Shared,
}

/// A message with text (or a caption) from a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage {
    /// Its id in the chat.
    pub message_id: i64,
    /// The chat.
    pub chat_id: i64,
    /// Private or shared.
    pub chat_kind: ChatKind,
    /// The sender's user id.
    pub from: i64,
    /// The text, or the caption of a media message (may be empty with an attachment).
    pub text: String,
    /// The sender of the message this one replies to, if any.
    pub reply_to_user: Option<i64>,
    /// A document or photo sent with it.
    pub attachment: Option<Attachment>,
}

/// A file a user sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// A document, or a photo (which also goes to the model as an image).
    pub kind: AttachmentKind,
    /// What `getFile` takes.
    pub file_id: String,
    /// The name it was sent under (photos have none).
    pub file_name: Option<String>,
    /// Its size, when Telegram says.
    pub file_size: Option<u64>,
}

/// What kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// Any file sent as a file.
    Document,
    /// A photo (Telegram sends it as a JPEG in several sizes).
    Photo,
}

/// The largest file a bot may download (Telegram's limit for `getFile`).
pub const MAX_DOWNLOAD_BYTES: u64 = 20 * 1024 * 1024;

/// A press on an inline button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonPress {
    /// The callback query's id (to answer).
    pub id: String,
    /// Who pressed.
    pub from: i64,
    /// The chat of the message with the button, if Telegram says.
    pub chat_id: Option<i64>,
    /// The button's data.
    pub data: String,
}

/// The Stop button of a draft was pressed (`stopped_message_generation`). The update has
/// no sender: drafts exist only in private chats, whose id is the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopPress {
    /// The private chat, that is the user.
    pub chat_id: i64,
    /// The draft it was pressed on.
    pub draft_id: i64,
}

/// What an update asks of the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A user wrote.
    Message(UserMessage),
    /// A user pressed a button.
    Button(ButtonPress),
    /// A user pressed Stop on a draft.
    Stop(StopPress),
    /// Nothing to do, and why.
    Ignored(String),
}

/// The update's id, if it has a usable one.
pub fn update_id(update: &Value) -> Option<i64> {
    update.get("update_id")?.as_i64()
}

/// Reads `update`.
pub fn read(update: &Value) -> Incoming {
    if let Some(message) = update.get("message") {
        return read_message(message);
    }
    if let Some(query) = update.get("callback_query") {
        return read_button(query);
    }
    if let Some(stopped) = update.get("stopped_message_generation") {
        return read_stop(stopped);
    }
    let kind = update
        .as_object()
        .and_then(|fields| fields.keys().find(|key| *key != "update_id"))
        .map_or("an empty update", String::as_str);
    Incoming::Ignored(format!("{kind} updates are not handled"))
}

fn read_message(message: &Value) -> Incoming {
    let Some(from) = message.pointer("/from/id").and_then(Value::as_i64) else {
        return Incoming::Ignored("a message without a sender".into());
    };
    if message.pointer("/from/is_bot") == Some(&Value::Bool(true)) {
        return Incoming::Ignored("a message from a bot".into());
    }
    let (Some(chat_id), Some(message_id)) = (
        message.pointer("/chat/id").and_then(Value::as_i64),
        message.get("message_id").and_then(Value::as_i64),
    ) else {
        return Incoming::Ignored("a message without a chat or id".into());
    };
    let text = message
        .get("text")
        .or_else(|| message.get("caption"))
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let attachment = read_attachment(message);
    if text.is_empty() && attachment.is_none() {
        return Incoming::Ignored(
            "a message without text, document or photo (a sticker, a voice note, ...)".into(),
        );
    }
    let chat_kind = match message.pointer("/chat/type").and_then(Value::as_str) {
        Some("private") => ChatKind::Private,
        _ => ChatKind::Shared,
    };
    Incoming::Message(UserMessage {
        message_id,
        chat_id,
        chat_kind,
        from,
        text: text.to_string(),
        reply_to_user: message
            .pointer("/reply_to_message/from/id")
            .and_then(Value::as_i64),
        attachment,
    })
}

/// The document, or the largest size of the photo that a bot may download (a size
/// Telegram does not state is taken to fit: the download checks again).
fn read_attachment(message: &Value) -> Option<Attachment> {
    let size = |file: &Value| file.get("file_size").and_then(Value::as_u64);
    if let Some(document) = message.get("document") {
        return Some(Attachment {
            kind: AttachmentKind::Document,
            file_id: document.get("file_id")?.as_str()?.to_string(),
            file_name: document
                .get("file_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            file_size: size(document),
        });
    }
    let sizes = message.get("photo")?.as_array()?;
    let area = |photo: &Value| {
        let side = |key| photo.get(key).and_then(Value::as_u64).unwrap_or(0);
        side("width") * side("height")
    };
    let fitting = sizes
        .iter()
        .filter(|photo| size(photo).is_none_or(|bytes| bytes <= MAX_DOWNLOAD_BYTES))
        .max_by_key(|photo| area(photo))
        .or_else(|| sizes.iter().min_by_key(|photo| area(photo)))?;
    Some(Attachment {
        kind: AttachmentKind::Photo,
        file_id: fitting.get("file_id")?.as_str()?.to_string(),
        file_name: None,
        file_size: size(fitting),
    })
}

fn read_button(query: &Value) -> Incoming {
    let (Some(id), Some(from)) = (
        query.get("id").and_then(Value::as_str),
        query.pointer("/from/id").and_then(Value::as_i64),
    ) else {
        return Incoming::Ignored("a button press without an id or sender".into());
    };
    Incoming::Button(ButtonPress {
        id: id.to_string(),
        from,
        chat_id: query.pointer("/message/chat/id").and_then(Value::as_i64),
        data: query
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

fn read_stop(stopped: &Value) -> Incoming {
    let (Some(chat_id), Some(draft_id)) = (
        stopped.pointer("/chat/id").and_then(Value::as_i64),
        stopped.get("draft_id").and_then(Value::as_i64),
    ) else {
        return Incoming::Ignored("a stopped generation without a chat or draft id".into());
    };
    let private = stopped.pointer("/chat/type").and_then(Value::as_str) == Some("private");
    if !private || chat_id <= 0 {
        return Incoming::Ignored("a stopped generation outside a private chat".into());
    }
    Incoming::Stop(StopPress { chat_id, draft_id })
}

/// A `/command` at the start of `text`: its name (lower-case, without the slash) and the
/// `@bot` it names, if any, and the rest of the text.
pub fn command(text: &str) -> Option<(String, Option<&str>, &str)> {
    let rest = text.strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (word, args) = rest.split_at(end);
    let (name, bot) = match word.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (word, None),
    };
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_ascii_lowercase(), bot, args.trim()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_private_text_message_is_read() {
        let update = json!({"update_id": 3, "message": {"message_id": 10,
            "from": {"id": 42, "is_bot": false}, "chat": {"id": 42, "type": "private"},
            "text": "  fix the build  "}});
        assert_eq!(update_id(&update), Some(3));
        assert_eq!(
            read(&update),
            Incoming::Message(UserMessage {
                message_id: 10,
                chat_id: 42,
                chat_kind: ChatKind::Private,
                from: 42,
                text: "fix the build".into(),
                reply_to_user: None,
                attachment: None,
            })
        );
    }

    #[test]
    fn unknown_kinds_stickers_and_bots_are_ignored_with_a_reason() {
        let cases = [
            json!({"update_id": 1, "edited_message": {"text": "x"}}),
            json!({"update_id": 1, "channel_post": {"text": "x"}}),
            json!({"update_id": 1, "message": {"message_id": 1, "from": {"id": 2},
                "chat": {"id": 2, "type": "private"}, "sticker": {"file_id": "s"}}}),
            json!({"update_id": 1, "message": {"message_id": 1, "from": {"id": 2, "is_bot": true},
                "chat": {"id": 2, "type": "private"}, "text": "hi"}}),
            json!({"update_id": 1}),
            json!({"update_id": 1, "message": "not an object"}),
        ];
        for update in cases {
            assert!(
                matches!(read(&update), Incoming::Ignored(_)),
                "{update} should be ignored"
            );
        }
        assert_eq!(update_id(&json!({"update_id": "7"})), None);
    }

    #[test]
    fn documents_and_the_largest_fitting_photo_are_read_with_their_caption() {
        let document = json!({"update_id": 4, "message": {"message_id": 11,
            "from": {"id": 42}, "chat": {"id": 42, "type": "private"},
            "document": {"file_id": "doc1", "file_name": "build.log", "file_size": 1234}}});
        let Incoming::Message(message) = read(&document) else {
            panic!("not read")
        };
        assert_eq!(message.text, "");
        assert_eq!(
            message.attachment,
            Some(Attachment {
                kind: AttachmentKind::Document,
                file_id: "doc1".into(),
                file_name: Some("build.log".into()),
                file_size: Some(1234),
            })
        );
        let photo = json!({"update_id": 5, "message": {"message_id": 12,
        "from": {"id": 42}, "chat": {"id": 42, "type": "private"}, "caption": "why red?",
        "photo": [
            {"file_id": "small", "width": 90, "height": 60, "file_size": 900},
            {"file_id": "big", "width": 1280, "height": 853, "file_size": 90_000},
            {"file_id": "huge", "width": 9000, "height": 6000, "file_size": 30_000_000}
        ]}});
        let Incoming::Message(message) = read(&photo) else {
            panic!("not read")
        };
        assert_eq!(message.text, "why red?");
        let attachment = message.attachment.unwrap();
        assert_eq!(
            (attachment.kind, attachment.file_id.as_str()),
            (AttachmentKind::Photo, "big")
        );
        let no_id = json!({"update_id": 6, "message": {"message_id": 13,
            "from": {"id": 42}, "chat": {"id": 42, "type": "private"}, "document": {}}});
        assert!(matches!(read(&no_id), Incoming::Ignored(_)));
    }

    #[test]
    fn button_presses_are_read() {
        let update = json!({"update_id": 5, "callback_query": {"id": "cb1",
            "from": {"id": 8}, "message": {"message_id": 3, "chat": {"id": -100}},
            "data": "cancel:4:8"}});
        assert_eq!(
            read(&update),
            Incoming::Button(ButtonPress {
                id: "cb1".into(),
                from: 8,
                chat_id: Some(-100),
                data: "cancel:4:8".into(),
            })
        );
    }

    #[test]
    fn a_stop_on_a_draft_is_read_through_its_private_chat() {
        let update = json!({"update_id": 9, "stopped_message_generation": {
            "chat": {"id": 42, "type": "private"}, "draft_id": 77}});
        assert_eq!(
            read(&update),
            Incoming::Stop(StopPress {
                chat_id: 42,
                draft_id: 77
            })
        );
        for odd in [
            json!({"update_id": 9, "stopped_message_generation": {
                "chat": {"id": -5, "type": "group"}, "draft_id": 77}}),
            json!({"update_id": 9, "stopped_message_generation": {"chat": {"id": 42}}}),
            json!({"update_id": 9, "stopped_message_generation": []}),
        ] {
            assert!(matches!(read(&odd), Incoming::Ignored(_)), "{odd}");
        }
    }

    #[test]
    fn commands_are_recognised_with_and_without_the_bot_name() {
        assert_eq!(command("/status"), Some(("status".into(), None, "")));
        assert_eq!(
            command("/New@my_bot  now"),
            Some(("new".into(), Some("my_bot"), "now"))
        );
        assert_eq!(command("/"), None);
        assert_eq!(command("/path/to/file is broken"), None);
        assert_eq!(command("status"), None);
    }
}
