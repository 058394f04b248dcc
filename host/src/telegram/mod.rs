//! The Telegram front end: users talk to the agent from a Telegram chat.
//!
//! Updates reach the one dispatcher ([`Bot`], its rules in [`bot`]) from either path:
//! forwarded by the relay to `/invocations` (the server hands them over), or fetched by
//! `agent-host telegram` itself ([`poll`]). Everything the bot posts goes through the
//! per-chat [`outbox`] (pacing, `retry_after`, retries) of the [`api`] client; answers are
//! Markdown [`render`]ed to Telegram HTML; what must survive a restart is in [`store`].
//! While a task runs, its [`view`] (words and [`steps`]) streams as a [`draft`] in a
//! private chat, or as a [`progress`] message in a group.

pub mod api;
pub mod bot;
pub mod commands;
pub mod deferred;
pub mod draft;
pub mod files_out;
pub mod outbox;
pub mod poll;
pub mod progress;
pub mod render;
pub mod steps;
pub mod store;
pub mod uploads;
pub mod usage;
pub mod view;
pub mod webhook;

pub use agent_host_updates::{ALLOWED_UPDATES, buttons, route, update};
pub use api::BotApi;
pub use bot::{Bot, BotSettings, Handled};
pub use deferred::DeferredBot;
pub use store::Store;
