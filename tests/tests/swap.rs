//! Swapping plugins while the host runs (`LivePlugins`): a changed directory is loaded
//! whole and swapped in at once; a directory that does not load is refused and the old
//! set stays; calls made during swaps each see one complete set.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, LivePlugins};
use agent_host_tests::{PluginDir, builtin_component, runtime, testing_component};
use serde_json::json;

fn add(dir: &PluginDir, name: &str, wasm: &Path) {
    let manifest = std::fs::read_to_string(wasm.with_extension("toml")).unwrap();
    dir.add(name, wasm, &manifest);
}

fn remove(dir: &PluginDir, name: &str) {
    for ext in ["wasm", "toml"] {
        std::fs::remove_file(dir.path().join(format!("{name}.{ext}"))).unwrap();
    }
}

fn tool_names(live: &LivePlugins) -> Vec<String> {
    live.current()
        .tools()
        .specs()
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn tools_and_policies_are_added_replaced_and_removed_without_a_restart() {
    let dir = PluginDir::new();
    add(&dir, "files", &builtin_component("files"));
    let live = LivePlugins::load(runtime().clone(), dir.path(), Default::default(), None).unwrap();
    assert_eq!(tool_names(&live), ["Read", "Write", "Edit"]);
    assert!(!live.reload_if_changed().unwrap(), "nothing changed");

    add(&dir, "search", &builtin_component("search"));
    assert!(live.reload_if_changed().unwrap());
    assert_eq!(tool_names(&live), ["Read", "Write", "Edit", "Glob", "Grep"]);
    assert_eq!(live.generation(), 1);

    add(&dir, "policy-example", &testing_component("policy-example"));
    assert!(live.reload_if_changed().unwrap());
    assert_eq!(live.current().policies().len(), 1);

    remove(&dir, "search");
    remove(&dir, "policy-example");
    assert!(live.reload_if_changed().unwrap());
    assert_eq!(tool_names(&live), ["Read", "Write", "Edit"]);
    assert!(live.current().policies().is_empty());
    assert_eq!(live.generation(), 3);
}

#[test]
fn a_corrupt_replacement_is_refused_and_the_old_set_keeps_working() {
    let dir = PluginDir::new();
    add(&dir, "files", &builtin_component("files"));
    add(&dir, "policy-example", &testing_component("policy-example"));
    let live = LivePlugins::load(runtime().clone(), dir.path(), Default::default(), None).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().canonicalize().unwrap();
    let context = CallContext::new(root.clone(), Arc::new(SessionState::in_memory()));
    let secret = json!({"file_path": root.join("secret/k").display().to_string(), "content": "x"})
        .to_string();

    // A truncated copy of the policy (as if the copy were still in progress).
    let wasm = dir.path().join("policy-example.wasm");
    let bytes = std::fs::read(&wasm).unwrap();
    std::fs::write(&wasm, &bytes[..bytes.len() / 2]).unwrap();
    let error = live.reload_if_changed().unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("policy-example"), "{message}");
    assert_eq!(live.generation(), 0, "nothing was swapped");
    // The old policy still decides.
    let checked = live.current().call("Write", &secret, &context);
    assert!(
        !checked.ran,
        "the old policy is gone: {:?}",
        checked.outcome
    );
    // A refused directory is reported once, not on every poll.
    assert!(!live.reload_if_changed().unwrap());

    // Once the copy is complete, the new set is loaded.
    std::fs::write(&wasm, &bytes).unwrap();
    assert!(live.reload_if_changed().unwrap());
    assert!(!live.current().call("Write", &secret, &context).ran);
}

/// How many calls the caller thread has finished, for the test to wait on.
#[derive(Default)]
struct Calls {
    finished: Mutex<u64>,
    changed: Condvar,
}

impl Calls {
    fn finished(&self) {
        *self.finished.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    /// Waits (bounded) until `more` calls beyond those finished now have finished; false
    /// if they did not.
    fn wait_for_more(&self, more: u64) -> bool {
        let finished = self.finished.lock().unwrap();
        let target = *finished + more;
        let limit = std::time::Duration::from_secs(30);
        let (finished, _) = self
            .changed
            .wait_timeout_while(finished, limit, |finished| *finished < target)
            .unwrap();
        *finished >= target
    }
}

#[test]
fn calls_during_swaps_each_see_one_whole_set() {
    let dir = PluginDir::new();
    add(&dir, "files", &builtin_component("files"));
    let live = Arc::new(
        LivePlugins::load(runtime().clone(), dir.path(), Default::default(), None).unwrap(),
    );
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path().canonicalize().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Calls::default());
    let caller = {
        let (live, stop, root, calls) = (live.clone(), stop.clone(), root.clone(), calls.clone());
        std::thread::spawn(move || {
            let context = CallContext::new(root.clone(), Arc::new(SessionState::in_memory()));
            let (mut with_policy, mut without) = (0, 0);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let set = live.current();
                let input = json!({
                    "file_path": root.join(format!("secret/{n}")).display().to_string(),
                    "content": "x"
                })
                .to_string();
                let checked = set.call("Write", &input, &context);
                // Whole sets only: the policy either is there (and denies) or is not
                // (and the write runs); never a missing tool or a half-made chain.
                if set.policies().is_empty() {
                    assert!(checked.ran && !checked.outcome.is_error(), "{checked:?}");
                    without += 1;
                } else {
                    assert!(!checked.ran && checked.decisions.len() == 1, "{checked:?}");
                    with_policy += 1;
                }
                calls.finished();
            }
            (with_policy, without)
        })
    };
    for round in 0..6 {
        if round % 2 == 0 {
            add(&dir, "policy-example", &testing_component("policy-example"));
        } else {
            remove(&dir, "policy-example");
        }
        live.reload().unwrap();
        // The call under way may have taken the old set; the one after it takes this one.
        if !calls.wait_for_more(2) {
            stop.store(true, Ordering::Relaxed);
            caller.join().unwrap();
            panic!("the caller stopped calling");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (with_policy, without) = caller.join().unwrap();
    assert!(with_policy > 0 && without > 0, "{with_policy} / {without}");
    assert_eq!(live.generation(), 6);
}

#[test]
fn the_directory_watcher_swaps_in_a_changed_directory_by_itself() {
    let dir = PluginDir::new();
    add(&dir, "files", &builtin_component("files"));
    let live = Arc::new(
        LivePlugins::load(runtime().clone(), dir.path(), Default::default(), None).unwrap(),
    );
    let watcher = live.watch(std::time::Duration::from_millis(20));
    add(&dir, "search", &builtin_component("search"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while live.generation() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never reloaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(tool_names(&live).contains(&"Grep".to_string()));
    drop(watcher);
}
