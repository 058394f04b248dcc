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

use crate::model::Usage;

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
    /// The user's workspace (canonical, created).
    pub workspace: PathBuf,
    /// Set when the task must stop (the user stopped it, or the host shuts down).
    pub cancel: CancellationToken,
    /// Where to report progress.
    pub progress: Progress,
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
