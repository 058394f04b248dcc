//! A fake of the Telegram Bot API, served on 127.0.0.1.
//!
//! Tests point the host's Telegram client at [`FakeTelegram::base_url`] (the client builds
//! `<base>/bot<token>/<method>` as it does for `https://api.telegram.org`), so the host's
//! request building, retries and update loop run unchanged and only the service is fake.
//! The fake speaks the Bot API wire protocol: parameters as a JSON body, as
//! `application/x-www-form-urlencoded`, as `multipart/form-data` (file uploads) or in the
//! query string; answers `{"ok":true,"result":...}` or
//! `{"ok":false,"error_code":N,"description":"...","parameters":{"retry_after":N}}` with the
//! matching HTTP status; files are downloaded from `/file/bot<token>/<file_path>`. Method
//! names are case-insensitive, as in Telegram.
//!
//! It refuses what Telegram refuses, with Telegram's descriptions, so a test that passes
//! against the fake shows the host's output is accepted by the real service: Telegram HTML
//! ([`parse_telegram_html`]), lengths in UTF-16 code units after entity parsing
//! ([`utf16_len`], [`visible_len`]), inline keyboards, reply targets, edits that change
//! nothing, drafts outside private chats, bot command lists, callback query ids, and the
//! getUpdates rules (offsets confirm updates, one poller at a time, no polling while a
//! webhook is set). Where Telegram is laxer than its documentation, the fake follows the
//! documentation: a `&` that does not start one of the supported entities must be escaped
//! (Telegram would keep it as a literal `&`), and `<code class="language-…">` belongs
//! directly inside `<pre>`.
//!
//! Drafts (`sendMessageDraft`) behave as Telegram's clients show them: one live draft per
//! private chat, which a later draft replaces and the bot's next message in that chat
//! erases. Each end of a draft is recorded as a [`DraftEnd`] ([`FakeTelegram::draft_ends`])
//! that tells a flush (a message repeating the draft's text) from a draft whose text the
//! user lost ([`DraftEnd::lost`]). [`FakeTelegram::press_stop`] is the user pressing the
//! Stop button of a draft sent with `can_stop`: the draft goes and the bot gets a
//! `stopped_message_generation` update, delivered only when `allowed_updates` lists it.
//! [`FakeTelegram::refuse_drafts`] makes every chat one that cannot show drafts.
//!
//! Every request is recorded as a [`Call`] (with the answer it got); waiters
//! ([`FakeTelegram::wait_for_call`], [`FakeTelegram::wait_until`], ...) are woken at each
//! record, never by polling the clock. [`FakeTelegram::fail_next`] makes the next calls of
//! a method fail the way Telegram fails (flood limits, dropped connections, ...).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// The bot's `username` in `getMe` (what group commands name: `/start@fake_agent_bot`).
pub const BOT_USERNAME: &str = "fake_agent_bot";
/// The bot's `first_name` in `getMe`.
pub const BOT_FIRST_NAME: &str = "Fake Agent";
/// The longest message text (and draft), in UTF-16 code units after entity parsing.
pub const MAX_TEXT_LEN: usize = 4096;
/// The longest caption, in UTF-16 code units after entity parsing.
pub const MAX_CAPTION_LEN: usize = 1024;
/// The longest `answerCallbackQuery` text, in characters.
pub const MAX_CALLBACK_TEXT_LEN: usize = 200;
/// The longest `callback_data` of an inline keyboard button, in bytes.
pub const MAX_CALLBACK_DATA_LEN: usize = 64;
/// The largest document upload (50 MB, as on the public Bot API server).
pub const MAX_DOCUMENT_SIZE: usize = 50 * 1024 * 1024;
/// The largest photo upload (10 MB).
pub const MAX_PHOTO_SIZE: usize = 10 * 1024 * 1024;
/// Request bodies above this are refused with 413 before they are parsed.
const BODY_LIMIT: usize = MAX_DOCUMENT_SIZE + 1024 * 1024;

/// The description of an edit that changes neither the content nor the keyboard.
pub const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message \
    content and reply markup are exactly the same as a current content and reply markup of \
    the message";
/// The description of a getUpdates while a webhook is set (409).
pub const WEBHOOK_CONFLICT: &str = "Conflict: can't use getUpdates method while webhook is \
    active; use deleteWebhook to delete the webhook first";
/// The description of a getUpdates ended by a newer one (409).
pub const POLL_CONFLICT: &str = "Conflict: terminated by other getUpdates request; make sure \
    that only one bot instance is running";
/// The description of a sendMessageDraft while [`FakeTelegram::refuse_drafts`] is set (400).
pub const DRAFTS_UNAVAILABLE: &str =
    "Bad Request: method sendMessageDraft is not available for this chat";
/// The prefix of every refused formatting: `Bad Request: can't parse entities: <reason>`.
pub const CANT_PARSE_ENTITIES: &str = "Bad Request: can't parse entities: ";

/// The methods the fake serves, as the Bot API documentation spells them.
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "sendMessageDraft",
    "sendChatAction",
    "sendDocument",
    "sendPhoto",
    "answerCallbackQuery",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "deleteMessage",
    "getFile",
];

/// The name file downloads are recorded under (they are not Bot API methods).
pub const DOWNLOAD: &str = "file";

/// Parameters whose value is JSON; sent as form fields they arrive as JSON text, and are
/// recorded (and read) as the JSON they hold.
const JSON_PARAMS: &[&str] = &[
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "commands",
    "allowed_updates",
    "scope",
    "entities",
    "caption_entities",
];

/// The `sendChatAction` actions Telegram accepts.
const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// Update types not delivered when `allowed_updates` was never given (or given empty): a
/// bot gets them only by listing them.
const NOT_DELIVERED_BY_DEFAULT: &[&str] = &[
    "chat_member",
    "message_reaction",
    "message_reaction_count",
    "stopped_message_generation",
];

/// The Telegram HTML tags, lowercase.
const HTML_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// Message ids come from one counter for every chat, user messages built by the helpers
/// and bot messages alike: ids increase within each chat and never collide.
static NEXT_MESSAGE_ID: AtomicI64 = AtomicI64::new(1);
static NEXT_CALLBACK_ID: AtomicI64 = AtomicI64::new(1);

/// The fake Bot API server. Clones share one server; it stops when the last clone is
/// dropped or at [`FakeTelegram::shutdown`].
#[derive(Clone)]
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Shared,
    _server: Arc<ServerGuard>,
}

/// One request as the fake received and answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method as the documentation spells it (`sendMessage` even if `SENDMESSAGE` was
    /// called); an unknown method as given; [`DOWNLOAD`] for a file download.
    pub method: String,
    /// The parameters as a JSON object, from the query string and the body, whichever
    /// encoding was used. Form and multipart fields are strings (`"chat_id": "42"`; use
    /// [`Call::int_param`]) except the JSON-valued ones (`reply_markup`, `commands`, ...),
    /// which are the JSON they hold; an uploaded file is `{"filename": .., "size": ..}`.
    pub params: Value,
    /// The JSON answered (`{"ok": .., ...}`); `null` for a dropped connection or a download.
    pub response: Value,
    /// The HTTP status answered; 0 for a dropped connection.
    pub status: u16,
    /// Whether the call succeeded (`"ok": true`).
    pub ok: bool,
    /// When the answer was decided (for a long poll, when it returned).
    pub at: Instant,
}

impl Call {
    /// A parameter, `None` if absent or null.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|value| !value.is_null())
    }

    /// A string parameter.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.param(name)?.as_str()
    }

    /// An integer parameter, sent as a JSON number or as text (form fields).
    pub fn int_param(&self, name: &str) -> Option<i64> {
        as_int(self.param(name)?)
    }

    /// The `result` of a successful call.
    pub fn result(&self) -> Option<&Value> {
        self.response.get("result")
    }

    /// The `description` of an error (or of a success that has one, like setWebhook's).
    pub fn description(&self) -> Option<&str> {
        self.response.get("description")?.as_str()
    }
}

/// How the next call of a method fails (see [`FakeTelegram::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `429 Too Many Requests: retry after N` with `parameters.retry_after = N`.
    TooManyRequests { retry_after: u64 },
    /// `400 Bad Request: can't parse entities: ...`, whatever the text.
    CantParseEntities,
    /// `400` [`NOT_MODIFIED`].
    NotModified,
    /// Any error: the HTTP status (also the `error_code`) and the full description, e.g.
    /// `Status(403, "Forbidden: bot was blocked by the user".into())`.
    Status(u16, String),
    /// The connection is closed without an answer (the client sees a network error).
    DropConnection,
}

/// A message the bot sent, as it currently stands (after edits).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The chat it is in.
    pub chat_id: i64,
    /// Its id.
    pub message_id: i64,
    /// The visible text (the caption for a document or photo): entities parsed, leading
    /// and trailing whitespace trimmed, as the user sees it.
    pub text: String,
    /// The text (or caption) exactly as sent: Telegram HTML when `parse_mode` is HTML.
    pub html: String,
    /// The `parse_mode` as sent.
    pub parse_mode: Option<String>,
    /// The entities Telegram would report (`{"type":"bold","offset":0,"length":4}`, ...),
    /// offsets and lengths in UTF-16 code units of `text`.
    pub entities: Vec<Value>,
    /// The inline keyboard attached (`{"inline_keyboard": [...]}`); other reply markups
    /// (reply keyboards, force_reply) belong to the chat, not the message, and are not kept.
    pub reply_markup: Option<Value>,
    /// The message it replies to.
    pub reply_to_message_id: Option<i64>,
    /// The document sent with `sendDocument`.
    pub document: Option<SentFile>,
    /// The photo sent with `sendPhoto`.
    pub photo: Option<SentFile>,
    /// When it was sent (Unix seconds).
    pub date: i64,
    /// When it was last edited (Unix seconds), if ever.
    pub edit_date: Option<i64>,
}

/// A file the bot uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    /// The `file_id` Telegram gave it (valid for getFile and for sending again).
    pub file_id: String,
    /// The file name of the upload.
    pub file_name: String,
    /// The uploaded bytes.
    pub bytes: Vec<u8>,
}

