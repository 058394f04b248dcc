//! Plugin authors outside this repository: `agent-host plugin new` in a temporary directory
//! (no checkout in sight), each project built with the commands its README gives, then
//! `plugin check` and `tools call --plugin/--policy` on what it built, in the production
//! sandbox.
//!
//! The two Rust projects share one cargo build directory (`CARGO_BUILD_BUILD_DIR`, kept in
//! `target/plugin-authors` across runs) so their common dependencies compile once; each
//! project's component still lands in its own `target/`, where its README says it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// The command lines each README documents; the tests run exactly these.
const RUST_BUILD: &[&str] = &["cargo", "build", "--release", "--target", "wasm32-wasip2"];
const RUST_TEST: &[&str] = &["cargo", "test"];
const PYTHON_BUILD: &[&str] = &["./build.sh"];
const PYTHON_TEST: &[&str] = &["python3", "-m", "unittest"];

/// A temporary author's machine: a home for the projects, a workspace, a configuration
/// whose state stays in the temporary directory.
struct Author {
    home: tempfile::TempDir,
    workspace: PathBuf,
    config: PathBuf,
}

impl Author {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let workspace = home.path().join("workspace");
        std::fs::create_dir(&workspace).unwrap();
        let workspace = workspace.canonicalize().unwrap();
        let config = home.path().join("agent-host.toml");
        // The built-in plugins are found from the checkout the binary was built in.
        let state = home.path().join("state");
        std::fs::write(
            &config,
            format!("state_dir = {:?}\n", state.display().to_string()),
        )
        .unwrap();
        Self {
            home,
            workspace,
            config,
        }
    }

    fn agent_host(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_agent-host"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.home.path())
            .env_remove("AGENT_HOST_PLUGINS_DIR")
            .env_remove("AGENT_HOST_STATE_DIR")
            .output()
            .unwrap()
    }

    /// `plugin new` into `<home>/<name>`; returns the project directory.
    fn new_plugin(&self, name: &str, kind: &str, language: &str) -> PathBuf {
        let dir = self.home.path().join(name);
        let output = self.agent_host(&[
            "plugin",
            "new",
            name,
            "--kind",
            kind,
            "--lang",
            language,
            dir.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains("next:"), "{}", text(&output));
        dir
    }

    /// `plugin check` accepts `component`, names the WIT version it was built against and
    /// `world`; returns the report.
    fn check(&self, component: &Path, world: &str) -> String {
        let check = self.agent_host(&["plugin", "check", component.to_str().unwrap()]);
        let report = text(&check);
        assert!(check.status.success(), "{report}");
        assert!(
            report.contains("wit:       agent:plugin@0.1.0 (this host speaks it)"),
            "{report}"
        );
        assert!(
            report.contains(&format!("world:     {world}\n")),
            "{report}"
        );
        if world == "policy-plugin" {
            // The templates' policies name the tools their rules judge.
            assert!(
                report.contains("checks:    calls of Write, Edit\n"),
                "{report}"
            );
        }
        report
    }

    fn call(&self, option: &str, component: &Path, tool: &str, input: &str) -> Output {
        self.agent_host(&[
            "tools",
            "call",
            option,
            component.to_str().unwrap(),
            tool,
            input,
            "--workspace",
            self.workspace.to_str().unwrap(),
        ])
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a documented command in `project`, as an author would, with only the shared
/// build directory added; what the outer `cargo test` set for its own build is removed.
fn run_documented(project: &Path, command_line: &[&str]) {
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let shown = command_line.join(" ");
    assert!(readme.contains(&shown), "the README gives `{shown}`");
    let build_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-authors");
    let mut command = Command::new(command_line[0]);
    command
        .args(&command_line[1..])
        .current_dir(project)
        .env("CARGO_BUILD_BUILD_DIR", build_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MANIFEST_DIR",
    ] {
        command.env_remove(var);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "`{shown}` in {}:\n{}",
        project.display(),
        text(&output)
    );
}

#[test]
fn a_rust_tool_and_a_rust_policy_from_an_empty_directory() {
    let author = Author::new();
    let started = Instant::now();

    // A tool: scaffolded, built, checked and called without being installed.
    let tool = author.new_plugin("word-count", "tool", "rust");
    run_documented(&tool, RUST_BUILD);
    let tool_wasm = tool.join("target/wasm32-wasip2/release/word_count.wasm");
    let report = author.check(&tool_wasm, "tool-plugin");
    assert!(
        report.contains(&format!(
            "manifest:  {}",
            tool.join("plugin.toml").display()
        )),
        "{report}"
    );
    assert!(
        report.contains("asks for:  workspace = read-only: granted"),
        "{report}"
    );
    assert!(
        report.contains("asks for:  log = yes: granted (imported)"),
        "{report}"
    );
    assert!(report.contains("tool:      WordCount"), "{report}");

    first_call_counts_a_file(&author, &tool_wasm, started, "a Rust tool");

    assert_escapes_are_refused(&author, &tool_wasm);

    // A policy: scaffolded, built, and put in front of the built-in tools.
    let policy = author.new_plugin("no-lockfile-edits", "policy", "rust");
    run_documented(&policy, RUST_BUILD);
    let policy_wasm = policy.join("target/wasm32-wasip2/release/no_lockfile_edits.wasm");
    author.check(&policy_wasm, "policy-plugin");
    assert_denies_lock_file_writes(&author, &policy_wasm, "no-lockfile-edits");

    // A tool given where a policy belongs is named, not half-loaded.
    let wrong = author.call("--plugin", &policy_wasm, "Read", "{}");
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("give it with --policy"),
        "{}",
        text(&wrong)
    );

    // Each project's unit tests pass natively.
    run_documented(&tool, RUST_TEST);
    run_documented(&policy, RUST_TEST);
}

/// The scaffolded `WordCount` tool in `tool` counts a workspace file, as `wc` would; the
/// time from `plugin new` (at `started`) to this first call is reported for `what`.
fn first_call_counts_a_file(author: &Author, tool: &Path, started: Instant, what: &str) {
    std::fs::write(author.workspace.join("notes.txt"), "one two\nthree\n").unwrap();
    let call = author.call("--plugin", tool, "WordCount", r#"{"path": "notes.txt"}"#);
    assert_eq!(call.status.code(), Some(0), "{}", text(&call));
    assert!(
        text(&call).contains("2 lines, 3 words, 14 bytes"),
        "{}",
        text(&call)
    );
    eprintln!(
        "plugin new to a first successful call of {what}: {:.1} s (build included)",
        started.elapsed().as_secs_f64()
    );
}

/// The scaffolded `WordCount` tool in `tool` is held to the workspace like any other: by its
/// own path check, and by the sandbox itself for a symlink leading out.
fn assert_escapes_are_refused(author: &Author, tool: &Path) {
    let outside = author.home.path().join("outside.txt");
    std::fs::write(&outside, "secret outside the workspace").unwrap();
    let link = author.workspace.join("link.txt");
    if !link.exists() {
        std::os::unix::fs::symlink(&outside, &link).unwrap();
    }
    for input in [
        format!(r#"{{"path": {:?}}}"#, outside.display().to_string()),
        r#"{"path": "../outside.txt"}"#.to_string(),
        r#"{"path": "link.txt"}"#.to_string(),
    ] {
        let call = author.call("--plugin", tool, "WordCount", &input);
        let said = text(&call);
        assert_eq!(call.status.code(), Some(1), "{input}: {said}");
        assert!(said.contains("Access denied"), "{input}: {said}");
        assert!(!said.contains("secret outside"), "{input}: {said}");
        assert!(!said.contains("bytes in"), "{input}: {said}");
    }
}

/// `policy` denies a `Write` of Cargo.lock through the built-in Write tool, and lets a
/// `Write` of another file through.
fn assert_denies_lock_file_writes(author: &Author, policy: &Path, name: &str) {
    let lock = author.workspace.join("Cargo.lock");
    let input = serde_json::json!({"file_path": lock, "content": "[[package]]\n"}).to_string();
    let denied = author.call("--policy", policy, "Write", &input);
    let said = text(&denied);
    assert_eq!(denied.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "policy {name}: deny: Cargo.lock is written by its package manager"
        )),
        "{said}"
    );
    assert!(!lock.exists(), "the denied Write never ran");

    let notes = author.workspace.join("allowed.txt");
    let input = serde_json::json!({"file_path": notes, "content": "fine\n"}).to_string();
    let allowed = author.call("--policy", policy, "Write", &input);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    assert!(text(&allowed).contains(&format!("policy {name}: allow")));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "fine\n");
}

