//! Handing an update to the owner's AgentCore session (`InvokeAgentRuntime`).
//!
//! The host acknowledges an update at once and works in the background, so an invocation
//! takes milliseconds once the session runs; a session that does not run yet is restored
//! first. The whole call, the SDK's own retries included, is bounded by the configured
//! timeout.

use std::time::Duration;

use aws_sdk_bedrockagentcore::Client;
use aws_sdk_bedrockagentcore::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockagentcore::primitives::Blob;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// The host took the update (its status code).
    Taken(i32),
    /// The host answered with an error status, which AgentCore passes on as `424
    /// RuntimeClientError`.
    RefusedByHost(String),
    /// AgentCore failed or refused (throttled, access denied, no such runtime, ...).
    Failed(String),
    /// No answer within the timeout. The update may still arrive.
    TimedOut,
}

/// Invokes one runtime.
pub struct Forwarder {
    client: Client,
    runtime_arn: String,
    qualifier: Option<String>,
    timeout: Duration,
}

impl Forwarder {
    /// Invocations of `runtime_arn` (its endpoint `qualifier`, if any) through `client`,
    /// each given at most `timeout`.
    pub fn new(
        client: Client,
        runtime_arn: String,
        qualifier: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            runtime_arn,
            qualifier,
            timeout,
        }
    }

    /// Sends `update` (the raw JSON Telegram posted) to `session_id`.
    pub async fn forward(&self, session_id: &str, update: Vec<u8>) -> Forwarded {
        let call = self
            .client
            .invoke_agent_runtime()
            .agent_runtime_arn(&self.runtime_arn)
            .set_qualifier(self.qualifier.clone())
            .runtime_session_id(session_id)
            .content_type("application/json")
            .accept("application/json")
            .payload(Blob::new(update))
            .send();
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Forwarded::TimedOut,
            Ok(Ok(output)) => Forwarded::Taken(output.status_code.unwrap_or(200)),
            Ok(Err(SdkError::ServiceError(error))) if error.err().is_runtime_client_error() => {
                Forwarded::RefusedByHost(DisplayErrorContext(error.err()).to_string())
            }
            Ok(Err(error)) => Forwarded::Failed(DisplayErrorContext(error).to_string()),
        }
    }
}
