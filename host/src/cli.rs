//! The command line: thin glue over the library. `main` calls [`run`] and exits with its
//! code; errors print their whole chain and exit 2.
//!
//! Exit codes: 0 success; 1 the tool returned an error result / the plugin is refused;
//! 2 the command itself could not run (bad arguments, configuration, workspace).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use serde::Serialize;

use crate::config::Config;
use crate::plugins::load::loader;
use crate::plugins::{CallContext, LoadedPlugin, ToolOutcome, load_plugin};
use crate::shared::{is_plain_name, sha256_hex};
use crate::start;

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
    /// The Telegram bot in local mode: polls Telegram for updates (`getUpdates`) instead
    /// of receiving them from the relay, registers the command menu, and answers until
    /// SIGTERM or Ctrl-C (running tasks get the shutdown grace period). Needs
    /// `telegram_bot_token` and no webhook set for the bot.
    Telegram {
        #[command(subcommand)]
        command: Option<TelegramCommand>,
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
enum TelegramCommand {
    /// Registers the bot's command menu with Telegram (`setMyCommands`) and exits. Run it
    /// once per bot when deploying behind the relay (`serve` never calls Telegram at
    /// start).
    SetCommands,
    /// Points the bot's webhook at the relay: `setWebhook` with the secret token and the
    /// update kinds the bot handles, then the command menu (`setMyCommands`). Give the
    /// secret as a Secrets Manager id (the CDK app makes one) or, for a test bot, itself.
    SetWebhook {
        /// The relay's HTTPS URL (the CDK app prints it).
        #[arg(long)]
        url: String,
        /// Secrets Manager id or ARN of the webhook secret (read with the standard AWS
        /// configuration).
        #[arg(
            long,
            value_name = "ID",
            conflicts_with = "secret",
            required_unless_present = "secret"
        )]
        secret_id: Option<String>,
        /// The webhook secret itself (1-256 of A-Z a-z 0-9 _ -). Prefer --secret-id: a
        /// value on the command line shows in the process list and the shell's history.
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// Drop the updates Telegram holds for the bot instead of delivering them.
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// Shows Telegram's view of the webhook: its URL, the updates waiting, the last
    /// delivery error and when it happened.
    WebhookInfo,
    /// Removes the webhook, so `agent-host telegram` can poll again.
    DeleteWebhook {
        /// Drop the updates Telegram holds for the bot instead of delivering them.
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// Prints the AgentCore runtime session id the relay sends a Telegram user's updates
    /// to (e.g. for `InvokeAgentRuntimeCommand` into that user's session).
    SessionId {
        /// The user's numeric Telegram id.
        user: i64,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Says which world a component implements, what it asks for, or why it is refused.
    Check {
        /// The component (`<name>.wasm`, with `<name>.toml` beside it).
        file: PathBuf,
    },
    /// Compiles every component of `plugins_dir` into `plugin_cache_dir` for
    /// `plugin_cpu_features`, and says for each whether it was there already. An image
    /// build runs it so its containers start without compiling.
    Precompile,
}

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    // The configuration keys are listed by `--help`, from the one table that defines them.
    let command = Cli::command().after_long_help(crate::config::keys::help_text());
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Serve { .. } => crate::logging::init_json("info"),
        Command::Telegram { command: None } => crate::logging::init_text("info"),
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
        Command::Serve { port } => {
            let mut config = config;
            if let Some(port) = port {
                config.port = port;
            }
            start::serve(config)
        }
        Command::Run {
            workspace,
            session,
            new,
            prompt,
        } => {
            let workspace = open_workspace(&workspace)?;
            let user_key = session_name(session.as_deref(), &workspace)?;
            start::run(config, &workspace, user_key, new, prompt)
        }
        Command::Telegram { command: None } => start::telegram(config),
        Command::Telegram {
            command: Some(TelegramCommand::SetCommands),
        } => start::telegram_set_commands(config),
        Command::Telegram {
            command:
                Some(TelegramCommand::SetWebhook {
                    url,
                    secret_id,
                    secret,
                    drop_pending_updates,
                }),
        } => {
            let secret = match (secret_id, secret) {
                (Some(id), _) => start::WebhookSecret::SecretsManager(id),
                (None, Some(value)) => start::WebhookSecret::Given(value),
                (None, None) => unreachable!("clap requires --secret-id or --secret"),
            };
            start::telegram_set_webhook(config, &url, secret, drop_pending_updates)
        }
        Command::Telegram {
            command: Some(TelegramCommand::WebhookInfo),
        } => start::telegram_webhook_info(config),
        Command::Telegram {
            command:
                Some(TelegramCommand::DeleteWebhook {
                    drop_pending_updates,
                }),
        } => start::telegram_delete_webhook(config, drop_pending_updates),
        Command::Telegram {
            command: Some(TelegramCommand::SessionId { user }),
        } => start::telegram_session_id(config, user),
        Command::Tools(ToolsCommand::List { json }) => tools_list(&config, json),
        Command::Tools(ToolsCommand::Call {
            tool,
            input,
            workspace,
            session,
        }) => tools_call(&config, &tool, &input, &workspace, session.as_deref()),
        Command::Plugin(PluginCommand::Check { file }) => plugin_check(&config, &file),
        Command::Plugin(PluginCommand::Precompile) => plugin_precompile(&config),
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

/// One tool as `tools list --json` prints it.
#[derive(Serialize)]
struct ListedTool<'a> {
    name: &'a str,
    plugin: &'a str,
    description: &'a str,
    input_schema: serde_json::Value,
}

fn tools_list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let plugins = start::plugin_set(config)?;
    let mut listed = Vec::new();
    for plugin in plugins.tools().plugins() {
        for tool in plugin.tools() {
            listed.push(ListedTool {
                name: &tool.spec.name,
                plugin: &plugin.identity().name,
                description: &tool.spec.description,
                // The loader checked that it is a JSON object.
                input_schema: serde_json::from_str(&tool.spec.input_schema)?,
            });
        }
    }
    let mut text = String::new();
    if json {
        text = serde_json::to_string_pretty(&listed)? + "\n";
    } else {
        for tool in &listed {
            text += &format!("{} (plugin {})\n", tool.name, tool.plugin);
            for line in tool.description.lines() {
                text += &format!("    {line}\n");
            }
            text += "  input schema:\n";
            for line in serde_json::to_string_pretty(&tool.input_schema)?.lines() {
                text += &format!("    {line}\n");
            }
            text += "\n";
        }
        let policies = plugins.policy_names();
        if !policies.is_empty() {
            text += &format!("policies: {}\n", policies.join(", "));
        }
    }
    print_all(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `text` to stdout. A reader that stopped early (`agent-host tools list | head`)
/// is not an error: the rest is simply not wanted.
fn print_all(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
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
    let session = start::session_state(config, &session_name(session, &workspace)?)?;
    let plugins = start::plugin_set(config)?;
    let context = CallContext::new(workspace, session.clone()).with_user("cli");
    // The configured policies decide exactly as they do for the agent.
    let outcome = plugins.call(tool, &input, &context).outcome;
    // One call is this process's whole turn: what it set is written before it exits.
    session.flush()?;
    print_all(&format!("{}\n", outcome.text()))?;
    Ok(match outcome {
        ToolOutcome::Success(_) => ExitCode::SUCCESS,
        ToolOutcome::Error(_) => ExitCode::from(1),
    })
}

/// The session of `--session name`, or by default one per canonical workspace path.
/// Session names become directory names: they must be plain.
fn session_name(name: Option<&str>, workspace: &Path) -> anyhow::Result<String> {
    match name {
        Some(name) if is_plain_name(name) => Ok(name.to_string()),
        Some(name) => anyhow::bail!(
            "--session {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"
        ),
        None => Ok(format!(
            "cli-{}",
            sha256_hex(workspace.as_os_str().as_encoded_bytes(), 8)
        )),
    }
}

fn plugin_precompile(config: &Config) -> anyhow::Result<ExitCode> {
    let runtime = start::plugin_runtime(config)?;
    let mut components: Vec<PathBuf> = std::fs::read_dir(&config.plugins_dir)
        .with_context(|| format!("cannot read plugins_dir {}", config.plugins_dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    components.sort();
    anyhow::ensure!(
        !components.is_empty(),
        "plugins_dir {} holds no components (*.wasm)",
        config.plugins_dir.display()
    );
    println!(
        "precompiling {} components into {} for plugin_cpu_features = {}",
        components.len(),
        config.plugin_cache_dir.display(),
        config.plugin_cpu_features
    );
    for file in &components {
        let started = std::time::Instant::now();
        let (_, cache) = loader::compile_file(&runtime, file)?;
        let what = match cache {
            crate::plugins::CacheUse::Hit => "already precompiled (cache hit)",
            crate::plugins::CacheUse::Compiled => "compiled (cache miss)",
            crate::plugins::CacheUse::Disabled => "compiled (no cache)",
        };
        println!(
            "{}: {what} in {:.0} ms",
            file.file_name().unwrap_or_default().to_string_lossy(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn plugin_check(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = start::plugin_runtime(config)?;
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