/// The draft shown in a private chat (`sendMessageDraft`), until another draft replaces
/// it, a message of the bot erases it or the user stops it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The draft's id.
    pub draft_id: i64,
    /// The visible text (entities parsed, trimmed); empty shows as "Thinking…".
    pub text: String,
    /// The text as sent.
    pub html: String,
    /// The `parse_mode` as sent.
    pub parse_mode: Option<String>,
    /// Whether it shows a Stop button (`can_stop`), which [`FakeTelegram::press_stop`]
    /// presses.
    pub can_stop: bool,
    /// The topic it was sent to (`message_thread_id`), repeated in the update a Stop sends.
    pub message_thread_id: Option<i64>,
}

/// How a draft stopped being shown (see [`FakeTelegram::draft_ends`]). A draft replaced by
/// another draft is not ended: the bot goes on writing in the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftEnd {
    /// The ended draft's id.
    pub draft_id: i64,
    /// Its visible text when it ended: what the user was reading.
    pub draft_text: String,
    /// What ended it.
    pub how: DraftEndKind,
}

/// What ended a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftEndKind {
    /// A new message of the bot in the chat (sendMessage, sendDocument, sendPhoto, ...):
    /// clients drop a live draft as soon as one arrives.
    Replaced {
        /// The new message's id.
        message_id: i64,
        /// Its visible text (the caption for a file).
        message_text: String,
    },
    /// The user pressed the draft's Stop button ([`FakeTelegram::press_stop`]).
    Stopped,
}

impl DraftEnd {
    /// Whether the user lost text they were reading: the draft showed some text and the
    /// message that erased it does not hold it. A message with the draft's text (a flush,
    /// perhaps with what the bot had not shown yet) keeps it; an empty draft only showed
    /// "Thinking…"; a stop is the user's own choice, so none of these loses anything.
    pub fn lost(&self) -> bool {
        match &self.how {
            DraftEndKind::Replaced { message_text, .. } => {
                !self.draft_text.is_empty() && !message_text.contains(&self.draft_text)
            }
            DraftEndKind::Stopped => false,
        }
    }
}

impl FakeTelegram {
    /// Starts a fake Bot API for the bot `token` on an ephemeral port of 127.0.0.1.
    ///
    /// The bot's id (getMe) is the number before the `:` of the token (`123:abc` → 123),
    /// or 1000001 if there is none.
    pub async fn start(token: &str) -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake telegram binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1_000_001);
        let shared = Shared(Arc::new(Inner {
            token: token.to_string(),
            bot_id,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }));
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(shared.clone());
        let stopped = {
            let shared = shared.clone();
            async move { shared.until_shut_down().await }
        };
        tokio::spawn(async move {
            // Stops accepting at shutdown, then lets open connections finish (idle ones
            // are closed; a request arriving on one after shutdown is dropped).
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        FakeTelegram {
            addr,
            shared: shared.clone(),
            _server: Arc::new(ServerGuard(shared)),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`: the client calls
    /// `<base>/bot<token>/<method>` and downloads `<base>/file/bot<token>/<file_path>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full URL of `method` for this bot: `<base>/bot<token>/<method>`.
    pub fn api_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base_url(), self.shared.0.token)
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.0.token
    }

    /// The bot's user id (getMe's `id`).
    pub fn bot_id(&self) -> i64 {
        self.shared.0.bot_id
    }

    /// Stops the server now: no more connections are accepted, long polls return empty,
    /// and a request on a connection still open is dropped unanswered.
    pub fn shutdown(&self) {
        self.shared.shut_down();
    }

    /// Queues `update` for getUpdates and wakes a waiting long poll; returns its
    /// `update_id`, assigned (above every earlier one) if the update has none.
    ///
    /// A `message` in it becomes a message of its chat that replies can target. A
    /// `callback_query` whose `message` is a message the bot sent gets that message as
    /// it currently is (text, keyboard); one the bot never sent (or deleted) is delivered
    /// as an inaccessible message (`date: 0`), as Telegram does. Updates of every other
    /// kind (e.g. `stopped_message_generation`, which has neither `message` nor `from`)
    /// are queued as they are.
    ///
    /// # Panics
    /// If `update` is not a JSON object.
    pub fn push_update(&self, update: Value) -> i64 {
        assert!(update.is_object(), "an update is a JSON object: {update}");
        let update_id = queue_update(&mut self.shared.lock(), self.bot_id(), update);
        self.shared.notify();
        update_id
    }

    /// The user presses the Stop button of the draft shown in `chat_id`: if it was sent
    /// with `can_stop`, it is no longer shown (recorded as [`DraftEndKind::Stopped`]) and
    /// the bot is sent the `stopped_message_generation` update, queued as by
    /// [`Self::push_update`]; returns its `update_id`. `None` (and nothing changes) when
    /// the chat shows no draft or one without a Stop button. Like Telegram, the fake
    /// drops the update at delivery unless `allowed_updates` lists it.
    pub fn press_stop(&self, chat_id: i64) -> Option<i64> {
        let mut st = self.shared.lock();
        let draft = stop_draft(&mut st, chat_id)?;
        let mut update = FakeTelegram::stopped_generation(chat_id, draft.draft_id);
        if let Some(thread) = draft.message_thread_id {
            update["stopped_message_generation"]["message_thread_id"] = json!(thread);
        }
        let update_id = queue_update(&mut st, self.bot_id(), update);
        drop(st);
        self.shared.notify();
        Some(update_id)
    }

    /// [`Self::press_stop`] without queuing the update, for tests that hand the bot the
    /// update themselves ([`Self::stopped_generation`]); returns the stopped draft's id.
    pub fn press_stop_without_update(&self, chat_id: i64) -> Option<i64> {
        let draft = stop_draft(&mut self.shared.lock(), chat_id)?;
        self.shared.notify();
        Some(draft.draft_id)
    }

    /// The update Telegram sends when the user stops draft `draft_id` in the private chat
    /// `chat_id`, without `update_id` (see [`Self::press_stop`]). It has no `from`: only
    /// the chat's own user can press Stop.
    pub fn stopped_generation(chat_id: i64, draft_id: i64) -> Value {
        json!({"stopped_message_generation": {"chat": chat_json(chat_id), "draft_id": draft_id}})
    }

    /// While `refused`, every sendMessageDraft fails with 400 [`DRAFTS_UNAVAILABLE`], as for
    /// a chat or client that cannot show drafts (the shown draft, if any, stays).
    pub fn refuse_drafts(&self, refused: bool) {
        self.shared.lock().drafts_refused = refused;
    }

    /// An update with a text message from user `user_id` in their private chat with the
    /// bot, as Telegram sends it; a `/command` at the start gets its `bot_command` entity.
    pub fn private_message(user_id: i64, text: &str) -> Value {
        json!({"message": user_message(user_id, chat_json(user_id), text)})
    }

    /// An update with a text message from user `user_id` in the group `chat_id` (negative;
    /// below -10^12 a supergroup).
    pub fn group_message(chat_id: i64, user_id: i64, text: &str) -> Value {
        json!({"message": user_message(user_id, chat_json(chat_id), text)})
    }

    /// An update with user `user_id` pressing a button with `data` under message
    /// `message_id` of chat `chat_id`; the query id is new (see [`Self::push_update`] for
    /// how the message is filled in).
    pub fn callback_query(user_id: i64, chat_id: i64, message_id: i64, data: &str) -> Value {
        let id = 4_000_000_000_000_000_000 + NEXT_CALLBACK_ID.fetch_add(1, Ordering::Relaxed);
        json!({"callback_query": {
            "id": id.to_string(),
            "from": user_json(user_id),
            "message": {"message_id": message_id, "chat": chat_json(chat_id), "date": 0},
            "chat_instance": (chat_id.unsigned_abs() ^ 0x5DEE_CE66).to_string(),
            "data": data,
        }})
    }

    /// Every call so far, in the order they were answered.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls of `method` (compared case-insensitively), in the order they were answered.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let st = self.shared.lock();
        st.calls
            .iter()
            .filter(|call| call.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    /// The bot's messages in `chat_id` as they stand now (edits applied, deleted ones
    /// gone), oldest first.
    pub fn messages(&self, chat_id: i64) -> Vec<Message> {
        let st = self.shared.lock();
        st.chats
            .get(&chat_id)
            .map(|chat| chat.messages.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The draft currently shown in the private chat `chat_id`.
    pub fn draft(&self, chat_id: i64) -> Option<Draft> {
        let st = self.shared.lock();
        st.chats.get(&chat_id)?.draft.clone()
    }

    /// How the drafts of `chat_id` ended so far, oldest first (see [`DraftEnd`]).
    pub fn draft_ends(&self, chat_id: i64) -> Vec<DraftEnd> {
        let st = self.shared.lock();
        st.chats
            .get(&chat_id)
            .map(|chat| chat.draft_ends.clone())
            .unwrap_or_default()
    }

    /// The first call of `method` ever made, waiting up to `timeout` for one to arrive.
    pub async fn wait_for_call(&self, method: &str, timeout: Duration) -> Option<Call> {
        self.wait(timeout, || {
            let st = self.shared.lock();
            st.calls
                .iter()
                .find(|call| call.method.eq_ignore_ascii_case(method))
                .cloned()
        })
        .await
    }

    /// Waits until `what` holds for the calls so far (checked now and at each change);
    /// false if it still does not after `timeout`. `what` may call the fake.
    pub async fn wait_until(&self, what: impl Fn(&[Call]) -> bool, timeout: Duration) -> bool {
        self.wait(timeout, || what(&self.calls()).then_some(()))
            .await
            .is_some()
    }

    /// The first of the bot's current messages in `chat_id` for which `what` holds,
    /// waiting up to `timeout` for one to be sent or edited into shape.
    pub async fn wait_for_message(
        &self,
        chat_id: i64,
        what: impl Fn(&Message) -> bool,
        timeout: Duration,
    ) -> Option<Message> {
        self.wait(timeout, || {
            self.messages(chat_id).into_iter().find(|m| what(m))
        })
        .await
    }

    /// Waits until a getUpdates is in flight (the client is long polling); false if none
    /// is after `timeout`.
    pub async fn wait_for_poll(&self, timeout: Duration) -> bool {
        self.wait(timeout, || {
            (self.shared.lock().polls_in_flight > 0).then_some(())
        })
        .await
        .is_some()
    }

    /// Makes the next call of `method` (case-insensitive) fail with `failure` instead of
    /// being served; several failures for one method apply to its next calls in order.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        let key = method.to_ascii_lowercase();
        let mut st = self.shared.lock();
        st.failures.entry(key).or_default().push_back(failure);
    }

    /// Sets (or with `None` removes) the webhook without a setWebhook call.
    pub fn set_webhook_url(&self, url: Option<&str>) {
        self.shared.lock().webhook_url = url.map(str::to_string);
        self.shared.notify();
    }

    /// The `secret_token` of the webhook set last (`None` when none is set).
    pub fn webhook_secret(&self) -> Option<String> {
        self.shared.lock().webhook_secret.clone()
    }

    /// Records a failed webhook delivery `seconds_ago`, as getWebhookInfo reports it.
    pub fn fail_webhook_delivery(&self, message: &str, seconds_ago: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.shared.lock().webhook_error = Some((now - seconds_ago, message.to_string()));
    }

    /// The callback query ids delivered by getUpdates and never answered, in delivery order.
    pub fn unanswered_callbacks(&self) -> Vec<String> {
        let st = self.shared.lock();
        st.delivered_callbacks
            .iter()
            .filter(|id| !st.answered_callbacks.contains(*id))
            .cloned()
            .collect()
    }

    /// Makes a file known under `file_id` (for getFile, the download route and sending
    /// it again), as if a user had sent it.
    pub fn add_file(&self, file_id: &str, file_path: &str, bytes: Vec<u8>) {
        let mut st = self.shared.lock();
        st.next_file += 1;
        let stored = StoredFile {
            file_path: file_path.to_string(),
            file_name: file_path
                .rsplit('/')
                .next()
                .unwrap_or(file_path)
                .to_string(),
            bytes,
        };
        st.files.insert(file_id.to_string(), stored);
    }

    /// The last `allowed_updates` a getUpdates or setWebhook gave (Telegram keeps it for
    /// later calls that give none).
    pub fn last_allowed_updates(&self) -> Option<Vec<String>> {
        self.shared.lock().allowed_updates.clone()
    }

    /// How many updates are queued and not yet confirmed (by a getUpdates offset past them).
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Checks `found` now and after each change, until it gives something or `timeout`
    /// passes.
    async fn wait<T>(&self, timeout: Duration, found: impl Fn() -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Made before the check, so a change between the two still wakes it.
            let changed = self.shared.0.changed.notified();
            if let Some(result) = found() {
                return Some(result);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return found();
            }
        }
    }
}

/// Validates Telegram HTML (`parse_mode: "HTML"`) and returns the visible text (tags
/// removed, entities decoded), or the reason Telegram would give after
/// `Bad Request: can't parse entities: `.
///
/// Accepted: the tags `b strong i em u ins s strike del tg-spoiler`, `span` with
/// `class="tg-spoiler"`, `a` (`href`), `code` (`class="language-…"` only directly inside
/// `pre`), `pre`, `blockquote` (optionally `expandable`), `tg-emoji` (numeric `emoji-id`).
/// Start tag names may be in any case, end tags must repeat the lowercase name or be `</>`
/// (as in Telegram, `<B>x</B>` is refused); other attributes, with or without a value, are
/// ignored. Tags must be properly nested and closed. Text may use the entities
/// `&lt; &gt; &amp; &quot;` and `&#NN;` / `&#xHH;` (the `;` may be left out, as Telegram
/// allows). A `&` that starts none of them, a `<` that starts no supported tag, and an
/// unknown tag are errors with Telegram's wording (`Unsupported start tag "foo" at byte
/// offset 12`, offsets in bytes of the UTF-8 input); the structure and wording follow
/// Telegram's own parser (tdlib's `parse_html`). The visible text is not trimmed (see
/// [`visible_len`]).
pub fn parse_telegram_html(html: &str) -> Result<String, String> {
    parse_html(html).map(|(text, _)| text)
}

/// The length of `text` in UTF-16 code units, the unit of Telegram's limits and entity
/// offsets: a character outside the Basic Multilingual Plane (most emoji) counts 2.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// What a message text counts against [`MAX_TEXT_LEN`]: the UTF-16 length of the visible
/// text (HTML parsed when `html`) with leading and trailing whitespace trimmed, as
/// Telegram trims it. 0 means Telegram refuses it as empty.
pub fn visible_len(text: &str, html: bool) -> Result<usize, String> {
    let visible = if html {
        parse_telegram_html(text)?
    } else {
        text.to_string()
    };
    Ok(utf16_len(visible.trim()))
}

/// Ends the server when the last [`FakeTelegram`] clone goes.
struct ServerGuard(Shared);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.shut_down();
    }
}

