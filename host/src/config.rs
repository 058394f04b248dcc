//! Configuration: one [`Config`], read from an optional TOML file and then from
//! `AGENT_HOST_<KEY>` environment variables, validated once at start. Errors name the key
//! (and the file or variable it came from) and say what is expected.
//!
//! | key | default |
//! | --- | --- |
//! | `port` | 8080 (`PORT` is also read) |
//! | `state_dir` | `$XDG_STATE_HOME/agent-host`, else `~/.local/state/agent-host`, else `<tmp>/agent-host` |
//! | `workspace_root` | `<state_dir>/workspaces` |
//! | `plugins_dir` | the built-in plugins of this build, else `<dir of the binary>/plugins` |
//! | `allowed_users` | empty (nobody) |
//! | `model_id` | `us.anthropic.claude-sonnet-4-5-20250929-v1:0` |
//! | `max_turns` | 30 |
//! | `telegram_bot_token` | none (secret: never logged) |
//! | `telegram_api_base_url` | `https://api.telegram.org` |
//! | `system_prompt` | none (operator text appended to the agent's system prompt) |
//! | `model_max_tokens` | 8192 (output tokens per model turn) |
//! | `model_timeout_secs` | 120 (wait for a response to start, and between stream events) |
//! | `model_max_attempts` | 5 (tries per model turn; throttling, 5xx and broken streams retry) |
//! | `model_retry_base_ms` | 800 (first backoff; doubles per retry, full jitter, capped at 20 s) |
//! | `model_streaming` | true (`ConverseStream`; false: `Converse`) |
//! | `max_tool_result_chars` | 60000 (longer tool results are cut with a note) |
//! | `context_budget_tokens` | 150000 (estimated size above which the oldest turns are dropped) |
//! | `history_store` | `file` (`<state_dir>/history`), or `s3` |
//! | `history_s3_bucket`, `history_s3_prefix` | none, `agent-host/history/` (for `history_store = "s3"`) |
//! | `max_body_bytes` | 1048576 (bodies over it get 413) |
//! | `shutdown_grace_secs` | 10 (running tasks' time to finish on SIGTERM; AgentCore allows ~15) |
//! | `exec_network` | true (commands may use the network; false: a network namespace per command) |
//! | `exec_env` | empty (host variables passed to commands beside PATH, HOME, LANG, TERM) |
//! | `exec_writable_paths` | empty (directories commands may write besides the workspace) |
//! | `exec_readable_paths` | empty (directories commands may read besides the workspace and the system trees) |
//! | `exec_allow_unconfined` | false (run commands even when a required confinement mechanism is missing) |
//! | `exec_max_processes` | 512 (processes per command) |
//! | `exec_max_file_size_mb` | 1024 (largest file a command may write) |
//! | `exec_cpu_secs` | 900 (CPU seconds per command) |
//! | `exec_max_output_kb` | 4096 (stdout + stderr kept per command) |
//! | `max_failed_validations` | 3 (failed `check-changes` rounds after which a task stops) |
//! | `idle_user_evict_secs` | 1800 (idle users' conversations and plugin state leave memory after it; 0: at once) |
//! | `plugins_reload_secs` | 2 (how often `serve` looks for changed plugins; 0: only on `SIGHUP`) |
//! | `audit_log` | `<state_dir>/audit.jsonl` (one JSON line per tool call; `off` disables) |
//! | `[plugins.<name>]` | per-plugin grants and config, see [`crate::plugins::PluginGrant`] (file only) |

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::exec::ExecSettings;
use crate::plugins::PluginSettings;

