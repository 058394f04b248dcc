//! Ordering found files newest first, the order both tools promise.
//!
//! Only the files that are reported get a `stat` (one host call each, relative to their
//! open directory): the walk knows every entry's type from the directory listing, so
//! nothing else needs one.

use std::time::SystemTime;

use crate::walk::FileEntry;

/// A file to report.
pub struct Found {
    /// The text shown to the model.
    pub display: String,
    /// Its modification time, when it could be read.
    pub modified: Option<SystemTime>,
}

impl Found {
    /// `file`, shown as `display`, with its modification time looked up.
    pub fn new(file: &FileEntry, display: String) -> Found {
        Found {
            display,
            modified: file.dir.modified(&file.name),
        }
    }
}

/// Sorts `files` by modification time, newest first; ties (and files whose time cannot be
/// read, which sort last) are ordered by their displayed path so the output is stable.
pub fn newest_first(mut files: Vec<Found>) -> Vec<Found> {
    // `Option`'s order puts `None` first; reversed, unknown times go last.
    files.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.display.cmp(&b.display))
    });
    files
}
