//! Configuration: one [`Config`], read from an optional TOML file and then from
//! `AGENT_HOST_<KEY>` environment variables, validated once at start. Errors name the key
//! (and the file or variable it came from) and say what is expected; a value out of range
//! is refused, never changed.
//!
//! - [`keys`]: every key, written once (kind, range, default, doc line); the README's
//!   table and `agent-host --help` come from it.
//! - [`values`]: the merged file and environment, read through the keys.
//! - here: the settings of each part, built from the values.

pub mod keys;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use self::keys::{
    DEFAULT_MODEL_ID, DEFAULT_PLUGINS_RELOAD_SECS, DEFAULT_PORT, DEFAULT_S3_PREFIX,
    DEFAULT_TELEGRAM_API, DEFAULT_TELEGRAM_POLL_SECS,
};
use self::values::Values;
use crate::agent::AgentSettings;
use crate::exec::ExecSettings;
use crate::model::ModelSettings;
use crate::model::PriceTable;
use crate::plugins::{CpuFeatures, PluginSettings};
use crate::server::ServerSettings;
use crate::telegram::BotSettings;

/// The default config file, read when present and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "agent-host.toml";
/// Prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "AGENT_HOST_";

/// The validated configuration: the settings of each part, and where things live.
#[derive(Clone)]
pub struct Config {
    /// Listen port of `serve`.
    pub port: u16,
    /// Histories, plugin state, precompiled plugin cache.
    pub state_dir: PathBuf,
    /// One directory per user below this.
    pub workspace_root: PathBuf,
    /// Where plugin components and manifests are found.
    pub plugins_dir: PathBuf,
    /// Where precompiled plugin components are kept.
    pub plugin_cache_dir: PathBuf,
    /// The CPU features plugin code is compiled for.
    pub plugin_cpu_features: CpuFeatures,
    /// User ids allowed to use the bot.
    pub allowed_users: Vec<String>,
    /// Telegram bot token (secret).
    pub telegram_bot_token: Option<String>,
    /// Secrets Manager id of the bot token, read when first needed.
    pub telegram_bot_token_secret: Option<String>,
    /// Telegram Bot API base URL.
    pub telegram_api_base_url: String,
    /// How the Telegram bot behaves.
    pub telegram: BotSettings,
    /// How long one `getUpdates` long poll waits.
    pub telegram_poll_timeout: Duration,
    /// How the agent works (state under `state_dir`).
    pub agent: AgentSettings,
    /// How the model is called.
    pub model: ModelSettings,
    /// The HTTP front door.
    pub server: ServerSettings,
    /// How commands run for plugins granted `exec`.
    pub exec: ExecSettings,
    /// Where conversations are kept.
    pub history: HistoryConfig,
    /// The audit log of tool calls, unless turned off.
    pub audit_log: Option<PathBuf>,
    /// How often `serve` polls the plugin directory for changes (zero: never).
    pub plugins_reload: Duration,
    /// Per-plugin grants and configuration.
    pub plugins: PluginSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("state_dir", &self.state_dir)
            .field("workspace_root", &self.workspace_root)
            .field("plugins_dir", &self.plugins_dir)
            .field("plugin_cache_dir", &self.plugin_cache_dir)
            .field("plugin_cpu_features", &self.plugin_cpu_features)
            .field("allowed_users", &self.allowed_users)
            .field(
                "telegram_bot_token",
                &self.telegram_bot_token.as_ref().map(|_| "<redacted>"),
            )
            .field("telegram_bot_token_secret", &self.telegram_bot_token_secret)
            .field("telegram_api_base_url", &self.telegram_api_base_url)
            .field("telegram", &self.telegram)
            .field("telegram_poll_timeout", &self.telegram_poll_timeout)
            .field("model", &self.model)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Where conversations are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryConfig {
    /// JSON-lines files in this directory.
    File(PathBuf),
    /// One object per user in an S3 bucket.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else
    /// [`DEFAULT_CONFIG_FILE`] if present; then environment overrides.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let file = file
            .or_else(|| Some(Path::new(DEFAULT_CONFIG_FILE)).filter(|default| default.is_file()));
        let (table, origin) = match file {
            Some(path) => (read_file(path)?, format!("config file {}", path.display())),
            None => (toml::Table::new(), "configuration".to_string()),
        };
        Self::from_table(table, &origin, file, &|key| std::env::var(key).ok())
    }

