//! Session state: the small key/value store a plugin keeps across the calls of one user
//! session (what the file tools have read and its mtime; Bash's working directory).
//!
//! Plugins get a fresh instance per call, so this is their only memory. Each plugin sees
//! its own namespace; quotas keep one plugin from filling the host's memory or disk.
//! A state can be backed by a JSON file so that successive `agent-host tools call`
//! processes on one workspace behave like one conversation, and so that a user's session
//! outlives a restarted host.
//!
//! # When it is written
//!
//! `set` and `delete` change the state in memory only (every later call sees the change at
//! once) and mark it changed. The file is written by [`SessionState::flush`], at the flush
//! points of whoever owns the state: the agent flushes when the tool calls of a model turn
//! end (after the turn's results are saved to the history) and when a task ends, however
//! it ends; `agent-host tools call` flushes before it exits. A flush that finds nothing
//! changed does nothing; otherwise it writes the whole state to a temporary file, `fsync`s
//! it and renames it over the old one, so the file always holds one complete state (never
//! a half-written one) and one turn costs at most one write and one `fsync`, whatever
//! number of calls it made.
//!
//! The crash guarantee: **state set during a model turn is written when the turn's calls
//! end; a host killed mid-turn loses that turn's changes and keeps every earlier turn's.**
//! (After a power loss the file holds the last flushed state or, as the directory entry
//! is not itself synced, possibly an earlier one, again complete.) A failed flush is
//! logged and the changes stay pending for the next flush point. Dropping a state with
//! pending changes flushes them as a last resort; nothing relies on it.

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

/// The entries and whether they changed since they were last written.
#[derive(Debug, Default)]
struct Current {
    entries: Entries,
    /// Changed since the last flush (only ever set for a state with a file).
    unsaved: bool,
}

/// One session's plugin state: plugin name → key → value.
#[derive(Debug)]
pub struct SessionState {
    current: Mutex<Current>,
    /// Where the state is written at each flush, if anywhere.
    file: Option<PathBuf>,
    /// Held for the whole of a flush, so flushes write their snapshots in order (a newer
    /// state is never overwritten by an older one).
    writing: Mutex<()>,
}

