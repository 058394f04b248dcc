//! The configured checks, and how a failure is told to the model.

use agent_plugin_sdk::host::ExecOutput;
use agent_plugin_sdk::serde_json::Value;

/// The longest a check may run (the host caps commands at 10 minutes too).
const MAX_TIMEOUT_MS: u64 = 600_000;

/// The `[config]` of the policy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    pub commands: Vec<String>,
    pub timeout_ms: u32,
    pub max_output_chars: usize,
}

impl Checks {
    /// Reads the config; a bad value is an error naming the key (and fails validation,
    /// so a misconfigured check is noticed rather than skipped).
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let bad = |key: &str, expected: &str| {
            format!(
                "policy-validate: config key `{key}` must be {expected} (set it under \
                 [plugins.policy-validate.config])"
            )
        };
        let commands = match config.get("commands") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .filter(|c| !c.trim().is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| bad("commands", "a list of non-empty command strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("commands", "a list of command strings")),
        };
        let timeout_ms = match config.get("timeout_ms") {
            None => 300_000,
            Some(value) => value
                .as_u64()
                .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                .ok_or_else(|| bad("timeout_ms", "a number of milliseconds from 1 to 600000"))?
                as u32,
        };
        let max_output_chars = match config.get("max_output_chars") {
            None => 6000,
            Some(value) => value
                .as_u64()
                .filter(|n| *n >= 100)
                .ok_or_else(|| bad("max_output_chars", "a number of at least 100"))?
                as usize,
        };
        Ok(Self {
            commands,
            timeout_ms,
            max_output_chars,
        })
    }
}

/// The message for a failed check: which command, how it ended, the end of its output.
pub fn report_failure(command: &str, output: &ExecOutput, checks: &Checks) -> String {
    let ended = if output.timed_out {
        format!("timed out after {} s", checks.timeout_ms / 1000)
    } else {
        match output.exit_code {
            Some(code) => format!("failed with exit code {code}"),
            None => "was killed by a signal".to_string(),
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&stderr);
    }
    let text = text.trim_end();
    let count = text.chars().count();
    let shown: String = if count > checks.max_output_chars {
        let tail: String = text.chars().skip(count - checks.max_output_chars).collect();
        format!(
            "[... {} earlier characters not shown]\n{tail}",
            count - checks.max_output_chars
        )
    } else {
        text.to_string()
    };
    format!("Validation check `{command}` {ended}:\n{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_plugin_sdk::serde_json::json;

    #[test]
    fn config_is_checked_with_the_key_named() {
        let checks = Checks::from_config(&json!({"commands": ["cargo check"]})).unwrap();
        assert_eq!(checks.commands, ["cargo check"]);
        assert_eq!(checks.timeout_ms, 300_000);
        assert!(Checks::from_config(&json!({})).unwrap().commands.is_empty());
        let error = Checks::from_config(&json!({"commands": "cargo check"})).unwrap_err();
        assert!(error.contains("`commands`"), "{error}");
        let error = Checks::from_config(&json!({"timeout_ms": 0})).unwrap_err();
        assert!(error.contains("`timeout_ms`"), "{error}");
    }

    #[test]
    fn a_failure_shows_the_end_of_the_output() {
        let checks = Checks {
            commands: vec![],
            timeout_ms: 1000,
            max_output_chars: 100,
        };
        let output = ExecOutput {
            exit_code: Some(101),
            stdout: "x".repeat(500).into_bytes(),
            stderr: b"error[E0308]: mismatched types\n".to_vec(),
            ..Default::default()
        };
        let text = report_failure("cargo check", &output, &checks);
        assert!(
            text.starts_with("Validation check `cargo check` failed with exit code 101:\n[... ")
        );
        assert!(text.ends_with("error[E0308]: mismatched types"));
    }
}
