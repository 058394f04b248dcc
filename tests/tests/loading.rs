//! Loading plugins: bad components and manifests are refused at load with an error that
//! names the plugin, the file and the problem; good ones load, policies decide, and the
//! precompiled cache is used on the second start.

use std::path::Path;
use std::sync::Arc;

use agent_host::plugins::SessionState;
use agent_host::plugins::{
    CacheUse, CallContext, PluginGrant, PluginRuntime, PluginSet, PluginSettings, Verdict,
    WorkspaceAccess, load::loader,
};
use agent_host_tests::{PluginDir, builtin_component, runtime, testing_component, testing_plugins};

const HOSTILE: &str = "name = \"hostile\"\nworld = \"tool-plugin\"\n[capabilities]\nworkspace = \"read-write\"\nsession_state = true\n";

#[track_caller]
fn refused(dir: &PluginDir, expected: &[&str]) -> String {
    let error = match dir.load() {
        Ok(_) => panic!("the plugin directory should have been refused"),
        Err(error) => format!("{error:#}"),
    };
    for part in expected {
        assert!(error.contains(part), "expected {part:?} in:\n{error}");
    }
    error
}

#[test]
fn a_component_of_the_other_world_is_refused() {
    let dir = PluginDir::new();
    let wasm = dir.add(
        "sneaky",
        &testing_component("policy-example"),
        "name = \"sneaky\"\nworld = \"tool-plugin\"",
    );
    refused(
        &dir,
        &[
            "plugin sneaky",
            &wasm.display().to_string(),
            "its manifest says world = \"tool-plugin\" but the component implements policy-plugin",
        ],
    );
}

#[test]
fn a_corrupt_component_is_refused() {
    let dir = PluginDir::new();
    let wasm = dir.add(
        "broken",
        &testing_component("hostile"),
        &HOSTILE.replace("hostile", "broken"),
    );
    // Keep the header, cut the body: a truncated download.
    let bytes = std::fs::read(&wasm).unwrap();
    std::fs::write(&wasm, &bytes[..bytes.len() / 3]).unwrap();
    refused(
        &dir,
        &[
            "plugin broken",
            &wasm.display().to_string(),
            "does not compile",
        ],
    );

    std::fs::write(&wasm, b"this is not wasm at all").unwrap();
    refused(&dir, &["plugin broken", "not WebAssembly"]);

    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    refused(
        &dir,
        &["core wasm module, not a component", "wasm32-wasip2"],
    );
}

