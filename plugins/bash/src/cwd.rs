//! The shell's working directory, kept across the calls of one session.
//!
//! Every call is a fresh `bash -c`, so the directory a `cd` leads to is remembered in
//! session state (key `cwd`) and handed to the next command. It must stay inside the
//! workspace: a stored directory that is gone or outside it, or a command that ends
//! outside it (`cd /`), puts the shell back at the workspace root, and the model is told.

use std::fs;
use std::path::{Path, PathBuf};

use agent_plugin_sdk::{host, paths, state};

/// The session-state key holding the working directory (a JSON string).
const KEY: &str = "cwd";

/// Where the next command starts.
pub struct Start {
    /// The directory, inside the workspace.
    pub dir: PathBuf,
    /// True when the remembered directory could not be used and `dir` is the root.
    pub reset: bool,
}

/// The directory the next command starts in: the remembered one when it is still a
/// directory inside the workspace, else the workspace root.
pub fn start(root: &Path) -> Start {
    match state::get::<String>(KEY) {
        None => Start {
            dir: root.to_path_buf(),
            reset: false,
        },
        Some(stored) => {
            let dir = PathBuf::from(&stored);
            if inside(root, &dir) && is_dir(&dir) {
                Start { dir, reset: false }
            } else {
                host::debug(&format!("stored cwd {stored} is unusable; using the root"));
                state::delete(KEY);
                Start {
                    dir: root.to_path_buf(),
                    reset: true,
                }
            }
        }
    }
}

/// Whether `dir` is a directory the sandbox lets this component see, so one inside the
/// workspace (symlinks leading out are refused).
fn is_dir(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|meta| meta.is_dir())
}

/// What the shell's final directory means for the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Keep the directory the command started in (the shell reported none).
    Stay,
    /// Move to this directory, inside the workspace.
    Move(PathBuf),
    /// The shell ended outside the workspace: back to the root.
    Reset,
}

/// Decides where the next call starts from the directory the shell `reported` at exit.
pub fn after(root: &Path, reported: Option<&str>) -> After {
    let Some(reported) = reported else {
        return After::Stay;
    };
    let dir = paths::normalize(Path::new(reported));
    if inside(root, &dir) {
        After::Move(dir)
    } else {
        After::Reset
    }
}

/// Remembers `after` for the next call of this session.
pub fn remember(after: &After) {
    match after {
        After::Stay => {}
        After::Move(dir) => {
            if let Err(error) = state::set(KEY, &dir.to_string_lossy()) {
                host::warn(&format!(
                    "could not remember cwd {}: {error}",
                    dir.display()
                ));
            }
        }
        After::Reset => state::delete(KEY),
    }
}

/// Whether the absolute path `dir` is the workspace root or under it, lexically.
pub fn inside(root: &Path, dir: &Path) -> bool {
    dir.is_absolute() && paths::normalize(dir).starts_with(root)
}

/// The line telling the model its shell is back at the root.
pub fn reset_note(root: &Path) -> String {
    format!("Shell cwd was reset to {}", root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_is_the_root_or_below() {
        let root = Path::new("/ws");
        assert!(inside(root, Path::new("/ws")));
        assert!(inside(root, Path::new("/ws/src/a")));
        assert!(inside(root, Path::new("/ws/src/../b")));
        assert!(!inside(root, Path::new("/")));
        assert!(!inside(root, Path::new("/wsx")));
        assert!(!inside(root, Path::new("/ws/../etc")));
        assert!(!inside(root, Path::new("ws/src")));
    }

    #[test]
    fn after_moves_stays_or_resets() {
        let root = Path::new("/ws");
        assert_eq!(after(root, None), After::Stay);
        assert_eq!(
            after(root, Some("/ws/src")),
            After::Move(PathBuf::from("/ws/src"))
        );
        assert_eq!(after(root, Some("/ws")), After::Move(PathBuf::from("/ws")));
        assert_eq!(after(root, Some("/")), After::Reset);
        assert_eq!(after(root, Some("/tmp")), After::Reset);
        assert_eq!(after(root, Some("relative")), After::Reset);
    }

    #[test]
    fn the_reset_note_names_the_root() {
        assert_eq!(reset_note(Path::new("/ws")), "Shell cwd was reset to /ws");
    }
}
