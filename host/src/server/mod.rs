//! The AgentCore container contract over HTTP: `GET /ping` and `POST /invocations`
//! (see `shared/reference/agentcore.md`), acknowledging each request at once and running
//! its task in the background.
//!
//! Handlers are thin: parse ([`payload`]), authorize and claim the user's slot
//! ([`crate::session::Users`]), register the task ([`tasks`]), hand the job to the
//! [`JobRunner`], answer in the requested mode.

mod error;
pub mod payload;
pub mod tasks;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

pub use error::ApiError;
pub use payload::{DirectRequest, Invocation, Mode, TelegramUpdate};
pub use tasks::{Clock, Ping, PingStatus, TaskGuard, TaskInfo, TaskRegistry};

use crate::agent::failure::user_message;
use crate::agent::{Answer, Job, JobRunner, Progress, ProgressEvent};
use crate::session::{Slot, UserError, Users};

/// The header carrying AgentCore's runtime session id (logged, never trusted).
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";
/// The header carrying AgentCore's request id (logged).
pub const REQUEST_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-request-id";

/// Settings of the HTTP front door.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Bodies larger than this get a 413.
    pub max_body_bytes: usize,
    /// On SIGTERM, how long running tasks may take to finish before they are cancelled.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How long cancelled tasks get to wind down after the grace period.
const CANCEL_WAIT: Duration = Duration::from_secs(3);

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    tasks: TaskRegistry,
    users: Arc<Users>,
    runner: Arc<dyn JobRunner>,
    settings: ServerSettings,
    jobs: TaskTracker,
    cancel_all: CancellationToken,
    next_task: AtomicU64,
}

impl AppState {
    /// State for a server whose jobs run on `runner`, stamping `/ping` from the system
    /// clock.
    pub fn new(users: Arc<Users>, runner: Arc<dyn JobRunner>, settings: ServerSettings) -> Self {
        Self::with_tasks(users, runner, settings, TaskRegistry::new())
    }

    /// The same with `/ping` stamped from `clock` (tests use a clock they move by hand;
    /// see [`TaskRegistry::with_clock`]).
    pub fn with_clock(
        users: Arc<Users>,
        runner: Arc<dyn JobRunner>,
        settings: ServerSettings,
        clock: Clock,
    ) -> Self {
        Self::with_tasks(users, runner, settings, TaskRegistry::with_clock(clock))
    }

    fn with_tasks(
        users: Arc<Users>,
        runner: Arc<dyn JobRunner>,
        settings: ServerSettings,
        tasks: TaskRegistry,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                tasks,
                users,
                runner,
                settings,
                jobs: TaskTracker::new(),
                cancel_all: CancellationToken::new(),
                next_task: AtomicU64::new(1),
            }),
        }
    }

    /// The task registry behind `/ping`.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.inner.tasks
    }

    /// The users.
    pub fn users(&self) -> &Arc<Users> {
        &self.inner.users
    }
}

/// The router: `GET /ping`, `POST /invocations`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, gives
/// running tasks the grace period, cancels what is left, and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop_accepting = CancellationToken::new();
    let server = axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
    let server = tokio::spawn(server.into_future());
    shutdown.await;
    let inner = &state.inner;
    tracing::info!(
        running = inner.tasks.active_count(),
        grace_secs = inner.settings.shutdown_grace.as_secs_f64(),
        "shutting down: no new requests; waiting for running tasks"
    );
    stop_accepting.cancel();
    inner.jobs.close();
    if tokio::time::timeout(inner.settings.shutdown_grace, inner.jobs.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            running = inner.tasks.active_count(),
            "grace period over: cancelling running tasks"
        );
        inner.cancel_all.cancel();
        if tokio::time::timeout(CANCEL_WAIT, inner.jobs.wait())
            .await
            .is_err()
        {
            tracing::error!("tasks did not stop after cancellation; exiting anyway");
        }
    }
    match tokio::time::timeout(CANCEL_WAIT, server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join)) => anyhow::bail!("the HTTP server failed: {join}"),
        Err(_) => tracing::warn!("open connections did not close in time"),
    }
    tracing::info!("shut down");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. On Unix the handlers are installed by this call, not
