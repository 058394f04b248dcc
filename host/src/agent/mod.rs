//! The agent: Claude working in the user's workspace with the plugin tools.
//!
//! One task: load the user's conversation, add the prompt, then model turn → tool calls →
//! results → model turn ... until the model ends its turn, the turn limit is reached, or
//! the task is cancelled. Every message is written through to the history store as soon
//! as it exists, so a recycled microVM or a crash loses nothing; the conversation stays
//! valid for Bedrock at every step (see [`conversation`]). The plugins' session state is
//! written once per model turn, after the turn's results are saved, and when the task
//! ends (see [`crate::plugins::SessionState`] for the crash guarantee).

mod changes;
pub mod conversation;
mod deferred;
pub mod failure;
pub mod job;
pub mod launch;
mod preparing;
pub mod prompt;
pub mod tasks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::future::BoxFuture;

use self::conversation::{Conversation, INTERRUPTED, Pending};
use self::preparing::Preparing;
use self::prompt::{PromptParts, system_prompt};
use crate::model::{
    BedrockModel, Block, ImageRef, ModelError, ModelTurn, Request, StreamEvent, ToolDefinition,
    Usage,
};
use crate::plugins::{CallContext, LivePlugins, PluginSet, SessionState, WorkspaceAccess};
use crate::session::history::HistoryStore;
use crate::session::workspace_dir_name;

pub use deferred::DeferredAgent;
pub use job::{Answer, Job, JobRunner, Progress, ProgressEvent};

/// How the agent works.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Model turns per task before it stops.
    pub max_turns: u32,
    /// Longest tool result passed to the model, in characters; longer ones are cut.
    pub max_tool_result_chars: usize,
    /// Extra system-prompt text from the operator.
    pub operator_prompt: Option<String>,
    /// Estimated conversation size (tokens) above which the oldest turns are dropped.
    pub context_budget_tokens: usize,
    /// Where per-user plugin state is kept (`<state_dir>/sessions/<user>/`).
    pub state_dir: PathBuf,
    /// Failed validations (policies' `check-changes`) after which a task stops.
    pub max_failed_validations: u32,
    /// How long an idle user's conversation and plugin state stay in memory (they are on
    /// disk; a user with a running task is never evicted).
    pub idle_user_evict: Duration,
}

impl AgentSettings {
    /// Defaults with state under `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            max_turns: 30,
            max_tool_result_chars: 60_000,
            operator_prompt: None,
            context_budget_tokens: 150_000,
            state_dir,
            max_failed_validations: 3,
            idle_user_evict: Duration::from_secs(30 * 60),
        }
    }
}

/// The agent; cheap to clone. It is the server's [`JobRunner`].
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    plugins: Arc<LivePlugins>,
    model: BedrockModel,
    /// The tools offered to the model, built once per plugin set (so the prompt prefix
    /// stays byte-identical, and cached, until the set is swapped).
    tools: Mutex<(Arc<PluginSet>, Arc<[ToolDefinition]>)>,
    history: Arc<dyn HistoryStore>,
    settings: AgentSettings,
    /// Conversations of users whose task is not running (the running task owns its own),
    /// with when each was put back.
    conversations: Mutex<HashMap<String, (Conversation, Instant)>>,
    /// Plugin state per user (what was read, ...), persisted under the state dir, with
    /// when it was last handed to a task.
    sessions: Mutex<HashMap<String, (Arc<SessionState>, Instant)>>,
}

