//! Sending a workspace file back to the user (`/get PATH`). Only a regular file inside the
//! workspace, after every symlink is resolved, may leave: the host may be able to read far
//! more than the user's commands can (it may be root), so a symlink to `/etc/shadow` or to
//! another user's workspace must never be a way out. [`super::resolve`] does the walk.

use std::fs::File;
use std::io;
use std::path::Path;

use super::human_size;
use super::resolve::open_beneath;

/// The largest file sent: 50 MB, the most a Telegram bot may upload.
pub const MAX_DOWNLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// A workspace file opened for sending.
#[derive(Debug)]
pub struct Download {
    /// The file, open for reading (the one that was checked, not one at the same path).
    pub file: File,
    /// Where it is inside the workspace, every symlink resolved, e.g. `out/report.pdf`.
    pub relative: String,
    /// Its file name, for the document.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// Why a file cannot be sent. Each message names the path as requested and says what to
/// do instead.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The path is empty or cannot be a path.
    #[error("{requested:?} is not a file path: {reason}")]
    Invalid {
        /// The path as requested.
        requested: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing is there.
    #[error(
        "there is no {requested} in your workspace: give a path relative to the workspace, \
         or ask me which files there are"
    )]
    NotFound {
        /// The path as requested.
        requested: String,
    },
    /// The path, or a symlink on the way, leads outside the workspace.
    #[error(
        "{requested} is outside your workspace ({workspace}){how}: only files inside it can be sent"
    )]
    Outside {
        /// The path as requested.
        requested: String,
        /// The workspace.
        workspace: String,
        /// Which symlink led out, if one did (", through the symlink a -> /b").
        how: String,
    },
    /// A directory.
    #[error("{requested} is a directory: name a file in it, or ask me to pack it into an archive")]
    IsADirectory {
        /// The path as requested.
        requested: String,
    },
    /// A pipe, socket or device.
    #[error("{requested} is not a regular file (it is a {kind}): only regular files can be sent")]
    NotAFile {
        /// The path as requested.
        requested: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// Over [`MAX_DOWNLOAD_BYTES`].
    #[error(
        "{requested} is {} and files up to {} can be sent: ask me to compress or split it",
        human_size(*.bytes),
        human_size(*.limit)
    )]
    TooLarge {
        /// The path as requested.
        requested: String,
        /// The file's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The file cannot be opened.
    #[error("cannot open {requested}: {error}")]
    Io {
        /// The path as requested.
        requested: String,
        /// What the system said.
        error: io::Error,
    },
}

/// Opens `requested` (relative to `workspace`, or absolute inside it) for sending, if it
/// is a regular file of at most [`MAX_DOWNLOAD_BYTES`] inside the workspace once every
/// symlink is resolved.
pub fn open_for_download(workspace: &Path, requested: &str) -> Result<Download, DownloadError> {
    let opened = open_beneath(workspace, requested)?;
    if opened.bytes > MAX_DOWNLOAD_BYTES {
        return Err(DownloadError::TooLarge {
            requested: requested.to_string(),
            bytes: opened.bytes,
            limit: MAX_DOWNLOAD_BYTES,
        });
    }
    Ok(Download {
        file: opened.file,
        relative: opened.relative,
        name: opened.name,
        bytes: opened.bytes,
    })
}
