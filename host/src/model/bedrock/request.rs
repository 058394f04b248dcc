//! Requests in Bedrock's shape: the system prompt, the tools and the conversation, with
//! three cache points — after the system prompt, after the tools, at the end of the
//! conversation.
//!
//! Tool schemas and tool inputs become SDK `Document`s, whose objects serialise in a
//! random order per conversion (see [`super::convert`]). So everything in the cached
//! prefix is converted once and the result reused: the tools once per tool list, each
//! message once while it is in use. Otherwise the bytes sent change from turn to turn and
//! the prompt cache misses.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, Message as SdkMessage,
    SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema, ToolResultBlock,
    ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};

use super::convert::to_document;
use crate::model::{Block, Message, ModelError, Role, ToolDefinition};

/// How long a converted message is kept after its last use: Bedrock's prompt cache lives
/// five minutes, so bytes older than that gain nothing by staying identical.
const KEEP_UNUSED: Duration = Duration::from_secs(10 * 60);

/// Above this many converted messages, the unused ones are swept out.
const SWEEP_ABOVE: usize = 4096;

/// The system prompt: the text, then a cache point.
pub fn system_blocks(prompt: &str) -> Vec<SystemContentBlock> {
    vec![
        SystemContentBlock::Text(prompt.to_string()),
        SystemContentBlock::CachePoint(cache_point()),
    ]
}

/// A cache point block.
pub fn cache_point() -> CachePointBlock {
    CachePointBlock::builder()
        .r#type(CachePointType::Default)
        .build()
        .expect("a cache point has only its type")
}

/// The tools followed by a cache point, or `None` when there are none.
fn tool_configuration(tools: &[ToolDefinition]) -> Result<Option<ToolConfiguration>, ModelError> {
    if tools.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len() + 1);
    for tool in tools {
        let spec = ToolSpecification::builder()
            .name(&tool.name)
            .description(&tool.description)
            .input_schema(ToolInputSchema::Json(to_document(&tool.input_schema)))
            .build()
            .map_err(|e| ModelError::InvalidRequest(format!("tool {}: {e}", tool.name)))?;
        specs.push(Tool::ToolSpec(spec));
    }
    specs.push(Tool::CachePoint(cache_point()));
    let config = ToolConfiguration::builder()
        .set_tools(Some(specs))
        .build()
        .map_err(|e| ModelError::InvalidRequest(e.to_string()))?;
    Ok(Some(config))
}

/// `message` in the SDK's shape.
fn to_sdk_message(message: &Message) -> SdkMessage {
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
    SdkMessage::builder()
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

/// A tool list and its conversion (`None`: no tools).
type ConvertedTools = (Arc<[ToolDefinition]>, Option<ToolConfiguration>);

/// Conversions kept for reuse, shared by every conversation of one client.
#[derive(Default)]
pub struct Conversions {
    tools: Mutex<Option<ConvertedTools>>,
    messages: Mutex<MessageMemo>,
}

#[derive(Default)]
struct MessageMemo {
    hasher: RandomState,
    /// Content hash → the message, its conversion, and when it was last used. The message
    /// itself is kept to compare on a hit, so a hash collision can never swap a message.
    entries: HashMap<u64, (Message, SdkMessage, Instant)>,
}

impl Conversions {
    /// The tool configuration of `tools`, converted once per `Arc`.
    pub fn tools(
        &self,
        tools: &Arc<[ToolDefinition]>,
    ) -> Result<Option<ToolConfiguration>, ModelError> {
        let mut cached = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((key, config)) = cached.as_ref()
            && Arc::ptr_eq(key, tools)
        {
            return Ok(config.clone());
        }
        let config = tool_configuration(tools)?;
        *cached = Some((tools.clone(), config.clone()));
        Ok(config)
    }

    /// The conversation in the SDK's shape, each message converted once while in use,
    /// with a cache point after the last message.
    pub fn messages(&self, messages: &[Message]) -> Vec<SdkMessage> {
        let now = Instant::now();
        let mut memo = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        let mut converted: Vec<SdkMessage> = messages
            .iter()
            .map(|message| memo.convert(message, now))
            .collect();
        if memo.entries.len() > SWEEP_ABOVE {
            memo.entries
                .retain(|_, (_, _, used)| now.duration_since(*used) < KEEP_UNUSED);
        }
        if let Some(last) = converted.last_mut() {
            last.content.push(ContentBlock::CachePoint(cache_point()));
        }
        converted
    }
}

impl MessageMemo {
    fn convert(&mut self, message: &Message, now: Instant) -> SdkMessage {
        let key = self.key(message);
        match self.entries.get_mut(&key) {
            Some((kept, sdk, used)) if kept == message => {
                *used = now;
                sdk.clone()
            }
            _ => {
                let sdk = to_sdk_message(message);
                self.entries
                    .insert(key, (message.clone(), sdk.clone(), now));
                sdk
            }
        }
    }

    fn key(&self, message: &Message) -> u64 {
        struct HashWriter<H>(H);
        impl<H: std::hash::Hasher> std::io::Write for HashWriter<H> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.write(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut writer = HashWriter(self.hasher.build_hasher());
        // Serialising our own types cannot fail; a failure would only cost a cache miss.
        let _ = serde_json::to_writer(&mut writer, message);
        writer.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_use(input: serde_json::Value) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "t1".into(),
                name: "Read".into(),
                input,
            }],
        }
    }

    #[test]
    fn a_message_keeps_its_conversion_while_in_use() {
        let conversions = Conversions::default();
        let input = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
        let conversation = [Message::user_text("hi"), tool_use(input.clone())];
        let first = conversions.messages(&conversation);
        let second = conversions.messages(&conversation);
        assert_eq!(first, second);
        let kept = |c: &Conversions| c.messages.lock().unwrap().entries.len();
        assert_eq!(
            kept(&conversions),
            2,
            "the second request reused both conversions"
        );
        conversions.messages(&[Message::user_text("other")]);
        assert_eq!(kept(&conversions), 3);
        assert!(matches!(
            first[1].content.last(),
            Some(ContentBlock::CachePoint(_))
        ));
        assert!(!matches!(
            first[0].content.last(),
            Some(ContentBlock::CachePoint(_))
        ));
    }

    #[test]
    fn tools_are_converted_once_per_list() {
        let conversions = Conversions::default();
        let tools: Arc<[ToolDefinition]> = Arc::from(vec![ToolDefinition {
            name: "Read".into(),
            description: "reads".into(),
            input_schema: json!({"type": "object"}),
        }]);
        let first = conversions.tools(&tools).unwrap().unwrap();
        assert_eq!(first.tools().len(), 2, "the tool and a cache point");
        assert_eq!(Some(first), conversions.tools(&tools).unwrap());
        assert_eq!(conversions.tools(&Arc::from(Vec::new())).unwrap(), None);
    }
}
