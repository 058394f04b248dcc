//! The model: Claude through the Bedrock Converse API.
//!
//! - [`types`]: the conversation as the host keeps and stores it.
//! - [`convert`]: JSON ↔ the SDK's `Document`, once, in a stable order.
//! - [`bedrock`]: the client — request building with cache points, `ConverseStream` with a
//!   `Converse` fallback, retries with jittered backoff, timeouts.
//! - [`error`]: what went wrong, in words that say what to fix.

pub mod bedrock;
pub mod convert;
pub mod error;
pub mod types;

use serde::Serialize;

pub use bedrock::{BedrockModel, ModelSettings, ToolsConfig};
pub use error::ModelError;
pub use types::{Block, Message, Role, ToolDefinition};

/// Tokens used, summed over a task's requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens not read from the cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Model requests made (retries included).
    pub requests: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.requests += other.requests;
    }
}

/// One model turn: the assistant's message and why it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTurn {
    /// The assistant message (text and tool calls).
    pub message: Message,
    /// `end_turn`, `tool_use`, `max_tokens`, ... (unknown values are passed through).
    pub stop_reason: String,
    /// Tokens of this turn.
    pub usage: Usage,
}
