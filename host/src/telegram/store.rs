//! What the bot remembers across a host restart, in `<state_dir>/telegram/`:
//!
//! - `seen.json`: the latest update ids handled, so a delivery repeated by Telegram or the
//!   relay (after a timeout, or after a restart) never starts a second task;
//! - `strangers.json`: the day each stranger was last refused, so each gets at most one
//!   refusal a day;
//! - `verbosity.json`: each user's `/verbose` level (users not in it see `steps`);
//! - `usage.json`: each user's tokens and estimated cost, last task and total (`/usage`);
//! - `uploads.json`: files each user sent that wait for their next prompt;
//! - `offered.json`: the files the latest answers offered with buttons;
//! - `offset`: the next `getUpdates` offset of the long-polling mode;
//! - `answers/<chat>-<task>.json`: each final answer from before it is sent until
//!   Telegram accepted all of it (at-least-once delivery; see [`PendingAnswer`]).
//!
//! Every file is replaced atomically, so a crash leaves the old or the new version. A
//! file that cannot be read is logged and treated as empty (the bot keeps answering). A
//! recycled microVM loses this directory with its disk.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::uploads::Upload;
use super::usage::{TaskUsage, UserUsage};
use super::view::Verbosity;
use crate::shared::{unix_seconds, write_atomically};

/// How many recent update ids are remembered.
const SEEN_KEPT: usize = 2048;
/// How many answers' offered files are remembered (older buttons stop working).
const OFFERS_KEPT: usize = 256;
/// How many strangers are remembered (the oldest refusals are forgotten first).
const STRANGERS_KEPT: usize = 4096;

/// A final answer not yet (wholly) accepted by Telegram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAnswer {
    /// The chat to answer in.
    pub chat_id: i64,
    /// The task it answers.
    pub task_id: String,
    /// The message it answers, if any.
    pub reply_to: Option<i64>,
    /// The answer (Markdown).
    pub text: String,
    /// How many of its messages Telegram has accepted (a resend starts after them).
    pub messages_sent: usize,
    /// Buttons under its last message (the files its task made, to fetch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyboard: Option<serde_json::Value>,
}

/// The bot's memory in one directory.
pub struct Store {
    dir: PathBuf,
    seen: Mutex<Seen>,
    strangers: Mutex<BTreeMap<i64, u64>>,
    /// `/verbose` levels by user id, as their names.
    verbosity: Mutex<BTreeMap<i64, String>>,
    /// What each user's tasks used.
    usage: Mutex<BTreeMap<i64, UserUsage>>,
    /// Uploads waiting for each user's next prompt.
    uploads: Mutex<BTreeMap<i64, Vec<Upload>>>,
    /// Files offered under answers, by `<owner>:<task>`, oldest first.
    offered: Mutex<VecDeque<(String, Vec<String>)>>,
}

#[derive(Default, Serialize, Deserialize)]
struct Seen {
    ids: VecDeque<i64>,
}

