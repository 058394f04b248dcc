//! The Telegram front end end to end: updates arrive through `/invocations` (as the relay
//! forwards them) or through long polling, the production [`Bot`] decides, the scripted
//! runner does the task, and everything the bot posts goes to the Telegram fake, which
//! refuses what Telegram would refuse (bad HTML, too long, ...).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use agent_host::agent::launch::Launcher;
use agent_host::agent::{Agent, AgentSettings, JobRunner};
use agent_host::plugins::LivePlugins;
use agent_host::server::{AppState, ServerSettings, TaskRegistry};
use agent_host::session::Users;
use agent_host::session::history::{FileHistory, HistoryStore};
use agent_host::telegram::api::{ApiError, Text};
use agent_host::telegram::outbox::{Outbox, Post};
use agent_host::telegram::poll::{self, PollSettings};
use agent_host::telegram::{Bot, BotApi, BotSettings, Handled, Store};
use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use agent_host_tests::fake_telegram::{
    BOT_USERNAME, Call, DraftEndKind, Failure, FakeTelegram, Message as FakeMessage,
};
use agent_host_tests::{
    ScriptRunner, all_gone, bedrock_model, builtin_plugins, is_running, unique_name,
};
use serde_json::{Value, json};

const TOKEN: &str = "123456:TEST-token-for-the-fake";
const ALICE: i64 = 1001;
const STRANGER: i64 = 666;
/// Upper bound for anything the tests wait for (never a timing assertion).
const WAIT: Duration = Duration::from_secs(20);

/// The bot wired as `serve` wires it, against the fake.
struct Harness {
    fake: FakeTelegram,
    runner: Arc<ScriptRunner>,
    users: Arc<Users>,
    root: tempfile::TempDir,
    bot: Arc<Bot>,
}

impl Harness {
    async fn start() -> Self {
        let fake = FakeTelegram::start(TOKEN).await;
        let root = tempfile::tempdir().unwrap();
        let users = Arc::new(Users::new(
            root.path().join("workspaces"),
            [ALICE.to_string()],
        ));
        let runner = Arc::new(ScriptRunner::new(builtin_plugins().clone()));
        Self {
            bot: bot(&fake, root.path(), users.clone(), runner.clone()),
            fake,
            runner,
            users,
            root,
        }
    }

    /// A new bot on the same state directory, as after a host restart.
    fn restart_bot(&self) -> Arc<Bot> {
        bot(
            &self.fake,
            self.root.path(),
            self.users.clone(),
            self.runner.clone(),
        )
    }

    async fn send(&self, update: Value) -> Handled {
        self.bot.handle_update(update).await
    }

    /// Waits until the fake has recorded `count` successful `method` calls to `chat`.
    async fn wait_for(&self, method: &str, chat: i64, count: usize) -> Vec<Call> {
        let reached = self
            .fake
            .wait_until(|calls| sent(calls, method, chat).len() >= count, WAIT)
            .await;
        let calls = sent(&self.fake.calls(), method, chat);
        assert!(
            reached,
            "expected {count} {method} to {chat}, got {calls:#?}\nall calls: {:#?}",
            self.fake.calls()
        );
        calls
    }

    /// Every text message the bot sent to `chat` (visible text), in order.
    fn texts(&self, chat: i64) -> Vec<String> {
        self.fake
            .messages(chat)
            .into_iter()
            .filter(|message| message.document.is_none())
            .map(|message| message.text)
            .collect()
    }

