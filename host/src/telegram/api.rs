//! A thin typed client of the Bot API methods the bot uses, over reqwest.
//!
//! Why our own and not a client crate: the bot needs about a dozen methods, reads updates
//! leniently (an update kind it does not know must never fail a whole batch), and must
//! control every error text — the token is part of each request URL, and HTTP client
//! errors print the URL. Here every error is built from the method name and Telegram's
//! description, and any text that still holds the token is redacted.
//!
//! Retrying and pacing are not done here but in [`super::outbox`]; this module only turns
//! Telegram's answers into [`ApiError`] kinds the outbox can act on.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long one ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a long poll gets beyond the timeout it asks Telegram for.
const LONG_POLL_SLACK: Duration = Duration::from_secs(10);

/// Why a Bot API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// `429`: wait this long, then retry.
    #[error("Telegram asked to slow down: retry after {} s", .0.as_secs())]
    TooManyRequests(Duration),
    /// An edit that changes nothing (Telegram's "message is not modified").
    #[error("the message is not modified")]
    NotModified,
    /// Telegram could not parse the HTML of a text.
    #[error("Telegram refused the formatting: {0}")]
    CantParseEntities(String),
    /// `409`: a webhook is set, or another process polls with this token.
    #[error("{0}")]
    Conflict(String),
    /// `401`/`404` on every method: the token is wrong or revoked.
    #[error(
        "Telegram refused the bot token (401 Unauthorized): check telegram_bot_token \
         (AGENT_HOST_TELEGRAM_BOT_TOKEN)"
    )]
    Unauthorized,
    /// Any other refusal (bad request, blocked by the user, chat not found, ...).
    #[error("{method} was refused ({code}): {description}")]
    Refused {
        /// The method.
        method: String,
        /// Telegram's error code.
        code: u16,
        /// Telegram's description.
        description: String,
    },
    /// The request did not get an answer (connection, timeout, server error): retryable.
    #[error("{method} did not get through: {reason}")]
    Network {
        /// The method.
        method: String,
        /// What happened (redacted).
        reason: String,
    },
}

impl ApiError {
    /// Whether trying the same call again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::TooManyRequests(_) | Self::Network { .. })
    }
}

/// The bot's own user, from `getMe`.
#[derive(Debug, Clone, Deserialize)]
pub struct BotUser {
    /// Its user id.
    pub id: i64,
    /// Its @username (without the @).
    #[serde(default)]
    pub username: Option<String>,
}

/// A message Telegram accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    /// Its id in the chat.
    pub message_id: i64,
}

/// A text message to send or an edit to make.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Text {
    /// The chat.
    pub chat_id: i64,
    /// The text (HTML when `parse_mode` is set).
    pub text: String,
    /// `"HTML"`, or none for plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<&'static str>,
    /// The message this one answers (kept in the same thread).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<Value>,
    /// Inline keyboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<Value>,
    /// No link previews: answers are full of URLs to code hosts.
    pub link_preview_options: Value,
}

impl Text {
    /// `text` as HTML in `chat_id`.
    pub fn html(chat_id: i64, text: impl Into<String>) -> Self {
        Self {
            chat_id,
            text: text.into(),
            parse_mode: Some("HTML"),
            link_preview_options: json!({"is_disabled": true}),
            ..Self::default()
        }
    }

    /// `text` as plain text in `chat_id`.
    pub fn plain(chat_id: i64, text: impl Into<String>) -> Self {
        Self {
            parse_mode: None,
            ..Self::html(chat_id, text)
        }
    }

    /// The same text, answering message `message_id` (if it is still there).
    pub fn replying_to(mut self, message_id: Option<i64>) -> Self {
        self.reply_parameters =
            message_id.map(|id| json!({"message_id": id, "allow_sending_without_reply": true}));
        self
    }
}

