//! The command line: thin glue over the library. `main` calls [`run`] and exits with its
//! code; errors print their whole chain and exit 2.
//!
//! Exit codes: 0 success; 1 the tool returned an error result / the plugin is refused;
//! 2 the command itself could not run (bad arguments, configuration, workspace).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use sha2::{Digest as _, Sha256};

use crate::agent::{Agent, AgentSettings};
use crate::config::{Config, HistoryConfig};
use crate::model::{BedrockModel, ModelSettings};
use crate::plugins::{
    AuditLog, CallContext, LivePlugins, LoadedPlugin, PluginRuntime, PluginSet, ToolOutcome,
    load_plugin, loader,
};
use crate::server::{AppState, ServerSettings};
use crate::server::{Job, JobRunner, Progress, ProgressEvent};
use crate::session::history::{FileHistory, HistoryStore, S3History};
use crate::session::{SessionState, Users};

/// Runs Claude as a coding agent whose tools and guardrails are sandboxed WASI components.
#[derive(Debug, Parser)]
#[command(name = "agent-host", version, about)]
pub struct Cli {
    /// Configuration file (default: ./agent-host.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the AgentCore contract (`GET /ping`, `POST /invocations`) on 0.0.0.0.
    Serve {
        /// Listen port (default: the `port` setting, 8080).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Runs one task in a local folder from the terminal: tool calls are shown as they
    /// happen, the final answer is printed at the end. Successive runs on one workspace
    /// continue one conversation (`--new` starts afresh).
    Run {
        /// The workspace directory the agent works in.
        #[arg(long, value_name = "DIR")]
        workspace: PathBuf,
        /// Session name: runs with the same session share the conversation (default: one
        /// session per workspace).
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
        /// Forget the session's conversation before this task.
        #[arg(long)]
        new: bool,
        /// What the agent should do.
        prompt: String,
    },
    /// Inspect and call the loaded tools, as the agent would.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Check plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Reports what this host enforces on the commands tools run: one line per promise
    /// (what a command may read, write, see, which privileges it has, ...) and whether it
    /// holds here. Exit code 0 when commands run, 1 when they are refused.
    Doctor,
}

#[derive(Debug, Subcommand)]
enum ToolsCommand {
    /// Lists every loaded tool with its input schema.
    List {
        /// Print JSON (name, plugin, description, input_schema) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Calls one tool and prints the text the model would see.
    ///
    /// Exit code 0 for a success result, 1 for an error result. Successive calls on the
    /// same workspace share one session's state (kept in the state directory), so `Read`
    /// then `Edit` behaves as in a conversation.
    Call {
        /// The tool's name, e.g. Read.
        tool: String,
        /// The input as a JSON object, or `-` to read it from standard input.
        input: String,
        /// The workspace directory the tool works in.
        #[arg(long, value_name = "DIR")]
        workspace: PathBuf,
        /// Session name: calls with the same session share state (default: one session
        /// per workspace).
        #[arg(long, value_name = "NAME")]
        session: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Says which world a component implements, what it asks for, or why it is refused.
    Check {
        /// The component (`<name>.wasm`, with `<name>.toml` beside it).
        file: PathBuf,
    },
}

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { .. } => crate::logging::init_json("info"),
        _ => crate::logging::init_text("warn"),
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { port } => serve(config, port),
        Command::Run {
            workspace,
            session,
            new,
            prompt,
        } => run_task(config, &workspace, session.as_deref(), new, prompt),
        Command::Tools(ToolsCommand::List { json }) => tools_list(&config, json),
        Command::Tools(ToolsCommand::Call {
            tool,
            input,
            workspace,
            session,
        }) => tools_call(&config, &tool, &input, &workspace, session.as_deref()),
        Command::Plugin(PluginCommand::Check { file }) => plugin_check(&config, &file),
        Command::Doctor => Ok(doctor(&config)),
    }
}

/// `agent-host doctor`: the command confinement report.
fn doctor(config: &Config) -> ExitCode {
    let runner = crate::exec::CommandRunner::new(config.exec.clone());
    println!("Commands run by tools (Bash, validation policies) on this host:");
    let promises = runner.promises();
    for promise in &promises {
        let mark = match (promise.holds, promise.required) {
            (true, _) => "ok     ",
            (false, true) => "MISSING",
            (false, false) => "warning",
        };
        println!("  {mark} {}: {}", promise.name, promise.detail);
    }
    match (runner.refusal(), config.exec.allow_unconfined) {
        (Some(missing), _) => {
            println!(
                "Commands are REFUSED: {missing}. Set exec_allow_unconfined = true to run \
                 them without what is missing."
            );
            ExitCode::from(1)
        }
        (None, true) if promises.iter().any(|p| p.required && !p.holds) => {
            println!(
                "Commands run UNCONFINED where marked MISSING (exec_allow_unconfined = true)."
            );
            ExitCode::SUCCESS
        }
        _ => {
            println!("Commands run, with every required promise kept.");
            ExitCode::SUCCESS
        }
    }
}

fn runtime(config: &Config) -> anyhow::Result<Arc<PluginRuntime>> {
    Ok(Arc::new(
        PluginRuntime::new(Some(config.plugin_cache_dir()))?
            .with_exec_settings(config.exec.clone()),
    ))
}

/// The audit log of tool calls, unless the configuration turns it off.
fn open_audit_log(config: &Config) -> anyhow::Result<Option<Arc<AuditLog>>> {
    config
        .audit_log
        .as_deref()
        .map(|path| AuditLog::open(path).map(Arc::new))
        .transpose()
}

fn load_plugins(config: &Config) -> anyhow::Result<PluginSet> {
    PluginSet::load_dir(&runtime(config)?, &config.plugins_dir, &config.plugins)
}

/// The plugin directory as a swappable set (see [`crate::plugins::live`]).
fn load_live_plugins(config: &Config) -> anyhow::Result<Arc<LivePlugins>> {
    Ok(Arc::new(LivePlugins::load(
        runtime(config)?,
        &config.plugins_dir,
        config.plugins.clone(),
    )?))
}

/// Reloads the plugin directory on every `SIGHUP` (the operator's "swap now").
fn reload_on_sighup(plugins: Arc<LivePlugins>) {
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!("cannot listen for SIGHUP; plugins reload only by directory polling");
            return;
        };
        while hangup.recv().await.is_some() {
            let plugins = plugins.clone();
            let reloaded = tokio::task::spawn_blocking(move || plugins.reload()).await;
            match reloaded {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(
                    "SIGHUP: the plugin directory does not load; the previous plugins stay in force: {error:#}"
                ),
                Err(error) => tracing::error!("SIGHUP: the reload thread failed: {error}"),
            }
        }
    });
}

