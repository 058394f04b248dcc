//! What running a command through the `Bash` tool costs over spawning it directly.
//!
//! `cargo bench --bench exec` prints median and p99 of:
//! - `bash -c true` spawned directly with `std::process::Command` (the floor);
//! - making a `CommandRunner`: the one-time probe of every confinement mechanism (trial
//!   commands, the `/etc` walk, the BPF filter), paid when the first `exec` plugin loads;
//! - the host's `CommandRunner` running `true` (environment, scratch area, cgroups,
//!   rlimits, PID/mount namespace with its own /proc, Landlock, seccomp, capability drop,
//!   supervision), also from a host with 512 MB resident (the cost of starting a command
//!   must not grow with the host);
//! - a `Bash` tool call `{"command":"true"}` through the plugin (fresh instance, session
//!   state for the working directory, exec), which is what the model pays.
//!
//! `BENCH_QUICK=1` runs fewer iterations.

mod common;

use common::{ms, percentile, us};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::exec::{CommandRequest, CommandRunner, ExecSettings};
use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, PluginRuntime, PluginSet, ToolOutcome};

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let iterations = if quick { 50 } else { 500 };
    let scratch = tempfile::tempdir().expect("scratch dir");
    let workspace = scratch.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();

    let direct = sample(iterations, || {
        let status = Command::new("bash")
            .args(["-c", "true"])
            .current_dir(&workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("bash runs");
        assert!(status.status.success());
    });
    report("`bash -c true` spawned directly", &direct, None);

    let probes = sample(if quick { 5 } else { 30 }, || {
        std::hint::black_box(CommandRunner::new(ExecSettings::default()));
    });
    report(
        "making a CommandRunner (the confinement probe)",
        &probes,
        None,
    );

    let runner = CommandRunner::new(ExecSettings::default());
    for promise in runner.promises() {
        println!(
            "  confinement ({}): {}: {}",
            if promise.holds { "on" } else { "OFF" },
            promise.name,
            promise.detail
        );
    }
    let host = sample(iterations, || run_true(&runner, &workspace));
    report("host exec of `true` (confined)", &host, Some(&direct));

    // The same from a host with 512 MB resident: starting a command must not copy it.
    let resident = vec![1u8; 512 << 20];
    let big = sample(iterations / 5, || run_true(&runner, &workspace));
    std::hint::black_box(&resident);
    drop(resident);
    report(
        "host exec of `true` with 512 MB resident in the host",
        &big,
        Some(&direct),
    );

    let plugins_dir = agent_host::plugins::builtin_plugins_dir().expect("built-in plugins built");
    let runtime = Arc::new(PluginRuntime::new(Some(scratch.path().join("cache"))).unwrap());
    let set = PluginSet::load_dir(&runtime, &plugins_dir, &Default::default()).unwrap();
    let context = CallContext::new(workspace.clone(), Arc::new(SessionState::in_memory()));
    let tool = sample(iterations, || {
        match set.call("Bash", r#"{"command":"true"}"#, &context).outcome {
            ToolOutcome::Success(_) => {}
            other => panic!("Bash true failed: {other:?}"),
        }
    });
    report(
        "`Bash` tool call {\"command\":\"true\"}",
        &tool,
        Some(&direct),
    );
}

fn run_true(runner: &CommandRunner, workspace: &std::path::Path) {
    let output = runner
        .run(&CommandRequest {
            command_line: "true",
            workspace,
            cwd: workspace,
            timeout: Duration::from_secs(30),
            cancel: None,
        })
        .expect("command runs");
    assert_eq!(output.exit_code, Some(0));
}

fn sample(iterations: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..iterations / 10 {
        f();
    }
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

fn report(what: &str, samples: &[Duration], baseline: Option<&[Duration]>) {
    let (median, p99) = (percentile(samples, 50.0), percentile(samples, 99.0));
    let extra = baseline
        .map(|base| {
            let added = median.saturating_sub(percentile(base, 50.0));
            format!("  (+{} over direct)", us(added))
        })
        .unwrap_or_default();
    let total: Duration = samples.iter().sum();
    println!(
        "{what}: median {}, p99 {}{extra} ({} calls in {})",
        us(median),
        us(p99),
        samples.len(),
        ms(total)
    );
}
