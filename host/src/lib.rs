//! agent-host: runs Claude as a coding agent whose tools and guardrails are WASI 0.2
//! components, each call sandboxed to the requesting user's workspace.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library.

pub mod agent;
pub mod cli;
pub mod config;
pub mod exec;
pub mod logging;
pub mod model;
pub mod plugins;
pub mod server;
pub mod session;
