//! The Telegram front end: answers and replies as messages the Telegram Bot API accepts.

pub mod render;
