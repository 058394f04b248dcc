//! Telling a user through the Bot API that their update did not reach the bot.
//!
//! The relay answers Telegram `200` even when AgentCore fails (a failed delivery would be
//! retried for hours and pile up), so the user hears it here instead: once per chat within
//! [`NOTICE_WINDOW`], however many of their updates fail in a row. A button press is always
//! answered (its spinner turns until it is).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::secrets::SecretText;

/// A chat is told at most once within this window.
pub const NOTICE_WINDOW: Duration = Duration::from_secs(60);

/// When AgentCore failed or refused.
pub const UNAVAILABLE: &str = "⚠️ The bot is unavailable right now and did not get your \
    message. Please send it again in a few minutes.";
/// When AgentCore did not answer in time: the update may still arrive.
pub const SLOW_START: &str = "⏳ The bot is taking long to start. Your message may still \
    be handled; if nothing happens within a minute, send it again.";

/// Where a notice goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A message in this chat.
    Chat(i64),
    /// The answer to this button press (a short toast).
    Callback(String),
}

/// Sends notices.
pub struct Notifier {
    http: reqwest::Client,
    base_url: String,
    told: Mutex<HashMap<i64, Instant>>,
}

impl Notifier {
    /// Notices through the Bot API at `base_url` (e.g. `https://api.telegram.org`).
    pub fn new(base_url: String) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base_url,
            told: Mutex::new(HashMap::new()),
        }
    }

    /// Tells `target` `text` with the bot `token`. `Ok(false)` when the chat was told
    /// within the window; an error says why the Bot API call failed, without the token.
    pub async fn tell(
        &self,
        token: &SecretText,
        target: &Target,
        text: &str,
    ) -> Result<bool, String> {
        let (method, body) = match target {
            Target::Chat(chat_id) => {
                if !self.first_in_window(*chat_id) {
                    return Ok(false);
                }
                ("sendMessage", json!({"chat_id": chat_id, "text": text}))
            }
            Target::Callback(id) => (
                "answerCallbackQuery",
                json!({"callback_query_id": id, "text": text, "show_alert": true}),
            ),
        };
        let url = format!("{}/bot{}/{method}", self.base_url, token.expose());
        let redact = |text: String| text.replace(token.expose(), "<token>");
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|error| redact(format!("{method} failed: {}", error.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        let answer = response.text().await.unwrap_or_default();
        let description = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|value| value.get("description")?.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(redact(format!("{method} refused: {description}")))
    }

    /// Records a notice to `chat_id` now, unless one went out within the window.
    fn first_in_window(&self, chat_id: i64) -> bool {
        let mut told = self
            .told
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let now = Instant::now();
        told.retain(|_, at| now.duration_since(*at) < NOTICE_WINDOW);
        if told.contains_key(&chat_id) {
            return false;
        }
        told.insert(chat_id, now);
        true
    }
}
