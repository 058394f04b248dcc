//! The host capabilities a plugin may import (`wit/plugin.wit`), implemented on the call's
//! store data. Which of them a plugin's linker contains is decided at load by its grants
//! (see [`super::loader`]); here they only do their job.

use super::bindings::tool::agent::plugin::{context, log, session_state, types};
use super::sandbox::CallState;

/// Log lines one call may write; the rest are dropped (with one warning).
const MAX_LOG_LINES: usize = 1000;
/// Longest log line kept, in bytes.
const MAX_LOG_BYTES: usize = 4096;

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
        if let Some(session) = &self.session
            && let Err(error) = session.delete(&self.identity.name, &key)
        {
            tracing::warn!(plugin = %self.identity.name, "cannot save session state: {error:#}");
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