#[test]
fn a_missing_manifest_or_file_is_refused() {
    let dir = PluginDir::new();
    let wasm = dir.add("lonely", &testing_component("hostile"), "");
    std::fs::remove_file(dir.path().join("lonely.toml")).unwrap();
    refused(
        &dir,
        &[
            "cannot read manifest",
            &dir.path().join("lonely.toml").display().to_string(),
        ],
    );

    let error = agent_host::plugins::load_plugin(
        runtime(),
        &dir.path().join("ghost.wasm"),
        &Default::default(),
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap();
    assert!(error.contains("ghost.toml"), "{error}");
    drop(wasm);

    let missing = PluginSet::load_dir(
        runtime(),
        Path::new("/nonexistent/plugins"),
        &Default::default(),
    );
    let error = format!("{:#}", missing.err().unwrap());
    assert!(
        error.contains("/nonexistent/plugins") && error.contains("plugins_dir"),
        "{error}"
    );
}

#[test]
fn an_invalid_manifest_is_refused() {
    let dir = PluginDir::new();
    dir.add(
        "odd",
        &testing_component("hostile"),
        "name = \"odd\"\nworld = \"tool-plugin\"\n[limits]\nmemory_mb = 999999",
    );
    refused(&dir, &["odd.toml", "limits.memory_mb = 999999"]);
}

#[test]
fn an_ungranted_capability_is_refused() {
    // The manifest asks for exec; the operator's default grants never include it.
    let dir = PluginDir::new();
    dir.add(
        "hostile",
        &testing_component("hostile"),
        &format!("{HOSTILE}exec = true"),
    );
    refused(
        &dir,
        &[
            "plugin hostile",
            "asks for exec",
            "exec = true",
            "[plugins.hostile]",
        ],
    );

    // The operator caps the workspace at read-only; the manifest asks for read-write.
    let dir = PluginDir::new();
    dir.add("hostile", &testing_component("hostile"), HOSTILE);
    let mut settings = PluginSettings::default();
    settings.by_name.insert(
        "hostile".into(),
        PluginGrant {
            workspace: WorkspaceAccess::ReadOnly,
            ..Default::default()
        },
    );
    let error = format!(
        "{:#}",
        PluginSet::load_dir(runtime(), dir.path(), &settings)
            .err()
            .unwrap()
    );
    assert!(
        error.contains("workspace = \"read-write\" (granted: \"read-only\")"),
        "{error}"
    );

    // Disabled plugins are not loaded at all.
    settings.by_name.insert(
        "hostile".into(),
        PluginGrant {
            enabled: false,
            ..Default::default()
        },
    );
    let set = PluginSet::load_dir(runtime(), dir.path(), &settings).unwrap();
    assert!(set.tools().specs().is_empty());
}

#[test]
fn importing_what_the_manifest_does_not_ask_for_is_refused() {
    // The hostile component imports session-state; this manifest does not ask for it.
    let dir = PluginDir::new();
    dir.add(
        "hostile",
        &testing_component("hostile"),
        "name = \"hostile\"\nworld = \"tool-plugin\"\n[capabilities]\nworkspace = \"read-write\"",
    );
    refused(
        &dir,
        &[
            "plugin hostile",
            "imports agent:plugin/session-state@0.1.0",
            "session_state = true",
        ],
    );
}

#[test]
fn two_plugins_offering_one_tool_name_are_refused() {
    let dir = PluginDir::new();
    dir.add("hostile", &testing_component("hostile"), HOSTILE);
    dir.add(
        "twin",
        &testing_component("hostile"),
        &HOSTILE.replace("\"hostile\"", "\"twin\""),
    );
    refused(
        &dir,
        &[
            "plugin twin",
            "offers tool",
            "which plugin hostile already offers",
        ],
    );
}

#[test]
fn a_policy_plugin_loads_and_decides() {
    let set = testing_plugins();
    let policy = set
        .policies()
        .iter()
        .find(|p| p.identity().name == "policy-example")
        .unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let context = CallContext::new(
        workspace.path().canonicalize().unwrap(),
        Arc::new(SessionState::in_memory()),
    );
    match policy.check_call(
        "Write",
        r#"{"file_path":"/w/secret/key","content":"x"}"#,
        &context,
    ) {
        Verdict::Deny(reason) => assert!(reason.contains("secret/"), "{reason}"),
        other => panic!("expected a denial, got {other:?}"),
    }
    match policy.check_call("Probe", r#"{"path":"/etc/passwd"}"#, &context) {
        Verdict::Rewrite(input) => assert_eq!(input, r#"{"path":"blocked"}"#),
        other => panic!("expected a rewrite, got {other:?}"),
    }
    assert!(matches!(
        policy.check_call("Read", "{}", &context),
        Verdict::Allow
    ));
    let error = policy
        .check_changes(&["/w/a.rs".into(), "/w/b.bad".into()], &context)
        .unwrap_err();
    assert!(error.contains("b.bad"), "{error}");
    assert!(policy.check_changes(&["/w/a.rs".into()], &context).is_ok());
    assert_eq!(
        policy.guidance(&context),
        "Never write files under a secret/ directory."
    );
}

#[test]
fn components_are_compiled_once_and_then_loaded_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = builtin_component("files");
    let first = PluginRuntime::new(Some(cache.path().to_path_buf())).unwrap();
    assert_eq!(
        loader::compile_file(&first, &wasm).unwrap().1,
        CacheUse::Compiled
    );
    assert_eq!(
        loader::compile_file(&first, &wasm).unwrap().1,
        CacheUse::Hit
    );
    drop(first);

    // A new process (a new engine) finds the artifact.
    let second = Arc::new(PluginRuntime::new(Some(cache.path().to_path_buf())).unwrap());
    assert_eq!(
        loader::compile_file(&second, &wasm).unwrap().1,
        CacheUse::Hit
    );

    // A damaged artifact is compiled again, not trusted.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(
        loader::compile_file(&second, &wasm).unwrap().1,
        CacheUse::Compiled
    );
    assert_eq!(
        loader::compile_file(&second, &wasm).unwrap().1,
        CacheUse::Hit
    );
}