fn serve(mut config: Config, port: Option<u16>) -> anyhow::Result<ExitCode> {
    if let Some(port) = port {
        config.port = port;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Loaded before serving so a broken plugin stops the host at start, not mid-task.
        let plugins = load_live_plugins(&config)?;
        {
            let set = plugins.current();
            tracing::info!(tools = ?set.tool_names(), policies = ?set.policy_names(), "plugins loaded");
        }
        reload_on_sighup(plugins.clone());
        let _watcher =
            (!config.plugins_reload.is_zero()).then(|| plugins.watch(config.plugins_reload));
        let users = Arc::new(Users::new(
            config.workspace_root.clone(),
            config.allowed_users.clone(),
        ));
        let settings = ServerSettings {
            max_body_bytes: config.max_body_bytes,
            shutdown_grace: config.shutdown_grace,
        };
        // The AWS client set-up (credential and region chains, TLS roots) is built while
        // the server already answers /ping; the first task waits for it.
        let agent = {
            let (config, plugins) = (config.clone(), plugins.clone());
            async move {
                build_agent(&config, plugins)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
            .boxed()
            .shared()
        };
        let building = agent.clone();
        tokio::spawn(async move {
            if let Err(error) = building.await {
                tracing::error!("the agent could not be started: {error}");
            }
        });
        let state = AppState::new(users, Some(Arc::new(DeferredAgent(agent))), settings);
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on 0.0.0.0:{} (set --port or PORT)",
                    config.port
                )
            })?;
        tracing::info!(port = config.port, "listening");
        crate::server::serve(listener, state, crate::server::termination_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// An agent still being built: tasks wait for it, or fail with why it could not be built.
struct DeferredAgent(Shared<BoxFuture<'static, Result<Agent, String>>>);

impl JobRunner for DeferredAgent {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<crate::server::Answer>> {
        let agent = self.0.clone();
        async move {
            match agent.await {
                Ok(agent) => agent.run(job).await,
                Err(error) => anyhow::bail!("the agent could not be started: {error}"),
            }
        }
        .boxed()
    }
}

/// The agent as configured: plugins, Bedrock client (standard AWS chain), history store.
async fn build_agent(config: &Config, plugins: Arc<LivePlugins>) -> anyhow::Result<Agent> {
    let mut settings = ModelSettings::new(&config.model_id);
    settings.max_tokens = config.model.max_tokens;
    settings.request_timeout = config.model.timeout;
    settings.max_attempts = config.model.max_attempts;
    settings.retry_base = config.model.retry_base;
    settings.streaming = config.model.streaming;
    let model = BedrockModel::from_env(settings).await;
    let history: Arc<dyn HistoryStore> = match &config.history {
        HistoryConfig::File(dir) => Arc::new(FileHistory::new(dir.clone())),
        HistoryConfig::S3 { bucket, prefix } => {
            Arc::new(S3History::from_env(bucket.clone(), prefix.clone()).await)
        }
    };
    let mut agent_settings = AgentSettings::new(config.state_dir.clone());
    agent_settings.max_turns = config.max_turns;
    agent_settings.max_tool_result_chars = config.max_tool_result_chars;
    agent_settings.operator_prompt = config.system_prompt.clone();
    agent_settings.context_budget_tokens = config.context_budget_tokens;
    agent_settings.audit = open_audit_log(config)?;
    agent_settings.max_failed_validations = config.max_failed_validations;
    Agent::new(plugins, model, history, agent_settings)
}

fn run_task(
    config: Config,
    workspace: &Path,
    session: Option<&str>,
    new: bool,
    prompt: String,
) -> anyhow::Result<ExitCode> {
    let workspace = open_workspace(workspace)?;
    let user_key = match session {
        Some(name) => validate_session_name(name)?,
        None => workspace_session_id(&workspace),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let plugins = load_live_plugins(&config)?;
        let agent = build_agent(&config, plugins).await?;
        if new {
            agent.forget(&user_key).await?;
        }
        let (progress, mut events) = Progress::channel(1024);
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_interrupt = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("[interrupted: stopping the task]");
                on_interrupt.cancel();
            }
        });
        let printer = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    ProgressEvent::ToolStarted { tool, input } => {
                        eprintln!("[{tool}] {}", summarize(&input, 160));
                    }
                    ProgressEvent::ToolFinished {
                        tool,
                        is_error: true,
                    } => eprintln!("[{tool}] failed"),
                    _ => {}
                }
            }
        });
        let job = Job {
            task_id: "cli".to_string(),
            user_key,
            session_id: None,
            prompt,
            workspace,
            cancel,
            progress,
        };
        let result = agent.run(job).await;
        let _ = printer.await;
        match result {
            Ok(answer) => {
                println!("{}", answer.text);
                eprintln!("[usage] {}", answer.usage);
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("error: the task failed: {error:#}");
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// `text` on one line, cut to `max` characters.
fn summarize(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= max {
        line
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

/// The canonical path of an existing workspace directory.
fn open_workspace(workspace: &Path) -> anyhow::Result<PathBuf> {
    let canonical = workspace
        .canonicalize()
        .with_context(|| format!("the workspace {} cannot be opened", workspace.display()))?;
    if !canonical.is_dir() {
        anyhow::bail!("the workspace {} is not a directory", workspace.display());
    }
    Ok(canonical)
}

fn tools_list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let plugins = load_plugins(config)?;
    let registry = plugins.tools();
    let mut entries = Vec::new();
    for plugin in registry.plugins() {
        for tool in plugin.tools() {
            let schema: serde_json::Value =
                serde_json::from_str(&tool.spec.input_schema).unwrap_or_default();
            entries.push(serde_json::json!({
                "name": tool.spec.name,
                "plugin": plugin.identity().name,
                "description": tool.spec.description,
                "input_schema": schema,
            }));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        println!(
            "{} (plugin {})",
            entry["name"].as_str().unwrap_or(""),
            entry["plugin"].as_str().unwrap_or("")
        );
        for line in entry["description"].as_str().unwrap_or("").lines() {
            println!("    {line}");
        }
        println!("  input schema:");
        for line in serde_json::to_string_pretty(&entry["input_schema"])?.lines() {
            println!("    {line}");
        }
        println!();
    }
    let policies = plugins.policy_names();
    if !policies.is_empty() {
        println!("policies: {}", policies.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn tools_call(
    config: &Config,
    tool: &str,
    input: &str,
    workspace: &Path,
    session: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let workspace = open_workspace(workspace)?;
    let input = if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the input from stdin")?;
        text
    } else {
        input.to_string()
    };
    let session_id = match session {
        Some(name) => validate_session_name(name)?,
        None => workspace_session_id(&workspace),
    };
    let state_file = config
        .state_dir
        .join("sessions")
        .join(&session_id)
        .join("plugin-state.json");
    let session = Arc::new(SessionState::persistent(state_file)?);
    let plugins = load_plugins(config)?;
    let mut context = CallContext::new(workspace, session);
    if let Some(audit) = open_audit_log(config)? {
        context = context.with_audit(audit, "cli");
    }
    // The configured policies decide exactly as they do for the agent.
    let outcome = plugins.call(tool, &input, &context).outcome;
    println!("{}", outcome.text());
    Ok(match outcome {
        ToolOutcome::Success(_) => ExitCode::SUCCESS,
        ToolOutcome::Error(_) => ExitCode::from(1),
    })
}

/// Session names become directory names: keep them plain.
fn validate_session_name(name: &str) -> anyhow::Result<String> {
    let ok = crate::session::is_plain_name(name);
    if !ok {
        anyhow::bail!("--session {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'");
    }
    Ok(name.to_string())
}

/// The default session of a workspace: one per canonical workspace path.
fn workspace_session_id(workspace: &Path) -> String {
    let digest = Sha256::digest(workspace.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("cli-{hex}")
}

fn plugin_check(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = runtime(config)?;
    println!("component: {}", file.display());
    match loader::compile_file(&runtime, file) {
        Ok((component, _)) => {
            let facts = loader::inspect(&runtime, &component);
            match &facts.world {
                Ok(world) => println!("world:     {world} (agent:plugin@{})", loader::WIT_VERSION),
                Err(problem) => println!("world:     none ({problem})"),
            }
            println!("imports:   {}", facts.imports.join(", "));
        }
        Err(error) => {
            println!("refused:   {error:#}");
            return Ok(ExitCode::from(1));
        }
    }
    let manifest_file = loader::manifest_path(file);
    match load_plugin(&runtime, file, &config.plugins) {
        Ok(plugin) => {
            let identity = plugin.identity();
            let caps = &identity.capabilities;
            let limits = &identity.limits;
            println!("manifest:  {}", manifest_file.display());
            println!("name:      {}", identity.name);
            println!(
                "asks for:  workspace {}, session-state {}, log {}, exec {}",
                caps.workspace,
                yes_no(caps.session_state),
                yes_no(caps.log),
                yes_no(caps.exec)
            );
            println!(
                "limits:    memory {} MiB, time {} ms, result {} KiB",
                limits.memory_mb, limits.timeout_ms, limits.max_result_kb
            );
            if let LoadedPlugin::Tool(tools) = &plugin {
                for tool in tools.tools() {
                    let summary = tool.spec.description.lines().next().unwrap_or("");
                    println!("tool:      {} - {summary}", tool.spec.name);
                }
            }
            println!("verdict:   loads with the current configuration");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("refused:   {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
