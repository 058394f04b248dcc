//! Opening a path the user named without leaving the workspace, whatever the model made
//! of the workspace.
//!
//! Checking a path and then opening it leaves a gap in which a command can swap a
//! component for a symlink, and `O_NOFOLLOW` guards only the last component. So the path
//! is walked one component at a time from a handle on the workspace: each component is
//! opened with `O_PATH | O_NOFOLLOW` relative to its parent's handle (`O_PATH` opens
//! nothing for reading, so a planted FIFO or device is never triggered), symlinks are read
//! and their targets walked the same way (an absolute target only if it lies inside the
//! workspace), and `..` never climbs above the workspace's handle. The file found is then
//! opened for reading relative to the same parent handle and must be the same inode; as a
//! second opinion the kernel's own idea of where the open file is (`/proc/self/fd/N`)
//! must lie inside the canonical workspace.
//!
//! Hard links are the one thing no walk can see through: a hard link inside the workspace
//! is a file of the workspace. Commands cannot make one to a file they may not read
//! (Landlock's refer right, `protected_hardlinks`), so this gives away nothing.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::download::DownloadError;

/// Symlinks followed in one walk at most (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// A regular file found inside the workspace, open for reading.
#[derive(Debug)]
pub struct Opened {
    /// The file.
    pub file: File,
    /// Its path inside the workspace, symlinks resolved, `/`-separated.
    pub relative: String,
    /// Its name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// Opens `requested` (relative to `workspace` or absolute inside it) if it is a regular
/// file inside the workspace once every symlink is resolved.
pub fn open_beneath(workspace: &Path, requested: &str) -> Result<Opened, DownloadError> {
    Walk::start(workspace, requested)?.run()
}

/// One step of a path.
enum Step {
    /// `..`
    Up,
    /// A name to go down to.
    Down(OsString),
}

/// The state of one walk.
struct Walk<'a> {
    requested: &'a str,
    /// The workspace as given and canonical: absolute paths may start with either.
    workspace: &'a Path,
    canonical: PathBuf,
    root: OwnedFd,
    /// The directories walked into below the root, with their names.
    dirs: Vec<(OwnedFd, OsString)>,
    pending: VecDeque<Step>,
    symlinks: usize,
}

impl<'a> Walk<'a> {
    fn start(workspace: &'a Path, requested: &'a str) -> Result<Self, DownloadError> {
        let invalid = |reason| DownloadError::Invalid {
            requested: requested.to_string(),
            reason,
        };
        if requested.trim().is_empty() {
            return Err(invalid(
                "it is empty; give a path relative to your workspace",
            ));
        }
        if requested.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        let io = |error| DownloadError::Io {
            requested: requested.to_string(),
            error,
        };
        let canonical = workspace.canonicalize().map_err(io)?;
        let root = rustix::fs::open(
            &canonical,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|error| io(error.into()))?;
        let mut walk = Self {
            requested,
            workspace,
            canonical,
            root,
            dirs: Vec::new(),
            pending: VecDeque::new(),
            symlinks: 0,
        };
        let path = Path::new(requested);
        let relative = if path.is_absolute() {
            walk.inside(path)
                .ok_or_else(|| walk.outside(String::new()))?
        } else {
            path
        };
        walk.pending = steps(relative).collect();
        Ok(walk)
    }

