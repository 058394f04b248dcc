//! End-to-end tests of the `Bash` tool: the real plugin component calling the host's
//! `exec` capability. The texts are the ones tools.md fixes; each sandbox promise is
//! attacked through the tool the model uses.

use std::time::{Duration, Instant};

use agent_host_tests::Fixture;
use serde_json::json;

fn bash(fx: &Fixture, command: &str) -> agent_host_tests::Result {
    fx.call("Bash", json!({ "command": command }))
}

#[test]
fn success_shows_stdout_then_stderr() {
    let fx = Fixture::new();
    let result = bash(&fx, "echo out; echo err >&2; echo 'ünïcødé ✓'");
    assert!(!result.is_error, "{}", result.text);
    assert_eq!(result.text, "out\nünïcødé ✓\nerr");
}

#[test]
fn a_failure_starts_with_the_exit_code() {
    let fx = Fixture::new();
    let text = fx.err(
        "Bash",
        json!({"command": "echo partial; echo 'oops' >&2; exit 7"}),
    );
    assert_eq!(text, "Exit code 7\npartial\noops");
}

#[test]
fn grep_finding_nothing_is_not_an_error() {
    let fx = Fixture::new();
    fx.write("a.txt", "alpha\n");
    let text = fx.ok("Bash", json!({"command": "grep beta a.txt"}));
    assert!(text.contains("no matches"), "{text}");
    // But a failing command before it still is.
    fx.err("Bash", json!({"command": "false; grep beta a.txt; exit 2"}));
}

#[test]
fn the_working_directory_persists_between_calls() {
    let fx = Fixture::new();
    fx.write("src/lib.rs", "");
    assert_eq!(fx.ok("Bash", json!({"command": "cd src"})), "(no output)");
    assert_eq!(
        fx.ok("Bash", json!({"command": "pwd"})),
        fx.p("src"),
        "cd carried over"
    );
    // Environment changes do not.
    fx.ok("Bash", json!({"command": "export FOO=bar"}));
    assert_eq!(fx.ok("Bash", json!({"command": "echo \"[$FOO]\""})), "[]");
}

#[test]
fn cd_out_of_the_workspace_is_reset() {
    let fx = Fixture::new();
    let text = fx.ok("Bash", json!({"command": "cd / && pwd"}));
    assert!(
        text.ends_with(&format!("Shell cwd was reset to {}", fx.root().display())),
        "{text}"
    );
    assert_eq!(
        fx.ok("Bash", json!({"command": "pwd"})),
        fx.root().display().to_string()
    );
    // Through a symlink, too.
    std::os::unix::fs::symlink("/", fx.path("root-link")).unwrap();
    let text = fx.ok("Bash", json!({"command": "cd root-link"}));
    assert!(text.contains("Shell cwd was reset"), "{text}");
    assert_eq!(
        fx.ok("Bash", json!({"command": "pwd"})),
        fx.root().display().to_string()
    );
}

#[test]
fn a_timeout_kills_the_command_and_says_so() {
    let fx = Fixture::new();
    let started = Instant::now();
    let text = fx.err(
        "Bash",
        json!({"command": "echo before; sleep 60; echo after", "timeout": 500}),
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        text.starts_with("Exit code 143\nCommand timed out after 500ms"),
        "{text}"
    );
    assert!(
        text.contains("\nbefore") && !text.contains("\nafter"),
        "{text}"
    );
}

#[test]
fn huge_output_is_saved_to_a_file_with_a_preview() {
    let fx = Fixture::new();
    let result = bash(&fx, "seq 1 100000");
    assert!(!result.is_error, "{}", result.text);
    let text = result.text;
    assert!(
        text.len() < 10_000,
        "preview only, got {} bytes",
        text.len()
    );
    assert!(text.starts_with("1\n2\n3\n"), "{text}");
    let path = text
        .split("saved to ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("names the file");
    assert!(
        path.starts_with(&fx.p(".agent-host/output/")),
        "inside the workspace's scratch area: {path}"
    );
    let saved = std::fs::read_to_string(path).unwrap();
    assert_eq!(saved.lines().count(), 100_000);
    assert_eq!(saved.lines().last(), Some("100000"));
    // The model can page through it with Read.
    let page = fx.ok(
        "Read",
        json!({"file_path": path, "offset": 99_999, "limit": 2}),
    );
    assert!(page.contains("100000"), "{page}");
}

#[test]
fn fifty_megabytes_of_output_do_not_flood_anything() {
    let fx = Fixture::new();
    let result = bash(&fx, "head -c 50000000 /dev/zero | tr '\\0' x");
    assert!(!result.is_error, "{}", result.text);
    assert!(result.text.len() < 10_000);
    assert!(result.text.contains("Output truncated"), "{}", result.text);
}

#[test]
fn background_commands_are_refused_clearly() {
    let fx = Fixture::new();
    let text = fx.err(
        "Bash",
        json!({"command": "sleep 1", "run_in_background": true}),
    );
    assert!(text.contains("not supported"), "{text}");
    let text = fx.err("Bash", json!({"command": "true", "timeout": 600_001}));
    assert!(text.contains("600000"), "{text}");
    let text = fx.err("Bash", json!({"command": "true", "bogus": 1}));
    assert!(text.contains("InputValidationError"), "{text}");
}

#[test]
fn writes_outside_the_workspace_fail() {
    if agent_host::exec::CommandRunner::new(Default::default())
        .confinement()
        .landlock_abi
        == 0
    {
        agent_host_tests::skip("this kernel has no Landlock; writes outside cannot be blocked");
        return;
    }
    let fx = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("pwned");
    let text = fx.err(
        "Bash",
        json!({"command": format!("echo x > {}", target.display())}),
    );
    assert!(text.starts_with("Exit code 1"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(!target.exists());
    fx.err("Bash", json!({"command": "touch ../escape-attempt"}));
    assert!(!fx.root().parent().unwrap().join("escape-attempt").exists());
    // HOME is inside the workspace, so tools that write dotfiles keep working.
    let home = fx.ok(
        "Bash",
        json!({"command": "git config --global user.name agent && echo $HOME"}),
    );
    assert_eq!(home, fx.p(".agent-host/home"));
}

#[test]
fn the_scratch_area_stays_out_of_git() {
    let fx = Fixture::new();
    fx.write("a.txt", "a\n");
    let text = fx.ok(
        "Bash",
        json!({"command": "git init -q && seq 1 50000 && git status --porcelain"}),
    );
    assert!(text.contains("saved to"), "{text}");
    let status = fx.ok("Bash", json!({"command": "git status --porcelain"}));
    assert_eq!(status, "?? a.txt", "only the user's file is untracked");
}
