//! The `search` tool plugin: `Glob` (find files by name pattern) and `Grep` (search file
//! contents), with ripgrep's semantics and output conventions.
//!
//! Both tools are built from the crates ripgrep itself is made of (`ignore`, `globset`,
//! `grep-regex`, `grep-searcher`, `grep-printer`), so what the model sees matches what it
//! knows from `rg`. The component runs in a WASI sandbox whose only visible directory is
//! the workspace; every filesystem call crosses into the host, so the code walks each
//! directory once, reads files in large chunks and stats only the files it must sort.

mod fs;
mod glob;
mod grep;
mod relpath;
mod sort;
mod walk;

agent_plugin_sdk::export_tools!(glob::Glob, grep::Grep);
