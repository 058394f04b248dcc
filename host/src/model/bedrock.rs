//! The Bedrock Converse client.
//!
//! The client comes from the standard AWS configuration chain (`aws-config`): credentials,
//! region, and endpoint overrides (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL`)
//! — which is how tests point it at a local fake. The SDK's own retries are off: this
//! module retries whole turns itself (throttling, 5xx, broken streams) with capped
//! exponential backoff and full jitter, because errors inside a stream are never retried by
//! the SDK and a partial turn must never reach the history.
//!
//! Requests carry three cache points — after the system prompt, after the tool specs, at
//! the end of the conversation — and everything before them is built once and reused, so
//! the prefix is byte-identical from turn to turn and cached reads hit.

use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, RandomState};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ContentBlockDelta, ContentBlockStart,
    ConversationRole, ConverseOutput as SdkOutput, ConverseStreamOutput as Event,
    InferenceConfiguration, SystemContentBlock, TokenUsage, Tool, ToolConfiguration,
    ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolResultStatus, ToolSpecification,
    ToolUseBlock,
};
use tokio_util::sync::CancellationToken;

use super::convert::{to_document, to_json};
use super::error::ModelError;
use super::types::{Block, Message, Role, ToolDefinition};
use super::{ModelTurn, Usage};

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

/// The tools as Bedrock sees them, converted once (see [`super::convert`]).
#[derive(Debug, Clone)]
pub struct ToolsConfig {
    config: Option<ToolConfiguration>,
}

impl ToolsConfig {
    /// The tools followed by a cache point.
    pub fn new(specs: &[ToolDefinition]) -> Result<Self, ModelError> {
        if specs.is_empty() {
            return Ok(Self { config: None });
        }
        let mut tools = Vec::with_capacity(specs.len() + 1);
        for spec in specs {
            let spec = ToolSpecification::builder()
                .name(&spec.name)
                .description(&spec.description)
                .input_schema(ToolInputSchema::Json(to_document(&spec.input_schema)))
                .build()
                .map_err(|e| ModelError::Fatal(e.to_string()))?;
            tools.push(Tool::ToolSpec(spec));
        }
        tools.push(Tool::CachePoint(cache_point()));
        let config = ToolConfiguration::builder()
            .set_tools(Some(tools))
            .build()
            .map_err(|e| ModelError::Fatal(e.to_string()))?;
        Ok(Self {
            config: Some(config),
        })
    }
}

/// The system prompt as Bedrock sees it: the text, then a cache point.
pub fn system_blocks(prompt: &str) -> Vec<SystemContentBlock> {
    vec![
        SystemContentBlock::Text(prompt.to_string()),
        SystemContentBlock::CachePoint(cache_point()),
    ]
}

fn cache_point() -> CachePointBlock {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .expect("a cache point has only its type")
}

/// `message` in the SDK's shape. Convert each history message once and keep the result:
/// tool inputs become `Document`s whose key order is fixed only within one conversion.
pub fn to_sdk_message(message: &Message) -> aws_sdk_bedrockruntime::types::Message {
    let content = message
        .content
        .iter()
        .map(|block| match block {
            Block::Text { text } => ContentBlock::Text(non_empty(text)),
            Block::ToolUse { id, name, input } => ContentBlock::ToolUse(
                ToolUseBlock::builder()
                    .tool_use_id(id)
                    .name(name)
                    .input(to_document(input))
                    .build()
                    .expect("tool use has id, name and input"),
            ),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => ContentBlock::ToolResult(
                ToolResultBlock::builder()
                    .tool_use_id(tool_use_id)
                    .content(ToolResultContentBlock::Text(non_empty(content)))
                    .status(if *is_error {
                        ToolResultStatus::Error
                    } else {
                        ToolResultStatus::Success
                    })
                    .build()
                    .expect("tool result has id and content"),
            ),
        })
        .collect();
    let role = match message.role {
        Role::User => ConversationRole::User,
        Role::Assistant => ConversationRole::Assistant,
    };
    aws_sdk_bedrockruntime::types::Message::builder()
        .role(role)
        .set_content(Some(content))
        .build()
        .expect("message has role and content")
}