    async fn idle(&self) {
        let launcher = self.bot.launcher().clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        while launcher.tasks().active_count() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tasks did not finish"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn bot(
    fake: &FakeTelegram,
    root: &std::path::Path,
    users: Arc<Users>,
    runner: Arc<ScriptRunner>,
) -> Arc<Bot> {
    let api = BotApi::new(&fake.base_url(), TOKEN).unwrap();
    let store = Store::open(&root.join("state/telegram")).unwrap();
    let launcher = Arc::new(Launcher::new(runner, TaskRegistry::new()));
    let settings = BotSettings {
        groups: true,
        send_interval: Duration::from_millis(5),
        group_update_interval: Duration::from_millis(300),
        ..BotSettings::default()
    };
    Arc::new(Bot::new(api, store, users, launcher, settings))
}

/// `agent-host telegram`'s polling loop on `bot`, in the background.
struct Poller {
    stop: tokio::sync::oneshot::Sender<()>,
    polling: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Poller {
    fn start(bot: Arc<Bot>) -> Self {
        let settings = PollSettings {
            timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let polling = tokio::spawn(poll::run(bot, settings, async move {
            let _ = stopped.await;
        }));
        Self { stop, polling }
    }

    /// Stops polling as SIGTERM does; running tasks finish first.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.polling.await.unwrap().unwrap();
    }
}

/// The successful calls of `method` to `chat`.
fn sent(calls: &[Call], method: &str, chat: i64) -> Vec<Call> {
    calls
        .iter()
        .filter(|call| call.method == method && call.ok && call.params["chat_id"] == json!(chat))
        .cloned()
        .collect()
}

/// `update` with a fresh `update_id` (as Telegram numbers them), for updates handed to
/// the bot directly rather than pushed to the fake's `getUpdates`.
fn numbered(mut update: Value) -> Value {
    static NEXT: AtomicI64 = AtomicI64::new(500_000);
    update["update_id"] = json!(NEXT.fetch_add(1, Ordering::Relaxed));
    update
}

fn message(text: &str) -> Value {
    numbered(FakeTelegram::private_message(ALICE, text))
}

#[tokio::test]
async fn a_prompt_through_invocations_shows_typing_then_answers_in_a_new_message() {
    let harness = Harness::start().await;
    let launcher = harness.bot.launcher().clone();
    let state = AppState::with_launcher(harness.users.clone(), launcher, ServerSettings::default())
        .with_bot(harness.bot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(agent_host::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let update = message("say hello");
    let response = reqwest::Client::new()
        .post(format!("{base}/invocations"))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted", "{body}");

    let answers = harness.wait_for("sendMessage", ALICE, 1).await;
    // In a private chat the first sign of life is the draft: "Thinking…" and Stop.
    let drafts = harness.wait_for("sendMessageDraft", ALICE, 1).await;
    assert_eq!(drafts[0].params["text"], "");
    assert!(
        drafts[0].at <= answers[0].at,
        "the draft shows before the answer"
    );
    assert_eq!(answers[0].params["text"], "done: 1 steps");
    assert_eq!(
        answers[0].params["reply_parameters"]["message_id"], update["message"]["message_id"],
        "the answer replies to the prompt"
    );
    assert!(
        harness.fake.calls_to("editMessageText").is_empty(),
        "the final answer is a new message (the phone notifies), not an edit"
    );
    assert!(
        harness.fake.calls().iter().all(|call| call.ok),
        "{:#?}",
        harness.fake.calls()
    );

    // The relay redelivers the same update: no second task.
    let again: Value = reqwest::Client::new()
        .post(format!("{base}/invocations"))
        .json(&update)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    let _ = stop.send(());
    served.await.unwrap().unwrap();
    assert_eq!(harness.texts(ALICE), vec!["done: 1 steps"]);
}

#[tokio::test]
async fn long_polling_runs_the_same_dispatcher_and_keeps_its_offset() {
    let harness = Harness::start().await;
    let first = harness.fake.push_update(message("first task"));
    let poller = Poller::start(harness.bot.clone());
    harness.wait_for("sendMessage", ALICE, 1).await;
    assert!(
        !harness.fake.calls_to("setMyCommands").is_empty(),
        "local mode registers the command menu"
    );
    let allowed = harness.fake.last_allowed_updates().unwrap();
    assert!(
        allowed.contains(&"message".to_string()) && allowed.contains(&"callback_query".to_string()),
        "{allowed:?}"
    );
    let second = harness.fake.push_update(message("second task"));
    harness.wait_for("sendMessage", ALICE, 2).await;
    poller.stop().await;
    assert_eq!(harness.bot.store().offset(), second + 1);
    assert!(second > first);

    // A restarted poller starts after what it handled: nothing is repeated.
    let poller = Poller::start(harness.restart_bot());
    harness.fake.push_update(message("third task"));
    harness.wait_for("sendMessage", ALICE, 3).await;
    poller.stop().await;
    assert_eq!(harness.texts(ALICE).len(), 3, "{:?}", harness.texts(ALICE));
}

#[tokio::test]
async fn polling_refuses_to_start_beside_a_webhook_or_another_poller() {
    let harness = Harness::start().await;
    let settings = PollSettings {
        timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(1),
    };
    harness
        .fake
        .set_webhook_url(Some("https://relay.example/telegram"));
    let error = poll::run(harness.bot.clone(), settings, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("webhook") && error.contains("deleteWebhook"),
        "{error}"
    );

    harness.fake.set_webhook_url(None);
    harness.fake.fail_next(
        "getUpdates",
        Failure::Status(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running".into()),
    );
    let error = tokio::time::timeout(
        WAIT,
        poll::run(harness.bot.clone(), settings, std::future::pending()),
    )
    .await
    .expect("a conflict ends polling, it is not retried forever")
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("409") && error.contains("another process"),
        "{error}"
    );
}

#[tokio::test]
async fn a_long_answer_with_code_tables_and_stray_markup_arrives_whole() {
    let harness = Harness::start().await;
    let code = "fn main() {\n    let x = a < b && c > d;\n    println!(\"<&>\");\n}\n";
    let mut answer = String::from(
        "# Result\n\nUnbalanced *stars and _underscores and <tags> & \"quotes\".\n\n| a | b |\n|---|---|\n| 1 < 2 | x & y |\n\n",
    );
    for i in 0..40 {
        answer.push_str(&format!(
            "Paragraph {i}: some words about the change.\n\n```rust\n{code}```\n\n"
        ));
    }
    harness.runner.set_answer("long", &answer);
    harness.send(message("answer long")).await;
    harness.idle().await;
    harness.wait_until_quiet().await;
    let messages = harness.fake.messages(ALICE);
    assert!(
        harness.fake.calls().iter().all(|call| call.ok),
        "every call accepted: {:#?}",
        harness.fake.calls()
    );
    let visible: String = messages
        .iter()
        .filter(|m| m.document.is_none())
        .map(|m| m.text.clone())
        .collect();
    let documents: Vec<_> = messages.iter().filter_map(|m| m.document.clone()).collect();
    match documents.as_slice() {
        [] => {
            for i in 0..40 {
                assert!(
                    visible.contains(&format!("Paragraph {i}:")),
                    "paragraph {i} lost"
                );
            }
            assert_eq!(visible.matches("println!(\"<&>\");").count(), 40);
        }
        [document] => {
            assert_eq!(document.file_name, "answer.md");
            assert_eq!(
                String::from_utf8_lossy(&document.bytes),
                answer,
                "the document holds the whole answer"
            );
            assert!(
                visible.contains("Result"),
                "the start is shown as a message"
            );
        }
        more => panic!("one document at most: {more:?}"),
    }
    assert!(
        visible.contains("Unbalanced *stars and _underscores and <tags> & \"quotes\"."),
        "{visible}"
    );
}

impl Harness {
    /// Waits until the answer's delivery (after the task) has finished.
    async fn wait_until_quiet(&self) {
        let store = self.bot.store();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !store.pending_answers().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the answer was not delivered"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn refused_formatting_is_resent_as_plain_text() {
    let harness = Harness::start().await;
    harness.runner.set_answer("bold", "**done** and `ok`");
    harness
        .fake
        .fail_next("sendMessage", Failure::CantParseEntities);
    harness.send(message("answer bold")).await;
    let sent = harness.wait_for("sendMessage", ALICE, 1).await;
    assert_eq!(
        sent[0].params["parse_mode"],
        Value::Null,
        "the resend is plain text"
    );
    assert_eq!(harness.texts(ALICE), vec!["done and ok"]);
}

#[tokio::test]
async fn too_many_requests_waits_retry_after_and_delivers() {
    let harness = Harness::start().await;
    harness
        .fake
        .fail_next("sendMessage", Failure::TooManyRequests { retry_after: 1 });
    harness.send(message("hello")).await;
    let sent = harness.wait_for("sendMessage", ALICE, 1).await;
    let refused: Vec<Call> = harness
        .fake
        .calls_to("sendMessage")
        .into_iter()
        .filter(|c| !c.ok)
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(
        sent[0].at.duration_since(refused[0].at) >= Duration::from_secs(1),
        "waited retry_after"
    );
    assert_eq!(harness.texts(ALICE), vec!["done: 1 steps"]);
}

#[tokio::test]
async fn every_command_answers_and_control_never_waits_for_the_task() {
    let harness = Harness::start().await;
    let gate = harness.runner.gate("hold");
    for (command, expected) in [
        ("/start", "Your workspace:"),
        ("/help", "/cancel"),
        ("/status", "No task is running"),
        ("/cancel", "No task is running"),
        ("/new", "fresh conversation"),
        ("/frobnicate", "I don't know /frobnicate"),
    ] {
        // Counted before sending: the reply may be out before `send` returns.
        let count = harness.texts(ALICE).len() + 1;
        assert!(
            matches!(harness.send(message(command)).await, Handled::Control(_)),
            "{command}"
        );
        harness.wait_for("sendMessage", ALICE, count).await;
        let last = harness.texts(ALICE).pop().unwrap();
        assert!(last.contains(expected), "{command} → {last}");
    }

    let started = harness.send(message("wait hold")).await;
    assert!(matches!(started, Handled::Started(_)), "{started:?}");
    gate.reached().await;
    let before = harness.texts(ALICE).len();
    assert_eq!(harness.send(message("another prompt")).await, Handled::Busy);
    assert!(matches!(
        harness.send(message("/status")).await,
        Handled::Control(_)
    ));
    assert!(matches!(
        harness.send(message("/new")).await,
        Handled::Control(_)
    ));
    harness.wait_for("sendMessage", ALICE, before + 3).await;
    let replies = harness.texts(ALICE)[before..].to_vec();
    assert!(
        replies[0].starts_with("Still working on your last request"),
        "{replies:?}"
    );
    assert!(replies[1].starts_with("Working on task"), "{replies:?}");
    assert!(replies[2].contains("/cancel it first"), "{replies:?}");

    assert!(matches!(
        harness.send(message("/cancel")).await,
        Handled::Control(_)
    ));
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, before + 5).await;
    let replies = harness.texts(ALICE)[before + 3..].to_vec();
    assert!(
        replies.contains(&"Stopping the task…".to_string()),
        "{replies:?}"
    );
    assert!(
        replies.contains(&"The task was cancelled.".to_string()),
        "{replies:?}"
    );
}

#[tokio::test]
async fn a_stranger_is_refused_once_and_starts_nothing() {
    let harness = Harness::start().await;
    let stranger = |text: &str| numbered(FakeTelegram::private_message(STRANGER, text));
    assert_eq!(
        harness.send(stranger("write me a virus")).await,
        Handled::Refused
    );
    let refusal = harness.wait_for("sendMessage", STRANGER, 1).await;
    assert!(
        refusal[0].params["text"]
            .as_str()
            .unwrap()
            .contains(&STRANGER.to_string())
    );
    assert_eq!(harness.send(stranger("/start")).await, Handled::Refused);
    // After a restart too: the refusal is remembered for the day.
    let bot = harness.restart_bot();
    assert_eq!(
        bot.handle_update(stranger("hello?")).await,
        Handled::Refused
    );
    assert_eq!(harness.bot.launcher().tasks().active_count(), 0);
    assert!(
        !harness.users.workspace_path(&STRANGER.to_string()).exists(),
        "no workspace for a stranger"
    );
    // Give a second refusal every chance to be posted before checking there was none.
    harness.send(message("/help")).await;
    harness.wait_for("sendMessage", ALICE, 1).await;
    assert_eq!(
        sent(&harness.fake.calls(), "sendMessage", STRANGER).len(),
        1
    );
}

#[tokio::test]
async fn a_duplicate_update_starts_no_second_task_even_after_a_restart() {
    let harness = Harness::start().await;
    let update = message("once");
    assert!(matches!(
        harness.send(update.clone()).await,
        Handled::Started(_)
    ));
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, 1).await;
    // Delivered and forgotten (else the restarted bot would rightly send it again).
    harness.wait_until_quiet().await;
    assert_eq!(harness.send(update.clone()).await, Handled::Duplicate);
    let bot = harness.restart_bot();
    assert_eq!(bot.handle_update(update).await, Handled::Duplicate);
    harness.wait_until_quiet().await;
    assert_eq!(harness.texts(ALICE).len(), 1, "{:?}", harness.texts(ALICE));
}

#[tokio::test]
async fn an_answer_recorded_but_not_sent_is_sent_after_a_restart() {
    let harness = Harness::start().await;
    // Telegram is unreachable for the whole delivery: the answer stays recorded.
    for _ in 0..agent_host::telegram::outbox::NETWORK_ATTEMPTS {
        harness
            .fake
            .fail_next("sendMessage", Failure::Status(502, "Bad Gateway".into()));
    }
    harness.send(message("hello")).await;
    harness.idle().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while harness.fake.calls_to("sendMessage").len()
        < agent_host::telegram::outbox::NETWORK_ATTEMPTS as usize
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(harness.texts(ALICE).is_empty());
    assert_eq!(harness.bot.store().pending_answers().len(), 1);

    // The restarted host sends it when the first update arrives (behind the relay it
    // may not touch the network at start).
    let bot = harness.restart_bot();
    bot.handle_update(message("/status")).await;
    harness.wait_for("sendMessage", ALICE, 2).await;
    assert!(
        harness.texts(ALICE).contains(&"done: 1 steps".to_string()),
        "{:?}",
        harness.texts(ALICE)
    );
    assert!(bot.store().pending_answers().is_empty());
}

#[tokio::test]
async fn groups_answer_only_messages_addressed_to_the_bot() {
    let harness = Harness::start().await;
    let group = -100_200;
    let plain = numbered(FakeTelegram::group_message(
        group,
        ALICE,
        "chatting among ourselves",
    ));
    assert!(matches!(harness.send(plain).await, Handled::Ignored(_)));
    let me = agent_host_tests::fake_telegram::BOT_USERNAME;
    let addressed = numbered(FakeTelegram::group_message(
        group,
        ALICE,
        &format!("@{me} say hi"),
    ));
    assert!(matches!(harness.send(addressed).await, Handled::Started(_)));
    let answer = harness.wait_for("sendMessage", group, 1).await;
    assert_eq!(answer[0].params["text"], "done: 1 steps");
    harness.idle().await;

    // A reply to one of the bot's messages addresses it too; a reply to someone else not.
    let reply_to = |from: i64| {
        let mut update = numbered(FakeTelegram::group_message(group, ALICE, "and now this"));
        update["message"]["reply_to_message"] =
            json!({"message_id": 1, "from": {"id": from, "is_bot": from == harness.fake.bot_id()}});
        update
    };
    assert!(matches!(
        harness.send(reply_to(STRANGER)).await,
        Handled::Ignored(_)
    ));
    assert!(matches!(
        harness.send(reply_to(harness.fake.bot_id())).await,
        Handled::Started(_)
    ));
    harness.wait_for("sendMessage", group, 2).await;
    // A command naming another bot is not for this one.
    let other = numbered(FakeTelegram::group_message(
        group,
        ALICE,
        "/status@some_other_bot",
    ));
    assert!(matches!(harness.send(other).await, Handled::Ignored(_)));
}

/// Button presses come through long polling here: the fake accepts an answer only to a
/// callback query it delivered.
#[tokio::test]
async fn button_presses_are_always_answered_and_checked_against_the_owner() {
    let harness = Harness::start().await;
    let gate = harness.runner.gate("hold");
    let poller = Poller::start(harness.bot.clone());
    harness
        .fake
        .push_update(FakeTelegram::private_message(ALICE, "wait hold"));
    gate.reached().await;
    // The scripted task is the bot's first.
    let task = harness.bot.launcher().task_id(1);
    let press = |from: i64, data: &str| FakeTelegram::callback_query(from, ALICE, 1, data);
    let (foreign, garbage, own) = (
        press(STRANGER, &format!("cancel:{task}:{ALICE}")),
        press(ALICE, "not ours"),
        press(ALICE, &format!("cancel:{task}:{ALICE}")),
    );
    harness.fake.push_update(foreign.clone());
    harness.fake.push_update(garbage.clone());
    let answered = |n: usize| {
        move |calls: &[Call]| {
            calls
                .iter()
                .filter(|c| c.method == "answerCallbackQuery")
                .count()
                >= n
        }
    };
    assert!(harness.fake.wait_until(answered(2), WAIT).await);
    assert_eq!(
        harness.bot.launcher().tasks().active_count(),
        1,
        "a stranger's press stops nothing"
    );
    harness.fake.push_update(own.clone());
    assert!(harness.fake.wait_until(answered(3), WAIT).await);
    harness.idle().await;
    poller.stop().await;
    assert!(harness.fake.unanswered_callbacks().is_empty());
    // Presses are answered concurrently: match each answer to its press.
    let notice = |press: &Value| {
        let id = &press["callback_query"]["id"];
        let calls = harness.fake.calls_to("answerCallbackQuery");
        let call = calls.iter().find(|c| &c.params["callback_query_id"] == id);
        call.map(|c| c.params["text"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        notice(&foreign).as_deref(),
        Some("This button belongs to someone else.")
    );
    assert_eq!(
        notice(&garbage).as_deref(),
        Some("This button is no longer in use.")
    );
    assert_eq!(notice(&own).as_deref(), Some("Stopping the task…"));
    assert!(
        harness
            .texts(ALICE)
            .contains(&"The task was cancelled.".to_string())
    );
}

#[tokio::test]
async fn ignored_updates_start_nothing_and_never_fail() {
    let harness = Harness::start().await;
    for update in [
        json!({"update_id": 9001, "edited_message": {"message_id": 1, "text": "x"}}),
        json!({"update_id": 9002, "channel_post": {"message_id": 1, "text": "x"}}),
        json!({"update_id": 9003, "message": {"message_id": 1, "from": {"id": ALICE}, "chat": {"id": ALICE, "type": "private"}, "sticker": {"file_id": "x"}}}),
        json!({"update_id": 9004, "my_chat_member": {}}),
        json!({"update_id": "nine"}),
    ] {
        assert!(
            matches!(harness.send(update.clone()).await, Handled::Ignored(_)),
            "{update}"
        );
    }
    assert_eq!(harness.bot.launcher().tasks().active_count(), 0);
}

#[tokio::test]
async fn the_outbox_paces_each_chat_and_retries_only_what_may_succeed() {
    let fake = FakeTelegram::start(TOKEN).await;
    let interval = Duration::from_millis(200);
    let outbox = Outbox::new(BotApi::new(&fake.base_url(), TOKEN).unwrap(), interval);
    let post = |chat: i64, text: &str| Post::Message(Text::html(chat, text));

    // One chat: in order, at least `interval` apart. Another chat does not wait for it.
    let (a, b, c, other) = tokio::join!(
        outbox.post(ALICE, post(ALICE, "one")),
        outbox.post(ALICE, post(ALICE, "two")),
        outbox.post(ALICE, post(ALICE, "three")),
        outbox.post(STRANGER, post(STRANGER, "elsewhere")),
    );
    for result in [a, b, c, other] {
        assert!(result.unwrap().is_some());
    }
    let texts: Vec<String> = fake.messages(ALICE).into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    let times: Vec<std::time::Instant> = sent(&fake.calls(), "sendMessage", ALICE)
        .iter()
        .map(|call| call.at)
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]) >= interval,
            "paced: {times:?}"
        );
    }
    let elsewhere = sent(&fake.calls(), "sendMessage", STRANGER)[0].at;
    assert!(
        elsewhere < times[2],
        "another chat is not queued behind this one"
    );