/// when the future is first polled: from the moment it returns, SIGTERM means "shut down
/// gracefully" and no longer kills the process outright (its default action). Call it
/// inside the Tokio runtime, before the server starts answering.
pub fn termination_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = listen(signal(SignalKind::terminate()), "SIGTERM");
        let mut ctrl_c = listen(signal(SignalKind::interrupt()), "Ctrl-C");
        async move {
            tokio::select! {
                () = received(&mut term) => {}
                () = received(&mut ctrl_c) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(unix)]
fn listen(
    signal: std::io::Result<tokio::signal::unix::Signal>,
    name: &str,
) -> Option<tokio::signal::unix::Signal> {
    signal
        .map_err(|error| tracing::error!("cannot listen for {name}: {error}"))
        .ok()
}

/// Resolves when `signal` arrives; never, if it could not be listened for.
#[cfg(unix)]
async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn ping(State(state): State<AppState>) -> Json<Ping> {
    Json(state.inner.tasks.ping())
}

async fn invocations(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let session_id = header(SESSION_HEADER);
    let request_id = header(REQUEST_HEADER)
        .unwrap_or_else(|| format!("local-{}", state.inner.next_task.load(Ordering::Relaxed)));
    let span = tracing::info_span!(
        "invocation",
        requestId = %request_id,
        sessionId = %session_id.as_deref().unwrap_or("")
    );
    async move {
        match handle(&state, &headers, body, session_id).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }
    .instrument(span)
    .await
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    session_id: Option<String>,
) -> Result<Response, ApiError> {
    let limit = state.inner.settings.max_body_bytes;
    let bytes = error::read_body(headers, body, limit).await?;
    let invocation = payload::parse(&bytes).map_err(ApiError::from)?;
    let (user_key, prompt, mode, telegram) = match invocation {
        Invocation::Direct(request) => (request.user_id, request.prompt, request.mode, false),
        Invocation::Telegram(update) => {
            let Some(user) = update.user_id else {
                return Ok(ignored(update.update_id, "the update has no sender"));
            };
            let Some(text) = update.text else {
                return Ok(ignored(update.update_id, "the update has no text"));
            };
            (user, text, Mode::Async, true)
        }
    };
    let users = &state.inner.users;
    if let Err(error) = users.authorize(&user_key) {
        tracing::warn!(user = %user_key, "refused: {error}");
        return Err(ApiError::from_user(error));
    }
    let runner = state.inner.runner.clone();
    let slot = match users.claim(&user_key) {
        Ok(slot) => slot,
        Err(busy @ UserError::Busy(_)) if telegram => {
            tracing::info!(user = %user_key, "busy: {busy}");
            return Ok(Json(json!({"status": "busy", "details": busy.to_string()})).into_response());
        }
        Err(error) => return Err(ApiError::from_user(error)),
    };
    let workspace = users.workspace(&user_key).map_err(|error| {
        tracing::error!(user = %user_key, "cannot create the workspace: {error}");
        ApiError::internal("the user's workspace could not be created")
    })?;
    let (progress, events) = match mode {
        Mode::Stream => {
            let (progress, events) = Progress::channel(256);
            (progress, Some(events))
        }
        _ => (Progress::discard(), None),
    };
    let task_id = state
        .inner
        .next_task
        .fetch_add(1, Ordering::Relaxed)
        .to_string();
    let job = Job {
        task_id: task_id.clone(),
        user_key,
        session_id: session_id.clone(),
        prompt,
        workspace,
        cancel: state.inner.cancel_all.child_token(),
        progress,
    };
    let answer = spawn_job(state, runner.as_ref(), job, slot);
    Ok(match (mode, events) {
        (Mode::Async, _) => {
            Json(json!({"status": "accepted", "task_id": task_id, "session_id": session_id}))
                .into_response()
        }
        (Mode::Sync, _) => match answer.await {
            Ok(Ok(answer)) => Json(json!({
                "status": "completed", "task_id": task_id, "answer": answer.text, "usage": answer.usage,
            }))
            .into_response(),
            Ok(Err(message)) => ApiError::task_failed(&message).into_response(),
            Err(_) => ApiError::task_failed("the task ended without an answer").into_response(),
        },
        (Mode::Stream, Some(events)) => stream(events, answer).into_response(),
        (Mode::Stream, None) => unreachable!("stream mode always has a progress channel"),
    })
}

fn ignored(update_id: i64, reason: &str) -> Response {
    Json(json!({"status": "ignored", "update_id": update_id, "reason": reason})).into_response()
}

/// Starts `job` in the background, holding its task registration and the user's slot
/// until it ends (however it ends). The receiver gets the answer or an error message.
fn spawn_job(
    state: &AppState,
    runner: &dyn JobRunner,
    job: Job,
    slot: Slot,
) -> oneshot::Receiver<Result<Answer, String>> {
    let inner = &state.inner;
    let guard = inner
        .tasks
        .start(format!("task {} of user {}", job.task_id, job.user_key));
    let info = inner.tasks.info();
    tracing::info!(
        task = %job.task_id,
        user = %job.user_key,
        active_count = info.active_count,
        running_jobs = %json!(info.running_jobs),
        "task started"
    );
    let (task_id, cancel) = (job.task_id.clone(), job.cancel.clone());
    let work = AssertUnwindSafe(runner.run(job)).catch_unwind();
    let tasks = inner.tasks.clone();
    let (sender, receiver) = oneshot::channel();
    inner.jobs.spawn(
        async move {
            // The error chain is for the log; the caller gets a sentence meant for a user.
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
                        "The task failed: the host ran into an internal error. The operator can \
                         find the details in the host's log under task {task_id}."
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

fn stream(
    events: tokio::sync::mpsc::Receiver<ProgressEvent>,
    answer: oneshot::Receiver<Result<Answer, String>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let progress = futures_util::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|event| (event, events))
    })
    .map(|event| Ok(Event::default().data(json!(event).to_string())));
    let last = futures_util::stream::once(async move {
        let data = match answer.await {
            Ok(Ok(answer)) => {
                json!({"type": "final", "answer": answer.text, "usage": answer.usage})
            }
            Ok(Err(message)) => {
                json!({"error": message, "error_type": "TaskFailed", "message": message})
            }
            Err(_) => {
                json!({"error": "the task ended without an answer", "error_type": "TaskFailed",
                              "message": "the task ended without an answer"})
            }
        };
        Ok(Event::default().data(data.to_string()))
    });
    Sse::new(progress.chain(last)).keep_alive(KeepAlive::default())
}