#[derive(Clone)]
struct Shared(Arc<Inner>);

struct Inner {
    token: String,
    bot_id: i64,
    state: Mutex<State>,
    /// Woken at every change: a recorded call, a pushed update, a poll starting or
    /// ending, shutdown.
    changed: Notify,
}

struct State {
    calls: Vec<Call>,
    /// Pending failures by lowercase method name.
    failures: HashMap<String, VecDeque<Failure>>,
    chats: HashMap<i64, Chat>,
    /// Queued updates, by increasing update_id.
    updates: VecDeque<Value>,
    next_update_id: i64,
    delivered_callbacks: Vec<String>,
    answered_callbacks: HashSet<String>,
    webhook_url: Option<String>,
    /// The webhook's `secret_token`.
    webhook_secret: Option<String>,
    /// The last failed delivery: when (Unix seconds) and why.
    webhook_error: Option<(u64, String)>,
    allowed_updates: Option<Vec<String>>,
    /// Incremented by every getUpdates: a waiting poll that sees it change was superseded.
    poll_generation: u64,
    polls_in_flight: usize,
    /// Command lists by (scope as JSON text, language code).
    commands: BTreeMap<(String, String), Value>,
    files: HashMap<String, StoredFile>,
    next_file: u64,
    /// Set by [`FakeTelegram::refuse_drafts`].
    drafts_refused: bool,
    shut_down: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            calls: Vec::new(),
            failures: HashMap::new(),
            chats: HashMap::new(),
            updates: VecDeque::new(),
            next_update_id: 1,
            delivered_callbacks: Vec::new(),
            answered_callbacks: HashSet::new(),
            webhook_url: None,
            webhook_secret: None,
            webhook_error: None,
            allowed_updates: None,
            poll_generation: 0,
            polls_in_flight: 0,
            commands: BTreeMap::new(),
            files: HashMap::new(),
            next_file: 0,
            drafts_refused: false,
            shut_down: false,
        }
    }
}

#[derive(Default)]
struct Chat {
    /// The bot's messages, by id.
    messages: BTreeMap<i64, Message>,
    /// Ids of the users' messages pushed in updates (reply targets).
    user_messages: HashSet<i64>,
    draft: Option<Draft>,
    /// How earlier drafts ended, oldest first.
    draft_ends: Vec<DraftEnd>,
}

struct StoredFile {
    file_path: String,
    file_name: String,
    bytes: Vec<u8>,
}

/// A file part of a multipart request.
struct Upload {
    filename: String,
    bytes: Vec<u8>,
}

/// An error answer.
#[derive(Debug)]
struct ApiError {
    status: u16,
    description: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            description: description.into(),
            retry_after: None,
        }
    }

    fn body(&self) -> Value {
        let mut body = json!({
            "ok": false,
            "error_code": self.status,
            "description": self.description,
        });
        if let Some(retry_after) = self.retry_after {
            body["parameters"] = json!({"retry_after": retry_after});
        }
        body
    }
}

/// `400 Bad Request: <reason>`.
fn bad(reason: impl Display) -> ApiError {
    ApiError::new(400, format!("Bad Request: {reason}"))
}

impl Failure {
    fn error(&self) -> ApiError {
        match self {
            Failure::TooManyRequests { retry_after } => ApiError {
                status: 429,
                description: format!("Too Many Requests: retry after {retry_after}"),
                retry_after: Some(*retry_after),
            },
            Failure::CantParseEntities => ApiError::new(
                400,
                format!("{CANT_PARSE_ENTITIES}Unsupported start tag \"injected\" at byte offset 0"),
            ),
            Failure::NotModified => ApiError::new(400, NOT_MODIFIED),
            Failure::Status(status, description) => ApiError::new(*status, description.clone()),
            Failure::DropConnection => ApiError::new(0, "dropped connection"),
        }
    }
}

