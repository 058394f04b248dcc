//! Histories as append-only JSON-lines files on local disk.
//!
//! Appending a line is cheap however long the conversation is, and a crash can damage at
//! most the line being written: each append is one `write` of whole lines followed by
//! `fsync`, so after a crash the file holds every acknowledged message and possibly a
//! torn last line, which loading skips and the next append cuts off.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use super::{HistoryStore, PerUser, decode_lines, encode_lines, stored_name};
use crate::model::types::Message;

/// Conversations as files `<dir>/<name>.jsonl`, one per user, `name` being the user's
/// [`workspace_dir_name`](crate::session::workspace_dir_name).
pub struct FileHistory {
    dir: PathBuf,
    users: PerUser<FileState>,
}

/// What this process knows about one user's file.
#[derive(Default)]
struct FileState {
    /// The file is known to end after a whole line (or not to exist), so appends can go
    /// straight to its end. False until checked once per process, and again after a
    /// failed write, which may have left a torn line.
    clean: bool,
}

impl FileHistory {
    /// Histories under `dir`, created on the first write.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            users: PerUser::new(),
        }
    }

    /// Runs `op` on the user's file on a blocking thread (file I/O must not stall the
    /// async executor), one operation per user at a time.
    async fn with_file<T: Send + 'static>(
        &self,
        user_key: &str,
        op: impl FnOnce(&Path, &mut FileState) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let name = stored_name(user_key);
        let path = self.dir.join(&name);
        let mut state = self.users.lock(&name).await;
        tokio::task::spawn_blocking(move || op(&path, &mut state))
            .await
            .context("the conversation history task failed")?
    }
}

impl HistoryStore for FileHistory {
    fn load<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Message>>> {
        self.with_file(user_key, |path, state| {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    state.clean = true;
                    return Ok(Vec::new());
                }
                Err(error) => return Err(io_error(error, "read", path)),
            };
            let decoded = decode_lines(&bytes, &path.display().to_string())?;
            state.clean = !decoded.torn && !decoded.needs_newline;
            Ok(decoded.messages)
        })
        .boxed()
    }

    fn append<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            if messages.is_empty() {
                return Ok(());
            }
            let lines = encode_lines(messages)?;
            self.with_file(user_key, move |path, state| {
                let result = append_lines(path, state.clean, lines);
                // A failed write may have left part of a line: check again next time.
                state.clean = result.is_ok();
                result
            })
            .await
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        user_key: &'a str,
        messages: &'a [Message],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move {
            let lines = encode_lines(messages)?;
            self.with_file(user_key, move |path, state| {
                state.clean = false;
                write_new(path, &lines)?;
                state.clean = true;
                Ok(())
            })
            .await
        }
        .boxed()
    }

    fn clear<'a>(&'a self, user_key: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        self.with_file(user_key, |path, state| {
            match std::fs::remove_file(path) {
                Ok(()) => sync_dir(parent(path)?)?,
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(error, "delete", path)),
            }
            state.clean = true;
            Ok(())
        })
        .boxed()
    }
}

/// Appends `lines` to the file at `path` with one write, then `fsync`s it. Unless the file
/// is known to be `clean`, first repairs what an interrupted append may have left.
fn append_lines(path: &Path, clean: bool, mut lines: Vec<u8>) -> anyhow::Result<()> {
    let mut file = match OpenOptions::new().append(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => create(path)?,
        Err(error) => return Err(io_error(error, "open", path)),
    };
    if !clean && repair(path, &file)? {
        lines.insert(0, b'\n');
    }
    file.write_all(&lines)
        .map_err(|error| io_error(error, "append to", path))?;
    file.sync_data()
        .map_err(|error| io_error(error, "flush to disk", path))
}

/// Creates the file (and its directory) durably: the new directory entries are
/// `fsync`'d too, or a crash could lose the whole file despite its own `fsync`.
fn create(path: &Path) -> anyhow::Result<File> {
    let dir = parent(path)?;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|error| io_error(error, "create", dir))?;
        if let Some(above) = dir.parent() {
            sync_dir(above)?;
        }
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|error| io_error(error, "create", path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Cuts a torn last line off the file so the next append starts on a line of its own.
/// Returns true if the last message lacks its newline (the append must add one first).
/// A damaged line in the middle is an error: appending after it would bury it.
fn repair(path: &Path, file: &File) -> anyhow::Result<bool> {
    let bytes = std::fs::read(path).map_err(|error| io_error(error, "read", path))?;
    let decoded = decode_lines(&bytes, &path.display().to_string())?;
    if decoded.good_len < bytes.len() {
        tracing::warn!(
            "{}: cutting off {} bytes after the last whole message before appending",
            path.display(),
            bytes.len() - decoded.good_len
        );
        file.set_len(decoded.good_len as u64)
            .map_err(|error| io_error(error, "truncate", path))?;
    }
    Ok(decoded.needs_newline)
}

/// Replaces the file at `path` with `bytes` atomically: a temporary file beside it,
/// `fsync`'d, then renamed over it, so a crash leaves the old or the new history, never a
/// mix.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = parent(path)?;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|error| io_error(error, "create", dir))?;
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|error| io_error(error, "create a temporary file in", dir))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_data())
        .map_err(|error| io_error(error, "write", temp.path()))?;
    temp.persist(path)
        .map_err(|error| io_error(error.error, "replace", path))?;
    sync_dir(dir)
}

/// Makes changes to `dir`'s entries (created, renamed, deleted files) durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| io_error(error, "flush to disk the directory", dir))
}

fn parent(path: &Path) -> anyhow::Result<&Path> {
    path.parent()
        .with_context(|| format!("{} has no parent directory", path.display()))
}

/// An I/O error that says which file and what to check.
fn io_error(error: std::io::Error, action: &str, path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot {action} {}: {error}; check that the state directory exists, is writable by \
         the host and its disk is not full",
        path.display()
    )
}
