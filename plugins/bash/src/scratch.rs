//! The workspace's scratch area, `<WS>/.agent-host/`: where this plugin keeps the files it
//! needs (the shell's working directory at exit, saved outputs). The host creates it too;
//! a `.gitignore` of `*` keeps it out of git and out of `Grep`'s default searches.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The scratch area's directory name, under the workspace root.
pub const DIR: &str = ".agent-host";

/// How many names [`create_unique`] tries before giving up.
const MAX_ATTEMPTS: u64 = 10_000;

/// `<root>/.agent-host/<sub>`, created (with the scratch area's `.gitignore`) if missing.
pub fn ensure(root: &Path, sub: &str) -> io::Result<PathBuf> {
    let area = root.join(DIR);
    let dir = area.join(sub);
    fs::create_dir_all(&dir)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(area.join(".gitignore"))
    {
        Ok(file) => write_all(file, b"*\n")?,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    Ok(dir)
}

fn write_all(mut file: File, bytes: &[u8]) -> io::Result<()> {
    io::Write::write_all(&mut file, bytes)
}

/// Creates a new, empty file `<dir>/<prefix><n><suffix>` for the first `n` from `first`
/// on whose name is free, and returns it with its path and `n`. Never reuses an existing
/// file, so concurrent calls cannot collide.
pub fn create_unique(
    dir: &Path,
    prefix: &str,
    suffix: &str,
    first: u64,
) -> io::Result<(File, PathBuf, u64)> {
    for n in first..first.saturating_add(MAX_ATTEMPTS) {
        let path = dir.join(format!("{prefix}{n}{suffix}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path, n)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other(format!(
        "no free file name {prefix}N{suffix} in {}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("agent-plugin-bash-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn ensure_creates_the_area_with_a_gitignore() {
        let root = temp_root("ensure");
        let dir = ensure(&root, "tmp").unwrap();
        assert_eq!(dir, root.join(".agent-host/tmp"));
        assert!(dir.is_dir());
        let ignore = root.join(".agent-host/.gitignore");
        assert_eq!(fs::read_to_string(&ignore).unwrap(), "*\n");
        // A second call keeps what is there.
        fs::write(&ignore, "*\n# mine\n").unwrap();
        ensure(&root, "output").unwrap();
        assert_eq!(fs::read_to_string(&ignore).unwrap(), "*\n# mine\n");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn create_unique_skips_taken_names() {
        let root = temp_root("unique");
        fs::write(root.join("bash-1.txt"), "taken").unwrap();
        let (_, path, n) = create_unique(&root, "bash-", ".txt", 1).unwrap();
        assert_eq!((path, n), (root.join("bash-2.txt"), 2));
        let (_, _, n) = create_unique(&root, "bash-", ".txt", 1).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            fs::read_to_string(root.join("bash-1.txt")).unwrap(),
            "taken"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
