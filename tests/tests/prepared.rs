//! Calls prepared while the model writes them (`PluginSet::prepare` / `call_prepared`):
//! they decide and run exactly as unprepared calls, on instances made for them alone;
//! their deadline starts at the call; the instances held ahead never pass the cap, and a
//! preparation that is not used gives its instances back.
//!
//! Each test has a runtime of its own, so the count of held instances is its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_host::plugins::{MAX_HELD_AHEAD, PluginRuntime, PluginSet, ToolOutcome};
use agent_host_tests::{Fixture, PluginDir, builtin_component, test_cache_dir, testing_component};
use serde_json::json;

/// A set of the named components, each with its shipped manifest edited by `edit`, on a
/// runtime of its own.
fn own_set(
    components: &[(&str, std::path::PathBuf)],
    edit: impl Fn(&str) -> String,
) -> (PluginDir, Arc<PluginRuntime>, PluginSet) {
    let dir = PluginDir::new();
    for (name, wasm) in components {
        let manifest = std::fs::read_to_string(wasm.with_extension("toml")).unwrap();
        dir.add(name, wasm, &edit(&manifest));
    }
    let runtime =
        Arc::new(PluginRuntime::new(Some(test_cache_dir())).expect("plugin runtime starts"));
    let set = PluginSet::load_dir(&runtime, dir.path(), &Default::default()).unwrap();
    (dir, runtime, set)
}

/// `files` guarded by `policy-example` (which denies writes under `secret/`).
fn guarded() -> (PluginDir, Arc<PluginRuntime>, PluginSet) {
    own_set(
        &[
            ("files", builtin_component("files")),
            ("policy-example", testing_component("policy-example")),
        ],
        str::to_string,
    )
}

