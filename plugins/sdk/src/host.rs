//! The host's facts and logging, as plain functions.

use crate::imports::{context, log};

/// Absolute path of the user's workspace (the same inside the component and on the host).
pub fn workspace_root() -> String {
    context::workspace_root()
}

/// This plugin's configuration (manifest `[config]` overlaid by the operator's).
pub fn config() -> serde_json::Value {
    serde_json::from_str(&context::config()).unwrap_or_default()
}

/// Logs at debug level into the host's log.
pub fn debug(message: &str) {
    log::write(log::Level::Debug, message);
}

/// Logs at info level into the host's log.
pub fn info(message: &str) {
    log::write(log::Level::Info, message);
}

/// Logs at warn level into the host's log.
pub fn warn(message: &str) {
    log::write(log::Level::Warn, message);
}
