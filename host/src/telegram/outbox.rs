//! One outbox per chat: what the bot posts to a chat goes out in order, paced within
//! Telegram's limits, and retried until it gets through.
//!
//! - Order and pacing: each chat has a lane (a fair async lock); a send waits its turn and
//!   then until `interval` has passed since the chat's previous send (Telegram asks for
//!   about one message per second per chat). All chats together stay under about 30
//!   messages a second.
//! - `429 Too Many Requests`: wait the `retry_after` Telegram names, then send again.
//! - Network errors and 5xx: retried with doubling backoff, [`NETWORK_ATTEMPTS`] times.
//! - "message is not modified" counts as success (the text is already what we wanted).
//! - Other refusals return to the caller, which decides (e.g. plain text after a
//!   formatting refusal).
//!
//! Chat actions (`typing`) are not messages: they skip the lane and are never retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::api::{ApiError, BotApi, SentMessage, Text};

/// How often a network failure is tried before it is reported.
pub const NETWORK_ATTEMPTS: u32 = 5;
/// The first backoff after a network failure (doubling after each).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest `retry_after` the outbox waits; longer ones are reported (Telegram names
/// such waits when a bot floods a group: better to tell the caller than to hang).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Minimum gap between any two sends of the bot (≈ 30 a second).
const GLOBAL_INTERVAL: Duration = Duration::from_millis(34);

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
}

/// The outboxes of all chats.
pub struct Outbox {
    api: BotApi,
    interval: Duration,
    lanes: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
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
        let mut last_send = lane.lock().await;
        let mut network_failures = 0;
        loop {
            if let Some(last) = *last_send {
                tokio::time::sleep_until(last + self.interval).await;
            }
            self.global_turn().await;
            *last_send = Some(Instant::now());
            let result = match &post {
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

    /// Shows `action` (e.g. `typing`) in `chat_id` for the next ~5 s; best effort.
    pub async fn chat_action(&self, chat_id: i64, action: &str) {
        if let Err(error) = self.api.send_chat_action(chat_id, action).await {
            tracing::debug!(chat = chat_id, "{action} not shown: {error}");
        }
    }

    fn lane(&self, chat_id: i64) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        // Lanes nobody waits on are dropped now and then, so a long-lived bot does not
        // keep one per chat it ever saw.
        if lanes.len() > 1024 {
            lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
        }
        lanes.entry(chat_id).or_default().clone()
    }

    /// Waits for the bot-wide slot of the next send.
    async fn global_turn(&self) {
        let at = {
            let mut next = self
                .next_global
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let at = (*next).max(Instant::now());
            *next = at + GLOBAL_INTERVAL;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}
