//! The model: its conversation types, its errors, and the clients that reach it.
//!
//! - [`types`]: the conversation and tool definitions as the host keeps and stores them,
//!   the same for every provider.
//! - [`error`]: what went wrong, in kinds the agent acts on.
//! - [`image`]: pictures the model reads, and uploads made to fit it.
//! - [`bedrock`]: Claude through the Bedrock Converse API, the one provider today. Its SDK
//!   types stay inside it.
//! - [`prices`]: what tokens cost, estimated per model id.

pub mod bedrock;
pub mod error;
pub mod image;
pub mod prices;
pub mod types;

use serde::Serialize;

pub use self::image::{FittedImage, ImageError, ImageFormat, fit_for_model};
pub use bedrock::{BedrockModel, ModelSettings};
pub use error::ModelError;
pub use prices::{Price, PriceTable};
pub use types::{Block, ImageRef, Message, Request, Role, StreamEvent, ToolDefinition};

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
