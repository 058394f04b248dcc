//! The workspace's changes as git sees them (`/diff`): a stat and a patch of everything
//! that differs from the last commit — staged or not, and new files git does not track
//! yet, because those are most of what an agent writes.
//!
//! New files appear in the patch as new-file diffs without touching the repository: git
//! works on a copy of the index in the scratch area (`GIT_INDEX_FILE`) where the untracked
//! files (not ignored ones, nor repositories nested in the workspace) are added with
//! `--intent-to-add`, and any object it writes goes to a scratch
//! object directory (`GIT_OBJECT_DIRECTORY`, the real one as an alternate). The user's
//! index, objects and refs stay as they were, and one `git diff` against `HEAD` (or the
//! empty tree before the first commit) gives a stat and a patch that agree. Listing new
//! files only in the stat, or diffing each against `/dev/null` with one git per file,
//! was the alternative; the first hides the content the user most wants to see, the
//! second costs a process per file.
//!
//! Git runs only as a confined command with every repository-named program off
//! ([`super::git`]). The patch goes to a file the host created in the scratch area and
//! reads through its own handle, cut at [`MAX_PATCH_BYTES`]; the stat comes on standard
//! output.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags};

use super::git::{ConfinedGit, shell_quote};
use super::human_size;
use super::scratch_dir::open_scratch_subdir;
use crate::exec::scratch::SCRATCH_DIR;
use crate::exec::{CommandRunner, ExecError};

/// The largest patch returned: 50 MB (what a Telegram bot may send as a document); a
/// longer one is cut at a line end and marked [`WorkspaceDiff::truncated`].
pub const MAX_PATCH_BYTES: u64 = 50 * 1024 * 1024;

/// Numbers the scratch files of this process's diffs.
static DIFFS: AtomicU64 = AtomicU64::new(0);

/// The workspace's changes since the last commit. Both strings are empty when nothing
/// changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceDiff {
    /// `git diff --stat`: a line per changed file, new files included, and a total.
    pub stat: String,
    /// The unified diff, new files as new-file diffs (lossy UTF-8: a file in another
    /// encoding shows replacement characters).
    pub patch: String,
    /// The patch was longer than [`MAX_PATCH_BYTES`] and was cut.
    pub truncated: bool,
}

/// Why there is no diff.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The workspace has no repository of its own.
    #[error("your workspace is not a git repository: ask me to run git init")]
    NotARepository,
    /// No git to run.
    #[error(
        "git is not installed on this host, so there is no diff to show: ask the operator to install git"
    )]
    GitMissing,
    /// Commands are refused here (an unconfined host), or one could not start.
    #[error("{0}")]
    Exec(#[from] ExecError),
    /// Git ran too long.
    #[error("git took longer than {} s and was stopped; try again, or ask me for a smaller diff", .0.as_secs())]
    TimedOut(Duration),
    /// Git failed; its own words.
    #[error("git failed: {0}")]
    Git(String),
    /// The workspace cannot be used.
    #[error("the workspace cannot be used: {0}")]
    Workspace(io::Error),
    /// The scratch area cannot hold the patch.
    #[error("cannot prepare the diff in the workspace's scratch area: {0}")]
    Scratch(io::Error),
}

/// The changes in `workspace` since its last commit, by git run through `runner` (as a
/// confined command; blocking, up to two minutes per git command).
pub fn workspace_diff(
    runner: &CommandRunner,
    workspace: &Path,
) -> Result<WorkspaceDiff, DiffError> {
    let git = ConfinedGit::open(runner, workspace)?;
    let tmp = open_scratch_subdir(git.workspace(), "tmp").map_err(DiffError::Scratch)?;
    let id = format!(
        "diff-{}-{}",
        std::process::id(),
        DIFFS.fetch_add(1, Ordering::Relaxed)
    );
    let patch_name = format!("{id}.patch");
    let patch_file = create_new(&tmp, &patch_name).map_err(DiffError::Scratch)?;
    let scratch_tmp = git.workspace().join(SCRATCH_DIR).join("tmp");
    let result = run_diff(&git, &scratch_tmp, &id, &patch_name, patch_file);
    let _ = rustix::fs::unlinkat(&tmp, patch_name.as_str(), AtFlags::empty());
    result
}

