//! Read before write: which files the model has seen, and as of when.
//!
//! The model may only change an existing file it has read in this session, and only if
//! nobody changed the file since; otherwise its edit is based on text that is not there.
//! Every call runs in a fresh instance, so what was read lives in the host's session state:
//! one key per file (`read:<absolute path with symlinks resolved>`, shortened with a hash when very long) holding the file's
//! modification time and size as they were when it was read (or last written by us).

use std::fs::Metadata;
use std::path::Path;
use std::time::UNIX_EPOCH;

use agent_plugin_sdk::{state, tool_use_error};
use serde::{Deserialize, Serialize};

use crate::direct::Stat;

/// What a file looked like when the model last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Modification time in nanoseconds since the Unix epoch (negative before it), if the
    /// file system reports one.
    pub mtime_ns: Option<i64>,
    /// Size in bytes: a second witness when two writes land within one clock tick.
    pub size: u64,
}

impl Stamp {
    /// The stamp of a file as `meta` describes it now.
    pub fn of(meta: &Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .map(|time| match time.duration_since(UNIX_EPOCH) {
                Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
                Err(before) => {
                    i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |ns| -ns)
                }
            });
        Self {
            mtime_ns,
            size: meta.len(),
        }
    }

    /// The stamp of a file as a direct lookup describes it: the same value [`Stamp::of`]
    /// gives for the same file (std reports the modification time as this timestamp).
    pub fn of_stat(stat: &Stat) -> Self {
        Self {
            mtime_ns: Some(i64::try_from(stat.mtime_ns).unwrap_or(i64::MAX)),
            size: stat.size,
        }
    }
}

/// Keys longer than this are shortened (the host caps keys at 1024 bytes).
const MAX_KEY_PATH_BYTES: usize = 900;

/// The state key for `path`: the path itself, or for very long paths its head plus a hash
/// of the whole, so every path the sandbox accepts can be remembered.
fn key(path: &Path) -> String {
    let path = path.display().to_string();
    if path.len() <= MAX_KEY_PATH_BYTES {
        return format!("read:{path}");
    }
    let mut end = MAX_KEY_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("read:{}#{:016x}", &path[..end], fnv1a(path.as_bytes()))
}

/// FNV-1a, 64 bits: stable across calls and builds, unlike std's seeded hashers.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Records that the model now knows `path` as `meta` describes it.
pub fn remember(path: &Path, meta: &Metadata) -> Result<(), String> {
    state::set(&key(path), &Stamp::of(meta))
}

/// Records that the model now knows `path` as `stat` describes it.
pub fn remember_stat(path: &Path, stat: &Stat) -> Result<(), String> {
    state::set(&key(path), &Stamp::of_stat(stat))
}

/// Checks that `path` (which exists, as `meta` describes it) was read in this session and
/// has not changed since. The error is what the model sees.
pub fn check_fresh(path: &Path, meta: &Metadata) -> Result<(), String> {
    let Some(seen) = state::get::<Stamp>(&key(path)) else {
        return Err(tool_use_error(
            "File has not been read yet. Read it first before writing to it.",
        ));
    };
    if seen != Stamp::of(meta) {
        return Err(tool_use_error(
            "File has been modified since read, by the user or another program. Read it again \
             before writing to it, so the change is based on what the file holds now.",
        ));
    }
    Ok(())
}
