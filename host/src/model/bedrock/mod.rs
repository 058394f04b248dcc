//! The Bedrock Converse client.
//!
//! The client comes from the standard AWS configuration chain (`aws-config`): credentials,
//! region, and endpoint overrides (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL`)
//! — which is how tests point it at a local fake. The SDK's own retries are off: this
//! module retries whole turns itself (throttling, 5xx, broken streams) with capped
//! exponential backoff and full jitter, because errors inside a stream are never retried by
//! the SDK and a partial turn must never reach the history.
//!
//! - [`request`]: the request in Bedrock's shape, with cache points, converted once.
//! - [`stream`]: the turn assembled from the answer.
//! - [`errors`]: Bedrock's error codes as [`ModelError`] kinds.
//! - [`convert`]: JSON ↔ the SDK's `Document`.

mod convert;
pub mod errors;
mod request;
mod stream;

use std::hash::{BuildHasher as _, RandomState};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::{
    ConverseOutput as SdkOutput, InferenceConfiguration, Message as SdkMessage, SystemContentBlock,
    ToolConfiguration,
};
use tokio_util::sync::CancellationToken;

use self::errors::{from_code, missing_configuration};
use self::request::{Conversions, system_blocks};
use self::stream::{Assembler, from_sdk_message, usage_of};
use crate::model::{ModelError, ModelTurn, Request, StreamEvent};
use crate::shared::error_chain;

/// `builder` (of `Converse` or `ConverseStream`: the SDK gives their builders no common
/// trait) with the model, the prepared request and the inference settings.
macro_rules! with_request {
    ($builder:expr, $model:expr, $request:expr) => {
        $builder
            .model_id(&$model.settings.model_id)
            .set_system(Some($request.system.clone()))
            .set_messages(Some($request.messages.clone()))
            .set_tool_config($request.tools.clone())
            .inference_config($model.inference())
    };
}

/// One request in Bedrock's shape.
struct Prepared {
    system: Vec<SystemContentBlock>,
    tools: Option<ToolConfiguration>,
    messages: Vec<SdkMessage>,
}

/// The Bedrock model used when none is configured (a cross-region inference profile).
pub const DEFAULT_MODEL_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// How the client talks to Bedrock.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// Model or inference profile id.
    pub model_id: String,
    /// Output token limit per turn.
    pub max_tokens: i32,
    /// Longest wait for the response to start, and between two stream events.
    pub request_timeout: Duration,
    /// Tries per turn (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubles per retry (full jitter), capped at [`MAX_BACKOFF`].
    pub retry_base: Duration,
    /// Use `ConverseStream` (progress as it is generated); else `Converse`.
    pub streaming: bool,
}

impl ModelSettings {
    /// Defaults for `model_id`.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            model_id: model_id.into(),
            max_tokens: 8192,
            request_timeout: Duration::from_secs(120),
            max_attempts: 5,
            retry_base: Duration::from_millis(800),
            streaming: true,
        }
    }
}

/// The longest pause between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The Bedrock client.
pub struct BedrockModel {
    client: Client,
    settings: ModelSettings,
    conversions: Conversions,
    /// Where the client's credentials come from (resolved at the first request).
    credentials: Option<SharedCredentialsProvider>,
}

