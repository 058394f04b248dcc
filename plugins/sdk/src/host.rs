//! The host's facts, logging and command runner, as plain functions.

use crate::imports::{context, exec as exec_import, log};

/// Absolute path of the user's workspace (the same inside the component and on the host).
pub fn workspace_root() -> String {
    context::workspace_root()
}

/// This plugin's configuration (manifest `[config]` overlaid by the operator's).
pub fn config() -> serde_json::Value {
    serde_json::from_str(&context::config()).unwrap_or_default()
}

/// Logs at debug level into the host's log.
pub fn debug(message: &str) {
    log::write(log::Level::Debug, message);
}

/// Logs at info level into the host's log.
pub fn info(message: &str) {
    log::write(log::Level::Info, message);
}

/// Logs at warn level into the host's log.
pub fn warn(message: &str) {
    log::write(log::Level::Warn, message);
}

/// What a command run with [`exec`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code, or `None` when the process was killed by a signal (including the
    /// host's kill on timeout).
    pub exit_code: Option<i32>,
    /// Standard output as raw bytes, possibly cut (see `truncated`).
    pub stdout: Vec<u8>,
    /// Standard error as raw bytes, possibly cut (see `truncated`).
    pub stderr: Vec<u8>,
    /// True when the command ran past its timeout and the host killed it.
    pub timed_out: bool,
    /// True when the host cut stdout or stderr at its output cap.
    pub truncated: bool,
}

/// Runs `command_line` with `bash -c` in `cwd` (an absolute directory inside the
/// workspace), killing it after `timeout_ms` milliseconds (the host may cap that further).
///
/// Needs the `exec` capability: `exec = true` under `[capabilities]` in the manifest, and
/// granted by the operator (`exec = true` under `[plugins.<name>]`). `Err` is the host's
/// reason the command could not be started at all; a command that runs and fails is an
/// `Ok` with its exit code.
pub fn exec(command_line: &str, cwd: &str, timeout_ms: u32) -> Result<ExecOutput, String> {
    let command = exec_import::Command {
        command_line: command_line.to_string(),
        cwd: cwd.to_string(),
        timeout_ms,
    };
    exec_import::run(&command).map(|output| ExecOutput {
        exit_code: output.exit_code,
        stdout: output.stdout,
        stderr: output.stderr,
        timed_out: output.timed_out,
        truncated: output.truncated,
    })
}
