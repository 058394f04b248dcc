//! Tool inputs as workspace-relative paths, the way the rules see them.

use std::path::{Component, Path, PathBuf};

use agent_plugin_sdk::paths::normalize;

/// The most symlinks followed while resolving one path (as Linux's `ELOOP` limit).
const MAX_SYMLINKS: usize = 40;

/// The forms of one tool input path the rules are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The path relative to the workspace root after lexical normalisation (`.`, `..`),
    /// components joined by `/`; empty for the root itself.
    pub lexical: String,
    /// Where symlinks on the way lead, when that is elsewhere in the workspace.
    pub resolved: Option<String>,
}

impl Target {
    /// Both forms, the lexical one first.
    pub fn forms(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.lexical.as_str()).chain(self.resolved.as_deref())
    }

    /// The path for messages: `a/b`, `link (a symlink to a/b)`, or `the workspace root`.
    pub fn show(&self, form: &str) -> String {
        let name = |path: &str| {
            if path.is_empty() {
                "the workspace root".to_string()
            } else {
                path.to_string()
            }
        };
        match &self.resolved {
            Some(resolved) if resolved == form => {
                format!("{} (a symlink to {})", name(&self.lexical), name(resolved))
            }
            _ => name(form),
        }
    }
}

/// `input` (absolute, or relative to `root`) as a [`Target`], or `None` when it is outside
/// the workspace (the tools refuse such paths themselves).
pub fn target(root: &Path, input: &str) -> Option<Target> {
    let joined = if Path::new(input).is_absolute() {
        PathBuf::from(input)
    } else {
        root.join(input)
    };
    let normal = normalize(&joined);
    let lexical = relative(root, &normal)?;
    let resolved = resolve_symlinks(root, &normal)
        .and_then(|path| relative(root, &path))
        .filter(|resolved| *resolved != lexical);
    Some(Target { lexical, resolved })
}

/// `path` relative to `root` as `/`-joined components, or `None` when outside it.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rest
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// One path component still to walk.
enum Part {
    Root,
    Parent,
    Name(std::ffi::OsString),
}

/// `path`'s components, for [`resolve_symlinks`] (pushed in reverse, popped in order).
fn push_parts(pending: &mut Vec<Part>, path: &Path) {
    let parts: Vec<Part> = path
        .components()
        .filter_map(|component| match component {
            Component::RootDir => Some(Part::Root),
            Component::ParentDir => Some(Part::Parent),
            Component::Normal(name) => Some(Part::Name(name.to_os_string())),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// `path` with every symlink on the way followed (lexically normalised), as far as the
/// sandbox lets this plugin look; `None` on a symlink loop. Components that do not exist
/// are taken as they are (a file about to be created).
fn resolve_symlinks(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending = Vec::new();
    push_parts(&mut pending, path);
    let mut resolved = PathBuf::from("/");
    let mut followed = 0;
    while let Some(part) = pending.pop() {
        match part {
            Part::Root => resolved = PathBuf::from("/"),
            Part::Parent => {
                resolved.pop();
            }
            Part::Name(name) => {
                let next = resolved.join(&name);
                // Only look inside the workspace: elsewhere the sandbox refuses anyway. The
                // root itself is where the rules start, whatever it may be a link to.
                let is_link = next.starts_with(root)
                    && next != root
                    && std::fs::symlink_metadata(&next)
                        .is_ok_and(|meta| meta.file_type().is_symlink());
                match is_link.then(|| std::fs::read_link(&next).ok()).flatten() {
                    Some(link) => {
                        followed += 1;
                        if followed > MAX_SYMLINKS {
                            return None;
                        }
                        // A relative link is read from the link's directory.
                        push_parts(&mut pending, &link);
                    }
                    None => resolved = next,
                }
            }
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical(input: &str) -> Option<String> {
        target(Path::new("/nonexistent-ws"), input).map(|t| t.lexical)
    }

    #[test]
    fn paths_are_made_relative_and_normalised() {
        assert_eq!(lexical("/nonexistent-ws/.env").as_deref(), Some(".env"));
        assert_eq!(lexical("/nonexistent-ws/./.env").as_deref(), Some(".env"));
        assert_eq!(
            lexical("/nonexistent-ws/src/../.env").as_deref(),
            Some(".env")
        );
        assert_eq!(lexical("src/../.env").as_deref(), Some(".env"));
        assert_eq!(lexical("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(lexical("/nonexistent-ws").as_deref(), Some(""));
        assert_eq!(lexical("/etc/passwd"), None);
        assert_eq!(lexical("../x"), None);
        assert_eq!(lexical("/nonexistent-wsx/a"), None);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_in_the_workspace_are_followed() {
        let dir = std::env::temp_dir().join(format!("policy-files-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let root = dir.canonicalize().unwrap();
        std::os::unix::fs::symlink(".env", root.join("innocent.txt")).unwrap();
        std::os::unix::fs::symlink("../.git", root.join("sub/g")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let t = target(&root, "innocent.txt").unwrap();
        assert_eq!(t.lexical, "innocent.txt");
        assert_eq!(t.resolved.as_deref(), Some(".env"));
        assert_eq!(t.show(".env"), "innocent.txt (a symlink to .env)");
        let t = target(&root, "sub/g/config").unwrap();
        assert_eq!(t.resolved.as_deref(), Some(".git/config"));
        assert_eq!(target(&root, "loop").unwrap().resolved, None);
        assert_eq!(target(&root, "etc/passwd").unwrap().resolved, None);
        assert_eq!(target(&root, "plain/new.txt").unwrap().resolved, None);
        // A workspace reached through a symlink: the links inside it still count.
        let linked_root = dir.with_extension("link");
        let _ = std::fs::remove_file(&linked_root);
        std::os::unix::fs::symlink(&root, &linked_root).unwrap();
        let t = target(&linked_root, "innocent.txt").unwrap();
        assert_eq!(t.resolved.as_deref(), Some(".env"));
        let _ = std::fs::remove_file(&linked_root);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
