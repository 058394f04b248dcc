//! The workspace's scratch area, `<workspace>/.agent-host/`: the command's `HOME` and
//! `TMPDIR`, and where tools keep big outputs. It lives inside the workspace so the file
//! tools can read what a command left there, and it holds a `.gitignore` of `*` so git
//! (and Grep, which honours ignore files) leave it alone.

use std::io;
use std::path::{Path, PathBuf};

/// The scratch directory's name inside a workspace.
pub const SCRATCH_DIR: &str = ".agent-host";

/// The scratch area of one workspace.
#[derive(Debug, Clone)]
pub struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// The scratch area of `workspace` (not created yet).
    pub fn for_workspace(workspace: &Path) -> Self {
        Self {
            root: workspace.join(SCRATCH_DIR),
        }
    }

    /// The command's `HOME`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The command's `TMPDIR`.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Creates the area if needed. A symlink in its place is refused: it could point
    /// the command's `HOME` outside the workspace.
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [&self.root, &self.home(), &self.tmp()] {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a directory; remove it so the host can make the scratch area",
                        dir.display()
                    )));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(dir)?;
                }
                Err(error) => return Err(error),
            }
        }
        // create_new never follows a symlink planted in its place.
        let ignore = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.root.join(".gitignore"));
        match ignore {
            Ok(mut file) => io::Write::write_all(&mut file, b"*\n"),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    }
}
