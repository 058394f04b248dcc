//! The WIT contract is language-neutral: `policy-example-py`, a policy written in Python
//! (`plugins/python/policy-example-py`, built into a component by its `build.sh` with
//! componentize-py), decides exactly like its Rust twin `policy-example` on the same cases,
//! loaded by the same host beside the same tools.
//!
//! Cargo does not build the Python component (host/build.rs builds only the Rust plugins).
//! When it is missing these tests print `SKIPPED: ...` with the command that builds it and
//! pass, except when `CI` is set: CI builds it first (.ci/run), so there they fail.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agent_host::plugins::SessionState;
use agent_host::plugins::{
    CacheUse, CallContext, Decision, PluginSet, PolicyPlugin, ToolOutcome, Verdict, load::loader,
};
use agent_host_tests::{PluginDir, builtin_component, runtime, testing_component};
use serde_json::{Value, json};

const RUST: &str = "policy-example";
const PYTHON: &str = "policy-example-py";

/// Where `plugins/python/policy-example-py/build.sh` puts the component: beside
/// `target/plugins/testing`, which host/build.rs owns (and empties of anything else).
fn python_component() -> PathBuf {
    PathBuf::from(agent_host::plugins::TESTING_PLUGINS_DIR)
        .parent()
        .expect("the testing plugins live in target/plugins/testing")
        .join("python")
        .join(format!("{PYTHON}.wasm"))
}

/// The same tools (`files` for `Write`, `hostile` for `Probe`) guarded by either twin.
struct Twins {
    rust: Arc<PluginSet>,
    python: Arc<PluginSet>,
    _dirs: [PluginDir; 2],
}

impl Twins {
    /// Each twin's loaded policy, named.
    fn policies(&self) -> [(&'static str, &PolicyPlugin); 2] {
        [
            (RUST, only_policy(&self.rust)),
            (PYTHON, only_policy(&self.python)),
        ]
    }
}

fn only_policy(set: &PluginSet) -> &PolicyPlugin {
    match set.policies() {
        [policy] => policy,
        other => panic!("expected one policy, found {}", other.len()),
    }
}

fn guarded_by(policy: &str, wasm: PathBuf) -> (PluginDir, Arc<PluginSet>) {
    let dir = PluginDir::new();
    for (name, wasm) in [
        ("files", builtin_component("files")),
        ("hostile", testing_component("hostile")),
        (policy, wasm),
    ] {
        let manifest = std::fs::read_to_string(wasm.with_extension("toml"))
            .unwrap_or_else(|error| panic!("manifest of {}: {error}", wasm.display()));
        dir.add(name, &wasm, &manifest);
    }
    let set = dir
        .load()
        .unwrap_or_else(|error| panic!("the set guarded by {policy} loads: {error:#}"));
    (dir, Arc::new(set))
}

/// Writes straight to the process's stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip or a timing must be seen.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Both twins, loaded once per test binary; `None` (after saying why) when the Python
/// component is not built and `CI` is not set.
fn twins() -> Option<&'static Twins> {
    static TWINS: OnceLock<Result<Twins, String>> = OnceLock::new();
    let loaded = TWINS.get_or_init(|| {
        let wasm = python_component();
        if !wasm.is_file() {
            return Err(format!(
                "{} is not built. Build it with: python3 -m pip install -r \
                 plugins/python/policy-example-py/requirements.txt && \
                 bash plugins/python/policy-example-py/build.sh",
                wasm.display()
            ));
        }
        // The first load compiles tens of MB of CPython; the shared cache in
        // target/test-cache makes later runs (and the set below) load the artifact.
        let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        let (_, cache) = loader::compile_file(runtime(), &wasm).expect("the component compiles");
        let compiled = started.elapsed();
        let started = Instant::now();
        let (python_dir, python) = guarded_by(PYTHON, wasm);
        let loaded = started.elapsed();
        let how = match cache {
            CacheUse::Compiled | CacheUse::Disabled => "compiled",
            CacheUse::Hit => "loaded from the compile cache",
        };
        say(&format!(
            "{PYTHON}: {:.1} MB component {how} in {compiled:.2?}; its set then loaded \
             (cache hit) in {loaded:.2?}",
            size as f64 / 1e6
        ));
        let (rust_dir, rust) = guarded_by(RUST, testing_component(RUST));
        Ok(Twins {
            rust,
            python,
            _dirs: [rust_dir, python_dir],
        })
    });
    match loaded {
        Ok(twins) => Some(twins),
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("{reason}\n(CI is set, so this test may not be skipped)")
        }
        Err(reason) => {
            say(&format!("SKIPPED: {reason}"));
            None
        }
    }
}

