//! A task's view streamed into a private chat as a draft (`sendMessageDraft`), and the
//! draft rule.
//!
//! A draft is a live preview with a Stop button; Telegram's clients drop it the moment the
//! bot posts a normal message in the chat. So while a draft is live, the chat's outbox
//! first turns the draft's content into a normal message ([`LiveDraft::take_for_flush`]),
//! then posts, and the task goes on in a new draft (a new id) from there. The final
//! answer is the one message meant to replace the draft.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::render::MAX_MESSAGE_UTF16;
use super::view::{Rendered, TaskView, Verbosity};
use crate::agent::ProgressEvent;

/// A draft shows for about 30 s after its last update: one not changed for this long is
/// sent again so it stays.
pub const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Draft ids only need to differ within a chat. They start from the clock at the first
/// draft (never at process start, which a snapshot may share) and stay within 31 bits,
/// which every client library takes.
fn next_draft_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = crate::shared::unix_seconds() as i64 % 1_000_000 * 1000 + 1;
        let _ = NEXT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    let id = NEXT.fetch_add(1, Ordering::Relaxed) % (i64::from(i32::MAX) - 1);
    id.max(1)
}

/// What a draft should show now.
#[derive(Debug, Clone)]
pub struct DraftUpdate {
    /// The draft's id.
    pub draft_id: i64,
    /// Its content.
    pub content: Rendered,
    version: u64,
}

/// A running task's draft in the private chat `chat_id`; shared by the task's follow-up
/// (which feeds it events) and the chat's outbox (which shows and flushes it).
#[derive(Debug)]
pub struct LiveDraft {
    chat_id: i64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    view: TaskView,
    draft_id: i64,
    /// Every id this task's drafts had: a Stop pressed on any of them stops the task.
    ids: Vec<i64>,
    /// The view version Telegram shows under `draft_id`, and since when.
    shown: Option<(u64, Instant)>,
    /// The user pressed Stop: Telegram hid the draft, and it is not shown again.
    stopped: bool,
}

impl LiveDraft {
    /// A draft in `chat_id` of a task working in `workspace`, at `verbosity`.
    pub fn new(chat_id: i64, verbosity: Verbosity, workspace: PathBuf) -> Self {
        let draft_id = next_draft_id();
        Self {
            chat_id,
            state: Mutex::new(State {
                view: TaskView::new(verbosity, workspace),
                draft_id,
                ids: vec![draft_id],
                shown: None,
                stopped: false,
            }),
        }
    }

    /// The chat.
    pub fn chat_id(&self) -> i64 {
        self.chat_id
    }

    /// Takes in an event of the task.
    pub fn apply(&self, event: &ProgressEvent) {
        self.lock().view.apply(event);
    }

    /// Whether `draft_id` was one of this task's drafts.
    pub fn owns(&self, draft_id: i64) -> bool {
        self.lock().ids.contains(&draft_id)
    }

    /// The user pressed Stop on it: no more updates (the task is being cancelled).
    pub fn stop(&self) {
        self.lock().stopped = true;
    }

    /// What to show when Telegram does not show the latest yet (or has shown the same
    /// for [`KEEP_ALIVE`]); `None` when it is up to date.
    pub fn update_due(&self) -> Option<DraftUpdate> {
        let state = self.lock();
        if state.stopped {
            return None;
        }
        let version = state.view.version();
        let due = match state.shown {
            None => true,
            Some((shown, at)) => shown != version || at.elapsed() >= KEEP_ALIVE,
        };
        due.then(|| DraftUpdate {
            draft_id: state.draft_id,
            content: state.view.render(MAX_MESSAGE_UTF16),
            version,
        })
    }

    /// Telegram accepted `update`.
    pub fn shown(&self, update: &DraftUpdate) {
        let mut state = self.lock();
        if state.draft_id == update.draft_id {
            state.shown = Some((update.version, Instant::now()));
        }
    }

    /// For the draft rule: the content to post as a normal message before anything else
    /// is posted in the chat (`None` when the draft shows nothing). The view then starts
    /// over in a new draft.
    pub fn take_for_flush(&self) -> Option<Rendered> {
        let mut state = self.lock();
        let content = state.view.render(MAX_MESSAGE_UTF16);
        if content.is_empty() || state.stopped {
            return None;
        }
        state.view.clear();
        state.draft_id = next_draft_id();
        let id = state.draft_id;
        state.ids.push(id);
        state.shown = None;
        Some(content)
    }

    /// Takes the view, when the task goes on without drafts (Telegram refused them).
    pub fn take_view(&self) -> TaskView {
        let mut state = self.lock();
        let empty = TaskView::new(Verbosity::Off, PathBuf::new());
        std::mem::replace(&mut state.view, empty)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> ProgressEvent {
        ProgressEvent::Text { text: text.into() }
    }

    #[test]
    fn an_update_is_due_only_when_the_view_changed() {
        let draft = LiveDraft::new(7, Verbosity::Steps, "/ws".into());
        let first = draft.update_due().expect("the first draft is due at once");
        assert!(first.content.is_empty(), "an empty draft shows Thinking…");
        draft.shown(&first);
        assert!(draft.update_due().is_none());
        draft.apply(&text("hello"));
        let second = draft.update_due().unwrap();
        assert_eq!(second.draft_id, first.draft_id);
        assert_eq!(second.content.plain, "hello");
    }

    #[test]
    fn a_flush_takes_the_content_and_goes_on_in_a_new_draft() {
        let draft = LiveDraft::new(7, Verbosity::Steps, "/ws".into());
        assert!(draft.take_for_flush().is_none(), "nothing to keep");
        draft.apply(&text("part one"));
        let shown = draft.update_due().unwrap();
        draft.shown(&shown);
        let flushed = draft.take_for_flush().unwrap();
        assert_eq!(flushed.plain, "part one");
        draft.apply(&text("part two"));
        let next = draft.update_due().unwrap();
        assert_ne!(next.draft_id, shown.draft_id);
        assert_eq!(next.content.plain, "part two");
        assert!(draft.owns(shown.draft_id) && draft.owns(next.draft_id));
        assert!(!draft.owns(next.draft_id + 1000));
        // An answer to the old draft's update arriving late changes nothing.
        draft.shown(&shown);
        assert!(draft.update_due().is_some());
    }

    #[test]
    fn a_stopped_draft_is_neither_shown_nor_flushed_again() {
        let draft = LiveDraft::new(7, Verbosity::Steps, "/ws".into());
        draft.apply(&text("working"));
        draft.stop();
        draft.apply(&text(" more"));
        assert!(draft.update_due().is_none());
        assert!(draft.take_for_flush().is_none());
    }
}
