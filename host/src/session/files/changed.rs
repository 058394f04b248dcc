//! Which files of the workspace were created or modified since a moment: for the files a
//! front end offers after a task ([`files_changed_since`]) and for the policies'
//! `check-changes` after a turn ([`changed_since`] with ignore files honoured).
//!
//! Tools cannot be trusted to report what they touched (a `Bash` command can change
//! anything), so the workspace is walked. The walk never follows symlinks, is bounded,
//! and skips what is never the user's work: `.git`, the scratch area, and the usual
//! build and dependency trees (`target`, `node_modules`) wherever they are. A file counts
//! as changed when its modification or creation time is at or after the moment, so a
//! file unpacked with its old modification time still shows. Deleted files are not
//! reported.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::exec::scratch::SCRATCH_DIR;

/// Directory names never walked into.
const SKIPPED: &[&str] = &[".git", SCRATCH_DIR, "target", "node_modules"];

/// Entries looked at per walk at most; a bigger workspace is reported in part.
const MAX_ENTRIES: usize = 200_000;

/// A file found changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Its path.
    pub path: PathBuf,
    /// Its path relative to the workspace, `/`-separated.
    pub relative: String,
    /// The later of its modification and creation times.
    pub changed: SystemTime,
}

/// The regular files under `workspace` created or modified at or after `since`, newest
/// first, at most `limit`, as paths relative to the workspace.
pub fn files_changed_since(workspace: &Path, since: SystemTime, limit: usize) -> Vec<String> {
    let mut changed = changed_since(workspace, since, false);
    changed.sort_by(|a, b| b.changed.cmp(&a.changed).then(a.relative.cmp(&b.relative)));
    changed
        .into_iter()
        .take(limit)
        .map(|file| file.relative)
        .collect()
}

/// The regular files under `workspace` created or modified at or after `since`, in walk
/// order. With `honour_ignore_files`, what `.gitignore` and `.ignore` files exclude is
/// left out too (build outputs are not "changes" a policy should check).
pub fn changed_since(
    workspace: &Path,
    since: SystemTime,
    honour_ignore_files: bool,
) -> Vec<ChangedFile> {
    let walker = ignore::WalkBuilder::new(workspace)
        .standard_filters(honour_ignore_files)
        .hidden(false)
        .follow_links(false)
        .require_git(false)
        .filter_entry(|entry| {
            !(entry.depth() > 0
                && entry.file_type().is_some_and(|t| t.is_dir())
                && SKIPPED.iter().any(|skipped| entry.file_name() == *skipped))
        })
        .build();
    let mut changed = Vec::new();
    for entry in walker.take(MAX_ENTRIES).flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let times = [metadata.modified().ok(), metadata.created().ok()];
        let Some(latest) = times.into_iter().flatten().max() else {
            continue;
        };
        if latest < since {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(workspace) else {
            continue;
        };
        changed.push(ChangedFile {
            relative: relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            path: entry.path().to_path_buf(),
            changed: latest,
        });
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::time::Duration;

    /// Sets `path`'s modification time `seconds` from `base`.
    fn touch(path: &Path, base: SystemTime, seconds: i64) {
        let time = if seconds >= 0 {
            base + Duration::from_secs(seconds.unsigned_abs())
        } else {
            base - Duration::from_secs(seconds.unsigned_abs())
        };
        let file = File::options().write(true).open(path).unwrap();
        file.set_times(FileTimes::new().set_modified(time)).unwrap();
    }

    fn write(root: &Path, relative: &str) -> PathBuf {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, relative).unwrap();
        path
    }

    #[test]
    fn newest_first_within_the_limit_skipping_what_is_not_work() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Creation times cannot be set: the files are all new, and `since` lies before them.
        let since = SystemTime::now() - Duration::from_secs(3600);
        let now = SystemTime::now();
        touch(&write(root, "old.txt"), now, -10);
        touch(&write(root, "src/newest.rs"), now, 30);
        touch(&write(root, ".env"), now, 20);
        for skipped in [
            ".git/index",
            ".agent-host/uploads/a.pdf",
            "target/debug/app",
            "web/node_modules/x/index.js",
        ] {
            touch(&write(root, skipped), now, 60);
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let listed = files_changed_since(root, since, 10);
        assert_eq!(listed, ["src/newest.rs", ".env", "old.txt"]);
        assert_eq!(
            files_changed_since(root, since, 2),
            ["src/newest.rs", ".env"]
        );
        // Nothing created or modified since a moment still to come.
        let later = now + Duration::from_secs(3600);
        assert!(files_changed_since(root, later, 10).is_empty());
    }

    #[test]
    fn ignore_files_are_honoured_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let since = SystemTime::now() - Duration::from_secs(3600);
        std::fs::write(root.join(".gitignore"), "out/\n").unwrap();
        write(root, "out/report.pdf");
        write(root, "main.rs");
        let relative = |files: Vec<ChangedFile>| {
            let mut names: Vec<_> = files.into_iter().map(|f| f.relative).collect();
            names.sort();
            names
        };
        assert_eq!(
            relative(changed_since(root, since, true)),
            [".gitignore", "main.rs"]
        );
        assert_eq!(
            relative(changed_since(root, since, false)),
            [".gitignore", "main.rs", "out/report.pdf"]
        );
    }
}