    /// Parses config file text (for tests and tools); environment is not consulted.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        Self::from_table(table, "configuration", None, &|_| None)
    }

    /// `file` is the config file the table came from, if any: it may hold secrets (the
    /// bot token), so it is checked with the other private places.
    fn from_table(
        table: toml::Table,
        origin: &str,
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        Self::from_values(&Values::new(table, origin, env)?, file)
    }

    fn from_values(values: &Values, file: Option<&Path>) -> anyhow::Result<Self> {
        let exec = exec_settings(values)?;
        let state_dir = values
            .text("state_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(default_state_dir);
        let audit_log = match values.text("audit_log")?.as_deref().map(str::trim) {
            None => Some(state_dir.join("audit.jsonl")),
            Some("off") => None,
            Some(path) => Some(PathBuf::from(path)),
        };
        let workspace_root = values
            .text("workspace_root")?
            .map(PathBuf::from)
            .unwrap_or_else(|| state_dir.join("workspaces"));
        let plugins_dir = values
            .text("plugins_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(default_plugins_dir);
        let plugin_cache_dir = values
            .text("plugin_cache_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(|| state_dir.join("plugin-cache"));
        let plugin_cpu_features = match values.text("plugin_cpu_features")? {
            None => CpuFeatures::Native,
            Some(text) => text
                .parse()
                .map_err(|error| anyhow::anyhow!("plugin_cpu_features = {text:?}: {error}"))?,
        };
        let telegram_api_base_url = values
            .text("telegram_api_base_url")?
            .unwrap_or_else(|| DEFAULT_TELEGRAM_API.to_string());
        if !telegram_api_base_url.starts_with("http://")
            && !telegram_api_base_url.starts_with("https://")
        {
            anyhow::bail!(
                "telegram_api_base_url = {telegram_api_base_url:?} must be an http:// or https:// URL"
            );
        }
        let history = match values.text("history_store")?.as_deref().unwrap_or("file") {
            "file" => HistoryConfig::File(state_dir.join("history")),
            "s3" => HistoryConfig::S3 {
                bucket: values.text("history_s3_bucket")?.context(
                    "history_store = \"s3\" needs history_s3_bucket (AGENT_HOST_HISTORY_S3_BUCKET)",
                )?,
                prefix: values
                    .text("history_s3_prefix")?
                    .unwrap_or_else(|| DEFAULT_S3_PREFIX.to_string()),
            },
            other => anyhow::bail!("history_store = {other:?}: use \"file\" or \"s3\""),
        };
        check_private_places(
            &exec,
            &state_dir,
            &plugin_cache_dir,
            &workspace_root,
            audit_log.as_deref(),
            file,
        )?;
        let telegram = telegram_settings(values, &exec)?;
        let telegram_bot_token = values.text("telegram_bot_token")?;
        let telegram_bot_token_secret = values.text("telegram_bot_token_secret")?;
        if telegram_bot_token.is_some() && telegram_bot_token_secret.is_some() {
            anyhow::bail!(
                "both telegram_bot_token and telegram_bot_token_secret are set: keep one (the \
                 secret's id in a deployment, the token itself on a laptop)"
            );
        }
        Ok(Self {
            port: values
                .number("port")?
                .map_or(DEFAULT_PORT, |port| port as u16),
            agent: agent_settings(values, &state_dir)?,
            model: model_settings(values)?,
            server: server_settings(values)?,
            exec,
            audit_log,
            plugins_reload: Duration::from_secs(
                values
                    .number("plugins_reload_secs")?
                    .unwrap_or(DEFAULT_PLUGINS_RELOAD_SECS),
            ),
            history,
            state_dir,
            workspace_root,
            plugins_dir,
            plugin_cache_dir,
            plugin_cpu_features,
            allowed_users: values.list("allowed_users")?,
            telegram_bot_token,
            telegram_bot_token_secret,
            telegram_api_base_url,
            telegram,
            telegram_poll_timeout: Duration::from_secs(
                values
                    .number("telegram_poll_timeout_secs")?
                    .unwrap_or(DEFAULT_TELEGRAM_POLL_SECS),
            ),
            plugins: values.plugins()?,
        })
    }
}

/// The agent's keys over its defaults.
fn agent_settings(values: &Values, state_dir: &Path) -> anyhow::Result<AgentSettings> {
    let mut agent = AgentSettings::new(state_dir.to_path_buf());
    if let Some(n) = values.number("max_turns")? {
        agent.max_turns = n as u32;
    }
    if let Some(n) = values.number("max_tool_result_chars")? {
        agent.max_tool_result_chars = n as usize;
    }
    if let Some(n) = values.number("context_budget_tokens")? {
        agent.context_budget_tokens = n as usize;
    }
    if let Some(n) = values.number("max_failed_validations")? {
        agent.max_failed_validations = n as u32;
    }
    if let Some(secs) = values.number("idle_user_evict_secs")? {
        agent.idle_user_evict = Duration::from_secs(secs);
    }
    agent.operator_prompt = values.text("system_prompt")?;
    Ok(agent)
}

/// The Telegram bot's keys over its defaults.
fn telegram_settings(values: &Values, exec: &ExecSettings) -> anyhow::Result<BotSettings> {
    let mut telegram = BotSettings::default();
    if let Some(groups) = values.flag("telegram_groups")? {
        telegram.groups = groups;
    }
    if let Some(ms) = values.number("telegram_send_interval_ms")? {
        telegram.send_interval = Duration::from_millis(ms);
    }
    telegram.model_id = values
        .text("model_id")?
        .unwrap_or_else(|| DEFAULT_MODEL_ID.to_string());
    telegram.prices =
        PriceTable::with_overrides(&values.list("model_prices")?).map_err(anyhow::Error::msg)?;
    telegram.exec = exec.clone();
    Ok(telegram)
}

/// The model's keys over its defaults.
fn model_settings(values: &Values) -> anyhow::Result<ModelSettings> {
    let model_id = values
        .text("model_id")?
        .unwrap_or_else(|| DEFAULT_MODEL_ID.to_string());
    let mut model = ModelSettings::new(model_id);
    if let Some(n) = values.number("model_max_tokens")? {
        model.max_tokens = n as i32;
    }
    if let Some(secs) = values.number("model_timeout_secs")? {
        model.request_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = values.number("model_max_attempts")? {
        model.max_attempts = n as u32;
    }
    if let Some(ms) = values.number("model_retry_base_ms")? {
        model.retry_base = Duration::from_millis(ms);
    }
    if let Some(streaming) = values.flag("model_streaming")? {
        model.streaming = streaming;
    }
    Ok(model)
}

/// The server's keys over its defaults.
fn server_settings(values: &Values) -> anyhow::Result<ServerSettings> {
    let mut server = ServerSettings::default();
    if let Some(n) = values.number("max_body_bytes")? {
        server.max_body_bytes = n as usize;
    }
    if let Some(secs) = values.number("shutdown_grace_secs")? {
        server.shutdown_grace = Duration::from_secs(secs);
    }
    Ok(server)
}

/// The `exec_*` keys over their defaults; the paths must be absolute and exist.
fn exec_settings(values: &Values) -> anyhow::Result<ExecSettings> {
    let mut exec = ExecSettings::default();
    let paths = |key: &str| -> anyhow::Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = values.list(key)?.into_iter().map(PathBuf::from).collect();
        if let Some(path) = paths.iter().find(|p| !p.is_absolute()) {
            anyhow::bail!(
                "{key} holds {}, which is not an absolute path",
                path.display()
            );
        }
        if let Some(path) = paths.iter().find(|p| !p.exists()) {
            anyhow::bail!(
                "{key} holds {}, which does not exist: create it or remove it from {key}",
                path.display()
            );
        }
        Ok(paths)
    };
    exec.writable_paths = paths("exec_writable_paths")?;
    exec.readable_paths = paths("exec_readable_paths")?;
    exec.env = values.list("exec_env")?;
    if let Some(network) = values.flag("exec_network")? {
        exec.network = network;
    }
    if let Some(allow) = values.flag("exec_allow_unconfined")? {
        exec.allow_unconfined = allow;
    }
    if let Some(n) = values.number("exec_max_processes")? {
        exec.max_processes = n;
    }
    if let Some(n) = values.number("exec_max_file_size_mb")? {
        exec.max_file_size_mb = n;
    }
    if let Some(n) = values.number("exec_cpu_secs")? {
        exec.cpu_secs = n;
    }
    if let Some(n) = values.number("exec_max_output_kb")? {
        exec.max_output_kb = n;
    }
    Ok(exec)
}

/// Refuses a configuration that lets commands read the host's private places (state,
/// plugin cache, audit log, the config file) or puts one where a workspace could be.
fn check_private_places(
    exec: &ExecSettings,
    state_dir: &Path,
    plugin_cache: &Path,
    workspace_root: &Path,
    audit_log: Option<&Path>,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let mut private = vec![("state_dir", state_dir), ("plugin_cache_dir", plugin_cache)];
    if let Some(audit) = audit_log {
        private.push(("audit_log", audit));
    }
    if let Some(file) = file {
        private.push(("the config file", file));
    }
    crate::exec::check_private(exec, &private).map_err(|error| anyhow::anyhow!(error))?;
    for (key, path) in &private {
        if path.starts_with(workspace_root) {
            anyhow::bail!(
                "{key} ({}) lies beneath workspace_root ({}), where a user's workspace \
                 could be it: move one of them",
                path.display(),
                workspace_root.display()
            );
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "config file {} is not valid: {}",
            path.display(),
            error.message()
        )
    })
}

/// A writable per-user state directory, following the XDG convention.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("agent-host");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/agent-host");
    }
    std::env::temp_dir().join("agent-host")
}

