//! One outbox per chat: what the bot posts to a chat goes out in order, paced within
//! Telegram's limits, and retried until it gets through.
//!
//! - Order and pacing: each chat has a lane (a fair async lock); a send waits its turn and
//!   then until `interval` has passed since the chat's previous send (Telegram asks for
//!   about one message per second per chat). All chats together stay under about 30
//!   messages a second, in bursts of at most `GLOBAL_BURST`.
//! - `429 Too Many Requests`: wait the `retry_after` Telegram names, then send again.
//! - Network errors and 5xx: retried with doubling backoff, [`NETWORK_ATTEMPTS`] times.
//! - "message is not modified" counts as success (the text is already what we wanted).
//! - Other refusals return to the caller, which decides (e.g. plain text after a
//!   formatting refusal).
//!
//! Chat actions (`typing`) are not messages: they skip the lane and are never retried.
//!
//! The draft rule lives here, where every post passes: while a chat has a live draft
//! ([`Outbox::attach_draft`]), a new message or document first posts the draft's content
//! as a message of its own (see [`super::draft`]), so a draft is never erased.
//! Draft updates share the lane and its pacing but are never retried: the next update
//! carries newer content anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::api::{ApiError, BotApi, SentMessage, Text};
use super::draft::{DraftUpdate, LiveDraft};

/// How often a network failure is tried before it is reported.
pub const NETWORK_ATTEMPTS: u32 = 5;
/// The first backoff after a network failure (doubling after each).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest `retry_after` the outbox waits; longer ones are reported (Telegram names
/// such waits when a bot floods a group: better to tell the caller than to hang).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Minimum gap between any two sends of the bot (≈ 30 a second).
const GLOBAL_INTERVAL: Duration = Duration::from_millis(34);
/// How many sends may go at once before the bot-wide pacing applies (so one chat's first
/// message never waits behind another chat's last).
const GLOBAL_BURST: u32 = 10;

/// What to post.
#[derive(Debug, Clone)]
pub enum Post {
    /// A new message.
    Message(Text),
    /// A document.
    Document {
        /// Its file name.
        file_name: String,
        /// Its bytes.
        bytes: Vec<u8>,
        /// Its caption (plain text).
        caption: Option<String>,
        /// The message it answers.
        reply_to: Option<i64>,
    },
    /// New text (and keyboard) for a message the bot sent; not a new message, so it
    /// leaves a draft alone.
    Edit {
        /// The message.
        message_id: i64,
        /// Its new text.
        text: Text,
    },
}

/// One chat's lane: its sends in order, their pacing, and its live draft.
#[derive(Default)]
struct Lane {
    last_send: Option<Instant>,
    draft: Option<Arc<LiveDraft>>,
}

/// The outboxes of all chats.
pub struct Outbox {
    api: BotApi,
    interval: Duration,
    lanes: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Lane>>>>,
    next_global: Mutex<Instant>,
}

impl Outbox {
    /// Outboxes posting through `api`, at most one message per `interval` per chat.
    pub fn new(api: BotApi, interval: Duration) -> Self {
        Self {
            api,
            interval,
            lanes: Mutex::new(HashMap::new()),
            next_global: Mutex::new(Instant::now()),
        }
    }

    /// The client (for calls that are not posts).
    pub fn api(&self) -> &BotApi {
        &self.api
    }

    /// Posts `post` to `chat_id` after what is queued for that chat, retrying what may
    /// succeed later. `Ok(None)` for an edit that changed nothing.
    pub async fn post(&self, chat_id: i64, post: Post) -> Result<Option<SentMessage>, ApiError> {
        let lane = self.lane(chat_id);
        let mut lane = lane.lock().await;
        if !matches!(post, Post::Edit { .. })
            && let Some(content) = lane.draft.as_ref().and_then(|d| d.take_for_flush())
        {
            let html = Post::Message(Text::html(chat_id, content.html));
            let flushed = match self.send(&mut lane, chat_id, &html).await {
                Err(ApiError::CantParseEntities(_)) => {
                    let plain = Post::Message(Text::plain(chat_id, content.plain));
                    self.send(&mut lane, chat_id, &plain).await
                }
                result => result,
            };
            if let Err(error) = flushed {
                tracing::warn!(
                    chat = chat_id,
                    "the draft could not be kept as a message: {error}"
                );
            }
        }
        self.send(&mut lane, chat_id, &post).await
    }

    /// Streams `draft` in its chat from now on: posts there flush it first.
    pub async fn attach_draft(&self, draft: Arc<LiveDraft>) {
        let lane = self.lane(draft.chat_id());
        lane.lock().await.draft = Some(draft);
    }

