//! One user's conversation while a task runs: its messages and what still has to be
//! written to the history store.
//!
//! The conversation is kept valid for Bedrock at every step: it starts with a user
//! message, roles alternate, and every `toolUse` is answered by exactly one `toolResult`
//! in the next message — also after a crash or a cancellation in the middle of a turn.

use crate::model::image::model_tokens;
use crate::model::{Block, ImageRef, Message, Role};

/// What is said for tool calls that never ran (crash, cancellation).
pub const INTERRUPTED: &str = "The call did not run: the task was interrupted before it could.";

/// A conversation and its persistence state.
pub struct Conversation {
    messages: Vec<Message>,
    /// Messages `[0, persisted)` are in the store.
    persisted: usize,
    /// Messages `[0, clean)` are in the store unchanged; a change below `persisted` means
    /// the store must be rewritten, not appended to.
    clean: usize,
}

/// What to write to the store.
pub enum Pending<'a> {
    /// Nothing changed.
    Nothing,
    /// New messages at the end.
    Append(&'a [Message]),
    /// Earlier messages changed: rewrite the whole conversation.
    Replace(&'a [Message]),
}

impl Conversation {
    /// A conversation loaded from the store, repaired if a crash left it invalid.
    pub fn from_history(mut messages: Vec<Message>) -> Self {
        let loaded = messages.len();
        let leading = messages.iter().take_while(|m| m.role != Role::User).count();
        messages.drain(..leading);
        let mut conversation = Self {
            persisted: messages.len(),
            clean: if leading > 0 { 0 } else { loaded },
            messages,
        };
        conversation.answer_dangling_tool_uses();
        conversation
    }

    /// The messages.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Adds the user's new prompt (merged into the last message when that is already a
    /// user message, since roles must alternate).
    pub fn push_user_text(&mut self, text: &str) {
        self.push_user_content(text, Vec::new());
    }

    /// Adds the user's new prompt with the pictures that came with it, in one message (so
    /// compaction, which cuts between messages, keeps a picture with its words). The
    /// pictures come first: Claude reads a question about an image best after the image.
    /// An empty text is left out when there are pictures (a photo without a caption).
    pub fn push_user_content(&mut self, text: &str, images: Vec<ImageRef>) {
        let mut blocks: Vec<Block> = images.into_iter().map(Block::Image).collect();
        if !text.is_empty() || blocks.is_empty() {
            blocks.push(Block::Text {
                text: text.to_string(),
            });
        }
        self.push_user_blocks(blocks);
    }

    /// Adds blocks on the user's side (prompt text, tool results).
    pub fn push_user_blocks(&mut self, blocks: Vec<Block>) {
        match self.messages.last_mut() {
            Some(last) if last.role == Role::User => {
                last.content.extend(blocks);
                let index = self.messages.len() - 1;
                self.changed(index);
            }
            _ => self.push(Message {
                role: Role::User,
                content: blocks,
            }),
        }
    }

    /// Adds the model's message (an empty one becomes "(no output)": Bedrock refuses empty
    /// content).
    pub fn push_assistant(&mut self, mut message: Message) {
        if message.content.is_empty() {
            message.content.push(Block::Text {
                text: "(no output)".into(),
            });
        }
        self.push(message);
    }

    /// Answers tool calls of the last assistant message that have no result yet.
    pub fn answer_dangling_tool_uses(&mut self) {
        let Some(last) = self.messages.last() else {
            return;
        };
        if last.role != Role::Assistant {
            return;
        }
        let results: Vec<Block> = last
            .content
            .iter()
            .filter_map(|block| match block {
                Block::ToolUse { id, .. } => Some(Block::ToolResult {
                    tool_use_id: id.clone(),
                    content: INTERRUPTED.to_string(),
                    is_error: true,
                }),
                _ => None,
            })
            .collect();
        if !results.is_empty() {
            self.push_user_blocks(results);
        }
    }

    /// Drops the oldest turns until the estimated size fits `budget_tokens`, cutting only
    /// before a user message that starts a turn (never between a call and its result).
    /// Returns how many messages were dropped.
    pub fn compact(&mut self, budget_tokens: usize) -> usize {
        let mut dropped = 0;
        while estimate_tokens(&self.messages[dropped..]) > budget_tokens {
            let next_start = self.messages[dropped + 1..]
                .iter()
                .position(starts_a_turn)
                .map(|offset| dropped + 1 + offset);
            match next_start {
                // Keep at least the current turn.
                Some(start) if start < self.messages.len() => dropped = start,
                _ => break,
            }
        }
        if dropped > 0 {
            self.messages.drain(..dropped);
            let note = Block::Text {
                text: format!(
                    "(Earlier parts of this conversation, {dropped} messages, were dropped to fit the model's context.)"
                ),
            };
            self.messages[0].content.insert(0, note);
            self.persisted = self.persisted.saturating_sub(dropped);
            self.clean = 0;
        }
        dropped
    }

    /// What the store is missing; call [`Self::saved`] once it is written.
    pub fn pending(&self) -> Pending<'_> {
        if self.clean < self.persisted {
            Pending::Replace(&self.messages)
        } else if self.persisted < self.messages.len() {
            Pending::Append(&self.messages[self.persisted..])
        } else {
            Pending::Nothing
        }
    }

    /// Marks everything as written.
    pub fn saved(&mut self) {
        self.persisted = self.messages.len();
        self.clean = self.messages.len();
    }

    fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    fn changed(&mut self, index: usize) {
        self.clean = self.clean.min(index);
    }
}