impl BedrockModel {
    /// A client from the standard AWS configuration chain.
    pub async fn from_env(settings: ModelSettings) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(&config, settings)
    }

    /// A client from an explicit AWS configuration.
    pub fn new(config: &SdkConfig, settings: ModelSettings) -> Self {
        let credentials = config.credentials_provider();
        let config = aws_sdk_bedrockruntime::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: Client::from_conf(config),
            settings,
            conversions: Conversions::default(),
            credentials,
        }
    }

    /// Resolves the region and the credentials now, to fail at once with what is missing
    /// and how to provide it (`agent-host run`). `serve` never calls it: nothing is
    /// resolved before the first task, whose request fails with the same line.
    pub async fn check_configuration(&self) -> Result<(), ModelError> {
        if self.client.config().region().is_none() {
            return Err(ModelError::NotConfigured(errors::NO_REGION.to_string()));
        }
        let Some(provider) = &self.credentials else {
            return Err(ModelError::NotConfigured(
                errors::NO_CREDENTIALS.to_string(),
            ));
        };
        provider
            .provide_credentials()
            .await
            .map_err(|error| errors::credentials_missing(&error))?;
        Ok(())
    }

    /// The settings.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// One model turn, retried on transient failures. `on_event` hears of text and tool
    /// calls as they stream (a retried turn streams again, with new tool call ids).
    pub async fn turn(
        &self,
        request: &Request<'_>,
        on_event: &(dyn Fn(StreamEvent<'_>) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, ModelError> {
        let prepared = Prepared {
            system: system_blocks(request.system),
            tools: self.conversions.tools(request.tools)?,
            messages: self.conversions.messages(request.messages).await,
        };
        let mut stream = self.settings.streaming;
        let mut requests = 0;
        let mut attempt = 0;
        let mut first_error: Option<String> = None;
        loop {
            requests += 1;
            let result = if stream {
                self.stream_once(&prepared, on_event, cancel).await
            } else {
                self.converse_once(&prepared, cancel).await
            };
            let failure = match result {
                Ok(mut turn) => {
                    turn.usage.requests = requests;
                    return Ok(turn);
                }
                Err(Failure { error, mid_stream }) => {
                    // A stream that broke after it started: try the plain Converse call.
                    if mid_stream {
                        stream = false;
                    }
                    error
                }
            };
            attempt += 1;
            if !failure.is_transient() || attempt >= self.settings.max_attempts {
                let summary = |last: String| match first_error.filter(|first| *first != last) {
                    Some(first) => format!(
                        "Bedrock failed {attempt} times in a row; the first error: {first}; \
                         the last: {last}"
                    ),
                    None => {
                        format!("Bedrock failed {attempt} times in a row; the last error: {last}")
                    }
                };
                return Err(match failure {
                    ModelError::Transient(last) if attempt > 1 => {
                        ModelError::Transient(summary(last))
                    }
                    ModelError::Throttled(last) if attempt > 1 => {
                        ModelError::Throttled(summary(last))
                    }
                    other => other,
                });
            }
            first_error.get_or_insert_with(|| failure.to_string());
            let pause = backoff(self.settings.retry_base, attempt);
            tracing::warn!(
                attempt,
                pause_ms = pause.as_millis() as u64,
                "model request failed, retrying: {failure}"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = cancel.cancelled() => return Err(ModelError::Cancelled),
            }
        }
    }

    async fn converse_once(
        &self,
        request: &Prepared,
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, Failure> {
        let send = with_request!(self.client.converse(), self, request).send();
        let output = self
            .bounded(send, cancel)
            .await?
            .map_err(|e| self.sdk_error(e))?;
        let message = match output.output {
            Some(SdkOutput::Message(message)) => from_sdk_message(&message),
            _ => {
                return Err(Failure::early(ModelError::Transient(
                    "Bedrock returned no message".into(),
                )));
            }
        };
        Ok(ModelTurn {
            message,
            stop_reason: output.stop_reason.as_str().to_string(),
            usage: usage_of(output.usage.as_ref()),
        })
    }

    async fn stream_once(
        &self,
        request: &Prepared,
        on_event: &(dyn Fn(StreamEvent<'_>) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, Failure> {
        let send = with_request!(self.client.converse_stream(), self, request).send();
        let mut output = self
            .bounded(send, cancel)
            .await?
            .map_err(|e| self.sdk_error(e))?;
        let mut turn = Assembler::default();
        loop {
            let event = self
                .bounded(output.stream.recv(), cancel)
                .await
                .map_err(Failure::mid)?;
            match event {
                Ok(Some(event)) => turn.push(event, on_event),
                Ok(None) => break,
                Err(error) => {
                    let code = error.code().map(str::to_string);
                    let message = error
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error.to_string());
                    let error = match code {
                        Some(code) => {
                            from_code(Some(&code), Some(&message), &self.settings.model_id)
                        }
                        None => ModelError::Transient(format!(
                            "the model's response stream was malformed: {}",
                            error_chain(&error)
                        )),
                    };
                    return Err(Failure::mid(error));
                }
            }
        }
        turn.finish().map_err(Failure::mid)
    }

    fn inference(&self) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(self.settings.max_tokens)
            .build()
    }

    /// Awaits `future` unless the task is cancelled or the model stays silent too long.
    async fn bounded<T>(
        &self,
        future: impl Future<Output = T>,
        cancel: &CancellationToken,
    ) -> Result<T, Failure> {
        let timeout = self.settings.request_timeout;
        tokio::select! {
            result = tokio::time::timeout(timeout, future) => result.map_err(|_| {
                Failure::early(ModelError::Transient(format!("Bedrock did not answer within {timeout:?}")))
            }),
            () = cancel.cancelled() => Err(Failure::early(ModelError::Cancelled)),
        }
    }

    fn sdk_error<E, R>(&self, error: SdkError<E, R>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let model = &self.settings.model_id;
        if let Some(missing) = missing_configuration(&error) {
            return Failure::early(missing);
        }
        Failure::early(match &error {
            SdkError::ServiceError(service) if service.err().code().is_some() => {
                let inner = service.err();
                from_code(inner.code(), inner.message(), model)
            }
            SdkError::ServiceError(_) => ModelError::Transient(format!(
                "Bedrock sent a response that could not be read: {}",
                error_chain(&error)
            )),
            SdkError::ConstructionFailure(_) => ModelError::InvalidRequest(format!(
                "the Bedrock request could not be built: {}",
                error_chain(&error)
            )),
            _ => ModelError::Transient(format!(
                "the request to Bedrock failed: {}",
                error_chain(&error)
            )),
        })
    }
}

/// A failed try, and whether the stream had started (then the retry uses `Converse`).
struct Failure {
    error: ModelError,
    mid_stream: bool,
}

impl Failure {
    fn early(error: ModelError) -> Self {
        Self {
            error,
            mid_stream: false,
        }
    }

    fn mid(error: impl Into<FailureError>) -> Self {
        Self {
            error: error.into().0,
            mid_stream: true,
        }
    }
}

/// Adapter so [`Failure::mid`] takes both a [`ModelError`] and a [`Failure`].
struct FailureError(ModelError);

impl From<ModelError> for FailureError {
    fn from(error: ModelError) -> Self {
        Self(error)
    }
}

impl From<Failure> for FailureError {
    fn from(failure: Failure) -> Self {
        Self(failure.error)
    }
}

/// Capped exponential backoff with full jitter.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
    let random = RandomState::new().hash_one(attempt);
    ceiling.mul_f64((random % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        for attempt in 0..30 {
            let pause = backoff(base, attempt);
            assert!(pause <= MAX_BACKOFF && pause <= base * (1 << attempt.min(16)));
        }
    }
}
