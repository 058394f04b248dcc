//! The plugin-author CLI, run as a process exactly as operators and tests run it, with no
//! configuration: it must find the built-in plugins and a writable state dir by itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch home (state dir) and a workspace for one test.
struct Shell {
    home: tempfile::TempDir,
    workspace: PathBuf,
    _workspace_dir: tempfile::TempDir,
}

impl Shell {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let workspace_dir = tempfile::tempdir().unwrap();
        let workspace = workspace_dir.path().canonicalize().unwrap();
        Self {
            home,
            workspace,
            _workspace_dir: workspace_dir,
        }
    }

    /// The binary with no configuration at all: state under this test's `$HOME`.
    fn bare_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_agent-host"));
        command
            .args(args)
            .current_dir(self.home.path())
            .env_remove("XDG_STATE_HOME")
            .env("HOME", self.home.path())
            .env_remove("AGENT_HOST_PLUGINS_DIR")
            .env_remove("AGENT_HOST_STATE_DIR");
        command
    }

    /// The binary with a state dir shared by the tests of this file, so components are
    /// compiled once (sessions stay apart: each test has its own workspace).
    fn command(&self, args: &[&str]) -> Command {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cli-state");
        let mut command = self.bare_command(args);
        command.env("AGENT_HOST_STATE_DIR", shared);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn call(&self, tool: &str, input: &str, extra: &[&str]) -> Output {
        let workspace = self.workspace.display().to_string();
        let mut args = vec![
            "tools",
            "call",
            tool,
            input,
            "--workspace",
            workspace.as_str(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn file(&self, name: &str) -> String {
        self.workspace.join(name).display().to_string()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn tools_list_shows_every_built_in_tool_with_its_schema() {
    let shell = Shell::new();
    let output = shell
        .bare_command(&["tools", "list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let tools: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in ["Read", "Write", "Edit", "Glob", "Grep"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for tool in tools.as_array().unwrap() {
        assert_eq!(tool["input_schema"]["type"], "object", "{tool}");
        assert!(!tool["description"].as_str().unwrap().is_empty());
    }
    let text = stdout(&shell.run(&["tools", "list"]));
    assert!(
        text.contains("Read (plugin files)") && text.contains("\"file_path\""),
        "{text}"
    );
    // The state dir was created under $HOME by default, with the compile cache in it.
    assert!(
        shell
            .home
            .path()
            .join(".local/state/agent-host/plugin-cache")
            .is_dir()
    );
}

#[test]
fn read_then_edit_across_processes_behaves_like_one_conversation() {
    let shell = Shell::new();
    std::fs::write(shell.workspace.join("notes.txt"), "alpha\nbeta\n").unwrap();
    let path = shell.file("notes.txt");

    let edit = format!(r#"{{"file_path":"{path}","old_string":"beta","new_string":"gamma"}}"#);
    let refused = shell.call("Edit", &edit, &[]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "Edit before Read is an error result"
    );
    assert!(
        stdout(&refused).contains("File has not been read yet"),
        "{}",
        stdout(&refused)
    );

    let read = shell.call("Read", &format!(r#"{{"file_path":"{path}"}}"#), &[]);
    assert_eq!(read.status.code(), Some(0), "{}", stderr(&read));
    assert_eq!(stdout(&read), "1\talpha\n2\tbeta\n");

    // Another session has not read the file.
    let other = shell.call("Edit", &edit, &["--session", "other"]);
    assert_eq!(other.status.code(), Some(1));

    let edited = shell.call("Edit", &edit, &[]);
    assert_eq!(edited.status.code(), Some(0), "{}", stdout(&edited));
    assert_eq!(
        stdout(&edited).trim(),
        format!("The file {path} has been updated successfully.")
    );
    assert_eq!(
        std::fs::read_to_string(shell.workspace.join("notes.txt")).unwrap(),
        "alpha\ngamma\n"
    );
}

#[test]
fn input_can_come_from_stdin() {
    let shell = Shell::new();
    std::fs::write(shell.workspace.join("a.txt"), "x\n").unwrap();
    let workspace = shell.workspace.display().to_string();
    let mut child = shell
        .command(&["tools", "call", "Read", "-", "--workspace", &workspace])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(r#"{{"file_path":"{}"}}"#, shell.file("a.txt"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(stdout(&output), "1\tx\n");
}

#[test]
fn bad_invocations_exit_2_with_a_clear_message() {
    let shell = Shell::new();
    let output = shell.run(&[
        "tools",
        "call",
        "Read",
        "{}",
        "--workspace",
        "/does/not/exist",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("the workspace /does/not/exist cannot be opened"),
        "{}",
        stderr(&output)
    );

    let workspace = shell.workspace.display().to_string();
    let output = shell.run(&[
        "tools",
        "call",
        "Read",
        "{}",
        "--workspace",
        &workspace,
        "--session",
        "../x",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--session"), "{}", stderr(&output));

    let output = shell
        .command(&["tools", "list"])
        .env("AGENT_HOST_PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("AGENT_HOST_PORT"),
        "{}",
        stderr(&output)
    );

    // A tool that does not exist is an error result the model could read, not a crash.
    let output = shell.call("Nope", "{}", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("No such tool available: Nope"),
        "{}",
        stdout(&output)
    );
}

/// `agent-host run` on a machine with no AWS set-up: one line that says what is missing
/// and how to provide it, at once, with no retries and no warnings from the AWS SDK.
#[test]
fn run_without_aws_configuration_says_what_is_missing_in_one_line() {
    let shell = Shell::new();
    let workspace = shell.workspace.display().to_string();
    let run = |region: Option<&str>| {
        let mut command = shell.command(&["run", "--workspace", &workspace, "hello"]);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        // The credential chain must not leave this machine: no instance metadata service.
        command.env("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(region) = region {
            command.env("AWS_REGION", region);
        }
        command.output().unwrap()
    };

    let no_region = run(None);
    assert_eq!(no_region.status.code(), Some(2));
    let text = stderr(&no_region);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.contains("AWS_REGION"), "{text}");

    let no_credentials = run(Some("us-east-1"));
    assert_eq!(no_credentials.status.code(), Some(2));
    let text = stderr(&no_credentials);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    for hint in ["AWS_PROFILE", "aws sso login", "AWS_ACCESS_KEY_ID"] {
        assert!(text.contains(hint), "{hint} in {text}");
    }
    assert!(stdout(&no_credentials).is_empty());
}

/// `agent-host tools list | head -1`: the reader stops early, and the list ends quietly.
#[test]
fn a_reader_that_stops_early_ends_the_list_quietly() {
    use std::io::{BufRead as _, BufReader};
    let shell = Shell::new();
    // A one-page pipe, so the list (12 KB) cannot fit in it before the reader leaves.
    let (reader, writer) = {
        use std::os::fd::FromRawFd as _;
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let size = unsafe { libc::fcntl(fds[0], libc::F_SETPIPE_SZ, 4096) };
        assert!((4096..12 * 1024).contains(&size), "pipe size {size}");
        unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        }
    };
    let mut command = shell.command(&["tools", "list"]);
    let child = command
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(command);
    let mut first = String::new();
    BufReader::new(reader).read_line(&mut first).unwrap();
    // The pipe is closed here, with most of the list unread.
    assert!(first.contains("(plugin "), "{first}");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn help_lists_every_configuration_key() {
    let help = stdout(&Shell::new().run(&["--help"]));
    for key in [
        "port",
        "model_id",
        "exec_network",
        "idle_user_evict_secs",
        "[plugins.<name>]",
    ] {
        assert!(help.contains(key), "{key} in {help}");
    }
}

#[test]
fn plugin_check_reports_the_world_and_the_asks_or_the_refusal() {
    let shell = Shell::new();
    let files = builtin("files");
    let output = shell.run(&["plugin", "check", files.to_str().unwrap()]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("world:     tool-plugin\n"), "{text}");
    assert!(
        text.contains("wit:       agent:plugin@0.1.0 (this host speaks it"),
        "{text}"
    );
    assert!(
        text.contains("asks for:  workspace = read-write: granted"),
        "{text}"
    );
    assert!(
        text.contains("asks for:  session_state = yes: granted (imported)"),
        "{text}"
    );
    assert!(
        text.contains("asks for:  exec = no: not asked for"),
        "{text}"
    );
    assert!(text.contains("tool:      Read"), "{text}");

    // A policy says which calls it judges.
    let commands = builtin("policy-commands");
    let output = shell.run(&["plugin", "check", commands.to_str().unwrap()]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("checks:    calls of Bash\n"), "{text}");

    // A component that imports a capability its manifest does not ask for is told so.
    let bash = shell.home.path().join("mybash.wasm");
    std::fs::copy(builtin("bash"), &bash).unwrap();
    std::fs::write(
        bash.with_extension("toml"),
        "name = \"mybash\"\nworld = \"tool-plugin\"\n[capabilities]\nworkspace = \"read-write\"\nsession_state = true\n",
    )
    .unwrap();
    let output = shell.run(&["plugin", "check", bash.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "asks for:  exec = no: not asked for, but the component imports agent:plugin/exec@0.1.0"
        ),
        "{text}"
    );

    // A grant the configuration withholds is named with the setting that would give it.
    let config = shell.home.path().join("narrow.toml");
    std::fs::write(&config, "[plugins.files]\nworkspace = \"read-only\"\n").unwrap();
    let output = shell.run(&[
        "--config",
        config.to_str().unwrap(),
        "plugin",
        "check",
        files.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("asks for:  workspace = read-write: NOT GRANTED")
            && text.contains("set `workspace = \"read-write\"` under [plugins.files]"),
        "{text}"
    );

    let broken = shell.home.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm").unwrap();
    let output = shell.run(&["plugin", "check", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("refused:   ") && stdout(&output).contains("not WebAssembly"));
}

fn builtin(name: &str) -> PathBuf {
    let dir = agent_host::plugins::builtin_plugins_dir().expect("built-in plugins were built");
    Path::new(&dir).join(format!("{name}.wasm"))
}

#[test]
fn bash_commands_never_see_the_hosts_secrets() {
    let shell = Shell::new();
    let workspace = shell.workspace.display().to_string();
    let secrets = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLESECRET1"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret-2"),
        ("AWS_SESSION_TOKEN", "session-token-secret-3"),
        ("AGENT_HOST_TELEGRAM_BOT_TOKEN", "123456:telegram-secret-4"),
        ("TELEGRAM_BOT_TOKEN", "123456:telegram-secret-5"),
    ];
    let mut command = shell.command(&[
        "tools",
        "call",
        "Bash",
        r#"{"command":"env; cat /proc/self/environ | tr '\\0' '\\n'"}"#,
        "--workspace",
        &workspace,
    ]);
    command.envs(secrets);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("PATH="), "{text}");
    for (name, value) in secrets {
        assert!(!text.contains(value), "{name} reached the command:\n{text}");
    }
}

#[test]
fn tools_call_runs_the_configured_policies_like_the_agent() {
    let shell = Shell::new();
    let plugins = tempfile::tempdir().unwrap();
    for (name, dir) in [
        ("files", agent_host::plugins::builtin_plugins_dir().unwrap()),
        (
            "policy-example",
            PathBuf::from(agent_host::plugins::TESTING_PLUGINS_DIR),
        ),
    ] {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                dir.join(format!("{name}.{ext}")),
                plugins.path().join(format!("{name}.{ext}")),
            )
            .unwrap();
        }
    }
    let workspace = shell.workspace.display().to_string();
    let secret = shell.file("secret/key.pem");
    let input = format!(r#"{{"file_path":"{secret}","content":"x"}}"#);
    let output = shell
        .command(&["tools", "call", "Write", &input, "--workspace", &workspace])
        .env("AGENT_HOST_PLUGINS_DIR", plugins.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).starts_with("Denied by policy policy-example:"),
        "{}",
        stdout(&output)
    );
    assert!(!shell.workspace.join("secret").exists());
}

/// A host run by an ordinary user (not root) confines commands just as well: the
/// namespaces come from a user namespace of its own. Run here as uid 65534 with `setpriv`
/// when the tests run as root (as in CI); otherwise the tests already run as non-root.
#[test]
fn a_non_root_host_confines_commands_too() {
    use std::os::unix::fs::{PermissionsExt as _, chown};
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        agent_host_tests::skip("not root: cannot switch to another user to try a non-root host");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        agent_host_tests::skip("setpriv (util-linux) is missing");
        return;
    }
    let nobody = 65534;
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (home, workspace) = (root.join("home"), root.join("ws"));
    for dir in [&home, &workspace] {
        std::fs::create_dir(dir).unwrap();
        chown(dir, Some(nobody), Some(nobody)).unwrap();
    }
    let secret = root.join("secret.txt");
    std::fs::write(&secret, "MARKER-non-root").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_agent-host"))
            .args(args)
            .current_dir(&home)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("AGENT_HOST_LOG", "warn")
            .output()
            .unwrap()
    };
    let doctor = as_nobody(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(0), "{}", stdout(&doctor));
    let command = format!(
        "id -u; grep CapEff /proc/self/status; ls -d /proc/[0-9]* | wc -l; cat {} || true",
        secret.display()
    );
    let input = serde_json::json!({ "command": command }).to_string();
    let workspace = workspace.display().to_string();
    let output = as_nobody(&["tools", "call", "Bash", &input, "--workspace", &workspace]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("65534"), "{text}");
    assert_eq!(lines.next(), Some("CapEff:\t0000000000000000"), "{text}");
    let processes: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(
        processes <= 4,
        "the command sees {processes} processes: {text}"
    );
    assert!(!text.contains("MARKER-non-root"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
}

/// `plugin precompile` for pinned CPU features fills a cache that a second process, with
/// the same setting, loads without compiling: what an image does at build time and its
/// containers at start. Artifacts made for other features are not taken.
#[test]
fn precompiled_artifacts_for_pinned_features_are_loaded_by_the_next_process() {
    let shell = Shell::new();
    let cache = shell.home.path().join("image/plugin-cache");
    let precompile = |features: &str| {
        let output = shell
            .bare_command(&["plugin", "precompile"])
            .env("AGENT_HOST_PLUGIN_CACHE_DIR", &cache)
            .env("AGENT_HOST_PLUGIN_CPU_FEATURES", features)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let count = |text: &str, what: &str| text.lines().filter(|l| l.contains(what)).count();

    let first = precompile("baseline");
    let components = count(&first, "(cache miss)");
    assert!(
        components >= 5,
        "every built-in component compiled:\n{first}"
    );
    assert!(first.contains("plugin_cpu_features = baseline"), "{first}");
    let second = precompile("baseline");
    assert_eq!(count(&second, "(cache hit)"), components, "{second}");
    assert_eq!(count(&second, "(cache miss)"), 0, "{second}");

    // A host started on that cache with the same setting compiles nothing: its log says so.
    let output = shell
        .bare_command(&["tools", "list"])
        .env("AGENT_HOST_PLUGIN_CACHE_DIR", &cache)
        .env("AGENT_HOST_PLUGIN_CPU_FEATURES", "baseline")
        .env("AGENT_HOST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("cache hit"), "{log}");
    assert!(!log.contains("cache miss"), "{log}");

    // The features are part of an artifact's identity: this machine's own miss.
    let native = precompile("native");
    assert_eq!(count(&native, "(cache miss)"), components, "{native}");

    // A flag that is not Cranelift's is named, not ignored.
    let output = shell
        .bare_command(&["plugin", "precompile"])
        .env("AGENT_HOST_PLUGIN_CACHE_DIR", &cache)
        .env("AGENT_HOST_PLUGIN_CPU_FEATURES", "has_warp_drive")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has_warp_drive"), "{stderr}");
}