/// A file Telegram keeps for the bot (`getFile`).
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteFile {
    /// Where to download it from (relative to the file base URL); missing when the file
    /// is too big for bots to download.
    #[serde(default)]
    pub file_path: Option<String>,
    /// Its size, when Telegram says.
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// What Telegram says of the bot's webhook (`getWebhookInfo`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookInfo {
    /// Where updates are posted; empty when no webhook is set.
    #[serde(default)]
    pub url: String,
    /// Updates waiting to be delivered.
    #[serde(default)]
    pub pending_update_count: u64,
    /// When the last delivery failed (Unix seconds).
    #[serde(default)]
    pub last_error_date: Option<u64>,
    /// Why it failed.
    #[serde(default)]
    pub last_error_message: Option<String>,
    /// The most connections Telegram opens at once.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// The update kinds delivered; all but a few when Telegram does not say.
    #[serde(default)]
    pub allowed_updates: Option<Vec<String>>,
    /// The address Telegram resolved the URL to.
    #[serde(default)]
    pub ip_address: Option<String>,
}

/// A command for the menu (`setMyCommands`).
#[derive(Debug, Clone, Serialize)]
pub struct BotCommand {
    /// The name, without the slash.
    pub command: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// The Bot API at one base URL with one token.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    /// `<base>/bot<token>`.
    method_base: String,
    /// `<base>/file/bot<token>`.
    file_base: String,
    token: String,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi").finish_non_exhaustive()
    }
}

impl BotApi {
    /// A client of the Bot API at `base_url` (e.g. `https://api.telegram.org`).
    pub fn new(base_url: &str, token: &str) -> anyhow::Result<Self> {
        let token = token.trim();
        anyhow::ensure!(
            !token.is_empty() && !token.contains(['/', '?', '#', ' ']),
            "telegram_bot_token is not a bot token (expected the `123456:ABC...` string \
             @BotFather gave)"
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| anyhow::anyhow!("cannot build the HTTP client: {error}"))?;
        Ok(Self {
            http,
            method_base: format!("{}/bot{token}", base_url.trim_end_matches('/')),
            file_base: format!("{}/file/bot{token}", base_url.trim_end_matches('/')),
            token: token.to_string(),
        })
    }

