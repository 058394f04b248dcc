//! The sandbox holds against plugins that misbehave on purpose (`plugins/testing/hostile`):
//! each attack fails only its own call, with an error that names the limit, and the host
//! carries on. The `Probe` tool uses raw `std::fs` without any path checks, so what it
//! reaches is exactly what the sandbox lets through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, ToolOutcome};
use agent_host_tests::{Fixture, PluginDir, hostile_plugins, testing_component};
use serde_json::{Value, json};

fn hostile() -> Fixture {
    Fixture::with_plugins(hostile_plugins().clone())
}

/// A call that must work after any attack: the host is still healthy.
#[track_caller]
fn still_healthy(fx: &Fixture) {
    let text = fx.ok("Environment", json!({}));
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["workspace"], fx.root().display().to_string());
}

#[test]
fn an_endless_loop_hits_the_time_limit() {
    let fx = hostile();
    let error = fx.err("Spin", json!({}));
    assert!(error.contains("plugin hostile ran out of time"), "{error}");
    assert!(error.contains("1s"), "the limit is named: {error}");
    still_healthy(&fx);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let fx = hostile();
    let error = fx.err("Bomb", json!({}));
    assert!(error.contains("hit its memory limit of 32 MiB"), "{error}");
    still_healthy(&fx);
}

#[test]
fn a_panic_is_a_crash_with_the_panic_message() {
    let fx = hostile();
    let error = fx.err("Panic", json!({}));
    assert!(error.contains("plugin hostile crashed"), "{error}");
    assert!(
        error.contains("deliberate panic from the hostile plugin"),
        "{error}"
    );
    still_healthy(&fx);
}

#[test]
fn endless_recursion_traps_without_hurting_the_host() {
    let fx = hostile();
    let error = fx.err("Recurse", json!({}));
    assert!(error.contains("plugin hostile crashed"), "{error}");
    still_healthy(&fx);
}

#[test]
fn a_giant_result_is_refused() {
    let fx = hostile();
    let error = fx.err("Giant", json!({"kb": 200}));
    assert!(
        error.contains("returned a result of 204800 bytes, over its limit of 65536 bytes"),
        "{error}"
    );
    assert_eq!(fx.ok("Giant", json!({"kb": 10})).len(), 10 * 1024);
}

#[test]
fn nothing_of_the_host_process_is_inherited() {
    let fx = hostile();
    let report: Value = serde_json::from_str(&fx.ok("Environment", json!({}))).unwrap();
    assert_eq!(
        report["env"],
        json!([]),
        "no environment variables reach a plugin"
    );
    assert_eq!(report["args"], json!([]), "no arguments reach a plugin");
}

#[test]
fn failures_stay_in_their_own_call_under_concurrency() {
    let fx = Arc::new(hostile());
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let fx = fx.clone();
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    fx.call("Bomb", json!({}))
                } else {
                    fx.call("Environment", json!({}))
                }
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let result = handle.join().unwrap();
        assert_eq!(result.is_error, i % 2 == 0, "call {i}: {}", result.text);
    }
}

#[test]
fn a_cancelled_call_stops_promptly() {
    let fx = hostile();
    let flag = Arc::new(AtomicBool::new(false));
    let setter = flag.clone();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        setter.store(true, Ordering::Relaxed);
    });
    let context = CallContext::new(fx.root().to_path_buf(), Arc::new(SessionState::in_memory()))
        .with_cancel(flag);
    let outcome = hostile_plugins().call("Spin", "{}", &context).outcome;
    timer.join().unwrap();
    match outcome {
        ToolOutcome::Error(text) => assert!(text.contains("was cancelled"), "{text}"),
        other => panic!("expected a cancellation, got {other:?}"),
    }
}

/// A directory next to the workspace, with a file the plugin must never see or change.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "OUTSIDE-MARKER").unwrap();
        Self { dir }
    }

    fn file(&self) -> String {
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .join("secret.txt")
            .display()
            .to_string()
    }

    #[track_caller]
    fn untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.dir.path()).unwrap().collect();
        assert_eq!(
            entries.len(),
            1,
            "nothing was created outside the workspace"
        );
        let text = std::fs::read_to_string(self.dir.path().join("secret.txt")).unwrap();
        assert_eq!(text, "OUTSIDE-MARKER");
    }
}

#[track_caller]
fn probe_fails(fx: &Fixture, input: Value) -> String {
    let result = fx.call("Probe", input.clone());
    assert!(
        result.is_error,
        "{input} got through the sandbox: {}",
        result.text
    );
    assert!(!result.text.contains("OUTSIDE-MARKER"), "{}", result.text);
    assert!(!result.text.contains("root:"), "{}", result.text);
    result.text
}

#[test]
fn raw_reads_outside_the_workspace_are_refused_by_the_sandbox() {
    let fx = hostile();
    let outside = Outside::new();
    let root = fx.p("");
    let up = format!(
        "{root}/../{}",
        outside.dir.path().file_name().unwrap().to_string_lossy()
    );
    for path in [
        "/etc/passwd".to_string(),
        outside.file(),
        format!("{up}/secret.txt"),
        "/proc/self/environ".to_string(),
        "/proc/self/mem".to_string(),
        "../../../../etc/passwd".to_string(),
    ] {
        probe_fails(&fx, json!({"path": path}));
    }
    outside.untouched();
}