impl SessionState {
    /// A state that lives only in memory.
    pub fn in_memory() -> Self {
        Self {
            current: Mutex::new(Current::default()),
            file: None,
            writing: Mutex::new(()),
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

    /// A state persisted in `file`: loaded now if it exists, rewritten atomically at each
    /// [`Self::flush`] that follows a change.
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
            current: Mutex::new(Current {
                entries,
                unsaved: false,
            }),
            file: Some(file),
            writing: Mutex::new(()),
        })
    }

    /// The value `plugin` stored under `key`.
    pub fn get(&self, plugin: &str, key: &str) -> Option<String> {
        self.lock()
            .entries
            .get(plugin)
            .and_then(|map| map.get(key))
            .cloned()
    }

    /// Stores `value` under `key` for `plugin` (in memory; written at the next flush). The
    /// error is meant for the plugin (and through it the model): it names the quota that
    /// was exceeded.
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
        let mut current = self.lock();
        let map = current.entries.entry(plugin.to_string()).or_default();
        if map.get(key).is_some_and(|old| old == value) {
            return Ok(());
        }
        let used: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        let replaced = map.get(key).map_or(0, |old| key.len() + old.len());
        let total = used - replaced + key.len() + value.len();
        if total > MAX_PLUGIN_BYTES {
            return Err(format!(
                "session state of plugin {plugin} would grow to {total} bytes, over the limit of \
                 {MAX_PLUGIN_BYTES} bytes; delete keys that are no longer needed"
            ));
        }
        map.insert(key.to_string(), value.to_string());
        current.unsaved = self.file.is_some();
        Ok(())
    }

    /// Removes `key` of `plugin` (in memory; written at the next flush).
    pub fn delete(&self, plugin: &str, key: &str) {
        let mut current = self.lock();
        let removed = current
            .entries
            .get_mut(plugin)
            .and_then(|map| map.remove(key))
            .is_some();
        if removed {
            current.unsaved = self.file.is_some();
        }
    }

    /// The keys of `plugin` starting with `prefix`, sorted.
    pub fn keys(&self, plugin: &str, prefix: &str) -> Vec<String> {
        self.lock()
            .entries
            .get(plugin)
            .map(|map| {
                map.keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether changes wait for a flush (never, for a state in memory).
    pub fn has_unsaved_changes(&self) -> bool {
        self.lock().unsaved
    }

    /// Writes the state to its file if it changed since the last flush: atomically, with
    /// one `fsync`. Does nothing for a state in memory or an unchanged one. On failure the
    /// changes stay pending, for the next flush.
    pub fn flush(&self) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bytes = {
            let mut current = self.lock();
            if !current.unsaved {
                return Ok(());
            }
            let bytes = serde_json::to_vec_pretty(&current.entries)?;
            // Cleared before the write, so a change made while it runs is not lost: it
            // marks the state again and the next flush writes it.
            current.unsaved = false;
            bytes
        };
        let written = write_atomically(file, &bytes)
            .with_context(|| format!("cannot save session state to {}", file.display()));
        if written.is_err() {
            self.lock().unsaved = true;
        }
        written
    }

    /// [`Self::flush`] for owners with nobody to hand an error to (a task's end, a drop):
    /// a failure is logged, and the changes stay pending for the next flush.
    pub fn flush_or_warn(&self) {
        if self.has_unsaved_changes()
            && let Err(error) = self.flush()
        {
            tracing::warn!("plugin session state not saved, kept for the next flush: {error:#}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // A poisoned lock only means another call panicked mid-update of a map of strings;
        // the map itself is still consistent.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for SessionState {
    /// The last resort for an owner that did not reach its flush point (a panic): the
    /// guarantee rests on the explicit flushes, not on this.
    fn drop(&mut self) {
        self.flush_or_warn();
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
    fn a_state_in_memory_has_nothing_to_flush() {
        let state = SessionState::in_memory();
        state.set("files", "k", "v").unwrap();
        assert!(!state.has_unsaved_changes());
        state.flush().unwrap();
        assert_eq!(state.get("files", "k").as_deref(), Some("v"));
    }

    #[test]
    fn persistent_state_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s/state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "k", "v").unwrap();
        state.flush().unwrap();
        drop(state);
        let state = SessionState::persistent(&file).unwrap();
        assert_eq!(state.get("files", "k").as_deref(), Some("v"));
        state.delete("files", "k");
        state.flush().unwrap();
        assert_eq!(
            SessionState::persistent(&file).unwrap().get("files", "k"),
            None
        );
    }

    #[test]
    fn changes_are_written_at_the_flush_and_only_when_there_are_some() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "a", "1").unwrap();
        state.set("files", "b", "2").unwrap();
        assert!(state.has_unsaved_changes());
        assert!(!file.exists(), "nothing is written before the flush");
        state.flush().unwrap();
        assert!(!state.has_unsaved_changes());
        let reloaded = SessionState::persistent(&file).unwrap();
        assert_eq!(reloaded.keys("files", ""), ["a", "b"]);
        // Setting what is already there, or deleting what is not, changes nothing.
        state.set("files", "a", "1").unwrap();
        state.delete("files", "missing");
        assert!(!state.has_unsaved_changes());
        std::fs::remove_file(&file).unwrap();
        state.flush().unwrap();
        assert!(!file.exists(), "an unchanged state is not written again");
    }

    #[test]
    fn a_crash_keeps_exactly_the_flushed_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "turn-1", "kept").unwrap();
        state.set("bash", "cwd", "/w").unwrap();
        state.flush().unwrap();
        state.set("files", "turn-2", "lost").unwrap();
        state.delete("bash", "cwd");
        // A crash: no flush, not even the last-resort one of drop.
        std::mem::forget(state);
        let reloaded = SessionState::persistent(&file).unwrap();
        assert_eq!(reloaded.get("files", "turn-1").as_deref(), Some("kept"));
        assert_eq!(reloaded.get("files", "turn-2"), None);
        assert_eq!(reloaded.get("bash", "cwd").as_deref(), Some("/w"));
    }

    #[test]
    fn dropping_a_state_flushes_it_as_a_last_resort() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "k", "v").unwrap();
        drop(state);
        let reloaded = SessionState::persistent(&file).unwrap();
        assert_eq!(reloaded.get("files", "k").as_deref(), Some("v"));
    }

    #[test]
    fn a_failed_flush_keeps_the_changes_for_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("sessions");
        let file = blocker.join("state.json");
        let state = SessionState::persistent(&file).unwrap();
        state.set("files", "k", "v").unwrap();
        // The state's directory cannot be made while a file holds its name.
        std::fs::write(&blocker, "").unwrap();
        let error = state.flush().unwrap_err();
        assert!(format!("{error:#}").contains("cannot save session state"));
        assert!(state.has_unsaved_changes());
        std::fs::remove_file(&blocker).unwrap();
        state.flush().unwrap();
        let reloaded = SessionState::persistent(&file).unwrap();
        assert_eq!(reloaded.get("files", "k").as_deref(), Some("v"));
    }

    /// Set by [`a_killed_process_keeps_exactly_the_flushed_state`] for the child it kills.
    const CHILD_STATE_FILE: &str = "AGENT_HOST_TEST_KILLED_STATE_FILE";
    /// What the child prints once its state is set, flushed and changed again.
    const CHILD_READY: &str = "state child ready to be killed";

    /// The child of [`a_killed_process_keeps_exactly_the_flushed_state`]: it flushes one
    /// change, makes more, says so and waits to be killed. Run on its own (without the
    /// variable) it does nothing.
    #[test]
    fn child_killed_after_its_flush() {
        let Some(file) = std::env::var_os(CHILD_STATE_FILE) else {
            return;
        };
        let state = SessionState::persistent(PathBuf::from(file)).unwrap();
        state.set("files", "turn-1", "kept").unwrap();
        state.set("bash", "cwd", "/w").unwrap();
        state.flush().unwrap();
        state.set("files", "turn-2", "lost").unwrap();
        state.delete("bash", "cwd");
        println!("{CHILD_READY}");
        // Blocks until the parent kills this process (its stdin stays open until then).
        let _ = std::io::stdin().read_line(&mut String::new());
        // Reached only if the parent went away without killing: leave without flushing.
        std::process::exit(3);
    }

    #[test]
    fn a_killed_process_keeps_exactly_the_flushed_state() {
        use std::io::BufRead as _;
        use std::os::unix::process::ExitStatusExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sessions/u/plugin-state.json");
        let test_path = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{test_path}::child_killed_after_its_flush"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_STATE_FILE, &file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let ready = stdout
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(CHILD_READY));
        assert!(ready, "the child ran and reached the kill point");
        child.kill().unwrap(); // SIGKILL: no drop, no flush, no exit handlers
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        let reloaded = SessionState::persistent(&file).unwrap();
        assert_eq!(reloaded.get("files", "turn-1").as_deref(), Some("kept"));
        assert_eq!(reloaded.get("files", "turn-2"), None);
        assert_eq!(reloaded.get("bash", "cwd").as_deref(), Some("/w"));
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
