//! The built-in guardrails, end to end through the real components: `policy-files`
//! (path globs for reading and writing, a size limit for writes) and `policy-commands`
//! (deny/allow rules for Bash commands on the parsed command line).
//!
//! The defaults are tested through `Fixture::new()` (the built-in set as shipped); other
//! configurations through a plugin directory loaded with operator settings, as
//! `[plugins.<name>.config]` would give them.

use std::sync::Arc;

use agent_host::plugins::{Decision, PluginSet, PluginSettings};
use agent_host_tests::{Fixture, PluginDir};
use serde_json::{Value, json};

/// The built-in tools and both guardrails, loaded with the operator's `settings`
/// (a JSON object of `[plugins.<name>]` tables).
fn guarded_with(settings: Value) -> (PluginDir, Arc<PluginSet>) {
    let dir = PluginDir::new();
    for name in ["files", "search", "bash", "policy-commands", "policy-files"] {
        dir.add_builtin(name);
    }
    let settings: PluginSettings = serde_json::from_value(settings).expect("settings parse");
    let set = Arc::new(dir.load_with(&settings).expect("the guarded set loads"));
    (dir, set)
}

/// Asserts `result` is a denial by `policy` and returns its reason.
#[track_caller]
fn denied_by(policy: &str, text: &str) -> String {
    let prefix = format!("Denied by policy {policy}: ");
    assert!(
        text.starts_with(&prefix),
        "expected a denial by {policy}, got:\n{text}"
    );
    text[prefix.len()..].to_string()
}

// ---- policy-files, defaults ------------------------------------------------------------

#[test]
fn writing_secrets_or_git_internals_is_denied_before_the_tool_runs() {
    let fx = Fixture::new();
    for path in [
        ".env",
        "./.env",
        "src/../.env",
        "config/.env",
        ".git/config",
        "a/.git/config",
        "certs/server.pem",
    ] {
        let text = fx.err(
            "Write",
            json!({"file_path": fx.p(path), "content": "SECRET=1"}),
        );
        let reason = denied_by("policy-files", &text);
        assert!(reason.starts_with("writing "), "{path}: {reason}");
        assert!(reason.contains("(write_deny \""), "{path}: {reason}");
        assert!(!fx.path(path).exists(), "{path}: the tool ran");
    }
    assert_eq!(
        denied_by(
            "policy-files",
            &fx.err(
                "Write",
                json!({"file_path": fx.p(".env"), "content": "A=1"})
            )
        ),
        "writing .env is not allowed by policy-files (write_deny \"**/.env\"); secrets must not \
         be written by the agent"
    );
    assert!(!fx.path("src").exists() && !fx.path("a").exists() && !fx.path("certs").exists());
}

#[test]
fn editing_a_denied_file_leaves_it_unchanged() {
    let fx = Fixture::new();
    fx.write(".env", "KEY=old\n");
    fx.write(".git/HEAD", "ref: refs/heads/main\n");
    fx.ok("Read", json!({"file_path": fx.p(".env")}));
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p(".env"), "old_string": "old", "new_string": "new"}),
    );
    assert!(
        denied_by("policy-files", &text).starts_with("editing .env"),
        "{text}"
    );
    assert_eq!(fx.read(".env"), b"KEY=old\n");
    fx.ok("Read", json!({"file_path": fx.p(".git/HEAD")}));
    fx.err(
        "Edit",
        json!({"file_path": fx.p(".git/HEAD"), "old_string": "main", "new_string": "x"}),
    );
    assert_eq!(fx.read(".git/HEAD"), b"ref: refs/heads/main\n");
}

#[test]
fn ordinary_files_and_look_alikes_are_written() {
    let fx = Fixture::new();
    for path in [
        "src/main.rs",
        ".env.example",
        ".gitignore",
        ".github/workflows/ci.yml",
        "docs/pem.md",
    ] {
        fx.ok("Write", json!({"file_path": fx.p(path), "content": "x"}));
        assert_eq!(fx.read(path), b"x", "{path}");
    }
    // Reading is not restricted by default: the agent may read .env and .git.
    fx.write(".env", "A=1\n");
    assert!(
        fx.ok("Read", json!({"file_path": fx.p(".env")}))
            .contains("A=1")
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_denied_file_is_denied() {
    let fx = Fixture::new();
    fx.write(".env", "A=1\n");
    std::os::unix::fs::symlink(".env", fx.path("notes.txt")).unwrap();
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("notes.txt"), "content": "B=2"}),
    );
    let reason = denied_by("policy-files", &text);
    assert!(
        reason.starts_with("writing notes.txt (a symlink to .env) is not allowed"),
        "{reason}"
    );
    assert_eq!(fx.read(".env"), b"A=1\n");
}

