//! The host's command runner (`agent_host::exec`), attacked directly: every promise of
//! the `exec` capability — timeout kills the whole tree, output is capped, the
//! environment is scrubbed, writes stay in the workspace, the network switch is enforced,
//! fork bombs are contained — is tried here against the real kernel.
//!
//! Where the kernel lacks a mechanism (no Landlock, no pids cgroup as root) the test says
//! so on stderr and checks nothing it cannot, never passing silently.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agent_host::exec::{CommandOutput, CommandRequest, CommandRunner, ExecError, ExecSettings};
use agent_host_tests::{all_gone, unique_name};

fn runner() -> &'static CommandRunner {
    static RUNNER: OnceLock<CommandRunner> = OnceLock::new();
    RUNNER.get_or_init(|| CommandRunner::new(ExecSettings::default()))
}

fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

fn run_with(
    runner: &CommandRunner,
    workspace: &Path,
    command: &str,
    timeout: Duration,
) -> Result<CommandOutput, ExecError> {
    runner.run(&CommandRequest {
        command_line: command,
        workspace,
        cwd: workspace,
        timeout,
        cancel: None,
    })
}

fn run(workspace: &Path, command: &str) -> CommandOutput {
    run_with(runner(), workspace, command, Duration::from_secs(60)).expect("the command runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn landlock_available() -> bool {
    let abi = runner().confinement().landlock_abi;
    if abi == 0 {
        agent_host_tests::skip(
            "this kernel has no Landlock; writes outside the workspace cannot be blocked here",
        );
    }
    abi > 0
}

#[test]
fn exit_codes_and_separate_streams() {
    let (_dir, ws) = workspace();
    let output = run(&ws, "echo out; echo err >&2; echo more; exit 3");
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(text(&output.stdout), "out\nmore\n");
    assert_eq!(text(&output.stderr), "err\n");
    assert!(!output.timed_out && !output.truncated && !output.cancelled);
    assert_eq!(run(&ws, "true").exit_code, Some(0));
    // The shell is PID 1 of its namespace, which ignores signals it has no handler for
    // from inside; a signal from outside (timeout, cancel) or to any other process works.
    let killed = run(&ws, "kill -9 $$; echo still here");
    assert_eq!(text(&killed.stdout), "still here\n");
    let killed = run(&ws, "bash -c 'kill -9 $$'; echo status=$?");
    assert_eq!(text(&killed.stdout), "status=137\n");
}

#[test]
fn unicode_passes_through_unchanged() {
    let (_dir, ws) = workspace();
    let output = run(&ws, "printf '%s\\n' 'héllo wörld — 日本語 🦀'");
    assert_eq!(text(&output.stdout), "héllo wörld — 日本語 🦀\n");
}

#[test]
fn the_command_runs_in_its_cwd_with_no_stdin() {
    let (_dir, ws) = workspace();
    std::fs::create_dir(ws.join("src")).unwrap();
    let output = runner()
        .run(&CommandRequest {
            command_line: "pwd; cat; echo after-cat",
            workspace: &ws,
            cwd: &ws.join("src"),
            timeout: Duration::from_secs(30),
            cancel: None,
        })
        .unwrap();
    assert_eq!(
        text(&output.stdout),
        format!("{}\nafter-cat\n", ws.join("src").display())
    );
}

#[test]
fn a_cwd_outside_the_workspace_is_refused() {
    let (_dir, ws) = workspace();
    let (_other, elsewhere) = workspace();
    std::os::unix::fs::symlink(&elsewhere, ws.join("link-out")).unwrap();
    for cwd in [
        PathBuf::from("/"),
        elsewhere.clone(),
        ws.join(".."),
        ws.join("link-out"),
    ] {
        let error = runner()
            .run(&CommandRequest {
                command_line: "touch escaped",
                workspace: &ws,
                cwd: &cwd,
                timeout: Duration::from_secs(5),
                cancel: None,
            })
            .unwrap_err();
        assert!(
            matches!(error, ExecError::OutsideWorkspace { .. }),
            "{cwd:?}: {error}"
        );
    }
    assert!(!elsewhere.join("escaped").exists());
    let relative = runner().run(&CommandRequest {
        command_line: "true",
        workspace: &ws,
        cwd: Path::new("src"),
        timeout: Duration::from_secs(5),
        cancel: None,
    });
    assert!(relative.is_err());
}

#[test]
fn fifty_megabytes_of_output_are_capped_in_memory() {
    let (_dir, ws) = workspace();
    let output = run(
        &ws,
        "head -c 50000000 /dev/zero | tr '\\0' a; echo done >&2",
    );
    let cap = ExecSettings::default().max_output_kb as usize * 1024;
    assert_eq!(output.exit_code, Some(0));
    assert!(output.truncated);
    assert_eq!(output.stdout.len() + output.stderr.len(), cap);
    assert!(output.stdout.iter().all(|b| *b == b'a'));
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let (_dir, ws) = workspace();
    // A grandchild in the background, one in a subshell, and the shell itself sleeping.
    let started = Instant::now();
    let (bg, sub) = (unique_name("bg"), unique_name("sub"));
    let output = run_with(
        runner(),
        &ws,
        &format!(
            "(exec -a {bg} sleep 300) & (exec -a {sub} bash -c 'sleep 300; echo never') & \
             sleep 300"
        ),
        Duration::from_millis(700),
    )
    .unwrap();
    assert!(output.timed_out);
    assert_eq!(output.exit_code, None, "killed by a signal");
    assert!(started.elapsed() < Duration::from_secs(60));
    for name in [bg, sub] {
        assert!(all_gone(&name), "{name} survived the timeout");
    }
}

#[test]
fn background_processes_do_not_outlive_a_finished_command() {
    let (_dir, ws) = workspace();
    let started = Instant::now();
    let bg = unique_name("bg");
    let output = run(&ws, &format!("(exec -a {bg} sleep 300) & echo started"));
    assert_eq!(text(&output.stdout), "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited for the background sleep"
    );
    assert!(all_gone(&bg), "the background process {bg} survived");
}

#[test]
fn a_process_that_leaves_the_group_is_still_killed_with_a_cgroup() {
    let (_dir, ws) = workspace();
    if let Err(why) = &runner().confinement().cgroups {
        agent_host_tests::skip(&format!(
            "no pids cgroup ({why}): a process that calls setsid escapes the kill here"
        ));
        return;
    }
    let escaped = unique_name("escaped");
    let output = run(
        &ws,
        &format!("setsid bash -c 'exec -a {escaped} sleep 300' > /dev/null 2>&1 & true"),
    );
    assert_eq!(output.exit_code, Some(0));
    assert!(all_gone(&escaped), "the setsid process {escaped} survived");
}

#[test]
fn a_fork_bomb_is_contained() {
    let (_dir, ws) = workspace();
    let confinement = runner().confinement();
    if confinement.cgroups.is_err() && confinement.root {
        agent_host_tests::skip(
            "running as root without a pids cgroup: RLIMIT_NPROC does not bind root, \
             so nothing here can contain a fork bomb",
        );
        return;
    }
    let runner = CommandRunner::new(ExecSettings {
        max_processes: 64,
        ..Default::default()
    });
    let output = run_with(
        &runner,
        &ws,
        "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
        Duration::from_secs(8),
    )
    .unwrap();
    // The process limit refused forks: the bomb hit the wall instead of the machine.
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Resource temporarily unavailable"),
        "no fork was refused: {output:?}"
    );
    // The host can still start commands.
    assert_eq!(run(&ws, "echo fine").stdout, b"fine\n");
}

