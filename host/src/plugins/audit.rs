//! The audit log: one JSON line per tool call — who, which tool, a digest of the input,
//! each policy's verdict, how long it took and how it ended. It is the file a security
//! team asks for, so it holds no tool input or output (only its SHA-256 and size) and is
//! appended with one `write` per line (whole lines even with concurrent writers).
//!
//! ```json
//! {"ts_ms":1764093530123,"user":"42","workspace":"/w/42","tool":"Write",
//!  "input_sha256":"9f2c…","input_bytes":57,
//!  "policies":[{"policy":"policy-files","verdict":"deny","reason":"…"}],
//!  "ran":false,"status":"denied","policy_ms":0.21,"duration_ms":0.25,"made_ahead":2}
//! ```
//!
//! `made_ahead` counts the call's plugin instances made while the model wrote it (see
//! [`super::PreparedCall`]); their making is not in `duration_ms`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shared::sha256_hex;
use serde::Serialize;

use super::chain::{CheckedCall, Decision};

/// An append-only JSON-lines file of tool calls.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

/// One line of the log.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    ts_ms: u128,
    user: &'a str,
    workspace: &'a Path,
    tool: &'a str,
    input_sha256: String,
    input_bytes: usize,
    policies: Vec<PolicyEntry<'a>>,
    ran: bool,
    status: &'static str,
    policy_ms: f64,
    duration_ms: f64,
    made_ahead: usize,
}

#[derive(Debug, Serialize)]
struct PolicyEntry<'a> {
    policy: &'a str,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// For a rewrite: the digest of the input it produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    rewritten_sha256: Option<String>,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path` for appending.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| {
                anyhow::anyhow!(
                    "cannot create the audit log's directory {}: {error}",
                    dir.display()
                )
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| {
                anyhow::anyhow!("cannot open the audit log {}: {error}", path.display())
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one tool call by `user` in `workspace`. A failed write is logged, never
    /// fatal to the call.
    pub fn record(
        &self,
        user: &str,
        workspace: &Path,
        tool: &str,
        input: &str,
        checked: &CheckedCall,
        duration: Duration,
    ) {
        let status = if !checked.ran && checked.denied_by().is_some() {
            "denied"
        } else if !checked.ran {
            "refused"
        } else if checked.outcome.is_error() {
            "error"
        } else {
            "success"
        };
        let entry = Entry {
            ts_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default(),
            user,
            workspace,
            tool,
            input_sha256: digest(input),
            input_bytes: input.len(),
            policies: checked
                .decisions
                .iter()
                .map(|d| PolicyEntry {
                    policy: &d.policy,
                    verdict: d.decision.kind(),
                    reason: match &d.decision {
                        Decision::Deny(reason) => Some(reason),
                        _ => None,
                    },
                    rewritten_sha256: match &d.decision {
                        Decision::Rewrite(input) => Some(digest(input)),
                        _ => None,
                    },
                })
                .collect(),
            ran: checked.ran,
            status,
            policy_ms: millis(checked.policy_time),
            duration_ms: millis(duration),
            made_ahead: checked.made_ahead,
        };
        let mut line = match serde_json::to_vec(&entry) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!("cannot encode an audit entry: {error}");
                return;
            }
        };
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = file.write_all(&line) {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {error}");
        }
    }
}

fn digest(text: &str) -> String {
    sha256_hex(text.as_bytes(), 32)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
