//! A test-only policy: denies `Write` into any `secret/` directory, rewrites the `path` of
//! `Probe` calls to `blocked`, and rejects changes to files ending in `.bad`.

use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};
use agent_plugin_sdk::serde_json::{self, Value};

struct Example;

impl Policy for Example {
    fn check_call(call: ToolCall) -> Verdict {
        let input: Value = serde_json::from_str(&call.input).unwrap_or_default();
        let path = input
            .get("file_path")
            .or_else(|| input.get("path"))
            .and_then(Value::as_str);
        match (call.tool.as_str(), path) {
            ("Write", Some(path)) if path.contains("/secret/") => Verdict::Deny(format!(
                "policy-example: writing into secret/ is not allowed ({path})"
            )),
            ("Probe", Some(_)) => {
                let mut rewritten = input.clone();
                rewritten["path"] = Value::String("blocked".into());
                Verdict::Rewrite(rewritten.to_string())
            }
            _ => Verdict::Allow,
        }
    }

    fn check_changes(paths: Vec<String>) -> Result<(), String> {
        match paths.iter().find(|p| p.ends_with(".bad")) {
            Some(bad) => Err(format!("{bad}: files ending in .bad are not allowed")),
            None => Ok(()),
        }
    }

    fn guidance() -> String {
        "Never write files under a secret/ directory.".into()
    }
}

export_policy_plugin!(Example);