impl Store {
    /// The store in `dir` (created when missing).
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("answers")).map_err(|error| {
            anyhow::anyhow!(
                "cannot create the Telegram state in {}: {error}",
                dir.display()
            )
        })?;
        Ok(Self {
            seen: Mutex::new(read_json(&dir.join("seen.json")).unwrap_or_default()),
            strangers: Mutex::new(read_json(&dir.join("strangers.json")).unwrap_or_default()),
            verbosity: Mutex::new(read_json(&dir.join("verbosity.json")).unwrap_or_default()),
            usage: Mutex::new(read_json(&dir.join("usage.json")).unwrap_or_default()),
            uploads: Mutex::new(read_json(&dir.join("uploads.json")).unwrap_or_default()),
            offered: Mutex::new(read_json(&dir.join("offered.json")).unwrap_or_default()),
            dir: dir.to_path_buf(),
        })
    }

    /// Records `update_id` as handled; false when it already was.
    pub fn first_time(&self, update_id: i64) -> bool {
        let mut seen = lock(&self.seen);
        if seen.ids.contains(&update_id) {
            return false;
        }
        seen.ids.push_back(update_id);
        while seen.ids.len() > SEEN_KEPT {
            seen.ids.pop_front();
        }
        self.write("seen.json", &*seen);
        true
    }

    /// Whether `user_id` should hear a refusal today (and notes that they did).
    pub fn refuse_today(&self, user_id: i64) -> bool {
        let today = unix_seconds() / 86_400;
        let mut strangers = lock(&self.strangers);
        if strangers.get(&user_id) == Some(&today) {
            return false;
        }
        strangers.insert(user_id, today);
        if strangers.len() > STRANGERS_KEPT {
            let oldest = strangers
                .iter()
                .min_by_key(|(_, day)| **day)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                strangers.remove(&oldest);
            }
        }
        self.write("strangers.json", &*strangers);
        true
    }

    /// `user_id`'s `/verbose` level.
    pub fn verbosity(&self, user_id: i64) -> Verbosity {
        lock(&self.verbosity)
            .get(&user_id)
            .and_then(|name| Verbosity::named(name))
            .unwrap_or_default()
    }

    /// Remembers `user_id`'s `/verbose` level.
    pub fn set_verbosity(&self, user_id: i64, verbosity: Verbosity) {
        let mut levels = lock(&self.verbosity);
        if verbosity == Verbosity::default() {
            levels.remove(&user_id);
        } else {
            levels.insert(user_id, verbosity.name().to_string());
        }
        self.write("verbosity.json", &*levels);
    }

    /// What `user_id`'s tasks used.
    pub fn usage(&self, user_id: i64) -> UserUsage {
        lock(&self.usage).get(&user_id).cloned().unwrap_or_default()
    }

    /// Counts a finished task of `user_id`.
    pub fn record_usage(&self, user_id: i64, task: TaskUsage) {
        let mut usage = lock(&self.usage);
        usage.entry(user_id).or_default().add(task);
        self.write("usage.json", &*usage);
    }

    /// Keeps `upload` for `user_id`'s next prompt.
    pub fn add_upload(&self, user_id: i64, upload: Upload) {
        let mut uploads = lock(&self.uploads);
        uploads.entry(user_id).or_default().push(upload);
        self.write("uploads.json", &*uploads);
    }

    /// The uploads waiting for `user_id`'s prompt, handed over (and forgotten here).
    pub fn take_uploads(&self, user_id: i64) -> Vec<Upload> {
        let mut uploads = lock(&self.uploads);
        let taken = uploads.remove(&user_id).unwrap_or_default();
        if !taken.is_empty() {
            self.write("uploads.json", &*uploads);
        }
        taken
    }

    /// Remembers the `files` offered under task `task_id`'s answer to `owner`.
    pub fn offer_files(&self, owner: i64, task_id: &str, files: Vec<String>) {
        let mut offered = lock(&self.offered);
        offered.push_back((format!("{owner}:{task_id}"), files));
        while offered.len() > OFFERS_KEPT {
            offered.pop_front();
        }
        self.write("offered.json", &*offered);
    }

    /// File `index` of those offered under task `task_id`'s answer to `owner`.
    pub fn offered_file(&self, owner: i64, task_id: &str, index: usize) -> Option<String> {
        let key = format!("{owner}:{task_id}");
        lock(&self.offered)
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .and_then(|(_, files)| files.get(index).cloned())
    }

    /// The saved `getUpdates` offset (0 when none).
    pub fn offset(&self) -> i64 {
        read_json(&self.dir.join("offset")).unwrap_or(0)
    }

    /// Saves the `getUpdates` offset.
    pub fn set_offset(&self, offset: i64) {
        self.write("offset", &offset);
    }

    /// Records `answer` before any of it is sent (or records its progress).
    pub fn save_answer(&self, answer: &PendingAnswer) {
        self.write(&answer_file(answer), answer);
    }

    /// Forgets `answer`: Telegram accepted all of it.
    pub fn answer_delivered(&self, answer: &PendingAnswer) {
        let path = self.dir.join(answer_file(answer));
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {error}", path.display());
        }
    }

    /// The answers recorded and not yet delivered, oldest first.
    pub fn pending_answers(&self) -> Vec<PendingAnswer> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("answers")) else {
            return Vec::new();
        };
        let mut answers: Vec<(SystemTime, PendingAnswer)> = entries
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "json"))
            .filter_map(|entry| {
                let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, read_json(&entry.path())?))
            })
            .collect();
        answers.sort_by_key(|(modified, _)| *modified);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    fn write(&self, name: &str, value: &impl Serialize) {
        let path = self.dir.join(name);
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        if let Err(error) = write_atomically(&path, &bytes) {
            tracing::error!(
                "cannot save the Telegram state {}: {error:#}",
                path.display()
            );
        }
    }
}

