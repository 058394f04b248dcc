//! Driving the webhook relay as Lambda drives it: Function URL events built from the
//! fixture `tests/fixtures/function-url-event.json`, AWS clients pointed at the local fakes.

use std::time::Duration;

use agent_host_relay::Clients;
use aws_sdk_bedrockagentcore::config::retry::RetryConfig;

use crate::fake_agentcore::FakeAgentCore;
use crate::fake_secrets::FakeSecrets;

/// A Function URL event (payload format 2.0) of Telegram posting `body`, with the webhook
/// secret header when `secret` is given, as Lambda's runtime API delivers it. With
/// `base64`, the body arrives base64-encoded, as Function URLs send bodies they do not take
/// for text.
pub fn function_url_event_json(
    body: &[u8],
    secret: Option<&str>,
    base64: bool,
) -> serde_json::Value {
    use base64::Engine as _;
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/function-url-event.json"))
            .expect("the fixture is JSON");
    event["headers"]["content-length"] = body.len().to_string().into();
    if let Some(secret) = secret {
        event["headers"]["x-telegram-bot-api-secret-token"] = secret.into();
    }
    if base64 {
        event["body"] = base64::engine::general_purpose::STANDARD
            .encode(body)
            .into();
        event["isBase64Encoded"] = true.into();
    } else {
        event["body"] = String::from_utf8_lossy(body).into_owned().into();
    }
    event
}

/// [`function_url_event_json`] as `lambda_http` hands it to the handler.
pub fn function_url_event(body: &[u8], secret: Option<&str>, base64: bool) -> lambda_http::Request {
    let event = function_url_event_json(body, secret, base64);
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the event")
}

/// The relay's AWS clients, pointed at the fakes, with test credentials and short retry
/// back-offs (the SDK's own retries still happen).
pub fn relay_clients(agentcore: &FakeAgentCore, secrets: &FakeSecrets) -> Clients {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_sdk_bedrockruntime::config::SharedCredentialsProvider::new(
                aws_sdk_bedrockruntime::config::Credentials::new(
                    "AKIDRELAYTEST",
                    "relay-test-secret-key",
                    None,
                    None,
                    "test",
                ),
            ),
        )
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(5)))
        .build();
    Clients {
        agentcore: aws_sdk_bedrockagentcore::Client::from_conf(
            aws_sdk_bedrockagentcore::config::Builder::from(&sdk)
                .endpoint_url(agentcore.endpoint_url())
                .build(),
        ),
        secrets: aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .endpoint_url(secrets.endpoint_url())
                .build(),
        ),
    }
}