    // "Not modified" is success; a dropped connection is retried; a refusal is returned.
    fake.fail_next("sendMessage", Failure::NotModified);
    let unchanged = outbox.post(ALICE, post(ALICE, "same")).await.unwrap();
    assert!(unchanged.is_none());
    fake.fail_next("sendMessage", Failure::DropConnection);
    let retried = outbox.post(ALICE, post(ALICE, "again")).await.unwrap();
    assert!(retried.is_some());
    let blocked = "Forbidden: bot was blocked by the user";
    fake.fail_next("sendMessage", Failure::Status(403, blocked.into()));
    let error = outbox.post(ALICE, post(ALICE, "hello?")).await.unwrap_err();
    assert!(
        matches!(&error, ApiError::Refused { code: 403, description, .. } if description == blocked),
        "{error:?}"
    );
    assert_eq!(fake.calls_to("sendMessage").len(), 4 + 1 + 2 + 1);
}

// ---------------------------------------------------------------------------------------
// Watching a task work: drafts, progress messages, Stop and Cancel, verbosity.

/// The successful `sendMessageDraft` calls to `chat`, in order.
fn drafts(fake: &FakeTelegram, chat: i64) -> Vec<Call> {
    sent(&fake.calls(), "sendMessageDraft", chat)
}

/// Waits until a draft shown in `chat` holds `text`.
async fn wait_for_draft_with(fake: &FakeTelegram, chat: i64, text: &str) {
    let shown = fake
        .wait_until(
            |calls| {
                sent(calls, "sendMessageDraft", chat)
                    .iter()
                    .any(|c| c.str_param("text").is_some_and(|t| t.contains(text)))
            },
            WAIT,
        )
        .await;
    assert!(shown, "no draft showed {text:?}: {:#?}", drafts(fake, chat));
}

/// Every draft that ended in `chat` ended well: kept as a message (flushed), replaced by
/// one of the task's `answers`, or stopped by the user; none was erased.
fn assert_no_draft_erased(fake: &FakeTelegram, chat: i64, answers: &[&str]) {
    for end in fake.draft_ends(chat) {
        if let DraftEndKind::Replaced { message_text, .. } = &end.how
            && answers.contains(&message_text.as_str())
        {
            continue;
        }
        assert!(!end.lost(), "a live draft was erased: {end:#?}");
    }
}

#[tokio::test]
async fn a_private_task_streams_words_and_steps_as_a_draft_then_answers() {
    let harness = Harness::start().await;
    harness.runner.set_answer("final", "All **done**.");
    let script = "Looking at the code\nwrite notes.txt hello\nwait first\n\
                  Now the tests\nwrite more.txt again\nwait second\nanswer final";
    assert!(matches!(
        harness.send(message(script)).await,
        Handled::Started(_)
    ));
    wait_for_draft_with(&harness.fake, ALICE, "📝 Write notes.txt").await;
    harness.runner.gate("first").open();
    wait_for_draft_with(&harness.fake, ALICE, "📝 Write more.txt").await;
    harness.runner.gate("second").open();
    harness.wait_for("sendMessage", ALICE, 1).await;
    harness.idle().await;

    let drafts = drafts(&harness.fake, ALICE);
    assert!(drafts.len() >= 3, "{drafts:#?}");
    assert_eq!(
        drafts[0].str_param("text"),
        Some(""),
        "Thinking… and the Stop button at once"
    );
    let draft_id = drafts[0].int_param("draft_id").unwrap();
    for (previous, draft) in drafts.iter().zip(&drafts[1..]) {
        assert_eq!(
            draft.int_param("draft_id"),
            Some(draft_id),
            "one draft per task"
        );
        assert!(
            draft.at.duration_since(previous.at) >= Duration::from_millis(900),
            "drafts at most about once a second: {drafts:#?}"
        );
    }
    assert!(
        drafts
            .iter()
            .all(|d| d.param("can_stop") == Some(&json!(true)))
    );
    let last = drafts.last().unwrap().str_param("text").unwrap();
    assert!(
        last.starts_with("Looking at the code\n\n📝 Write notes.txt\n\nNow the tests"),
        "{last}"
    );
    assert!(
        drafts
            .iter()
            .all(|d| !d.str_param("text").unwrap().contains("blockquote")),
        "no tool output at `steps`"
    );
    assert_eq!(harness.texts(ALICE), ["All done."]);
    assert_no_draft_erased(&harness.fake, ALICE, &["All done."]);
    assert_eq!(
        harness.fake.draft(ALICE),
        None,
        "the answer replaced the draft"
    );
}

#[tokio::test]
async fn a_prompt_while_the_draft_is_live_flushes_it_before_the_busy_line() {
    let harness = Harness::start().await;
    harness.runner.set_answer("end", "Finished.");
    assert!(matches!(
        harness
            .send(message("Reading the logs\nwait hold\nanswer end"))
            .await,
        Handled::Started(_)
    ));
    wait_for_draft_with(&harness.fake, ALICE, "Reading the logs").await;
    let first_draft = harness.fake.draft(ALICE).unwrap().draft_id;
    assert_eq!(harness.send(message("and also this")).await, Handled::Busy);
    harness.wait_for("sendMessage", ALICE, 2).await;
    let texts = harness.texts(ALICE);
    assert_eq!(
        texts[0], "Reading the logs",
        "the draft was kept as a message"
    );
    assert!(texts[1].starts_with("Still working"), "{texts:?}");
    // The task goes on in a new draft.
    let goes_on = harness
        .fake
        .wait_until(
            |calls| {
                sent(calls, "sendMessageDraft", ALICE)
                    .iter()
                    .any(|c| c.int_param("draft_id") != Some(first_draft))
            },
            WAIT,
        )
        .await;
    assert!(goes_on, "{:#?}", drafts(&harness.fake, ALICE));
    harness.runner.gate("hold").open();
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, 3).await;
    assert_eq!(harness.texts(ALICE)[2], "Finished.");
    assert_no_draft_erased(&harness.fake, ALICE, &["Finished."]);
}

