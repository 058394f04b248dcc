//! Which files a model turn changed, for the policies' `check-changes`.
//!
//! Tools cannot be trusted to report what they touched (a `Bash` command can change
//! anything in the workspace), so after a turn in which a tool that may write ran, the
//! workspace is walked ([`crate::session::files::changed_since`], the same walk that
//! lists a task's files for the user) for files created or modified since the turn began,
//! honouring `.gitignore` (build outputs are not "changes").

use std::path::Path;
use std::time::SystemTime;

use crate::session::files::changed_since;

/// Paths reported per turn at most.
const MAX_REPORTED: usize = 1000;

/// Absolute paths of the files under `workspace` created or modified at or after `since`,
/// sorted.
pub fn modified_since(workspace: &Path, since: SystemTime) -> Vec<String> {
    let mut changed: Vec<String> = changed_since(workspace, since, true)
        .into_iter()
        .map(|file| file.path.display().to_string())
        .collect();
    changed.sort();
    changed.truncate(MAX_REPORTED);
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
