//! A running task's view as one message edited in place, with a **Cancel** button: in
//! groups (Telegram has no drafts there) and wherever Telegram refuses drafts.
//!
//! The message is posted at the first refresh (a task that answers before then never
//! gets one), edited only when the view changed, and at the end edited once more to its
//! final state without the button.

use serde_json::json;

use super::api::Text;
use super::buttons::ButtonData;
use super::outbox::{Outbox, Post};
use super::render::{self, MAX_MESSAGE_UTF16};
use super::view::{Rendered, TaskView};
use crate::agent::ProgressEvent;

/// What the message says before the task has shown anything.
const WORKING: &str = "⏳ Working…";
/// The button's label.
const CANCEL_LABEL: &str = "⏹ Cancel";

/// The progress message of one task.
pub struct ProgressMessage {
    chat_id: i64,
    reply_to: Option<i64>,
    cancel: Option<ButtonData>,
    view: TaskView,
    message_id: Option<i64>,
    shown_version: Option<u64>,
    /// Telegram refused the message or an edit (deleted, no rights): stop trying.
    given_up: bool,
}

impl ProgressMessage {
    /// A progress message in `chat_id` answering `reply_to`, showing `view`, with a
    /// button sending `cancel` (none if it does not fit in a button).
    pub fn new(
        chat_id: i64,
        reply_to: Option<i64>,
        cancel: Option<ButtonData>,
        view: TaskView,
    ) -> Self {
        Self {
            chat_id,
            reply_to,
            cancel,
            view,
            message_id: None,
            shown_version: None,
            given_up: false,
        }
    }

    /// Takes in an event of the task.
    pub fn apply(&mut self, event: &ProgressEvent) {
        self.view.apply(event);
    }

    /// Posts the message, or edits it when the view changed since.
    pub async fn refresh(&mut self, outbox: &Outbox) {
        if self.given_up || self.shown_version == Some(self.view.version()) {
            return;
        }
        let version = self.view.version();
        let content = with_footer(self.view.render(MAX_MESSAGE_UTF16), None);
        let mut text = Text::html(self.chat_id, content.html);
        text.reply_markup = self.cancel.as_ref().map(|button| {
            json!({"inline_keyboard": [[{"text": CANCEL_LABEL, "callback_data": button.encode()}]]})
        });
        let post = match self.message_id {
            None => Post::Message(text.replying_to(self.reply_to)),
            Some(message_id) => Post::Edit { message_id, text },
        };
        match outbox.post(self.chat_id, post).await {
            Ok(sent) => {
                if let (None, Some(sent)) = (self.message_id, sent) {
                    self.message_id = Some(sent.message_id);
                }
                self.shown_version = Some(version);
            }
            Err(error) if error.is_transient() => {
                tracing::debug!(chat = self.chat_id, "progress not shown this time: {error}");
            }
            Err(error) => {
                tracing::warn!(chat = self.chat_id, "progress message given up: {error}");
                self.given_up = true;
            }
        }
    }

    /// The task ended (`footer` says how): the message, if it was posted, shows its final
    /// state without the button.
    pub async fn finish(&mut self, outbox: &Outbox, footer: &str) {
        let Some(message_id) = self.message_id.filter(|_| !self.given_up) else {
            return;
        };
        let budget = MAX_MESSAGE_UTF16 - footer.encode_utf16().count() - 2;
        let content = with_footer(self.view.render(budget), Some(footer));
        let text = Text::html(self.chat_id, content.html);
        if let Err(error) = outbox
            .post(self.chat_id, Post::Edit { message_id, text })
            .await
        {
            tracing::warn!(
                chat = self.chat_id,
                "progress message not finalised: {error}"
            );
        }
    }
}

/// `content` (or the working line when it is empty) and a last line.
fn with_footer(content: Rendered, footer: Option<&str>) -> Rendered {
    let (mut html, mut plain) = match (content.is_empty(), footer) {
        (true, None) => (render::escape(WORKING), WORKING.to_string()),
        (true, Some(footer)) => {
            return Rendered {
                html: format!("<i>{}</i>", render::escape(footer)),
                plain: footer.to_string(),
            };
        }
        (false, _) => (content.html, content.plain),
    };
    if let Some(footer) = footer {
        html.push_str("\n\n<i>");
        html.push_str(&render::escape(footer));
        html.push_str("</i>");
        plain.push_str("\n\n");
        plain.push_str(footer);
    }
    Rendered { html, plain }
}
