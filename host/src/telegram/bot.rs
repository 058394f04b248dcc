//! The dispatcher: one [`Bot`] decides what each update means, for both paths (updates
//! forwarded to `/invocations` by the relay, and `agent-host telegram` long polling).
//! It answers at once and does all its posting in the background.
//!
//! The rules, in the order they apply:
//! 1. **Once per update.** An `update_id` already handled (kept in `state_dir`, so this
//!    survives a restart) is dropped: Telegram and the relay redeliver after timeouts.
//! 2. **Only what the bot understands.** Edited messages, channel posts, stickers, unknown
//!    update kinds, messages from bots: ignored with a reason, never a task.
//! 3. **Private chats by default.** In a group (when `telegram_groups` is on) the bot
//!    answers only messages that address it (a mention of its @name, a reply to it, or a
//!    command naming it); each user keeps their own workspace there too.
//! 4. **The allow-list.** A stranger's message starts nothing; the stranger hears one
//!    polite refusal a day (remembered in `state_dir`) and the log gets a line.
//! 5. **Control never waits.** Commands (`/cancel`, `/status`, `/help`, ...) and button
//!    presses act on the user's running task or answer at once; they never claim the task
//!    slot. Every button press is answered (`answerCallbackQuery`).
//! 6. **One task per user.** Only a new prompt claims the slot; a prompt while a task runs
//!    gets the busy line.
//! 7. **Watch it work.** While a task runs, a private chat gets a streaming draft (the
//!    model's words and a line per step, at the user's `/verbose` level) with a Stop
//!    button; a group, or a chat where Telegram refuses drafts, gets one progress message
//!    edited in place with a Cancel button. Stop, Cancel and `/cancel` all cancel the same
//!    way. Nothing posted erases a live draft (the outbox flushes it first).
//! 8. **Answers always arrive.** The final answer is recorded before it is sent and
//!    forgotten once Telegram accepted all of it; a restarted host sends what is left
//!    ([`Bot::resend_pending`]). It is a new message (so the phone notifies), rendered from
//!    Markdown, split to fit, resent as plain text if Telegram refuses the formatting.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use super::api::{ApiError, BotApi, BotUser, Text};
use super::buttons::ButtonData;
use super::commands::{self, Command, TaskStats};
use super::draft::LiveDraft;
use super::files_out;
use super::outbox::{Outbox, Post};
use super::progress::ProgressMessage;
use super::render;
use super::store::{PendingAnswer, Store};
use super::update::{self, Attachment, ButtonPress, ChatKind, Incoming, StopPress, UserMessage};
use super::uploads;
use super::usage::{self, TaskUsage, Tokens};
use super::view::{TaskView, Verbosity};
use crate::agent::launch::{Launcher, Outcome};
use crate::agent::{Job, Progress, ProgressEvent};
use crate::exec::{CommandRunner, ExecSettings};
use crate::model::PriceTable;
use crate::session::files::files_changed_since;
use crate::session::{UserError, Users};

/// The file name of an answer too long for a few messages.
const ANSWER_FILE: &str = "answer.md";
/// How much earlier than a task's start a file may seem changed and still count as its
/// (file times lag the clock by a kernel tick).
const FILE_TIME_SLACK: Duration = Duration::from_millis(50);
/// What the user reads when their workspace cannot be made.
const WORKSPACE_FAILED: &str =
    "Your workspace could not be created; the operator can see why in the log.";

/// How the bot behaves.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// Answer addressed messages in groups (off: private chats only).
    pub groups: bool,
    /// Least time between two messages to one chat.
    pub send_interval: Duration,
    /// How often `typing` is shown while a task runs without a draft (Telegram shows it
    /// for ~5 s).
    pub typing_interval: Duration,
    /// Least time between two updates of a task's draft or progress message in a
    /// private chat.
    pub update_interval: Duration,
    /// The same in a group (Telegram allows about 20 messages a minute there), and the
    /// delay before a group's progress message is posted at all.
    pub group_update_interval: Duration,
    /// The model the tasks use (for `/usage`'s cost estimate).
    pub model_id: String,
    /// Prices per model (for `/usage`'s cost estimate).
    pub prices: PriceTable,
    /// How commands run (`/diff` runs git through them, confined like the agent's).
    pub exec: ExecSettings,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            groups: false,
            send_interval: Duration::from_secs(1),
            typing_interval: Duration::from_secs(4),
            update_interval: Duration::from_secs(1),
            group_update_interval: Duration::from_secs(3),
            model_id: crate::model::bedrock::DEFAULT_MODEL_ID.to_string(),
            prices: PriceTable::default(),
            exec: ExecSettings::default(),
        }
    }
}

