//! Paths inside the workspace, and errors about them that the model can act on.
//!
//! The sandbox is what keeps a plugin inside the workspace: the workspace is the only
//! directory the component can open, and WASI refuses `..` and symlinks that lead out of
//! it. The functions here only turn inputs into absolute workspace paths and turn the
//! sandbox's terse refusals into sentences that name the workspace root.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::host::workspace_root;

/// `path` made absolute (relative paths are taken from the workspace root) and lexically
/// normalised (`.` dropped, `..` applied). Refuses paths that leave the workspace, naming
/// it, before the sandbox has to.
pub fn resolve(path: &str) -> Result<PathBuf, String> {
    let root = workspace_root();
    resolve_in(Path::new(&root), path)
}

/// [`resolve`] against an explicit workspace root.
pub fn resolve_in(root: &Path, path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("The path is empty: give an absolute path inside the workspace.".into());
    }
    if path.contains('\0') {
        return Err("The path contains a NUL character, which no file name can hold.".into());
    }
    let joined = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        root.join(path)
    };
    let normal = normalize(&joined);
    if !normal.starts_with(root) {
        return Err(outside_message(path, root));
    }
    Ok(normal)
}

/// Lexical normalisation: drops `.`, applies `..` (never above `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` relative to `base` when under it, else unchanged.
pub fn relative_to<'a>(path: &'a Path, base: &Path) -> &'a Path {
    path.strip_prefix(base).unwrap_or(path)
}

fn outside_message(path: &str, root: &Path) -> String {
    format!(
        "Access denied: {path} is outside the workspace {root}. Only files under {root} can be read or changed.",
        root = root.display()
    )
}

/// The message for an I/O error on `path`: the sandbox's refusals are explained in terms
/// of the workspace root, other errors keep the system's wording.
pub fn describe_io_error(error: &io::Error, path: &Path) -> String {
    let root = workspace_root();
    match error.kind() {
        io::ErrorKind::NotFound => {
            format!("File does not exist. Note: your current working directory is {root}.")
        }
        io::ErrorKind::PermissionDenied => format!(
            "Access denied: {path} could not be opened because it leads outside the workspace {root} \
             (for example through a symlink or `..`) or its permissions forbid it. The sandbox only \
             allows files under {root}.",
            path = path.display()
        ),
        _ if error.raw_os_error() == Some(76) => format!(
            // ENOTCAPABLE: the path is not under any directory the sandbox opened.
            "Access denied: {path} is outside the workspace {root}.",
            path = path.display()
        ),
        _ => format!("{path}: {error}", path = path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_root() {
        let root = Path::new("/ws");
        assert_eq!(
            resolve_in(root, "a/b.txt").unwrap(),
            PathBuf::from("/ws/a/b.txt")
        );
        assert_eq!(
            resolve_in(root, "/ws/./a/../b").unwrap(),
            PathBuf::from("/ws/b")
        );
    }

    #[test]
    fn escapes_are_refused_with_the_root_named() {
        let root = Path::new("/ws");
        for bad in ["../x", "/etc/passwd", "/ws/../etc", "/wsx/file"] {
            let message = resolve_in(root, bad).unwrap_err();
            assert!(
                message.contains("outside the workspace /ws"),
                "{bad}: {message}"
            );
        }
    }
}