#[test]
fn a_python_tool_and_a_python_policy_from_an_empty_directory() {
    if !componentize_py_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "componentize-py is missing; .ci/run installs it"
        );
        eprintln!(
            "SKIPPED: componentize-py is not installed \
             (python3 -m pip install -r plugins/python/policy-example-py/requirements.txt)"
        );
        return;
    }
    let author = Author::new();

    // A tool, held to the workspace like the Rust one.
    let started = Instant::now();
    let tool = author.new_plugin("word-count-py", "tool", "python");
    run_documented(&tool, PYTHON_BUILD);
    let tool_wasm = tool.join("build/word-count-py.wasm");
    let report = author.check(&tool_wasm, "tool-plugin");
    assert!(report.contains("tool:      WordCount"), "{report}");
    first_call_counts_a_file(&author, &tool_wasm, started, "a Python tool");
    assert_escapes_are_refused(&author, &tool_wasm);
    run_documented(&tool, PYTHON_TEST);

    let started = Instant::now();
    let policy = author.new_plugin("no-lockfile-edits", "policy", "python");
    run_documented(&policy, PYTHON_BUILD);
    let wasm = policy.join("build/no-lockfile-edits.wasm");
    assert!(policy.join("build/no-lockfile-edits.toml").is_file());
    author.check(&wasm, "policy-plugin");
    assert_denies_lock_file_writes(&author, &wasm, "no-lockfile-edits");
    eprintln!(
        "plugin new to a first policy decision in Python: {:.1} s (build included)",
        started.elapsed().as_secs_f64()
    );
    run_documented(&policy, PYTHON_TEST);
}

/// componentize-py on PATH or in Python's scripts directory (where build.sh looks too).
fn componentize_py_installed() -> bool {
    let on_path = Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    on_path || scripts.is_some_and(|dir| Path::new(&dir).join("componentize-py").is_file())
}

#[test]
fn the_wit_package_is_written_for_other_tooling() {
    let author = Author::new();
    let out = author.home.path().join("wit-out");
    let output = author.agent_host(&["plugin", "wit", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let wit = std::fs::read_to_string(out.join("plugin.wit")).unwrap();
    let ours = include_str!("../../wit/plugin.wit");
    assert_eq!(wit, ours);

    let output = author.agent_host(&[
        "plugin",
        "wit",
        "--version",
        "0.0.9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("does not speak agent:plugin@0.0.9; it speaks 0.1.0"),
        "{}",
        text(&output)
    );

    // A project directory that holds anything is refused, and left as it was.
    let taken = author.home.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("mine.txt"), "keep").unwrap();
    let output = author.agent_host(&[
        "plugin",
        "new",
        "taken",
        "--kind",
        "tool",
        taken.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("not empty"), "{}", text(&output));
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);
}
