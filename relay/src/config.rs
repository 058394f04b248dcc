//! The relay's settings, from its Lambda environment. Each variable is checked when the
//! container starts, and a bad one stops it with an error that names the variable.

use std::collections::HashSet;
use std::time::Duration;

/// Telegram's Bot API, where the relay tells users the bot is unavailable.
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";
/// How long an invocation may take by default: a session that is not running yet is
/// restored from the runtime's snapshot first, which takes seconds, not tens of them.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest invocation timeout accepted (a Lambda runs for at most 15 minutes).
pub const MAX_INVOKE_TIMEOUT_SECS: u64 = 840;

/// The environment variables the relay reads, with what each is for.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "RELAY_RUNTIME_ARN",
        "the AgentCore runtime's ARN (required)",
    ),
    (
        "RELAY_RUNTIME_QUALIFIER",
        "the runtime endpoint to invoke (default: AgentCore's DEFAULT endpoint)",
    ),
    (
        "RELAY_WEBHOOK_SECRET_ID",
        "Secrets Manager id or ARN of the webhook's secret token (required)",
    ),
    (
        "RELAY_BOT_TOKEN_SECRET_ID",
        "Secrets Manager id or ARN of the bot's token (required)",
    ),
    (
        "RELAY_ALLOWED_USERS",
        "comma-separated Telegram user ids whose updates are forwarded (empty: nobody); keep it equal to the host's allowed_users",
    ),
    (
        "RELAY_INVOKE_TIMEOUT_SECS",
        "how long to wait for AgentCore to take an update, 1-840 (default 30)",
    ),
    (
        "RELAY_TELEGRAM_API_BASE_URL",
        "where the Bot API is reached (default https://api.telegram.org)",
    ),
];

/// What the relay runs with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The AgentCore runtime's ARN.
    pub runtime_arn: String,
    /// The runtime endpoint, when not the default one.
    pub runtime_qualifier: Option<String>,
    /// Secrets Manager id of the webhook's secret token.
    pub webhook_secret_id: String,
    /// Secrets Manager id of the bot token.
    pub bot_token_secret_id: String,
    /// The users whose updates are forwarded.
    pub allowed_users: HashSet<i64>,
    /// How long to wait for AgentCore.
    pub invoke_timeout: Duration,
    /// The Bot API's base URL, without a trailing `/`.
    pub telegram_api_base_url: String,
}

impl RelayConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let required = |name: &str| {
            get(name).ok_or_else(|| anyhow::anyhow!("{name} is not set: {}", describe(name)))
        };
        let runtime_arn = required("RELAY_RUNTIME_ARN")?;
        if !runtime_arn.starts_with("arn:") {
            anyhow::bail!(
                "RELAY_RUNTIME_ARN is {runtime_arn:?}, not an ARN: give the runtime's ARN \
                 (arn:aws:bedrock-agentcore:<region>:<account>:runtime/<id>)"
            );
        }
        let invoke_timeout = match get("RELAY_INVOKE_TIMEOUT_SECS") {
            None => DEFAULT_INVOKE_TIMEOUT,
            Some(text) => match text.parse::<u64>() {
                Ok(secs) if (1..=MAX_INVOKE_TIMEOUT_SECS).contains(&secs) => {
                    Duration::from_secs(secs)
                }
                _ => anyhow::bail!(
                    "RELAY_INVOKE_TIMEOUT_SECS is {text:?}: give whole seconds from 1 to \
                     {MAX_INVOKE_TIMEOUT_SECS}"
                ),
            },
        };
        let telegram_api_base_url = get("RELAY_TELEGRAM_API_BASE_URL")
            .unwrap_or_else(|| DEFAULT_TELEGRAM_API.to_string())
            .trim_end_matches('/')
            .to_string();
        if !telegram_api_base_url.starts_with("https://")
            && !telegram_api_base_url.starts_with("http://")
        {
            anyhow::bail!(
                "RELAY_TELEGRAM_API_BASE_URL is {telegram_api_base_url:?}: give an http:// or \
                 https:// URL"
            );
        }
        Ok(Self {
            runtime_arn,
            runtime_qualifier: get("RELAY_RUNTIME_QUALIFIER"),
            webhook_secret_id: required("RELAY_WEBHOOK_SECRET_ID")?,
            bot_token_secret_id: required("RELAY_BOT_TOKEN_SECRET_ID")?,
            allowed_users: parse_users(&get("RELAY_ALLOWED_USERS").unwrap_or_default())?,
            invoke_timeout,
            telegram_api_base_url,
        })
    }
}

fn describe(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(variable, _)| *variable == name)
        .map_or("", |(_, doc)| doc)
}

/// `1,2, 3` as user ids; an entry that is not one is refused by name.
fn parse_users(list: &str) -> anyhow::Result<HashSet<i64>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "RELAY_ALLOWED_USERS has {entry:?}, which is not a Telegram user id: give \
                     numeric ids separated by commas (a user can see theirs in the bot's \
                     /start answer)"
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> anyhow::Result<RelayConfig> {
        let mut map: HashMap<String, String> = [
            (
                "RELAY_RUNTIME_ARN",
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent-abc",
            ),
            ("RELAY_WEBHOOK_SECRET_ID", "webhook"),
            ("RELAY_BOT_TOKEN_SECRET_ID", "token"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (key, value) in pairs {
            map.insert(key.to_string(), value.to_string());
        }
        RelayConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_a_list_of_users() {
        let config = config(&[("RELAY_ALLOWED_USERS", " 42, 7 ,")]).unwrap();
        assert_eq!(config.allowed_users, HashSet::from([42, 7]));
        assert_eq!(config.invoke_timeout, DEFAULT_INVOKE_TIMEOUT);
        assert_eq!(config.telegram_api_base_url, DEFAULT_TELEGRAM_API);
        assert_eq!(config.runtime_qualifier, None);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let cases = [
            ("RELAY_ALLOWED_USERS", "42,@alice", "RELAY_ALLOWED_USERS"),
            (
                "RELAY_INVOKE_TIMEOUT_SECS",
                "0",
                "RELAY_INVOKE_TIMEOUT_SECS",
            ),
            (
                "RELAY_INVOKE_TIMEOUT_SECS",
                "900",
                "RELAY_INVOKE_TIMEOUT_SECS",
            ),
            ("RELAY_RUNTIME_ARN", "agent-abc", "RELAY_RUNTIME_ARN"),
            ("RELAY_RUNTIME_ARN", " ", "RELAY_RUNTIME_ARN is not set"),
            (
                "RELAY_WEBHOOK_SECRET_ID",
                "",
                "RELAY_WEBHOOK_SECRET_ID is not set",
            ),
            (
                "RELAY_TELEGRAM_API_BASE_URL",
                "api.telegram.org",
                "RELAY_TELEGRAM_API_BASE_URL",
            ),
        ];
        for (key, value, expected) in cases {
            let error = config(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(expected), "{key}={value:?}: {error}");
        }
    }
}
