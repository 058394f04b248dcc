//! Files users send: each is downloaded from Telegram, saved in the workspace's uploads
//! area (in the scratch area, ignored by git) and handed to the user's next task — named
//! in its prompt, and a photo also attached as an image the model sees.
//!
//! Nothing sent is lost: a file that arrives without a caption, or while a task runs,
//! waits in the store for the next prompt.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::BotApi;
use super::update::{Attachment, AttachmentKind, MAX_DOWNLOAD_BYTES};
use crate::model::ImageRef;
use crate::model::image::fit_for_model;
use crate::session::files::save_upload;

/// A saved upload waiting for the task that gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The file's name as the user knows it.
    pub name: String,
    /// Where it is, relative to the workspace (what the model is told).
    pub relative: String,
    /// Its size.
    pub bytes: u64,
    /// For a photo: the image the model sees (the file, or a smaller copy that fits).
    pub image: Option<ImageRef>,
}

impl Upload {
    /// The line the prompt gets about it.
    fn note(&self) -> String {
        match &self.image {
            Some(_) => format!(
                "[The user sent a photo, saved in the workspace as {} ({}); it is attached.]",
                self.relative,
                size(self.bytes)
            ),
            None => format!(
                "[The user sent a file, saved in the workspace as {} ({}).]",
                self.relative,
                size(self.bytes)
            ),
        }
    }
}

/// What the user reads when a file is over Telegram's download limit.
pub fn too_large(bytes: u64) -> String {
    format!(
        "That file is {}; bots can only receive files up to {} (Telegram's limit). Split or \
         compress it, or put it where I can fetch it.",
        size(bytes),
        size(MAX_DOWNLOAD_BYTES)
    )
}

/// Downloads `attachment` and saves it in `workspace`; an error is a sentence for the
/// user.
pub async fn receive(
    api: &BotApi,
    workspace: &Path,
    attachment: &Attachment,
) -> Result<Upload, String> {
    if let Some(bytes) = attachment.file_size.filter(|b| *b > MAX_DOWNLOAD_BYTES) {
        return Err(too_large(bytes));
    }
    let cannot = |error: &dyn std::fmt::Display| {
        tracing::warn!("cannot receive a file: {error}");
        "I could not get that file from Telegram; please send it again.".to_string()
    };
    let remote = api
        .get_file(&attachment.file_id)
        .await
        .map_err(|e| cannot(&e))?;
    if let Some(bytes) = remote.file_size.filter(|b| *b > MAX_DOWNLOAD_BYTES) {
        return Err(too_large(bytes));
    }
    let bytes = api
        .download(&remote, MAX_DOWNLOAD_BYTES)
        .await
        .map_err(|e| cannot(&e))?;
    let name = match (&attachment.file_name, attachment.kind) {
        (Some(name), _) => name.clone(),
        (None, AttachmentKind::Photo) => format!("photo-{}.jpg", crate::shared::unix_seconds()),
        (None, AttachmentKind::Document) => "file".to_string(),
    };
    let workspace = workspace.to_path_buf();
    let kind = attachment.kind;
    tokio::task::spawn_blocking(move || save(&workspace, &name, &bytes, kind))
        .await
        .map_err(|e| cannot(&e))?
}

/// Saves the bytes (and for a photo, a copy the model can take when the photo itself
/// cannot be sent as it is).
fn save(
    workspace: &Path,
    name: &str,
    bytes: &[u8],
    kind: AttachmentKind,
) -> Result<Upload, String> {
    let saved = save_upload(workspace, name, bytes).map_err(|error| {
        tracing::warn!("cannot save an upload: {error}");
        format!("I could not save {name} in your workspace: {error}")
    })?;
    let image = match kind {
        AttachmentKind::Document => None,
        AttachmentKind::Photo => {
            let fitted = fit_for_model(bytes)
                .map_err(|error| format!("I saved the photo as {}, but {error}", saved.relative))?;
            let path: PathBuf = if fitted.bytes.as_slice() == bytes {
                saved.path.clone()
            } else {
                let stem = Path::new(&saved.relative)
                    .file_stem()
                    .map_or("photo".into(), |s| s.to_string_lossy().into_owned());
                let copy = format!("{stem}-for-model.{}", fitted.format.extension());
                save_upload(workspace, &copy, &fitted.bytes)
                    .map_err(|error| format!("I could not save {copy}: {error}"))?
                    .path
            };
            Some(fitted.reference(path))
        }
    };
    Ok(Upload {
        name: name.to_string(),
        relative: saved.relative,
        bytes: saved.bytes,
        image,
    })
}

/// The prompt for `text` with the `uploads` that wait for it named first.
pub fn prompt_with(uploads: &[Upload], text: &str) -> String {
    let mut prompt: Vec<String> = uploads.iter().map(Upload::note).collect();
    if !text.trim().is_empty() {
        prompt.push(text.to_string());
    }
    prompt.join("\n\n")
}

/// A size as people read it.
fn size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_each_waiting_file_before_the_text() {
        let log = Upload {
            name: "build.log".into(),
            relative: ".agent-host/uploads/build.log".into(),
            bytes: 2048,
            image: None,
        };
        assert_eq!(
            prompt_with(&[log], "why does it fail?"),
            "[The user sent a file, saved in the workspace as .agent-host/uploads/build.log \
             (2.0 KB).]\n\nwhy does it fail?"
        );
        assert_eq!(prompt_with(&[], "hi"), "hi");
        assert!(
            too_large(25 * 1024 * 1024).contains("25.0 MB") && too_large(1).contains("20.0 MB")
        );
    }
}