    fn run(mut self) -> Result<Opened, DownloadError> {
        while let Some(step) = self.pending.pop_front() {
            let name = match step {
                Step::Up => {
                    if self.dirs.pop().is_none() {
                        return Err(self.outside(String::new()));
                    }
                    continue;
                }
                Step::Down(name) => name,
            };
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let handle = rustix::fs::openat(self.parent(), name.as_os_str(), flags, Mode::empty())
                .map_err(|error| self.open_error(error))?;
            let stat = rustix::fs::fstat(&handle).map_err(|error| self.io(error.into()))?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => self.follow(&name)?,
                FileType::Directory if self.pending.is_empty() => {
                    return Err(DownloadError::IsADirectory {
                        requested: self.requested.to_string(),
                    });
                }
                FileType::Directory => self.dirs.push((handle, name)),
                // `file/more`: there is no such path.
                FileType::RegularFile if !self.pending.is_empty() => {
                    return Err(self.not_found());
                }
                FileType::RegularFile => return self.open_file(&name, &stat),
                other => {
                    return Err(DownloadError::NotAFile {
                        requested: self.requested.to_string(),
                        kind: kind_name(other),
                    });
                }
            }
        }
        // The path named the workspace itself, or ended in `..`.
        Err(DownloadError::IsADirectory {
            requested: self.requested.to_string(),
        })
    }

    /// Continues the walk through the symlink `name` of the current directory.
    fn follow(&mut self, name: &OsStr) -> Result<(), DownloadError> {
        self.symlinks += 1;
        if self.symlinks > MAX_SYMLINKS {
            return Err(self.io(Errno::LOOP.into()));
        }
        let target = rustix::fs::readlinkat(self.parent(), name, Vec::new())
            .map_err(|error| self.open_error(error))?;
        let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
        let rest: Vec<Step> = if target.is_absolute() {
            let Some(inside) = self.inside(&target) else {
                let link = self.relative_of(name);
                return Err(self.outside(format!(
                    ", through the symlink {link} -> {}",
                    target.display()
                )));
            };
            let rest = steps(inside).collect();
            self.dirs.clear();
            rest
        } else {
            steps(&target).collect()
        };
        for step in rest.into_iter().rev() {
            self.pending.push_front(step);
        }
        Ok(())
    }

    /// Opens the regular file `name` of the current directory for reading, and makes sure
    /// it is the one that was walked to and that it lies inside the workspace.
    fn open_file(self, name: &OsStr, walked: &Stat) -> Result<Opened, DownloadError> {
        // O_NONBLOCK: should a FIFO be swapped in after the walk, the open does not hang
        // (and the inode check below refuses it).
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(self.parent(), name, flags, Mode::empty())
            .map_err(|error| self.open_error(error))?;
        let stat = rustix::fs::fstat(&fd).map_err(|error| self.io(error.into()))?;
        if (stat.st_dev, stat.st_ino) != (walked.st_dev, walked.st_ino) {
            return Err(self.io(std::io::Error::other(
                "it was replaced while it was being opened; try again",
            )));
        }
        let file = File::from(fd);
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|error| self.io(error))?;
        if !real.starts_with(&self.canonical) {
            return Err(self.outside(format!(", it is really {}", real.display())));
        }
        Ok(Opened {
            file,
            relative: self.relative_of(name),
            name: name.to_string_lossy().into_owned(),
            bytes: u64::try_from(stat.st_size).unwrap_or(0),
        })
    }

    /// The directory the walk is in.
    fn parent(&self) -> BorrowedFd<'_> {
        self.dirs
            .last()
            .map_or(self.root.as_fd(), |(fd, _)| fd.as_fd())
    }

    /// `path` (absolute) relative to the workspace, if it lies inside it.
    fn inside<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(&self.canonical)
            .or_else(|_| path.strip_prefix(self.workspace))
            .ok()
    }

    /// The path of `name` in the current directory, relative to the workspace.
    fn relative_of(&self, name: &OsStr) -> String {
        let mut parts: Vec<_> = self
            .dirs
            .iter()
            .map(|(_, dir)| dir.to_string_lossy())
            .collect();
        parts.push(name.to_string_lossy());
        parts.join("/")
    }

    fn open_error(&self, error: Errno) -> DownloadError {
        match error {
            Errno::NOENT => self.not_found(),
            other => self.io(other.into()),
        }
    }

    fn not_found(&self) -> DownloadError {
        DownloadError::NotFound {
            requested: self.requested.to_string(),
        }
    }

    fn outside(&self, how: String) -> DownloadError {
        DownloadError::Outside {
            requested: self.requested.to_string(),
            workspace: self.workspace.display().to_string(),
            how,
        }
    }

    fn io(&self, error: std::io::Error) -> DownloadError {
        DownloadError::Io {
            requested: self.requested.to_string(),
            error,
        }
    }
}

/// The steps of `path`, in order (`.` and a leading `/` dropped).
fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|component| match component {
        Component::ParentDir => Some(Step::Up),
        Component::Normal(name) => Some(Step::Down(name.to_os_string())),
        Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
    })
}

/// What a file that is not regular is, in words.
fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "named pipe",
        FileType::Socket => "socket",
        FileType::CharacterDevice | FileType::BlockDevice => "device",
        _ => "special file",
    }
}
