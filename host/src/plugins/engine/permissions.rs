//! What a plugin may use and how much: the grants a sandbox enforces on every call. A
//! manifest asks for them (see [`crate::plugins::load::manifest`]); the operator's grants
//! decide (see [`crate::plugins::load::grants`]).

use std::time::Duration;

use serde::Deserialize;

/// Upper bounds any manifest may ask for; beyond them the manifest is refused.
pub const MAX_MEMORY_MB: u64 = 4096;
/// See [`MAX_MEMORY_MB`].
pub const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;
/// See [`MAX_MEMORY_MB`].
pub const MAX_RESULT_KB: u64 = 64 * 1024;

/// Access to the user's workspace directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
pub enum WorkspaceAccess {
    /// No directory at all.
    #[serde(rename = "none")]
    #[default]
    None,
    /// Read files and list directories.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Also create, change, rename and remove.
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl std::fmt::Display for WorkspaceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkspaceAccess::None => "none",
            WorkspaceAccess::ReadOnly => "read-only",
            WorkspaceAccess::ReadWrite => "read-write",
        })
    }
}

/// What a plugin asks for, or what an operator grants.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// The workspace directory, and how.
    #[serde(default)]
    pub workspace: WorkspaceAccess,
    /// `agent:plugin/session-state`.
    #[serde(default)]
    pub session_state: bool,
    /// `agent:plugin/log`.
    #[serde(default = "yes")]
    pub log: bool,
    /// `agent:plugin/exec`.
    #[serde(default)]
    pub exec: bool,
}

fn yes() -> bool {
    true
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            workspace: WorkspaceAccess::None,
            session_state: false,
            log: true,
            exec: false,
        }
    }
}

/// A capability a component uses by importing an `agent:plugin` interface. The workspace
/// has none: every WASI program imports the filesystem.
struct ImportedCapability {
    /// The manifest key under `[capabilities]`.
    key: &'static str,
    /// The interface, `agent:plugin/<interface>`.
    interface: &'static str,
    /// Whether a set of capabilities holds it.
    held: fn(&Capabilities) -> bool,
}

const IMPORTED: [ImportedCapability; 3] = [
    ImportedCapability {
        key: "log",
        interface: "log",
        held: |c| c.log,
    },
    ImportedCapability {
        key: "session_state",
        interface: "session-state",
        held: |c| c.session_state,
    },
    ImportedCapability {
        key: "exec",
        interface: "exec",
        held: |c| c.exec,
    },
];

impl Capabilities {
    /// The `agent:plugin` interface the capability `key` (a manifest key) is imported as.
    pub fn interface_of(key: &str) -> Option<&'static str> {
        IMPORTED
            .iter()
            .find(|imported| imported.key == key)
            .map(|imported| imported.interface)
    }

    /// For a capability imported as `agent:plugin/<interface>`: its manifest key and
    /// whether these capabilities hold it. `None` when no capability is imported so.
    pub fn import_grant(&self, interface: &str) -> Option<(&'static str, bool)> {
        IMPORTED
            .iter()
            .find(|imported| imported.interface == interface)
            .map(|imported| (imported.key, (imported.held)(self)))
    }
}

/// Per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory a call may grow to, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock deadline of one call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest result text accepted from the plugin, in KiB.
    #[serde(default = "default_result_kb")]
    pub max_result_kb: u64,
}

fn default_memory_mb() -> u64 {
    128
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_result_kb() -> u64 {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            timeout_ms: default_timeout_ms(),
            max_result_kb: default_result_kb(),
        }
    }
}

impl Limits {
    /// Memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// The call deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Result cap in bytes.
    pub fn result_bytes(&self) -> usize {
        usize::try_from(self.max_result_kb.saturating_mul(1024)).unwrap_or(usize::MAX)
    }
}
