//! An example policy plugin: `{{name}}` keeps the agent from editing lock files by hand
//! (`Cargo.lock`, `package-lock.json`, ...), which package managers write. Replace the rules
//! with your own; keep the shape:
//!
//! - `check_call` sees each call of the tools `plugin.toml` names (`[policy] tools`) before
//!   it runs and returns `Allow`, `Deny(reason)` (the model reads the reason: say what to
//!   do instead) or `Rewrite(new_input)`;
//! - `check_changes` sees the files a model turn changed; `Err` goes back to the model;
//! - `guidance` is a line added to the model's instructions, so it knows the rule upfront;
//! - the logic in plain functions, unit-tested natively with `cargo test`.

use agent_plugin_sdk::host;
use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};
use agent_plugin_sdk::serde_json::{self, Value};

/// Files that package managers write, never people.
const LOCK_FILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Gemfile.lock",
    "go.sum",
];

struct LockFiles;

impl Policy for LockFiles {
    fn check_call(call: ToolCall) -> Verdict {
        match decide(&call.tool, &call.input) {
            Some(reason) => {
                // Into the host's log (`log = true` in plugin.toml).
                host::info(&format!("denied a {} of a lock file", call.tool));
                Verdict::Deny(reason)
            }
            None => Verdict::Allow,
        }
    }

    fn check_changes(_paths: Vec<String>) -> Result<(), String> {
        Ok(())
    }

    fn guidance() -> String {
        "Never edit lock files (Cargo.lock, package-lock.json, ...) by hand: change the \
         manifest and let the package manager update the lock file."
            .into()
    }
}

/// The reason to deny a call of `tool` with `input` (a JSON object), or `None` to allow it.
pub fn decide(tool: &str, input: &str) -> Option<String> {
    if !matches!(tool, "Write" | "Edit") {
        return None;
    }
    let input: Value = serde_json::from_str(input).unwrap_or_default();
    let path = input.get("file_path").and_then(Value::as_str)?;
    let file_name = path.rsplit('/').next().unwrap_or(path);
    LOCK_FILES.contains(&file_name).then(|| {
        format!(
            "{file_name} is written by its package manager, not by hand: change the manifest \
             and run the package manager (e.g. `cargo update -p NAME`, `npm install`) instead"
        )
    })
}

export_policy_plugin!(LockFiles);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_are_not_written_by_hand() {
        let reason = decide("Write", r#"{"file_path": "/ws/Cargo.lock", "content": ""}"#);
        assert!(
            reason
                .unwrap()
                .contains("Cargo.lock is written by its package manager")
        );
        assert!(decide("Edit", r#"{"file_path": "/ws/web/package-lock.json"}"#).is_some());
    }

    #[test]
    fn other_calls_are_allowed() {
        assert_eq!(decide("Write", r#"{"file_path": "/ws/Cargo.toml"}"#), None);
        assert_eq!(decide("Read", r#"{"file_path": "/ws/Cargo.lock"}"#), None);
        assert_eq!(decide("Write", "not json"), None);
    }
}
