//! One task as every front end hands it over: a [`Job`] given to a [`JobRunner`], with
//! its [`Progress`] streamed back and an [`Answer`] at the end.
//!
//! A front end (the AgentCore server, `agent-host run`, the Telegram bot) owns the
//! plumbing (slot, task registration, cancellation, answering its user); the runner owns
//! the work. The agent is the production runner; tests plug in their own.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{ImageRef, Usage};

/// One task for one user.
pub struct Job {
    /// The task's id (as returned to the caller).
    pub task_id: String,
    /// Whose task it is.
    pub user_key: String,
    /// The AgentCore runtime session id, when the request had one (for logs only).
    pub session_id: Option<String>,
    /// What to do.
    pub prompt: String,
    /// Pictures that came with the prompt, saved in the workspace (see
    /// [`fit_for_model`](crate::model::fit_for_model)); the model sees them with it.
    pub images: Vec<ImageRef>,
    /// The user's workspace (canonical, created).
    pub workspace: PathBuf,
    /// Set when the task must stop (the user stopped it, or the host shuts down).
    pub cancel: CancellationToken,
    /// Where to report progress.
    pub progress: Progress,
}

/// Most lines of a tool's result carried in [`ProgressEvent::ToolFinished`].
pub const PREVIEW_LINES: usize = 12;
/// Most characters of a tool's result carried in [`ProgressEvent::ToolFinished`].
pub const PREVIEW_CHARS: usize = 1200;

/// The start of `text`: at most [`PREVIEW_LINES`] lines and [`PREVIEW_CHARS`] characters,
/// with `…` where something was left out.
pub fn preview(text: &str) -> String {
    let mut preview = String::new();
    let mut cut = false;
    for (index, line) in text.trim_end().lines().enumerate() {
        if index == PREVIEW_LINES {
            cut = true;
            break;
        }
        if index > 0 {
            preview.push('\n');
        }
        preview.push_str(line);
        if preview.chars().count() > PREVIEW_CHARS {
            cut = true;
            break;
        }
    }
    if preview.chars().count() > PREVIEW_CHARS {
        preview = preview.chars().take(PREVIEW_CHARS).collect();
    }
    if cut {
        preview.push('…');
    }
    preview
}

/// Progress of a running job, streamed to `mode: "stream"` callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// Text the model produced.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call started.
    ToolStarted {
        /// The tool's name.
        tool: String,
        /// Its input (JSON text).
        input: String,
    },
    /// A tool call finished.
    ToolFinished {
        /// The tool's name.
        tool: String,
        /// Whether the result was an error.
        is_error: bool,
        /// The start of the result the model got (at most [`PREVIEW_LINES`] lines of at
        /// most [`PREVIEW_CHARS`] characters in all), for displays of progress.
        output: String,
    },
    /// A model turn finished.
    TurnFinished {
        /// Its number in the task (from 1).
        turn: u32,
        /// Tokens used by the task so far.
        usage: Usage,
    },
}

/// The sending side of a job's progress. Never blocks the job: when the listener is slow
/// or gone, events are dropped (the final answer travels separately and is never lost).
#[derive(Clone)]
pub struct Progress {
    sender: Option<mpsc::Sender<ProgressEvent>>,
}

impl Progress {
    /// Progress nobody listens to.
    pub fn discard() -> Self {
        Self { sender: None }
    }

    /// Progress delivered to the returned receiver (buffering `capacity` events).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<ProgressEvent>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (
            Self {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// Reports `event` if anyone listens.
    pub fn send(&self, event: ProgressEvent) {
        if let Some(sender) = &self.sender {
            let _ = sender.try_send(event);
        }
    }
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The final answer for the user.
    pub text: String,
    /// Tokens used by the task's model requests.
    pub usage: Usage,
}

/// Runs jobs. Implementations must return promptly once `job.cancel` is cancelled.
pub trait JobRunner: Send + Sync + 'static {
    /// Runs `job` to its answer, or fails with a message for the user.
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>>;

    /// Forgets `user_key`'s conversation (`/new`); the workspace stays. Runners that keep
    /// no conversation have nothing to forget.
    fn forget(&self, user_key: &str) -> BoxFuture<'static, anyhow::Result<()>> {
        let _ = user_key;
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_keeps_the_first_lines_and_says_when_it_cut() {
        assert_eq!(preview("one\ntwo\n"), "one\ntwo");
        let many: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        let cut = preview(&many);
        assert_eq!(cut.lines().count(), PREVIEW_LINES);
        assert!(
            cut.starts_with("line 1\n") && cut.ends_with("line 12…"),
            "{cut}"
        );
        let long = "é".repeat(5000);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
