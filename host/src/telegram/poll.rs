//! Local mode: `agent-host telegram` asks Telegram for updates itself (`getUpdates` long
//! polling) instead of receiving them from the relay, and hands each to the same
//! [`Bot`].
//!
//! - A webhook and long polling exclude each other: with a webhook set, polling stops at
//!   once and says how to remove it.
//! - `409 Conflict` while polling means another process polls with this token: a clear
//!   error, not a retry loop.
//! - The offset is saved after each batch, so a restart neither repeats nor skips updates
//!   (and the dispatcher drops any it already handled).
//! - Network failures are retried with a growing pause (at most [`MAX_PAUSE`]).
//! - `stop` (SIGTERM, Ctrl-C) ends polling; running tasks get the grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::ALLOWED_UPDATES;
use super::api::{ApiError, BotApi};
use super::bot::Bot;

/// The longest pause between failed polls.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// How long one `getUpdates` waits for an update.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// The long-poll timeout asked of Telegram.
    pub timeout: Duration,
    /// How long running tasks get after `stop`.
    pub shutdown_grace: Duration,
}

/// Polls until `stop` resolves, then lets running tasks finish within the grace period.
pub async fn run(
    bot: Arc<Bot>,
    settings: PollSettings,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    ensure_no_webhook(bot.api()).await?;
    if let Err(error) = bot.set_commands().await {
        tracing::warn!("cannot register the command menu: {error}");
    }
    bot.resend_pending().await;
    tracing::info!("polling Telegram for updates");
    tokio::pin!(stop);
    let polling = async {
        let mut offset = bot.store().offset();
        let mut pause = Duration::from_secs(1);
        loop {
            match bot
                .api()
                .get_updates(offset, settings.timeout, ALLOWED_UPDATES)
                .await
            {
                Ok(updates) => {
                    pause = Duration::from_secs(1);
                    for update in updates {
                        if let Some(id) = super::update::update_id(&update) {
                            offset = offset.max(id + 1);
                        }
                        bot.handle_update(update).await;
                    }
                    bot.store().set_offset(offset);
                }
                Err(error @ (ApiError::Conflict(_) | ApiError::Unauthorized)) => {
                    return Err(explain(error));
                }
                Err(error) => {
                    tracing::warn!(
                        "polling failed ({error}); trying again in {} s",
                        pause.as_secs()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    };
    let result = tokio::select! {
        () = &mut stop => Ok(()),
        error = polling => error,
    };
    tracing::info!(
        running = bot.launcher().tasks().active_count(),
        "polling stopped; waiting for running tasks"
    );
    bot.launcher().shutdown(settings.shutdown_grace).await;
    result
}

/// Fails, saying how to remove it, when a webhook is set: Telegram refuses long polling
/// while one is.
pub async fn ensure_no_webhook(api: &BotApi) -> anyhow::Result<()> {
    let webhook = api.webhook_url().await.map_err(explain)?;
    if !webhook.is_empty() {
        anyhow::bail!(
            "a webhook is set for this bot ({webhook}), and Telegram refuses long polling \
             while one is: remove it with the Bot API's deleteWebhook method (or let the \
             relay receive the updates and run `agent-host serve` instead)"
        );
    }
    Ok(())
}

/// The error of a failed poll, with what to do about it.
fn explain(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::Conflict(description) => anyhow::anyhow!(
            "Telegram answered 409 Conflict ({description}): another process is polling \
             with this bot token, or a webhook is set. Stop the other poller (only one may \
             run), or remove the webhook with deleteWebhook"
        ),
        other => anyhow::anyhow!("{other}"),
    }
}