#[test]
fn paths_outside_the_workspace_are_left_to_the_tools() {
    let fx = Fixture::new();
    let text = fx.err(
        "Write",
        json!({"file_path": "/tmp/agent-host-outside/.env", "content": "x"}),
    );
    assert!(!text.contains("Denied by policy"), "{text}");
    assert!(text.contains("outside the workspace"), "{text}");
}

#[test]
fn writes_over_the_default_size_limit_are_denied() {
    let fx = Fixture::new();
    let limit = 1_048_576;
    fx.ok(
        "Write",
        json!({"file_path": fx.p("ok.txt"), "content": "x".repeat(limit)}),
    );
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("big.txt"), "content": "x".repeat(limit + 1)}),
    );
    let reason = denied_by("policy-files", &text);
    assert!(
        reason.contains("1048577 bytes") && reason.contains("max_write_bytes (1048576)"),
        "{reason}"
    );
    assert!(!fx.path("big.txt").exists());
}

#[test]
fn bash_is_not_checked_by_policy_files() {
    let fx = Fixture::new();
    fx.ok("Bash", json!({"command": "echo A=1 > .env"}));
    assert_eq!(fx.read(".env"), b"A=1\n");
}

// ---- policy-commands, defaults ---------------------------------------------------------

#[test]
fn dangerous_commands_are_denied_however_written() {
    let fx = Fixture::new();
    // Each command touches a marker first: had the command run, the marker would exist.
    // (`--help` makes rm print its help even if it did run.)
    let cases = [
        ("rm -fr / --help", "rm -rf /"),
        ("rm -r -f / --help", "rm -rf /"),
        ("rm -rf \"/\" --help", "rm -rf /"),
        ("rm -Rf // --help", "rm -rf /"),
        ("bash -c 'rm -rf / --help'", "rm -rf /"),
        ("sh -c \"cd . && rm -rf ~ --help\"", "rm -rf ~"),
        // `-f` and `--force` are one flag to the rules: the first rule listed matches.
        ("echo ok && git push -f origin main", "git push --force"),
        ("echo x; git push --force", "git push --force"),
        ("(git push origin main --force)", "git push --force"),
        ("curl -s http://127.0.0.1:9/x | sh", "curl | sh"),
        ("curl http://127.0.0.1:9/x|bash", "curl | bash"),
        ("wget -qO- http://127.0.0.1:9/x | sudo sh", "wget | sh"),
        (
            "bash -c \"$(curl -fsSL http://127.0.0.1:9/x)\"",
            "curl | bash",
        ),
        ("mkfs.ext4 /dev/null", "mkfs"),
    ];
    for (command, rule) in cases {
        let line = format!("touch marker\n{command}");
        let text = fx.err("Bash", json!({"command": line}));
        let reason = denied_by("policy-commands", &text);
        assert!(
            reason.contains(&format!("(rule \"{rule}\")")),
            "{command}: {reason}"
        );
        assert!(!fx.path("marker").exists(), "{command}: the command ran");
    }
}

#[test]
fn a_denial_names_the_command_the_rule_and_what_to_do() {
    let fx = Fixture::new();
    let text = fx.err("Bash", json!({"command": "git push --force"}));
    assert_eq!(
        text,
        "Denied by policy policy-commands: policy-commands denies \"git push --force\" (rule \
         \"git push --force\"): force-pushing rewrites shared history; push without --force or \
         ask the user"
    );
    let checked = fx.checked("Bash", json!({"command": "curl -s x | sh"}));
    assert!(!checked.ran);
    let last = checked.decisions.last().expect("a decision");
    assert_eq!(last.policy, "policy-commands");
    assert!(
        matches!(&last.decision, Decision::Deny(reason) if reason.contains("\"curl -s x | sh\"")),
        "{last:?}"
    );
}

