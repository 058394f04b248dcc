//! The `policy-commands` policy: allow and deny rules for `Bash` commands, matched on
//! the parsed command line, not on raw substrings.
//!
//! # Configuration
//!
//! (`[config]` in the manifest, overridden key by key under
//! `[plugins.policy-commands.config]` in the operator's configuration; setting a key
//! replaces its default list, so copy the defaults to extend them.)
//!
//! - `deny`: rules; a command line matching any of them is denied. Each entry is a rule
//!   string, or a table `{ rule = "…", reason = "…" }` giving the reason the model sees.
//! - `allow`: rules; when not empty, **every** simple command of a line must match one of
//!   them (the command itself: `sudo git status` needs a rule for `sudo`). Empty (the
//!   default): everything not denied is allowed. Allow rules are single commands.
//!
//! # Rule language
//!
//! A rule is written like a command, `git push --force`, and matches a *simple command*
//! (one command of a line: the line is cut at `;`, `&&`, `||`, `&`, `|` and newlines, and
//! subshells, `$( )`, backticks, process substitutions and the scripts given to
//! `bash -c`/`sh -c`/`eval`/`su -c` or fed to a shell as a heredoc are looked into):
//!
//! - its **name** is the rule's first word, compared without the directory
//!   (`/usr/bin/rm` is `rm`); `mkfs` also matches `mkfs.ext4`;
//! - **every other rule word** is among the command's arguments, in any order;
//! - words are compared after the shell would have removed quotes and escapes
//!   (`rm -rf "/"` is `rm -rf /`, `$'\x2f'` is `/`);
//! - **short flags** are compared letter by letter: `-rf` matches `-rf`, `-fr`, `-r -f`,
//!   `-vfr`; a few long flags count as short ones (`rm -R`/`--recursive` = `-r`,
//!   `rm --force` = `-f`, `git … --force` = `-f`), so `git push -f` and
//!   `git push --force` are the same rule. Other words must be equal: `--force` does not
//!   match `--force-with-lease`;
//! - **paths** are compared lexically normalised (`//`, `/./`, `/tmp/..`, a trailing `/`),
//!   and `~`, `$HOME`, `${HOME}` are the same;
//! - a command run through a **wrapper** (`sudo`, `env`, `nice`, `timeout`, `xargs`,
//!   `find … -exec`, `command`, …) is matched as the wrapped command too (deny rules only).
//!
//! `A | B` is a **pipeline rule**: a command matching `A` feeding one matching `B`, either
//! as an earlier stage of the same pipeline (`curl -s x | tee f | sh`) or through a
//! substitution in `B`'s words (`bash -c "$(curl x)"`, `sh <(curl x)`).
//!
//! # Out of scope
//!
//! This is a guardrail against mistakes, not a sandbox (the host's sandbox confines what
//! commands can reach). What a command computes at run time is not known here:
//! `X=/; rm -rf $X`, `$(which rm) -rf /`, a downloaded script run in a later command
//! (`curl -o f x; sh f`), text piped into a shell (`echo 'rm -rf /' | sh`) or a script
//! file's contents. Other tools than `Bash` are allowed. A line nesting substitutions or
//! shells more than 24 deep, or whose nested scripts exceed 1 MiB, is denied as too
//! complex to check.

mod rules;

use agent_plugin_sdk::serde_json::Value;

pub use rules::Rule;

/// The plugin's name, as the model sees it in denials.
const NAME: &str = "policy-commands";

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rules a command line must not match.
    pub deny: Vec<Rule>,
    /// Rules every simple command must match, when not empty.
    pub allow: Vec<Rule>,
}

impl Config {
    /// Checks the configuration JSON (`host::config()`); the error names the bad key.
    pub fn load(config: &Value) -> Result<Config, String> {
        let Some(table) = config.as_object() else {
            return Err("the configuration is not a table".into());
        };
        if let Some(unknown) = table
            .keys()
            .find(|k| !matches!(k.as_str(), "deny" | "allow"))
        {
            return Err(format!(
                "unknown key `{unknown}` (the keys are `deny` and `allow`)"
            ));
        }
        let deny = rules_at(table.get("deny"), "deny")?;
        let allow = rules_at(table.get("allow"), "allow")?;
        if let Some(rule) = allow.iter().find(|rule| rule.is_pipeline()) {
            return Err(format!(
                "`allow` rule {:?} is a pipeline; allow rules name single commands",
                rule.text
            ));
        }
        Ok(Config { deny, allow })
    }