impl Shared {
    /// Locks the state; a test that panicked while holding it leaves it usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.0.changed.notify_waiters();
    }

    fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify();
    }

    fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    async fn until_shut_down(&self) {
        loop {
            let changed = self.0.changed.notified();
            if self.is_shut_down() {
                return;
            }
            changed.await;
        }
    }

    fn record(&self, method: String, params: Value, status: u16, response: Value) {
        let ok = response["ok"] == json!(true);
        let call = Call {
            method,
            params,
            response,
            status,
            ok,
            at: Instant::now(),
        };
        self.lock().calls.push(call);
        self.notify();
    }

    /// Serves one method that does not wait, under one lock.
    fn serve(
        &self,
        method: &str,
        p: &Map<String, Value>,
        uploads: &mut HashMap<String, Upload>,
    ) -> Result<Value, ApiError> {
        let bot = self.0.bot_id;
        let mut st = self.lock();
        let st = &mut *st;
        match method {
            "getMe" => Ok(ok(json!({
                "id": bot,
                "is_bot": true,
                "first_name": BOT_FIRST_NAME,
                "username": BOT_USERNAME,
                "can_join_groups": true,
                "can_read_all_group_messages": false,
                "supports_inline_queries": false,
            }))),
            "setWebhook" => set_webhook(st, p),
            "deleteWebhook" => delete_webhook(st, p),
            "getWebhookInfo" => {
                let mut info = json!({
                    "url": st.webhook_url.clone().unwrap_or_default(),
                    "has_custom_certificate": false,
                    "pending_update_count": st.updates.len(),
                });
                if let Some(allowed) = &st.allowed_updates {
                    info["allowed_updates"] = json!(allowed);
                }
                if let Some((date, message)) = &st.webhook_error {
                    info["last_error_date"] = json!(date);
                    info["last_error_message"] = json!(message);
                }
                Ok(ok(info))
            }
            "sendMessage" => send_message(st, bot, p),
            "editMessageText" => edit_message_text(st, bot, p),
            "editMessageReplyMarkup" => edit_message_reply_markup(st, bot, p),
            "sendMessageDraft" => send_message_draft(st, p),
            "sendChatAction" => send_chat_action(p),
            "sendDocument" => send_file(st, bot, p, uploads, FileKind::Document),
            "sendPhoto" => send_file(st, bot, p, uploads, FileKind::Photo),
            "answerCallbackQuery" => answer_callback_query(st, p),
            "setMyCommands" => set_my_commands(st, p),
            "getMyCommands" => {
                let key = commands_key(p)?;
                Ok(ok(st.commands.get(&key).cloned().unwrap_or(json!([]))))
            }
            "deleteMyCommands" => {
                let key = commands_key(p)?;
                st.commands.remove(&key);
                Ok(ok(json!(true)))
            }
            "deleteMessage" => delete_message(st, p),
            "getFile" => get_file(st, p),
            _ => Err(ApiError::new(404, "Not Found: method not found")),
        }
    }

    /// getUpdates: confirms updates below `offset`, then answers the queued ones, waiting
    /// up to `timeout` seconds for one. A newer getUpdates ends a waiting one with 409.
    async fn get_updates(&self, p: &Map<String, Value>) -> Result<Value, ApiError> {
        let offset = int(p, "offset")?.unwrap_or(0);
        let limit = match int(p, "limit")?.unwrap_or(100) {
            limit @ 1..=100 => limit as usize,
            _ => 100,
        };
        let timeout = u64::try_from(int(p, "timeout")?.unwrap_or(0)).unwrap_or(0);
        let allowed = string_list(p, "allowed_updates")?;
        let generation = {
            let mut st = self.lock();
            if st.webhook_url.is_some() {
                return Err(ApiError::new(409, WEBHOOK_CONFLICT));
            }
            if let Some(allowed) = allowed {
                st.allowed_updates = Some(allowed);
            }
            confirm_updates(&mut st, offset);
            st.poll_generation += 1;
            st.polls_in_flight += 1;
            st.poll_generation
        };
        // Wakes an older poll (to end it) and wait_for_poll.
        self.notify();
        let _in_flight = InFlight(self.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut expired = timeout == 0;
        loop {
            let changed = self.0.changed.notified();
            {
                let mut st = self.lock();
                if st.poll_generation != generation {
                    return Err(ApiError::new(409, POLL_CONFLICT));
                }
                let batch = deliver_updates(&mut st, limit);
                if !batch.is_empty() || expired || st.shut_down {
                    return Ok(ok(Value::Array(batch)));
                }
            }
            expired = tokio::time::timeout_at(deadline, changed).await.is_err();
        }
    }

    /// `GET /file/bot<token>/<file_path>`.
    fn download(&self, rest: &str) -> Response {
        let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = percent_decode(path, false);
        let params = json!({"file_path": path});
        if percent_decode(token, false) != self.0.token {
            let error = ApiError::new(401, "Unauthorized");
            self.record(DOWNLOAD.to_string(), params, 401, error.body());
            return reply(401, error.body());
        }
        let found = {
            let st = self.lock();
            st.files
                .values()
                .find(|file| file.file_path == path)
                .map(|file| file.bytes.clone())
        };
        match found {
            Some(bytes) => {
                self.record(DOWNLOAD.to_string(), params, 200, Value::Null);
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            None => {
                let error = ApiError::new(404, "Not Found");
                self.record(DOWNLOAD.to_string(), params, 404, error.body());
                reply(404, error.body())
            }
        }
    }
}

/// Counts a getUpdates as in flight while it exists (also when the client gives up on it).
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().polls_in_flight -= 1;
        self.0.notify();
    }
}

/// Every request: `/bot<token>/<method>` or `/file/bot<token>/<file_path>`.
async fn handle(AxumState(shared): AxumState<Shared>, request: Request) -> Response {
    if shared.is_shut_down() {
        drop_connection();
    }
    let path = request.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return shared.download(rest);
    }
    let Some((token, method)) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return reply(404, ApiError::new(404, "Not Found").body());
    };
    let token = percent_decode(token, false);
    let known = METHODS.iter().find(|m| m.eq_ignore_ascii_case(method));
    let method = known.map_or_else(|| method.to_string(), |m| m.to_string());
    let (fields, mut uploads, unreadable) = match read_params(request).await {
        Ok((fields, uploads)) => (fields, uploads, None),
        Err(error) => (Map::new(), HashMap::new(), Some(error)),
    };
    let params = Value::Object(fields.clone());
    let outcome = if token != shared.0.token {
        Err(ApiError::new(401, "Unauthorized"))
    } else if known.is_none() {
        Err(ApiError::new(404, "Not Found: method not found"))
    } else if let Some(error) = unreadable {
        Err(error)
    } else if let Some(failure) = take_failure(&shared, &method) {
        if failure == Failure::DropConnection {
            shared.record(method, params, 0, Value::Null);
            drop_connection();
        }
        Err(failure.error())
    } else if method == "getUpdates" {
        shared.get_updates(&fields).await
    } else {
        shared.serve(&method, &fields, &mut uploads)
    };
    let (status, body) = match outcome {
        Ok(body) => (200, body),
        Err(error) => (error.status, error.body()),
    };
    shared.record(method, params, status, body.clone());
    reply(status, body)
}

fn take_failure(shared: &Shared, method: &str) -> Option<Failure> {
    let mut st = shared.lock();
    st.failures
        .get_mut(&method.to_ascii_lowercase())?
        .pop_front()
}

/// Ends the connection without an answer: unwinding out of the handler ends the
/// connection's task, which closes the socket. `resume_unwind` skips the panic hook, so
/// nothing is printed; the server itself goes on.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fake telegram: connection dropped on purpose"))
}

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

/// `{"ok": true, "result": result}`.
fn ok(result: Value) -> Value {
    json!({"ok": true, "result": result})
}

/// The parameters of a request, from its query string and body, and its file parts.
async fn read_params(
    request: Request,
) -> Result<(Map<String, Value>, HashMap<String, Upload>), ApiError> {
    let mut fields = Map::new();
    let mut uploads = HashMap::new();
    if let Some(query) = request.uri().query() {
        for (name, value) in decode_form(query) {
            fields.insert(name, Value::String(value));
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| bad(format!("can't parse multipart body: {rejection}")))?;
        let too_large = |error: axum::extract::multipart::MultipartError| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(413, "Request Entity Too Large")
            } else {
                bad(format!("can't parse multipart body: {}", error.body_text()))
            }
        };
        while let Some(field) = multipart.next_field().await.map_err(too_large)? {
            let name = field.name().unwrap_or_default().to_string();
            match field.file_name().map(str::to_string) {
                Some(filename) => {
                    let bytes = field.bytes().await.map_err(too_large)?.to_vec();
                    fields.insert(
                        name.clone(),
                        json!({"filename": filename, "size": bytes.len()}),
                    );
                    uploads.insert(name, Upload { filename, bytes });
                }
                None => {
                    let text = field.text().await.map_err(too_large)?;
                    fields.insert(name, Value::String(text));
                }
            }
        }
    } else {
        let body = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::new(413, "Request Entity Too Large"))?;
        if !body.is_empty() {
            if content_type.starts_with("application/json") {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(object)) => fields.extend(object),
                    Ok(_) => return Err(bad("JSON object expected as the request body")),
                    Err(error) => return Err(bad(format!("can't parse JSON: {error}"))),
                }
            } else if content_type.starts_with("application/x-www-form-urlencoded") {
                let text = String::from_utf8_lossy(&body);
                for (name, value) in decode_form(&text) {
                    fields.insert(name, Value::String(value));
                }
            } else {
                return Err(bad(format!(
                    "unsupported Content-Type \"{content_type}\" of a non-empty body"
                )));
            }
        }
    }
    for name in JSON_PARAMS {
        if let Some(Value::String(text)) = fields.get(*name)
            && let Ok(value @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(text)
        {
            fields.insert(name.to_string(), value);
        }
    }
    Ok((fields, uploads))
}

/// `a=1&b=x+y%21` → `[("a", "1"), ("b", "x y!")]`.
fn decode_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) if plus_is_space => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- parameters -------------------------------------------------------------------------

fn present<'a>(p: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    p.get(name).filter(|value| !value.is_null())
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn int(p: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    present(p, name)
        .map(|value| {
            as_int(value).ok_or_else(|| bad(format!("parameter \"{name}\" must be an Integer")))
        })
        .transpose()
}

fn string(p: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    present(p, name)
        .map(|value| match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
            _ => Err(bad(format!("parameter \"{name}\" must be a String"))),
        })
        .transpose()
}

fn boolean(p: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    present(p, name)
        .map(|value| match value {
            Value::Bool(flag) => Ok(*flag),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(bad(format!("parameter \"{name}\" must be a Boolean"))),
            },
            _ => Err(bad(format!("parameter \"{name}\" must be a Boolean"))),
        })
        .transpose()
}

/// A JSON object parameter (sent as an object, or as JSON text in a form field).
fn object(
    p: &Map<String, Value>,
    name: &str,
    refusal: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    present(p, name)
        .map(|value| match value {
            Value::Object(object) => Ok(object.clone()),
            _ => Err(bad(refusal)),
        })
        .transpose()
}

/// A JSON array of strings (e.g. allowed_updates).
fn string_list(p: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    present(p, name)
        .map(|value| {
            value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    bad(format!(
                        "can't parse \"{name}\": an Array of String expected"
                    ))
                })
        })
        .transpose()
}

fn chat_id(p: &Map<String, Value>) -> Result<i64, ApiError> {
    let value = present(p, "chat_id").ok_or_else(|| bad("chat_id is empty"))?;
    match as_int(value) {
        Some(0) | None => Err(bad("chat not found")),
        Some(id) => Ok(id),
    }
}

