//! `serve` with the scripted runner, for tests that need a real process (SIGTERM, logs).
//! Configured by the usual `AGENT_HOST_*` variables; prints `PORT=<n>` on stderr once
//! listening on 127.0.0.1. Each stdin line `open <gate>` opens that gate of the runner (see
//! the `wait <gate>` script step); a script logs `script waits at a gate` (JSON on stdout)
//! when it arrives at one.

use std::io::BufRead as _;
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
    // A plain thread: it may stay blocked on stdin, and the process exits without it.
    std::thread::spawn({
        let runner = runner.clone();
        move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["open", name] => runner.gate(name).open(),
                    _ => tracing::warn!(%line, "test-server: unknown stdin command"),
                }
            }
        }
    });
    let state = AppState::new(users, runner, config.server.clone());
    // Listening for SIGTERM before the port is known: a test may signal at once.
    let stop = agent_host::server::termination_signal();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    eprintln!("PORT={}", listener.local_addr()?.port());
    agent_host::server::serve(listener, state, stop).await
}
