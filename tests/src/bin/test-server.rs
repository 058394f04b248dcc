//! `serve` with the scripted runner, for tests that need a real process (SIGTERM, logs).
//! Configured by the usual `AGENT_HOST_*` variables; prints `PORT=<n>` on stderr once
//! listening on 127.0.0.1.

use std::sync::Arc;

use agent_host::config::Config;
use agent_host::server::AppState;
use agent_host::session::Users;
use agent_host_tests::{ScriptRunner, builtin_plugins};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    agent_host::logging::init_json("info");
    let config = Config::load(None)?;
    let users = Arc::new(Users::new(
        config.workspace_root.clone(),
        config.allowed_users.clone(),
    ));
    let runner = Arc::new(ScriptRunner::new(builtin_plugins().clone()));
    let state = AppState::new(users, runner, config.server.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    eprintln!("PORT={}", listener.local_addr()?.port());
    agent_host::server::serve(listener, state, agent_host::server::termination_signal()).await
}
