//! The `agent-host` binary: see [`agent_host::cli`].

fn main() -> std::process::ExitCode {
    agent_host::cli::main()
}