fn message_id(p: &Map<String, Value>) -> Result<i64, ApiError> {
    int(p, "message_id")?.ok_or_else(|| bad("message identifier is not specified"))
}

/// `parse_mode`: HTML (any case) is validated; the Markdown modes are refused because the
/// fake cannot check them; anything else is refused as Telegram refuses it.
fn parse_mode(p: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match string(p, "parse_mode")? {
        None => Ok(None),
        Some(mode) if mode.is_empty() => Ok(None),
        Some(mode) if mode.eq_ignore_ascii_case("html") => Ok(Some(mode)),
        Some(mode)
            if mode.eq_ignore_ascii_case("markdown") || mode.eq_ignore_ascii_case("markdownv2") =>
        {
            Err(bad(format!(
                "fake telegram: parse_mode \"{mode}\" is not modelled, only HTML is"
            )))
        }
        Some(_) => Err(bad("unsupported parse_mode")),
    }
}

/// Text or caption with its parse mode: the visible text, trimmed, and its entities.
fn format_text(raw: &str, parse_mode: &Option<String>) -> Result<(String, Vec<Value>), ApiError> {
    let (text, entities) = match parse_mode {
        None => (raw.to_string(), Vec::new()),
        Some(_) => parse_html(raw)
            .map_err(|reason| ApiError::new(400, format!("{CANT_PARSE_ENTITIES}{reason}")))?,
    };
    Ok(trim(&text, entities))
}

/// Trims the visible text as Telegram does, moving and clipping the entities with it.
fn trim(text: &str, entities: Vec<Entity>) -> (String, Vec<Value>) {
    let lead = utf16_len(&text[..text.len() - text.trim_start().len()]);
    let trimmed = text.trim();
    let total = utf16_len(trimmed);
    let entities = entities
        .into_iter()
        .filter_map(|mut entity| {
            let start = entity.offset.saturating_sub(lead).min(total);
            let end = (entity.offset + entity.length)
                .saturating_sub(lead)
                .min(total);
            (end > start).then(|| {
                entity.offset = start;
                entity.length = end - start;
                entity.json()
            })
        })
        .collect();
    (trimmed.to_string(), entities)
}

fn check_text(text: &str) -> Result<(), ApiError> {
    if text.is_empty() {
        Err(bad("message text is empty"))
    } else if utf16_len(text) > MAX_TEXT_LEN {
        Err(bad("message is too long"))
    } else {
        Ok(())
    }
}

/// `reply_markup`: any markup must be well-formed; the inline keyboard, if it is one, is
/// returned (an empty one as none).
fn reply_markup(p: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(markup) = object(
        p,
        "reply_markup",
        "can't parse reply keyboard markup JSON object",
    )?
    else {
        return Ok(None);
    };
    if let Some(rows) = markup.get("inline_keyboard") {
        check_inline_keyboard(rows)?;
        let empty = rows.as_array().is_some_and(Vec::is_empty);
        return Ok((!empty).then_some(Value::Object(markup)));
    }
    if let Some(rows) = markup.get("keyboard") {
        for button in buttons(rows, "keyboard", "ReplyKeyboardMarkup")? {
            let text = button.as_str().or_else(|| button["text"].as_str());
            if text.is_none_or(str::is_empty) {
                return Err(bad("can't parse keyboard button: Text must be non-empty"));
            }
        }
        return Ok(None);
    }
    if markup.get("remove_keyboard") == Some(&json!(true))
        || markup.get("force_reply") == Some(&json!(true))
    {
        return Ok(None);
    }
    Err(bad("can't parse reply keyboard markup JSON object"))
}

/// Where the edit methods accept only an inline keyboard.
fn inline_markup(p: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    if let Some(markup) = present(p, "reply_markup")
        && markup.get("inline_keyboard").is_none()
    {
        return Err(bad("inline keyboard expected"));
    }
    reply_markup(p)
}

/// The actions a button of an inline keyboard can have (exactly one).
const BUTTON_ACTIONS: &[&str] = &[
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
];

/// The buttons of a keyboard's `field` (rows of buttons), refused as Telegram does when it
/// is not an array of arrays.
fn buttons<'a>(
    rows: &'a Value,
    field: &str,
    markup: &str,
) -> Result<impl Iterator<Item = &'a Value>, ApiError> {
    let rows = rows
        .as_array()
        .filter(|rows| rows.iter().all(Value::is_array))
        .ok_or_else(|| {
            bad(format!(
                "field \"{field}\" of the {markup} must be an Array of Arrays"
            ))
        })?;
    Ok(rows
        .iter()
        .flat_map(|row| row.as_array().into_iter().flatten()))
}

fn check_inline_keyboard(rows: &Value) -> Result<(), ApiError> {
    for button in buttons(rows, "inline_keyboard", "InlineKeyboardMarkup")? {
        let Some(button) = button.as_object() else {
            return Err(bad(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object",
            ));
        };
        match button.get("text") {
            Some(Value::String(text)) if !text.is_empty() => {}
            Some(Value::String(_)) => return Err(bad("BUTTON_TEXT_INVALID")),
            _ => {
                return Err(bad(
                    "can't parse inline keyboard button: Field \"text\" must be of type String",
                ));
            }
        }
        let actions = BUTTON_ACTIONS
            .iter()
            .filter(|action| button.contains_key(**action))
            .count();
        if actions == 0 {
            return Err(bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
            ));
        }
        if actions > 1 {
            return Err(bad(
                "can't parse inline keyboard button: a button must have exactly one of the optional fields",
            ));
        }
        if let Some(data) = button.get("callback_data") {
            let len = data.as_str().map_or(0, str::len);
            if len == 0 || len > MAX_CALLBACK_DATA_LEN {
                return Err(bad("BUTTON_DATA_INVALID"));
            }
        }
        if let Some(url) = button.get("url") {
            let url = url.as_str().unwrap_or("");
            let scheme_ok = ["http://", "https://", "tg://"]
                .iter()
                .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme));
            if !scheme_ok {
                return Err(bad("BUTTON_URL_INVALID"));
            }
        }
    }
    Ok(())
}

/// The message a send replies to (`reply_parameters`, or the older `reply_to_message_id`),
/// which must exist unless `allow_sending_without_reply`.
fn reply_target(st: &State, chat_id: i64, p: &Map<String, Value>) -> Result<Option<i64>, ApiError> {
    let refusal = "can't parse reply parameters JSON object";
    let (target_chat, target, lenient) =
        if let Some(parameters) = object(p, "reply_parameters", refusal)? {
            let target = parameters
                .get("message_id")
                .and_then(as_int)
                .ok_or_else(|| bad(refusal))?;
            let target_chat = match parameters.get("chat_id").filter(|v| !v.is_null()) {
                None => chat_id,
                Some(value) => as_int(value).ok_or_else(|| bad("chat not found"))?,
            };
            let lenient = parameters.get("allow_sending_without_reply") == Some(&json!(true));
            (target_chat, target, lenient)
        } else if let Some(target) = int(p, "reply_to_message_id")? {
            let lenient = boolean(p, "allow_sending_without_reply")?.unwrap_or(false);
            (chat_id, target, lenient)
        } else {
            return Ok(None);
        };
    let exists = st.chats.get(&target_chat).is_some_and(|chat| {
        chat.messages.contains_key(&target) || chat.user_messages.contains(&target)
    });
    match (exists, lenient) {
        (true, _) => Ok(Some(target)),
        (false, true) => Ok(None),
        (false, false) => Err(bad("message to be replied not found")),
    }
}

/// The optional parameters every send accepts, checked for their types.
fn check_send_options(p: &Map<String, Value>) -> Result<(), ApiError> {
    object(
        p,
        "link_preview_options",
        "can't parse link preview options JSON object",
    )?;
    boolean(p, "disable_notification")?;
    boolean(p, "protect_content")?;
    int(p, "message_thread_id")?;
    Ok(())
}

// ---- methods ----------------------------------------------------------------------------

fn set_webhook(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let url = string(p, "url")?.unwrap_or_default();
    if !url.is_empty() && !url.starts_with("https://") {
        return Err(bad(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }
    let secret = string(p, "secret_token")?;
    if let Some(secret) = &secret
        && (secret.is_empty()
            || secret.len() > 256
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(bad(
            "Bad Request: secret token contains unallowed characters",
        ));
    }
    if let Some(allowed) = string_list(p, "allowed_updates")? {
        st.allowed_updates = Some(allowed);
    }
    if boolean(p, "drop_pending_updates")?.unwrap_or(false) {
        st.updates.clear();
    }
    let description = if url.is_empty() {
        st.webhook_url = None;
        st.webhook_secret = None;
        "Webhook was deleted"
    } else {
        st.webhook_url = Some(url);
        st.webhook_secret = secret;
        "Webhook was set"
    };
    Ok(json!({"ok": true, "result": true, "description": description}))
}

fn delete_webhook(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    if boolean(p, "drop_pending_updates")?.unwrap_or(false) {
        st.updates.clear();
    }
    st.webhook_secret = None;
    let description = match st.webhook_url.take() {
        Some(_) => "Webhook was deleted",
        None => "Webhook is already deleted",
    };
    Ok(json!({"ok": true, "result": true, "description": description}))
}

fn send_message(st: &mut State, bot: i64, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let chat_id = chat_id(p)?;
    let html = string(p, "text")?.unwrap_or_default();
    let parse_mode = parse_mode(p)?;
    let (text, entities) = format_text(&html, &parse_mode)?;
    check_text(&text)?;
    let reply_markup = reply_markup(p)?;
    let reply_to_message_id = reply_target(st, chat_id, p)?;
    check_send_options(p)?;
    let message = Message {
        chat_id,
        message_id: NEXT_MESSAGE_ID.fetch_add(1, Ordering::Relaxed),
        text,
        html,
        parse_mode,
        entities,
        reply_markup,
        reply_to_message_id,
        document: None,
        photo: None,
        date: unix_now(),
        edit_date: None,
    };
    Ok(ok(store_message(st, bot, message)))
}

/// Adds a message of the bot to its chat and returns its JSON. The chat's draft, if any,
/// is erased by it, as clients do, and its end recorded.
fn store_message(st: &mut State, bot: i64, message: Message) -> Value {
    let json = message_json(bot, &message);
    let chat = st.chats.entry(message.chat_id).or_default();
    if let Some(draft) = chat.draft.take() {
        chat.draft_ends.push(DraftEnd {
            draft_id: draft.draft_id,
            draft_text: draft.text,
            how: DraftEndKind::Replaced {
                message_id: message.message_id,
                message_text: message.text.clone(),
            },
        });
    }
    chat.messages.insert(message.message_id, message);
    json
}

fn edited_message<'a>(
    st: &'a mut State,
    p: &Map<String, Value>,
) -> Result<&'a mut Message, ApiError> {
    if present(p, "inline_message_id").is_some() {
        return Err(bad("fake telegram: inline messages are not modelled"));
    }
    let chat_id = chat_id(p)?;
    let message_id = message_id(p)?;
    st.chats
        .get_mut(&chat_id)
        .and_then(|chat| chat.messages.get_mut(&message_id))
        .ok_or_else(|| bad("message to edit not found"))
}