/// What the bot made of an update (the `/invocations` answer says it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A task started.
    Started(String),
    /// A file is being received (the task, if any, starts once it is saved).
    Receiving,
    /// A prompt while the user's task runs: the busy line was sent.
    Busy,
    /// A command or a button press, answered.
    Control(&'static str),
    /// A stranger: refused (or not, if already refused today); no task.
    Refused,
    /// This update was handled before.
    Duplicate,
    /// Nothing to do, and why.
    Ignored(String),
}

impl Handled {
    /// One word for the status field.
    pub fn status(&self) -> &'static str {
        match self {
            Handled::Started(_) | Handled::Receiving => "accepted",
            Handled::Busy => "busy",
            Handled::Control(_) => "handled",
            Handled::Refused => "refused",
            Handled::Duplicate => "duplicate",
            Handled::Ignored(_) => "ignored",
        }
    }
}

impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::Started(task) => write!(f, "task {task} started"),
            Handled::Receiving => f.write_str("a file is being received"),
            Handled::Busy => f.write_str("a task of this user is running"),
            Handled::Control(what) => write!(f, "{what} answered"),
            Handled::Refused => f.write_str("the sender is not on the allow-list"),
            Handled::Duplicate => f.write_str("this update was already handled"),
            Handled::Ignored(reason) => f.write_str(reason),
        }
    }
}

/// A user's running task.
struct Running {
    task_id: String,
    cancel: CancellationToken,
    started: Instant,
    stats: Arc<Mutex<TaskStats>>,
    /// Its draft, in a private chat (a Stop on it cancels the task).
    draft: Option<Arc<LiveDraft>>,
}

/// The Telegram front end; share it behind an `Arc`.
pub struct Bot {
    outbox: Outbox,
    store: Store,
    users: Arc<Users>,
    launcher: Arc<Launcher>,
    settings: BotSettings,
    running: Mutex<HashMap<String, Running>>,
    me: OnceCell<BotUser>,
    /// Chats where Telegram refused a draft: their tasks show a progress message.
    drafts_refused: Mutex<HashSet<i64>>,
    /// Runs `/diff`'s git, made at the first `/diff` (probing confinement takes a moment).
    commands: std::sync::OnceLock<Arc<CommandRunner>>,
    /// Set once the answers left by a previous run were looked for.
    resent: AtomicBool,
}

impl Bot {
    /// A bot posting through `api`, remembering in `store`, starting tasks with
    /// `launcher` for `users`.
    pub fn new(
        api: BotApi,
        store: Store,
        users: Arc<Users>,
        launcher: Arc<Launcher>,
        settings: BotSettings,
    ) -> Self {
        Self {
            outbox: Outbox::new(api, settings.send_interval),
            store,
            users,
            launcher,
            settings,
            running: Mutex::new(HashMap::new()),
            me: OnceCell::new(),
            drafts_refused: Mutex::new(HashSet::new()),
            commands: std::sync::OnceLock::new(),
            resent: AtomicBool::new(false),
        }
    }

    /// The client.
    pub fn api(&self) -> &BotApi {
        self.outbox.api()
    }

    /// What starts the tasks.
    pub fn launcher(&self) -> &Arc<Launcher> {
        &self.launcher
    }

    /// What the bot remembers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Registers the command menu (`setMyCommands`).
    pub async fn set_commands(&self) -> Result<(), ApiError> {
        self.api().set_my_commands(commands::MENU).await.map(drop)
    }

