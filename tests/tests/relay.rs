//! The webhook relay, end to end inside one process: Function URL events through
//! `Relay::handle`, with local fakes of AgentCore's data plane, Secrets Manager and the Bot
//! API behind the real AWS SDK and HTTP clients.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_relay::notice::{SLOW_START, UNAVAILABLE};
use agent_host_relay::{Relay, RelayConfig};
use agent_host_tests::fake_agentcore::{FakeAgentCore, Mode};
use agent_host_tests::fake_secrets::FakeSecrets;
use agent_host_tests::fake_telegram::FakeTelegram;
use agent_host_tests::relay::{function_url_event, relay_clients};
use agent_host_updates::route::session_id;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

const BOT_ID: i64 = 5_550_001;
const TOKEN: &str = "5550001:AAH-relay-TOKEN-marker-7d1e";
const WEBHOOK_SECRET: &str = "webhook_SECRET-marker-91c0";
const RUNTIME_ARN: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent_host-Xy12Ab34Cd";
const OWNER: i64 = 42;
const APPROVER: i64 = 43;
const STRANGER: i64 = 666;

struct Setup {
    telegram: FakeTelegram,
    agentcore: FakeAgentCore,
    secrets: FakeSecrets,
    relay: Relay,
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

/// The fakes and a relay configured as the CDK app configures it; `extra` overrides
/// environment variables.
async fn setup_with(extra: &[(&str, &str)]) -> Setup {
    let telegram = FakeTelegram::start(TOKEN).await;
    let agentcore = FakeAgentCore::start().await;
    let secrets = FakeSecrets::start().await;
    secrets.put("agent-host/webhook-secret", WEBHOOK_SECRET);
    secrets.put("agent-host/bot-token", TOKEN);
    let base_url = telegram.base_url();
    let mut variables = vec![
        ("RELAY_RUNTIME_ARN", RUNTIME_ARN),
        ("RELAY_WEBHOOK_SECRET_ID", "agent-host/webhook-secret"),
        ("RELAY_BOT_TOKEN_SECRET_ID", "agent-host/bot-token"),
        ("RELAY_ALLOWED_USERS", "42, 43"),
        ("RELAY_TELEGRAM_API_BASE_URL", &base_url),
    ];
    variables.extend_from_slice(extra);
    let config = RelayConfig::from_lookup(|name| {
        variables
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    })
    .expect("the relay's configuration is valid");
    let relay = Relay::new(config, relay_clients(&agentcore, &secrets));
    Setup {
        telegram,
        agentcore,
        secrets,
        relay,
    }
}

impl Setup {
    /// Telegram delivers `update` with the right secret; the relay's status.
    async fn deliver(&self, update: &Value) -> StatusCode {
        self.deliver_with(update, Some(WEBHOOK_SECRET)).await
    }

    async fn deliver_with(&self, update: &Value, secret: Option<&str>) -> StatusCode {
        let body = update.to_string();
        let request = function_url_event(body.as_bytes(), secret, false);
        self.relay.handle(request).await.status()
    }

    /// The messages the bot sent to `chat_id` (the notices).
    fn notices(&self, chat_id: i64) -> Vec<String> {
        self.telegram
            .calls_to("sendMessage")
            .into_iter()
            .filter(|call| call.int_param("chat_id") == Some(chat_id))
            .filter_map(|call| call.str_param("text").map(str::to_string))
            .collect()
    }
}

fn message(update_id: i64, user: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": update_id + 100,
        "date": 1_796_104_800, "from": {"id": user, "is_bot": false, "first_name": "U"},
        "chat": {"id": user, "type": "private"}, "text": text}})
}

fn press(update_id: i64, presser: i64, chat_id: i64, data: &str) -> Value {
    json!({"update_id": update_id, "callback_query": {"id": format!("cb{update_id}"),
        "from": {"id": presser, "is_bot": false, "first_name": "A"}, "chat_instance": "1",
        "message": {"message_id": 9, "date": 1_796_104_800,
            "chat": {"id": chat_id, "type": "group"}, "text": "working"},
        "data": data}})
}