#[tokio::test]
async fn a_group_task_shows_a_progress_message_whose_cancel_button_cancels() {
    let harness = Harness::start().await;
    let group = -100_555;
    let update = numbered(FakeTelegram::group_message(
        group,
        ALICE,
        &format!("@{BOT_USERNAME} Checking\nwrite a.txt x\nwait hold"),
    ));
    let Handled::Started(task) = harness.send(update).await else {
        panic!("no task started")
    };
    let progress = harness.wait_for("sendMessage", group, 1).await;
    let keyboard = &progress[0].params["reply_markup"]["inline_keyboard"][0][0];
    assert_eq!(
        keyboard["callback_data"],
        json!(format!("cancel:{task}:{ALICE}"))
    );
    let message_id = progress[0].result().unwrap()["message_id"]
        .as_i64()
        .unwrap();
    let shown = harness
        .fake
        .wait_until(
            |_| {
                harness
                    .fake
                    .messages(group)
                    .iter()
                    .any(|m| m.text.contains("📝 Write a.txt"))
            },
            WAIT,
        )
        .await;
    assert!(shown, "{:#?}", harness.fake.messages(group));
    assert!(
        drafts(&harness.fake, group).is_empty(),
        "no drafts in groups"
    );

    let press = numbered(FakeTelegram::callback_query(
        ALICE,
        group,
        message_id,
        &format!("cancel:{task}:{ALICE}"),
    ));
    assert!(matches!(harness.send(press).await, Handled::Control(_)));
    harness.idle().await;
    harness.wait_for("sendMessage", group, 2).await;
    let messages = harness.fake.messages(group);
    let progress = messages
        .iter()
        .find(|m| m.message_id == message_id)
        .unwrap();
    assert!(
        progress.text.contains("⏹ Cancelled after"),
        "{}",
        progress.text
    );
    assert_eq!(progress.reply_markup, None, "the button is gone");
    assert_eq!(messages.last().unwrap().text, "The task was cancelled.");
    let answered = harness
        .fake
        .wait_until(
            |calls| calls.iter().any(|c| c.method == "answerCallbackQuery"),
            WAIT,
        )
        .await;
    assert!(answered);
}

