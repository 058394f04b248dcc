//! A turn assembled from Bedrock's answer: the events of a `ConverseStream` (text deltas,
//! tool calls whose input arrives as JSON fragments) or a whole `Converse` message.

use std::collections::BTreeMap;

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConverseStreamOutput as Event,
    Message as SdkMessage, TokenUsage,
};

use super::convert::to_json;
use crate::model::{Block, Message, ModelError, ModelTurn, Role, StreamEvent, Usage};

pub fn usage_of(usage: Option<&TokenUsage>) -> Usage {
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
pub fn from_sdk_message(message: &SdkMessage) -> Message {
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
pub struct Assembler {
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
    /// Takes in one event; `on_event` hears of text and of tool calls as they begin.
    pub fn push(&mut self, event: Event, on_event: &(dyn Fn(StreamEvent<'_>) + Send + Sync)) {
        match event {
            Event::ContentBlockStart(start) => {
                if let Some(ContentBlockStart::ToolUse(tool)) = start.start {
                    on_event(StreamEvent::ToolUseStarted {
                        id: &tool.tool_use_id,
                        name: &tool.name,
                    });
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
                    on_event(StreamEvent::Text(&text));
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

    pub fn finish(self) -> Result<ModelTurn, ModelError> {
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
    use std::sync::Mutex;

    use aws_sdk_bedrockruntime::types::{
        ContentBlockDeltaEvent, ContentBlockStartEvent, MessageStopEvent, StopReason,
        ToolUseBlockDelta, ToolUseBlockStart,
    };

    use super::*;

    #[test]
    fn a_tool_call_is_heard_of_when_it_begins_and_text_as_it_streams() {
        let heard = Mutex::new(Vec::new());
        let on_event = |event: StreamEvent<'_>| heard.lock().unwrap().push(format!("{event:?}"));
        let mut turn = Assembler::default();
        let text = |index, text: &str| {
            Event::ContentBlockDelta(
                ContentBlockDeltaEvent::builder()
                    .content_block_index(index)
                    .delta(ContentBlockDelta::Text(text.into()))
                    .build()
                    .unwrap(),
            )
        };
        turn.push(text(0, "Reading it."), &on_event);
        let start = ToolUseBlockStart::builder()
            .tool_use_id("t1")
            .name("Read")
            .build()
            .unwrap();
        turn.push(
            Event::ContentBlockStart(
                ContentBlockStartEvent::builder()
                    .content_block_index(1)
                    .start(ContentBlockStart::ToolUse(start))
                    .build()
                    .unwrap(),
            ),
            &on_event,
        );
        assert_eq!(heard.lock().unwrap().len(), 2, "before its input");
        let input = ToolUseBlockDelta::builder()
            .input(r#"{"file_path":"/w/a"}"#)
            .build()
            .unwrap();
        turn.push(
            Event::ContentBlockDelta(
                ContentBlockDeltaEvent::builder()
                    .content_block_index(1)
                    .delta(ContentBlockDelta::ToolUse(input))
                    .build()
                    .unwrap(),
            ),
            &on_event,
        );
        turn.push(
            Event::MessageStop(
                MessageStopEvent::builder()
                    .stop_reason(StopReason::ToolUse)
                    .build()
                    .unwrap(),
            ),
            &on_event,
        );
        assert_eq!(
            *heard.lock().unwrap(),
            [
                r#"Text("Reading it.")"#,
                r#"ToolUseStarted { id: "t1", name: "Read" }"#
            ]
        );
        let turn = turn.finish().unwrap();
        assert_eq!(
            turn.message.content[1],
            Block::ToolUse {
                id: "t1".into(),
                name: "Read".into(),
                input: serde_json::json!({"file_path": "/w/a"}),
            }
        );
    }
}