fn context(workspace: &tempfile::TempDir) -> CallContext {
    CallContext::new(
        workspace
            .path()
            .canonicalize()
            .expect("canonical workspace"),
        Arc::new(SessionState::in_memory()),
    )
}

/// A verdict as the comparison sees it: a rewrite is compared as JSON, not as text.
#[derive(Debug, PartialEq)]
enum Seen {
    Allow,
    Deny(String),
    Rewrite(Value),
}

fn seen(verdict: Verdict) -> Seen {
    match verdict {
        Verdict::Allow => Seen::Allow,
        Verdict::Deny(reason) => Seen::Deny(reason),
        Verdict::Rewrite(input) => Seen::Rewrite(
            serde_json::from_str(&input)
                .unwrap_or_else(|error| panic!("the rewrite {input:?} is not JSON: {error}")),
        ),
    }
}

fn deny(reason: &str) -> Seen {
    Seen::Deny(reason.to_string())
}

fn secret(path: &str) -> Seen {
    deny(&format!(
        "policy-example: writing into secret/ is not allowed ({path})"
    ))
}

#[test]
fn both_twins_decide_the_same_calls_the_same_way() {
    let Some(twins) = twins() else { return };
    let workspace = tempfile::tempdir().unwrap();
    let context = context(&workspace);
    let raw = |text: &str| text.to_string();
    let cases: Vec<(&str, String, Seen)> = vec![
        // Write into a secret/ directory: denied, by file_path or by path.
        (
            "Write",
            json!({"file_path": "/w/secret/key.pem", "content": "x"}).to_string(),
            secret("/w/secret/key.pem"),
        ),
        (
            "Write",
            json!({"path": "/w/a/secret/b"}).to_string(),
            secret("/w/a/secret/b"),
        ),
        (
            "Write",
            json!({"file_path": "/w/secret/ключ é 😀.txt", "content": "ü"}).to_string(),
            secret("/w/secret/ключ é 😀.txt"),
        ),
        // file_path wins over path, even when it is not a string (then there is no path).
        (
            "Write",
            json!({"file_path": "/w/ok", "path": "/w/secret/x"}).to_string(),
            Seen::Allow,
        ),
        (
            "Write",
            json!({"file_path": 7, "path": "/w/secret/x"}).to_string(),
            Seen::Allow,
        ),
        // Everything else is allowed.
        (
            "Write",
            json!({"file_path": "/w/public/a.txt", "content": "/secret/"}).to_string(),
            Seen::Allow,
        ),
        (
            "Write",
            json!({"file_path": "secret/a"}).to_string(),
            Seen::Allow,
        ),
        (
            "Write",
            json!({"file_path": "/w/secrets/a"}).to_string(),
            Seen::Allow,
        ),
        (
            "write",
            json!({"file_path": "/w/secret/a"}).to_string(),
            Seen::Allow,
        ),
        (
            "Read",
            json!({"file_path": "/w/secret/a"}).to_string(),
            Seen::Allow,
        ),
        (
            "Bash",
            json!({"command": "cat /w/secret/a"}).to_string(),
            Seen::Allow,
        ),
        ("Read", raw("{}"), Seen::Allow),
        // Inputs that are not JSON objects have no path.
        ("Write", raw("not json /w/secret/a"), Seen::Allow),
        ("Write", raw(r#"["/w/secret/a"]"#), Seen::Allow),
        ("Write", raw(r#""/w/secret/a""#), Seen::Allow),
        ("Write", raw(""), Seen::Allow),
        // Probe with a path: rewritten to path "blocked", the rest kept.
        (
            "Probe",
            json!({"path": "/etc/passwd"}).to_string(),
            Seen::Rewrite(json!({"path": "blocked"})),
        ),
        (
            "Probe",
            json!({"path": "/etc/shadow", "write": "ü 😀", "n": [1, {"a": null}]}).to_string(),
            Seen::Rewrite(json!({"path": "blocked", "write": "ü 😀", "n": [1, {"a": null}]})),
        ),
        (
            "Probe",
            json!({"file_path": "/etc/passwd"}).to_string(),
            Seen::Rewrite(json!({"file_path": "/etc/passwd", "path": "blocked"})),
        ),
        ("Probe", json!({"write": "x"}).to_string(), Seen::Allow),
        ("Probe", json!({"path": 3}).to_string(), Seen::Allow),
        // The rewrite the tools must refuse.
        (
            "Write",
            json!({"file_path": "/w/policy-bad-rewrite.txt", "content": "x"}).to_string(),
            Seen::Rewrite(json!({"not_a_field": true})),
        ),
    ];
    for (tool, input, expected) in cases {
        let [(_, rust), (_, python)] = twins.policies();
        let rust = seen(rust.check_call(tool, &input, &context));
        let python = seen(python.check_call(tool, &input, &context));
        assert_eq!(rust, expected, "{RUST} on {tool} {input}");
        assert_eq!(
            python, rust,
            "{PYTHON} differs from {RUST} on {tool} {input}"
        );
    }
}

#[test]
fn both_twins_validate_the_same_changes_the_same_way() {
    let Some(twins) = twins() else { return };
    let workspace = tempfile::tempdir().unwrap();
    let context = context(&workspace);
    let bad = |path: &str| Err(format!("{path}: files ending in .bad are not allowed"));
    let cases: Vec<(Vec<&str>, Result<(), String>)> = vec![
        (vec![], Ok(())),
        (vec!["/w/a.rs"], Ok(())),
        (vec!["/w/a.bad.rs", "/w/bad", "/w/a.BAD"], Ok(())),
        (vec!["/w/a.rs", "/w/b.bad", "/w/c.bad"], bad("/w/b.bad")),
        (vec!["/w/.bad"], bad("/w/.bad")),
        (vec!["/w/ünï 😀.bad"], bad("/w/ünï 😀.bad")),
    ];
    for (paths, expected) in cases {
        let paths: Vec<String> = paths.into_iter().map(String::from).collect();
        let [(_, rust), (_, python)] = twins.policies();
        let rust = rust.check_changes(&paths, &context);
        let python = python.check_changes(&paths, &context);
        assert_eq!(rust, expected, "{RUST} on {paths:?}");
        assert_eq!(python, rust, "{PYTHON} differs from {RUST} on {paths:?}");
    }
    let [(_, rust), (_, python)] = twins.policies();
    assert_eq!(
        rust.guidance(&context),
        "Never write files under a secret/ directory."
    );
    assert_eq!(python.guidance(&context), rust.guidance(&context));
}

#[test]
fn both_twins_fail_closed_when_they_break() {
    let Some(twins) = twins() else { return };
    let workspace = tempfile::tempdir().unwrap();
    let context = context(&workspace);
    for (marker, failure) in [
        ("policy-trap", "crashed"),
        ("policy-loop", "ran out of time"),
        ("policy-memory", "hit its memory limit"),
    ] {
        let input = json!({"file_path": format!("/w/{marker}.txt"), "content": "x"}).to_string();
        for (name, policy) in twins.policies() {
            let started = Instant::now();
            match policy.check_call("Write", &input, &context) {
                Verdict::Deny(reason) => {
                    assert!(
                        reason.starts_with(&format!("policy {name} could not check this call (")),
                        "{name} on {marker}: {reason}"
                    );
                    assert!(reason.contains(failure), "{name} on {marker}: {reason}");
                }
                other => panic!("{name} on {marker} should deny, got {other:?}"),
            }
            let limit = policy.identity().limits.timeout();
            assert!(
                started.elapsed() < limit + Duration::from_secs(5),
                "{name} on {marker} was stopped late ({:?})",
                started.elapsed()
            );
            // A fresh instance decides the next call normally.
            assert_eq!(
                seen(policy.check_call("Write", r#"{"file_path":"/w/secret/k"}"#, &context)),
                secret("/w/secret/k"),
                "{name} after {marker}"
            );
        }
    }
}

/// Each twin's decisions through the policy chain, with the policy's name left out.
fn decisions_of(checked: &agent_host::plugins::CheckedCall, name: &str) -> Vec<Decision> {
    checked
        .decisions
        .iter()
        .map(|d| {
            assert_eq!(d.policy, name);
            d.decision.clone()
        })
        .collect()
}

#[test]
fn both_twins_guard_the_same_tools_the_same_way() {
    let Some(twins) = twins() else { return };
    let workspace = tempfile::tempdir().unwrap();
    let context = context(&workspace);
    let root = context.workspace().to_path_buf();
    let at = |rel: &str| root.join(rel).display().to_string();
    std::fs::write(root.join("blocked"), "the rewritten target\n").unwrap();

    let secret_write = json!({"file_path": at("secret/key.pem"), "content": "x"}).to_string();
    let probe = json!({"path": "/etc/passwd"}).to_string();
    let bad_rewrite = json!({"file_path": at("policy-bad-rewrite.txt"), "content": "x"});
    let trap = json!({"file_path": at("policy-trap.txt"), "content": "x"}).to_string();
    for (name, set) in [(RUST, &twins.rust), (PYTHON, &twins.python)] {
        // Denied: the tool never runs, the model is told which policy and why.
        let checked = set.call("Write", &secret_write, &context);
        assert!(!checked.ran, "{name}");
        let reason = format!(
            "policy-example: writing into secret/ is not allowed ({})",
            at("secret/key.pem")
        );
        assert_eq!(
            checked.outcome,
            ToolOutcome::Error(format!("Denied by policy {name}: {reason}"))
        );
        assert_eq!(decisions_of(&checked, name), [Decision::Deny(reason)]);
        assert!(!root.join("secret").exists(), "{name}: the tool ran");

        // Allowed: the tool runs with the input as it was.
        let file = format!("{name}.txt");
        let input = json!({"file_path": at(&file), "content": name}).to_string();
        let checked = set.call("Write", &input, &context);
        assert!(
            checked.ran && !checked.outcome.is_error(),
            "{name}: {checked:?}"
        );
        assert_eq!(decisions_of(&checked, name), [Decision::Allow]);
        assert_eq!(checked.final_input.as_deref(), Some(input.as_str()));
        assert_eq!(std::fs::read_to_string(root.join(&file)).unwrap(), name);

        // Rewritten: the tool runs with the rewritten input.
        let checked = set.call("Probe", &probe, &context);
        assert!(checked.ran, "{name}: {checked:?}");
        let final_input: Value = serde_json::from_str(checked.final_input.as_deref().unwrap())
            .expect("the final input is JSON");
        assert_eq!(final_input, json!({"path": "blocked"}), "{name}");
        assert!(
            !checked.outcome.text().contains("root:"),
            "{name}: the original input ran: {}",
            checked.outcome.text()
        );

        // A rewrite the tool would refuse, and a policy that breaks: denied.
        let checked = set.call("Write", &bad_rewrite.to_string(), &context);
        assert!(!checked.ran, "{name}");
        assert!(
            checked.outcome.text().contains("does not accept"),
            "{name}: {}",
            checked.outcome.text()
        );
        let checked = set.call("Write", &trap, &context);
        assert!(!checked.ran, "{name}");
        assert!(
            checked
                .outcome
                .text()
                .starts_with(&format!("Denied by policy {name}: policy {name} could not")),
            "{name}: {}",
            checked.outcome.text()
        );
    }
    assert!(!root.join("policy-bad-rewrite.txt").exists());
    assert!(!root.join("policy-trap.txt").exists());
    // The same rewritten Probe gives the model the same result whichever twin rewrote it.
    assert_eq!(
        twins.rust.call("Probe", &probe, &context).outcome,
        twins.python.call("Probe", &probe, &context).outcome
    );
}

#[test]
fn a_python_policy_call_costs_a_fresh_instance_per_call() {
    let Some(twins) = twins() else { return };
    let workspace = tempfile::tempdir().unwrap();
    let context = context(&workspace);
    const CALLS: u32 = 20;
    let mut line = String::from("per check-call (fresh instance each):");
    for (name, policy) in twins.policies() {
        let started = Instant::now();
        for _ in 0..CALLS {
            assert_eq!(
                seen(policy.check_call("Write", r#"{"file_path":"/w/a"}"#, &context)),
                Seen::Allow
            );
        }
        let each = started.elapsed() / CALLS;
        line.push_str(&format!(" {name} {each:.2?}"));
        // Far below the limit: a Python policy is not slow enough to time out.
        assert!(
            each < policy.identity().limits.timeout() / 4,
            "{name} takes {each:?} a call"
        );
    }
    say(&line);
}