#[tokio::test]
async fn refused_drafts_fall_back_to_a_progress_message() {
    let harness = Harness::start().await;
    harness.fake.refuse_drafts(true);
    harness.runner.set_answer("end", "Done here.");
    assert!(matches!(
        harness
            .send(message("Step one\nwait hold\nanswer end"))
            .await,
        Handled::Started(_)
    ));
    let progress = harness.wait_for("sendMessage", ALICE, 1).await;
    assert!(progress[0].params["reply_markup"]["inline_keyboard"].is_array());
    harness.runner.gate("hold").open();
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, 2).await;
    let messages = harness.fake.messages(ALICE);
    assert!(messages[0].text.starts_with("Step one"), "{messages:#?}");
    assert!(messages[0].text.contains("✅ Done after"), "{messages:#?}");
    assert_eq!(messages[1].text, "Done here.");
    // The chat's next task does not try drafts again.
    let attempts = |fake: &FakeTelegram| {
        fake.calls_to("sendMessageDraft")
            .iter()
            .filter(|c| c.params["chat_id"] == json!(ALICE))
            .count()
    };
    let tried = attempts(&harness.fake);
    assert_eq!(tried, 1, "refused once");
    assert!(matches!(
        harness.send(message("answer end")).await,
        Handled::Started(_)
    ));
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, 3).await;
    assert_eq!(attempts(&harness.fake), tried);
}

