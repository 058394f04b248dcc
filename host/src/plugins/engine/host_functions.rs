//! The host capabilities a plugin may import (`wit/plugin.wit`), implemented on the call's
//! store data. Which of them a plugin's linker contains is decided at load by its grants
//! (see [`super::loader`]); here they only do their job.

use std::path::Path;
use std::time::{Duration, Instant};

use super::bindings::tool::agent::plugin::{context, exec, log, session_state, types};
use super::sandbox::CallState;
use crate::exec::{CommandOutput, CommandRequest};

/// Log lines one call may write; the rest are dropped (with one warning).
const MAX_LOG_LINES: usize = 1000;
/// Longest log line kept, in bytes.
const MAX_LOG_BYTES: usize = 4096;
/// Time a plugin keeps after its command ends to turn the output into its result.
const EXEC_RESULT_MARGIN: Duration = Duration::from_secs(2);

impl types::Host for CallState {}

impl context::Host for CallState {
    fn workspace_root(&mut self) -> wasmtime::Result<String> {
        Ok(self.workspace_root.clone())
    }

    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.identity.config.clone())
    }
}

impl log::Host for CallState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.identity.name, "plugin logs too much; dropping the rest of this call's log lines");
            }
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let plugin = self.identity.name.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl session_state::Host for CallState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .session
            .as_ref()
            .and_then(|s| s.get(&self.identity.name, &key)))
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        Ok(match &self.session {
            Some(session) => session.set(&self.identity.name, &key, &value),
            None => Err("there is no session during this call (tool listing)".to_string()),
        })
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if let Some(session) = &self.session {
            session.delete(&self.identity.name, &key);
        }
        Ok(())
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .session
            .as_ref()
            .map(|s| s.keys(&self.identity.name, &prefix))
            .unwrap_or_default())
    }
}

impl exec::Host for CallState {
    /// Runs the command on this (blocking) thread. Its timeout is also capped by what is
    /// left of the plugin's own time limit, so the command is killed before the plugin
    /// would be, and the plugin can still report it.
    fn run(&mut self, cmd: exec::Command) -> wasmtime::Result<Result<exec::Output, String>> {
        let (Some(runner), Some(workspace)) = (self.commands.clone(), self.workspace.clone())
        else {
            return Ok(Err(
                "exec is not available in this call (no workspace, or not granted)".to_string(),
            ));
        };
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(EXEC_RESULT_MARGIN);
        let timeout = Duration::from_millis(u64::from(cmd.timeout_ms)).min(left);
        let cancel = self.cancel.clone();
        let request = CommandRequest {
            command_line: &cmd.command_line,
            workspace: &workspace,
            cwd: Path::new(&cmd.cwd),
            timeout,
            cancel: cancel.as_deref(),
        };
        let started = Instant::now();
        let result = runner.run(&request);
        tracing::debug!(
            plugin = %self.identity.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "exec"
        );
        Ok(result.map(to_wit_output).map_err(|error| error.to_string()))
    }
}

fn to_wit_output(output: CommandOutput) -> exec::Output {
    exec::Output {
        exit_code: output.exit_code,
        stdout: output.stdout,
        stderr: output.stderr,
        timed_out: output.timed_out,
        truncated: output.truncated,
    }
}