impl Agent {
    /// An agent using the tools and policies of `plugins` (as swapped over time) through
    /// `model`, remembering in `history`.
    pub fn new(
        plugins: Arc<LivePlugins>,
        model: BedrockModel,
        history: Arc<dyn HistoryStore>,
        settings: AgentSettings,
    ) -> anyhow::Result<Self> {
        let set = plugins.current();
        let tools = tool_definitions(&set)?;
        Ok(Self {
            inner: Arc::new(Inner {
                plugins,
                model,
                tools: Mutex::new((set, tools)),
                history,
                settings,
                conversations: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// How many users' conversations and plugin states are held in memory.
    pub fn users_in_memory(&self) -> (usize, usize) {
        (
            lock(&self.inner.conversations).len(),
            lock(&self.inner.sessions).len(),
        )
    }

    /// Forgets `user_key`'s conversation (a new conversation starts with the next task).
    pub async fn forget(&self, user_key: &str) -> anyhow::Result<()> {
        lock(&self.inner.conversations).remove(user_key);
        self.inner.history.clear(user_key).await
    }
}

impl JobRunner for Agent {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.run(job).await })
    }

    fn forget(&self, user_key: &str) -> BoxFuture<'static, anyhow::Result<()>> {
        let (agent, user_key) = (self.clone(), user_key.to_string());
        Box::pin(async move { agent.forget(&user_key).await })
    }
}

impl Inner {
    async fn run(self: Arc<Self>, job: Job) -> anyhow::Result<Answer> {
        self.evict_idle_users();
        let session = self.session_state(&job.user_key)?;
        // The last resort for a task that panics or is dropped mid-turn (a no-op when the
        // flushes below ran): the guarantee rests on those.
        let flush_on_drop = FlushOnDrop(session.clone());
        let mut conversation = self.take_conversation(&job.user_key).await?;
        let result = self.work(&job, &mut conversation, &session).await;
        // Whatever happened, the stored conversation stays valid and complete...
        conversation.answer_dangling_tool_uses();
        let saved = self.save(&job.user_key, &mut conversation).await;
        // ... and the plugin state is written, however the task ended.
        flush_session(&session).await;
        lock(&self.conversations).insert(job.user_key.clone(), (conversation, Instant::now()));
        // Let go of the state before evicting, so an idle limit of zero frees it now.
        drop((flush_on_drop, session));
        self.evict_idle_users();
        let (answer, usage) = result?;
        saved?;
        tracing::info!(
            task = %job.task_id,
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            cache_read_tokens = usage.cache_read_tokens,
            cache_write_tokens = usage.cache_write_tokens,
            requests = usage.requests,
            "task finished"
        );
        Ok(Answer {
            text: answer,
            usage,
        })
    }