/// The built-in plugins of this build if still present, else `plugins/` beside the binary.
pub fn default_plugins_dir() -> PathBuf {
    crate::plugins::builtin_plugins_dir().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("plugins")))
            .unwrap_or_else(|| PathBuf::from("plugins"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_range_are_refused_with_the_key_named_never_clamped() {
        for (text, key) in [
            ("max_tool_result_chars = 10", "max_tool_result_chars"),
            ("context_budget_tokens = 5", "context_budget_tokens"),
            ("model_timeout_secs = 0", "model_timeout_secs"),
            ("model_max_attempts = 0", "model_max_attempts"),
            ("max_failed_validations = 0", "max_failed_validations"),
            ("idle_user_evict_secs = 99999999", "idle_user_evict_secs"),
        ] {
            let error = Config::from_toml(text).unwrap_err().to_string();
            assert!(error.starts_with(key), "{text}: {error}");
        }
        let edge =
            Config::from_toml("max_tool_result_chars = 1000\nidle_user_evict_secs = 0").unwrap();
        assert_eq!(edge.agent.max_tool_result_chars, 1000);
        assert!(edge.agent.idle_user_evict.is_zero());
    }

    #[test]
    fn the_readme_table_is_the_one_the_keys_make() {
        let readme = include_str!("../../../README.md");
        let table = keys::markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's configuration table is not the one `config::keys` makes; replace it \
             with:\n\n{table}"
        );
        let help = keys::help_text();
        for key in keys::keys() {
            assert!(help.contains(key.name), "{} missing from --help", key.name);
        }
    }

    #[test]
    fn every_default_is_accepted_by_its_own_range() {
        let config = Config::from_toml("").unwrap();
        for key in keys::keys() {
            if let keys::Kind::Number { min, max } = key.kind {
                let default: u64 = key.default.parse().unwrap();
                assert!((min..=max).contains(&default), "{}", key.name);
            }
        }
        assert_eq!(
            config.agent.max_turns.to_string(),
            keys::key("max_turns").unwrap().default
        );
    }

    fn with_env(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let env = |key: &str| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        };
        Config::from_table(table, "test config", None, &env)
    }

    #[test]
    fn defaults_and_overrides() {
        let config = with_env(
            "state_dir = \"/s\"\nallowed_users = [\"1\", \"2\"]",
            &[("AGENT_HOST_MAX_TURNS", "5"), ("PORT", "9000")],
        )
        .unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.agent.max_turns, 5);
        assert_eq!(config.workspace_root, PathBuf::from("/s/workspaces"));
        assert_eq!(config.allowed_users, vec!["1", "2"]);
        let config = with_env("", &[("AGENT_HOST_ALLOWED_USERS", " 7, 8 ,")]).unwrap();
        assert_eq!(config.allowed_users, vec!["7", "8"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("prot = 1", vec![], "unknown key `prot`"),
            ("max_turns = 0", vec![], "max_turns"),
            ("", vec![("AGENT_HOST_PORT", "eighty")], "AGENT_HOST_PORT"),
            ("", vec![("AGENT_HOST_PORT", "70000")], "port"),
            (
                "telegram_api_base_url = \"ftp://x\"",
                vec![],
                "telegram_api_base_url",
            ),
            ("[plugins.files]\nexec = \"yes\"", vec![], "invalid type"),
            (
                "",
                vec![("AGENT_HOST_MODEL_STREAMING", "maybe")],
                "AGENT_HOST_MODEL_STREAMING",
            ),
            ("history_store = \"s3\"", vec![], "history_s3_bucket"),
            ("history_store = \"ftp\"", vec![], "history_store"),
            ("port = 0", vec![], "port"),
            (
                "telegram_bot_token = \"1:a\"\ntelegram_bot_token_secret = \"s\"",
                vec![],
                "keep one",
            ),
            (
                "plugin_cpu_features = \"has avx\"",
                vec![],
                "plugin_cpu_features",
            ),
        ];
        for (text, vars, expected) in cases {
            let message = format!("{:#}", with_env(text, &vars).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let config = with_env("telegram_bot_token = \"123:TOKEN-MARKER\"", &[]).unwrap();
        assert!(!format!("{config:?}").contains("TOKEN-MARKER"));
    }
}