/// The default config file, read when present and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "agent-host.toml";
/// The default Bedrock model (a cross-region inference profile).
pub const DEFAULT_MODEL_ID: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// Prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "AGENT_HOST_";

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    /// Listen port.
    pub port: u16,
    /// Histories, plugin state, precompiled plugin cache.
    pub state_dir: PathBuf,
    /// One directory per user below this.
    pub workspace_root: PathBuf,
    /// Where plugin components and manifests are found.
    pub plugins_dir: PathBuf,
    /// User ids allowed to use the bot.
    pub allowed_users: Vec<String>,
    /// Bedrock model or inference profile id.
    pub model_id: String,
    /// Turn limit per task.
    pub max_turns: u32,
    /// Telegram bot token (secret).
    pub telegram_bot_token: Option<String>,
    /// Telegram Bot API base URL.
    pub telegram_api_base_url: String,
    /// Operator text appended to the agent's system prompt.
    pub system_prompt: Option<String>,
    /// How the model is called.
    pub model: ModelConfig,
    /// Longest tool result passed to the model, in characters.
    pub max_tool_result_chars: usize,
    /// Estimated conversation size (tokens) above which the oldest turns are dropped.
    pub context_budget_tokens: usize,
    /// Where conversations are kept.
    pub history: HistoryConfig,
    /// Largest `/invocations` body accepted.
    pub max_body_bytes: usize,
    /// Time running tasks get to finish on SIGTERM before they are cancelled.
    pub shutdown_grace: std::time::Duration,
    /// How commands run for plugins granted `exec`.
    pub exec: ExecSettings,
    /// The audit log of tool calls, unless turned off.
    pub audit_log: Option<PathBuf>,
    /// Failed validations after which a task stops.
    pub max_failed_validations: u32,
    /// How long an idle user's conversation and plugin state stay in memory.
    pub idle_user_evict: std::time::Duration,
    /// How often `serve` polls the plugin directory for changes (zero: never).
    pub plugins_reload: std::time::Duration,
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
            .field("allowed_users", &self.allowed_users)
            .field("model_id", &self.model_id)
            .field("max_turns", &self.max_turns)
            .field(
                "telegram_bot_token",
                &self.telegram_bot_token.as_ref().map(|_| "<redacted>"),
            )
            .field("telegram_api_base_url", &self.telegram_api_base_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// How the model is called (see [`crate::model::ModelSettings`]).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Output tokens per turn.
    pub max_tokens: i32,
    /// Wait for a response to start, and between stream events.
    pub timeout: std::time::Duration,
    /// Tries per turn.
    pub max_attempts: u32,
    /// First retry backoff.
    pub retry_base: std::time::Duration,
    /// `ConverseStream` rather than `Converse`.
    pub streaming: bool,
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

/// The file's shape, before validation. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    port: Option<u64>,
    state_dir: Option<PathBuf>,
    workspace_root: Option<PathBuf>,
    plugins_dir: Option<PathBuf>,
    allowed_users: Option<UserList>,
    model_id: Option<String>,
    max_turns: Option<u32>,
    telegram_bot_token: Option<String>,
    telegram_api_base_url: Option<String>,
    system_prompt: Option<String>,
    model_max_tokens: Option<u32>,
    model_timeout_secs: Option<u64>,
    model_max_attempts: Option<u32>,
    model_retry_base_ms: Option<u64>,
    model_streaming: Option<bool>,
    max_tool_result_chars: Option<u64>,
    context_budget_tokens: Option<u64>,
    history_store: Option<String>,
    history_s3_bucket: Option<String>,
    history_s3_prefix: Option<String>,
    max_body_bytes: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    audit_log: Option<String>,
    plugins_reload_secs: Option<u64>,
    max_failed_validations: Option<u32>,
    idle_user_evict_secs: Option<u64>,
    exec_network: Option<bool>,
    exec_env: Option<UserList>,
    exec_writable_paths: Option<UserList>,
    exec_readable_paths: Option<UserList>,
    exec_allow_unconfined: Option<bool>,
    exec_max_processes: Option<u64>,
    exec_max_file_size_mb: Option<u64>,
    exec_cpu_secs: Option<u64>,
    exec_max_output_kb: Option<u64>,
    #[serde(default)]
    plugins: PluginSettings,
}

/// The kind of each key that can come from the environment.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Number,
    Flag,
}