fn edit_message_text(st: &mut State, bot: i64, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let html = string(p, "text")?.unwrap_or_default();
    let parse_mode = parse_mode(p)?;
    let (text, entities) = format_text(&html, &parse_mode)?;
    check_text(&text)?;
    let reply_markup = inline_markup(p)?;
    object(
        p,
        "link_preview_options",
        "can't parse link preview options JSON object",
    )?;
    let message = edited_message(st, p)?;
    if message.document.is_some() || message.photo.is_some() {
        return Err(bad("there is no text in the message to edit"));
    }
    if message.text == text && message.entities == entities && message.reply_markup == reply_markup
    {
        return Err(ApiError::new(400, NOT_MODIFIED));
    }
    message.text = text;
    message.html = html;
    message.parse_mode = parse_mode;
    message.entities = entities;
    message.reply_markup = reply_markup;
    message.edit_date = Some(unix_now());
    Ok(ok(message_json(bot, message)))
}

fn edit_message_reply_markup(
    st: &mut State,
    bot: i64,
    p: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let reply_markup = inline_markup(p)?;
    let message = edited_message(st, p)?;
    if message.reply_markup == reply_markup {
        return Err(ApiError::new(400, NOT_MODIFIED));
    }
    message.reply_markup = reply_markup;
    message.edit_date = Some(unix_now());
    Ok(ok(message_json(bot, message)))
}

fn send_message_draft(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    if st.drafts_refused {
        return Err(ApiError::new(400, DRAFTS_UNAVAILABLE));
    }
    let chat_id = chat_id(p)?;
    if chat_id < 0 {
        return Err(bad("message drafts can be sent only to private chats"));
    }
    let draft_id = int(p, "draft_id")?.ok_or_else(|| bad("draft_id must be non-zero"))?;
    if draft_id == 0 {
        return Err(bad("draft_id must be non-zero"));
    }
    let html = string(p, "text")?.unwrap_or_default();
    let parse_mode = parse_mode(p)?;
    let (text, _) = format_text(&html, &parse_mode)?;
    if utf16_len(&text) > MAX_TEXT_LEN {
        return Err(bad("message is too long"));
    }
    let can_stop = boolean(p, "can_stop")?.unwrap_or(false);
    boolean(p, "keep_on_stop")?;
    let message_thread_id = int(p, "message_thread_id")?;
    // A draft replacing a draft is no end: the bot goes on in the new one.
    st.chats.entry(chat_id).or_default().draft = Some(Draft {
        draft_id,
        text,
        html,
        parse_mode,
        can_stop,
        message_thread_id,
    });
    Ok(ok(json!(true)))
}

fn send_chat_action(p: &Map<String, Value>) -> Result<Value, ApiError> {
    chat_id(p)?;
    let action = string(p, "action")?.unwrap_or_default();
    if !CHAT_ACTIONS.contains(&action.as_str()) {
        return Err(bad("wrong parameter action in request"));
    }
    int(p, "message_thread_id")?;
    Ok(ok(json!(true)))
}

#[derive(Clone, Copy, PartialEq)]
enum FileKind {
    Document,
    Photo,
}

fn send_file(
    st: &mut State,
    bot: i64,
    p: &Map<String, Value>,
    uploads: &mut HashMap<String, Upload>,
    kind: FileKind,
) -> Result<Value, ApiError> {
    let chat_id = chat_id(p)?;
    let field = match kind {
        FileKind::Document => "document",
        FileKind::Photo => "photo",
    };
    let (file_name, bytes, known_id) = match uploads.remove(field) {
        Some(upload) => (upload.filename, upload.bytes, None),
        None => {
            let reference = string(p, field)?
                .ok_or_else(|| bad(format!("there is no {field} in the request")))?;
            if let Some(part) = reference.strip_prefix("attach://") {
                let upload = uploads
                    .remove(part)
                    .ok_or_else(|| bad("wrong file identifier/HTTP URL specified"))?;
                (upload.filename, upload.bytes, None)
            } else if let Some(file) = st.files.get(&reference) {
                (file.file_name.clone(), file.bytes.clone(), Some(reference))
            } else if reference.starts_with("http://") || reference.starts_with("https://") {
                return Err(bad("fake telegram: sending a file by URL is not modelled"));
            } else {
                return Err(bad("wrong file identifier/HTTP URL specified"));
            }
        }
    };
    if bytes.is_empty() {
        return Err(bad("file must be non-empty"));
    }
    match kind {
        FileKind::Document if bytes.len() > MAX_DOCUMENT_SIZE => {
            return Err(ApiError::new(413, "Request Entity Too Large"));
        }
        FileKind::Photo if bytes.len() > MAX_PHOTO_SIZE => {
            return Err(bad("photo is too big"));
        }
        FileKind::Photo if image_size(&bytes).is_none() => {
            return Err(bad("IMAGE_PROCESS_FAILED"));
        }
        _ => {}
    }
    let html = string(p, "caption")?.unwrap_or_default();
    let parse_mode = parse_mode(p)?;
    let (text, entities) = format_text(&html, &parse_mode)?;
    if utf16_len(&text) > MAX_CAPTION_LEN {
        return Err(bad("message caption is too long"));
    }
    let reply_markup = reply_markup(p)?;
    let reply_to_message_id = reply_target(st, chat_id, p)?;
    check_send_options(p)?;
    let file_id = known_id.unwrap_or_else(|| {
        st.next_file += 1;
        let n = st.next_file;
        let (prefix, file_path) = match kind {
            FileKind::Document => (
                "BQACAgIAAx0-fake-",
                format!("documents/file_{n}{}", extension(&file_name)),
            ),
            FileKind::Photo => ("AgACAgIAAx0-fake-", format!("photos/file_{n}.jpg")),
        };
        let file_id = format!("{prefix}{n}");
        st.files.insert(
            file_id.clone(),
            StoredFile {
                file_path,
                file_name: file_name.clone(),
                bytes: bytes.clone(),
            },
        );
        file_id
    });
    let sent = SentFile {
        file_id,
        file_name,
        bytes,
    };
    let (document, photo) = match kind {
        FileKind::Document => (Some(sent), None),
        FileKind::Photo => (None, Some(sent)),
    };
    let message = Message {
        chat_id,
        message_id: NEXT_MESSAGE_ID.fetch_add(1, Ordering::Relaxed),
        text,
        html,
        parse_mode,
        entities,
        reply_markup,
        reply_to_message_id,
        document,
        photo,
        date: unix_now(),
        edit_date: None,
    };
    Ok(ok(store_message(st, bot, message)))
}

fn extension(file_name: &str) -> String {
    match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => format!(".{ext}"),
        _ => String::new(),
    }
}

/// The width and height of a PNG or GIF, `(0, 0)` for a JPEG or WebP (accepted, size not
/// read), `None` if the bytes are no image Telegram would take as a photo.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((be(16)?, be(20)?))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some((le16(6)?, le16(8)?))
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff])
        || (bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"))
    {
        Some((0, 0))
    } else {
        None
    }
}

fn answer_callback_query(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let invalid = "query is too old and response timeout expired or query ID is invalid";
    let id = string(p, "callback_query_id")?.ok_or_else(|| bad(invalid))?;
    if !st.delivered_callbacks.contains(&id) || st.answered_callbacks.contains(&id) {
        return Err(bad(invalid));
    }
    let text = string(p, "text")?.unwrap_or_default();
    if text.chars().count() > MAX_CALLBACK_TEXT_LEN {
        return Err(bad("MESSAGE_TOO_LONG"));
    }
    boolean(p, "show_alert")?;
    int(p, "cache_time")?;
    st.answered_callbacks.insert(id);
    Ok(ok(json!(true)))
}

/// The key of a command list: the scope (default `{"type":"default"}`) and language.
fn commands_key(p: &Map<String, Value>) -> Result<(String, String), ApiError> {
    const SCOPES: &[&str] = &[
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    ];
    let scope = object(p, "scope", "can't parse BotCommandScope JSON object")?
        .map_or_else(|| json!({"type": "default"}), Value::Object);
    if !scope["type"].as_str().is_some_and(|t| SCOPES.contains(&t)) {
        return Err(bad("unsupported bot command scope type"));
    }
    let language = string(p, "language_code")?.unwrap_or_default();
    let valid_language = language.is_empty()
        || (language.len() == 2 && language.bytes().all(|b| b.is_ascii_lowercase()));
    if !valid_language {
        return Err(bad("invalid language code specified"));
    }
    Ok((scope.to_string(), language))
}

