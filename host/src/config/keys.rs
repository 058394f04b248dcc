//! Every configuration key, written once: its name, kind, range, default and doc line.
//! The README's table and `agent-host --help` are generated from [`keys`] (a test checks
//! the README), and values are read and checked through it (see [`super::values`]).
//!
//! Defaults are not repeated here: they are read from the settings each module builds by
//! default (`AgentSettings::new`, `ModelSettings::new`, `ServerSettings::default`,
//! `ExecSettings::default`), so the library and the configuration cannot disagree.

use std::path::PathBuf;
use std::sync::LazyLock;

use crate::agent::AgentSettings;
use crate::exec::ExecSettings;
use crate::model::ModelSettings;
use crate::server::ServerSettings;
use crate::telegram::BotSettings;

pub use crate::model::bedrock::DEFAULT_MODEL_ID;
/// The listen port when neither `port` nor `PORT` is set.
pub const DEFAULT_PORT: u16 = 8080;
/// Where the Telegram Bot API is reached.
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";
/// How long one `getUpdates` long poll waits, in seconds.
pub const DEFAULT_TELEGRAM_POLL_SECS: u64 = 30;
/// The key prefix of histories kept in S3.
pub const DEFAULT_S3_PREFIX: &str = "agent-host/history/";
/// How often `serve` looks for changed plugins, in seconds.
pub const DEFAULT_PLUGINS_RELOAD_SECS: u64 = 2;

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// Text that is never printed (tokens).
    Secret,
    /// A whole number in `min..=max`.
    Number {
        /// Smallest value accepted.
        min: u64,
        /// Largest value accepted.
        max: u64,
    },
    /// `true` or `false` (in the environment also `1`/`0`, `yes`/`no`, `on`/`off`).
    Flag,
    /// A TOML list of strings, or one comma-separated string.
    List,
}

/// One configuration key.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key in the file; `AGENT_HOST_<NAME>` in the environment.
    pub name: &'static str,
    /// What values it takes.
    pub kind: Kind,
    /// The value used when it is not set, as shown to people.
    pub default: String,
    /// What it does, in one line.
    pub doc: &'static str,
}

impl Key {
    /// Its environment variable.
    pub fn env_var(&self) -> String {
        format!("{}{}", super::ENV_PREFIX, self.name.to_uppercase())
    }

    /// The accepted values, as shown to people.
    pub fn range(&self) -> String {
        match self.kind {
            Kind::Text | Kind::Secret => "text".into(),
            Kind::Number { min, max } => format!("{min}–{max}"),
            Kind::Flag => "true, false".into(),
            Kind::List => "list".into(),
        }
    }
}

/// The key named `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    keys().iter().find(|key| key.name == name)
}

/// Every key, in the order the README shows them.
pub fn keys() -> &'static [Key] {
    static KEYS: LazyLock<Vec<Key>> = LazyLock::new(build);
    &KEYS
}