#[tokio::test]
async fn verbose_off_shows_no_steps_full_shows_output_and_both_are_remembered() {
    let harness = Harness::start().await;
    assert!(matches!(
        harness.send(message("/verbose off")).await,
        Handled::Control("/verbose")
    ));
    harness.wait_for("sendMessage", ALICE, 1).await;
    assert!(harness.texts(ALICE)[0].contains("only my words"));

    // A restarted bot remembers the level.
    let bot = harness.restart_bot();
    assert!(matches!(
        bot.handle_update(message("Quietly\nwrite q.txt x\nwait quiet"))
            .await,
        Handled::Started(_)
    ));
    wait_for_draft_with(&harness.fake, ALICE, "Quietly").await;
    harness.runner.gate("quiet").open();
    bot.launcher().shutdown(WAIT).await;
    harness.wait_for("sendMessage", ALICE, 2).await;
    assert!(
        drafts(&harness.fake, ALICE)
            .iter()
            .all(|d| !d.str_param("text").unwrap().contains("Write")),
        "no steps at off: {:#?}",
        drafts(&harness.fake, ALICE)
    );

    harness.send(message("/verbose full")).await;
    harness.wait_for("sendMessage", ALICE, 3).await;
    let before = drafts(&harness.fake, ALICE).len();
    harness.send(message("write f.txt x\nwait loud")).await;
    let shown = harness
        .fake
        .wait_until(
            |calls| {
                sent(calls, "sendMessageDraft", ALICE)[before..]
                    .iter()
                    .any(|c| {
                        let text = c.str_param("text").unwrap_or_default();
                        text.contains("📝 Write f.txt\n<blockquote expandable>")
                    })
            },
            WAIT,
        )
        .await;
    assert!(shown, "{:#?}", drafts(&harness.fake, ALICE));
    harness.runner.gate("loud").open();
    harness.idle().await;

    harness.send(message("/verbose loud")).await;
    harness.wait_for("sendMessage", ALICE, 5).await;
    let last = harness.texts(ALICE).pop().unwrap();
    assert!(
        last.starts_with("I don't know the level \"loud\""),
        "{last}"
    );
}

/// A bot whose tasks the real agent runs, with the built-in plugins, against `bedrock`.
fn agent_bot(telegram: &FakeTelegram, root: &std::path::Path, bedrock: &FakeBedrock) -> Arc<Bot> {
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        bedrock_model(
            bedrock,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            true,
        ),
        history,
        AgentSettings::new(root.join("state")),
    )
    .unwrap();
    let runner: Arc<dyn JobRunner> = Arc::new(agent);
    let users = Arc::new(Users::new(root.join("workspaces"), [ALICE.to_string()]));
    let launcher = Arc::new(Launcher::new(runner, TaskRegistry::new()));
    let settings = BotSettings {
        send_interval: Duration::from_millis(5),
        ..BotSettings::default()
    };
    let api = BotApi::new(&telegram.base_url(), TOKEN).unwrap();
    let store = Store::open(&root.join("state/telegram")).unwrap();
    Arc::new(Bot::new(api, store, users, launcher, settings))
}

#[tokio::test]
async fn stop_on_the_draft_kills_the_running_command_and_the_next_prompt_continues() {
    let marker = unique_name("stop");
    let bedrock = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use(
            "long1",
            "Bash",
            json!({"command": format!("exec -a {marker} sleep 300")}),
        )),
        Step::Reply(Turn::text("Picked up where we stopped.")),
    ])
    .await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let root = tempfile::tempdir().unwrap();
    let bot = agent_bot(&telegram, root.path(), &bedrock);
    // Through long polling: the Stop update reaches the bot only if it asked for it.
    let poller = Poller::start(bot.clone());
    telegram.push_update(FakeTelegram::private_message(ALICE, "run the long job"));
    wait_for_draft_with(&telegram, ALICE, &format!("▶️ exec -a {marker}")).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !is_running(&marker) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let draft_id = telegram.draft(ALICE).unwrap().draft_id;
    assert!(
        telegram.press_stop(ALICE).is_some(),
        "the draft has a Stop button"
    );
    let answered = telegram
        .wait_until(|calls| !sent(calls, "sendMessage", ALICE).is_empty(), WAIT)
        .await;
    assert!(answered);
    assert_eq!(
        telegram.messages(ALICE)[0].text,
        "The task was cancelled.",
        "a cancelled note, as /cancel gives"
    );
    assert!(all_gone(&marker), "the command survived the Stop");
    let launcher = bot.launcher().clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while launcher.tasks().active_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "/ping stays busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        telegram
            .draft_ends(ALICE)
            .iter()
            .any(|end| end.draft_id == draft_id && matches!(end.how, DraftEndKind::Stopped))
    );

    // The history stayed valid: the next prompt continues it, the interrupted call
    // answered.
    telegram.push_update(FakeTelegram::private_message(ALICE, "go on"));
    let answered = telegram
        .wait_until(|calls| sent(calls, "sendMessage", ALICE).len() >= 2, WAIT)
        .await;
    assert!(answered);
    assert_eq!(
        telegram.messages(ALICE)[1].text,
        "Picked up where we stopped."
    );
    let requests = bedrock.requests();
    let last = requests.last().unwrap().body.to_string();
    assert!(last.contains("\"toolUseId\":\"long1\""), "{last}");
    assert!(last.contains("go on"), "{last}");
    poller.stop().await;
    assert_no_draft_erased(
        &telegram,
        ALICE,
        &["The task was cancelled.", "Picked up where we stopped."],
    );
}

#[tokio::test]
async fn what_the_model_thinks_never_reaches_the_chat() {
    const THOUGHT: &str = "PRIVATE-REASONING-do-not-show";
    let bedrock = FakeBedrock::start(vec![
        Step::Reply(
            Turn::tool_use("g1", "Glob", json!({"pattern": "*.rs"}))
                .with_reasoning(&format!("{THOUGHT} weighing the options")),
        ),
        Step::Reply(Turn::reasoning_then_text(
            &format!("{THOUGHT} again"),
            "No Rust files here.",
        )),
    ])
    .await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let root = tempfile::tempdir().unwrap();
    let bot = agent_bot(&telegram, root.path(), &bedrock);
    assert!(matches!(
        bot.handle_update(message("any rust here?")).await,
        Handled::Started(_)
    ));
    bot.launcher().shutdown(WAIT).await;
    let answered = telegram
        .wait_until(|calls| !sent(calls, "sendMessage", ALICE).is_empty(), WAIT)
        .await;
    assert!(answered);
    assert_eq!(telegram.messages(ALICE)[0].text, "No Rust files here.");
    for call in telegram.calls() {
        assert!(
            !call.params.to_string().contains(THOUGHT),
            "reasoning reached Telegram: {call:#?}"
        );
    }
}

