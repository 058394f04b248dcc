//! Direct WASI 0.2 filesystem calls for the hot path of `Read`.
//!
//! `std::fs` on this target goes through wasi-libc and the preview-1 adapter: every
//! path-based call finds the preopen again, and reading a file opens a stream and reads
//! through it, several calls into the host each. Here the workspace's preopened directory
//! is fetched once per call, paths are looked up relative to it with one `stat-at` each,
//! and a file is read with one `read` per 64 KiB (a small file: one call in all).
//!
//! Errors come back as the `io::Error`s std would have produced (the adapter maps each WASI
//! 0.2 error code to the matching preview-1 errno, and std builds its errors from that), so
//! every message built from them reads exactly as before.

use std::io::{self, BufRead, Read};
use std::path::Path;

use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

/// The most bytes asked for in one read: wasmtime serves at most 64 KiB per call.
const READ_CHUNK: u64 = 64 << 10;

/// WASI's `EILSEQ`.
const EILSEQ: i32 = 25;

/// The workspace's preopened directory, through which every lookup goes.
pub struct Workspace {
    root: std::path::PathBuf,
    dir: Option<Descriptor>,
}

/// What a lookup found: the parts of a stat that the tools use.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub kind: DescriptorType,
    pub size: u64,
    /// Modification time as std reports it on this target: nanoseconds since the epoch,
    /// 0 when the file system has none.
    pub mtime_ns: u64,
}

impl Stat {
    fn of(stat: &DescriptorStat) -> Self {
        // As the preview-1 adapter converts a 0.2 datetime into the timestamp std reads.
        let mtime_ns = match stat.data_modification_timestamp {
            Some(time) => u64::from(time.nanoseconds)
                .saturating_add(time.seconds.saturating_mul(1_000_000_000)),
            None => 0,
        };
        Stat {
            kind: stat.type_,
            size: stat.size,
            mtime_ns,
        }
    }

    pub fn is_symlink(&self) -> bool {
        self.kind == DescriptorType::SymbolicLink
    }

    pub fn is_dir(&self) -> bool {
        self.kind == DescriptorType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.kind == DescriptorType::RegularFile
    }
}

impl Workspace {
    /// The preopened directory for the workspace `root` (absolute).
    pub fn open(root: &Path) -> Workspace {
        let wanted = root.to_str().unwrap_or("").trim_end_matches('/');
        let dir = get_directories()
            .into_iter()
            .find(|(_, guest_path)| guest_path.trim_end_matches('/') == wanted)
            .map(|(descriptor, _)| descriptor);
        Workspace {
            root: root.to_path_buf(),
            dir,
        }
    }

    /// The stat of `path` (absolute, normalised, under the root), not following a symlink
    /// at its end: `std::fs::symlink_metadata`.
    pub fn lstat(&self, path: &Path) -> io::Result<Stat> {
        self.stat_with(PathFlags::empty(), path)
    }

    /// The stat of `path`, following symlinks: `std::fs::metadata`.
    pub fn stat(&self, path: &Path) -> io::Result<Stat> {
        self.stat_with(PathFlags::SYMLINK_FOLLOW, path)
    }

    fn stat_with(&self, flags: PathFlags, path: &Path) -> io::Result<Stat> {
        let (dir, relative) = self.locate(path)?;
        dir.stat_at(flags, relative)
            .map(|stat| Stat::of(&stat))
            .map_err(to_io)
    }

    /// Opens the file at `path` for reading, following symlinks: `File::open`. `size` is
    /// what a stat said the file holds, a hint that saves the read that finds the end.
    pub fn open_read(&self, path: &Path, size: u64) -> io::Result<Reader> {
        let (dir, relative) = self.locate(path)?;
        let handle = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                relative,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(to_io)?;
        Ok(Reader {
            handle,
            size,
            offset: 0,
            buffer: Vec::new(),
            position: 0,
            at_end: false,
        })
    }