#[tokio::test]
async fn a_delivery_without_the_secret_is_401_and_invokes_nothing() {
    let setup = setup().await;
    let update = message(1, OWNER, "fix the build");
    for secret in [
        None,
        Some(""),
        Some("webhook_SECRET-marker-91c1"),
        Some("webhook_SECRET-marker-91c0 "),
        Some(TOKEN),
    ] {
        assert_eq!(
            setup.deliver_with(&update, secret).await,
            StatusCode::UNAUTHORIZED,
            "{secret:?}"
        );
    }
    assert!(setup.agentcore.invocations().is_empty());
    assert!(setup.telegram.calls().is_empty());
    // Not a POST: refused before anything is read.
    let mut get = function_url_event(b"", Some(WEBHOOK_SECRET), false);
    *get.method_mut() = lambda_http::http::Method::GET;
    assert_eq!(
        setup.relay.handle(get).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn a_message_becomes_one_signed_invocation_of_the_senders_session() {
    let setup = setup().await;
    let update = message(7, OWNER, "fix the build");
    assert_eq!(setup.deliver(&update).await, StatusCode::OK);
    let invocations = setup.agentcore.invocations();
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    let invocation = &invocations[0];
    assert_eq!(invocation.runtime_arn, RUNTIME_ARN);
    assert!(
        invocation.raw_path.contains("%3A") && invocation.raw_path.contains("%2F"),
        "the ARN is one percent-encoded path label: {}",
        invocation.raw_path
    );
    assert_eq!(invocation.qualifier, None);
    assert_eq!(
        invocation.session_id.as_deref(),
        Some(session_id(BOT_ID, OWNER).as_str())
    );
    assert_eq!(invocation.content_type.as_deref(), Some("application/json"));
    assert_eq!(invocation.accept.as_deref(), Some("application/json"));
    let authorization = invocation.authorization.as_deref().unwrap_or_default();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDRELAYTEST/")
            && authorization.contains("/us-east-1/bedrock-agentcore/aws4_request"),
        "signed for bedrock-agentcore: {authorization}"
    );
    assert_eq!(invocation.json(), update, "forwarded unchanged");
    assert!(
        setup.telegram.calls().is_empty(),
        "nothing said to the user"
    );

    // A second update (base64-encoded this time) uses the cached secrets.
    let second = message(8, OWNER, "and run the tests");
    let body = second.to_string();
    let request = function_url_event(body.as_bytes(), Some(WEBHOOK_SECRET), true);
    assert_eq!(setup.relay.handle(request).await.status(), StatusCode::OK);
    let invocations = setup.agentcore.invocations();
    assert_eq!(invocations.len(), 2);
    assert_eq!(invocations[1].json(), second);
    assert_eq!(setup.secrets.reads("agent-host/webhook-secret"), 1);
    assert_eq!(setup.secrets.reads("agent-host/bot-token"), 1);
}

#[tokio::test]
async fn the_runtime_endpoint_is_the_configured_qualifier() {
    let setup = setup_with(&[("RELAY_RUNTIME_QUALIFIER", "canary")]).await;
    assert_eq!(
        setup.deliver(&message(1, OWNER, "hi")).await,
        StatusCode::OK
    );
    assert_eq!(
        setup.agentcore.invocations()[0].qualifier.as_deref(),
        Some("canary")
    );
}

#[tokio::test]
async fn strangers_and_kinds_the_bot_ignores_start_nothing() {
    let setup = setup().await;
    let ignored = [
        message(1, STRANGER, "let me in"),
        press(2, STRANGER, -100_200, &format!("cancel:12:{OWNER}")),
        json!({"update_id": 3, "edited_message": {"message_id": 1, "date": 1,
            "from": {"id": OWNER}, "chat": {"id": OWNER, "type": "private"}, "text": "x"}}),
        json!({"update_id": 4, "message": {"message_id": 1, "date": 1,
            "from": {"id": OWNER}, "chat": {"id": OWNER, "type": "private"},
            "sticker": {"file_id": "s"}}}),
        json!({"update_id": 5, "my_chat_member": {"chat": {"id": OWNER}}}),
        json!({"update_id": 6, "message": {"message_id": 1, "date": 1,
            "from": {"id": OWNER, "is_bot": true}, "chat": {"id": OWNER, "type": "private"},
            "text": "a bot"}}),
    ];
    for update in &ignored {
        assert_eq!(setup.deliver(update).await, StatusCode::OK, "{update}");
    }
    assert!(setup.agentcore.invocations().is_empty());
    assert!(setup.telegram.calls().is_empty());
    assert_eq!(
        setup.secrets.reads("agent-host/bot-token"),
        0,
        "a dropped update reads no more than it must"
    );
}

#[tokio::test]
async fn a_press_goes_to_the_session_of_the_buttons_owner() {
    let setup = setup().await;
    // Another allowed user presses the Cancel button of the owner's task in a group.
    let by_approver = press(1, APPROVER, -100_200, &format!("cancel:12:{OWNER}"));
    assert_eq!(setup.deliver(&by_approver).await, StatusCode::OK);
    // A button this bot did not make goes to the presser, whose session answers it.
    let foreign = press(2, APPROVER, -100_200, "vote:yes");
    assert_eq!(setup.deliver(&foreign).await, StatusCode::OK);
    let sessions: Vec<_> = setup
        .agentcore
        .invocations()
        .into_iter()
        .map(|invocation| invocation.session_id.unwrap_or_default())
        .collect();
    assert_eq!(
        sessions,
        [session_id(BOT_ID, OWNER), session_id(BOT_ID, APPROVER)]
    );
}

#[tokio::test]
async fn a_stop_on_a_draft_goes_to_the_private_chats_session() {
    let setup = setup().await;
    let stop = FakeTelegram::stopped_generation(OWNER, 77);
    let stop = json!({"update_id": 9, "stopped_message_generation":
        stop["stopped_message_generation"].clone()});
    assert_eq!(setup.deliver(&stop).await, StatusCode::OK);
    let invocations = setup.agentcore.invocations();
    assert_eq!(invocations.len(), 1);
    assert_eq!(
        invocations[0].session_id.as_deref(),
        Some(session_id(BOT_ID, OWNER).as_str())
    );
    assert_eq!(invocations[0].json(), stop);
}

#[tokio::test]
async fn agentcore_failing_still_answers_200_and_tells_the_user_once() {
    let failures = [
        (Mode::Fail(500, "InternalServerException"), UNAVAILABLE),
        (Mode::Fail(424, "RuntimeClientError"), UNAVAILABLE),
        (Mode::Fail(429, "ThrottlingException"), UNAVAILABLE),
        (Mode::Fail(404, "ResourceNotFoundException"), UNAVAILABLE),
        (Mode::Hang, SLOW_START),
    ];
    for (mode, notice) in failures {
        let setup = setup_with(&[("RELAY_INVOKE_TIMEOUT_SECS", "1")]).await;
        setup.agentcore.set_mode(mode.clone());
        for update_id in 1..=3 {
            let update = message(update_id, OWNER, "are you there?");
            assert_eq!(setup.deliver(&update).await, StatusCode::OK, "{mode:?}");
        }
        assert!(!setup.agentcore.invocations().is_empty(), "{mode:?}");
        assert_eq!(setup.notices(OWNER), [notice], "{mode:?}: told once");

        // A press is always answered, or its spinner turns on.
        let button = press(10, APPROVER, -100_200, &format!("cancel:12:{OWNER}"));
        setup.telegram.push_update(
            json!({"update_id": 1, "message": {"message_id": 9, "date": 1,
                "from": {"id": APPROVER}, "chat": {"id": -100_200, "type": "group"},
                "text": "x"}}),
        );
        assert_eq!(setup.deliver(&button).await, StatusCode::OK);
        let answers = setup.telegram.calls_to("answerCallbackQuery");
        assert_eq!(answers.len(), 1, "{mode:?}");
        assert_eq!(answers[0].str_param("callback_query_id"), Some("cb10"));
        assert_eq!(answers[0].str_param("text"), Some(notice));
    }
}

#[tokio::test]
async fn a_rotated_webhook_secret_is_read_again_and_the_old_one_refused() {
    let mut setup = setup().await;
    setup.relay = Relay::new(
        RelayConfig::from_lookup(|name| {
            Some(
                match name {
                    "RELAY_RUNTIME_ARN" => RUNTIME_ARN,
                    "RELAY_WEBHOOK_SECRET_ID" => "agent-host/webhook-secret",
                    "RELAY_BOT_TOKEN_SECRET_ID" => "agent-host/bot-token",
                    "RELAY_ALLOWED_USERS" => "42",
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap(),
        relay_clients(&setup.agentcore, &setup.secrets),
    )
    .with_secret_refresh_after(Duration::ZERO);
    assert_eq!(setup.deliver(&message(1, OWNER, "a")).await, StatusCode::OK);
    setup
        .secrets
        .put("agent-host/webhook-secret", "rotated_secret-2");
    let update = message(2, OWNER, "b");
    assert_eq!(
        setup.deliver_with(&update, Some("rotated_secret-2")).await,
        StatusCode::OK
    );
    assert_eq!(
        setup.deliver_with(&update, Some(WEBHOOK_SECRET)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(setup.agentcore.invocations().len(), 2);
}

#[tokio::test]
async fn unreadable_secrets_or_no_token_invoke_nothing_and_telegram_delivers_again() {
    let setup = setup().await;
    setup.secrets.set_failing(true);
    assert_eq!(
        setup.deliver(&message(1, OWNER, "hi")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    setup.secrets.set_failing(false);
    // The operator has not put the token yet: the CDK app's placeholder is still there.
    setup
        .secrets
        .put("agent-host/bot-token", "PUT-THE-BOT-TOKEN-HERE");
    assert_eq!(
        setup.deliver(&message(2, OWNER, "hi")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(setup.agentcore.invocations().is_empty());
    // Not an update at all (someone who knows the secret, not Telegram).
    let request = function_url_event(b"not json", Some(WEBHOOK_SECRET), false);
    assert_eq!(
        setup.relay.handle(request).await.status(),
        StatusCode::BAD_REQUEST
    );
}

/// Everything logged, at every level, while `run` runs. The subscriber is the process's
/// global one (a thread's own would miss events whose interest another test thread's
/// no-op subscriber cached), so it also hears the tests running beside this one, which
/// use the same secrets: more to check, nothing missed.
async fn logs_of<F: std::future::Future<Output = ()>>(run: F) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets one");
    run.await;
    String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned()
}

#[tokio::test]
async fn the_token_and_the_webhook_secret_never_reach_the_log() {
    // The Bot API cannot be reached: its errors would name its URL, which holds the token.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let setup = setup_with(&[
        ("RELAY_INVOKE_TIMEOUT_SECS", "5"),
        ("RELAY_TELEGRAM_API_BASE_URL", &unreachable),
    ])
    .await;
    let logs = logs_of(async {
        // A forward, a refusal, then AgentCore failing and the user's notice failing too.
        setup.deliver(&message(1, OWNER, "hi")).await;
        setup
            .deliver_with(&message(2, OWNER, "hi"), Some("guess"))
            .await;
        setup
            .agentcore
            .set_mode(Mode::Fail(500, "InternalServerException"));
        setup.deliver(&message(3, OWNER, "hi")).await;
    })
    .await;
    assert!(logs.contains("forwarded"), "{logs}");
    assert!(logs.contains("cannot tell the user"), "{logs}");
    for secret in [
        TOKEN,
        "AAH-relay-TOKEN-marker-7d1e",
        WEBHOOK_SECRET,
        "relay-test-secret-key",
    ] {
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
    }
}

/// The whole path of a deployed bot: Telegram's delivery through the relay, AgentCore
/// (the fake passes the payload on to the container's `/invocations`, as the platform
/// does), the host's server and dispatcher, and the answer back through the Bot API.
mod through_the_host {
    use std::sync::Arc;

    use agent_host::agent::launch::Launcher;
    use agent_host::agent::tasks::TaskRegistry;
    use agent_host::server::{AppState, ServerSettings};
    use agent_host::session::Users;
    use agent_host::telegram::{Bot, BotApi, BotSettings, Store};
    use agent_host_tests::fake_agentcore::SESSION_HEADER;
    use agent_host_tests::{ScriptRunner, builtin_plugins};

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// A host serving `/invocations` with the Telegram bot (or without, when `bot` is
    /// false: the container then refuses updates); its base URL.
    async fn host(
        telegram: &FakeTelegram,
        root: &std::path::Path,
        runner: Arc<ScriptRunner>,
        bot: bool,
    ) -> String {
        let users = Arc::new(Users::new(root.join("workspaces"), [OWNER.to_string()]));
        let launcher = Arc::new(Launcher::new(runner, TaskRegistry::new()));
        let mut state =
            AppState::with_launcher(users.clone(), launcher.clone(), ServerSettings::default());
        if bot {
            let api = BotApi::new(&telegram.base_url(), TOKEN).unwrap();
            let store = Store::open(&root.join("telegram")).unwrap();
            let settings = BotSettings {
                send_interval: Duration::from_millis(5),
                ..BotSettings::default()
            };
            state = state.with_bot(Arc::new(Bot::new(api, store, users, launcher, settings)));
        }
        agent_host_tests::serve_locally(state).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_message_is_answered_and_stop_reaches_the_running_task() {
        let setup = setup().await;
        let root = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptRunner::new(builtin_plugins().clone()));
        runner.set_answer("hello", "Hello through the relay.");
        let base = host(&setup.telegram, root.path(), runner.clone(), true).await;
        setup.agentcore.set_mode(Mode::Container(base));

        let update = message(1, OWNER, "answer hello");
        assert_eq!(setup.deliver(&update).await, StatusCode::OK);
        let answered = setup
            .telegram
            .wait_for_message(OWNER, |m| m.text.contains("Hello through the relay."), WAIT)
            .await;
        assert!(answered.is_some(), "{:#?}", setup.telegram.calls());

        // A task that waits; the user presses Stop on its draft.
        let update = message(2, OWNER, "wait forever");
        assert_eq!(setup.deliver(&update).await, StatusCode::OK);
        tokio::time::timeout(WAIT, runner.gate("forever").reached())
            .await
            .expect("the task runs");
        let drafted = setup
            .telegram
            .wait_until(|_| setup.telegram.draft(OWNER).is_some(), WAIT)
            .await;
        assert!(drafted, "{:#?}", setup.telegram.calls());
        let draft = setup.telegram.draft(OWNER).expect("a draft with Stop");
        assert!(draft.can_stop);
        let stop = FakeTelegram::stopped_generation(OWNER, draft.draft_id);
        let stop = json!({"update_id": 3, "stopped_message_generation":
            stop["stopped_message_generation"].clone()});
        assert_eq!(setup.deliver(&stop).await, StatusCode::OK);
        // The task ends (cancelled), and its last word is the message after the answer.
        let ended = setup
            .telegram
            .wait_until(|_| setup.telegram.messages(OWNER).len() >= 2, WAIT)
            .await;
        assert!(ended, "{:#?}", setup.telegram.messages(OWNER));

        let sessions: Vec<_> = setup
            .agentcore
            .invocations()
            .into_iter()
            .map(|invocation| invocation.session_id)
            .collect();
        assert_eq!(sessions.len(), 3);
        assert!(
            sessions
                .iter()
                .all(|session| session.as_deref() == Some(session_id(BOT_ID, OWNER).as_str())),
            "{sessions:?} (header {SESSION_HEADER})"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_container_error_arrives_as_424_and_the_user_is_told() {
        let setup = setup().await;
        let root = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptRunner::new(builtin_plugins().clone()));
        // A host without the bot refuses Telegram updates with an error status.
        let base = host(&setup.telegram, root.path(), runner, false).await;
        setup.agentcore.set_mode(Mode::Container(base));
        assert_eq!(
            setup.deliver(&message(1, OWNER, "hi")).await,
            StatusCode::OK
        );
        assert_eq!(setup.notices(OWNER), [UNAVAILABLE]);
    }
}
