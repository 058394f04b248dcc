//! What a command may read: the trees Landlock is told to allow, found once per runner.
//!
//! Landlock can only allow, never carve a hole out of an allowed tree, so the list is
//! built from the bottom up: the system's read-only trees a coding command needs
//! ([`SYSTEM_TREES`]), a few device nodes ([`READABLE_DEVICES`]), the operator's
//! `exec_readable_paths` and `exec_writable_paths`. `/etc` is the one system tree that
//! holds secrets on ordinary machines (`shadow`, TLS and SSH private keys, database
//! passwords), readable by their owner only — which a root host's commands would be. So
//! `/etc` is granted entry by entry: a file or directory whose owner kept it from others
//! (no read bit for "other") is left out, a directory with such a file somewhere below
//! is entered and granted piece by piece, and symlinks (`/etc/resolv.conf` pointing
//! into `/run`) grant their target when that is readable by others.
//!
//! `/proc` is not here: the command gets a procfs of its own (see [`super::namespaces`]),
//! granted in the child once mounted.
//!
//! [`ReadableTrees::exposing`] answers whether a path lies beneath a granted tree: the
//! host refuses to start when its state, audit log, config or plugin cache would be
//! readable by commands.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use landlock::{PathFd, PathFdError};

/// System trees a command may read and execute beneath (those that exist).
pub const SYSTEM_TREES: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    // What tools read of /sys: CPU counts (nproc, available_parallelism), cgroup limits,
    // the allocator's huge-page settings.
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/sys/kernel/mm/transparent_hugepage",
];

/// Granted entry by entry (see the module doc).
pub const FILTERED_TREE: &str = "/etc";

/// Device nodes a command may read and write (not `/dev` as a whole: no disks, no
/// memory, no terminals of others).
pub const WRITABLE_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// Device nodes a command may read.
pub const READABLE_DEVICES: &[&str] = &["/dev/random", "/dev/urandom"];

/// Entries a walk of `/etc` may visit before it gives up and grants nothing more of it.
const MAX_FILTERED_ENTRIES: usize = 50_000;

/// One tree a command may read.
#[derive(Debug)]
pub struct Grant {
    /// The path as granted (absolute).
    pub path: PathBuf,
    /// An `O_PATH` descriptor of it, opened once and reused for every command's rules.
    pub fd: PathFd,
    /// A directory (a tree) rather than a single file.
    pub is_dir: bool,
}

/// Every tree a command may read (beside its workspace and `/proc`).
#[derive(Debug, Default)]
pub struct ReadableTrees {
    /// Read and execute beneath these.
    pub trees: Vec<Grant>,
    /// Read-only device files.
    pub devices: Vec<Grant>,
}

impl ReadableTrees {
    /// Finds the trees: the system's (those that exist), `/etc` filtered, and the
    /// operator's `extra` paths (which must exist).
    pub fn discover(extra: &[PathBuf]) -> Result<Self, String> {
        let mut trees = Vec::new();
        for path in SYSTEM_TREES {
            if let Some(grant) = open_if_exists(Path::new(path)) {
                trees.push(grant);
            }
        }
        for path in filtered_entries(Path::new(FILTERED_TREE)) {
            if let Some(grant) = open_if_exists(&path) {
                trees.push(grant);
            }
        }
        for path in extra {
            let fd = PathFd::new(path).map_err(|error| {
                format!(
                    "{} cannot be opened for commands to read: {}",
                    path.display(),
                    path_fd_error(error)
                )
            })?;
            trees.push(Grant {
                path: path.clone(),
                fd,
                is_dir: path.is_dir(),
            });
        }
        let devices = READABLE_DEVICES
            .iter()
            .filter_map(|path| open_if_exists(Path::new(path)))
            .collect();
        Ok(Self { trees, devices })
    }

    /// The granted tree `path` lies beneath (or is), if any. `path` is made absolute and
    /// canonical where it exists (its nearest existing ancestor otherwise), and so are the
    /// grants, so a symlink does not hide the overlap.
    pub fn exposing(&self, path: &Path) -> Option<&Path> {
        let path = canonical_prefix(path);
        self.trees
            .iter()
            .find(|grant| path.starts_with(canonical_prefix(&grant.path)))
            .map(|grant| grant.path.as_path())
    }
}

/// Whether `path` is a secret by its mode: nobody but its owner and group may read it.
fn hidden_from_others(metadata: &std::fs::Metadata) -> bool {
    metadata.permissions().mode() & 0o004 == 0
}

/// The pieces of `root` to grant: whole subtrees where every entry is readable by others,
/// the readable parts of subtrees that are not, and the targets of symlinks.
fn filtered_entries(root: &Path) -> Vec<PathBuf> {
    let mut granted = Vec::new();
    let mut budget = MAX_FILTERED_ENTRIES;
    if let Ok(metadata) = std::fs::symlink_metadata(root)
        && !hidden_from_others(&metadata)
    {
        collect(root, &mut granted, &mut budget);
    }
    granted
}