    /// Ends the draft rule for `draft` (its task ended: the answer replaces it).
    pub async fn detach_draft(&self, draft: &Arc<LiveDraft>) {
        let lane = self.lane(draft.chat_id());
        let mut lane = lane.lock().await;
        if lane.draft.as_ref().is_some_and(|d| Arc::ptr_eq(d, draft)) {
            lane.draft = None;
        }
    }

    /// Shows `draft`'s latest content if Telegram does not show it yet, in turn with the
    /// chat's posts. `Ok(false)` when there was nothing new. Never retried.
    pub async fn update_draft(&self, draft: &LiveDraft) -> Result<bool, ApiError> {
        let chat_id = draft.chat_id();
        let lane = self.lane(chat_id);
        let mut lane = lane.lock().await;
        // Taken with the lane held, so a flush cannot come between.
        let Some(update) = draft.update_due() else {
            return Ok(false);
        };
        self.pace(&mut lane).await;
        let DraftUpdate {
            draft_id, content, ..
        } = &update;
        let result = match self
            .api
            .send_message_draft(chat_id, *draft_id, &content.html, true)
            .await
        {
            Err(ApiError::CantParseEntities(_)) => {
                self.api
                    .send_message_draft(chat_id, *draft_id, &content.plain, false)
                    .await
            }
            result => result,
        };
        if let Err(ApiError::TooManyRequests(wait)) = &result {
            // The lane's next send waits as Telegram asked.
            lane.last_send = Some(Instant::now() + *wait);
        }
        result?;
        draft.shown(&update);
        Ok(true)
    }

    /// Sends `post` in `lane`: paced, retried after `retry_after` and network failures.
    async fn send(
        &self,
        lane: &mut Lane,
        chat_id: i64,
        post: &Post,
    ) -> Result<Option<SentMessage>, ApiError> {
        let mut network_failures = 0;
        loop {
            self.pace(lane).await;
            let result = match post {
                Post::Message(text) => self.api.send_message(text).await,
                Post::Document {
                    file_name,
                    bytes,
                    caption,
                    reply_to,
                } => {
                    self.api
                        .send_document(
                            chat_id,
                            file_name,
                            bytes.clone(),
                            caption.as_deref(),
                            *reply_to,
                        )
                        .await
                }
                Post::Edit { message_id, text } => self
                    .api
                    .edit_message_text(*message_id, text)
                    .await
                    .map(|_| SentMessage {
                        message_id: *message_id,
                    }),
            };
            match result {
                Ok(sent) => return Ok(Some(sent)),
                Err(ApiError::NotModified) => return Ok(None),
                Err(ApiError::TooManyRequests(wait)) if wait <= MAX_RETRY_AFTER => {
                    tracing::info!(
                        chat = chat_id,
                        wait_secs = wait.as_secs(),
                        "Telegram asked to slow down"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(error @ ApiError::Network { .. }) => {
                    network_failures += 1;
                    if network_failures >= NETWORK_ATTEMPTS {
                        return Err(error);
                    }
                    let backoff = FIRST_BACKOFF * 2u32.pow(network_failures - 1);
                    tracing::info!(
                        chat = chat_id,
                        attempt = network_failures,
                        "{error}; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Waits until the lane's interval has passed and the bot-wide slot is free, and
    /// takes the lane's turn.
    async fn pace(&self, lane: &mut Lane) {
        if let Some(last) = lane.last_send {
            tokio::time::sleep_until(last + self.interval).await;
        }
        self.global_turn().await;
        lane.last_send = Some(Instant::now());
    }

    /// Shows `action` (e.g. `typing`) in `chat_id` for the next ~5 s; best effort.
    pub async fn chat_action(&self, chat_id: i64, action: &str) {
        if let Err(error) = self.api.send_chat_action(chat_id, action).await {
            tracing::debug!(chat = chat_id, "{action} not shown: {error}");
        }
    }

    fn lane(&self, chat_id: i64) -> Arc<tokio::sync::Mutex<Lane>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        // Lanes nobody waits on (and with no live draft) are dropped now and then, so a
        // long-lived bot does not keep one per chat it ever saw.
        if lanes.len() > 1024 {
            lanes.retain(|_, lane| {
                Arc::strong_count(lane) > 1
                    || lane.try_lock().map_or(true, |lane| lane.draft.is_some())
            });
        }
        lanes.entry(chat_id).or_default().clone()
    }

    /// Waits for the bot-wide slot of the next send.
    async fn global_turn(&self) {
        // A token bucket kept as one "theoretical arrival time" (GCRA): a send goes at
        // once while fewer than GLOBAL_BURST are ahead of the steady rate.
        let at = {
            let mut next = self
                .next_global
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let due = (*next).max(now);
            let tolerance = GLOBAL_INTERVAL * (GLOBAL_BURST - 1);
            let at = due.checked_sub(tolerance).map_or(now, |at| at.max(now));
            *next = due + GLOBAL_INTERVAL;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}
