//! Saving a file the user sent into the workspace, where the model can read it:
//! `<workspace>/.agent-host/uploads/<name>`. The scratch area's `.gitignore` keeps uploads
//! out of git, so a document sent for reference never ends up in a commit.
//!
//! An upload never replaces anything: a second `report.pdf` becomes `report-2.pdf`. It is
//! written under a hidden temporary name, synced, then linked to its final name, which
//! fails rather than overwrite: a crash leaves at most a stray temporary file, never half
//! a file under the name the model is told about.

use std::io::{self, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::human_size;
use super::safe_name::numbered;
use super::scratch_dir::open_scratch_subdir;
use crate::exec::scratch::SCRATCH_DIR;

/// The largest upload accepted: 20 MB, the most a Telegram bot can download.
pub const MAX_UPLOAD_BYTES: u64 = 20 * 1024 * 1024;

/// The uploads directory inside the scratch area.
pub const UPLOADS_DIR: &str = "uploads";

/// Copies of one name tried before giving up (`report-2.pdf` ... `report-1000.pdf`).
const MAX_COPIES: u32 = 1000;

/// Numbers the temporary files of this process.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// An upload saved in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedUpload {
    /// Where it is (the workspace path as given, joined with [`SavedUpload::relative`]).
    pub path: PathBuf,
    /// Its path inside the workspace, e.g. `.agent-host/uploads/report.pdf`: what the
    /// prompt tells the model.
    pub relative: String,
    /// Its size.
    pub bytes: u64,
}

/// Why an upload was not saved.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// More than [`MAX_UPLOAD_BYTES`].
    #[error(
        "the file is {} and uploads are limited to {}: send a smaller file, or compress or split it",
        human_size(*.bytes),
        human_size(*.limit)
    )]
    TooLarge {
        /// The upload's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Every numbered copy of the name is taken.
    #[error(
        "{SCRATCH_DIR}/{UPLOADS_DIR}/ already holds {MAX_COPIES} files named like {0}: \
         ask me to clean it up, then send the file again"
    )]
    NoFreeName(String),
    /// The uploads directory cannot be used or the file cannot be written.
    #[error("cannot save the upload in the workspace: {0}")]
    Io(#[from] io::Error),
}

/// Saves `bytes` as `<workspace>/.agent-host/uploads/<requested_name, made safe>`, under
/// a numbered name when that one is taken. `workspace` is absolute.
pub fn save_upload(
    workspace: &Path,
    requested_name: &str,
    bytes: &[u8],
) -> Result<SavedUpload, UploadError> {
    let size = bytes.len() as u64;
    if size > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge {
            bytes: size,
            limit: MAX_UPLOAD_BYTES,
        });
    }
    let uploads = open_scratch_subdir(workspace, UPLOADS_DIR)?;
    let temporary = format!(
        ".partial-{}-{}",
        std::process::id(),
        TEMPORARY.fetch_add(1, Ordering::Relaxed)
    );
    let saved = write_then_link(&uploads, &temporary, requested_name, bytes);
    // Gone whether the link succeeded (the final name holds the file) or not.
    let _ = rustix::fs::unlinkat(&uploads, temporary.as_str(), AtFlags::empty());
    let name = saved?;
    let relative = format!("{SCRATCH_DIR}/{UPLOADS_DIR}/{name}");
    Ok(SavedUpload {
        path: workspace.join(&relative),
        relative,
        bytes: size,
    })
}

/// Writes the temporary file and links it to the first free numbered name; that name.
fn write_then_link(
    uploads: &OwnedFd,
    temporary: &str,
    requested_name: &str,
    bytes: &[u8],
) -> Result<String, UploadError> {
    // O_EXCL with O_CREAT never follows a symlink planted at the name.
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(uploads, temporary, flags, Mode::from_raw_mode(0o600))
        .map_err(io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    for number in 1..=MAX_COPIES {
        let name = numbered(requested_name, number);
        // linkat never replaces an existing name (or follows a symlink there): EEXIST.
        match rustix::fs::linkat(uploads, temporary, uploads, name.as_str(), AtFlags::empty()) {
            Ok(()) => return Ok(name),
            Err(Errno::EXIST) => continue,
            Err(error) => return Err(io::Error::from(error).into()),
        }
    }
    Err(UploadError::NoFreeName(numbered(requested_name, 1)))
}