fn answer_file(answer: &PendingAnswer) -> String {
    let task: String = answer
        .task_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("answers/{}-{task}.json", answer.chat_id)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(
                "cannot read {}: {error}; starting without it",
                path.display()
            );
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|error| {
            tracing::warn!(
                "{} is damaged ({error}); starting without it",
                path.display()
            );
        })
        .ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_ids_stay_seen_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.first_time(7));
        assert!(!store.first_time(7));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.first_time(7));
        assert!(store.first_time(8));
    }

    #[test]
    fn only_the_latest_ids_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in 0..(SEEN_KEPT as i64 + 10) {
            assert!(store.first_time(id));
        }
        assert!(store.first_time(0), "the oldest ids are forgotten");
        assert!(!store.first_time(SEEN_KEPT as i64 + 9));
    }

    #[test]
    fn a_stranger_is_refused_once_a_day_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.refuse_today(5));
        assert!(!store.refuse_today(5));
        assert!(store.refuse_today(6));
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.refuse_today(5));
    }

    #[test]
    fn verbosity_is_remembered_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verbosity(5), Verbosity::Steps);
        store.set_verbosity(5, Verbosity::Off);
        store.set_verbosity(6, Verbosity::Full);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verbosity(5), Verbosity::Off);
        assert_eq!(store.verbosity(6), Verbosity::Full);
        store.set_verbosity(6, Verbosity::Steps);
        assert_eq!(
            Store::open(dir.path()).unwrap().verbosity(6),
            Verbosity::Steps
        );
    }

    #[test]
    fn usage_adds_up_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let task = |id: &str, input| TaskUsage {
            task_id: id.into(),
            model_id: "m".into(),
            tokens: super::super::usage::Tokens {
                input,
                ..Default::default()
            },
            cost_usd: Some(0.5),
        };
        store.record_usage(5, task("1", 10));
        let store = Store::open(dir.path()).unwrap();
        store.record_usage(5, task("2", 32));
        let usage = store.usage(5);
        assert_eq!(
            (usage.tasks, usage.tokens.input, usage.cost_usd),
            (2, 42, 1.0)
        );
        assert_eq!(usage.last.unwrap().task_id, "2");
        assert_eq!(store.usage(6), UserUsage::default());
    }

    #[test]
    fn uploads_wait_across_a_reopen_and_offers_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let upload = Upload {
            name: "a.log".into(),
            relative: ".agent-host/uploads/a.log".into(),
            bytes: 3,
            image: None,
        };
        store.add_upload(5, upload.clone());
        store.offer_files(5, "9", vec!["src/new.rs".into()]);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.take_uploads(6).is_empty());
        assert_eq!(store.take_uploads(5), [upload]);
        assert!(store.take_uploads(5).is_empty(), "handed over once");
        assert_eq!(store.offered_file(5, "9", 0).as_deref(), Some("src/new.rs"));
        assert_eq!(store.offered_file(5, "9", 1), None);
        assert_eq!(store.offered_file(6, "9", 0), None, "only to its owner");
    }

    #[test]
    fn pending_answers_survive_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut answer = PendingAnswer {
            chat_id: -100,
            task_id: "3".into(),
            reply_to: Some(9),
            text: "the answer".into(),
            messages_sent: 0,
            keyboard: None,
        };
        store.save_answer(&answer);
        answer.messages_sent = 1;
        store.save_answer(&answer);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.pending_answers(), vec![answer.clone()]);
        reopened.answer_delivered(&answer);
        assert!(store.pending_answers().is_empty());
    }

    #[test]
    fn damaged_files_are_treated_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seen.json"), b"{not json").unwrap();
        std::fs::write(dir.path().join("offset"), b"x").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.first_time(1));
        assert_eq!(store.offset(), 0);
        store.set_offset(42);
        assert_eq!(store.offset(), 42);
    }
}