fn build() -> Vec<Key> {
    let agent = AgentSettings::new(PathBuf::new());
    let model = ModelSettings::new(DEFAULT_MODEL_ID);
    let server = ServerSettings::default();
    let telegram = BotSettings::default();
    let exec = ExecSettings::default();
    let text = |name, default: &str, doc| Key {
        name,
        kind: Kind::Text,
        default: default.to_string(),
        doc,
    };
    let number = |name, default: u64, min, max, doc| Key {
        name,
        kind: Kind::Number { min, max },
        default: default.to_string(),
        doc,
    };
    let flag = |name, default: bool, doc| Key {
        name,
        kind: Kind::Flag,
        default: default.to_string(),
        doc,
    };
    let list = |name, doc| Key {
        name,
        kind: Kind::List,
        default: "empty".to_string(),
        doc,
    };
    const DAY: u64 = 24 * 3600;
    vec![
        number(
            "port",
            DEFAULT_PORT.into(),
            1,
            65535,
            "listen port of `serve` (`PORT` is also read; `--port` overrides)",
        ),
        text(
            "state_dir",
            "`$XDG_STATE_HOME/agent-host`, else `~/.local/state/agent-host`",
            "histories, plugin state, the precompiled plugin cache, the audit log",
        ),
        text(
            "workspace_root",
            "`<state_dir>/workspaces`",
            "one workspace directory per user below it",
        ),
        text(
            "plugins_dir",
            "the built-in plugins of this build, else `<binary dir>/plugins`",
            "plugin components (`<name>.wasm`) and their manifests (`<name>.toml`)",
        ),
        text(
            "plugin_cache_dir",
            "`<state_dir>/plugin-cache`",
            "precompiled plugin components; an image ships them read-only here, made for its `plugin_cpu_features`",
        ),
        text(
            "plugin_cpu_features",
            "native",
            "the CPU features plugin code is compiled for: `native` (this machine's), `baseline` (the architecture's minimum), or Cranelift ISA flags to add to the baseline (`has_lse`, `has_avx2,has_bmi2`, ...); pin it where artifacts are made on one machine and used on another",
        ),
        list(
            "allowed_users",
            "user ids allowed to use the agent (nobody when empty; logged at start)",
        ),
        text(
            "model_id",
            DEFAULT_MODEL_ID,
            "Bedrock model or inference profile id",
        ),
        list(
            "model_prices",
            "price overrides for `/usage`'s estimate: `PATTERN=input/output/cache_read/cache_write` in USD per million tokens, for model ids containing PATTERN (the Claude models have defaults)",
        ),
        number(
            "max_turns",
            agent.max_turns.into(),
            1,
            1000,
            "model turns per task before it stops",
        ),
        Key {
            name: "telegram_bot_token",
            kind: Kind::Secret,
            default: "none".into(),
            doc: "the Telegram bot's token (secret: never logged)",
        },
        text(
            "telegram_bot_token_secret",
            "none",
            "Secrets Manager id or ARN of the bot's token, instead of `telegram_bot_token`: `serve` reads it at the first Telegram update (never at start), the `telegram` commands at start",
        ),
        text(
            "telegram_api_base_url",
            DEFAULT_TELEGRAM_API,
            "where the Telegram Bot API is reached (http:// or https://)",
        ),
        flag(
            "telegram_groups",
            telegram.groups,
            "answer in group chats (only messages that mention or reply to the bot); off: private chats only",
        ),
        number(
            "telegram_send_interval_ms",
            telegram.send_interval.as_millis() as u64,
            0,
            60_000,
            "least time between two messages the bot posts to one chat (Telegram allows about one a second)",
        ),
        number(
            "telegram_poll_timeout_secs",
            DEFAULT_TELEGRAM_POLL_SECS,
            1,
            50,
            "how long one `getUpdates` long poll of `agent-host telegram` waits for an update",
        ),
        text(
            "system_prompt",
            "none",
            "operator text added to the agent's system prompt",
        ),
        number(
            "model_max_tokens",
            u64::try_from(model.max_tokens).unwrap_or(0),
            1,
            i32::MAX as u64,
            "output tokens per model turn",
        ),
        number(
            "model_timeout_secs",
            model.request_timeout.as_secs(),
            1,
            3600,
            "wait for a response to start, and between stream events",
        ),
        number(
            "model_max_attempts",
            model.max_attempts.into(),
            1,
            100,
            "tries per model turn (throttling, 5xx and broken streams are retried)",
        ),
        number(
            "model_retry_base_ms",
            model.retry_base.as_millis() as u64,
            0,
            60_000,
            "first backoff; doubles per retry, full jitter, at most 20 s",
        ),
        flag(
            "model_streaming",
            model.streaming,
            "`ConverseStream` (false: `Converse`)",
        ),
        number(
            "max_tool_result_chars",
            agent.max_tool_result_chars as u64,
            1000,
            10_000_000,
            "longer tool results are cut, with a note to the model",
        ),
        number(
            "context_budget_tokens",
            agent.context_budget_tokens as u64,
            1000,
            10_000_000,
            "estimated conversation size above which the oldest turns are dropped",
        ),
        text(
            "history_store",
            "`file`",
            "`file` (`<state_dir>/history`) or `s3`",
        ),
        text(
            "history_s3_bucket",
            "none",
            "the bucket of `history_store = \"s3\"` (required then)",
        ),
        text(
            "history_s3_prefix",
            DEFAULT_S3_PREFIX,
            "the key prefix of `history_store = \"s3\"`",
        ),
        number(
            "max_body_bytes",
            server.max_body_bytes as u64,
            1024,
            100 * 1024 * 1024,
            "larger `/invocations` bodies get 413",
        ),
        number(
            "shutdown_grace_secs",
            server.shutdown_grace.as_secs(),
            0,
            840,
            "on SIGTERM, time running tasks get before they are cancelled (AgentCore allows ~15 s)",
        ),
        flag(
            "exec_network",
            exec.network,
            "commands may use the network; false: each command gets an empty network namespace (a host that cannot make one refuses commands)",
        ),
        list(
            "exec_env",
            "host variables passed to commands besides the fixed allow-list",
        ),
        list(
            "exec_writable_paths",
            "absolute directories commands may write (and read) besides the workspace; must exist",
        ),
        list(
            "exec_readable_paths",
            "absolute directories commands may read and execute besides the workspace and the system trees; must exist",
        ),
        flag(
            "exec_allow_unconfined",
            exec.allow_unconfined,
            "run commands even where a required confinement mechanism is missing (`agent-host doctor` says which)",
        ),
        number(
            "exec_max_processes",
            exec.max_processes,
            1,
            1_000_000,
            "processes per command",
        ),
        number(
            "exec_max_file_size_mb",
            exec.max_file_size_mb,
            1,
            1 << 30,
            "largest file a command may write",
        ),
        number(
            "exec_cpu_secs",
            exec.cpu_secs,
            1,
            DAY,
            "CPU seconds per command",
        ),
        number(
            "exec_max_output_kb",
            exec.max_output_kb,
            1,
            1024 * 1024,
            "stdout + stderr kept per command; the rest is dropped and the result says so",
        ),
        text(
            "audit_log",
            "`<state_dir>/audit.jsonl`",
            "one JSON line per tool call; `off` disables it",
        ),
        number(
            "plugins_reload_secs",
            DEFAULT_PLUGINS_RELOAD_SECS,
            0,
            DAY,
            "how often `serve` looks for changed plugins (0: only on `SIGHUP`)",
        ),
        number(
            "max_failed_validations",
            agent.max_failed_validations.into(),
            1,
            1000,
            "failed validations (policies' `check-changes`) after which a task stops",
        ),
        number(
            "idle_user_evict_secs",
            agent.idle_user_evict.as_secs(),
            0,
            7 * DAY,
            "how long an idle user's conversation and plugin state stay in memory (they are on disk; 0: until the task ends)",
        ),
    ]
}

/// The keys as the README's Markdown table.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| key | default | values | meaning |\n| --- | --- | --- | --- |\n");
    for key in keys() {
        let default = match key.kind {
            Kind::Number { .. } | Kind::Flag => key.default.clone(),
            _ if matches!(key.default.as_str(), "none" | "empty")
                || key.default.contains('`')
                || key.default.contains(' ') =>
            {
                key.default.clone()
            }
            _ => format!("`{}`", key.default),
        };
        table += &format!(
            "| `{}` | {default} | {} | {} |\n",
            key.name,
            key.range(),
            key.doc
        );
    }
    table
}

/// The keys as plain text, for `agent-host --help`.
pub fn help_text() -> String {
    let mut text = String::from(
        "Configuration: a TOML file (--config, default ./agent-host.toml), then environment \
         variables AGENT_HOST_<KEY>. Keys (default; values):\n",
    );
    for key in keys() {
        let default = key.default.replace('`', "");
        text += &format!(
            "  {:<24} {} ({default}; {})\n",
            key.name,
            key.doc.replace('`', ""),
            key.range()
        );
    }
    text + "  [plugins.<name>]         per-plugin grants and configuration (file only; see the README)\n"
}