    /// Handles one raw update and returns at once; posting happens in the background.
    pub async fn handle_update(self: &Arc<Self>, update: Value) -> Handled {
        if !self.resent.load(Ordering::Relaxed) {
            // Behind the relay the host may not touch the network at start (it may be a
            // snapshot), so what a previous run left is sent when the first update comes.
            let bot = self.clone();
            self.launcher
                .track(async move { bot.resend_pending().await });
        }
        let Some(update_id) = update::update_id(&update) else {
            return Handled::Ignored("the update has no integer update_id".into());
        };
        if !self.store.first_time(update_id) {
            tracing::info!(update_id, "duplicate update dropped");
            return Handled::Duplicate;
        }
        let handled = match update::read(&update) {
            Incoming::Message(message) => self.on_message(message).await,
            Incoming::Button(press) => self.on_button(press),
            Incoming::Stop(stop) => self.on_stop(stop),
            Incoming::Ignored(reason) => Handled::Ignored(reason),
        };
        tracing::info!(update_id, status = handled.status(), "{handled}");
        handled
    }

    async fn on_message(self: &Arc<Self>, mut message: UserMessage) -> Handled {
        if message.chat_kind == ChatKind::Shared {
            if !self.settings.groups {
                return Handled::Ignored("group chats are off (telegram_groups)".into());
            }
            match self.addressed_text(&message).await {
                Some(text) => message.text = text,
                None => return Handled::Ignored("a group message not addressed to the bot".into()),
            }
        }
        let user_key = message.from.to_string();
        if let Err(error) = self.users.authorize(&user_key) {
            tracing::warn!(user = %user_key, chat = message.chat_id, "refused: {error}");
            if self.store.refuse_today(message.from) {
                self.reply(&message, commands::stranger(message.from));
            }
            return Handled::Refused;
        }
        if let Some(attachment) = message.attachment.clone() {
            return self.on_attachment(message, user_key, attachment);
        }
        if let Some((name, _, args)) = update::command(&message.text) {
            return self.on_command(&message, &user_key, &name, args).await;
        }
        self.start_task(message, user_key).await
    }

    /// A document or photo: saved in the workspace in the background, then handed to a
    /// task with its caption, or kept for the next prompt.
    fn on_attachment(
        self: &Arc<Self>,
        message: UserMessage,
        user_key: String,
        attachment: Attachment,
    ) -> Handled {
        if let Some(bytes) = attachment
            .file_size
            .filter(|bytes| *bytes > update::MAX_DOWNLOAD_BYTES)
        {
            self.reply(&message, uploads::too_large(bytes));
            return Handled::Control("a file over the limit");
        }
        let bot = self.clone();
        self.launcher.track(async move {
            let workspace = match bot.users.workspace(&user_key) {
                Ok(workspace) => workspace,
                Err(error) => {
                    tracing::error!(user = %user_key, "cannot create the workspace: {error}");
                    bot.reply(&message, WORKSPACE_FAILED.to_string());
                    return;
                }
            };
            let upload = match uploads::receive(bot.api(), &workspace, &attachment).await {
                Ok(upload) => upload,
                Err(sentence) => return bot.reply(&message, sentence),
            };
            let (name, relative) = (upload.name.clone(), upload.relative.clone());
            bot.store.add_upload(message.from, upload);
            if message.text.is_empty() || update::command(&message.text).is_some() {
                bot.reply(&message, commands::what_to_do_with(&name, &relative));
            } else {
                bot.start_task(message, user_key).await;
            }
        });
        Handled::Receiving
    }

