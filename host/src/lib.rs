//! agent-host: runs Claude as a coding agent whose tools and guardrails are WASI 0.2
//! components, each call sandboxed to the requesting user's workspace.
//!
//! How a request flows, top to bottom (each module uses only those below it; the test
//! `layers` in `host/tests/layers.rs` keeps it so):
//! - [`cli`] parses the command line, [`config`] reads the configuration, [`start`] builds
//!   the parts from it, [`logging`] sets up the log;
//! - a front end takes the user's request: [`server`] (AgentCore's `POST /invocations`)
//!   or [`run`] (one task in a terminal); Telegram updates, from the server or from
//!   long polling, go on to the [`telegram`] dispatcher. It claims the user's slot and
//!   hands the [`agent`] a [`agent::Job`];
//! - the agent loads the user's conversation ([`session`]), asks the [`model`], and runs
//!   the tool calls through the policies of the [`plugins`]; [`secrets`] reads what the
//!   operator keeps in Secrets Manager;
//! - plugins run in their sandbox; the commands they start run confined by [`exec`];
//! - [`shared`] holds the few helpers every layer uses.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library.

pub mod agent;
pub mod cli;
pub mod config;
pub mod exec;
pub mod logging;
pub mod model;
pub mod plugins;
pub mod run;
pub mod secrets;
pub mod server;
pub mod session;
pub mod shared;
pub mod start;
pub mod telegram;