#[test]
fn cancellation_stops_the_command() {
    let (_dir, ws) = workspace();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // Cancels once the command has started (it says so with a file).
    let started = ws.join("started");
    let setter = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let output = runner()
        .run(&CommandRequest {
            command_line: "touch started; sleep 300",
            workspace: &ws,
            cwd: &ws,
            timeout: Duration::from_secs(300),
            cancel: Some(&cancel),
        })
        .unwrap();
    setter.join().unwrap();
    assert!(output.cancelled && !output.timed_out);
}

#[test]
fn the_environment_is_an_allow_list() {
    let (_dir, ws) = workspace();
    let output = run(&ws, "env");
    let env = text(&output.stdout);
    let names: Vec<&str> = env
        .lines()
        .filter_map(|line| line.split_once('=').map(|(k, _)| k))
        .collect();
    let allowed = [
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "TERM",
        "PAGER",
        "GIT_PAGER",
        "GIT_TERMINAL_PROMPT",
        "NO_COLOR",
        // Set by bash itself.
        "PWD",
        "SHLVL",
        "_",
        "OLDPWD",
    ];
    for name in &names {
        assert!(
            allowed.contains(name),
            "unexpected variable {name} in {env}"
        );
    }
    // None of the test process's own variables leak, except the allowed ones.
    for (name, value) in std::env::vars() {
        if !allowed.contains(&name.as_str()) && value.len() > 3 {
            assert!(
                !env.contains(&format!("{name}={value}")),
                "{name} leaked into the command"
            );
        }
    }
    assert!(env.contains(&format!("HOME={}", ws.join(".agent-host/home").display())));
}

