//! Direct WASI 0.2 filesystem access for the hot paths: listing directories and reading
//! files with as few host calls as possible.
//!
//! Every filesystem call leaves the component, so the call count decides how fast a search
//! over thousands of files is. Going through `std::fs` costs several calls per file (the
//! preview-1 adapter under std opens a stream, reads through it, stats each directory
//! entry for its inode, resolves every path from the root). Here a directory is listed with
//! one call per entry, files are opened relative to their already-open directory, and a
//! small file is read with a single call. The sandbox is unchanged: every handle descends
//! from the workspace's preopened directory, and the host refuses anything that leaves it.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

/// The most bytes asked for in one read. wasmtime serves at most 64 KiB per call.
const READ_CHUNK: usize = 64 << 10;

/// What a directory entry is, from the listing alone (no `stat`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One directory entry.
pub struct Entry {
    pub name: String,
    pub kind: Kind,
}

/// An open directory.
pub struct Dir {
    handle: Descriptor,
}

impl Dir {
    /// Opens the directory at `path` (absolute, inside the workspace `root`), following
    /// symlinks inside the workspace as `rg` does for the paths it is given.
    pub fn open(root: &Path, path: &Path) -> io::Result<Dir> {
        let (preopen, relative) = locate(root, path)?;
        if relative.is_empty() {
            return Ok(Dir { handle: preopen });
        }
        let handle = preopen
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                &relative,
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ,
            )
            .map_err(to_io)?;
        Ok(Dir { handle })
    }

    /// Opens the subdirectory `name` (never through a symlink).
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        let handle = self
            .handle
            .open_at(
                PathFlags::empty(),
                name,
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ,
            )
            .map_err(to_io)?;
        Ok(Dir { handle })
    }

    /// The entries of this directory, sorted by name (byte order, as ripgrep's
    /// `--sort path`).
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let stream = self.handle.read_directory().map_err(to_io)?;
        let mut entries = Vec::new();
        let mut failures = 0;
        loop {
            let entry = match stream.read_directory_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                // One unlistable entry (a name that is not UTF-8, say) must not hide the
                // rest; the host reports each such entry once and moves on.
                Err(_) if failures < 1000 => {
                    failures += 1;
                    continue;
                }
                Err(error) => return Err(to_io(error)),
            };
            let kind = match entry.type_ {
                DescriptorType::RegularFile => Kind::File,
                DescriptorType::Directory => Kind::Dir,
                DescriptorType::SymbolicLink => Kind::Symlink,
                _ => Kind::Other,
            };
            entries.push(Entry {
                name: entry.name,
                kind,
            });
        }
        entries.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(entries)
    }

    /// Opens the file at `path` relative to this directory (`path` may have several
    /// components; the last is not followed if it is a symlink).
    pub fn open_file(&self, path: &str) -> io::Result<File> {
        let handle = self
            .handle
            .open_at(
                PathFlags::empty(),
                path,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(to_io)?;
        Ok(File::new(handle))
    }

    /// Opens the file at `path` relative to this directory, following a symlink (inside
    /// the workspace: the sandbox refuses any other).
    pub fn open_file_following(&self, path: &str) -> io::Result<File> {
        let handle = self
            .handle
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                path,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(to_io)?;
        Ok(File::new(handle))
    }

    /// Whether something named `path` exists here (a symlink counts, as `.git` files do).
    pub fn exists(&self, path: &str) -> bool {
        self.handle.stat_at(PathFlags::empty(), path).is_ok()
    }

    /// The modification time of the entry `name`.
    pub fn modified(&self, name: &str) -> Option<SystemTime> {
        self.handle
            .stat_at(PathFlags::empty(), name)
            .ok()
            .and_then(|stat| modified(&stat))
    }

    /// The whole contents of the small file `path` here, or `None` when it cannot be read
    /// (ignore files: a missing one is the normal case).
    pub fn read_small(&self, path: &str) -> Option<Vec<u8>> {
        let mut file = self.open_file(path).ok()?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        Some(bytes)
    }
}

/// An open file read from the start in large chunks.
///
/// Reads are buffered: whatever size the caller asks for, the host is asked for a full
/// chunk, so small reads (the 3 bytes a BOM check peeks) cost no extra call. A chunk that
/// comes back short of what was asked, by a length that is not a multiple of 4 KiB, is the
/// end of the file (a host that caps reads does so at page multiples, and a regular file
/// is only read short at its end), which saves the extra call that would find the end.
pub struct File {
    handle: Descriptor,
    offset: u64,
    buffer: Vec<u8>,
    position: usize,
    at_end: bool,
}

impl File {
    fn new(handle: Descriptor) -> File {
        File {
            handle,
            offset: 0,
            buffer: Vec::new(),
            position: 0,
            at_end: false,
        }
    }

    /// Reads from the start until the end of the file or until at least `limit` bytes are
    /// in hand, and returns them with whether the end was reached. Call it before any
    /// `read`; reading on (with `io::Read`) continues where it stopped.
    pub fn read_head(&mut self, limit: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut head = Vec::new();
        while !self.at_end && head.len() < limit {
            self.refill()?;
            let chunk = std::mem::take(&mut self.buffer);
            if head.is_empty() {
                head = chunk;
            } else {
                head.extend_from_slice(&chunk);
            }
        }
        self.position = 0;
        Ok((head, self.at_end))
    }

    fn refill(&mut self) -> io::Result<()> {
        let (bytes, end) = self
            .handle
            .read(READ_CHUNK as u64, self.offset)
            .map_err(to_io)?;
        let short = bytes.len() < READ_CHUNK && bytes.len() % 4096 != 0;
        self.at_end = end || bytes.is_empty() || short;
        self.offset += bytes.len() as u64;
        self.buffer = bytes;
        self.position = 0;
        Ok(())
    }
}

impl io::Read for File {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.position == self.buffer.len() {
            if self.at_end {
                return Ok(0);
            }
            self.refill()?;
        }
        let available = &self.buffer[self.position..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}

/// The preopened workspace directory and `path` relative to it.
fn locate(root: &Path, path: &Path) -> io::Result<(Descriptor, String)> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| io::Error::from(io::ErrorKind::PermissionDenied))?;
    let root_text = root.to_string_lossy();
    let preopen = get_directories()
        .into_iter()
        .find(|(_, guest_path)| guest_path.trim_end_matches('/') == root_text.trim_end_matches('/'))
        .map(|(descriptor, _)| descriptor)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the workspace is not opened",
            )
        })?;
    let relative = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    Ok((preopen, relative))
}

/// The modification time in a stat result.
fn modified(stat: &DescriptorStat) -> Option<SystemTime> {
    let time = stat.data_modification_timestamp?;
    UNIX_EPOCH.checked_add(Duration::new(time.seconds, time.nanoseconds))
}

/// A WASI error as an `io::Error` of the matching kind, so messages read like std's.
fn to_io(code: ErrorCode) -> io::Error {
    let kind = match code {
        ErrorCode::NoEntry => io::ErrorKind::NotFound,
        ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied,
        ErrorCode::NotDirectory => io::ErrorKind::NotADirectory,
        ErrorCode::IsDirectory => io::ErrorKind::IsADirectory,
        ErrorCode::InsufficientMemory => io::ErrorKind::OutOfMemory,
        ErrorCode::Interrupted => io::ErrorKind::Interrupted,
        ErrorCode::Invalid => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, code.message())
}
