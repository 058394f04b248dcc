//! Starting the host's parts from its configuration: the plugin runtime and plugin set,
//! the model and history clients, the agent, and the front ends around it (the AgentCore
//! server, the Telegram bot, the terminal). The
//! command line ([`crate::cli`]) picks what to start; this module knows how.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::agent::launch::Launcher;
use crate::agent::tasks::TaskRegistry;
use crate::agent::{Agent, DeferredAgent, JobRunner};
use crate::config::{Config, HistoryConfig};
use crate::model::BedrockModel;
use crate::plugins::{AuditLog, LivePlugins, PluginRuntime, PluginSet, SessionState};
use crate::server::AppState;
use crate::session::Users;
use crate::session::history::{FileHistory, HistoryStore, S3History};
use crate::telegram::{Bot, BotApi, DeferredBot, Store};

/// The plugin engine, with its compile cache and the command settings of `exec`.
pub fn plugin_runtime(config: &Config) -> anyhow::Result<Arc<PluginRuntime>> {
    Ok(Arc::new(
        PluginRuntime::for_cpu(
            Some(config.plugin_cache_dir.clone()),
            &config.plugin_cpu_features,
        )?
        .with_exec_settings(config.exec.clone()),
    ))
}

/// The audit log of tool calls, unless the configuration turns it off.
pub fn audit_log(config: &Config) -> anyhow::Result<Option<Arc<AuditLog>>> {
    config
        .audit_log
        .as_deref()
        .map(|path| AuditLog::open(path).map(Arc::new))
        .transpose()
}

/// The plugin directory loaded once, every call recorded in the audit log.
pub fn plugin_set(config: &Config) -> anyhow::Result<PluginSet> {
    let set = PluginSet::load_dir(
        &plugin_runtime(config)?,
        &config.plugins_dir,
        &config.plugins,
    )?;
    Ok(set.with_audit(audit_log(config)?))
}

/// The plugin directory as a swappable set (see [`crate::plugins::live`]).
pub fn live_plugins(config: &Config) -> anyhow::Result<Arc<LivePlugins>> {
    Ok(Arc::new(LivePlugins::load(
        plugin_runtime(config)?,
        &config.plugins_dir,
        config.plugins.clone(),
        audit_log(config)?,
    )?))
}

/// The plugin state of session `name` (a plain name), kept in the state directory.
pub fn session_state(config: &Config, name: &str) -> anyhow::Result<Arc<SessionState>> {
    Ok(Arc::new(SessionState::open(&config.state_dir, name)?))
}

/// The Bedrock client as configured (standard AWS chain; nothing is resolved yet).
async fn model(config: &Config) -> BedrockModel {
    BedrockModel::from_env(config.model.clone()).await
}

/// The agent as configured: plugins, `model`, history store.
pub async fn agent(
    config: &Config,
    plugins: Arc<LivePlugins>,
    model: BedrockModel,
) -> anyhow::Result<Agent> {
    let history: Arc<dyn HistoryStore> = match &config.history {
        HistoryConfig::File(dir) => Arc::new(FileHistory::new(dir.clone())),
        HistoryConfig::S3 { bucket, prefix } => {
            Arc::new(S3History::from_env(bucket.clone(), prefix.clone()).await)
        }
    };
    Agent::new(plugins, model, history, config.agent.clone())
}

/// The users: their allow-list and workspaces.
fn users(config: &Config) -> Arc<Users> {
    if config.allowed_users.is_empty() {
        tracing::warn!("allowed_users is empty: nobody may use the agent");
    }
    Arc::new(Users::new(
        config.workspace_root.clone(),
        config.allowed_users.clone(),
    ))
}

/// What starts jobs on `runner` in the background.
fn launcher(runner: Arc<dyn JobRunner>) -> Arc<Launcher> {
    Arc::new(Launcher::new(runner, TaskRegistry::new()))
}