#[test]
fn a_prepared_call_runs_on_its_instances_and_decides_as_an_unprepared_one() {
    let (_dir, runtime, set) = guarded();
    let fx = Fixture::new();
    let context = fx.context();
    let write = |path: &str| json!({"file_path": fx.p(path), "content": "x"}).to_string();

    let prepared = set.prepare("Write", &context);
    assert_eq!(prepared.instances(), 2, "the policy's and the tool's");
    assert_eq!(runtime.held_ahead(), 2);
    let checked = set.call_prepared(prepared, &write("public/a.txt"));
    assert_eq!(checked.made_ahead, 2);
    assert!(
        checked.ran && !checked.outcome.is_error(),
        "{:?}",
        checked.outcome
    );
    assert_eq!(fx.read("public/a.txt"), b"x");
    assert_eq!(runtime.held_ahead(), 0, "used instances are given back");

    // A deny: the tool's instance, made for nothing, is given back and the tool never ran.
    let prepared = set.prepare("Write", &context);
    let checked = set.call_prepared(prepared, &write("secret/key.pem"));
    let unprepared = set.call("Write", &write("secret/key.pem"), &context);
    assert!(!checked.ran && checked.denied_by() == Some("policy-example"));
    assert_eq!(checked.outcome, unprepared.outcome);
    assert_eq!(checked.decisions, unprepared.decisions);
    assert_eq!(checked.made_ahead, 1, "only the policy ran");
    assert!(!fx.path("secret").exists(), "the tool ran");
    assert_eq!(runtime.held_ahead(), 0);

    // Input the tool refuses never reaches a plugin, prepared or not.
    let prepared = set.prepare("Write", &context);
    let checked = set.call_prepared(prepared, r#"{"file_path": 3}"#);
    assert!(!checked.ran && checked.decisions.is_empty() && checked.outcome.is_error());
    assert_eq!(runtime.held_ahead(), 0);

    // Nothing is made for a tool the set does not have; the call is refused as always.
    let prepared = set.prepare("Bash", &context);
    assert_eq!(prepared.instances(), 0);
    let checked = set.call_prepared(prepared, r#"{"command": "true"}"#);
    assert!(
        checked
            .outcome
            .text()
            .contains("No such tool available: Bash")
    );
}

#[test]
fn a_prepared_calls_deadline_starts_when_the_call_does() {
    // `files` with a 200 ms limit, prepared 500 ms before its call: had the deadline
    // started at the preparation, the call would be stopped at its first instruction.
    let (_dir, _runtime, set) = own_set(&[("files", builtin_component("files"))], |manifest| {
        manifest.replace("timeout_ms = 30000", "timeout_ms = 200")
    });
    let fx = Fixture::new();
    fx.write("a.txt", "hello\n");
    let prepared = set.prepare("Read", &fx.context());
    std::thread::sleep(Duration::from_millis(500));
    let checked = set.call_prepared(prepared, &json!({"file_path": fx.p("a.txt")}).to_string());
    assert_eq!(checked.made_ahead, 1);
    assert!(
        checked.outcome.text().contains("hello") && !checked.outcome.is_error(),
        "{:?}",
        checked.outcome
    );
}

#[test]
fn limits_and_cancellation_hold_on_prepared_instances() {
    let (_dir, runtime, set) =
        own_set(&[("hostile", testing_component("hostile"))], str::to_string);
    let fx = Fixture::new();

    let prepared = set.prepare("Spin", &fx.context());
    let checked = set.call_prepared(prepared, "{}");
    assert_eq!(checked.made_ahead, 1);
    assert!(
        checked
            .outcome
            .text()
            .contains("plugin hostile ran out of time"),
        "{:?}",
        checked.outcome
    );

    let flag = Arc::new(AtomicBool::new(false));
    let prepared = set.prepare("Spin", &fx.context().with_cancel(flag.clone()));
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    let outcome = set.call_prepared(prepared, "{}").outcome;
    setter.join().unwrap();
    match outcome {
        ToolOutcome::Error(text) => assert!(text.contains("was cancelled"), "{text}"),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert_eq!(runtime.held_ahead(), 0);
}

#[test]
fn at_most_the_cap_is_held_ahead_and_every_call_still_runs() {
    let (_dir, runtime, set) = own_set(&[("files", builtin_component("files"))], str::to_string);
    let fx = Fixture::new();
    fx.write("a.txt", "hello\n");
    let calls = MAX_HELD_AHEAD + 4;
    let prepared: Vec<_> = (0..calls)
        .map(|_| set.prepare("Read", &fx.context()))
        .collect();
    assert_eq!(runtime.held_ahead(), MAX_HELD_AHEAD);
    let made: usize = prepared.iter().map(|p| p.instances()).sum();
    assert_eq!(made, MAX_HELD_AHEAD, "past the cap nothing is made ahead");
    let input = json!({"file_path": fx.p("a.txt")}).to_string();
    let mut ahead = 0;
    for prepared in prepared {
        let checked = set.call_prepared(prepared, &input);
        assert!(
            checked.outcome.text().contains("hello"),
            "{:?}",
            checked.outcome
        );
        ahead += checked.made_ahead;
    }
    assert_eq!(ahead, MAX_HELD_AHEAD);
    assert_eq!(runtime.held_ahead(), 0);

    // Preparations never used (a turn that failed) give their instances back.
    let unused: Vec<_> = (0..3).map(|_| set.prepare("Read", &fx.context())).collect();
    assert_eq!(runtime.held_ahead(), 3);
    drop(unused);
    assert_eq!(runtime.held_ahead(), 0);
}

#[test]
fn instances_another_set_made_are_not_used() {
    // The set in force was swapped between the preparation and the call: the call runs
    // on the new set's plugins, with instances it makes itself.
    let (_dir, runtime, old) = guarded();
    let (_dir2, _, new) = guarded();
    let fx = Fixture::new();
    let prepared = old.prepare("Write", &fx.context());
    assert_eq!(runtime.held_ahead(), 2);
    let checked = new.call_prepared(
        prepared,
        &json!({"file_path": fx.p("a.txt"), "content": "x"}).to_string(),
    );
    assert_eq!(checked.made_ahead, 0);
    assert!(
        checked.ran && !checked.outcome.is_error(),
        "{:?}",
        checked.outcome
    );
    assert_eq!(runtime.held_ahead(), 0);
}
