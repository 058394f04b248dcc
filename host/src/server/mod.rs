//! The AgentCore container contract over HTTP: `GET /ping` and `POST /invocations`
//! (see `shared/reference/agentcore.md`), acknowledging each request at once and running
//! its task in the background.
//!
//! Handlers are thin: parse ([`payload`]), authorize and claim the user's slot
//! ([`crate::session::Users`]), register the task ([`tasks`]), hand the job to the
//! [`JobRunner`], answer in the requested mode.

mod error;
pub mod payload;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use crate::agent::tasks::{Clock, Ping, PingStatus, TaskGuard, TaskInfo, TaskRegistry};
pub use error::ApiError;
pub use payload::{DirectRequest, Invocation, Mode, TelegramUpdate};

use crate::agent::launch::{Launcher, Outcome};
use crate::agent::{Job, JobRunner, Progress, ProgressEvent};
use crate::session::Users;
use crate::telegram::{Bot, DeferredBot};

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

/// How long open connections get to close after the tasks are done.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    users: Arc<Users>,
    launcher: Arc<Launcher>,
    bot: Option<Arc<DeferredBot>>,
    settings: ServerSettings,
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
        Self::with_launcher(users, Arc::new(Launcher::new(runner, tasks)), settings)
    }

    /// State for a server whose jobs are started by `launcher` (shared with the
    /// Telegram bot, so `/ping` and the shutdown see the jobs of both).
    pub fn with_launcher(
        users: Arc<Users>,
        launcher: Arc<Launcher>,
        settings: ServerSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                users,
                launcher,
                bot: None,
                settings,
            }),
        }
    }

    /// The same state, with Telegram updates handed to `bot` (without one they are
    /// refused with a 503 that says the token is missing).
    pub fn with_bot(self, bot: Arc<Bot>) -> Self {
        self.with_deferred_bot(DeferredBot::ready(bot))
    }

    /// The same state, with Telegram updates handed to a bot made at the first update.
    pub fn with_deferred_bot(self, bot: DeferredBot) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                users: inner.users.clone(),
                launcher: inner.launcher.clone(),
                bot: Some(Arc::new(bot)),
                settings: inner.settings.clone(),
            }),
        }
    }

    /// The task registry behind `/ping`.
    pub fn tasks(&self) -> &TaskRegistry {
        self.inner.launcher.tasks()
    }

    /// What starts the jobs.
    pub fn launcher(&self) -> &Arc<Launcher> {
        &self.inner.launcher
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
        running = inner.launcher.tasks().active_count(),
        grace_secs = inner.settings.shutdown_grace.as_secs_f64(),
        "shutting down: no new requests; waiting for running tasks"
    );
    stop_accepting.cancel();
    inner.launcher.shutdown(inner.settings.shutdown_grace).await;
    match tokio::time::timeout(CLOSE_WAIT, server).await {
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
    Json(state.inner.launcher.tasks().ping())
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
        .unwrap_or_else(|| format!("local-{}", state.inner.launcher.peek_task_id()));
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
    let request = match payload::parse(&bytes).map_err(ApiError::from)? {
        Invocation::Direct(request) => request,
        Invocation::Telegram(update) => return telegram(state, update).await,
    };
    let (user_key, mode) = (request.user_id, request.mode);
    let users = &state.inner.users;
    if let Err(error) = users.authorize(&user_key) {
        tracing::warn!(user = %user_key, "refused: {error}");
        return Err(ApiError::from_user(error));
    }
    let slot = users.claim(&user_key).map_err(ApiError::from_user)?;
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
    let launcher = &state.inner.launcher;
    let task_id = launcher.next_task_id();
    let job = Job {
        task_id: task_id.clone(),
        user_key,
        session_id: session_id.clone(),
        prompt: request.prompt,
        images: Vec::new(),
        workspace,
        cancel: launcher.job_cancel(),
        progress,
    };
    let answer = launcher.launch(job, slot);
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

/// A Telegram update forwarded by the relay: the bot decides (and acknowledges at once).
async fn telegram(state: &AppState, update: TelegramUpdate) -> Result<Response, ApiError> {
    let Some(bot) = &state.inner.bot else {
        tracing::error!(
            update_id = update.update_id,
            "a Telegram update arrived but telegram_bot_token is not set"
        );
        return Err(ApiError::unavailable(
            "this host has no Telegram bot token (set AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET or \
             AGENT_HOST_TELEGRAM_BOT_TOKEN), so it cannot answer Telegram updates",
        ));
    };
    let bot = match bot.get().await {
        Ok(bot) => bot,
        Err(error) => {
            tracing::error!(
                update_id = update.update_id,
                "the Telegram bot cannot start: {error:#}"
            );
            return Err(ApiError::unavailable(&format!(
                "the Telegram bot cannot start: {error:#}"
            )));
        }
    };
    let handled = bot.handle_update(update.raw).await;
    Ok(Json(json!({"status": handled.status(), "update_id": update.update_id, "details": handled.to_string()})).into_response())
}

fn stream(
    events: tokio::sync::mpsc::Receiver<ProgressEvent>,
    answer: oneshot::Receiver<Outcome>,
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
