//! Users: who may use the host, where each one's workspace is, and the one-task-at-a-time
//! slot that keeps two agents out of one workspace.
//!
//! A user key comes from the payload (Telegram `from.id`, or a direct request's
//! `user_id`), never from a header. It becomes a directory name only when it is plainly
//! safe (`[A-Za-z0-9_-]{1,64}`); any other key gets a name derived from its hash, so no
//! input can ever pick a path.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::shared::{is_plain_name, sha256_hex};

/// Longest user key accepted at all.
pub const MAX_USER_KEY_BYTES: usize = 256;

/// Why a user cannot start a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The key is empty or absurd.
    #[error(
        "user id {0:?} is not valid: it must be 1-{MAX_USER_KEY_BYTES} bytes without control characters"
    )]
    InvalidKey(String),
    /// Not on the allow-list.
    #[error("user {0} is not allowed to use this agent")]
    NotAllowed(String),
    /// A task of this user is running.
    #[error("a task of user {0} is already running; wait for it to finish")]
    Busy(String),
}

/// The directory name of `user_key`'s workspace.
pub fn workspace_dir_name(user_key: &str) -> String {
    let plain = is_plain_name(user_key);
    if plain {
        return user_key.to_string();
    }
    // '@' cannot appear in a plain name, so hashed names never collide with plain ones.
    format!("@{}", sha256_hex(user_key.as_bytes(), 16))
}

/// Checks a user key's shape (not whether it is allowed).
pub fn check_user_key(user_key: &str) -> Result<(), UserError> {
    let ok = !user_key.is_empty()
        && user_key.len() <= MAX_USER_KEY_BYTES
        && !user_key.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidKey(user_key.chars().take(80).collect()))
    }
}

/// The allow-list, workspaces and slots of all users.
pub struct Users {
    workspace_root: PathBuf,
    allowed: HashSet<String>,
    running: Mutex<HashMap<String, u64>>,
    next_slot: std::sync::atomic::AtomicU64,
}

impl Users {
    /// Users with workspaces under `workspace_root`, allowed if listed in `allowed`.
    pub fn new(workspace_root: PathBuf, allowed: impl IntoIterator<Item = String>) -> Self {
        let allowed: HashSet<String> = allowed.into_iter().collect();
        if allowed.is_empty() {
            tracing::warn!(
                "allowed_users is empty: every request will be refused (set AGENT_HOST_ALLOWED_USERS)"
            );
        }
        Self {
            workspace_root,
            allowed,
            running: Mutex::new(HashMap::new()),
            next_slot: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Refuses invalid or unlisted users.
    pub fn authorize(&self, user_key: &str) -> Result<(), UserError> {
        check_user_key(user_key)?;
        if self.allowed.contains(user_key) {
            Ok(())
        } else {
            Err(UserError::NotAllowed(user_key.to_string()))
        }
    }

    /// Claims the user's slot: at most one task per user runs at a time.
    pub fn claim(self: &Arc<Self>, user_key: &str) -> Result<Slot, UserError> {
        let mut running = self.lock();
        if running.contains_key(user_key) {
            return Err(UserError::Busy(user_key.to_string()));
        }
        let id = self
            .next_slot
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        running.insert(user_key.to_string(), id);
        Ok(Slot {
            users: self.clone(),
            user_key: user_key.to_string(),
            id,
        })
    }

    /// True while a task of `user_key` runs.
    pub fn is_busy(&self, user_key: &str) -> bool {
        self.lock().contains_key(user_key)
    }

    /// The user's workspace path (not created).
    pub fn workspace_path(&self, user_key: &str) -> PathBuf {
        self.workspace_root.join(workspace_dir_name(user_key))
    }

    /// The user's workspace, created on first use, as a canonical absolute path.
    pub fn workspace(&self, user_key: &str) -> std::io::Result<PathBuf> {
        let path = self.workspace_path(user_key);
        std::fs::create_dir_all(&path)?;
        path.canonicalize()
    }

    /// Where workspaces live.
    pub fn workspace_root(&self) -> &Path {
        &self.workspace_root
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A claimed user slot; dropping it frees the user for the next task.
#[must_use = "the slot is freed as soon as it is dropped"]
pub struct Slot {
    users: Arc<Users>,
    user_key: String,
    id: u64,
}

impl Slot {
    /// Whose slot this is.
    pub fn user_key(&self) -> &str {
        &self.user_key
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.users.lock();
        if running.get(&self.user_key) == Some(&self.id) {
            running.remove(&self.user_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_keys_name_their_directory() {
        assert_eq!(workspace_dir_name("12345"), "12345");
        assert_eq!(workspace_dir_name("alice_B-2"), "alice_B-2");
        for hostile in [
            "../x",
            "/etc",
            "",
            "a/b",
            ".",
            "..",
            "x".repeat(65).as_str(),
            "é",
        ] {
            let name = workspace_dir_name(hostile);
            assert!(
                name.starts_with('@') && name.len() == 33,
                "{hostile:?} → {name}"
            );
        }
        assert_ne!(workspace_dir_name("../x"), workspace_dir_name("../y"));
    }

    #[test]
    fn one_task_per_user() {
        let users = Arc::new(Users::new("/w".into(), ["1".to_string(), "2".to_string()]));
        let slot = users.claim("1").unwrap();
        assert_eq!(users.claim("1").err(), Some(UserError::Busy("1".into())));
        let other = users.claim("2").unwrap();
        drop(slot);
        assert!(users.claim("1").is_ok());
        drop(other);
    }

    #[test]
    fn the_allow_list_is_enforced() {
        let users = Users::new("/w".into(), ["1".to_string()]);
        assert!(users.authorize("1").is_ok());
        assert_eq!(users.authorize("2"), Err(UserError::NotAllowed("2".into())));
        assert!(matches!(users.authorize(""), Err(UserError::InvalidKey(_))));
        assert!(matches!(
            users.authorize("a\nb"),
            Err(UserError::InvalidKey(_))
        ));
    }
}
