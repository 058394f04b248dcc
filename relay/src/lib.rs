//! The Telegram webhook relay: an AWS Lambda behind a Function URL, between Telegram's webhook
//! and the AgentCore runtime where the host runs.
//!
//! Telegram posts each update here; the relay
//! 1. checks the webhook's secret token ([`webhook`]), in constant time, against the secret
//!    it reads from Secrets Manager ([`secrets`], cached per Lambda container);
//! 2. drops what the host would ignore anyway: update kinds it does not handle, and senders
//!    not on the relay's copy of the allow-list, so a stranger never starts a microVM;
//! 3. forwards the update unchanged to the owner's AgentCore session ([`forward`]), whose id
//!    it derives from the bot and the owner (`agent_host_updates::route`);
//! 4. and only then answers Telegram, always `200` once the update was checked: when
//!    AgentCore fails, the user is told through the Bot API ([`notice`]) instead of Telegram
//!    retrying the delivery for hours.
//!
//! [`Relay::handle`] is the whole path for one request; `main.rs` only hands it the Lambda
//! events.

pub mod config;
pub mod forward;
pub mod handler;
pub mod notice;
pub mod secrets;
pub mod webhook;

pub use config::RelayConfig;
pub use handler::{Clients, Relay};