fn set_my_commands(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let key = commands_key(p)?;
    let commands = present(p, "commands")
        .ok_or_else(|| bad("parameter \"commands\" is required"))?
        .as_array()
        .ok_or_else(|| bad("can't parse commands: an Array of BotCommand expected"))?;
    if commands.len() > 100 {
        return Err(bad(format!(
            "too many commands: {} given, at most 100 are allowed",
            commands.len()
        )));
    }
    for (index, command) in commands.iter().enumerate() {
        let number = index + 1;
        let name = command["command"].as_str().ok_or_else(|| {
            bad(format!(
                "can't parse BotCommand #{number}: field \"command\" must be a String"
            ))
        })?;
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(bad(format!(
                "BOT_COMMAND_INVALID: command #{number} \"{name}\" must be 1-32 characters of a-z, 0-9 and _"
            )));
        }
        let description = command["description"].as_str().ok_or_else(|| {
            bad(format!(
                "can't parse BotCommand #{number}: field \"description\" must be a String"
            ))
        })?;
        let len = description.trim().chars().count();
        if !(1..=256).contains(&len) {
            return Err(bad(format!(
                "BOT_COMMAND_DESCRIPTION_INVALID: the description of command \"{name}\" must be 1-256 characters, it has {len}"
            )));
        }
    }
    st.commands.insert(key, Value::Array(commands.clone()));
    Ok(ok(json!(true)))
}

fn delete_message(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let chat_id = chat_id(p)?;
    let message_id = message_id(p)?;
    let deleted = st.chats.get_mut(&chat_id).is_some_and(|chat| {
        chat.messages.remove(&message_id).is_some() || chat.user_messages.remove(&message_id)
    });
    if !deleted {
        return Err(bad("message to delete not found"));
    }
    Ok(ok(json!(true)))
}

fn get_file(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let file_id = string(p, "file_id")?.unwrap_or_default();
    let file = st
        .files
        .get(&file_id)
        .ok_or_else(|| bad("invalid file_id"))?;
    Ok(ok(json!({
        "file_id": file_id,
        "file_unique_id": file_unique_id(&file_id),
        "file_size": file.bytes.len(),
        "file_path": file.file_path,
    })))
}

// ---- updates ----------------------------------------------------------------------------

fn update_id_of(update: &Value) -> i64 {
    update["update_id"].as_i64().unwrap_or(0)
}

/// The kind of an update: its one field besides `update_id`.
fn update_type(update: &Value) -> &str {
    update
        .as_object()
        .and_then(|fields| fields.keys().find(|key| *key != "update_id"))
        .map_or("", String::as_str)
}

/// Queues `update` and returns its `update_id`: the work of [`FakeTelegram::push_update`],
/// under a lock the caller already holds so a change and its update are one step.
fn queue_update(st: &mut State, bot_id: i64, mut update: Value) -> i64 {
    let update_id = update
        .get("update_id")
        .and_then(Value::as_i64)
        .unwrap_or(st.next_update_id);
    st.next_update_id = st.next_update_id.max(update_id + 1);
    update["update_id"] = json!(update_id);
    for kind in [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
    ] {
        let message = &update[kind];
        if let (Some(chat_id), Some(message_id)) = (
            message["chat"]["id"].as_i64(),
            message["message_id"].as_i64(),
        ) {
            let chat = st.chats.entry(chat_id).or_default();
            chat.user_messages.insert(message_id);
        }
    }
    if let Some(query) = update.get_mut("callback_query") {
        let target = &query["message"];
        if let (Some(chat_id), Some(message_id)) =
            (target["chat"]["id"].as_i64(), target["message_id"].as_i64())
        {
            let current = st
                .chats
                .get(&chat_id)
                .and_then(|chat| chat.messages.get(&message_id));
            query["message"] = match current {
                Some(message) => message_json(bot_id, message),
                None => {
                    json!({"chat": chat_json(chat_id), "message_id": message_id, "date": 0})
                }
            };
        }
    }
    let at = st
        .updates
        .iter()
        .position(|queued| update_id_of(queued) > update_id)
        .unwrap_or(st.updates.len());
    st.updates.insert(at, update);
    update_id
}

/// Takes the draft shown in `chat_id` if it has a Stop button, recording its end.
fn stop_draft(st: &mut State, chat_id: i64) -> Option<Draft> {
    let chat = st.chats.get_mut(&chat_id)?;
    if !chat.draft.as_ref().is_some_and(|draft| draft.can_stop) {
        return None;
    }
    let draft = chat.draft.take()?;
    chat.draft_ends.push(DraftEnd {
        draft_id: draft.draft_id,
        draft_text: draft.text.clone(),
        how: DraftEndKind::Stopped,
    });
    Some(draft)
}

/// An offset confirms every update below it; a negative one keeps only the last `-offset`.
fn confirm_updates(st: &mut State, offset: i64) {
    if offset > 0 {
        st.updates.retain(|update| update_id_of(update) >= offset);
    } else if offset < 0 {
        let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
        while st.updates.len() > keep {
            st.updates.pop_front();
        }
    }
}

/// The first `limit` queued updates of the allowed types; queued updates of other types
/// are dropped (Telegram never queues them). Marks callback queries delivered.
fn deliver_updates(st: &mut State, limit: usize) -> Vec<Value> {
    let allowed = st.allowed_updates.clone().filter(|list| !list.is_empty());
    st.updates.retain(|update| {
        let kind = update_type(update);
        match &allowed {
            Some(list) => list.iter().any(|allowed| allowed == kind),
            None => !NOT_DELIVERED_BY_DEFAULT.contains(&kind),
        }
    });
    let batch: Vec<Value> = st.updates.iter().take(limit).cloned().collect();
    for update in &batch {
        if let Some(id) = update["callback_query"]["id"].as_str()
            && !st.delivered_callbacks.iter().any(|known| known == id)
        {
            st.delivered_callbacks.push(id.to_string());
        }
    }
    batch
}

// ---- JSON of Telegram objects -----------------------------------------------------------

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn user_json(user_id: i64) -> Value {
    json!({
        "id": user_id,
        "is_bot": false,
        "first_name": "Tester",
        "username": format!("tester{user_id}"),
        "language_code": "en",
    })
}

fn chat_json(chat_id: i64) -> Value {
    if chat_id > 0 {
        json!({"id": chat_id, "first_name": "Tester", "username": format!("tester{chat_id}"), "type": "private"})
    } else if chat_id <= -1_000_000_000_000 {
        json!({"id": chat_id, "title": "Test supergroup", "type": "supergroup"})
    } else {
        json!({"id": chat_id, "title": "Test group", "type": "group"})
    }
}

fn user_message(user_id: i64, chat: Value, text: &str) -> Value {
    let mut message = json!({
        "message_id": NEXT_MESSAGE_ID.fetch_add(1, Ordering::Relaxed),
        "from": user_json(user_id),
        "chat": chat,
        "date": unix_now(),
        "text": text,
    });
    if let Some(length) = command_len(text) {
        message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
    }
    message
}

/// The length of the `/command` or `/command@bot` a text starts with, if it starts with one.
fn command_len(text: &str) -> Option<usize> {
    let word = |s: &str| {
        s.bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count()
    };
    let name = word(text.strip_prefix('/')?);
    if !(1..=32).contains(&name) {
        return None;
    }
    let mut end = 1 + name;
    if let Some(bot) = text[end..].strip_prefix('@') {
        let bot = word(bot);
        if bot > 0 {
            end += 1 + bot;
        }
    }
    Some(end)
}

fn message_json(bot: i64, m: &Message) -> Value {
    let mut json = json!({
        "message_id": m.message_id,
        "from": {"id": bot, "is_bot": true, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME},
        "chat": chat_json(m.chat_id),
        "date": m.date,
    });
    let has_file = m.document.is_some() || m.photo.is_some();
    let (text_key, entities_key) = if has_file {
        ("caption", "caption_entities")
    } else {
        ("text", "entities")
    };
    if !m.text.is_empty() {
        json[text_key] = json!(m.text);
    }
    if !m.entities.is_empty() {
        json[entities_key] = json!(m.entities);
    }
    if let Some(document) = &m.document {
        json["document"] = json!({
            "file_name": document.file_name,
            "mime_type": mime_type(&document.file_name),
            "file_id": document.file_id,
            "file_unique_id": file_unique_id(&document.file_id),
            "file_size": document.bytes.len(),
        });
    }
    if let Some(photo) = &m.photo {
        let (width, height) = image_size(&photo.bytes).unwrap_or((0, 0));
        json["photo"] = json!([{
            "file_id": photo.file_id,
            "file_unique_id": file_unique_id(&photo.file_id),
            "file_size": photo.bytes.len(),
            "width": width,
            "height": height,
        }]);
    }
    if let Some(target) = m.reply_to_message_id {
        json["reply_to_message"] =
            json!({"message_id": target, "chat": chat_json(m.chat_id), "date": 0});
    }
    if let Some(markup) = &m.reply_markup {
        json["reply_markup"] = markup.clone();
    }
    if let Some(edit_date) = m.edit_date {
        json["edit_date"] = json!(edit_date);
    }
    json
}

/// A file's `file_unique_id`: stable for a `file_id`.
fn file_unique_id(file_id: &str) -> String {
    format!("AQADuniq-{file_id}")
}

