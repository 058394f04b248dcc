//! What a Telegram update asks of the agent-host bot, and whose session it belongs to.
//!
//! Two programs read the same updates: the host's dispatcher, which acts on them, and the
//! webhook relay, which decides whether to forward one and to which AgentCore session. They
//! must agree on which kinds are handled and who owns a button press, so both read updates
//! with this crate: [`update::read`] says what an update asks, [`route::route`] whose it is,
//! [`route::session_id`] the runtime session that user's updates go to.

pub mod buttons;
pub mod route;
pub mod update;

/// The update kinds the bot handles: what `getUpdates` and `setWebhook` ask Telegram for,
/// and what the relay forwards. (`stopped_message_generation`, a draft's Stop button, is
/// delivered only when asked for.)
pub const ALLOWED_UPDATES: &[&str] = &["message", "callback_query", "stopped_message_generation"];
