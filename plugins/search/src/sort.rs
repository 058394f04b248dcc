//! Ordering found files newest first, the order both tools promise.
//!
//! Only the files that are reported get a `stat` (one host call each): the walkers know
//! every entry's type from the directory listing, so nothing else needs one.

use std::path::PathBuf;
use std::time::SystemTime;

/// A file to report: where it is and how it is shown.
pub struct Found {
    /// Absolute path, to stat.
    pub path: PathBuf,
    /// The text shown to the model.
    pub display: String,
}

/// Sorts `files` by modification time, newest first; ties (and files whose time cannot be
/// read, which sort last) are ordered by their displayed path so the output is stable.
pub fn newest_first(files: Vec<Found>) -> Vec<Found> {
    let mut timed: Vec<(Option<SystemTime>, Found)> = files
        .into_iter()
        .map(|found| {
            let modified = std::fs::symlink_metadata(&found.path)
                .and_then(|meta| meta.modified())
                .ok();
            (modified, found)
        })
        .collect();
    timed.sort_by(|(a_time, a), (b_time, b)| {
        // `Option`'s order puts `None` first; reversed, unknown times go last.
        b_time.cmp(a_time).then_with(|| a.display.cmp(&b.display))
    });
    timed.into_iter().map(|(_, found)| found).collect()
}
