//! Atomic file replacement: write a temporary file beside the target, then rename it over.
//!
//! A rename within one directory is atomic, so readers (and a crash at any moment) see the
//! old file or the new one, never half of either. The temporary file is removed on every
//! failure path, so an error never leaves litter in the user's workspace.
//!
//! WASI 0.2 has no `chmod`: the new file gets the default mode, so an executable bit on the
//! old file is not carried over.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Attempts at finding a free temporary name before giving up.
const NAME_ATTEMPTS: usize = 16;
/// Bytes of the target's name reused in the temporary name (which must stay under 255).
const NAME_STEM_BYTES: usize = 200;

/// Replaces (or creates) `target` with `bytes`, atomically. The parent directory must exist.
pub fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::other("the path has no parent directory"))?;
    let (mut file, temp) = create_temp(dir, target)?;
    let guard = TempGuard(Some(temp));
    file.write_all(bytes)?;
    sync(&file)?;
    drop(file);
    fs::rename(guard.path(), target)?;
    guard.disarm();
    Ok(())
}

/// Creates a fresh, uniquely named file in `dir` for the contents of `target`.
fn create_temp(dir: &Path, target: &Path) -> io::Result<(File, PathBuf)> {
    let stem = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = truncate_at_char(&stem, NAME_STEM_BYTES);
    let mut last_error = None;
    for _ in 0..NAME_ATTEMPTS {
        let temp = dir.join(format!(".{stem}.{:016x}.tmp", random_u64()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// Flushes the data to disk where the host supports it, so the rename never publishes a
/// file whose contents are still only in memory.
fn sync(file: &File) -> io::Result<()> {
    match file.sync_all() {
        Err(error) if error.kind() == io::ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

/// A random number from the host's entropy source (std seeds `RandomState` from it).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Removes the temporary file when dropped, unless it was renamed into place.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: the error being reported matters more than a failed cleanup.
            let _ = fs::remove_file(path);
        }
    }
}
