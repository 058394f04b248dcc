//! The scratch area's subdirectories (`<workspace>/.agent-host/uploads/`, `.../tmp/`),
//! opened by handle for the host's own writes there.
//!
//! Commands run as the host's user and may replace anything in the workspace at any time,
//! so a path checked and then written to could be swapped for a symlink in between, and
//! a host running as root would follow it anywhere. Here every component below the
//! workspace is opened with `O_NOFOLLOW` relative to its parent's handle, and the caller
//! creates its files relative to the handle returned: nothing planted can redirect them.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::exec::scratch::{SCRATCH_DIR, Scratch};

/// A handle on `<workspace>/.agent-host/<sub>`, made if missing. A symlink (or anything
/// but a directory) in place of the scratch area or of `sub` is refused with an error
/// that says to remove it.
pub fn open_scratch_subdir(workspace: &Path, sub: &str) -> io::Result<OwnedFd> {
    Scratch::for_workspace(workspace).ensure()?;
    let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    // The workspace's own path is the host's choice: following a symlink in it is fine.
    let root = rustix::fs::open(workspace, directory, Mode::empty())?;
    let scratch = open_below(&root, SCRATCH_DIR, workspace)?;
    match rustix::fs::mkdirat(&scratch, sub, Mode::from_raw_mode(0o777)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(error) => return Err(error.into()),
    }
    open_below(&scratch, sub, &workspace.join(SCRATCH_DIR))
}

/// Opens the directory `name` inside `parent` (at `parent_path`, for messages) without
/// following a symlink.
fn open_below(parent: &OwnedFd, name: &str, parent_path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(|error| match error {
        // ELOOP: a symlink; ENOTDIR: a file or a symlink (O_DIRECTORY is checked first).
        Errno::LOOP | Errno::NOTDIR => io::Error::other(format!(
            "{} is a symlink or not a directory; remove it so the host can use it",
            parent_path.join(name).display()
        )),
        other => other.into(),
    })
}