fn mime_type(file_name: &str) -> &'static str {
    match extension(file_name).to_ascii_lowercase().as_str() {
        ".txt" | ".log" | ".md" => "text/plain",
        ".json" => "application/json",
        ".pdf" => "application/pdf",
        ".zip" => "application/zip",
        ".html" => "text/html",
        ".csv" => "text/csv",
        ".png" => "image/png",
        ".jpg" | ".jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

// ---- Telegram HTML ----------------------------------------------------------------------

/// A formatting entity: offsets and lengths in UTF-16 code units of the visible text.
#[derive(Debug, Clone)]
struct Entity {
    kind: &'static str,
    offset: usize,
    length: usize,
    /// `("url", ..)`, `("language", ..)` or `("custom_emoji_id", ..)`.
    extra: Option<(&'static str, String)>,
}

impl Entity {
    /// Telegram's order among entities with the same span (tdlib's `get_type_priority`):
    /// the one that would enclose the others first.
    fn priority(&self) -> u8 {
        match (self.kind, &self.extra) {
            ("blockquote" | "expandable_blockquote", _) => 0,
            ("pre", Some(_)) => 10,
            ("pre", None) => 11,
            ("code", _) => 20,
            ("text_link", _) => 49,
            ("bold", _) => 90,
            ("italic", _) => 91,
            ("underline", _) => 92,
            ("strikethrough", _) => 93,
            ("spoiler", _) => 94,
            _ => 99,
        }
    }

    fn json(&self) -> Value {
        let mut json = json!({"type": self.kind, "offset": self.offset, "length": self.length});
        if let Some((key, value)) = &self.extra {
            json[*key] = json!(value);
        }
        json
    }
}

/// A start tag waiting for its end tag.
struct OpenTag {
    name: String,
    /// href, custom emoji id, or (on a pre) the language of the code inside.
    argument: Option<String>,
    expandable: bool,
    /// On a `pre`: the `code` with a language inside it (start, end, language).
    code: Option<(usize, usize, String)>,
    /// Where its content starts, in UTF-16 units and in bytes of the visible text.
    start: usize,
    text_start: usize,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Parses Telegram HTML into the visible text and its entities (see [`parse_telegram_html`]).
/// The structure and wording follow Telegram's own parser (tdlib's `parse_html`).
fn parse_html(html: &str) -> Result<(String, Vec<Entity>), String> {
    let bytes = html.as_bytes();
    let mut text = String::with_capacity(html.len());
    let mut units = 0;
    let mut open: Vec<OpenTag> = Vec::new();
    let mut entities = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                let (ch, next) = decode_entity(html, i)?;
                text.push(ch);
                units += ch.len_utf16();
                i = next;
            }
            b'<' if bytes.get(i + 1) == Some(&b'/') => {
                let (tag, next) = end_tag(html, i, &mut open)?;
                close(tag, &text, units, &mut open, &mut entities);
                i = next;
            }
            b'<' => {
                let (tag, next) = start_tag(html, i, &open, &text, units)?;
                open.push(tag);
                i = next;
            }
            _ => {
                let ch = html[i..].chars().next().expect("i is on a char boundary");
                text.push(ch);
                units += ch.len_utf16();
                i += ch.len_utf8();
            }
        }
    }
    if let Some(tag) = open.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            tag.name
        ));
    }
    entities.sort_by_key(|entity: &Entity| {
        let outer_first = std::cmp::Reverse(entity.length);
        (entity.offset, outer_first, entity.priority())
    });
    Ok((text, entities))
}

/// The character of the entity at `at` (`&lt;`, `&#65;`, `&#x41;`) and where it ends.
/// As in Telegram the `;` may be left out (`&lt` is `<`); unlike Telegram, a `&` that
/// starts no entity is an error rather than a literal `&`, as the Bot API documentation
/// requires.
fn decode_entity(html: &str, at: usize) -> Result<(char, usize), String> {
    let rest = &html[at + 1..];
    let unescaped = || format!("Unescaped \"&\" at byte offset {at}: write it as \"&amp;\"");
    let end = |len: usize| at + 1 + len + usize::from(rest.as_bytes().get(len) == Some(&b';'));
    if let Some(number) = rest.strip_prefix('#') {
        let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (number, 10, 1),
        };
        let len = digits.chars().take_while(|c| c.is_digit(radix)).count();
        if len == 0 {
            return Err(unescaped());
        }
        let code = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
        if (0xd800..=0xdfff).contains(&code) {
            return Err(
                "Text contains invalid Unicode characters after decoding HTML entities, \
                check for unmatched surrogate code units"
                    .to_string(),
            );
        }
        let ch = char::from_u32(code)
            .filter(|ch| *ch != '\0')
            .ok_or_else(|| format!("Invalid numeric character reference at byte offset {at}"))?;
        Ok((ch, end(prefix + len)))
    } else {
        let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let ch = match &rest[..len] {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            name if !name.is_empty() && rest.as_bytes().get(len) == Some(&b';') => {
                return Err(format!(
                    "Unsupported HTML entity \"&{name};\" at byte offset {at}: only &lt; &gt; \
                    &amp; &quot; and numeric ones are supported"
                ));
            }
            _ => return Err(unescaped()),
        };
        Ok((ch, end(len)))
    }
}

/// The start tag at `begin` and where it ends.
fn start_tag(
    html: &str,
    begin: usize,
    open: &[OpenTag],
    text: &str,
    units: usize,
) -> Result<(OpenTag, usize), String> {
    let bytes = html.as_bytes();
    let unclosed = || format!("Unclosed start tag at byte offset {begin}");
    let mut i = begin + 1;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
        i += 1;
    }
    if i == bytes.len() {
        return Err(unclosed());
    }
    let name = html[begin + 1..i].to_ascii_lowercase();
    if !HTML_TAGS.contains(&name.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{name}\" at byte offset {begin}"
        ));
    }
    let mut href = None;
    let mut class = None;
    let mut emoji_id = None;
    let mut expandable = false;
    loop {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        match bytes.get(i) {
            None => return Err(unclosed()),
            Some(b'>') => {
                i += 1;
                break;
            }
            Some(_) => {}
        }
        let attribute_start = i;
        while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'=' && bytes[i] != b'>' {
            i += 1;
        }
        let attribute = &html[attribute_start..i];
        if attribute.is_empty() {
            return Err(format!(
                "Empty attribute name in the tag \"{name}\" at byte offset {begin}"
            ));
        }
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            // An attribute without a value: ignored, except blockquote's `expandable`.
            if name == "blockquote" && attribute == "expandable" {
                expandable = true;
            }
            continue;
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let value = match bytes.get(i) {
            None => {
                return Err(format!(
                    "Unclosed start tag \"{name}\" at byte offset {begin}"
                ));
            }
            Some(&quote @ (b'"' | b'\'')) => {
                i += 1;
                let mut value = String::new();
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'&' {
                        let (ch, next) = decode_entity(html, i)?;
                        value.push(ch);
                        i = next;
                    } else {
                        let ch = html[i..].chars().next().expect("i is on a char boundary");
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
                if i == bytes.len() {
                    return Err(unclosed());
                }
                i += 1;
                value
            }
            Some(_) => {
                let token_start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'-')
                {
                    i += 1;
                }
                match bytes.get(i) {
                    None => return Err(unclosed()),
                    Some(&b) if !is_space(b) && b != b'>' => {
                        return Err(format!(
                            "Unexpected end of name token at byte offset {token_start}"
                        ));
                    }
                    Some(_) => html[token_start..i].to_ascii_lowercase(),
                }
            }
        };
        match (name.as_str(), attribute) {
            ("a", "href") => href = Some(value),
            ("code" | "span", "class") => class = Some(value),
            ("tg-emoji", "emoji-id") => emoji_id = Some(value),
            ("blockquote", "expandable") => expandable = true,
            // Telegram ignores every other attribute.
            _ => {}
        }
    }
    let argument = match name.as_str() {
        "a" => href,
        "span" => {
            if class.as_deref() != Some("tg-spoiler") {
                return Err(format!(
                    "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                ));
            }
            None
        }
        "code" => {
            let language = class
                .and_then(|class| class.strip_prefix("language-").map(str::to_string))
                .filter(|language| !language.is_empty());
            if language.is_some() && open.last().is_none_or(|parent| parent.name != "pre") {
                return Err(format!(
                    "Tag \"code\" with class \"language-…\" must be directly inside \"pre\" at byte offset {begin}"
                ));
            }
            language
        }
        "tg-emoji" => {
            let valid = emoji_id
                .as_deref()
                .and_then(|id| id.parse::<i64>().ok())
                .is_some_and(|id| id != 0);
            if !valid {
                return Err(format!(
                    "Invalid custom emoji identifier specified at byte offset {begin}"
                ));
            }
            emoji_id
        }
        _ => None,
    };
    let tag = OpenTag {
        name,
        argument,
        expandable,
        code: None,
        start: units,
        text_start: text.len(),
    };
    Ok((tag, i))
}

/// Matches the end tag at `begin` with the innermost open tag, which it removes and
/// returns with where the end tag ends.
fn end_tag(html: &str, begin: usize, open: &mut Vec<OpenTag>) -> Result<(OpenTag, usize), String> {
    let bytes = html.as_bytes();
    if open.is_empty() {
        return Err(format!("Unexpected end tag at byte offset {begin}"));
    }
    let mut i = begin + 2;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
        i += 1;
    }
    let name = &html[begin + 2..i];
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    if bytes.get(i) != Some(&b'>') {
        return Err(format!("Unclosed end tag at byte offset {begin}"));
    }
    let tag = open.pop().expect("checked above");
    if !name.is_empty() && name != tag.name {
        return Err(format!(
            "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{name}>\"",
            tag.name
        ));
    }
    Ok((tag, i + 1))
}

/// Adds the entity a closed tag makes: none for empty content or for an `a` without
/// `href` whose text is no link; a `code` with a language gives it to the `pre` it
/// fills exactly (else both stay, without the language), as Telegram does.
fn close(tag: OpenTag, text: &str, units: usize, open: &mut [OpenTag], entities: &mut Vec<Entity>) {
    let length = units - tag.start;
    let mut add = |kind, offset, length, extra| {
        if length > 0 {
            entities.push(Entity {
                kind,
                offset,
                length,
                extra,
            });
        }
    };
    let extra = match tag.name.as_str() {
        "a" => {
            let url = match tag.argument {
                Some(href) => href,
                None => {
                    let inner = &text[tag.text_start..];
                    if inner.is_empty() || inner.chars().any(char::is_whitespace) {
                        return;
                    }
                    inner.to_string()
                }
            };
            Some(("url", url))
        }
        "code" => {
            if let Some(language) = tag.argument {
                if let Some(pre) = open.last_mut() {
                    pre.code = Some((tag.start, units, language));
                }
                return;
            }
            None
        }
        "pre" => match tag.code {
            Some((start, end, language)) if start == tag.start && end == units => {
                Some(("language", language))
            }
            Some((start, end, _)) => {
                add("code", start, end - start, None);
                None
            }
            None => None,
        },
        "tg-emoji" => tag.argument.map(|id| ("custom_emoji_id", id)),
        _ => None,
    };
    let kind = match tag.name.as_str() {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "span" | "tg-spoiler" => "spoiler",
        "a" => "text_link",
        "code" => "code",
        "pre" => "pre",
        "blockquote" if tag.expandable => "expandable_blockquote",
        "blockquote" => "blockquote",
        "tg-emoji" => "custom_emoji",
        _ => return,
    };
    add(kind, tag.start, length, extra);
}
