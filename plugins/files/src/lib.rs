//! The `files` tool plugin: `Read`, `Write` and `Edit` over the workspace.
//!
//! The three tools live in one component because they share session state: Edit, and Write
//! of an existing file, only go ahead for files the model has read and that have not changed
//! since (see `read_state`). Every call runs in a fresh instance; the sandbox confines it
//! to the workspace, and `target` turns its refusals into messages naming the workspace.

mod atomic;
mod direct;
mod edit;
mod lines;
mod read;
mod read_state;
mod save;
mod target;
mod write;

agent_plugin_sdk::export_tools!(read::Read, write::Write, edit::Edit);
