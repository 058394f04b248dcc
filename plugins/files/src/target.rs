//! From the path the model gave to the file that is really meant.
//!
//! The sandbox is the real boundary: the workspace is the only directory this component can
//! open, and WASI refuses `..` and symlinks that lead out of it (and every symlink with an
//! absolute target, which it will not even read). This module does the work the sandbox
//! cannot do for us:
//!
//! - it resolves the path the way the SDK does (relative paths from the workspace root) and
//!   refuses absurdly long paths with a sentence instead of a bare `ENAMETOOLONG`;
//! - it follows symlinks itself, one component at a time, so that a link leading out of the
//!   workspace is refused with a message naming the workspace root, and so that a write
//!   through a link *inside* the workspace replaces the file the link points to rather than
//!   the link itself (atomic writes rename over their target, which would otherwise turn
//!   the link into a plain file);
//! - it gives the read-before-write bookkeeping one key per file, however it was reached.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use agent_plugin_sdk::{host, paths};

use crate::direct::{Stat, Workspace};

/// Longest path accepted, in bytes (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// Longest single file or directory name accepted, in bytes (Linux's `NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;
/// Symlinks followed before giving up (Linux's `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// A file the model named, located inside the workspace.
#[derive(Debug, Clone)]
pub struct Target {
    /// The path as the model gave it, made absolute and normalised: what messages show.
    pub shown: PathBuf,
    /// The same file with every symlink resolved: what is opened, written and remembered.
    pub real: PathBuf,
}

/// Locates `input` inside the workspace, or says in words why it cannot be used.
pub fn locate(input: &str) -> Result<Target, String> {
    locate_in_workspace(input).map(|found| found.target)
}

/// What [`locate_in_workspace`] found.
pub struct Located {
    pub target: Target,
    /// The workspace directory, for further lookups.
    pub workspace: Workspace,
    /// The stat of `target.real` when resolving looked it up and found it (not a symlink,
    /// so it is also what following symlinks would report).
    pub stat: Option<Stat>,
}

/// [`locate`], also handing back the open workspace and what the last lookup found, so
/// the caller need not look the file up again.
pub fn locate_in_workspace(input: &str) -> Result<Located, String> {
    let root = host::workspace_root();
    if root.is_empty() {
        return Err("This plugin was given no workspace, so it cannot open any file.".into());
    }
    let root = PathBuf::from(root);
    let shown = paths::resolve_in(&root, input)?;
    check_length(&display(&shown))?;
    let workspace = Workspace::open(&root);
    let (real, stat) = resolve_symlinks(&workspace, &root, &shown)?;
    Ok(Located {
        target: Target { shown, real },
        workspace,
        stat,
    })
}

/// The message for an I/O error on `path`: the SDK's wording for the sandbox's refusals and
/// missing files, plain sentences for the other cases the model can fix.
pub fn io_error(error: &io::Error, path: &Path) -> String {
    let shown = path.display();
    match error.kind() {
        io::ErrorKind::NotADirectory => {
            format!("{shown} cannot be used: one of the directories on its path is a file.")
        }
        io::ErrorKind::IsADirectory => format!("{shown} is a directory, not a file."),
        io::ErrorKind::InvalidFilename => format!("{shown} is not a valid file name (too long?)."),
        io::ErrorKind::StorageFull => format!("{shown} could not be written: the disk is full."),
        io::ErrorKind::QuotaExceeded => {
            format!("{shown} could not be written: the disk quota is exceeded.")
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("{shown} could not be written: the workspace is read-only for this tool.")
        }
        _ => paths::describe_io_error(error, path),
    }
}

/// The path shown to the model, as text.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Refuses paths the file system would refuse anyway, before they reach it.
fn check_length(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "The path is too long ({} bytes; the limit is {MAX_PATH_BYTES}). It starts with {:?}. \
             Use a shorter path.",
            path.len(),
            preview(path)
        ));
    }
    if let Some(name) = path.split('/').find(|name| name.len() > MAX_NAME_BYTES) {
        return Err(format!(
            "The path has a file or directory name of {} bytes, longer than the {MAX_NAME_BYTES} \
             bytes a name may have. The name starts with {:?}. Use a shorter name.",
            name.len(),
            preview(name)
        ));
    }
    Ok(())
}

/// The first few characters of `text`, for messages about overlong input.
fn preview(text: &str) -> String {
    let head: String = text.chars().take(60).collect();
    if head.len() < text.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// One step still to take while resolving.
enum Step {
    Up,
    Name(OsString),
}

/// Steps for a relative path (or the tail of an absolute one).
fn steps_of(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::Normal(name) => Some(Step::Name(name.to_os_string())),
        Component::ParentDir => Some(Step::Up),
        Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
    })
}

