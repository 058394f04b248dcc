use std::path::{Path, PathBuf};

use agent_plugin_sdk::serde_json::{Value, json};

use super::*;

/// A temporary workspace, removed on drop.
struct Ws(PathBuf);

impl Ws {
    fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "policy-files-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Ws(dir.canonicalize().unwrap())
    }

    fn root(&self) -> &Path {
        &self.0
    }

    fn p(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }

    fn write(&self, rel: &str, contents: &str) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The manifest's defaults.
fn defaults() -> Config {
    let manifest: toml::Table = toml::from_str(include_str!("../plugin.toml")).unwrap();
    let config = agent_plugin_sdk::serde_json::to_value(&manifest["config"]).unwrap();
    Config::load(&config).expect("the defaults load")
}

fn with(config: Value) -> Config {
    Config::load(&config).expect("config loads")
}

fn decide(config: &Config, ws: &Ws, tool: &str, input: Value) -> Decision {
    config.check(ws.root(), tool, &input.to_string())
}

#[track_caller]
fn deny_reason(config: &Config, ws: &Ws, tool: &str, input: Value) -> String {
    match decide(config, ws, tool, input.clone()) {
        Decision::Deny(reason) => reason,
        other => panic!("{tool} {input} should be denied, got {other:?}"),
    }
}

/// Tools the model may call, built in or from plugins.
const SOME_TOOLS: &[&str] = &[
    "Read", "Write", "Edit", "Glob", "Grep", "Bash", "Python", "WebFetch", "read", "Task",
];

#[test]
fn the_manifest_sends_this_policy_every_tool_it_judges() {
    // The host skips this policy for calls of tools its manifest's `[policy] tools` leaves
    // out, so that list must hold every tool the code judges. With every path denied, a
    // tool is denied exactly when it is judged.
    let manifest: toml::Table = toml::from_str(include_str!("../plugin.toml")).unwrap();
    let scoped: Vec<&str> = manifest["policy"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool.as_str().unwrap())
        .collect();
    let ws = Ws::new();
    ws.write("a.txt", "a");
    let config = with(json!({"read_allow": [], "write_allow": []}));
    let input = json!({
        "file_path": ws.p("a.txt"), "path": ws.p("."), "content": "b", "old_string": "a",
        "new_string": "b", "pattern": "a", "command": "cat a.txt", "url": "http://x"
    });
    for tool in SOME_TOOLS {
        let judged = decide(&config, &ws, tool, input.clone()) != Decision::Allow;
        assert_eq!(judged, scoped.contains(tool), "{tool}");
    }
}

#[test]
fn the_manifest_and_the_code_have_the_same_defaults() {
    let from_manifest = defaults();
    let built_in = Config::load(&json!({})).unwrap();
    assert_eq!(from_manifest.write.deny.globs, built_in.write.deny.globs);
    assert_eq!(from_manifest.read.allow.globs, built_in.read.allow.globs);
    assert_eq!(from_manifest.read.deny.globs, built_in.read.deny.globs);
    assert_eq!(from_manifest.write.allow.globs, built_in.write.allow.globs);
    assert_eq!(from_manifest.max_write_bytes, built_in.max_write_bytes);
    assert_eq!(built_in.max_write_bytes, 1_048_576);
}

#[test]
fn default_write_denials_cover_secrets_and_git_at_any_depth() {
    let config = defaults();
    let ws = Ws::new();
    for path in [
        ".env",
        "./.env",
        "src/../.env",
        "a/b/.env",
        ".git/config",
        ".git/refs/heads/main",
        "a/.git/config",
        ".git",
        "vendor/lib/.git",
        "server.pem",
        "certs/server.pem",
    ] {
        let reason = deny_reason(
            &config,
            &ws,
            "Write",
            json!({"file_path": ws.p(path), "content": "x"}),
        );
        assert!(
            reason.contains("is not allowed by policy-files (write_deny"),
            "{reason}"
        );
        let reason = deny_reason(
            &config,
            &ws,
            "Edit",
            json!({"file_path": ws.p(path), "old_string": "a", "new_string": "b"}),
        );
        assert!(reason.starts_with("editing "), "{reason}");
    }
    for path in [
        "src/main.rs",
        ".env.example",
        ".envrc",
        ".gitignore",
        ".github/workflows/ci.yml",
        "docs/git/notes.md",
        "pem.txt",
    ] {
        assert_eq!(
            decide(
                &config,
                &ws,
                "Write",
                json!({"file_path": ws.p(path), "content": "x"})
            ),
            Decision::Allow,
            "{path}"
        );
    }
    // Reading is not restricted by default.
    assert_eq!(
        decide(&config, &ws, "Read", json!({"file_path": ws.p(".env")})),
        Decision::Allow
    );
}