/// The bot's token: `telegram_bot_token`, or read from Secrets Manager
/// (`telegram_bot_token_secret`) now.
pub async fn telegram_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = &config.telegram_bot_token {
        return Ok(token.clone());
    }
    let id = config.telegram_bot_token_secret.as_deref().context(
        "telegram_bot_token is not set: put the token @BotFather gave in \
         AGENT_HOST_TELEGRAM_BOT_TOKEN (or the config file), or the id of the Secrets Manager \
         secret that holds it in AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET",
    )?;
    let token = crate::secrets::SecretReader::from_env()
        .await
        .read(id)
        .await?;
    anyhow::ensure!(
        crate::telegram::route::bot_id(&token).is_some(),
        "secret {id} does not hold a bot token (`123456:ABC...` from @BotFather): put it with \
         `aws secretsmanager put-secret-value --secret-id {id} --secret-string <token>`"
    );
    Ok(token)
}

/// The Bot API client as configured.
pub async fn telegram_api(config: &Config) -> anyhow::Result<BotApi> {
    BotApi::new(
        &config.telegram_api_base_url,
        &telegram_token(config).await?,
    )
}

/// The Telegram bot on `api`, starting tasks with `launcher`.
pub fn telegram_bot(
    config: &Config,
    api: BotApi,
    users: Arc<Users>,
    launcher: Arc<Launcher>,
) -> anyhow::Result<Arc<Bot>> {
    let store = Store::open(&config.state_dir.join("telegram"))?;
    Ok(Arc::new(Bot::new(
        api,
        store,
        users,
        launcher,
        config.telegram.clone(),
    )))
}

/// `agent-host telegram`: the bot, long polling Telegram, until SIGTERM or Ctrl-C.
pub fn telegram(config: Config) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        // A missing token or a webhook in the way is said before anything is loaded.
        let api = telegram_api(&config).await?;
        crate::telegram::poll::ensure_no_webhook(&api).await?;
        let plugins = live_plugins(&config)?;
        plugins.reload_on_sighup();
        let model = model(&config).await;
        model.check_configuration().await?;
        let agent = agent(&config, plugins, model).await?;
        let bot = telegram_bot(&config, api, users(&config), launcher(Arc::new(agent)))?;
        let stop = crate::server::termination_signal();
        let settings = crate::telegram::poll::PollSettings {
            timeout: config.telegram_poll_timeout,
            shutdown_grace: config.server.shutdown_grace,
        };
        crate::telegram::poll::run(bot, settings, stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `agent-host telegram set-commands`: registers the command menu with Telegram.
pub fn telegram_set_commands(config: Config) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let api = telegram_api(&config).await?;
        api.set_my_commands(crate::telegram::commands::MENU)
            .await
            .context("cannot register the command menu")?;
        println!(
            "registered {} commands: {}",
            crate::telegram::commands::MENU.len(),
            crate::telegram::commands::MENU
                .iter()
                .map(|c| format!("/{}", c.command))
                .collect::<Vec<_>>()
                .join(" ")
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Where `telegram set-webhook` takes the webhook secret from.
pub enum WebhookSecret {
    /// A Secrets Manager id or ARN.
    SecretsManager(String),
    /// The value itself.
    Given(String),
}

/// `agent-host telegram set-webhook`: the webhook for the relay, then the command menu.
/// The URL and the secret are checked before Telegram is called; the secret is never
/// printed.
pub fn telegram_set_webhook(
    config: Config,
    url: &str,
    secret: WebhookSecret,
    drop_pending_updates: bool,
) -> anyhow::Result<ExitCode> {
    use crate::telegram::{ALLOWED_UPDATES, commands::MENU, webhook};
    webhook::check_url(url).map_err(anyhow::Error::msg)?;
    async_runtime()?.block_on(async move {
        let api = telegram_api(&config).await?;
        let secret = match secret {
            WebhookSecret::Given(value) => value.trim().to_string(),
            WebhookSecret::SecretsManager(id) => {
                crate::secrets::SecretReader::from_env()
                    .await
                    .read(&id)
                    .await?
            }
        };
        anyhow::ensure!(webhook::is_valid_secret_token(&secret), webhook::BAD_SECRET);
        api.set_webhook(url, &secret, ALLOWED_UPDATES, drop_pending_updates)
            .await
            .context("Telegram refused the webhook")?;
        println!(
            "webhook set: {url} (updates: {}; each delivery carries the secret token)",
            ALLOWED_UPDATES.join(", ")
        );
        api.set_my_commands(MENU)
            .await
            .context("the webhook is set, but the command menu could not be registered")?;
        println!("registered {} commands", MENU.len());
        println!("check deliveries with `agent-host telegram webhook-info`");
        Ok(ExitCode::SUCCESS)
    })
}

/// `agent-host telegram webhook-info`: Telegram's view of the webhook.
pub fn telegram_webhook_info(config: Config) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let api = telegram_api(&config).await?;
        let info = api
            .webhook_info()
            .await
            .context("cannot read the webhook's state")?;
        let now = crate::shared::unix_seconds();
        println!("{}", crate::telegram::webhook::describe(&info, now));
        Ok(ExitCode::SUCCESS)
    })
}