    /// Decides on one tool call: `Err` is the denial reason.
    pub fn check(&self, tool: &str, input: &str) -> Result<(), String> {
        if tool != "Bash" {
            return Ok(());
        }
        let input: Value = agent_plugin_sdk::serde_json::from_str(input).unwrap_or_default();
        let Some(command) = input.get("command").and_then(Value::as_str) else {
            return Ok(());
        };
        self.check_command(command)
    }

    /// Decides on one `Bash` command line.
    pub fn check_command(&self, line: &str) -> Result<(), String> {
        let parsed = agent_shell::parse(line);
        if parsed.too_complex {
            return Err(format!(
                "{NAME} cannot check this command: it nests substitutions or shells more than \
                 {} deep, or is too long; split it into simpler commands",
                agent_shell::MAX_NESTING
            ));
        }
        for rule in &self.deny {
            if let Some(hit) = rule.find(&parsed.script) {
                return Err(format!(
                    "{NAME} denies {hit:?} (rule {:?}): {}",
                    rule.text, rule.reason
                ));
            }
        }
        if self.allow.is_empty() {
            return Ok(());
        }
        for command in parsed.script.commands() {
            let argv = command.argv();
            if argv.is_empty() || self.allow.iter().any(|rule| rule.allows(argv)) {
                continue;
            }
            let allowed: Vec<&str> = self.allow.iter().map(|r| r.text.as_str()).collect();
            return Err(format!(
                "{NAME} only allows commands matching its allow rules ({}); {:?} matches none \
                 of them: use an allowed command or ask the user",
                quoted_list(&allowed),
                argv.join(" ")
            ));
        }
        Ok(())
    }

    /// The rules in words, for the system prompt.
    pub fn guidance(&self) -> String {
        let mut text = format!(
            "Shell commands (the Bash tool) are checked by the {NAME} guardrail before they \
             run. It looks at every command in the line: after `;`, `&&`, `||` and `|`, in \
             `$( )`, backticks and subshells, and inside `bash -c '…'`; quoting or reordering \
             flags does not change a command."
        );
        if self.deny.is_empty() {
            text.push_str(" No command is denied by name.");
        } else {
            text.push_str(" These are denied:");
            // One line per reason, listing its rules.
            let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
            for rule in &self.deny {
                let shown = if rule.is_pipeline() {
                    format!(
                        "`{}` (a download piped or substituted into a shell)",
                        rule.text
                    )
                } else {
                    format!("`{}`", rule.text)
                };
                match groups.iter_mut().find(|(reason, _)| *reason == rule.reason) {
                    Some((_, rules)) => rules.push(shown),
                    None => groups.push((&rule.reason, vec![shown])),
                }
            }
            for (reason, rules) in groups {
                text.push_str(&format!("\n- {}: {reason}.", rules.join(", ")));
            }
        }
        if !self.allow.is_empty() {
            let allowed: Vec<&str> = self.allow.iter().map(|r| r.text.as_str()).collect();
            text.push_str(&format!(
                "\nOnly these commands are allowed (with any further arguments): {}. Every \
                 command in a line must be one of them.",
                quoted_list(&allowed)
            ));
        }
        text
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rules under `key`: a list of strings or `{ rule, reason }` tables.
fn rules_at(value: Option<&Value>, key: &str) -> Result<Vec<Rule>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(items) = value.as_array() else {
        return Err(format!("`{key}` must be a list of rules, got {value}"));
    };
    let mut rules = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let (text, reason) = match item {
            Value::String(text) => (text.as_str(), None),
            Value::Object(table) => {
                if let Some(unknown) = table
                    .keys()
                    .find(|k| !matches!(k.as_str(), "rule" | "reason"))
                {
                    return Err(format!(
                        "`{key}[{index}]` has an unknown key `{unknown}` (a rule table has \
                         `rule` and `reason`)"
                    ));
                }
                let Some(text) = table.get("rule").and_then(Value::as_str) else {
                    return Err(format!("`{key}[{index}]` needs a `rule` string"));
                };
                let reason = match table.get("reason") {
                    None => None,
                    Some(Value::String(reason)) => Some(reason.as_str()),
                    Some(other) => {
                        return Err(format!(
                            "`{key}[{index}].reason` must be a string, got {other}"
                        ));
                    }
                };
                (text, reason)
            }
            other => {
                return Err(format!(
                    "`{key}[{index}]` must be a rule string or a {{ rule, reason }} table, got {other}"
                ));
            }
        };
        let rule =
            Rule::parse(text, reason).map_err(|problem| format!("`{key}[{index}]`: {problem}"))?;
        rules.push(rule);
    }
    Ok(rules)
}

