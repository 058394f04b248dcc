//! Session state: what a plugin remembers across calls of one user session.
//!
//! Every call runs in a fresh instance, so anything that must outlive a call (which files
//! were read, a working directory) goes here. Values are JSON so they can be typed.

use serde::{Serialize, de::DeserializeOwned};

use crate::imports::session_state;

/// The value under `key`, if present and of type `T`.
pub fn get<T: DeserializeOwned>(key: &str) -> Option<T> {
    session_state::get(key).and_then(|text| serde_json::from_str(&text).ok())
}

/// Stores `value` under `key`. Fails with the host's message when a quota is exceeded.
pub fn set<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|error| error.to_string())?;
    session_state::set(key, &text)
}

/// Removes `key`.
pub fn delete(key: &str) {
    session_state::delete(key)
}

/// Every key starting with `prefix`.
pub fn keys(prefix: &str) -> Vec<String> {
    session_state::keys(prefix)
}
