//! Files between the user and the workspace, for any front end: a file the user sends is
//! saved into the scratch area ([`save_upload`]), a file of the workspace is sent back
//! ([`open_for_download`], with [`files_changed_since`] to say which ones are new), and the
//! changes are shown as a git diff ([`workspace_diff`]).
//!
//! The model controls everything inside the workspace: a command may plant a symlink where
//! the host is about to write, point a path out of the workspace, or fill `.git/config`
//! with programs for git to run. The host may run as root, so these operations never
//! trust a path they checked earlier: they hold directory handles and open each component
//! without following symlinks, and git runs only inside the confined command path.
//!
//! - [`safe_name`]: the name an upload is saved under.
//! - [`scratch_dir`]: the scratch area's subdirectories, opened by handle.
//! - [`upload`]: saving an upload, never overwriting, never half-written.
//! - [`resolve`]: opening a requested path without leaving the workspace.
//! - [`download`]: what may be sent back, and its limit.
//! - [`changed`]: which files a task created or modified.
//! - [`git`]: git run confined, with every program a repository can name neutralised.
//! - [`diff`]: the workspace's changes as a stat and a patch.

mod changed;
mod diff;
mod download;
mod git;
mod resolve;
mod safe_name;
mod scratch_dir;
mod upload;

pub use changed::{ChangedFile, changed_since, files_changed_since};
pub use diff::{DiffError, MAX_PATCH_BYTES, WorkspaceDiff, workspace_diff};
pub use download::{Download, DownloadError, MAX_DOWNLOAD_BYTES, open_for_download};
pub use upload::{MAX_UPLOAD_BYTES, SavedUpload, UPLOADS_DIR, UploadError, save_upload};

/// `bytes` for people: "20 MB", "51.2 MB", "880 bytes" (MB of 1024 × 1024 bytes, as
/// Telegram counts its limits).
fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    const KB: u64 = 1024;
    if bytes >= MB {
        let tenths = u128::from(bytes) * 10 / u128::from(MB);
        if tenths % 10 == 0 {
            format!("{} MB", tenths / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    } else if bytes >= KB {
        format!("{} KB", bytes / KB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_telegram_states_its_limits() {
        assert_eq!(human_size(20 * 1024 * 1024), "20 MB");
        assert_eq!(human_size(51 * 1024 * 1024 + 300 * 1024), "51.2 MB");
        assert_eq!(human_size(2048), "2 KB");
        assert_eq!(human_size(880), "880 bytes");
    }
}