/// Bedrock rejects empty text blocks.
fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "(no output)".to_string()
    } else {
        text.to_string()
    }
}

/// One request: the stable prefix (system, tools) and the conversation so far.
pub struct Request<'a> {
    /// From [`system_blocks`].
    pub system: &'a [SystemContentBlock],
    /// From [`ToolsConfig::new`].
    pub tools: &'a ToolsConfig,
    /// The conversation, converted with [`to_sdk_message`]; a cache point is added to the
    /// last message for this request only.
    pub messages: &'a [aws_sdk_bedrockruntime::types::Message],
}

/// The Bedrock client.
pub struct BedrockModel {
    client: Client,
    settings: ModelSettings,
}

impl BedrockModel {
    /// A client from the standard AWS configuration chain.
    pub async fn from_env(settings: ModelSettings) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(&config, settings)
    }

    /// A client from an explicit AWS configuration.
    pub fn new(config: &SdkConfig, settings: ModelSettings) -> Self {
        let config = aws_sdk_bedrockruntime::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: Client::from_conf(config),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// One model turn, retried on transient failures. `on_text` sees text as it streams.
    pub async fn turn(
        &self,
        request: &Request<'_>,
        on_text: &(dyn Fn(&str) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, ModelError> {
        let mut messages = request.messages.to_vec();
        if let Some(last) = messages.last_mut() {
            last.content.push(ContentBlock::CachePoint(cache_point()));
        }
        let mut stream = self.settings.streaming;
        let mut requests = 0;
        let mut attempt = 0;
        let mut first_error: Option<String> = None;
        loop {
            requests += 1;
            let result = if stream {
                self.stream_once(request, &messages, on_text, cancel).await
            } else {
                self.converse_once(request, &messages, cancel).await
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
                return Err(match failure {
                    ModelError::Transient(last) if attempt > 1 => {
                        ModelError::Transient(match first_error.filter(|first| *first != last) {
                            Some(first) => format!(
                                "Bedrock failed {attempt} times in a row; the first error: \
                                 {first}; the last: {last}"
                            ),
                            None => format!(
                                "Bedrock failed {attempt} times in a row; the last error: {last}"
                            ),
                        })
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
        request: &Request<'_>,
        messages: &[aws_sdk_bedrockruntime::types::Message],
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, Failure> {
        let send = self
            .client
            .converse()
            .model_id(&self.settings.model_id)
            .set_system(Some(request.system.to_vec()))
            .set_messages(Some(messages.to_vec()))
            .set_tool_config(request.tools.config.clone())
            .inference_config(self.inference())
            .send();
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
        request: &Request<'_>,
        messages: &[aws_sdk_bedrockruntime::types::Message],
        on_text: &(dyn Fn(&str) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ModelTurn, Failure> {
        let send = self
            .client
            .converse_stream()
            .model_id(&self.settings.model_id)
            .set_system(Some(request.system.to_vec()))
            .set_messages(Some(messages.to_vec()))
            .set_tool_config(request.tools.config.clone())
            .inference_config(self.inference())
            .send();
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
                Ok(Some(event)) => turn.push(event, on_text),
                Ok(None) => break,
                Err(error) => {
                    let code = error.code().map(str::to_string);
                    let message = error
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| error.to_string());
                    let error = match code {
                        Some(code) => ModelError::from_code(
                            Some(&code),
                            Some(&message),
                            &self.settings.model_id,
                        ),
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
        R: std::fmt::Debug,
    {
        let model = &self.settings.model_id;
        Failure::early(match &error {
            SdkError::ServiceError(service) if service.err().code().is_some() => {
                let inner = service.err();
                ModelError::from_code(inner.code(), inner.message(), model)
            }
            SdkError::ServiceError(_) => ModelError::Transient(format!(
                "Bedrock sent a response that could not be read: {}",
                error_chain(&error)
            )),
            SdkError::ConstructionFailure(_) => ModelError::Fatal(format!(
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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Capped exponential backoff with full jitter.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
    let random = RandomState::new().hash_one(attempt);
    ceiling.mul_f64((random % 1000) as f64 / 1000.0)
}

fn usage_of(usage: Option<&TokenUsage>) -> Usage {
    let tokens = |n: i32| u64::try_from(n).unwrap_or(0);
    usage.map_or_else(Usage::default, |u| Usage {
        input_tokens: tokens(u.input_tokens()),
        output_tokens: tokens(u.output_tokens()),
        cache_read_tokens: u.cache_read_input_tokens().map_or(0, tokens),
        cache_write_tokens: u.cache_write_input_tokens().map_or(0, tokens),
        requests: 0,
    })
}

/// Our message from the SDK's (text and tool uses; other block kinds are not used).
fn from_sdk_message(message: &aws_sdk_bedrockruntime::types::Message) -> Message {
    let content = message
        .content()
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(Block::Text { text: text.clone() }),
            ContentBlock::ToolUse(tool) => Some(Block::ToolUse {
                id: tool.tool_use_id().to_string(),
                name: tool.name().to_string(),
                input: to_json(tool.input()),
            }),
            _ => None,
        })
        .collect();
    Message {
        role: Role::Assistant,
        content,
    }
}

/// Builds a turn from stream events. Text blocks start with their first delta; tool-use
/// blocks with a start event; a tool's input arrives as JSON fragments.
#[derive(Default)]
struct Assembler {
    blocks: BTreeMap<i32, Partial>,
    stop_reason: Option<String>,
    usage: Usage,
}

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: String,
    },
}

impl Assembler {
    fn push(&mut self, event: Event, on_text: &(dyn Fn(&str) + Send + Sync)) {
        match event {
            Event::ContentBlockStart(start) => {
                if let Some(ContentBlockStart::ToolUse(tool)) = start.start {
                    self.blocks.insert(
                        start.content_block_index,
                        Partial::Tool {
                            id: tool.tool_use_id,
                            name: tool.name,
                            input: String::new(),
                        },
                    );
                }
            }
            Event::ContentBlockDelta(delta) => match delta.delta {
                Some(ContentBlockDelta::Text(text)) => {
                    on_text(&text);
                    match self
                        .blocks
                        .entry(delta.content_block_index)
                        .or_insert_with(|| Partial::Text(String::new()))
                    {
                        Partial::Text(buffer) => buffer.push_str(&text),
                        Partial::Tool { .. } => {}
                    }
                }
                Some(ContentBlockDelta::ToolUse(fragment)) => {
                    if let Some(Partial::Tool { input, .. }) =
                        self.blocks.get_mut(&delta.content_block_index)
                    {
                        input.push_str(&fragment.input);
                    }
                }
                _ => {}
            },
            Event::MessageStop(stop) => {
                self.stop_reason = Some(stop.stop_reason.as_str().to_string())
            }
            Event::Metadata(metadata) => self.usage = usage_of(metadata.usage.as_ref()),
            _ => {}
        }
    }

    fn finish(self) -> Result<ModelTurn, ModelError> {
        let stop_reason = self.stop_reason.ok_or_else(|| {
            ModelError::Transient("the model's response stream ended before messageStop".into())
        })?;
        let mut content = Vec::with_capacity(self.blocks.len());
        for partial in self.blocks.into_values() {
            content.push(match partial {
                Partial::Text(text) => Block::Text { text },
                Partial::Tool { id, name, input } => {
                    // A tool call streamed without input deltas means `{}`.
                    let input = if input.trim().is_empty() {
                        serde_json::json!({})
                    } else {
                        serde_json::from_str(&input).map_err(|e| {
                            ModelError::Transient(format!(
                                "the model sent invalid JSON for tool {name}: {e}"
                            ))
                        })?
                    };
                    Block::ToolUse { id, name, input }
                }
            });
        }
        Ok(ModelTurn {
            message: Message {
                role: Role::Assistant,
                content,
            },
            stop_reason,
            usage: self.usage,
        })
    }
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