    async fn work(
        &self,
        job: &Job,
        conversation: &mut Conversation,
        session: &Arc<SessionState>,
    ) -> anyhow::Result<(String, Usage)> {
        let (stop, _watcher) = cancel_flag(job);
        let context = CallContext::new(job.workspace.clone(), session.clone())
            .with_cancel(stop)
            .with_user(&job.user_key);
        let system = self
            .system_prompt(job, &context, &self.plugins.current())
            .await;

        conversation.push_user_content(&job.prompt, workspace_images(job));
        let dropped = conversation.compact(self.settings.context_budget_tokens);
        if dropped > 0 {
            tracing::info!(dropped, "conversation compacted to fit the context");
        }
        self.save(&job.user_key, conversation).await?;

        let mut usage = Usage::default();
        let mut failed_validations = 0;
        let task_started = std::time::SystemTime::now();
        let progress = job.progress.clone();
        // Each tool call's plugin instances are made while the model writes its input.
        let preparing = Preparing::new(context.clone());
        let on_event = |event: StreamEvent<'_>| match event {
            StreamEvent::Text(text) => progress.send(ProgressEvent::Text {
                text: text.to_string(),
            }),
            StreamEvent::ToolUseStarted { id, name } => {
                preparing.start(self.plugins.current(), id, name)
            }
        };
        for turn_number in 1..=self.settings.max_turns {
            // The specs offered come from the set in force now...
            let tools = self.tools_for_request()?;
            let turn = self
                .model_turn(job, &system, &tools, conversation, &on_event)
                .await?;
            usage += turn.usage;
            job.progress.send(ProgressEvent::TurnFinished {
                turn: turn_number,
                usage,
            });
            let calls: Vec<(String, String, serde_json::Value)> = turn
                .message
                .content
                .iter()
                .filter_map(|block| match block {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            let text = answer_text(&turn.message.content);
            conversation.push_assistant(turn.message);
            self.save(&job.user_key, conversation).await?;
            if calls.is_empty() {
                return Ok((finish(text, &turn.stop_reason), usage));
            }
            // ... and the calls run on the set in force when they arrive (a policy
            // swapped in while the model was thinking applies to them), one set for the
            // whole batch.
            let plugins = self.plugins.current();
            // File times come from a coarse kernel clock that may lag the one read here by
            // a tick, so look a little earlier (but never before the task began).
            let started = (std::time::SystemTime::now() - MTIME_SLACK).max(task_started);
            let (mut results, may_have_written) = self
                .call_tools(job, &plugins, &context, &preparing, calls)
                .await;
            preparing.clear();
            let failure = if may_have_written && !job.cancel.is_cancelled() {
                validate_changes(&plugins, &context, started).await
            } else {
                None
            };
            if let Some(failure) = &failure {
                failed_validations += 1;
                results.push(Block::Text {
                    text: format!(
                        "<validation_error>\nYour changes failed validation \
                         ({failed_validations} of at most {} failures):\n{failure}\nFix \
                         the problem; the checks run again after your next change.\n\
                         </validation_error>",
                        self.settings.max_failed_validations
                    ),
                });
            }
            conversation.push_user_blocks(results);
            self.save(&job.user_key, conversation).await?;
            // The turn's calls have ended: what they set in the session state is written,
            // once for the whole batch. After the history, so a crash between the two
            // leaves the state behind what the model was told (a file it read must be
            // read again before an edit), never ahead of it.
            flush_session(session).await;
            if job.cancel.is_cancelled() {
                anyhow::bail!("the task was cancelled");
            }
            if let Some(failure) = failure
                && failed_validations >= self.settings.max_failed_validations
            {
                tracing::warn!(task = %job.task_id, failed_validations, "task stopped: validation kept failing");
                return Ok((
                    format!(
                        "I stopped: my changes failed validation {failed_validations} times, \
                         the limit for one task. The last failure:\n{failure}"
                    ),
                    usage,
                ));
            }
            tracing::debug!(turn = turn_number, "turn done");
        }
        Ok((
            format!(
                "I stopped after {} model turns, the limit for one task, before finishing. \
                 Send another message to let me continue where I stopped.",
                self.settings.max_turns
            ),
            usage,
        ))
    }

    /// Runs the calls of one model turn in order; every call gets exactly one result.
    /// Also says whether a tool that may change the workspace ran.
    async fn call_tools(
        &self,
        job: &Job,
        plugins: &Arc<PluginSet>,
        context: &CallContext,
        preparing: &Preparing,
        calls: Vec<(String, String, serde_json::Value)>,
    ) -> (Vec<Block>, bool) {
        let mut results = Vec::with_capacity(calls.len());
        let mut may_have_written = false;
        for (id, name, input) in calls {
            if job.cancel.is_cancelled() {
                results.push(Block::ToolResult {
                    tool_use_id: id,
                    content: INTERRUPTED.into(),
                    is_error: true,
                });
                continue;
            }
            let input = input.to_string();
            job.progress.send(ProgressEvent::ToolStarted {
                tool: name.clone(),
                input: input.clone(),
            });
            let checked = match preparing.take(&id, &name).await {
                Some(prepared) => plugins.call_prepared_tool(prepared, &input).await,
                None => plugins.call_tool(&name, &input, context).await,
            };
            may_have_written |= checked.ran && can_write(plugins, &name);
            let outcome = &checked.outcome;
            let is_error = outcome.is_error();
            job.progress.send(ProgressEvent::ToolFinished {
                tool: name.clone(),
                is_error,
                output: job::preview(outcome.text()),
            });
            tracing::info!(task = %job.task_id, tool = %name, is_error, ran = checked.ran, denied_by = checked.denied_by(), "tool call");
            let content = cut(outcome.text(), self.settings.max_tool_result_chars);
            results.push(Block::ToolResult {
                tool_use_id: id,
                content,
                is_error,
            });
        }
        (results, may_have_written)
    }

    /// The tool specs of the plugin set in force (rebuilt only after a swap, so the
    /// prompt prefix keeps its bytes and its cache).
    fn tools_for_request(&self) -> anyhow::Result<Arc<[ToolDefinition]>> {
        let current = self.plugins.current();
        let mut cached = lock(&self.tools);
        if !Arc::ptr_eq(&cached.0, &current) {
            let tools = tool_definitions(&current)?;
            *cached = (current, tools);
        }
        Ok(cached.1.clone())
    }

    /// One model turn on the conversation. When the model says the conversation no longer
    /// fits its context, the oldest turns are dropped (to half the budget, then half again)
    /// and the turn is asked again.
    async fn model_turn(
        &self,
        job: &Job,
        system: &str,
        tools: &Arc<[ToolDefinition]>,
        conversation: &mut Conversation,
        on_event: &(dyn Fn(StreamEvent<'_>) + Send + Sync),
    ) -> anyhow::Result<ModelTurn> {
        let mut budget = self.settings.context_budget_tokens;
        loop {
            let request = Request {
                system,
                tools,
                messages: conversation.messages(),
            };
            match self.model.turn(&request, on_event, &job.cancel).await {
                Ok(turn) => return Ok(turn),
                Err(ModelError::Cancelled) => anyhow::bail!("the task was cancelled"),
                Err(ModelError::ContextTooLong(message)) if budget > 1_000 => {
                    budget /= 2;
                    let dropped = conversation.compact(budget);
                    if dropped == 0 {
                        return Err(anyhow::anyhow!(ModelError::ContextTooLong(message)));
                    }
                    tracing::info!(task = %job.task_id, dropped, budget, "context too long: conversation compacted, asking again");
                    self.save(&job.user_key, conversation).await?;
                }
                Err(error) => return Err(anyhow::anyhow!(error)),
            }
        }
    }

    async fn system_prompt(&self, job: &Job, context: &CallContext, plugins: &PluginSet) -> String {
        let mut guidance = Vec::new();
        for policy in plugins.policies() {
            let name = policy.identity().name.clone();
            let (policy, context) = (policy.clone(), context.clone());
            if let Ok(text) = tokio::task::spawn_blocking(move || policy.guidance(&context)).await {
                guidance.push((name, text));
            }
        }
        let specs = plugins.tools().specs();
        let tools: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        system_prompt(&PromptParts {
            workspace: &job.workspace,
            tools: &tools,
            guidance: &guidance,
            operator: self.settings.operator_prompt.as_deref(),
        })
    }

    async fn take_conversation(&self, user_key: &str) -> anyhow::Result<Conversation> {
        if let Some((conversation, _)) = lock(&self.conversations).remove(user_key) {
            return Ok(conversation);
        }
        let messages = self
            .history
            .load(user_key)
            .await
            .with_context(|| format!("cannot load the conversation of user {user_key}"))?;
        Ok(Conversation::from_history(messages))
    }

    async fn save(&self, user_key: &str, conversation: &mut Conversation) -> anyhow::Result<()> {
        let result = match conversation.pending() {
            Pending::Nothing => return Ok(()),
            Pending::Append(messages) => self.history.append(user_key, messages).await,
            Pending::Replace(messages) => self.history.replace(user_key, messages).await,
        };
        result.with_context(|| format!("cannot save the conversation of user {user_key}"))?;
        conversation.saved();
        Ok(())
    }

    fn session_state(&self, user_key: &str) -> anyhow::Result<Arc<SessionState>> {
        let mut sessions = lock(&self.sessions);
        if let Some((state, used)) = sessions.get_mut(user_key) {
            *used = Instant::now();
            return Ok(state.clone());
        }
        let name = workspace_dir_name(user_key);
        let state = Arc::new(SessionState::open(&self.settings.state_dir, &name)?);
        sessions.insert(user_key.to_string(), (state.clone(), Instant::now()));
        Ok(state)
    }

    /// Drops from memory what users idle for longer than `idle_user_evict` left there (it
    /// is all on disk). A running task holds its conversation outside the map and its
    /// session state in an `Arc`, so neither is touched while it runs.
    fn evict_idle_users(&self) {
        let keep = |used: &Instant| used.elapsed() < self.settings.idle_user_evict;
        lock(&self.conversations).retain(|_, (_, put_back)| keep(put_back));
        lock(&self.sessions).retain(|_, (state, used)| Arc::strong_count(state) > 1 || keep(used));
    }
}

/// Writes the changes in `session` (off the executor: it `fsync`s). A failure is logged and
/// the changes stay pending for the next flush; the task goes on with the state in memory.
async fn flush_session(session: &Arc<SessionState>) {
    if !session.has_unsaved_changes() {
        return;
    }
    let state = session.clone();
    if let Err(error) = tokio::task::spawn_blocking(move || state.flush_or_warn()).await {
        tracing::warn!("plugin session state not saved: {error}");
    }
}

/// Flushes a session's state when dropped (see [`Inner::run`]).
struct FlushOnDrop(Arc<SessionState>);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush_or_warn();
    }
}

/// A flag plugin calls watch, set when the job is cancelled. The watcher task ends with
/// the returned guard, so finished tasks leave nothing behind.
fn cancel_flag(job: &Job) -> (Arc<AtomicBool>, AbortOnDrop) {
    let flag = Arc::new(AtomicBool::new(false));
    let (set, cancel) = (flag.clone(), job.cancel.clone());
    let watcher = tokio::spawn(async move {
        cancel.cancelled().await;
        set.store(true, Ordering::Relaxed);
    });
    (flag, AbortOnDrop(watcher))
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The job's images, each path made canonical (what the model client checks it against
/// when it reads the file). The host reads them outside the tools' sandbox, so a reference
/// outside the workspace (a front end's mistake) is dropped with a warning rather than
/// read; so is one whose path is not UTF-8, which the history (JSON) could not store. One
/// that cannot be resolved (the file is already gone) is kept as it is: the model is told
/// it is no longer available.
fn workspace_images(job: &Job) -> Vec<ImageRef> {
    let inside = |path: &std::path::Path| {
        path.starts_with(&job.workspace)
            && path.to_str().is_some()
            && !path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
    };
    job.images
        .iter()
        .filter_map(|image| {
            let path = std::fs::canonicalize(&image.path).unwrap_or_else(|_| image.path.clone());
            if !inside(&path) {
                tracing::warn!(task = %job.task_id, path = %path.display(), "image left out: not a UTF-8 path inside the workspace");
                return None;
            }
            Some(ImageRef {
                path,
                ..image.clone()
            })
        })
        .collect()
}

fn answer_text(content: &[Block]) -> String {
    content
        .iter()
        .filter_map(|block| match block {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The final answer, with a note when the model stopped for another reason than finishing.
fn finish(text: String, stop_reason: &str) -> String {
    let note = match stop_reason {
        "end_turn" | "stop_sequence" | "tool_use" => None,
        "max_tokens" => Some("(The answer was cut at the model's output limit.)"),
        "guardrail_intervened" | "content_filtered" => {
            Some("(The model's answer was blocked by a content filter.)")
        }
        "model_context_window_exceeded" => {
            Some("(The conversation is too long for the model; start a new one.)")
        }
        _ => None,
    };
    match (text.trim().is_empty(), note) {
        (true, Some(note)) => note.to_string(),
        (true, None) => "(The model finished without a text answer.)".to_string(),
        (false, Some(note)) => format!("{text}\n\n{note}"),
        (false, None) => text,
    }
}

/// Cuts `text` to `max` characters with a note saying so.
fn cut(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!(
        "{kept}\n\n[... {} more characters cut: the result was too long. Narrow the request (offset/limit, a more specific pattern) to see the rest.]",
        count - max
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How far a file's modification time may lag the clock (one kernel tick, with room).
const MTIME_SLACK: std::time::Duration = std::time::Duration::from_millis(20);

/// The tools of `plugins` as the model sees them.
fn tool_definitions(plugins: &PluginSet) -> anyhow::Result<Arc<[ToolDefinition]>> {
    plugins
        .tools()
        .specs()
        .into_iter()
        .map(|spec| {
            let input_schema = serde_json::from_str(&spec.input_schema)
                .with_context(|| format!("tool {} has an invalid input schema", spec.name))?;
            Ok(ToolDefinition {
                name: spec.name.clone(),
                description: spec.description.clone(),
                input_schema,
            })
        })
        .collect()
}

/// Whether `tool`'s plugin may change the workspace (read-write access or commands).
fn can_write(plugins: &PluginSet, tool: &str) -> bool {
    plugins.tools().plugin_of(tool).is_some_and(|plugin| {
        let capabilities = &plugin.identity().capabilities;
        capabilities.workspace == WorkspaceAccess::ReadWrite || capabilities.exec
    })
}

/// Runs each policy's `check-changes` on the files changed since `started`; the failures,
/// by policy, or `None` when all pass (or nothing changed).
async fn validate_changes(
    plugins: &Arc<PluginSet>,
    context: &CallContext,
    started: std::time::SystemTime,
) -> Option<String> {
    if plugins.policies().is_empty() {
        return None;
    }
    let (plugins, context) = (plugins.clone(), context.clone());
    let checked = tokio::task::spawn_blocking(move || {
        let changed = changes::modified_since(context.workspace(), started);
        if changed.is_empty() {
            return None;
        }
        let failures: Vec<String> = plugins
            .policies()
            .iter()
            .filter_map(|policy| {
                policy
                    .check_changes(&changed, &context)
                    .err()
                    .map(|message| format!("[{}] {message}", policy.identity().name))
            })
            .collect();
        tracing::info!(
            changed = changed.len(),
            failures = failures.len(),
            "changes validated"
        );
        (!failures.is_empty()).then(|| failures.join("\n"))
    })
    .await;
    checked.unwrap_or_else(|error| Some(format!("validation could not run: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_are_cut_with_a_note() {
        assert_eq!(cut("short", 10), "short");
        let long = cut(&"é".repeat(20), 5);
        assert!(long.starts_with("ééééé\n\n[... 15 more characters cut"));
    }

    #[test]
    fn stop_reasons_other_than_finishing_are_explained() {
        assert_eq!(finish("done".into(), "end_turn"), "done");
        assert!(finish("partial".into(), "max_tokens").contains("output limit"));
        assert!(finish(String::new(), "content_filtered").contains("content filter"));
    }
}