#[tokio::test]
async fn a_throttled_draft_update_is_skipped_and_the_task_goes_on() {
    let harness = Harness::start().await;
    harness.runner.set_answer("end", "Through.");
    harness.fake.fail_next(
        "sendMessageDraft",
        Failure::TooManyRequests { retry_after: 1 },
    );
    assert!(matches!(
        harness.send(message("Busy\nwait hold\nanswer end")).await,
        Handled::Started(_)
    ));
    // The refused first draft is not retried at once; the next refresh shows the work.
    wait_for_draft_with(&harness.fake, ALICE, "Busy").await;
    harness.runner.gate("hold").open();
    harness.idle().await;
    harness.wait_for("sendMessage", ALICE, 1).await;
    assert_eq!(harness.texts(ALICE), ["Through."]);
    let attempts = harness.fake.calls_to("sendMessageDraft");
    assert!(!attempts[0].ok && attempts[1].ok, "{attempts:#?}");
    assert!(
        attempts[1].at.duration_since(attempts[0].at) >= Duration::from_millis(900),
        "the chat waited as Telegram asked: {attempts:#?}"
    );
    assert_no_draft_erased(&harness.fake, ALICE, &["Through."]);
}

#[tokio::test]
async fn usage_shows_the_tokens_bedrock_reported_and_an_estimate() {
    use agent_host_tests::fake_bedrock::Usage as FakeUsage;
    let tokens = |input, output, cache_read, cache_write| FakeUsage {
        input,
        output,
        cache_read,
        cache_write,
    };
    let bedrock = FakeBedrock::start(vec![
        Step::Reply(
            Turn::tool_use("g1", "Glob", json!({"pattern": "*"}))
                .with_usage(tokens(1200, 80, 0, 3000)),
        ),
        Step::Reply(Turn::text("Nothing yet.").with_usage(tokens(40, 20, 3000, 100))),
    ])
    .await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let root = tempfile::tempdir().unwrap();
    let bot = agent_bot(&telegram, root.path(), &bedrock);
    let Handled::Started(task) = bot.handle_update(message("what is here?")).await else {
        panic!("no task")
    };
    let answered = telegram
        .wait_until(|calls| !sent(calls, "sendMessage", ALICE).is_empty(), WAIT)
        .await;
    assert!(answered);
    // The follow-up records the use before it sends the answer.
    assert!(matches!(
        bot.handle_update(message("/usage")).await,
        Handled::Control("/usage")
    ));
    let replied = telegram
        .wait_until(|calls| sent(calls, "sendMessage", ALICE).len() >= 2, WAIT)
        .await;
    assert!(replied);
    let text = telegram.messages(ALICE)[1].text.clone();
    // 1240 input, 100 output, 3000 cache read, 3100 cache write at Sonnet 4.5's prices:
    // 0.00372 + 0.0015 + 0.0009 + 0.011625 = $0.017745.
    assert!(
        text.starts_with(&format!(
            "Last task ({task}): 7,340 tokens in (1,240 input, 3,000 cache read, 3,100 cache \
             write), 100 out — about $0.02.\nAll 1 task: "
        )),
        "{text}"
    );
    assert!(text.contains("estimates"), "{text}");
    bot.launcher().shutdown(WAIT).await;
}

// ---------------------------------------------------------------------------------------
// Files both ways.

/// A private message from Alice carrying a document (`file_id` must be known to the fake).
fn document_message(file_id: &str, file_name: &str, size: u64, caption: Option<&str>) -> Value {
    let mut update = FakeTelegram::private_message(ALICE, "");
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert(
        "document".into(),
        json!({"file_id": file_id, "file_unique_id": file_id, "file_name": file_name, "file_size": size}),
    );
    if let Some(caption) = caption {
        message.insert("caption".into(), json!(caption));
    }
    numbered(update)
}

/// Waits until `chat` has `count` messages from the bot, documents included.
async fn wait_for_messages(fake: &FakeTelegram, chat: i64, count: usize) -> Vec<FakeMessage> {
    let reached = fake
        .wait_until(|_| fake.messages(chat).len() >= count, WAIT)
        .await;
    let messages = fake.messages(chat);
    assert!(reached, "expected {count} messages, got {messages:#?}");
    messages
}

#[tokio::test]
async fn a_document_with_a_caption_is_saved_safely_and_named_in_the_prompt() {
    let bedrock = FakeBedrock::start(vec![
        Step::Reply(Turn::text("It fails at line 3.")),
        Step::Reply(Turn::text("Same again.")),
    ])
    .await;
    let telegram = FakeTelegram::start(TOKEN).await;
    telegram.add_file(
        "log1",
        "documents/file_1.log",
        b"line 1\nline 2\nerror\n".to_vec(),
    );
    let root = tempfile::tempdir().unwrap();
    let bot = agent_bot(&telegram, root.path(), &bedrock);
    let update = document_message("log1", "../../etc/passwd", 20, Some("why does it fail?"));
    assert_eq!(bot.handle_update(update).await, Handled::Receiving);
    wait_for_messages(&telegram, ALICE, 1).await;
    let workspace = root.path().join("workspaces").join(ALICE.to_string());
    let saved = workspace.join(".agent-host/uploads/passwd");
    assert_eq!(std::fs::read(&saved).unwrap(), b"line 1\nline 2\nerror\n");
    let request = bedrock.requests()[0].body.to_string();
    assert!(
        request.contains("saved in the workspace as .agent-host/uploads/passwd")
            && request.contains("why does it fail?"),
        "{request}"
    );
    assert_eq!(telegram.messages(ALICE)[0].text, "It fails at line 3.");

    // The same name again is kept beside the first, never over it.
    let again = document_message("log1", "../../etc/passwd", 20, Some("and now?"));
    assert_eq!(bot.handle_update(again).await, Handled::Receiving);
    wait_for_messages(&telegram, ALICE, 2).await;
    assert!(workspace.join(".agent-host/uploads/passwd-2").exists());
    bot.launcher().shutdown(WAIT).await;
}

