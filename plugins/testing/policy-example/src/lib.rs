//! A test-only policy: denies `Write` into any `secret/` directory, rewrites the `path` of
//! `Probe` calls to `blocked`, and rejects changes to files ending in `.bad`.
//!
//! To test that the host fails closed, a call whose input mentions `policy-trap`,
//! `policy-loop` or `policy-memory` makes this policy panic, spin forever or allocate
//! past its memory limit; `policy-bad-rewrite` makes it rewrite the call into one the tool
//! must refuse.

use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};
use agent_plugin_sdk::serde_json::{self, Value};

struct Example;

impl Policy for Example {
    fn check_call(call: ToolCall) -> Verdict {
        if call.input.contains("policy-trap") {
            panic!("policy-example: asked to trap");
        }
        if call.input.contains("policy-loop") {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        if call.input.contains("policy-memory") {
            let hog: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 1 << 20]).collect();
            return Verdict::Deny(format!("unreachable: held {} MiB", hog.len()));
        }
        if call.input.contains("policy-bad-rewrite") {
            return Verdict::Rewrite(r#"{"not_a_field": true}"#.into());
        }
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