#[test]
fn operator_listed_variables_pass_through() {
    let (_dir, ws) = workspace();
    // Any variable this test process has that commands do not get by default.
    let (name, value) = std::env::vars()
        .find(|(name, value)| {
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && ![
                    "PATH", "HOME", "LANG", "TERM", "TMPDIR", "_", "PWD", "OLDPWD", "SHLVL",
                ]
                .contains(&name.as_str())
                && !value.contains('\n')
        })
        .expect("the test process has some environment");
    let default_output = run(&ws, &format!("printf '%s' \"${name}\""));
    assert_eq!(
        text(&default_output.stdout),
        "",
        "{name} passed without being listed"
    );
    let runner = CommandRunner::new(ExecSettings {
        env: vec![name.clone()],
        ..Default::default()
    });
    let output = run_with(
        &runner,
        &ws,
        &format!("printf '%s' \"${name}\""),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(text(&output.stdout), value, "{name} was not passed through");
}

#[test]
fn writes_outside_the_workspace_are_refused_by_the_kernel() {
    if !landlock_available() {
        return;
    }
    let (_dir, ws) = workspace();
    let (_outside_dir, outside) = workspace();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let targets = [
        outside.join("outside.txt"),
        ws.parent().unwrap().join(format!(
            "agent-host-escape-{}",
            ws.file_name().unwrap().to_string_lossy()
        )),
        PathBuf::from(&home).join(format!(
            "agent-host-escape-{}",
            ws.file_name().unwrap().to_string_lossy()
        )),
    ];
    for target in &targets {
        let output = run(&ws, &format!("echo x > '{}'", target.display()));
        assert_ne!(output.exit_code, Some(0), "wrote {}", target.display());
        assert!(!target.exists(), "{} was written", target.display());
    }
    // `../x` and a symlink pointing out are refused the same way.
    std::os::unix::fs::symlink(&outside, ws.join("out")).unwrap();
    let output = run(&ws, "echo x > ../x-escape; echo y > out/y; mkdir out/d");
    assert_ne!(output.exit_code, Some(0));
    assert!(!ws.parent().unwrap().join("x-escape").exists());
    assert!(!outside.join("y").exists() && !outside.join("d").exists());
    // Inside the workspace (and its scratch area) writing works.
    let output = run(
        &ws,
        "mkdir -p a/b && echo ok > a/b/f && cat a/b/f && echo t > \"$TMPDIR/t\" && echo h > ~/h",
    );
    assert_eq!(text(&output.stdout), "ok\n", "{}", text(&output.stderr));
    assert_eq!(output.exit_code, Some(0));
}

#[test]
fn operator_writable_paths_are_allowed() {
    if !landlock_available() {
        return;
    }
    let (_dir, ws) = workspace();
    let (_cache_dir, cache) = workspace();
    let runner = CommandRunner::new(ExecSettings {
        writable_paths: vec![cache.clone()],
        ..Default::default()
    });
    let output = run_with(
        &runner,
        &ws,
        &format!("echo c > '{}/c'", cache.display()),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(output.exit_code, Some(0), "{}", text(&output.stderr));
    assert!(cache.join("c").exists());
}

#[test]
fn network_off_is_enforced() {
    let (_dir, ws) = workspace();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    // On: the command reaches a local listener.
    let output = run(&ws, &connect);
    assert_eq!(
        text(&output.stdout),
        "connected\n",
        "{}",
        text(&output.stderr)
    );
    // Off: it cannot.
    let offline = CommandRunner::new(ExecSettings {
        network: false,
        ..Default::default()
    });
    match run_with(&offline, &ws, &connect, Duration::from_secs(30)) {
        Ok(output) => {
            assert_ne!(output.exit_code, Some(0));
            assert_eq!(text(&output.stdout), "");
        }
        Err(error) => {
            // A host that cannot make a network namespace refuses to run the command.
            eprintln!("network off refused the command: {error}");
            assert!(error.to_string().contains("exec_network"), "{error}");
        }
    }
}

#[test]
fn file_size_limit_applies() {
    let (_dir, ws) = workspace();
    let runner = CommandRunner::new(ExecSettings {
        max_file_size_mb: 1,
        ..Default::default()
    });
    let output = run_with(
        &runner,
        &ws,
        "head -c 3000000 /dev/zero > big",
        Duration::from_secs(30),
    )
    .unwrap();
    assert_ne!(output.exit_code, Some(0));
    assert!(std::fs::metadata(ws.join("big")).unwrap().len() <= 1024 * 1024);
}

#[test]
fn the_scratch_area_is_ignored_by_git_and_a_symlink_in_its_place_is_refused() {
    let (_dir, ws) = workspace();
    run(&ws, "true");
    assert_eq!(
        std::fs::read_to_string(ws.join(".agent-host/.gitignore")).unwrap(),
        "*\n"
    );
    let (_dir2, ws2) = workspace();
    let (_out, outside) = workspace();
    std::os::unix::fs::symlink(&outside, ws2.join(".agent-host")).unwrap();
    let error = run_with(runner(), &ws2, "true", Duration::from_secs(5)).unwrap_err();
    assert!(error.to_string().contains("scratch"), "{error}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}
