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
use crate::plugins::authoring::{self, NewPlugin, PluginKind, PluginLanguage};
use crate::plugins::load::loader;
use crate::plugins::{
    CallContext, Capabilities, Decision, LoadedPlugin, Manifest, PluginSet, PolicyDecision,
    ToolOutcome, World, load_plugin_with_manifest, manifest_for_component,
};
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
        /// Also load this tool plugin (a component not installed in plugins_dir), with the
        /// same sandbox, grants and limits as installed ones; it replaces an installed
        /// plugin of the same name. Its manifest is `<stem>.toml` beside it or its
        /// project's `plugin.toml`. Repeatable.
        #[arg(long, value_name = "WASM")]
        plugin: Vec<PathBuf>,
        /// Also put this policy in front of the tools, before the configured policies
        /// (replacing one of the same name); every policy's decision is printed to stderr.
        /// Repeatable.
        #[arg(long, value_name = "WASM")]
        policy: Vec<PathBuf>,
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
    /// Says which world and WIT version a component implements, what it imports and asks
    /// for, whether the configuration grants that, or why it is refused.
    Check {
        /// The component: `<name>.wasm` with `<name>.toml` beside it, or a build output
        /// inside a project with `plugin.toml`.
        file: PathBuf,
    },
    /// Starts a plugin project that builds anywhere: for Rust, a crate with the guest SDK
    /// and the WIT package vendored, an example tool or policy with a unit test, a manifest
    /// and a README; for Python, a componentize-py project of either kind.
    New {
        /// The plugin's name: lower-case letters, digits and '-' (e.g. word-count).
        name: String,
        /// A tool the model calls, or a policy that checks every tool call.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The language.
        #[arg(long = "lang", value_enum, default_value = "rust")]
        language: LanguageArg,
        /// Where to create it (default: ./NAME); must be new or empty.
        dir: Option<PathBuf>,
    },
    /// Writes the WIT package of the plugin contract (`agent:plugin`) as `DIR/plugin.wit`,
    /// for other languages' tooling.
    Wit {
        /// The package version (default: the newest this host speaks).
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// The directory to write into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Compiles every component of `plugins_dir` into `plugin_cache_dir` for
    /// `plugin_cpu_features`, and says for each whether it was there already. An image
    /// build runs it so its containers start without compiling.
    Precompile,
}

/// `plugin new --kind`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Tool,
    Policy,
}

/// `plugin new --lang`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LanguageArg {
    Rust,
    Python,
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
            plugin,
            policy,
        }) => {
            let trials = Trials {
                tools: plugin,
                policies: policy,
            };
            tools_call(
                &config,
                &tool,
                &input,
                &workspace,
                session.as_deref(),
                &trials,
            )
        }
        Command::Plugin(PluginCommand::Check { file }) => plugin_check(&config, &file),
        Command::Plugin(PluginCommand::New {
            name,
            kind,
            language,
            dir,
        }) => plugin_new(name, kind, language, dir),
        Command::Plugin(PluginCommand::Wit { version, out }) => {
            let written = authoring::write_wit(version.as_deref(), &out)?;
            println!("wrote {}", written.display());
            Ok(ExitCode::SUCCESS)
        }
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

/// Components named on the command line to try beside the installed ones.
struct Trials {
    tools: Vec<PathBuf>,
    policies: Vec<PathBuf>,
}

fn tools_call(
    config: &Config,
    tool: &str,
    input: &str,
    workspace: &Path,
    session: Option<&str>,
    trials: &Trials,
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
    let plugins = with_trials(config, start::plugin_set(config)?, trials)?;
    let context = CallContext::new(workspace, session.clone()).with_user("cli");
    // The configured policies decide exactly as they do for the agent.
    let checked = plugins.call(tool, &input, &context);
    // One call is this process's whole turn: what it set is written before it exits.
    session.flush()?;
    for decision in &checked.decisions {
        let shown = !trials.policies.is_empty() || decision.decision != Decision::Allow;
        if shown {
            eprintln!("{}", describe_decision(decision));
        }
    }
    let outcome = checked.outcome;
    print_all(&format!("{}\n", outcome.text()))?;
    Ok(match outcome {
        ToolOutcome::Success(_) => ExitCode::SUCCESS,
        ToolOutcome::Error(_) => ExitCode::from(1),
    })
}

/// `plugins` with the components of `--plugin` and `--policy` loaded in, each with its
/// project's manifest and the operator's grants for its name.
fn with_trials(
    config: &Config,
    mut plugins: PluginSet,
    trials: &Trials,
) -> anyhow::Result<PluginSet> {
    if trials.tools.is_empty() && trials.policies.is_empty() {
        return Ok(plugins);
    }
    let runtime = start::plugin_runtime(config)?;
    // Policies are put in front one by one: load the last first so they run as given.
    for (file, world) in trials.tools.iter().map(|file| (file, World::Tool)).chain(
        trials
            .policies
            .iter()
            .rev()
            .map(|file| (file, World::Policy)),
    ) {
        let manifest = manifest_for_component(file)?;
        let plugin = load_plugin_with_manifest(&runtime, file, &manifest, &config.plugins)?;
        let found = plugin.world();
        if found != world {
            let option = match found {
                World::Tool => "--plugin",
                World::Policy => "--policy",
            };
            anyhow::bail!(
                "{} is a {found} (manifest {}): give it with {option}",
                file.display(),
                manifest.display()
            );
        }
        plugins = plugins.with_trial(plugin)?;
    }
    Ok(plugins)
}

