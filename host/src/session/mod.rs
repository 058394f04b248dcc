//! Per-user sessions. For now: the plugin state a session carries between tool calls.

mod state;

pub(crate) use state::write_atomically;
pub use state::{MAX_KEY_BYTES, MAX_PLUGIN_BYTES, MAX_VALUE_BYTES, SessionState};