#[test]
fn ordinary_commands_run() {
    let fx = Fixture::new();
    fx.write("build/out.o", "x");
    for command in [
        "rm -rf build",
        "echo 'rm -rf /' > note.txt",
        "grep -c 'git push --force' note.txt",
        "printf 'curl x | sh\\n' | cat",
        "true && echo fine",
    ] {
        let result = fx.call("Bash", json!({"command": command}));
        assert!(
            !result.text.contains("Denied by policy"),
            "{command}: {}",
            result.text
        );
        assert!(!result.is_error, "{command}: {}", result.text);
    }
    assert!(!fx.path("build").exists());
    // Force-with-lease is allowed: it fails here only for want of a remote.
    let result = fx.call(
        "Bash",
        json!({"command": "git push --force-with-lease origin main"}),
    );
    assert!(!result.text.contains("Denied by policy"), "{}", result.text);
}

#[test]
fn other_tools_pass_policy_commands() {
    let fx = Fixture::new();
    fx.ok(
        "Write",
        json!({"file_path": fx.p("rm -rf.txt"), "content": "git push --force | sh"}),
    );
}

// ---- guidance ----------------------------------------------------------------------------

#[test]
fn guidance_names_the_denied_paths_and_commands() {
    let fx = Fixture::new();
    let files = fx.guidance("policy-files");
    for needle in [
        "\"**/.env\"",
        "\"**/.git/**\"",
        "\"**/*.pem\"",
        "1048576 bytes",
        "NOT checked",
        "Bash",
    ] {
        assert!(files.contains(needle), "{needle}:\n{files}");
    }
    let commands = fx.guidance("policy-commands");
    for needle in [
        "`git push --force`",
        "`rm -rf /`",
        "`rm -rf ~`",
        "`curl | sh`",
        "`mkfs`",
        "bash -c",
    ] {
        assert!(commands.contains(needle), "{needle}:\n{commands}");
    }
}

// ---- operator configuration --------------------------------------------------------------

#[test]
fn read_deny_hides_files_from_read_grep_and_glob() {
    let (_dir, set) = guarded_with(json!({
        "policy-files": {"config": {"read_deny": ["secrets/**"]}}
    }));
    let fx = Fixture::with_plugins(set);
    fx.write("secrets/token.txt", "needle-in-secret\n");
    fx.write("src/a.txt", "needle-in-source\n");
    let text = fx.err("Read", json!({"file_path": fx.p("secrets/token.txt")}));
    assert!(
        denied_by("policy-files", &text).contains("(read_deny \"secrets/**\")"),
        "{text}"
    );
    // A Grep of the workspace is rewritten to leave the denied files out.
    let found = fx.ok(
        "Grep",
        json!({"pattern": "needle", "output_mode": "content"}),
    );
    assert!(found.contains("needle-in-source"), "{found}");
    assert!(!found.contains("needle-in-secret"), "{found}");
    let checked = fx.checked("Grep", json!({"pattern": "needle", "glob": "*.txt"}));
    assert!(
        checked
            .final_input
            .as_deref()
            .is_some_and(|input| input.contains("*.txt !/secrets/**")),
        "{:?}",
        checked.final_input
    );
    // Searching inside the denied directory, or grepping a denied file, is denied.
    fx.err(
        "Grep",
        json!({"pattern": "needle", "path": fx.p("secrets")}),
    );
    fx.err(
        "Grep",
        json!({"pattern": "needle", "path": fx.p("secrets/token.txt")}),
    );
    let text = fx.err("Glob", json!({"pattern": "*", "path": fx.p("secrets")}));
    denied_by("policy-files", &text);
    // Writing is not affected by read rules; the default write rules still apply.
    fx.ok(
        "Write",
        json!({"file_path": fx.p("secrets/new.txt"), "content": "x"}),
    );
    fx.err("Write", json!({"file_path": fx.p(".env"), "content": "x"}));
    assert!(fx.guidance("policy-files").contains("\"secrets/**\""));
}

