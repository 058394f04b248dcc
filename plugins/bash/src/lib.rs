//! The `bash` tool plugin: the `Bash` tool, running shell commands in the workspace.
//!
//! The command itself runs on the host (the `exec` capability: a fresh `bash -c` per call,
//! confined to the workspace, killed on timeout, output capped). This component decides
//! everything around it, the way Claude Code's Bash tool does:
//!
//! - the working directory persists between calls of a session (`cwd`, `script`);
//! - the exit status becomes the result's shape, `Exit code N` for failures, with the few
//!   commands whose exit 1 is an answer rather than a failure let through (`last_command`);
//! - the output becomes one text, and a big one is saved to a file in the scratch area with
//!   a preview returned instead (`format`, `spill`, `scratch`).

mod cwd;
mod format;
mod last_command;
mod scratch;
mod script;
mod spill;
mod tool;

agent_plugin_sdk::export_tools!(tool::Bash);