#[test]
fn raw_writes_outside_the_workspace_are_refused_by_the_sandbox() {
    let fx = hostile();
    let outside = Outside::new();
    let dir = outside.dir.path().canonicalize().unwrap();
    for path in [dir.join("new.txt").display().to_string(), outside.file()] {
        probe_fails(&fx, json!({"path": path, "write": "pwned"}));
    }
    let relative_escape = format!("{}/../escape.txt", fx.p(""));
    probe_fails(&fx, json!({"path": relative_escape, "write": "pwned"}));
    outside.untouched();
    assert!(!fx.temp_dir().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn symlinks_out_of_the_workspace_lead_nowhere() {
    let fx = hostile();
    let outside = Outside::new();
    std::os::unix::fs::symlink(outside.file(), fx.path("file-link")).unwrap();
    std::os::unix::fs::symlink(outside.dir.path(), fx.path("dir-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc", fx.path("relative-link")).unwrap();
    for (path, write) in [
        (fx.p("file-link"), None),
        (fx.p("file-link"), Some("pwned")),
        (fx.p("dir-link/secret.txt"), None),
        (fx.p("dir-link/secret.txt"), Some("pwned")),
        (fx.p("dir-link/new.txt"), Some("pwned")),
        (fx.p("relative-link/passwd"), None),
    ] {
        let mut input = json!({"path": path});
        if let Some(text) = write {
            input["write"] = json!(text);
        }
        probe_fails(&fx, input);
    }
    outside.untouched();
}

#[test]
fn a_symlink_swapped_in_after_a_check_still_leads_nowhere() {
    // The race a path-checking tool could lose: the path is a plain file when checked and
    // a symlink out when opened. The sandbox resolves every open inside the preopen, so
    // the swap changes nothing. Here the swap is done up front, many times over.
    let fx = hostile();
    let outside = Outside::new();
    for round in 0..20 {
        let path = fx.path("racy");
        let _ = std::fs::remove_file(&path);
        if round % 2 == 0 {
            std::fs::write(&path, "inside").unwrap();
            assert_eq!(fx.ok("Probe", json!({"path": fx.p("racy")})), "inside");
        } else {
            std::os::unix::fs::symlink(outside.file(), &path).unwrap();
            probe_fails(&fx, json!({"path": fx.p("racy")}));
        }
    }
    outside.untouched();
}

#[test]
fn very_long_paths_fail_cleanly() {
    let fx = hostile();
    let long = format!("{}/{}", fx.p(""), "a/".repeat(3000));
    probe_fails(&fx, json!({"path": long}));
    let long_name = format!("{}/{}", fx.p(""), "b".repeat(5000));
    probe_fails(&fx, json!({"path": long_name, "write": "x"}));
    still_healthy(&fx);
}

#[test]
fn a_read_only_grant_is_enforced_by_the_handle() {
    let dir = PluginDir::new();
    dir.add(
        "hostile",
        &testing_component("hostile"),
        "name = \"hostile\"\nworld = \"tool-plugin\"\n[capabilities]\nworkspace = \"read-only\"\nsession_state = true",
    );
    let fx = Fixture::with_plugins(Arc::new(dir.load().unwrap()));
    fx.write("inside.txt", "original");
    assert_eq!(
        fx.ok("Probe", json!({"path": fx.p("inside.txt")})),
        "original"
    );
    let error = fx.err(
        "Probe",
        json!({"path": fx.p("inside.txt"), "write": "changed"}),
    );
    assert!(error.contains("write failed"), "{error}");
    fx.err("Probe", json!({"path": fx.p("new.txt"), "write": "x"}));
    assert_eq!(fx.read("inside.txt"), b"original");
    assert!(!fx.path("new.txt").exists());
}

#[test]
fn session_state_is_per_session_and_bounded() {
    let fx = hostile();
    assert_eq!(
        fx.ok("Remember", json!({"key": "k", "value": "v1"})),
        "stored"
    );
    assert_eq!(fx.ok("Remember", json!({"key": "k"})), "v1");
    let other = hostile();
    assert_eq!(
        other.ok("Remember", json!({"key": "k"})),
        "<none>",
        "sessions are separate"
    );
    let error = fx.err(
        "Remember",
        json!({"key": "big", "value": "x".repeat(70_000)}),
    );
    assert!(error.contains("over the limit"), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn async_callers_are_never_blocked_by_a_plugin() {
    // One executor thread: if the looping plugin ran on it, the ticker could not tick.
    let fx = hostile();
    let context = CallContext::new(fx.root().to_path_buf(), Arc::new(SessionState::in_memory()));
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let outcome = hostile_plugins()
        .call_tool("Spin", "{}", &context)
        .await
        .outcome;
    ticker.abort();
    assert!(
        outcome.is_error() && outcome.text().contains("ran out of time"),
        "{outcome:?}"
    );
    assert!(
        ticks.load(Ordering::Relaxed) >= 10,
        "the executor kept running during the call"
    );
}
