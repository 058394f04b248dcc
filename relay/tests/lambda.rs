//! The relay's real binary, run as Lambda runs it: its runtime API is a local fake
//! (`AWS_LAMBDA_RUNTIME_API`), AgentCore and Secrets Manager are local fakes reached through
//! the standard `AWS_ENDPOINT_URL_*` overrides, and its JSON log lines are read back — at
//! every level, none may hold the bot token or the webhook secret.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_host_tests::fake_agentcore::FakeAgentCore;
use agent_host_tests::fake_lambda::FakeLambda;
use agent_host_tests::fake_secrets::FakeSecrets;
use agent_host_tests::relay::function_url_event_json;
use serde_json::json;

const TOKEN: &str = "5550001:AAH-binary-TOKEN-marker-0b7c";
const WEBHOOK_SECRET: &str = "binary_webhook-SECRET-marker-5e2d";
const WAIT: Duration = Duration::from_secs(30);

/// The relay's command; its output goes to `log` (a file: a pipe nobody reads while it
/// runs would fill up at trace level and stall it).
fn relay(
    lambda: &FakeLambda,
    agentcore: &FakeAgentCore,
    secrets: &FakeSecrets,
    log: &std::fs::File,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-host-relay"));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", lambda.runtime_api())
        .env("AWS_LAMBDA_FUNCTION_NAME", "agent-host-relay")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBINARY")
        .env("AWS_SECRET_ACCESS_KEY", "binary-aws-secret-MARKER")
        .env("AWS_SESSION_TOKEN", "binary-session-MARKER")
        .env(
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
            agentcore.endpoint_url(),
        )
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.endpoint_url())
        .env(
            "RELAY_RUNTIME_ARN",
            "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent_host-Xy12",
        )
        .env("RELAY_WEBHOOK_SECRET_ID", "webhook")
        .env("RELAY_BOT_TOKEN_SECRET_ID", "token")
        .env("RELAY_ALLOWED_USERS", "42")
        .env("RELAY_TELEGRAM_API_BASE_URL", "http://127.0.0.1:9")
        .env("RELAY_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap());
    command
}

fn stop(mut child: Child, log: &tempfile::NamedTempFile) -> String {
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(log.path()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_function_url_events_and_keeps_its_secrets_out_of_the_log() {
    let lambda = FakeLambda::start().await;
    let agentcore = FakeAgentCore::start().await;
    let secrets = FakeSecrets::start().await;
    secrets.put("webhook", WEBHOOK_SECRET);
    secrets.put("token", TOKEN);
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = relay(&lambda, &agentcore, &secrets, log.as_file())
        .spawn()
        .unwrap();

    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1,
        "from": {"id": 42, "is_bot": false, "first_name": "U"},
        "chat": {"id": 42, "type": "private"}, "text": "fix the build"}});
    let body = update.to_string();
    let good = lambda.invoke(function_url_event_json(
        body.as_bytes(),
        Some(WEBHOOK_SECRET),
        false,
    ));
    let wrong = lambda.invoke(function_url_event_json(
        body.as_bytes(),
        Some("guess"),
        true,
    ));
    let good = lambda.outcome(&good, WAIT).await;
    let wrong = lambda.outcome(&wrong, WAIT).await;
    let log = stop(child, &log);
    let (Some(good), Some(wrong)) = (good, wrong) else {
        panic!("no answer from the binary; its output:\n{log}");
    };
    assert_eq!(good.kind, "response", "{good:?}");
    assert_eq!(good.body["statusCode"], 200, "{good:?}");
    assert_eq!(wrong.body["statusCode"], 401, "{wrong:?}");
    let invocations = agentcore.invocations();
    assert_eq!(invocations.len(), 1, "{log}");
    assert_eq!(invocations[0].json(), update);

    // One JSON object per line, and the secrets in none of them.
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|line| line.contains("\"forwarded\"")),
        "{log}"
    );
    for line in &lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    for secret in [
        TOKEN,
        "AAH-binary-TOKEN-marker-0b7c",
        WEBHOOK_SECRET,
        "binary-aws-secret-MARKER",
        "binary-session-MARKER",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_setting_stops_the_container_with_its_name() {
    let lambda = FakeLambda::start().await;
    let agentcore = FakeAgentCore::start().await;
    let secrets = FakeSecrets::start().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let status = tokio::task::block_in_place(|| {
        relay(&lambda, &agentcore, &secrets, file.as_file())
            .env_remove("RELAY_RUNTIME_ARN")
            .status()
    })
    .unwrap();
    let log = std::fs::read_to_string(file.path()).unwrap();
    assert!(!status.success(), "{log}");
    assert!(log.contains("RELAY_RUNTIME_ARN is not set"), "{log}");
}
