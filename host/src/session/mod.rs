//! Per-user sessions: who may use the host, each user's workspace and one-task slot, and
//! the plugin state a session carries between tool calls.

pub mod history;
mod state;
mod users;

pub use history::{FileHistory, HistoryStore, S3History};
pub(crate) use state::write_atomically;
pub use state::{MAX_KEY_BYTES, MAX_PLUGIN_BYTES, MAX_VALUE_BYTES, SessionState};
pub use users::{
    MAX_USER_KEY_BYTES, Slot, UserError, Users, check_user_key, is_plain_name, workspace_dir_name,
};
