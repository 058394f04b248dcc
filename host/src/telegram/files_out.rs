//! Files from the workspace to the chat: `/get PATH`, `/diff`, and the buttons under an
//! answer that offer the files its task created or changed.
//!
//! Which file may leave is decided by [`crate::session::files`] (inside the workspace
//! after every symlink, at most 50 MB); the diff is made by git in the confined exec path
//! with the repository's own hooks and filters neutralised. Errors are sentences for the
//! user.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::api::Text;
use super::buttons::ButtonData;
use super::outbox::{Outbox, Post};
use super::render;
use crate::exec::CommandRunner;
use crate::session::files::{open_for_download, workspace_diff};

/// Most files offered under one answer.
pub const MAX_OFFERED: usize = 5;
/// Most characters of `--stat` shown in the chat (the whole diff is the document).
const MAX_STAT_CHARS: usize = 3500;

/// Sends `requested` (relative to `workspace`, or absolute inside it) as a document.
pub async fn send_workspace_file(
    outbox: &Outbox,
    chat_id: i64,
    reply_to: Option<i64>,
    workspace: PathBuf,
    requested: String,
) -> Result<(), String> {
    let read = tokio::task::spawn_blocking(move || {
        let mut download = open_for_download(&workspace, &requested).map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity(download.bytes as usize);
        download
            .file
            .read_to_end(&mut bytes)
            .map_err(|error| format!("I could not read {}: {error}", download.relative))?;
        Ok::<_, String>((download.name, download.relative, bytes))
    })
    .await
    .map_err(|error| format!("I could not read the file: {error}"))?;
    let (name, relative, bytes) = read?;
    if bytes.is_empty() {
        return Err(format!(
            "{relative} is empty; Telegram does not take empty files."
        ));
    }
    outbox.chat_action(chat_id, "upload_document").await;
    let post = Post::Document {
        file_name: name,
        bytes,
        caption: Some(relative),
        reply_to,
    };
    outbox
        .post(chat_id, post)
        .await
        .map(drop)
        .map_err(|error| format!("Telegram did not take the file: {error}"))
}

/// Sends the workspace's `git diff --stat` as a message and the whole diff as
/// `workspace.diff`.
pub async fn send_diff(
    outbox: &Outbox,
    chat_id: i64,
    reply_to: Option<i64>,
    runner: Arc<CommandRunner>,
    workspace: PathBuf,
) -> Result<(), String> {
    let diff = tokio::task::spawn_blocking(move || workspace_diff(&runner, &workspace))
        .await
        .map_err(|error| format!("The diff could not be made: {error}"))?
        .map_err(|error| error.to_string())?;
    if diff.stat.trim().is_empty() && diff.patch.trim().is_empty() {
        let text = Text::plain(
            chat_id,
            "No changes: the workspace matches its last commit.",
        )
        .replying_to(reply_to);
        return outbox
            .post(chat_id, Post::Message(text))
            .await
            .map(drop)
            .map_err(|error| error.to_string());
    }
    let mut stat: String = diff.stat.trim_end().chars().take(MAX_STAT_CHARS).collect();
    if stat.len() < diff.stat.trim_end().len() {
        stat.push_str("\n…");
    }
    let text =
        Text::html(chat_id, format!("<pre>{}</pre>", render::escape(&stat))).replying_to(reply_to);
    outbox
        .post(chat_id, Post::Message(text))
        .await
        .map_err(|error| error.to_string())?;
    if diff.patch.trim().is_empty() {
        return Ok(());
    }
    outbox.chat_action(chat_id, "upload_document").await;
    let post = Post::Document {
        file_name: "workspace.diff".into(),
        bytes: diff.patch.into_bytes(),
        caption: Some("The whole diff".into()),
        reply_to: None,
    };
    outbox
        .post(chat_id, post)
        .await
        .map(drop)
        .map_err(|error| format!("Telegram did not take the diff: {error}"))
}

/// The inline keyboard offering `files` (one button each) under task `task_id`'s answer
/// to `owner`; none when there is nothing to offer.
pub fn offer_keyboard(task_id: &str, owner: i64, files: &[String]) -> Option<Value> {
    let rows: Vec<Value> = files
        .iter()
        .take(MAX_OFFERED)
        .enumerate()
        .filter_map(|(index, file)| {
            let data = ButtonData::new("get", &format!("{task_id}_{index}"), owner)?;
            let name = file.rsplit('/').next().unwrap_or(file);
            Some(json!([{"text": format!("📎 {name}"), "callback_data": data.encode()}]))
        })
        .collect();
    (!rows.is_empty()).then(|| json!({"inline_keyboard": rows}))
}

/// The task and index a `get` button's id names.
pub fn offered_index(id: &str) -> Option<(&str, usize)> {
    let (task, index) = id.rsplit_once('_')?;
    Some((task, index.parse().ok()?))
}