    /// In a group: the text without the bot's @name, when the message addresses the bot.
    async fn addressed_text(&self, message: &UserMessage) -> Option<String> {
        let me = self
            .me
            .get_or_try_init(|| self.api().get_me())
            .await
            .map_err(|error| tracing::warn!("cannot learn the bot's name (getMe): {error}"))
            .ok()?;
        let mention = me.username.as_deref().map(|name| format!("@{name}"));
        if let Some((_, Some(bot), _)) = update::command(&message.text) {
            let ours = me
                .username
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(bot));
            return ours.then(|| message.text.clone());
        }
        if let Some(mention) = &mention
            && message.text.contains(mention.as_str())
        {
            return Some(
                message
                    .text
                    .replace(mention.as_str(), "")
                    .trim()
                    .to_string(),
            );
        }
        (message.reply_to_user == Some(me.id)).then(|| message.text.clone())
    }

    async fn on_command(
        self: &Arc<Self>,
        message: &UserMessage,
        user_key: &str,
        name: &str,
        args: &str,
    ) -> Handled {
        let Some(command) = Command::named(name) else {
            self.reply(message, commands::help(Some(name)));
            return Handled::Control("an unknown command");
        };
        let reply = match command {
            Command::Help => commands::help(None),
            Command::Start => match self.users.workspace(user_key) {
                Ok(workspace) => commands::start(&workspace.display().to_string()),
                Err(error) => {
                    tracing::error!(user = %user_key, "cannot create the workspace: {error}");
                    commands::start("(could not be created; the operator can see why in the log)")
                }
            },
            Command::Status => self.status_line(user_key),
            Command::Get if args.is_empty() => commands::GET_USAGE.to_string(),
            Command::Get => {
                self.send_file(message, user_key, args.to_string());
                return Handled::Control("/get");
            }
            Command::Diff => {
                self.send_diff(message, user_key);
                return Handled::Control("/diff");
            }
            Command::Usage => usage::usage_text(
                &self.store.usage(message.from),
                &self.settings.model_id,
                self.settings.prices.price(&self.settings.model_id),
            ),
            Command::Verbose => match Verbosity::named(args) {
                Some(level) => {
                    self.store.set_verbosity(message.from, level);
                    commands::verbosity_set(level)
                }
                None => commands::verbosity_usage(
                    self.store.verbosity(message.from),
                    Some(args).filter(|a| !a.is_empty()),
                ),
            },
            Command::Cancel => match self.running(user_key, |task| task.cancel.clone()) {
                Some(cancel) => {
                    cancel.cancel();
                    commands::CANCELLING.to_string()
                }
                None => commands::IDLE.to_string(),
            },
            Command::New => {
                if self.users.is_busy(user_key) {
                    commands::NEW_WHILE_BUSY.to_string()
                } else {
                    match self.launcher.runner().forget(user_key).await {
                        Ok(()) => commands::FRESH.to_string(),
                        Err(error) => {
                            tracing::error!(user = %user_key, "cannot forget the conversation: {error:#}");
                            "The conversation could not be reset; the operator can see why in \
                             the log."
                                .to_string()
                        }
                    }
                }
            }
        };
        self.reply(message, reply);
        Handled::Control(command.slash_name())
    }

    fn status_line(&self, user_key: &str) -> String {
        self.running(user_key, |task| {
            let stats = lock(&task.stats).clone();
            commands::status(&task.task_id, task.started.elapsed(), &stats)
        })
        .unwrap_or_else(|| commands::IDLE.to_string())
    }

    fn on_button(self: &Arc<Self>, press: ButtonPress) -> Handled {
        let notice = match ButtonData::decode(&press.data) {
            None => "This button is no longer in use.",
            Some(data) if data.owner != press.from => "This button belongs to someone else.",
            Some(data) => {
                let owner = data.owner.to_string();
                match data.action.as_str() {
                    "cancel" => match self.running(&owner, |task| {
                        (task.task_id == data.id).then(|| task.cancel.clone())
                    }) {
                        Some(Some(cancel)) => {
                            cancel.cancel();
                            commands::CANCELLING
                        }
                        _ => "That task has already finished.",
                    },
                    "get" => match files_out::offered_index(&data.id)
                        .and_then(|(task, index)| self.store.offered_file(data.owner, task, index))
                    {
                        Some(file) => {
                            self.send_offered(&owner, press.chat_id, file);
                            "Sending the file…"
                        }
                        None => "This button is no longer in use.",
                    },
                    _ => "This button is no longer in use.",
                }
            }
        };
        let bot = self.clone();
        self.launcher.track(async move {
            if let Err(error) = bot.api().answer_callback_query(&press.id, notice).await {
                tracing::warn!("cannot answer a button press: {error}");
            }
        });
        Handled::Control("a button press")
    }

    /// A file offered under an answer, pressed for: sent to the chat of the press.
    fn send_offered(self: &Arc<Self>, owner: &str, chat_id: Option<i64>, file: String) {
        let (Some(chat_id), Ok(workspace)) = (chat_id, self.users.workspace(owner)) else {
            return;
        };
        let bot = self.clone();
        self.launcher.track(async move {
            let sent =
                files_out::send_workspace_file(&bot.outbox, chat_id, None, workspace, file).await;
            if let Err(sentence) = sent {
                let text = Text::plain(chat_id, sentence);
                if let Err(error) = bot.outbox.post(chat_id, Post::Message(text)).await {
                    tracing::warn!(
                        chat = chat_id,
                        "cannot say why a file was not sent: {error}"
                    );
                }
            }
        });
    }

    /// Stop pressed on a draft: cancels the task that draft belongs to, as `/cancel` does.
    fn on_stop(&self, stop: StopPress) -> Handled {
        let owner = stop.chat_id.to_string();
        if self.users.authorize(&owner).is_err() {
            return Handled::Ignored("a stop from a chat not on the allow-list".into());
        }
        let cancel = self.running(&owner, |task| {
            let draft = task.draft.as_ref().filter(|d| d.owns(stop.draft_id))?;
            draft.stop();
            Some(task.cancel.clone())
        });
        match cancel {
            Some(Some(cancel)) => {
                cancel.cancel();
                Handled::Control("the Stop button")
            }
            _ => Handled::Ignored("a stop for a draft of no running task".into()),
        }
    }

    async fn start_task(self: &Arc<Self>, message: UserMessage, user_key: String) -> Handled {
        let slot = match self.users.claim(&user_key) {
            Ok(slot) => slot,
            Err(UserError::Busy(_)) => {
                let busy = match &message.attachment {
                    Some(_) => commands::BUSY_FILE_KEPT,
                    None => commands::BUSY,
                };
                self.reply(&message, busy.to_string());
                return Handled::Busy;
            }
            Err(error) => {
                tracing::warn!(user = %user_key, "cannot start a task: {error}");
                return Handled::Refused;
            }
        };
        let workspace = match self.users.workspace(&user_key) {
            Ok(workspace) => workspace,
            Err(error) => {
                tracing::error!(user = %user_key, "cannot create the workspace: {error}");
                self.reply(&message, WORKSPACE_FAILED.to_string());
                return Handled::Ignored("the workspace could not be created".into());
            }
        };
        let (progress, events) = Progress::channel(256);
        let task_id = self.launcher.next_task_id();
        let cancel = self.launcher.job_cancel();
        let stats = Arc::new(Mutex::new(TaskStats::default()));
        let verbosity = self.store.verbosity(message.from);
        let drafting = message.chat_kind == ChatKind::Private
            && !lock(&self.drafts_refused).contains(&message.chat_id);
        let draft = drafting.then(|| {
            Arc::new(LiveDraft::new(
                message.chat_id,
                verbosity,
                workspace.clone(),
            ))
        });
        if let Some(draft) = &draft {
            // Before anything else is posted in the chat: from now on posts flush it.
            self.outbox.attach_draft(draft.clone()).await;
        }
        lock(&self.running).insert(
            user_key.clone(),
            Running {
                task_id: task_id.clone(),
                cancel: cancel.clone(),
                started: Instant::now(),
                stats: stats.clone(),
                draft: draft.clone(),
            },
        );
        let live = match draft {
            Some(draft) => Live::Draft(draft),
            None => Live::Message(ProgressMessage::new(
                message.chat_id,
                Some(message.message_id),
                ButtonData::new("cancel", &task_id, message.from),
                TaskView::new(verbosity, workspace.clone()),
            )),
        };
        let cancel_for_follow = cancel.clone();
        let follow_workspace = workspace.clone();
        let started_at = std::time::SystemTime::now() - FILE_TIME_SLACK;
        // The files sent since the last prompt go with this one.
        let waiting = self.store.take_uploads(message.from);
        let job = Job {
            task_id: task_id.clone(),
            user_key: user_key.clone(),
            session_id: None,
            prompt: uploads::prompt_with(&waiting, &message.text),
            images: waiting.iter().filter_map(|u| u.image.clone()).collect(),
            workspace,
            cancel,
            progress,
        };
        let outcome = self.launcher.launch(job, slot);
        let bot = self.clone();
        let follow = FollowUp {
            chat_id: message.chat_id,
            reply_to: message.message_id,
            user_key,
            task_id: task_id.clone(),
            stats,
            cancel: cancel_for_follow,
            live,
            update_interval: match message.chat_kind {
                ChatKind::Private => self.settings.update_interval,
                ChatKind::Shared => self.settings.group_update_interval,
            },
            workspace: follow_workspace,
            started_at,
        };
        self.launcher
            .track(async move { bot.follow(follow, events, outcome).await });
        Handled::Started(task_id)
    }

    /// Shows the task's work as it happens (draft or progress message, `typing` while
    /// there is no draft) and keeps the stats current until it ends, then delivers its
    /// answer.
    async fn follow(
        self: Arc<Self>,
        mut task: FollowUp,
        mut events: mpsc::Receiver<ProgressEvent>,
        mut outcome: tokio::sync::oneshot::Receiver<Outcome>,
    ) {
        let started = Instant::now();
        // A sign of life at once, however quick the task: the draft ("Thinking…" and its
        // Stop button), or else "typing…", refreshed before it fades. A progress message
        // waits for the first refresh (a quick task never gets one).
        match task.live {
            Live::Draft(_) => self.refresh(&mut task).await,
            Live::Message(_) => self.outbox.chat_action(task.chat_id, "typing").await,
        }
        let every = self.settings.typing_interval;
        let mut typing = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut refresh = tokio::time::interval_at(
            tokio::time::Instant::now() + task.update_interval,
            task.update_interval,
        );
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listening = true;
        let outcome = loop {
            tokio::select! {
                outcome = &mut outcome => break outcome,
                event = events.recv(), if listening => match event {
                    Some(event) => {
                        task.live.apply(&event);
                        record(&task.stats, event);
                    }
                    None => listening = false,
                },
                _ = refresh.tick() => self.refresh(&mut task).await,
                _ = typing.tick(), if !matches!(task.live, Live::Draft(_)) => {
                    self.outbox.chat_action(task.chat_id, "typing").await;
                }
            }
        };
        // What the task reported last (its channel may still hold events).
        while let Ok(event) = events.try_recv() {
            task.live.apply(&event);
            record(&task.stats, event);
        }
        {
            let mut running = lock(&self.running);
            if running
                .get(&task.user_key)
                .is_some_and(|r| r.task_id == task.task_id)
            {
                running.remove(&task.user_key);
            }
        }
        // What the task used: the answer's count, or (cancelled, failed) what its
        // turns reported.
        let used = match &outcome {
            Ok(Ok(answer)) => answer.usage,
            _ => lock(&task.stats).usage,
        };
        self.record_usage(&task, &used);
        let (text, footer) = match outcome {
            Ok(Ok(answer)) => (answer.text, "✅ Done"),
            Ok(Err(message)) if task.cancel.is_cancelled() => (message, "⏹ Cancelled"),
            Ok(Err(message)) => (message, "❌ Failed"),
            Err(_) => ("The task ended without an answer.".to_string(), "❌ Failed"),
        };
        match &mut task.live {
            // The answer replaces the draft: that is what a draft is for.
            Live::Draft(draft) => self.outbox.detach_draft(draft).await,
            Live::Message(progress) => {
                let footer = format!("{footer} after {}", commands::elapsed(started.elapsed()));
                progress.finish(&self.outbox, &footer).await;
            }
        }
        let keyboard = self.offer_files(&task).await;
        let answer = PendingAnswer {
            chat_id: task.chat_id,
            task_id: task.task_id,
            reply_to: Some(task.reply_to),
            text,
            messages_sent: 0,
            keyboard,
        };
        self.store.save_answer(&answer);
        self.deliver(answer).await;
    }

    /// Buttons offering the files the task created or changed (remembered so a press
    /// finds them); none when it touched none.
    async fn offer_files(&self, task: &FollowUp) -> Option<serde_json::Value> {
        let (workspace, since) = (task.workspace.clone(), task.started_at);
        let files = tokio::task::spawn_blocking(move || {
            files_changed_since(&workspace, since, files_out::MAX_OFFERED)
        })
        .await
        .unwrap_or_default();
        if files.is_empty() {
            return None;
        }
        let owner = task.user_key.parse().unwrap_or(task.chat_id);
        let keyboard = files_out::offer_keyboard(&task.task_id, owner, &files)?;
        self.store.offer_files(owner, &task.task_id, files);
        Some(keyboard)
    }

    fn record_usage(&self, task: &FollowUp, used: &crate::model::Usage) {
        let model_id = &self.settings.model_id;
        let owner = task.user_key.parse().unwrap_or(task.chat_id);
        self.store.record_usage(
            owner,
            TaskUsage {
                task_id: task.task_id.clone(),
                model_id: model_id.clone(),
                tokens: Tokens::from(used),
                cost_usd: usage::cost(self.settings.prices.price(model_id), used),
            },
        );
    }

    /// Shows the task's latest work; when Telegram refuses the draft, the task (and the
    /// chat's later tasks) go on with a progress message.
    async fn refresh(&self, task: &mut FollowUp) {
        let refused = match &mut task.live {
            Live::Message(progress) => {
                progress.refresh(&self.outbox).await;
                return;
            }
            Live::Draft(draft) => match self.outbox.update_draft(draft).await {
                Ok(_) => return,
                Err(error) if error.is_transient() => {
                    tracing::debug!(chat = task.chat_id, "draft not updated this time: {error}");
                    return;
                }
                Err(error) => {
                    tracing::info!(
                        chat = task.chat_id,
                        "drafts refused ({error}); showing a progress message instead"
                    );
                    draft.clone()
                }
            },
        };
        lock(&self.drafts_refused).insert(task.chat_id);
        self.outbox.detach_draft(&refused).await;
        if let Some(running) = lock(&self.running).get_mut(&task.user_key)
            && running.task_id == task.task_id
        {
            running.draft = None;
        }
        let owner = task.user_key.parse().unwrap_or(task.chat_id);
        let mut progress = ProgressMessage::new(
            task.chat_id,
            Some(task.reply_to),
            ButtonData::new("cancel", &task.task_id, owner),
            refused.take_view(),
        );
        progress.refresh(&self.outbox).await;
        task.live = Live::Message(progress);
    }

    /// Sends the answers a previous run of the host recorded and did not finish sending
    /// (once per run; later calls do nothing).
    pub async fn resend_pending(&self) {
        if self.resent.swap(true, Ordering::Relaxed) {
            return;
        }
        for answer in self.store.pending_answers() {
            tracing::info!(chat = answer.chat_id, task = %answer.task_id, "sending an answer left by the last run");
            self.deliver(answer).await;
        }
    }

    /// Sends `answer` from where it stopped; it stays recorded unless Telegram accepted
    /// all of it or refused it for good.
    async fn deliver(&self, mut answer: PendingAnswer) {
        let plan = render::plan_answer(&answer.text);
        let chat = answer.chat_id;
        let total = plan.messages.len() + usize::from(plan.document.is_some());
        while answer.messages_sent < total {
            let index = answer.messages_sent;
            let reply_to = if index == 0 { answer.reply_to } else { None };
            let keyboard = (index + 1 == plan.messages.len())
                .then(|| answer.keyboard.clone())
                .flatten();
            let result = match plan.messages.get(index) {
                Some(chunk) => self.send_chunk(chat, chunk, reply_to, keyboard).await,
                None => {
                    let post = Post::Document {
                        file_name: ANSWER_FILE.to_string(),
                        bytes: plan.document.clone().unwrap_or_default().into_bytes(),
                        caption: Some("The whole answer".to_string()),
                        reply_to: None,
                    };
                    self.outbox.post(chat, post).await.map(drop)
                }
            };
            match result {
                Ok(()) => {
                    answer.messages_sent += 1;
                    if answer.messages_sent < total {
                        self.store.save_answer(&answer);
                    }
                }
                Err(error) if error.is_transient() => {
                    tracing::error!(chat, task = %answer.task_id, "the answer could not be sent; it is kept and sent again when the host restarts: {error}");
                    return;
                }
                Err(error) => {
                    tracing::error!(chat, task = %answer.task_id, "Telegram refused the answer; it is dropped: {error}");
                    break;
                }
            }
        }
        self.store.answer_delivered(&answer);
    }

    /// One message as HTML, or as plain text when Telegram refuses the HTML.
    async fn send_chunk(
        &self,
        chat: i64,
        chunk: &render::Chunk,
        reply_to: Option<i64>,
        keyboard: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
        let mut html = Text::html(chat, chunk.html.clone()).replying_to(reply_to);
        html.reply_markup = keyboard.clone();
        match self.outbox.post(chat, Post::Message(html)).await {
            Err(ApiError::CantParseEntities(reason)) => {
                tracing::warn!(chat, "{reason}; sending the same text without formatting");
                let mut plain = Text::plain(chat, chunk.plain.clone()).replying_to(reply_to);
                plain.reply_markup = keyboard;
                self.outbox.post(chat, Post::Message(plain)).await.map(drop)
            }
            result => result.map(drop),
        }
    }

    /// `/get PATH`: the file as a document, in the background.
    fn send_file(self: &Arc<Self>, message: &UserMessage, user_key: &str, path: String) {
        let workspace = match self.users.workspace(user_key) {
            Ok(workspace) => workspace,
            Err(_) => return self.reply(message, WORKSPACE_FAILED.to_string()),
        };
        let (bot, message) = (self.clone(), message.clone());
        self.launcher.track(async move {
            let sent = files_out::send_workspace_file(
                &bot.outbox,
                message.chat_id,
                Some(message.message_id),
                workspace,
                path,
            )
            .await;
            if let Err(sentence) = sent {
                bot.reply(&message, sentence);
            }
        });
    }

    /// `/diff`: git's view of the workspace, in the background.
    fn send_diff(self: &Arc<Self>, message: &UserMessage, user_key: &str) {
        let workspace = match self.users.workspace(user_key) {
            Ok(workspace) => workspace,
            Err(_) => return self.reply(message, WORKSPACE_FAILED.to_string()),
        };
        let runner = self
            .commands
            .get_or_init(|| Arc::new(CommandRunner::new(self.settings.exec.clone())))
            .clone();
        let (bot, message) = (self.clone(), message.clone());
        self.launcher.track(async move {
            let (chat, reply_to) = (message.chat_id, Some(message.message_id));
            let sent = files_out::send_diff(&bot.outbox, chat, reply_to, runner, workspace).await;
            if let Err(sentence) = sent {
                bot.reply(&message, sentence);
            }
        });
    }

    /// Answers `message` with plain `text`, in the background.
    fn reply(self: &Arc<Self>, message: &UserMessage, text: String) {
        let (bot, chat, reply_to) = (self.clone(), message.chat_id, message.message_id);
        self.launcher.track(async move {
            for chunk in render::plain(&text) {
                let post = Text::html(chat, chunk.html).replying_to(Some(reply_to));
                if let Err(error) = bot.outbox.post(chat, Post::Message(post)).await {
                    tracing::warn!(chat, "cannot send a reply: {error}");
                    return;
                }
            }
        });
    }

    fn running<T>(&self, user_key: &str, read: impl FnOnce(&Running) -> T) -> Option<T> {
        lock(&self.running).get(user_key).map(read)
    }
}