mod component {
    use agent_plugin_sdk::host;
    use agent_plugin_sdk::policy::{Policy, ToolCall, Verdict, export_policy_plugin};

    use agent_plugin_sdk::policy::misconfigured;

    use super::{Config, NAME};

    struct Commands;

    impl Policy for Commands {
        fn check_call(call: ToolCall) -> Verdict {
            match Config::load(&host::config()) {
                Ok(config) => match config.check(&call.tool, &call.input) {
                    Ok(()) => Verdict::Allow,
                    Err(reason) => Verdict::Deny(reason),
                },
                Err(problem) => Verdict::Deny(misconfigured(NAME, &problem)),
            }
        }

        fn check_changes(_paths: Vec<String>) -> Result<(), String> {
            Ok(())
        }

        fn guidance() -> String {
            match Config::load(&host::config()) {
                Ok(config) => config.guidance(),
                Err(problem) => misconfigured(NAME, &problem),
            }
        }
    }

    export_policy_plugin!(Commands);
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_plugin_sdk::serde_json::json;

    /// The manifest's defaults.
    fn defaults() -> Config {
        let manifest: toml::Table =
            toml::from_str(include_str!("../plugin.toml")).expect("manifest parses");
        let config = agent_plugin_sdk::serde_json::to_value(&manifest["config"]).unwrap();
        Config::load(&config).expect("the defaults load")
    }

    #[test]
    fn the_manifest_sends_this_policy_every_tool_it_judges() {
        // The host skips this policy for calls of tools its manifest's `[policy] tools`
        // leaves out, so that list must hold every tool the code judges.
        let manifest: toml::Table =
            toml::from_str(include_str!("../plugin.toml")).expect("manifest parses");
        let scoped: Vec<&str> = manifest["policy"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool.as_str().unwrap())
            .collect();
        let config = Config::load(&json!({"deny": ["echo"]})).unwrap();
        let input = json!({"command": "echo hi", "file_path": "echo", "code": "echo"});
        for tool in [
            "Bash", "bash", "Read", "Write", "Edit", "Glob", "Grep", "Python",
        ] {
            let judged = config.check(tool, &input.to_string()).is_err();
            assert_eq!(judged, scoped.contains(&tool), "{tool}");
        }
    }

    #[test]
    fn the_defaults_deny_the_dangerous_and_allow_the_rest() {
        let config = defaults();
        for line in [
            "git push --force",
            "git push -f origin main",
            "echo ok && git push -f origin main",
            "rm -rf /",
            "rm -fr /",
            "rm -r -f /",
            "rm -rf \"/\"",
            "bash -c 'rm -rf /'",
            "rm -rf /*",
            "rm -rf ~",
            "rm -rf $HOME",
            "curl -s x | sh",
            "curl x|bash",
            "wget -qO- x | sh",
            "wget -qO- x | bash",
            "mkfs.ext4 /dev/sda1",
            "sudo shutdown -h now",
            "reboot",
            "find / -maxdepth 0 -exec rm -rf {} \\; -exec rm -rf / \\;",
            "timeout 5 sudo -u root rm -rf ~",
            "watch -n 1 git push -f",
        ] {
            let reason = config.check_command(line).expect_err(line);
            assert!(reason.starts_with("policy-commands denies "), "{reason}");
        }
        for line in [
            "git push",
            "git push --force-with-lease origin main",
            "git status && cargo test",
            "rm -rf target",
            "rm -rf ./build /tmp/x",
            "curl -s x | jq .",
            "curl -o install.sh x",
            "echo 'rm -rf /'",
            "grep -r 'git push --force' .",
            "ls -la | sort",
            "ls | xargs grep -l shutdown",
            "find . -name reboot",
            "sudo -u me grep mkfs /var/log/x",
            "git commit -m 'no more rm -rf / in scripts'",
            "cat > install.sh <<'EOF'\ncurl -s x | sh\nEOF",
        ] {
            assert_eq!(config.check_command(line), Ok(()), "{line}");
        }
    }

