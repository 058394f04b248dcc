//! Conversation histories that outlive the microVM.
//!
//! The agent keeps the conversation in memory for speed and writes every change through
//! to a [`HistoryStore`], so a recycled microVM (or a crashed host) continues where the
//! user left off. Two stores keep the same format, one JSON line per [`Message`]:
//!
//! - [`FileHistory`]: files on local disk (the embedded default), appended in place and
//!   `fsync`'d.
//! - [`S3History`]: one S3 object per user, for deployments where local disk does not
//!   survive the microVM.
//!
//! Both name a user's history after [`workspace_dir_name`](super::workspace_dir_name), so a
//! user key never becomes a path or an object key of its own choosing.

mod file;
mod s3;

pub use file::FileHistory;
pub use s3::S3History;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;

use crate::model::types::Message;

/// Where conversations are kept so a recycled microVM loses nothing.
pub trait HistoryStore: Send + Sync + 'static {
    /// The user's whole conversation, oldest first (empty if none).
    fn load<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Message>>>;
    /// Appends messages (durably: when this returns Ok they survive a crash).
    fn append<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>>;
    /// Replaces the whole conversation (compaction).
    fn replace<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>>;
    /// Forgets the conversation (the next task starts a new one).
    fn clear<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// The name a user's history is stored under, without directory or prefix.
fn stored_name(user_key: &str) -> String {
    format!("{}.jsonl", super::workspace_dir_name(user_key))
}

/// Messages as JSON lines, each ending in `\n`. JSON escapes newlines inside strings, so
/// one line is always one message.
fn encode_lines(messages: &[Message]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for message in messages {
        serde_json::to_writer(&mut bytes, message)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// A stored history as read back.
#[derive(Debug)]
struct Decoded {
    /// The messages, oldest first.
    messages: Vec<Message>,
    /// How many leading bytes hold the good messages: where the next append belongs once
    /// a torn last line is cut off.
    good_len: usize,
    /// The last good message lacks its closing `\n` (the next append must add it first).
    needs_newline: bool,
    /// A torn last line was skipped.
    torn: bool,
}

/// Reads JSON lines written by [`encode_lines`], naming `source` (file or object) in
/// messages.
///
/// A last line that does not parse is what a crash in the middle of an append leaves
/// behind: it is skipped with a warning, because every message before it is intact. A bad
/// line with good lines after it cannot come from an interrupted append, so it is an error
/// rather than a silent loss of history. Blank lines are ignored.
fn decode_lines(bytes: &[u8], source: &str) -> anyhow::Result<Decoded> {
    let mut decoded = Decoded {
        messages: Vec::new(),
        good_len: 0,
        needs_newline: false,
        torn: false,
    };
    // A line that failed to parse: fatal only if a non-blank line follows it.
    let mut bad: Option<(usize, serde_json::Error)> = None;
    let mut start = 0;
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let end = start + line.len();
        let terminated = end < bytes.len();
        let next = if terminated { end + 1 } else { end };
        if !line.trim_ascii().is_empty() {
            if let Some((number, error)) = bad.take() {
                anyhow::bail!(
                    "{source}: line {number} is not a valid message ({error}); the conversation \
                     history is damaged: repair or delete that line, or delete the whole history \
                     to start over"
                );
            }
            match serde_json::from_slice::<Message>(line) {
                Ok(message) => {
                    decoded.messages.push(message);
                    decoded.good_len = next;
                    decoded.needs_newline = !terminated;
                }
                Err(error) => bad = Some((index + 1, error)),
            }
        }
        start = next;
    }
    if let Some((number, error)) = bad {
        tracing::warn!(
            "{source}: skipping its last line ({number}), left incomplete by an interrupted \
             write ({error}); the {} messages before it are intact",
            decoded.messages.len()
        );
        decoded.torn = true;
    }
    Ok(decoded)
}

/// One async lock per user, so one user's operations run one at a time while other users
/// proceed. The value behind each lock is the store's per-user state.
///
/// Entries are never removed: a host serves the few users of its microVM, and dropping an
/// entry while a task waits on it would let two operations of one user overlap.
struct PerUser<T> {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<T>>>>,
}

impl<T: Default> PerUser<T> {
    fn new() -> Self {
        Self {
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for exclusive use of `name`'s state. The guard owns its lock, so it can move
    /// into a blocking task and still serialise the user if the caller stops waiting.
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<T> {
        let lock = {
            // The map stays consistent even if a holder panicked: take it anyway.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(name.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::types::Block;

    fn text(text: &str) -> Message {
        Message::user_text(text)
    }

    #[test]
    fn lines_round_trip_and_report_their_extent() {
        let messages = vec![text("a"), text("b\nc")];
        let bytes = encode_lines(&messages).unwrap();
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 2);
        let decoded = decode_lines(&bytes, "mem").unwrap();
        assert_eq!(decoded.messages, messages);
        assert_eq!(decoded.good_len, bytes.len());
        assert!(!decoded.needs_newline && !decoded.torn);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_measured() {
        let mut bytes = encode_lines(&[text("a")]).unwrap();
        let good = bytes.len();
        bytes.extend_from_slice(br#"{"role":"user","content":[{"type":"te"#);
        let decoded = decode_lines(&bytes, "mem").unwrap();
        assert_eq!(decoded.messages, vec![text("a")]);
        assert_eq!(decoded.good_len, good);
        assert!(decoded.torn);

        // Zero-filled blocks after a crash look the same.
        let mut zeros = encode_lines(&[text("a")]).unwrap();
        zeros.extend_from_slice(&[0; 64]);
        assert!(decode_lines(&zeros, "mem").unwrap().torn);
    }

    #[test]
    fn a_last_message_without_newline_is_kept() {
        let mut bytes = encode_lines(&[text("a"), text("b")]).unwrap();
        bytes.pop();
        let decoded = decode_lines(&bytes, "mem").unwrap();
        assert_eq!(decoded.messages.len(), 2);
        assert!(decoded.needs_newline && !decoded.torn);
        assert_eq!(decoded.good_len, bytes.len());
    }

    #[test]
    fn a_bad_middle_line_names_source_and_line() {
        let mut bytes = encode_lines(&[text("a")]).unwrap();
        bytes.extend_from_slice(b"\n{not json}\n");
        bytes.extend(encode_lines(&[text("b")]).unwrap());
        let error = decode_lines(&bytes, "some/file.jsonl")
            .unwrap_err()
            .to_string();
        assert!(error.contains("some/file.jsonl: line 3"), "{error}");
    }

    #[test]
    fn every_block_kind_survives() {
        let message = Message {
            role: crate::model::types::Role::Assistant,
            content: vec![
                Block::Text {
                    text: "é\u{2028}".into(),
                },
                Block::ToolUse {
                    id: "t1".into(),
                    name: "Read".into(),
                    input: serde_json::json!({"path": "a\nb"}),
                },
                Block::ToolResult {
                    tool_use_id: "t1".into(),
                    content: "ok".into(),
                    is_error: false,
                },
            ],
        };
        let bytes = encode_lines(std::slice::from_ref(&message)).unwrap();
        assert_eq!(decode_lines(&bytes, "mem").unwrap().messages, vec![message]);
    }
}