#[test]
fn reasons_name_the_rule_and_what_to_do() {
    let config = defaults();
    let ws = Ws::new();
    assert_eq!(
        deny_reason(
            &config,
            &ws,
            "Write",
            json!({"file_path": ws.p(".env"), "content": "A=1"})
        ),
        "writing .env is not allowed by policy-files (write_deny \"**/.env\"); secrets must \
         not be written by the agent"
    );
    let reason = deny_reason(
        &config,
        &ws,
        "Write",
        json!({"file_path": ws.p("a/.git/config"), "content": "x"}),
    );
    assert!(reason.contains("(write_deny \"**/.git/**\")"), "{reason}");
    assert!(reason.contains("git commands"), "{reason}");
}

#[test]
fn paths_outside_the_workspace_and_other_tools_are_left_alone() {
    let config = defaults();
    let ws = Ws::new();
    for path in ["/etc/.env", "../.env", "/tmp/x/.git/config"] {
        assert_eq!(
            decide(
                &config,
                &ws,
                "Write",
                json!({"file_path": path, "content": "x"})
            ),
            Decision::Allow,
            "{path}"
        );
    }
    assert_eq!(
        decide(&config, &ws, "Bash", json!({"command": "echo x > .env"})),
        Decision::Allow
    );
    assert_eq!(
        config.check(Path::new(""), "Read", r#"{"file_path":"/x"}"#),
        Decision::Deny(
            "policy-files was given no workspace, so it cannot check paths; tell the user".into()
        )
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_checked_where_they_lead() {
    let config = defaults();
    let ws = Ws::new();
    std::os::unix::fs::symlink(".env", ws.root().join("notes.txt")).unwrap();
    std::fs::create_dir_all(ws.root().join(".git")).unwrap();
    std::os::unix::fs::symlink(".git", ws.root().join("meta")).unwrap();
    let reason = deny_reason(
        &config,
        &ws,
        "Write",
        json!({"file_path": ws.p("notes.txt"), "content": "x"}),
    );
    assert!(
        reason.starts_with("writing notes.txt (a symlink to .env) is not allowed"),
        "{reason}"
    );
    deny_reason(
        &config,
        &ws,
        "Edit",
        json!({"file_path": ws.p("meta/config"), "old_string": "a", "new_string": "b"}),
    );
}

#[test]
fn read_rules_apply_to_read_glob_and_grep() {
    let config = with(json!({"read_deny": ["secrets/**", "**/*.key"]}));
    let ws = Ws::new();
    ws.write("secrets/token.txt", "t");
    ws.write("src/a.rs", "a");
    let reason = deny_reason(
        &config,
        &ws,
        "Read",
        json!({"file_path": ws.p("secrets/token.txt")}),
    );
    assert!(reason.contains("(read_deny \"secrets/**\")"), "{reason}");
    assert!(reason.contains("secrets must not be read"), "{reason}");
    deny_reason(
        &config,
        &ws,
        "Read",
        json!({"file_path": ws.p("src/id.key")}),
    );
    assert_eq!(
        decide(&config, &ws, "Read", json!({"file_path": ws.p("src/a.rs")})),
        Decision::Allow
    );
    // A denied directory cannot be searched or listed; a file in it cannot be grepped.
    let reason = deny_reason(
        &config,
        &ws,
        "Grep",
        json!({"pattern": "t", "path": ws.p("secrets")}),
    );
    assert!(
        reason.starts_with("searching secrets is not allowed"),
        "{reason}"
    );
    deny_reason(
        &config,
        &ws,
        "Grep",
        json!({"pattern": "t", "path": ws.p("secrets/token.txt")}),
    );
    deny_reason(
        &config,
        &ws,
        "Glob",
        json!({"pattern": "*", "path": ws.p("secrets")}),
    );
    assert_eq!(
        decide(&config, &ws, "Glob", json!({"pattern": "**/*"})),
        Decision::Allow
    );
    // A single allowed file is searched as it is.
    assert_eq!(
        decide(
            &config,
            &ws,
            "Grep",
            json!({"pattern": "a", "path": ws.p("src/a.rs")})
        ),
        Decision::Allow
    );
}

#[test]
fn grep_of_a_directory_excludes_denied_files() {
    let config = with(json!({"read_deny": ["secrets/**", "**/*.key"]}));
    let ws = Ws::new();
    ws.write("src/a.rs", "a");
    let rewritten = |input: Value| match decide(&config, &ws, "Grep", input.clone()) {
        Decision::Rewrite(text) => agent_plugin_sdk::serde_json::from_str::<Value>(&text).unwrap(),
        other => panic!("{input}: {other:?}"),
    };
    assert_eq!(
        rewritten(json!({"pattern": "x"})),
        json!({"pattern": "x", "glob": "!/secrets/** !**/*.key"})
    );
    assert_eq!(
        rewritten(json!({"pattern": "x", "path": ws.p("src"), "glob": "*.rs", "-i": true})),
        json!({"pattern": "x", "path": ws.p("src"), "glob": "*.rs !/secrets/** !**/*.key", "-i": true})
    );
    // Without read_deny, nothing to exclude.
    assert_eq!(
        decide(&defaults(), &ws, "Grep", json!({"pattern": "x"})),
        Decision::Allow
    );
    // A glob Grep's filter syntax would split cannot be excluded: directories are denied.
    let config = with(json!({"read_deny": ["my secrets/**"]}));
    let reason = match config.check(ws.root(), "Grep", &json!({"pattern": "x"}).to_string()) {
        Decision::Deny(reason) => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason.contains("cannot be passed to Grep"), "{reason}");
}

#[test]
fn allow_lists_confine_reads_and_writes() {
    let config = with(json!({"read_allow": ["src/**", "README.md"], "write_allow": ["src/**"]}));
    let ws = Ws::new();
    ws.write("src/a.rs", "a");
    assert_eq!(
        decide(&config, &ws, "Read", json!({"file_path": ws.p("src/a.rs")})),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &config,
            &ws,
            "Read",
            json!({"file_path": ws.p("README.md")})
        ),
        Decision::Allow
    );
    let reason = deny_reason(
        &config,
        &ws,
        "Read",
        json!({"file_path": ws.p("Cargo.toml")}),
    );
    assert_eq!(
        reason,
        "reading Cargo.toml is not allowed by policy-files: it matches none of read_allow \
         (\"src/**\", \"README.md\"); stay within those paths or ask the user"
    );
    let reason = deny_reason(
        &config,
        &ws,
        "Write",
        json!({"file_path": ws.p("README.md"), "content": ""}),
    );
    assert!(reason.contains("write_allow (\"src/**\")"), "{reason}");
    // Searches must stay inside allowed directories.
    let reason = deny_reason(&config, &ws, "Grep", json!({"pattern": "x"}));
    assert!(
        reason.contains("searching the workspace root is not allowed"),
        "{reason}"
    );
    assert_eq!(
        decide(
            &config,
            &ws,
            "Grep",
            json!({"pattern": "x", "path": ws.p("src")})
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(&config, &ws, "Glob", json!({"pattern": "*", "path": "src"})),
        Decision::Allow
    );
}

#[test]
fn writes_over_the_size_limit_are_denied() {
    let config = with(json!({"max_write_bytes": 10}));
    let ws = Ws::new();
    assert_eq!(
        decide(
            &config,
            &ws,
            "Write",
            json!({"file_path": ws.p("a"), "content": "0123456789"})
        ),
        Decision::Allow
    );
    let reason = deny_reason(
        &config,
        &ws,
        "Write",
        json!({"file_path": ws.p("a"), "content": "0123456789X"}),
    );
    assert!(reason.contains("writing 11 bytes to"), "{reason}");
    assert!(reason.contains("max_write_bytes (10)"), "{reason}");
    // Edit: the size the file would end at.
    ws.write("f.txt", "aaaa");
    let edit = |old: &str, new: &str, all: bool| {
        decide(
            &config,
            &ws,
            "Edit",
            json!({"file_path": ws.p("f.txt"), "old_string": old, "new_string": new, "replace_all": all}),
        )
    };
    assert_eq!(edit("a", "bbb", false), Decision::Allow); // 4 + 2 = 6
    assert!(matches!(edit("a", "bbb", true), Decision::Deny(_))); // 4 + 4 * 2 = 12
    assert!(matches!(edit("a", "0123456789", false), Decision::Deny(_))); // 13
    // A file already over the limit may still be edited when it does not grow.
    ws.write("big.txt", "0123456789abcdef");
    assert_eq!(
        decide(
            &config,
            &ws,
            "Edit",
            json!({"file_path": ws.p("big.txt"), "old_string": "abc", "new_string": "x"})
        ),
        Decision::Allow
    );
    // A new file through Edit (empty old_string): its new_string.
    assert!(matches!(
        decide(
            &config,
            &ws,
            "Edit",
            json!({"file_path": ws.p("new.txt"), "old_string": "", "new_string": "0123456789X"})
        ),
        Decision::Deny(_)
    ));
}

#[test]
fn bad_configuration_names_the_key() {
    for (config, needle) in [
        (
            json!({"write_deny": ["a/[b"]}),
            "`write_deny[0]` \"a/[b\" is not a valid glob",
        ),
        (
            json!({"read_deny": "secrets/**"}),
            "`read_deny` must be a list of globs",
        ),
        (
            json!({"read_allow": [1]}),
            "`read_allow[0]` must be a glob string",
        ),
        (
            json!({"max_write_bytes": -1}),
            "`max_write_bytes` must be a whole number",
        ),
        (
            json!({"max_write_bytes": "1MB"}),
            "`max_write_bytes` must be a whole number",
        ),
        (json!({"write_denny": []}), "unknown key `write_denny`"),
        (json!("x"), "not a table"),
    ] {
        let problem = Config::load(&config).unwrap_err();
        assert!(problem.contains(needle), "{config}: {problem}");
    }
    assert!(
        agent_plugin_sdk::policy::misconfigured(NAME, "x")
            .contains("Every call it checks is denied")
    );
}

#[test]
fn guidance_says_what_is_denied_and_that_bash_is_not_checked() {
    let text = defaults().guidance();
    for needle in [
        "\"**/.git/**\"",
        "\"**/.env\"",
        "\"**/*.pem\"",
        "1048576 bytes",
        "Read, Glob and Grep: no path is denied",
        "NOT checked by this policy",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let text = with(json!({"read_deny": ["secrets/**"], "write_allow": ["src/**"]})).guidance();
    assert!(
        text.contains("may not read paths matching \"secrets/**\""),
        "{text}"
    );
    assert!(
        text.contains("only paths matching \"src/**\" may be written"),
        "{text}"
    );
    assert!(
        text.contains("Grep leaves files denied for reading out"),
        "{text}"
    );
}

#[test]
fn exclusions_are_anchored_at_the_root() {
    assert_eq!(exclusion("secrets/**").as_deref(), Some("!/secrets/**"));
    assert_eq!(exclusion("*.key").as_deref(), Some("!/*.key"));
    assert_eq!(exclusion("**/.env").as_deref(), Some("!**/.env"));
    assert_eq!(exclusion("a/{b,c}").as_deref(), Some("!/a/{b,c}"));
    assert_eq!(exclusion("a,b"), None);
    assert_eq!(exclusion("a b"), None);
}

#[test]
fn a_list_holding_everything_matches_what_its_compiled_set_matches() {
    // `matches` answers for `**` without compiling; the compiled set must agree on every
    // kind of path a call can produce, or the shortcut would change a decision.
    let table = json!({"read_allow": ["src/**", "**"], "read_deny": ["**"]});
    let table = table.as_object().unwrap();
    let allow = Globs::load(table, "read_allow", &[]).unwrap();
    let everything = Globs::load(table, "read_deny", &[]).unwrap();
    for path in [
        "",
        "a",
        ".env",
        "src/lib.rs",
        "a/b/c/d.txt",
        ".git/config",
        "dir/",
        "with space/ü.rs",
        "__probe__/__probe__",
    ] {
        assert!(allow.matches(path).unwrap(), "{path:?}");
        assert_eq!(
            everything.first_match(path).unwrap(),
            Some("**"),
            "the compiled `**` does not match {path:?}"
        );
    }
    // Without `**`, `matches` is the compiled set's answer.
    let table = json!({"read_allow": ["src/**"]});
    let only_src = Globs::load(table.as_object().unwrap(), "read_allow", &[]).unwrap();
    assert!(only_src.matches("src/lib.rs").unwrap());
    assert!(!only_src.matches("lib.rs").unwrap());
}