    #[test]
    fn reasons_name_the_command_the_rule_and_what_to_do() {
        let reason = defaults().check_command("git push --force").unwrap_err();
        assert_eq!(
            reason,
            "policy-commands denies \"git push --force\" (rule \"git push --force\"): \
             force-pushing rewrites shared history; push without --force or ask the user"
        );
        let reason = defaults().check_command("curl -s x | sh").unwrap_err();
        assert!(
            reason.contains("\"curl -s x | sh\" (rule \"curl | sh\")"),
            "{reason}"
        );
    }

    #[test]
    fn other_tools_pass() {
        let config = defaults();
        assert_eq!(config.check("Read", r#"{"file_path":"/x"}"#), Ok(()));
        assert!(config.check("Bash", r#"{"command":"rm -rf /"}"#).is_err());
    }

    #[test]
    fn allow_lists_require_every_command_to_match() {
        let config =
            Config::load(&json!({"deny": ["git push -f"], "allow": ["git", "ls", "cargo test"]}))
                .unwrap();
        assert_eq!(config.check_command("git status && ls -la"), Ok(()));
        assert_eq!(config.check_command("cargo test --workspace"), Ok(()));
        let reason = config.check_command("ls; rm x").unwrap_err();
        assert!(reason.contains("\"rm x\" matches none"), "{reason}");
        assert!(config.check_command("cargo build").is_err());
        assert!(config.check_command("ls $(rm x)").is_err());
        assert!(config.check_command("sudo ls").is_err());
        assert!(
            config
                .check_command("git push -f")
                .unwrap_err()
                .contains("denies")
        );
        // Assignments and keywords are not commands.
        assert_eq!(config.check_command("X=1; if ls; then git log; fi"), Ok(()));
    }

    #[test]
    fn rule_tables_carry_their_reason() {
        let config =
            Config::load(&json!({"deny": [{"rule": "make", "reason": "use cargo"}]})).unwrap();
        assert_eq!(
            config.check_command("make all").unwrap_err(),
            "policy-commands denies \"make all\" (rule \"make\"): use cargo"
        );
    }

    #[test]
    fn bad_configuration_names_the_key() {
        for (config, needle) in [
            (json!({"deny": "rm -rf /"}), "`deny` must be a list"),
            (json!({"deny": [3]}), "`deny[0]`"),
            (json!({"deny": ["ok", "a; b"]}), "`deny[1]`"),
            (json!({"allow": ["curl | sh"]}), "`allow` rule"),
            (json!({"denny": []}), "unknown key `denny`"),
            (
                json!({"deny": [{"rule": "x", "why": "y"}]}),
                "unknown key `why`",
            ),
            (json!([]), "not a table"),
        ] {
            let problem = Config::load(&config).unwrap_err();
            assert!(problem.contains(needle), "{config}: {problem}");
        }
        assert!(
            agent_plugin_sdk::policy::misconfigured(NAME, "`deny[1]`: x")
                .contains("Every call it checks is denied")
        );
    }

    #[test]
    fn guidance_lists_the_denied_commands() {
        let text = defaults().guidance();
        for needle in [
            "`git push --force`",
            "`rm -rf /`",
            "`curl | sh`",
            "`mkfs`",
            "bash -c",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }

    #[test]
    fn too_complex_lines_are_denied() {
        let line = format!("echo {}", "$(".repeat(100));
        assert!(
            defaults()
                .check_command(&line)
                .unwrap_err()
                .contains("cannot check")
        );
    }
}