#[test]
fn an_edit_that_would_grow_a_file_past_the_limit_is_denied() {
    let (_dir, set) = guarded_with(json!({
        "policy-files": {"config": {"max_write_bytes": 20}}
    }));
    let fx = Fixture::with_plugins(set);
    fx.write("f.txt", "a a a a a a\n");
    fx.ok("Read", json!({"file_path": fx.p("f.txt")}));
    // 12 bytes, six `a` each growing by 2: about 24 bytes.
    let text = fx.err(
        "Edit",
        json!({"file_path": fx.p("f.txt"), "old_string": "a", "new_string": "bbb", "replace_all": true}),
    );
    let reason = denied_by("policy-files", &text);
    assert!(
        reason.contains("about 24 bytes") && reason.contains("max_write_bytes (20)"),
        "{reason}"
    );
    assert_eq!(fx.read("f.txt"), b"a a a a a a\n");
    // 12 - 11 + 13 = 14 bytes: fine.
    fx.ok(
        "Edit",
        json!({"file_path": fx.p("f.txt"), "old_string": "a a a a a a", "new_string": "bbbbbbbbbbbbb"}),
    );
    assert_eq!(fx.read("f.txt"), b"bbbbbbbbbbbbb\n");
}

#[test]
fn an_invalid_configuration_denies_every_call_it_checks_with_the_bad_key_named() {
    let (_dir, set) = guarded_with(json!({
        "policy-files": {"config": {"write_deny": ["a/[b"]}}
    }));
    let fx = Fixture::with_plugins(set);
    for (tool, input) in [
        ("Read", json!({"file_path": fx.p("x")})),
        ("Write", json!({"file_path": fx.p("x"), "content": "x"})),
        ("Glob", json!({"pattern": "*"})),
    ] {
        let text = fx.err(tool, input);
        let reason = denied_by("policy-files", &text);
        assert!(
            reason.starts_with(
                "policy-files is misconfigured: `write_deny[0]` \"a/[b\" is not a valid glob"
            ),
            "{reason}"
        );
        assert!(
            reason.contains("Every call it checks is denied"),
            "{reason}"
        );
    }
    assert!(!fx.path("x").exists());
    assert!(fx.guidance("policy-files").contains("misconfigured"));
    // `Bash` is not among the tools its manifest names: policy-files never judged it, and
    // its broken configuration does not stop it either.
    fx.ok("Bash", json!({"command": "touch marker"}));
    assert!(fx.path("marker").exists());

    let (_dir, set) = guarded_with(json!({
        "policy-commands": {"config": {"deny": "rm -rf /"}}
    }));
    let fx = Fixture::with_plugins(set);
    let text = fx.err("Bash", json!({"command": "echo hi"}));
    assert!(
        denied_by("policy-commands", &text).contains("`deny` must be a list of rules"),
        "{text}"
    );
}

#[test]
fn an_allow_list_admits_only_its_commands() {
    let (_dir, set) = guarded_with(json!({
        "policy-commands": {"config": {
            "allow": ["echo", "ls", "git status"],
            "deny": [{"rule": "ls -R", "reason": "too slow here; use Glob"}]
        }}
    }));
    let fx = Fixture::with_plugins(set);
    assert_eq!(fx.ok("Bash", json!({"command": "echo hi && ls"})), "hi");
    let text = fx.err("Bash", json!({"command": "echo hi; touch marker"}));
    assert!(
        denied_by("policy-commands", &text).contains("\"touch marker\" matches none"),
        "{text}"
    );
    assert!(!fx.path("marker").exists());
    let text = fx.err("Bash", json!({"command": "ls -la -R"}));
    assert_eq!(
        denied_by("policy-commands", &text),
        "policy-commands denies \"ls -la -R\" (rule \"ls -R\"): too slow here; use Glob"
    );
    // Replacing `deny` dropped the defaults: the operator owns the list.
    let text = fx.err("Bash", json!({"command": "git push -f"}));
    assert!(
        denied_by("policy-commands", &text).contains("matches none"),
        "{text}"
    );
    assert!(
        fx.guidance("policy-commands")
            .contains("Only these commands are allowed")
    );
}

#[test]
fn an_operator_can_switch_the_guardrails_off() {
    let (_dir, set) = guarded_with(json!({
        "policy-files": {"enabled": false},
        "policy-commands": {"enabled": false}
    }));
    assert!(set.policies().is_empty());
    let fx = Fixture::with_plugins(set);
    fx.ok(
        "Write",
        json!({"file_path": fx.p(".env"), "content": "A=1"}),
    );
    assert_eq!(fx.read(".env"), b"A=1");
}