#[tokio::test]
async fn a_file_without_a_caption_waits_for_the_next_prompt_and_a_huge_one_is_refused() {
    let harness = Harness::start().await;
    harness
        .fake
        .add_file("cfg", "documents/file_2.toml", b"[a]\nb = 1\n".to_vec());
    let update = document_message("cfg", "settings.toml", 10, None);
    assert_eq!(harness.send(update).await, Handled::Receiving);
    harness.wait_for("sendMessage", ALICE, 1).await;
    assert_eq!(
        harness.texts(ALICE)[0],
        "Got settings.toml (saved as .agent-host/uploads/settings.toml). What should I do with it?"
    );
    // The next prompt gets it: the scripted runner echoes its prompt's lines.
    harness.runner.set_answer("end", "ok");
    assert!(matches!(
        harness.send(message("wait file\nanswer end")).await,
        Handled::Started(_)
    ));
    wait_for_draft_with(&harness.fake, ALICE, "settings.toml").await;
    harness.runner.gate("file").open();
    harness.idle().await;

    let huge = document_message("nope", "dump.tar", 25 * 1024 * 1024, Some("unpack this"));
    assert_eq!(
        harness.send(huge).await,
        Handled::Control("a file over the limit")
    );
    harness.wait_for("sendMessage", ALICE, 3).await;
    let refusal = harness.texts(ALICE).pop().unwrap();
    assert!(
        refusal.contains("25.0 MB") && refusal.contains("up to 20.0 MB"),
        "{refusal}"
    );
    assert!(
        harness
            .fake
            .calls_to("getFile")
            .iter()
            .all(|c| c.params["file_id"] != "nope")
    );
}

#[tokio::test]
async fn get_sends_a_workspace_file_and_refuses_what_is_outside() {
    let harness = Harness::start().await;
    let workspace = harness.users.workspace(&ALICE.to_string()).unwrap();
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(workspace.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", workspace.join("passwd")).unwrap();

    harness.send(message("/get src/main.rs")).await;
    let messages = wait_for_messages(&harness.fake, ALICE, 1).await;
    let document = messages[0].document.as_ref().expect("a document");
    assert_eq!(document.file_name, "main.rs");
    assert_eq!(document.bytes, b"fn main() {}\n");

    for path in ["../../etc/passwd", "/etc/passwd", "passwd", "src"] {
        let before = harness.fake.messages(ALICE).len();
        harness.send(message(&format!("/get {path}"))).await;
        let messages = wait_for_messages(&harness.fake, ALICE, before + 1).await;
        let answer = messages.last().unwrap();
        assert!(answer.document.is_none(), "{path} was sent");
        assert!(!answer.text.contains("root:"), "{}", answer.text);
    }
}

#[tokio::test]
async fn diff_shows_the_stat_and_sends_the_whole_diff() {
    let harness = Harness::start().await;
    let workspace = harness.users.workspace(&ALICE.to_string()).unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&workspace)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(workspace.join("lib.rs"), "fn one() {}\n").unwrap();
    git(&["add", "lib.rs"]);
    git(&["commit", "-qm", "first"]);
    std::fs::write(workspace.join("lib.rs"), "fn one() {}\nfn two() {}\n").unwrap();

    harness.send(message("/diff")).await;
    let messages = wait_for_messages(&harness.fake, ALICE, 2).await;
    assert!(messages[0].text.contains("lib.rs"), "{}", messages[0].text);
    let diff = messages[1]
        .document
        .as_ref()
        .expect("the diff as a document");
    assert_eq!(diff.file_name, "workspace.diff");
    assert!(String::from_utf8_lossy(&diff.bytes).contains("+fn two() {}"));
}

#[tokio::test]
async fn the_answer_offers_the_files_the_task_made() {
    let harness = Harness::start().await;
    harness.runner.set_answer("end", "Wrote it.");
    let Handled::Started(task) = harness
        .send(message("write report.txt all good\nanswer end"))
        .await
    else {
        panic!("no task")
    };
    harness.idle().await;
    let answer = harness.wait_for("sendMessage", ALICE, 1).await;
    let button = &answer[0].params["reply_markup"]["inline_keyboard"][0][0];
    assert_eq!(button["text"], "📎 report.txt");
    assert_eq!(
        button["callback_data"],
        json!(format!("get:{task}_0:{ALICE}"))
    );
    let message_id = answer[0].result().unwrap()["message_id"].as_i64().unwrap();
    let press = numbered(FakeTelegram::callback_query(
        ALICE,
        ALICE,
        message_id,
        button["callback_data"].as_str().unwrap(),
    ));
    assert!(matches!(harness.send(press).await, Handled::Control(_)));
    let messages = wait_for_messages(&harness.fake, ALICE, 2).await;
    let document = messages[1].document.as_ref().expect("the file");
    assert_eq!(document.file_name, "report.txt");
    assert_eq!(document.bytes, b"all good");
}

#[tokio::test]
async fn a_photo_reaches_the_model_as_an_image_made_to_fit_and_kept_by_reference() {
    let bedrock = FakeBedrock::start(vec![Step::Reply(Turn::text("A gradient."))]).await;
    let telegram = FakeTelegram::start(TOKEN).await;
    let picture = agent_host_tests::photo_jpeg(2560, 1920);
    telegram.add_file("ph1", "photos/file_3.jpg", picture.clone());
    let root = tempfile::tempdir().unwrap();
    let bot = agent_bot(&telegram, root.path(), &bedrock);
    let mut update = FakeTelegram::private_message(ALICE, "");
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert("caption".into(), json!("what is this?"));
    message.insert(
        "photo".into(),
        json!([
            {"file_id": "thumb", "file_unique_id": "t", "width": 90, "height": 68, "file_size": 900},
            {"file_id": "ph1", "file_unique_id": "p", "width": 2560, "height": 1920,
             "file_size": picture.len()}
        ]),
    );
    assert_eq!(
        bot.handle_update(numbered(update)).await,
        Handled::Receiving
    );
    wait_for_messages(&telegram, ALICE, 1).await;
    assert_eq!(telegram.messages(ALICE)[0].text, "A gradient.");

    let request = &bedrock.requests()[0];
    let images = request.images();
    assert_eq!(images.len(), 1, "{}", request.body);
    assert_eq!(images[0].format, "jpeg");
    let sent = image::load_from_memory(&images[0].bytes).unwrap();
    assert!(sent.width() <= 1568 && sent.height() <= 1568, "made to fit");
    assert!(request.body.to_string().contains("what is this?"));
    // The original is kept for the agent's tools; the history names the file, never the bytes.
    let workspace = root.path().join("workspaces").join(ALICE.to_string());
    let uploads: Vec<String> = std::fs::read_dir(workspace.join(".agent-host/uploads"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        uploads.len(),
        2,
        "the photo and the copy for the model: {uploads:?}"
    );
    let history = std::fs::read_to_string(
        walk_files(&root.path().join("history"))
            .into_iter()
            .next()
            .expect("a history file"),
    )
    .unwrap();
    assert!(history.contains("for-model.jpg"), "{history}");
    assert!(history.len() < images[0].bytes.len(), "no bytes inline");
    bot.launcher().shutdown(WAIT).await;
}

/// Every file under `dir`.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}