/// Every scalar key, which `AGENT_HOST_<KEY>` may set.
const ENV_KEYS: &[(&str, Kind)] = &[
    ("port", Kind::Number),
    ("state_dir", Kind::Text),
    ("workspace_root", Kind::Text),
    ("plugins_dir", Kind::Text),
    ("allowed_users", Kind::Text),
    ("model_id", Kind::Text),
    ("max_turns", Kind::Number),
    ("telegram_bot_token", Kind::Text),
    ("telegram_api_base_url", Kind::Text),
    ("system_prompt", Kind::Text),
    ("model_max_tokens", Kind::Number),
    ("model_timeout_secs", Kind::Number),
    ("model_max_attempts", Kind::Number),
    ("model_retry_base_ms", Kind::Number),
    ("model_streaming", Kind::Flag),
    ("max_tool_result_chars", Kind::Number),
    ("context_budget_tokens", Kind::Number),
    ("history_store", Kind::Text),
    ("history_s3_bucket", Kind::Text),
    ("history_s3_prefix", Kind::Text),
    ("max_body_bytes", Kind::Number),
    ("shutdown_grace_secs", Kind::Number),
    ("audit_log", Kind::Text),
    ("plugins_reload_secs", Kind::Number),
    ("max_failed_validations", Kind::Number),
    ("idle_user_evict_secs", Kind::Number),
    ("exec_network", Kind::Flag),
    ("exec_env", Kind::Text),
    ("exec_writable_paths", Kind::Text),
    ("exec_readable_paths", Kind::Text),
    ("exec_allow_unconfined", Kind::Flag),
    ("exec_max_processes", Kind::Number),
    ("exec_max_file_size_mb", Kind::Number),
    ("exec_cpu_secs", Kind::Number),
    ("exec_max_output_kb", Kind::Number),
];

/// A list key (`allowed_users`, `exec_env`, ...) as a TOML list or a comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UserList {
    List(Vec<String>),
    Text(String),
}

impl UserList {
    fn into_vec(self) -> Vec<String> {
        match self {
            UserList::List(list) => list,
            UserList::Text(text) => split_users(&text),
        }
    }
}

