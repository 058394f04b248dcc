//! Starting jobs in the background, for every front end that acknowledges at once (the
//! AgentCore server, the Telegram bot): each job holds its `/ping` registration and its
//! user's slot until it ends, however it ends, and the host's shutdown waits for them.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::failure::user_message;
use super::tasks::TaskRegistry;
use super::{Answer, Job, JobRunner};
use crate::session::Slot;

/// How long cancelled jobs get to wind down after the grace period.
const CANCEL_WAIT: Duration = Duration::from_secs(3);

/// What a launched job ends with: its answer, or a sentence for its user.
pub type Outcome = Result<Answer, String>;

/// Runs jobs in the background on one runner; cheap to share behind an `Arc`.
pub struct Launcher {
    tasks: TaskRegistry,
    runner: Arc<dyn JobRunner>,
    jobs: TaskTracker,
    cancel_all: CancellationToken,
    next_task: AtomicU64,
    /// Drawn at the first task id, never at start (see [`Launcher::task_id`]).
    task_id_prefix: OnceLock<String>,
}

impl Launcher {
    /// Jobs run on `runner` and registered in `tasks`.
    pub fn new(runner: Arc<dyn JobRunner>, tasks: TaskRegistry) -> Self {
        Self {
            tasks,
            runner,
            jobs: TaskTracker::new(),
            cancel_all: CancellationToken::new(),
            next_task: AtomicU64::new(1),
            task_id_prefix: OnceLock::new(),
        }
    }

    /// The registry behind `/ping`.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.tasks
    }

    /// The runner (for what front ends ask besides jobs, e.g. forgetting a conversation).
    pub fn runner(&self) -> &Arc<dyn JobRunner> {
        &self.runner
    }

    /// A fresh task id.
    pub fn next_task_id(&self) -> String {
        self.task_id(self.next_task.fetch_add(1, Ordering::Relaxed))
    }

    /// The id of this process's `n`-th task: a random prefix, then `n` (`3f9a0c21-1`).
    ///
    /// The prefix is drawn from the OS at the first call, which comes with the first
    /// request, never at start: AgentCore may snapshot the process after start and restore
    /// it for every session (Platform V2), and ids made before that would repeat in every
    /// restored copy. Ids from two processes, or two restored copies, differ.
    pub fn task_id(&self, n: u64) -> String {
        let prefix = self.task_id_prefix.get_or_init(|| {
            let mut bytes = [0u8; 4];
            if getrandom::fill(&mut bytes).is_err() {
                // No OS randomness (never seen on Linux): the time is still per copy.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.subsec_nanos());
                bytes = nanos.to_le_bytes();
            }
            bytes.iter().map(|byte| format!("{byte:02x}")).collect()
        });
        format!("{prefix}-{n}")
    }

    /// The id the next task will get (for naming requests that carry no id).
    pub fn peek_task_id(&self) -> u64 {
        self.next_task.load(Ordering::Relaxed)
    }

    /// A cancellation token for a new job: cancelled by its owner or at shutdown.
    pub fn job_cancel(&self) -> CancellationToken {
        self.cancel_all.child_token()
    }

    /// Starts `job` in the background, holding its task registration and `slot` until it
    /// ends. The receiver gets the answer or an error message meant for a user; the
    /// registration and the slot are released before it does.
    pub fn launch(&self, job: Job, slot: Slot) -> oneshot::Receiver<Outcome> {
        let guard = self
            .tasks
            .start(format!("task {} of user {}", job.task_id, job.user_key));
        let info = self.tasks.info();
        tracing::info!(
            task = %job.task_id,
            user = %job.user_key,
            active_count = info.active_count,
            running_jobs = %json!(info.running_jobs),
            "task started"
        );
        let (task_id, cancel) = (job.task_id.clone(), job.cancel.clone());
        let work = AssertUnwindSafe(self.runner.run(job)).catch_unwind();
        let tasks = self.tasks.clone();
        let (sender, receiver) = oneshot::channel();
        self.jobs.spawn(
            async move {
                // The error chain is for the log; the caller gets a sentence for a user.
                let result = match work.await {
                    Ok(Ok(answer)) => {
                        tracing::info!(task = %task_id, "task completed");
                        Ok(answer)
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(task = %task_id, "task failed: {error:#}");
                        Err(user_message(&task_id, &error, cancel.is_cancelled()))
                    }
                    Err(_) => {
                        tracing::error!(task = %task_id, "task crashed (panicked)");
                        Err(format!(
                            "The task failed: the host ran into an internal error. The operator \
                             can find the details in the host's log under task {task_id}."
                        ))
                    }
                };
                // Free the user and the busy status before anyone hears the answer.
                drop(slot);
                drop(guard);
                let info = tasks.info();
                tracing::info!(
                    active_count = info.active_count,
                    running_jobs = %json!(info.running_jobs),
                    "task registry"
                );
                let _ = sender.send(result);
            }
            .in_current_span(),
        );
        receiver
    }

    /// Runs `work` (a front end's follow-up of a job, e.g. delivering its answer) as part
    /// of the jobs that shutdown waits for.
    pub fn track(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.jobs.spawn(work.in_current_span());
    }

    /// Takes no new jobs, gives running ones `grace` to finish, then cancels what is left
    /// and waits a little more for it to wind down.
    pub async fn shutdown(&self, grace: Duration) {
        self.jobs.close();
        if tokio::time::timeout(grace, self.jobs.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(
            running = self.tasks.active_count(),
            "grace period over: cancelling running tasks"
        );
        self.cancel_all.cancel();
        if tokio::time::timeout(CANCEL_WAIT, self.jobs.wait())
            .await
            .is_err()
        {
            tracing::error!("tasks did not stop after cancellation; exiting anyway");
        }
    }
}