/// Runs the diff, the patch going to `patch_name` in `scratch_tmp` (opened by the host as
/// `patch_file`) and git's scratch index and objects to `<id>.d` beside it.
fn run_diff(
    git: &ConfinedGit<'_>,
    scratch_tmp: &Path,
    id: &str,
    patch_name: &str,
    patch_file: File,
) -> Result<WorkspaceDiff, DiffError> {
    let work = scratch_tmp.join(format!("{id}.d"));
    let patch = scratch_tmp.join(patch_name);
    let quote = |path: &Path| shell_quote(&path.to_string_lossy());
    let limit = MAX_PATCH_BYTES + 1;
    let exclude = format!("':(exclude){SCRATCH_DIR}'");
    let script = format!(
        "set -u\n\
         work={work}\n\
         objects=$(g rev-parse --path-format=absolute --git-path objects) || exit 5\n\
         index=$(g rev-parse --path-format=absolute --git-path index) || exit 5\n\
         rm -rf \"$work\" && mkdir -p \"$work/objects\" || exit 5\n\
         trap 'rm -rf \"$work\"' EXIT\n\
         if [ -e \"$index\" ]; then cp \"$index\" \"$work/index\" || exit 5; fi\n\
         export GIT_INDEX_FILE=\"$work/index\" GIT_OBJECT_DIRECTORY=\"$work/objects\" \
         GIT_ALTERNATE_OBJECT_DIRECTORIES=\"$objects\"\n\
         base=$(g rev-parse -q --verify 'HEAD^{{tree}}') || \
         base=$(g hash-object -w -t tree /dev/null) || exit 5\n\
         g ls-files -z --others --exclude-standard -- . {exclude} > \"$work/untracked\" || exit 5\n\
         # Entries ending in / are repositories nested in the workspace: left out.\n\
         grep -zv '/$' \"$work/untracked\" > \"$work/new\"\n\
         if [ -s \"$work/new\" ]; then g --literal-pathspecs add --intent-to-add \
         --pathspec-from-file=\"$work/new\" --pathspec-file-nul || exit 5; fi\n\
         diff=(diff --no-ext-diff --no-textconv --no-color --ignore-submodules=all \"$base\")\n\
         paths=(-- . {exclude})\n\
         g \"${{diff[@]}}\" --stat \"${{paths[@]}}\" || exit 5\n\
         g \"${{diff[@]}}\" \"${{paths[@]}}\" | head -c {limit} > {patch}\n\
         status=(\"${{PIPESTATUS[@]}}\")\n\
         # git stopped by head's early exit (SIGPIPE, 141) has written all that is kept.\n\
         [ \"${{status[0]}}\" = 0 ] || [ \"${{status[0]}}\" = 141 ] || exit 5\n\
         [ \"${{status[1]}}\" = 0 ] || exit 5\n",
        work = quote(&work),
        patch = quote(&patch),
    );
    let output = git.run(&script)?;
    let mut stat = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.truncated {
        stat.push_str("\n(cut: the summary was longer than the command output limit)\n");
    }
    let mut bytes = Vec::new();
    patch_file
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(DiffError::Scratch)?;
    let truncated = cut_at_line(&mut bytes, MAX_PATCH_BYTES as usize);
    if truncated {
        tracing::info!(limit = %human_size(MAX_PATCH_BYTES), "workspace diff cut");
    }
    Ok(WorkspaceDiff {
        stat,
        patch: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

/// Cuts `bytes` to at most `limit`, at the end of a whole line; whether it cut.
fn cut_at_line(bytes: &mut Vec<u8>, limit: usize) -> bool {
    if bytes.len() <= limit {
        return false;
    }
    bytes.truncate(limit);
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(end);
    true
}

/// A new empty file `name` in `dir`, readable and writable, that nothing planted at the
/// name can redirect (`O_EXCL` with `O_NOFOLLOW`).
fn create_new(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::cut_at_line;

    #[test]
    fn a_long_patch_is_cut_at_a_line_end() {
        let mut patch = b"+one\n+two\n+three\n".to_vec();
        assert!(!cut_at_line(&mut patch, 17));
        assert!(cut_at_line(&mut patch, 12));
        assert_eq!(patch, b"+one\n+two\n");
        let mut one_line = b"+a very long line".to_vec();
        assert!(cut_at_line(&mut one_line, 5));
        assert!(one_line.is_empty());
    }
}