/// Adds `dir` whole when nothing below it is hidden or a symlink leaving it; otherwise its
/// readable children, one by one. Returns whether `dir` was granted whole.
fn collect(dir: &Path, granted: &mut Vec<PathBuf>, budget: &mut usize) -> bool {
    if subtree_is_plain(dir, dir, budget) {
        granted.push(dir.to_path_buf());
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.file_type().is_symlink() {
            if let Some(target) = readable_target(&path) {
                granted.push(target);
            }
        } else if hidden_from_others(&metadata) {
            continue;
        } else if metadata.is_dir() {
            collect(&path, granted, budget);
        } else {
            granted.push(path);
        }
    }
    false
}

/// Whether everything beneath `dir` is readable by others and every symlink in it stays
/// inside `top`.
fn subtree_is_plain(dir: &Path, top: &Path, budget: &mut usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let path = entry.path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            return false;
        };
        if metadata.file_type().is_symlink() {
            match std::fs::canonicalize(&path) {
                Ok(target) if target.starts_with(top) || in_system_tree(&target) => {}
                _ => return false,
            }
        } else if hidden_from_others(&metadata)
            || (metadata.is_dir() && !subtree_is_plain(&path, top, budget))
        {
            return false;
        }
    }
    true
}

/// A symlink's final target, when it is readable by others (a grant on the link itself
/// would not help: Landlock checks the file it resolves to).
fn readable_target(link: &Path) -> Option<PathBuf> {
    let target = std::fs::canonicalize(link).ok()?;
    let metadata = std::fs::metadata(&target).ok()?;
    (!hidden_from_others(&metadata) && !in_system_tree(&target)).then_some(target)
}

/// Whether `path` (canonical) is beneath one of [`SYSTEM_TREES`], granted anyway.
fn in_system_tree(path: &Path) -> bool {
    SYSTEM_TREES.iter().any(|tree| {
        Path::new(tree)
            .canonicalize()
            .is_ok_and(|tree| path.starts_with(tree))
    })
}

fn open_if_exists(path: &Path) -> Option<Grant> {
    PathFd::new(path).ok().map(|fd| Grant {
        path: path.to_path_buf(),
        fd,
        is_dir: path.is_dir(),
    })
}

fn path_fd_error(error: PathFdError) -> String {
    match error {
        PathFdError::OpenCall { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// `path` made absolute and canonical as far as it exists, with the rest appended.
fn canonical_prefix(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn hidden_files_and_their_directories_are_left_out() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir_all(etc.join("ssl/private")).unwrap();
        std::fs::create_dir_all(etc.join("apt")).unwrap();
        std::fs::write(etc.join("hosts"), "").unwrap();
        std::fs::write(etc.join("shadow"), "").unwrap();
        mode(&etc.join("shadow"), 0o640);
        std::fs::write(etc.join("ssl/openssl.cnf"), "").unwrap();
        std::fs::write(etc.join("ssl/private/key.pem"), "").unwrap();
        mode(&etc.join("ssl/private"), 0o700);
        std::fs::write(etc.join("apt/sources.list"), "").unwrap();
        let outside = root.path().join("outside.conf");
        std::fs::write(&outside, "").unwrap();
        symlink(&outside, etc.join("resolv.conf")).unwrap();
        symlink(etc.join("shadow"), etc.join("shadow-link")).unwrap();

        let mut granted = filtered_entries(&etc);
        granted.sort();
        let outside = outside.canonicalize().unwrap();
        let mut expected = vec![
            etc.join("apt"),
            etc.join("hosts"),
            etc.join("ssl/openssl.cnf"),
            outside,
        ];
        expected.sort();
        assert_eq!(granted, expected);
    }

    #[test]
    fn a_plain_tree_is_granted_whole() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(root.path().join("a/b/c"), "").unwrap();
        symlink("b/c", root.path().join("a/link")).unwrap();
        assert_eq!(
            filtered_entries(root.path()),
            vec![root.path().to_path_buf()]
        );
    }

    #[test]
    fn exposure_is_found_through_symlinks_and_missing_tails() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        symlink(&shared, root.path().join("alias")).unwrap();
        let trees = ReadableTrees {
            trees: vec![open_if_exists(&shared).unwrap()],
            devices: Vec::new(),
        };
        assert_eq!(
            trees.exposing(&root.path().join("alias/state/not-yet")),
            Some(shared.as_path())
        );
        assert_eq!(trees.exposing(&root.path().join("sharedx")), None);
        assert_eq!(trees.exposing(root.path()), None);
    }
}
