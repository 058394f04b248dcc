//! A bot made at the first update that needs it.
//!
//! When the bot's token lives in Secrets Manager (`telegram_bot_token_secret`), `serve` may
//! not read it at start: AgentCore may snapshot the process after start and restore that
//! snapshot for every session (Platform V2), and a snapshot must hold no credentials. So
//! the first Telegram update reads the secret and makes the bot; a failure is said to that
//! update's sender (the relay tells the user) and tried again at the next one.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::Bot;

type MakeBot = Box<dyn Fn() -> BoxFuture<'static, anyhow::Result<Arc<Bot>>> + Send + Sync>;

/// The bot, made now or at its first use.
pub struct DeferredBot {
    bot: OnceCell<Arc<Bot>>,
    make: Option<MakeBot>,
}

impl DeferredBot {
    /// A bot already made.
    pub fn ready(bot: Arc<Bot>) -> Self {
        Self {
            bot: OnceCell::new_with(Some(bot)),
            make: None,
        }
    }

    /// A bot that `make` makes at the first [`DeferredBot::get`].
    pub fn new(
        make: impl Fn() -> BoxFuture<'static, anyhow::Result<Arc<Bot>>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            bot: OnceCell::new(),
            make: Some(Box::new(make)),
        }
    }

    /// The bot, made now if it was not yet; concurrent first updates wait for one making.
    pub async fn get(&self) -> anyhow::Result<Arc<Bot>> {
        self.bot
            .get_or_try_init(|| async {
                match &self.make {
                    Some(make) => make().await,
                    None => anyhow::bail!("no bot to make"),
                }
            })
            .await
            .cloned()
    }
}
