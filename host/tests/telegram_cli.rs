//! `agent-host telegram` as an operator runs it on a laptop: the real binary long-polls
//! the Telegram fake, asks the scripted Bedrock fake (through the standard endpoint
//! override), answers in the chat, stops cleanly on SIGTERM — and never prints the bot
//! token, even at debug level and when Telegram fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use agent_host_tests::fake_telegram::{Failure, FakeTelegram};

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