    /// `text` with the token replaced, for anything that may be shown or logged.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.token, "<token>")
    }

    /// Calls `method` with `params` (a JSON body), waiting at most `timeout`.
    async fn call_within<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &impl Serialize,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let request = self
            .http
            .post(format!("{}/{method}", self.method_base))
            .timeout(timeout)
            .json(params);
        self.finish(method, request).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, ApiError> {
        self.call_within(method, params, REQUEST_TIMEOUT).await
    }

    /// Sends `request` and reads Telegram's answer.
    async fn finish<T: DeserializeOwned>(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let network = |error: reqwest::Error| ApiError::Network {
            method: method.to_string(),
            // Without the URL (it holds the token), and redacted all the same.
            reason: self.redact(&crate::shared::error_chain(&error.without_url())),
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let body = response.bytes().await.map_err(network)?;
        #[derive(Deserialize)]
        struct Reply<T> {
            ok: bool,
            result: Option<T>,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            error_code: Option<u16>,
            #[serde(default)]
            parameters: Option<Parameters>,
        }
        #[derive(Deserialize)]
        struct Parameters {
            retry_after: Option<u64>,
        }
        let reply: Reply<T> = match serde_json::from_slice(&body) {
            Ok(reply) => reply,
            Err(_) if status.is_server_error() || status.is_success() => {
                return Err(ApiError::Network {
                    method: method.to_string(),
                    reason: format!("HTTP {status} without a Bot API answer"),
                });
            }
            Err(error) => {
                return Err(ApiError::Refused {
                    method: method.to_string(),
                    code: status.as_u16(),
                    description: self.redact(&format!("unreadable answer: {error}")),
                });
            }
        };
        if reply.ok {
            return reply.result.ok_or_else(|| ApiError::Network {
                method: method.to_string(),
                reason: "an answer without a result".into(),
            });
        }
        let code = reply.error_code.unwrap_or(status.as_u16());
        let description = self.redact(reply.description.as_deref().unwrap_or("no description"));
        Err(match code {
            429 => ApiError::TooManyRequests(Duration::from_secs(
                reply.parameters.and_then(|p| p.retry_after).unwrap_or(1),
            )),
            401 => ApiError::Unauthorized,
            409 => ApiError::Conflict(description),
            400 if description.contains("message is not modified") => ApiError::NotModified,
            400 if description.contains("can't parse entities") => {
                ApiError::CantParseEntities(description)
            }
            500.. => ApiError::Network {
                method: method.to_string(),
                reason: format!("{code} {description}"),
            },
            _ => ApiError::Refused {
                method: method.to_string(),
                code,
                description,
            },
        })
    }

    /// `getMe`.
    pub async fn get_me(&self) -> Result<BotUser, ApiError> {
        self.call("getMe", &json!({})).await
    }

    /// `sendMessage`.
    pub async fn send_message(&self, text: &Text) -> Result<SentMessage, ApiError> {
        self.call("sendMessage", text).await
    }

    /// `sendMessageDraft`: shows `text` (HTML when `html`) as the draft `draft_id` in the
    /// private chat `chat_id`, with a Stop button; empty text shows "Thinking…".
    pub async fn send_message_draft(
        &self,
        chat_id: i64,
        draft_id: i64,
        text: &str,
        html: bool,
    ) -> Result<bool, ApiError> {
        let mut params = json!({
            "chat_id": chat_id,
            "draft_id": draft_id,
            "text": text,
            "can_stop": true,
        });
        if html {
            params["parse_mode"] = json!("HTML");
        }
        self.call("sendMessageDraft", &params).await
    }

    /// `editMessageText`: message `message_id` now shows `text` (and its keyboard).
    pub async fn edit_message_text(&self, message_id: i64, text: &Text) -> Result<Value, ApiError> {
        #[derive(Serialize)]
        struct Edit<'a> {
            message_id: i64,
            #[serde(flatten)]
            text: &'a Text,
        }
        self.call("editMessageText", &Edit { message_id, text })
            .await
    }

    /// `sendChatAction` (`typing`, `upload_document`, ...).
    pub async fn send_chat_action(&self, chat_id: i64, action: &str) -> Result<bool, ApiError> {
        self.call(
            "sendChatAction",
            &json!({"chat_id": chat_id, "action": action}),
        )
        .await
    }

    /// `sendDocument` with `bytes` uploaded as `file_name`.
    pub async fn send_document(
        &self,
        chat_id: i64,
        file_name: &str,
        bytes: Vec<u8>,
        caption: Option<&str>,
        reply_to: Option<i64>,
    ) -> Result<SentMessage, ApiError> {
        let file = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string());
        let mut form = reqwest::multipart::Form::new()
            .text("chat_id", chat_id.to_string())
            .part("document", file);
        if let Some(caption) = caption {
            form = form.text("caption", caption.to_string());
        }
        if let Some(id) = reply_to {
            let reply = json!({"message_id": id, "allow_sending_without_reply": true});
            form = form.text("reply_parameters", reply.to_string());
        }
        let request = self
            .http
            .post(format!("{}/sendDocument", self.method_base))
            .timeout(REQUEST_TIMEOUT * 4)
            .multipart(form);
        self.finish("sendDocument", request).await
    }

    /// `getFile`: where a file the user sent can be downloaded.
    pub async fn get_file(&self, file_id: &str) -> Result<RemoteFile, ApiError> {
        self.call("getFile", &json!({"file_id": file_id})).await
    }

    /// Downloads `file` (from [`Self::get_file`]), refusing more than `limit` bytes
    /// without reading them all.
    pub async fn download(&self, file: &RemoteFile, limit: u64) -> Result<Vec<u8>, ApiError> {
        let refused = |description: String| ApiError::Refused {
            method: "file download".into(),
            code: 400,
            description,
        };
        let Some(path) = &file.file_path else {
            return Err(refused(
                "Telegram offers no download of this file (bots may download at most 20 MB)".into(),
            ));
        };
        let network = |error: reqwest::Error| ApiError::Network {
            method: "file download".into(),
            reason: self.redact(&crate::shared::error_chain(&error.without_url())),
        };
        let mut response = self
            .http
            .get(format!("{}/{path}", self.file_base))
            .timeout(REQUEST_TIMEOUT * 4)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() {
                ApiError::Network {
                    method: "file download".into(),
                    reason: format!("HTTP {status}"),
                }
            } else {
                refused(format!("HTTP {status}"))
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(refused(format!(
                    "the file is larger than {} MB",
                    limit / (1024 * 1024)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// `answerCallbackQuery`, with a short notice for the presser.
    pub async fn answer_callback_query(&self, id: &str, text: &str) -> Result<bool, ApiError> {
        self.call(
            "answerCallbackQuery",
            &json!({"callback_query_id": id, "text": text}),
        )
        .await
    }

    /// `getUpdates` from `offset`, waiting up to `timeout` for one.
    pub async fn get_updates(
        &self,
        offset: i64,
        timeout: Duration,
        allowed_updates: &[&str],
    ) -> Result<Vec<Value>, ApiError> {
        let params = json!({
            "offset": offset,
            "timeout": timeout.as_secs(),
            "allowed_updates": allowed_updates,
        });
        self.call_within("getUpdates", &params, timeout + LONG_POLL_SLACK)
            .await
    }

    /// The webhook's URL, empty when none is set (`getWebhookInfo`).
    pub async fn webhook_url(&self) -> Result<String, ApiError> {
        Ok(self.webhook_info().await?.url)
    }

    /// `getWebhookInfo`: Telegram's view of the webhook.
    pub async fn webhook_info(&self) -> Result<WebhookInfo, ApiError> {
        self.call("getWebhookInfo", &json!({})).await
    }

    /// `setWebhook`: Telegram posts the `allowed_updates` kinds to `url`, with
    /// `secret_token` in the `X-Telegram-Bot-Api-Secret-Token` header.
    pub async fn set_webhook(
        &self,
        url: &str,
        secret_token: &str,
        allowed_updates: &[&str],
        drop_pending_updates: bool,
    ) -> Result<bool, ApiError> {
        let params = json!({
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": allowed_updates,
            "drop_pending_updates": drop_pending_updates,
        });
        self.call("setWebhook", &params).await
    }

    /// `deleteWebhook`: back to `getUpdates`.
    pub async fn delete_webhook(&self, drop_pending_updates: bool) -> Result<bool, ApiError> {
        let params = json!({"drop_pending_updates": drop_pending_updates});
        self.call("deleteWebhook", &params).await
    }

    /// `setMyCommands`: the command menu.
    pub async fn set_my_commands(&self, commands: &[BotCommand]) -> Result<bool, ApiError> {
        self.call("setMyCommands", &json!({"commands": commands}))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_with_url_characters_is_refused_without_echoing_it() {
        let error = BotApi::new("http://127.0.0.1:1", "12:abc/../x").unwrap_err();
        assert!(!error.to_string().contains("abc"), "{error}");
        assert!(BotApi::new("http://127.0.0.1:1", "  ").is_err());
    }

    #[test]
    fn debug_and_redact_never_show_the_token() {
        let api = BotApi::new("http://127.0.0.1:1/", "123:SECRET").unwrap();
        assert!(!format!("{api:?}").contains("SECRET"));
        assert_eq!(
            api.redact("GET http://x/bot123:SECRET/getMe"),
            "GET http://x/bot<token>/getMe"
        );
        assert_eq!(api.method_base, "http://127.0.0.1:1/bot123:SECRET");
    }

    #[tokio::test]
    async fn a_connection_error_names_the_method_but_not_the_token() {
        // Port 9 on loopback: nothing listens there.
        let api = BotApi::new("http://127.0.0.1:9", "123:SECRET").unwrap();
        let error = api.get_me().await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        let text = error.to_string();
        assert!(text.starts_with("getMe did not get through"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }
}
