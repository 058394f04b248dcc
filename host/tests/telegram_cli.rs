//! `agent-host telegram` as an operator runs it on a laptop: the real binary long-polls
//! the Telegram fake, asks the scripted Bedrock fake (through the standard endpoint
//! override), answers in the chat, stops cleanly on SIGTERM — and never prints the bot
//! token, even at debug level and when Telegram fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use agent_host_tests::fake_secrets::FakeSecrets;
use agent_host_tests::fake_telegram::{Failure, FakeTelegram};
use agent_host_tests::{free_port, invoke, wait_until_serving};

/// A token shaped like a real one, unique so a leak cannot hide.
const TOKEN: &str = "987654:SECRET-telegram-token-MARKER-7f3a9c";
const USER: i64 = 4242;
const WAIT: Duration = Duration::from_secs(30);

fn agent_host(home: &Path, telegram: &FakeTelegram, bedrock: Option<&FakeBedrock>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-host"));
    command
        .current_dir(home)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env("AGENT_HOST_STATE_DIR", home.join("state"))
        .env("AGENT_HOST_TELEGRAM_BOT_TOKEN", TOKEN)
        .env("AGENT_HOST_TELEGRAM_API_BASE_URL", telegram.base_url())
        .env("AGENT_HOST_TELEGRAM_SEND_INTERVAL_MS", "0")
        .env("AGENT_HOST_TELEGRAM_POLL_TIMEOUT_SECS", "1")
        .env("AGENT_HOST_ALLOWED_USERS", USER.to_string())
        .env("AGENT_HOST_LOG", "error,agent_host=debug")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(bedrock) = bedrock {
        command.env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.endpoint());
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mode_answers_stops_on_sigterm_and_never_logs_the_token() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let bedrock = FakeBedrock::start(vec![Step::Reply(Turn::text("Hello from the model."))]).await;
    // Telegram fails now and then: the errors are logged, the token is not.
    telegram.fail_next(
        "sendMessage",
        Failure::Status(500, "Internal Server Error".into()),
    );
    telegram.fail_next("getUpdates", Failure::Status(502, "Bad Gateway".into()));
    let mut child = agent_host(home.path(), &telegram, Some(&bedrock))
        .arg("telegram")
        .spawn()
        .unwrap();
    telegram.push_update(FakeTelegram::private_message(USER, "say hello"));
    let answered = telegram
        .wait_until(
            |calls| calls.iter().any(|c| c.method == "sendMessage" && c.ok),
            WAIT,
        )
        .await;
    if !answered {
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        panic!(
            "no answer; calls: {:#?}\nstderr:\n{}",
            telegram.calls(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let texts: Vec<String> = telegram
        .messages(USER)
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["Hello from the model."]);
    assert!(!telegram.calls_to("setMyCommands").is_empty());
    // The first sign of life in a private chat: the draft ("Thinking…" and Stop).
    let drafts = telegram.calls_to("sendMessageDraft");
    assert!(
        drafts.iter().any(|c| c.ok && c.params["can_stop"] == true),
        "{drafts:#?}"
    );
    let refused: Vec<String> = telegram
        .calls()
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.method.clone())
        .collect();
    assert_eq!(
        refused,
        ["getUpdates", "sendMessage"],
        "only the injected failures were refused"
    );

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit on SIGTERM: {stderr}");
    assert!(stderr.contains("polling Telegram"), "{stderr}");
    assert!(
        stderr.contains("sendMessage"),
        "the failure is logged: {stderr}"
    );
    let secret = TOKEN.split(':').nth(1).unwrap();
    assert!(
        !stderr.contains(secret),
        "the token leaked into the log:\n{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mode_beside_a_webhook_says_how_to_remove_it() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let bedrock = FakeBedrock::start(vec![]).await;
    telegram.set_webhook_url(Some("https://relay.example/hook"));
    let output = tokio::task::block_in_place(|| {
        agent_host(home.path(), &telegram, Some(&bedrock))
            .arg("telegram")
            .output()
    })
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("deleteWebhook"), "{stderr}");
    assert!(
        !stderr.contains(TOKEN.split(':').nth(1).unwrap()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_commands_registers_the_menu_and_a_wrong_token_is_named_not_shown() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let output = tokio::task::block_in_place(|| {
        agent_host(home.path(), &telegram, None)
            .args(["telegram", "set-commands"])
            .output()
    })
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("/cancel"));
    let menu = &telegram.calls_to("setMyCommands")[0];
    assert!(menu.ok, "{menu:?}");

    let wrong = "111:WRONG-token-MARKER-55";
    let output = tokio::task::block_in_place(|| {
        agent_host(home.path(), &telegram, None)
            .env("AGENT_HOST_TELEGRAM_BOT_TOKEN", wrong)
            .args(["telegram", "set-commands"])
            .output()
    })
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("telegram_bot_token"), "{stderr}");
    assert!(!stderr.contains("WRONG-token"), "{stderr}");
}

/// A webhook secret shaped as the CDK app generates them, unique so a leak cannot hide.
const WEBHOOK_SECRET: &str = "webhook-SECRET-marker_3b8e1f";
const RELAY_URL: &str = "https://abcdefghij.lambda-url.us-east-1.on.aws/";

fn output_of(command: &mut Command) -> (Option<i32>, String, String) {
    let output = tokio::task::block_in_place(|| command.output()).unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn set_webhook_takes_the_secret_from_secrets_manager_and_never_shows_it() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let secrets = FakeSecrets::start().await;
    secrets.put("agent-host/webhook-secret", WEBHOOK_SECRET);
    let (code, stdout, stderr) = output_of(
        agent_host(home.path(), &telegram, None)
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.endpoint_url())
            .args(["telegram", "set-webhook", "--url", RELAY_URL])
            .args(["--secret-id", "agent-host/webhook-secret"]),
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(secrets.reads("agent-host/webhook-secret"), 1);
    let set = &telegram.calls_to("setWebhook")[0];
    assert!(set.ok, "{set:?}");
    assert_eq!(set.str_param("url"), Some(RELAY_URL));
    assert_eq!(telegram.webhook_secret().as_deref(), Some(WEBHOOK_SECRET));
    assert_eq!(
        telegram.last_allowed_updates().unwrap(),
        ["message", "callback_query", "stopped_message_generation"]
    );
    assert!(telegram.calls_to("setMyCommands")[0].ok);
    assert!(
        stdout.contains("webhook set") && stdout.contains(RELAY_URL),
        "{stdout}"
    );
    for secret in [WEBHOOK_SECRET, TOKEN.split(':').nth(1).unwrap()] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{stdout}\n{stderr}"
        );
    }

    // Telegram's view: the webhook, what waits, and the last delivery error.
    telegram.push_update(FakeTelegram::private_message(USER, "waiting"));
    telegram.fail_webhook_delivery("Wrong response from the webhook: 401 Unauthorized", 125);
    let (code, stdout, stderr) =
        output_of(agent_host(home.path(), &telegram, None).args(["telegram", "webhook-info"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("webhook: {RELAY_URL}")),
        "{stdout}"
    );
    assert!(stdout.contains("pending updates: 1"), "{stdout}");
    assert!(stdout.contains("401 Unauthorized (2 min ago)"), "{stdout}");
    assert!(!stdout.contains(WEBHOOK_SECRET), "{stdout}");

    // Back to polling.
    let (code, stdout, stderr) = output_of(agent_host(home.path(), &telegram, None).args([
        "telegram",
        "delete-webhook",
        "--drop-pending-updates",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("webhook deleted"), "{stdout}");
    assert_eq!(telegram.webhook_secret(), None);
    assert_eq!(telegram.pending_updates(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn set_webhook_refuses_a_bad_url_or_secret_before_calling_telegram() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let secrets = FakeSecrets::start().await;
    secrets.put("not-a-token", "has spaces and MARKER-sm-91");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--url", "http://plain.example/", "--secret", "abc"],
            "https://",
        ),
        (
            &["--url", "https://x.example:9000/", "--secret", "abc"],
            "port 9000",
        ),
        (
            &["--url", RELAY_URL, "--secret", "bad secret MARKER-flag-17"],
            "A-Z",
        ),
        (&["--url", RELAY_URL, "--secret-id", "not-a-token"], "A-Z"),
        (
            &["--url", RELAY_URL, "--secret-id", "missing"],
            "cannot read secret missing",
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = output_of(
            agent_host(home.path(), &telegram, None)
                .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.endpoint_url())
                .args(["telegram", "set-webhook"])
                .args(args),
        );
        assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("MARKER-"), "{args:?}: {stderr}");
    }
    // Neither or both ways of giving the secret: clap says so.
    let (code, _, stderr) = output_of(agent_host(home.path(), &telegram, None).args([
        "telegram",
        "set-webhook",
        "--url",
        RELAY_URL,
    ]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--secret-id"), "{stderr}");
    assert!(telegram.calls_to("setWebhook").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn session_id_is_the_one_the_relay_derives() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let (code, stdout, stderr) = output_of(agent_host(home.path(), &telegram, None).args([
        "telegram",
        "session-id",
        "4242",
    ]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        agent_host_updates::route::session_id(987_654, USER)
    );
}

/// A deployment keeps the token in Secrets Manager (`telegram_bot_token_secret`): `serve`
/// reads it at the first Telegram update, never at start (a snapshot taken after start
/// holds no credentials), once, and never prints it.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reads_the_token_from_secrets_manager_at_the_first_update_only() {
    let home = tempfile::tempdir().unwrap();
    let telegram = FakeTelegram::start(TOKEN).await;
    let secrets = FakeSecrets::start().await;
    secrets.put("agent-host/bot-token", TOKEN);
    let port = free_port();
    let log = home.path().join("serve.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = agent_host(home.path(), &telegram, None)
        .env_remove("AGENT_HOST_TELEGRAM_BOT_TOKEN")
        .env(
            "AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET",
            "agent-host/bot-token",
        )
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.endpoint_url())
        .args(["serve", "--port", &port.to_string()])
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    wait_until_serving(port).await;
    assert_eq!(secrets.reads("agent-host/bot-token"), 0, "read at start");

    let mut start = FakeTelegram::private_message(USER, "/start");
    start["update_id"] = 1.into();
    let answer = invoke(port, &start).await;
    assert_eq!(answer["status"], "handled", "{answer}");
    let greeted = telegram
        .wait_until(
            |calls| calls.iter().any(|c| c.method == "sendMessage" && c.ok),
            WAIT,
        )
        .await;
    let mut help = FakeTelegram::private_message(USER, "/help");
    help["update_id"] = 2.into();
    invoke(port, &help).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(greeted, "{:#?}\n{log}", telegram.calls());
    assert_eq!(secrets.reads("agent-host/bot-token"), 1, "read once");
    assert!(
        !log.contains(TOKEN.split(':').nth(1).unwrap()),
        "the token leaked into the log:\n{log}"
    );
}