/// `shown` (absolute, normalised, under `root`) with its symlinks resolved, component by
/// component like `realpath`. Components that do not exist yet are kept as they are (Write
/// may create them). A link whose target leaves the workspace is refused.
///
/// Also returns the stat of the resolved path when the last lookup was of it.
fn resolve_symlinks(
    workspace: &Workspace,
    root: &Path,
    shown: &Path,
) -> Result<(PathBuf, Option<Stat>), String> {
    let tail = shown.strip_prefix(root).unwrap_or(Path::new(""));
    let mut pending: VecDeque<Step> = steps_of(tail).collect();
    let mut current = root.to_path_buf();
    let mut hops = 0;
    // Once a component is missing, nothing below it exists either: no more lookups.
    let mut missing = false;
    // The stat of `current`, while the last lookup was of it.
    let mut last = None;
    while let Some(step) = pending.pop_front() {
        last = None;
        let name = match step {
            Step::Up => {
                if current.as_path() == root {
                    return Err(outside(shown, root));
                }
                current.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        let next = current.join(&name);
        if missing {
            current = next;
            continue;
        }
        match workspace.lstat(&next) {
            Ok(meta) if meta.is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(format!(
                        "{} could not be opened: it goes through more than {MAX_SYMLINK_HOPS} \
                         symlinks (probably a loop).",
                        shown.display()
                    ));
                }
                let link = match fs::read_link(&next) {
                    Ok(link) => link,
                    // The sandbox will not even show a target that lies outside it.
                    Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                        return Err(outside_through_hidden_link(shown, &next, root));
                    }
                    Err(error) => return Err(io_error(&error, &next)),
                };
                if link.is_absolute() {
                    let link = paths::normalize(&link);
                    let Ok(inside) = link.strip_prefix(root) else {
                        return Err(outside_through_link(shown, &next, &link, root));
                    };
                    current = root.to_path_buf();
                    for step in steps_of(inside).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(step);
                    }
                } else {
                    for step in steps_of(&link).collect::<Vec<_>>().into_iter().rev() {
                        pending.push_front(step);
                    }
                    // A relative link that climbs out of the workspace is caught by `Up`
                    // above; name the link in that message rather than the raw path.
                    if climbs_out(&current, &link, root) {
                        let target = paths::normalize(&current.join(&link));
                        return Err(outside_through_link(shown, &next, &target, root));
                    }
                }
            }
            Ok(meta) => {
                current = next;
                last = Some(meta);
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                missing = true;
                current = next;
            }
            Err(error) => return Err(io_error(&error, &next)),
        }
    }
    Ok((current, last))
}

/// True when following the relative `link` from directory `from` leaves `root`.
fn climbs_out(from: &Path, link: &Path, root: &Path) -> bool {
    let depth = from
        .strip_prefix(root)
        .map(|rest| rest.components().count())
        .unwrap_or(0);
    let mut level = depth as isize;
    for component in link.components() {
        match component {
            Component::ParentDir => level -= 1,
            Component::Normal(_) => level += 1,
            _ => {}
        }
        if level < 0 {
            return true;
        }
    }
    false
}

fn outside(shown: &Path, root: &Path) -> String {
    format!(
        "Access denied: {} is outside the workspace {root}. Only files under {root} can be read or changed.",
        shown.display(),
        root = root.display()
    )
}

/// How a refusal caused by the symlink `link` starts: the path asked for and, when it is
/// not the link itself, the link it goes through.
fn through(shown: &Path, link: &Path) -> String {
    if shown == link {
        format!("{} is a symlink", shown.display())
    } else {
        format!(
            "{} goes through {}, a symlink",
            shown.display(),
            link.display()
        )
    }
}

fn outside_through_link(shown: &Path, link: &Path, target: &Path, root: &Path) -> String {
    format!(
        "Access denied: {} to {}, which is outside the workspace {root}. Only files under {root} \
         can be read or changed.",
        through(shown, link),
        target.display(),
        root = root.display()
    )
}

/// The sandbox neither follows nor reveals absolute symlink targets, even ones inside the
/// workspace, so all we can say is that the link may lead out.
fn outside_through_hidden_link(shown: &Path, link: &Path, root: &Path) -> String {
    format!(
        "Access denied: {} with an absolute target, which the sandbox does not follow because it \
         may lead outside the workspace {root}; only relative symlinks that stay under {root} are \
         followed. If it points inside the workspace, use the path it points to instead \
         (`ls -l {}` in Bash shows it).",
        through(shown, link),
        link.display(),
        root = root.display()
    )
}