/// `agent-host telegram delete-webhook`.
pub fn telegram_delete_webhook(
    config: Config,
    drop_pending_updates: bool,
) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let api = telegram_api(&config).await?;
        api.delete_webhook(drop_pending_updates)
            .await
            .context("cannot delete the webhook")?;
        println!("webhook deleted: `agent-host telegram` can poll for updates now");
        Ok(ExitCode::SUCCESS)
    })
}

/// `agent-host telegram session-id USER`: the runtime session the relay uses for `user`.
pub fn telegram_session_id(config: Config, user: i64) -> anyhow::Result<ExitCode> {
    let token = async_runtime()?.block_on(telegram_token(&config))?;
    let bot = crate::telegram::route::bot_id(&token).context(
        "telegram_bot_token is not a bot token: the session id depends on the bot's id, the \
         number before the `:` of its token",
    )?;
    println!("{}", crate::telegram::route::session_id(bot, user));
    Ok(ExitCode::SUCCESS)
}

/// The multi-threaded tokio runtime `serve` and `run` work on.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `agent-host serve`: the AgentCore contract on `0.0.0.0:<port>` until SIGTERM.
pub fn serve(config: Config) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        // Loaded before serving so a broken plugin stops the host at start, not mid-task.
        let plugins = live_plugins(&config)?;
        {
            let set = plugins.current();
            tracing::info!(tools = ?set.tool_names(), policies = ?set.policy_names(), "plugins loaded");
        }
        plugins.reload_on_sighup();
        let _watcher =
            (!config.plugins_reload.is_zero()).then(|| plugins.watch(config.plugins_reload));
        let users = users(&config);
        let settings = config.server.clone();
        // The AWS client set-up (credential and region chains, TLS roots) is built while
        // the server already answers /ping; the first task waits for it.
        let agent = {
            let config = config.clone();
            DeferredAgent::start(async move { agent(&config, plugins, model(&config).await).await })
        };
        let launcher = launcher(Arc::new(agent));
        let mut state = AppState::with_launcher(users.clone(), launcher.clone(), settings);
        // Nothing here touches the network: the bot talks to Telegram only once an update
        // arrives (a snapshotted start must not).
        if let Some(token) = &config.telegram_bot_token {
            let api = BotApi::new(&config.telegram_api_base_url, token)?;
            state = state.with_bot(telegram_bot(&config, api, users, launcher)?);
        } else if config.telegram_bot_token_secret.is_some() {
            // The token is read at the first update: a snapshot holds no credentials.
            let config = config.clone();
            state = state.with_deferred_bot(DeferredBot::new(move || {
                let (config, users, launcher) = (config.clone(), users.clone(), launcher.clone());
                Box::pin(async move {
                    let api = telegram_api(&config).await?;
                    telegram_bot(&config, api, users, launcher)
                })
            }));
        } else {
            tracing::info!("telegram_bot_token is not set: Telegram updates will be refused");
        }
        // SIGTERM means "shut down gracefully" from before the port is open.
        let stop = crate::server::termination_signal();
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on 0.0.0.0:{} (set --port or PORT)",
                    config.port
                )
            })?;
        tracing::info!(port = config.port, "listening");
        crate::server::serve(listener, state, stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `agent-host run`: one task in `workspace` for session `user_key`, in the terminal.
pub fn run(
    config: Config,
    workspace: &Path,
    user_key: String,
    new: bool,
    prompt: String,
) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let plugins = live_plugins(&config)?;
        // The person at the keyboard hears at once what is missing, in one line.
        let model = model(&config).await;
        model.check_configuration().await?;
        let agent = agent(&config, plugins, model).await?;
        if new {
            agent.forget(&user_key).await?;
        }
        Ok(crate::run::run_task(&agent, workspace.to_path_buf(), user_key, prompt).await)
    })
}
