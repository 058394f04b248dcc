//! Session state: the small key/value store a plugin keeps across the calls of one user
//! session (what the file tools have read and its mtime; later, Bash's working directory).
//!
//! Plugins get a fresh instance per call, so this is their only memory. Each plugin sees
//! its own namespace; quotas keep one plugin from filling the host's memory or disk.
//! A state can be backed by a JSON file so that successive `agent-host tools call`
//! processes on one workspace behave like one conversation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;

use crate::shared::write_atomically;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest total (keys + values) one plugin may keep in one session, in bytes.
pub const MAX_PLUGIN_BYTES: usize = 4 * 1024 * 1024;

type Entries = BTreeMap<String, BTreeMap<String, String>>;

/// One session's plugin state: plugin name → key → value.
#[derive(Debug)]
pub struct SessionState {
    entries: Mutex<Entries>,
    /// Where the state is persisted after each change, if anywhere.
    file: Option<PathBuf>,
}

impl SessionState {
    /// A state that lives only in memory.
    pub fn in_memory() -> Self {
        Self {
            entries: Mutex::new(Entries::new()),
            file: None,
        }
    }

    /// The state of session `name` (a plain name) kept under `state_dir`, in
    /// `<state_dir>/sessions/<name>/plugin-state.json`.
    pub fn open(state_dir: &Path, name: &str) -> anyhow::Result<Self> {
        Self::persistent(
            state_dir
                .join("sessions")
                .join(name)
                .join("plugin-state.json"),
        )
    }

    /// A state persisted in `file` (loaded now if it exists, rewritten atomically after
    /// every change).
    pub fn persistent(file: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let file = file.into();
        let entries = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "session state file {} is not valid JSON; delete it to start the session afresh",
                    file.display()
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Entries::new(),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read session state {}", file.display()));
            }
        };
        Ok(Self {
            entries: Mutex::new(entries),
            file: Some(file),
        })
    }

    /// The value `plugin` stored under `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Option<String> {
        self.lock()
            .get(plugin)
            .and_then(|map| map.get(key))
            .cloned()
    }

    /// Stores `value` under `key` for `plugin`. The error is meant for the plugin (and
    /// through it the model): it names the quota that was exceeded.
    pub fn set(&self, plugin: &str, key: &str, value: &str) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "session-state key of {} bytes is over the limit of {MAX_KEY_BYTES} bytes",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "session-state value of {} bytes is over the limit of {MAX_VALUE_BYTES} bytes",
                value.len()
            ));
        }
        let snapshot = {
            let mut entries = self.lock();
            let map = entries.entry(plugin.to_string()).or_default();
            let current: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
            let replaced = map.get(key).map_or(0, |old| key.len() + old.len());
            let total = current - replaced + key.len() + value.len();
            if total > MAX_PLUGIN_BYTES {
                return Err(format!(
                    "session state of plugin {plugin} would grow to {total} bytes, over the limit of \
                     {MAX_PLUGIN_BYTES} bytes; delete keys that are no longer needed"
                ));
            }
            map.insert(key.to_string(), value.to_string());
            self.file.as_ref().map(|_| entries.clone())
        };
        self.persist(snapshot).map_err(|error| format!("{error:#}"))
    }

    /// Removes `key` of `plugin`.
    pub fn delete(&self, plugin: &str, key: &str) -> anyhow::Result<()> {
        let snapshot = {
            let mut entries = self.lock();
            let removed = entries
                .get_mut(plugin)
                .and_then(|map| map.remove(key))
                .is_some();
            if !removed {
                return Ok(());
            }
            self.file.as_ref().map(|_| entries.clone())
        };
        self.persist(snapshot)
    }

    /// The keys of `plugin` starting with `prefix`, sorted.
    pub fn keys(&self, plugin: &str, prefix: &str) -> Vec<String> {
        self.lock()
            .get(plugin)
            .map(|map| {
                map.keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A poisoned lock only means another call panicked mid-update of a map of strings;
        // the map itself is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn persist(&self, snapshot: Option<Entries>) -> anyhow::Result<()> {
        let (Some(file), Some(entries)) = (&self.file, snapshot) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&entries)?;
        write_atomically(file, &bytes)
            .with_context(|| format!("cannot save session state to {}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_have_separate_namespaces() {
        let state = SessionState::in_memory();
        state.set("files", "read:/a", "1").unwrap();
        assert_eq!(state.get("files", "read:/a").as_deref(), Some("1"));
        assert_eq!(state.get("search", "read:/a"), None);
        assert_eq!(state.keys("files", "read:"), vec!["read:/a".to_string()]);
    }

    #[test]
    fn quotas_are_enforced_with_a_clear_message() {
        let state = SessionState::in_memory();
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(
            state
                .set("p", "k", &big)
                .unwrap_err()
                .contains("over the limit")
        );
        let value = "x".repeat(MAX_VALUE_BYTES);
        let mut failed = None;
        for i in 0..(MAX_PLUGIN_BYTES / MAX_VALUE_BYTES + 2) {
            if let Err(message) = state.set("p", &format!("k{i}"), &value) {
                failed = Some(message);
                break;
            }
        }
        assert!(
            failed
                .expect("the total quota is hit")
                .contains("delete keys")
        );
    }

    #[test]
    fn persistent_state_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s/state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "k", "v").unwrap();
        drop(state);
        let state = SessionState::persistent(&file).unwrap();
        assert_eq!(state.get("files", "k").as_deref(), Some("v"));
        state.delete("files", "k").unwrap();
        assert_eq!(
            SessionState::persistent(&file).unwrap().get("files", "k"),
            None
        );
    }

    #[test]
    fn a_corrupt_state_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        std::fs::write(&file, "{not json").unwrap();
        let error = SessionState::persistent(&file).unwrap_err();
        assert!(format!("{error:#}").contains("delete it"));
    }
}