/// One policy's decision, as `tools call` shows it.
fn describe_decision(decision: &PolicyDecision) -> String {
    match &decision.decision {
        Decision::Allow => format!("policy {}: allow", decision.policy),
        Decision::Deny(reason) => format!("policy {}: deny: {reason}", decision.policy),
        Decision::Rewrite(input) => format!("policy {}: rewrite to {input}", decision.policy),
    }
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

/// What the component's imports say about `capability`, beside what its manifest asks:
/// whether it uses what it asks for, and the refusal ahead when it imports what it does
/// not ask for. The workspace has no import of its own (every WASI program imports the
/// filesystem), so nothing is said about it.
fn import_note(capability: &str, asked: bool, imports: &[String]) -> String {
    let Some(interface) = Capabilities::interface_of(capability) else {
        return String::new();
    };
    let import = imports.iter().find(|name| {
        name.strip_prefix("agent:plugin/")
            .and_then(|rest| rest.split('@').next())
            == Some(interface)
    });
    match (import, asked) {
        (Some(_), true) => " (imported)".into(),
        (None, true) => " (not imported: the component does not use it)".into(),
        (Some(import), false) => format!(
            ", but the component imports {import}: it is refused until the manifest asks \
             for it (`{capability} = true` under [capabilities])"
        ),
        (None, false) => String::new(),
    }
}

fn plugin_new(
    name: String,
    kind: KindArg,
    language: LanguageArg,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let request = NewPlugin {
        dir: dir.unwrap_or_else(|| PathBuf::from(&name)),
        name,
        kind: match kind {
            KindArg::Tool => PluginKind::Tool,
            KindArg::Policy => PluginKind::Policy,
        },
        language: match language {
            LanguageArg::Rust => PluginLanguage::Rust,
            LanguageArg::Python => PluginLanguage::Python,
        },
    };
    let made = authoring::scaffold(&request)?;
    println!(
        "created the {} plugin {} in {} ({} files; agent:plugin@{}, agent-plugin-sdk {})",
        request.kind,
        request.name,
        made.dir.display(),
        made.files.len(),
        crate::plugins::WIT_VERSION,
        authoring::SDK_VERSION
    );
    println!("next:");
    for step in &made.next_steps {
        println!("  {step}");
    }
    Ok(ExitCode::SUCCESS)
}

fn plugin_check(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = start::plugin_runtime(config)?;
    println!("component: {}", file.display());
    let facts = match loader::compile_file(&runtime, file) {
        Ok((component, _)) => loader::inspect(&runtime, &component),
        Err(error) => {
            println!("refused:   {error:#}");
            return Ok(ExitCode::from(1));
        }
    };
    match &facts.world {
        Ok(world) => println!("world:     {world}"),
        Err(problem) => println!("world:     none ({problem})"),
    }
    let built_for = facts.wit_version.as_deref().unwrap_or("none");
    let speaks = crate::plugins::WIT_VERSION;
    if built_for == speaks {
        println!("wit:       agent:plugin@{built_for} (this host speaks it)");
    } else {
        println!(
            "wit:       agent:plugin@{built_for} (this host speaks agent:plugin@{speaks} only: \
             rebuild the component against `agent-host plugin wit` or a new `plugin new` project)"
        );
    }
    println!("imports:   {}", facts.imports.join(", "));
    let manifest_file = match manifest_for_component(file) {
        Ok(path) => path,
        Err(error) => {
            println!("refused:   {error:#}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("manifest:  {}", manifest_file.display());
    let manifest = match Manifest::load(&manifest_file) {
        Ok(manifest) => manifest,
        Err(error) => {
            println!("refused:   {error:#}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("name:      {}", manifest.name);
    // What the manifest asks for, against the grants of the configuration in use.
    let digest = sha256_hex(&std::fs::read(file)?, 32);
    let grant = config.plugins.for_plugin(&manifest.name);
    for check in grant.check_each(&manifest, &digest) {
        let verdict = match &check.refusal {
            None if !check.is_asked() => "not asked for".to_string(),
            None => "granted".to_string(),
            Some(refusal) => format!("NOT GRANTED: {refusal}"),
        };
        println!(
            "asks for:  {} = {}: {verdict}{}",
            check.capability,
            check.asked,
            import_note(check.capability, check.is_asked(), &facts.imports)
        );
    }
    match load_plugin_with_manifest(&runtime, file, &manifest_file, &config.plugins) {
        Ok(plugin) => {
            let limits = &plugin.identity().limits;
            println!(
                "limits:    memory {} MiB, time {} ms, result {} KiB",
                limits.memory_mb, limits.timeout_ms, limits.max_result_kb
            );
            match &plugin {
                LoadedPlugin::Tool(tools) => {
                    for tool in tools.tools() {
                        let summary = tool.spec.description.lines().next().unwrap_or("");
                        println!("tool:      {} - {summary}", tool.spec.name);
                    }
                }
                LoadedPlugin::Policy(policy) => println!("checks:    {}", policy.scope()),
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
