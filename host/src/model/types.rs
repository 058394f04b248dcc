//! The conversation as the host keeps it: its own types (serde, stable, storable), mapped
//! to a provider's types only inside that provider's client. Histories are stored in
//! this shape.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::image::ImageFormat;

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user, or the host answering tool calls on the user's side.
    User,
    /// The model.
    Assistant,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Block>,
}

/// One content block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text.
    Text {
        /// The text (never empty when sent to Bedrock).
        text: String,
    },
    /// The model calls a tool.
    ToolUse {
        /// Pairs the call with its result.
        id: String,
        /// The tool's name.
        name: String,
        /// The input object.
        input: serde_json::Value,
    },
    /// The result of a tool call (in the next user message).
    ToolResult {
        /// The `id` of the call it answers.
        tool_use_id: String,
        /// The text the model sees.
        content: String,
        /// True for an error result.
        is_error: bool,
    },
    /// A picture the user sent (user messages only: Bedrock refuses images from the
    /// assistant). The conversation keeps where the file is, never its bytes: a history
    /// stays small, and the file is read when a request is built.
    Image(ImageRef),
}

/// Where an image of the conversation is and what it was when it was sent. Made by
/// [`FittedImage::reference`](super::image::FittedImage::reference) from an upload that
/// already fits the model; the file is checked against it before every read (see
/// [`read_for_request`](super::image::read_for_request)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// The file: absolute, inside the user's workspace.
    pub path: PathBuf,
    /// Its format.
    pub format: ImageFormat,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON Schema of its input (an object schema).
    pub input_schema: serde_json::Value,
}

impl Message {
    /// A user message with one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }
}

/// One request: the stable prefix (system prompt, tools) and the conversation so far.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The tools offered. Keep one `Arc` for as long as the tools do not change: a client
    /// may prepare them once per `Arc` (Bedrock does, so the prefix keeps its bytes and
    /// its prompt cache).
    pub tools: &'a Arc<[ToolDefinition]>,
    /// The conversation, oldest first.
    pub messages: &'a [Message],
}

/// What a model's stream tells before its turn is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// Answer text, as it streams.
    Text(&'a str),
    /// The model began a call of the tool `name`; its input follows. The call is not yet
    /// made and may never be (the turn can still fail): what is done with this must be
    /// undone by dropping it.
    ToolUseStarted {
        /// The call's id, as in the turn's [`Block::ToolUse`].
        id: &'a str,
        /// The tool's name.
        name: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_image_is_stored_as_its_reference() {
        let block = Block::Image(ImageRef {
            path: "/workspaces/42/uploads/photo.jpg".into(),
            format: ImageFormat::Jpeg,
            width: 1260,
            height: 945,
        });
        let stored = serde_json::to_value(&block).unwrap();
        assert_eq!(
            stored,
            json!({"type": "image", "path": "/workspaces/42/uploads/photo.jpg",
                   "format": "jpeg", "width": 1260, "height": 945})
        );
        assert_eq!(serde_json::from_value::<Block>(stored).unwrap(), block);
    }

    #[test]
    fn histories_written_before_images_still_read() {
        let line = r#"{"role":"user","content":[{"type":"text","text":"hi"},{"type":"tool_result","tool_use_id":"t1","content":"ok","is_error":false}]}"#;
        let message: Message = serde_json::from_str(line).unwrap();
        assert_eq!(message.content.len(), 2);
    }
}