/// A user message with text, not only tool results: where a turn may begin.
fn starts_a_turn(message: &Message) -> bool {
    message.role == Role::User
        && message
            .content
            .iter()
            .all(|b| !matches!(b, Block::ToolResult { .. }))
}

/// About four characters per token, and for an image what the model spends on it (see
/// [`model_tokens`]): enough to decide when to compact.
pub fn estimate_tokens(messages: &[Message]) -> usize {
    let mut chars = 0;
    let mut image_tokens = 0;
    for block in messages.iter().flat_map(|m| &m.content) {
        match block {
            Block::Text { text } => chars += text.len(),
            Block::ToolUse { name, input, .. } => chars += name.len() + input.to_string().len(),
            Block::ToolResult { content, .. } => chars += content.len(),
            Block::Image(image) => image_tokens += model_tokens(image.width, image.height),
        }
    }
    chars / 4 + image_tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool_use(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: id.into(),
                name: "Read".into(),
                input: json!({}),
            }],
        }
    }

    #[test]
    fn a_crash_between_call_and_result_is_repaired() {
        let conversation =
            Conversation::from_history(vec![Message::user_text("hi"), tool_use("t1")]);
        let last = conversation.messages().last().unwrap();
        assert_eq!(last.role, Role::User);
        assert!(
            matches!(&last.content[0], Block::ToolResult { tool_use_id, is_error: true, .. } if tool_use_id == "t1")
        );
        assert!(matches!(conversation.pending(), Pending::Append(tail) if tail.len() == 1));
    }

    #[test]
    fn a_prompt_after_tool_results_joins_their_message() {
        let mut conversation = Conversation::from_history(vec![
            Message::user_text("hi"),
            tool_use("t1"),
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: "t1".into(),
                    content: "x".into(),
                    is_error: false,
                }],
            },
        ]);
        conversation.push_user_text("next");
        assert_eq!(conversation.messages().len(), 3);
        assert!(
            matches!(conversation.pending(), Pending::Replace(_)),
            "a stored message changed"
        );
        conversation.saved();
        assert!(matches!(conversation.pending(), Pending::Nothing));
    }

    fn image(name: &str, width: u32, height: u32) -> ImageRef {
        ImageRef {
            path: format!("/workspace/{name}").into(),
            format: crate::model::ImageFormat::Png,
            width,
            height,
        }
    }

    #[test]
    fn pictures_come_first_in_the_prompt_message_and_count_as_the_model_counts() {
        let mut conversation = Conversation::from_history(Vec::new());
        conversation.push_user_content("what is this?", vec![image("a.png", 4000, 3000)]);
        let message = &conversation.messages()[0];
        assert!(matches!(
            &message.content[..],
            [Block::Image(_), Block::Text { text }] if text == "what is this?"
        ));
        // 4000 × 3000 is seen at 1260 × 945: 1588 tokens, plus 13 characters of text.
        assert_eq!(estimate_tokens(conversation.messages()), 1588 + 3);

        let mut captionless = Conversation::from_history(Vec::new());
        captionless.push_user_content("", vec![image("b.png", 10, 10)]);
        assert!(matches!(
            &captionless.messages()[0].content[..],
            [Block::Image(_)]
        ));
    }

    #[test]
    fn compaction_drops_a_picture_only_with_its_words() {
        let mut history = Vec::new();
        for turn in 0..6 {
            let mut prompt = Message::user_text(format!("turn {turn}"));
            prompt
                .content
                .insert(0, Block::Image(image(&format!("{turn}.png"), 1092, 1092)));
            history.push(prompt);
            history.push(Message {
                role: Role::Assistant,
                content: vec![Block::Text { text: "ok".into() }],
            });
        }
        let mut conversation = Conversation::from_history(history);
        let dropped = conversation.compact(4000);
        assert_eq!(dropped, 8, "the images alone are 6 × 1590 tokens");
        for message in conversation
            .messages()
            .iter()
            .filter(|m| m.role == Role::User)
        {
            let images = message
                .content
                .iter()
                .filter(|b| matches!(b, Block::Image(_)))
                .count();
            let texts = message
                .content
                .iter()
                .filter(|b| matches!(b, Block::Text { .. }))
                .count();
            assert!(images == 1 && texts >= 1, "{message:?}");
        }
    }

    #[test]
    fn compaction_keeps_pairs_and_starts_with_a_user_turn() {
        let big = "x".repeat(4000);
        let mut history = Vec::new();
        for turn in 0..10 {
            history.push(Message::user_text(format!("turn {turn} {big}")));
            history.push(tool_use(&format!("t{turn}")));
            history.push(Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: format!("t{turn}"),
                    content: big.clone(),
                    is_error: false,
                }],
            });
            history.push(Message {
                role: Role::Assistant,
                content: vec![Block::Text { text: "ok".into() }],
            });
        }
        let mut conversation = Conversation::from_history(history);
        let dropped = conversation.compact(5000);
        assert!(
            dropped > 0 && dropped.is_multiple_of(4),
            "whole turns are dropped: {dropped}"
        );
        assert!(estimate_tokens(conversation.messages()) <= 5000);
        let first = &conversation.messages()[0];
        assert_eq!(first.role, Role::User);
        assert!(matches!(&first.content[0], Block::Text { text } if text.contains("were dropped")));
        assert!(matches!(conversation.pending(), Pending::Replace(_)));
    }
}