fn split_users(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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
        mut table: toml::Table,
        origin: &str,
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        table.extend(env_table(env)?);
        let raw: RawConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    anyhow::anyhow!("{origin} is not valid: {}", e.message())
                })?;
        Self::from_raw(raw, file)
    }

    fn from_raw(raw: RawConfig, file: Option<&Path>) -> anyhow::Result<Self> {
        let exec = exec_settings(&raw)?;
        let state_dir = raw.state_dir.unwrap_or_else(default_state_dir);
        let audit_log = match raw.audit_log.as_deref().map(str::trim) {
            None | Some("") => Some(state_dir.join("audit.jsonl")),
            Some("off") => None,
            Some(path) => Some(PathBuf::from(path)),
        };
        let workspace_root = raw
            .workspace_root
            .unwrap_or_else(|| state_dir.join("workspaces"));
        let plugins_dir = raw.plugins_dir.unwrap_or_else(default_plugins_dir);
        let model_id = raw.model_id.unwrap_or_else(|| DEFAULT_MODEL_ID.to_string());
        if model_id.trim().is_empty() {
            anyhow::bail!("model_id is empty: give a Bedrock model or inference profile id");
        }
        let max_turns = raw.max_turns.unwrap_or(30);
        if max_turns == 0 {
            anyhow::bail!("max_turns = 0: the agent needs at least one turn");
        }
        let telegram_api_base_url = raw
            .telegram_api_base_url
            .unwrap_or_else(|| "https://api.telegram.org".to_string());
        if !telegram_api_base_url.starts_with("http://")
            && !telegram_api_base_url.starts_with("https://")
        {
            anyhow::bail!(
                "telegram_api_base_url = {telegram_api_base_url:?} must be an http:// or https:// URL"
            );
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(1024 * 1024);
        if !(1024..=100 * 1024 * 1024).contains(&max_body_bytes) {
            anyhow::bail!(
                "max_body_bytes = {max_body_bytes} must be between 1024 and 104857600 (100 MiB)"
            );
        }
        let grace = raw.shutdown_grace_secs.unwrap_or(10);
        if grace > 14 * 60 {
            anyhow::bail!(
                "shutdown_grace_secs = {grace} is too long (at most 840; AgentCore allows ~15 s)"
            );
        }
        let idle_user_evict = raw.idle_user_evict_secs.unwrap_or(30 * 60);
        if idle_user_evict > 7 * 24 * 3600 {
            anyhow::bail!(
                "idle_user_evict_secs = {idle_user_evict} must be at most 604800 (a week)"
            );
        }
        let port = raw.port.unwrap_or(8080);
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .with_context(|| format!("port = {port} is not a port: use 1-65535"))?;
        let model = ModelConfig {
            max_tokens: i32::try_from(raw.model_max_tokens.unwrap_or(8192))
                .ok()
                .filter(|n| *n > 0)
                .context("model_max_tokens must be between 1 and 2147483647")?,
            timeout: std::time::Duration::from_secs(in_range(
                "model_timeout_secs",
                raw.model_timeout_secs.unwrap_or(120),
                1,
                3600,
            )?),
            max_attempts: in_range(
                "model_max_attempts",
                raw.model_max_attempts.unwrap_or(5).into(),
                1,
                100,
            )? as u32,
            retry_base: std::time::Duration::from_millis(raw.model_retry_base_ms.unwrap_or(800)),
            streaming: raw.model_streaming.unwrap_or(true),
        };
        let history = match raw.history_store.as_deref().unwrap_or("file") {
            "file" => HistoryConfig::File(state_dir.join("history")),
            "s3" => HistoryConfig::S3 {
                bucket: raw.history_s3_bucket.filter(|b| !b.is_empty()).context(
                    "history_store = \"s3\" needs history_s3_bucket (AGENT_HOST_HISTORY_S3_BUCKET)",
                )?,
                prefix: raw
                    .history_s3_prefix
                    .unwrap_or_else(|| "agent-host/history/".to_string()),
            },
            other => anyhow::bail!("history_store = {other:?}: use \"file\" or \"s3\""),
        };
        let plugin_cache = plugin_cache_dir(&state_dir);
        let mut private = vec![
            ("state_dir", state_dir.as_path()),
            ("the plugin cache", plugin_cache.as_path()),
        ];
        if let Some(audit) = &audit_log {
            private.push(("audit_log", audit.as_path()));
        }
        if let Some(file) = file {
            private.push(("the config file", file));
        }
        crate::exec::check_private(&exec, &private).map_err(|error| anyhow::anyhow!(error))?;
        for (key, path) in &private {
            if path.starts_with(&workspace_root) {
                anyhow::bail!(
                    "{key} ({}) lies beneath workspace_root ({}), where a user's workspace \
                     could be it: move one of them",
                    path.display(),
                    workspace_root.display()
                );
            }
        }
        Ok(Self {
            exec,
            audit_log,
            max_failed_validations: in_range(
                "max_failed_validations",
                raw.max_failed_validations.unwrap_or(3).into(),
                1,
                1000,
            )? as u32,
            idle_user_evict: std::time::Duration::from_secs(idle_user_evict),
            plugins_reload: std::time::Duration::from_secs(raw.plugins_reload_secs.unwrap_or(2)),
            system_prompt: raw.system_prompt.filter(|t| !t.trim().is_empty()),
            model,
            max_tool_result_chars: in_range(
                "max_tool_result_chars",
                raw.max_tool_result_chars.unwrap_or(60_000),
                1000,
                10_000_000,
            )? as usize,
            context_budget_tokens: in_range(
                "context_budget_tokens",
                raw.context_budget_tokens.unwrap_or(150_000),
                1000,
                10_000_000,
            )? as usize,
            history,
            max_body_bytes: max_body_bytes as usize,
            shutdown_grace: std::time::Duration::from_secs(grace),
            port,
            state_dir,
            workspace_root,
            plugins_dir,
            allowed_users: raw
                .allowed_users
                .map(UserList::into_vec)
                .unwrap_or_default(),
            model_id,
            max_turns,
            telegram_bot_token: raw.telegram_bot_token.filter(|t| !t.is_empty()),
            telegram_api_base_url,
            plugins: raw.plugins,
        })
    }

    /// Where precompiled plugin artifacts are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        plugin_cache_dir(&self.state_dir)
    }
}

/// `value` of `key` when it lies in `min..=max`; else an error naming the key and the range
/// (a value out of range is refused, never silently changed).
fn in_range(key: &str, value: u64, min: u64, max: u64) -> anyhow::Result<u64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        anyhow::bail!("{key} = {value} must be between {min} and {max}")
    }
}

fn plugin_cache_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("plugin-cache")
}