    /// The preopen and `path` relative to it, as wasi-libc finds them.
    fn locate<'a>(&self, path: &'a Path) -> io::Result<(&Descriptor, &'a str)> {
        let (Some(dir), Ok(relative)) = (&self.dir, path.strip_prefix(&self.root)) else {
            // What std says when no preopened directory holds the path.
            return Err(io::Error::other(format!(
                "failed to find a pre-opened file descriptor through which {path:?} could be \
                 opened"
            )));
        };
        let Some(relative) = relative.to_str() else {
            return Err(io::Error::from_raw_os_error(EILSEQ));
        };
        Ok((dir, if relative.is_empty() { "." } else { relative }))
    }
}

/// An open file read from the start in chunks of up to 64 KiB, one host call each.
pub struct Reader {
    handle: Descriptor,
    /// The size a stat reported: reads are sized to reach just past it.
    size: u64,
    /// File offset of the next read.
    offset: u64,
    buffer: Vec<u8>,
    position: usize,
    at_end: bool,
}

impl Reader {
    /// The first `n` bytes of the file (fewer if it is shorter), without consuming them.
    /// Call it before reading anything.
    pub fn peek_head(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.buffer.len() < n && !self.at_end {
            let chunk = self.read_chunk()?;
            if self.buffer.is_empty() {
                self.buffer = chunk;
            } else {
                self.buffer.extend_from_slice(&chunk);
            }
        }
        Ok(&self.buffer[..self.buffer.len().min(n)])
    }

    /// The next chunk. A read that comes back short once the size the stat reported is
    /// reached is the end of the file (a regular file only reads short at its end), which
    /// saves the call that would return nothing.
    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let remaining = self.size.saturating_sub(self.offset);
        let want = if remaining > 0 {
            (remaining + 1).min(READ_CHUNK)
        } else {
            READ_CHUNK
        };
        let (bytes, end) = self.handle.read(want, self.offset).map_err(to_io)?;
        let got = bytes.len() as u64;
        self.offset += got;
        self.at_end = end || got == 0 || (got < want && self.offset >= self.size);
        Ok(bytes)
    }
}

impl Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.buffer.len() && !self.at_end {
            self.buffer = self.read_chunk()?;
            self.position = 0;
        }
        Ok(&self.buffer[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.buffer.len());
    }
}

/// A WASI 0.2 error as the `io::Error` std would report: the preview-1 errno the adapter
/// maps it to, as a raw OS error.
pub fn to_io(code: ErrorCode) -> io::Error {
    let errno = match code {
        ErrorCode::Access => 2,
        ErrorCode::WouldBlock => 6,
        ErrorCode::Already => 7,
        ErrorCode::BadDescriptor => 8,
        ErrorCode::Busy => 10,
        ErrorCode::Deadlock => 16,
        ErrorCode::Quota => 19,
        ErrorCode::Exist => 20,
        ErrorCode::FileTooLarge => 22,
        ErrorCode::IllegalByteSequence => 25,
        ErrorCode::InProgress => 26,
        ErrorCode::Interrupted => 27,
        ErrorCode::Invalid => 28,
        ErrorCode::Io => 29,
        ErrorCode::IsDirectory => 31,
        ErrorCode::Loop => 32,
        ErrorCode::TooManyLinks => 34,
        ErrorCode::MessageSize => 35,
        ErrorCode::NameTooLong => 37,
        ErrorCode::NoDevice => 43,
        ErrorCode::NoEntry => 44,
        ErrorCode::NoLock => 46,
        ErrorCode::InsufficientMemory => 48,
        ErrorCode::InsufficientSpace => 51,
        ErrorCode::NotDirectory => 54,
        ErrorCode::NotEmpty => 55,
        ErrorCode::NotRecoverable => 56,
        ErrorCode::Unsupported => 58,
        ErrorCode::NoTty => 59,
        ErrorCode::NoSuchDevice => 60,
        ErrorCode::Overflow => 61,
        ErrorCode::NotPermitted => 63,
        ErrorCode::Pipe => 64,
        ErrorCode::ReadOnly => 69,
        ErrorCode::InvalidSeek => 70,
        ErrorCode::TextFileBusy => 74,
        ErrorCode::CrossDevice => 75,
    };
    io::Error::from_raw_os_error(errno)
}
