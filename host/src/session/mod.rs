//! Per-user sessions: who may use the host, each user's workspace and one-task slot, the
//! conversation history kept for each user, and the files that pass between the user and
//! the workspace.

pub mod files;
pub mod history;
mod users;

pub use history::{FileHistory, HistoryStore, S3History};
pub use users::{MAX_USER_KEY_BYTES, Slot, UserError, Users, check_user_key, workspace_dir_name};