/// What the follow-up of a task needs to know.
struct FollowUp {
    chat_id: i64,
    reply_to: i64,
    user_key: String,
    task_id: String,
    stats: Arc<Mutex<TaskStats>>,
    cancel: CancellationToken,
    live: Live,
    update_interval: Duration,
    workspace: std::path::PathBuf,
    /// When the task began, a little early: file times come from a coarse kernel clock.
    started_at: std::time::SystemTime,
}

/// How a running task shows its work in its chat.
enum Live {
    /// A draft in a private chat.
    Draft(Arc<LiveDraft>),
    /// A progress message (groups, or drafts refused).
    Message(ProgressMessage),
}

impl Live {
    fn apply(&mut self, event: &ProgressEvent) {
        match self {
            Live::Draft(draft) => draft.apply(event),
            Live::Message(progress) => progress.apply(event),
        }
    }
}

fn record(stats: &Mutex<TaskStats>, event: ProgressEvent) {
    let mut stats = lock(stats);
    match event {
        ProgressEvent::ToolStarted { tool, .. } => {
            stats.tool_calls += 1;
            stats.last_tool = Some(tool);
        }
        ProgressEvent::TurnFinished { turn, usage } => {
            stats.turns = turn;
            stats.tokens = usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens;
            stats.usage = usage;
        }
        ProgressEvent::Text { .. } | ProgressEvent::ToolFinished { .. } => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
