//! Which files a model turn changed, for the policies' `check-changes`.
//!
//! Tools cannot be trusted to report what they touched (a `Bash` command can change
//! anything in the workspace), so after a turn in which a tool that may write ran, the
//! workspace is walked for files modified since the turn began. The walk honours
//! `.gitignore` (build outputs such as `target/` are not "changes"), skips `.git` and the
//! scratch area, never follows symlinks, and is bounded. Deleted files are not reported.

use std::path::Path;
use std::time::SystemTime;

/// Entries looked at per walk at most; a bigger workspace is reported in part.
const MAX_ENTRIES: usize = 200_000;
/// Paths reported per turn at most.
const MAX_REPORTED: usize = 1000;

/// Absolute paths of the files under `workspace` modified at or after `since`, sorted.
pub fn modified_since(workspace: &Path, since: SystemTime) -> Vec<String> {
    let walker = ignore::WalkBuilder::new(workspace)
        .hidden(false)
        .follow_links(false)
        .require_git(false)
        .filter_entry(|entry| {
            let name = entry.file_name();
            name != ".git" && name != crate::exec::scratch::SCRATCH_DIR
        })
        .build();
    let mut changed = Vec::new();
    for entry in walker.take(MAX_ENTRIES).flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let modified = entry.metadata().ok().and_then(|m| m.modified().ok());
        if modified.is_some_and(|time| time >= since) {
            changed.push(entry.path().display().to_string());
            if changed.len() >= MAX_REPORTED {
                break;
            }
        }
    }
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn finds_new_and_modified_files_but_not_ignored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
        std::fs::write(root.join("old.rs"), "old").unwrap();
        let since = SystemTime::now() + Duration::from_millis(20);
        std::thread::sleep(Duration::from_millis(40));
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/new.rs"), "new").unwrap();
        std::fs::write(root.join(".env"), "hidden files count").unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("target/out"), "ignored").unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/index"), "skipped").unwrap();
        let changed = modified_since(root, since);
        let names: Vec<String> = changed
            .iter()
            .map(|p| {
                p.strip_prefix(&root.display().to_string())
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["/.env", "/src/new.rs"]);
    }
}