/// The `exec_*` keys, checked.
fn exec_settings(raw: &RawConfig) -> anyhow::Result<ExecSettings> {
    let defaults = ExecSettings::default();
    let positive = |key: &str, value: Option<u64>, default: u64, max: u64| match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(anyhow::anyhow!("{key} = {n} must be between 1 and {max}")),
    };
    let list = |value: &Option<UserList>| match value {
        Some(UserList::List(list)) => list.clone(),
        Some(UserList::Text(text)) => split_users(text),
        None => Vec::new(),
    };
    let paths = |key: &str, value: &Option<UserList>| -> anyhow::Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = list(value).into_iter().map(PathBuf::from).collect();
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
    let writable_paths = paths("exec_writable_paths", &raw.exec_writable_paths)?;
    let readable_paths = paths("exec_readable_paths", &raw.exec_readable_paths)?;
    Ok(ExecSettings {
        network: raw.exec_network.unwrap_or(defaults.network),
        env: list(&raw.exec_env),
        writable_paths,
        readable_paths,
        allow_unconfined: raw
            .exec_allow_unconfined
            .unwrap_or(defaults.allow_unconfined),
        max_processes: positive(
            "exec_max_processes",
            raw.exec_max_processes,
            defaults.max_processes,
            1_000_000,
        )?,
        max_file_size_mb: positive(
            "exec_max_file_size_mb",
            raw.exec_max_file_size_mb,
            defaults.max_file_size_mb,
            1 << 30,
        )?,
        cpu_secs: positive(
            "exec_cpu_secs",
            raw.exec_cpu_secs,
            defaults.cpu_secs,
            86_400,
        )?,
        max_output_kb: positive(
            "exec_max_output_kb",
            raw.exec_max_output_kb,
            defaults.max_output_kb,
            1024 * 1024,
        )?,
    })
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

/// Environment overrides as a TOML table: `AGENT_HOST_<KEY>` for every scalar key, and
/// `PORT` (AgentCore's convention) for the port. Errors name the variable.
fn env_table(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<toml::Table> {
    let mut table = toml::Table::new();
    for (key, kind) in ENV_KEYS {
        let name = format!("{ENV_PREFIX}{}", key.to_uppercase());
        let value = env(&name).or_else(|| (*key == "port").then(|| env("PORT")).flatten());
        let Some(value) = value else { continue };
        let parsed = match kind {
            Kind::Text => toml::Value::String(value),
            Kind::Number => value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| anyhow::anyhow!("{name} = {value:?} is not a number (key `{key}`)"))?,
            Kind::Flag => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
                "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
                _ => anyhow::bail!("{name} = {value:?} is not true or false (key `{key}`)"),
            },
        };
        table.insert(key.to_string(), parsed);
    }
    Ok(table)
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
        assert_eq!(edge.max_tool_result_chars, 1000);
        assert!(edge.idle_user_evict.is_zero());
    }

    /// The keys in the first column of a Markdown table's rows that start with a key.
    fn documented_keys(rows: impl Iterator<Item = String>) -> std::collections::BTreeSet<String> {
        rows.filter_map(|row| row.strip_prefix("| `").map(|rest| format!("`{rest}")))
            .flat_map(|row| {
                let first = row.split(" |").next().unwrap_or("").to_string();
                first
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|key| !key.starts_with('['))
            .collect()
    }

    #[test]
    fn every_key_is_documented_in_the_readme_and_in_this_module() {
        let keys: std::collections::BTreeSet<String> =
            ENV_KEYS.iter().map(|(key, _)| key.to_string()).collect();
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has a Configuration section");
        let in_readme = documented_keys(section.lines().map(str::to_string));
        assert_eq!(
            in_readme, keys,
            "README's configuration table against ENV_KEYS"
        );
        let module_doc = include_str!("config.rs")
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .map(|line| line.trim_start_matches("//! ").to_string());
        assert_eq!(
            documented_keys(module_doc),
            keys,
            "this module's table against ENV_KEYS"
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
        assert_eq!(config.max_turns, 5);
        assert_eq!(config.workspace_root, PathBuf::from("/s/workspaces"));
        assert_eq!(config.allowed_users, vec!["1", "2"]);
        let config = with_env("", &[("AGENT_HOST_ALLOWED_USERS", " 7, 8 ,")]).unwrap();
        assert_eq!(config.allowed_users, vec!["7", "8"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("prot = 1", vec![], "unknown field `prot`"),
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
        ];
        for (text, vars, expected) in cases {
            let message = format!("{:#}", with_env(text, &vars).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let config = with_env("telegram_bot_token = \"123:secret\"", &[]).unwrap();
        assert!(!format!("{config:?}").contains("secret"));
    }
}
