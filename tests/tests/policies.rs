//! The policy chain: every tool call passes each policy before it runs. Denied calls never
//! reach the tool (the workspace is checked), rewrites are validated again, and a policy
//! that breaks denies.
//!
//! The policy is `plugins/testing/policy-example`, loaded beside the real built-in tools.

use std::sync::{Arc, OnceLock};

use agent_host::plugins::SessionState;
use agent_host::plugins::{CallContext, Decision, PluginSet};
use agent_host_tests::{Fixture, PluginDir, builtin_component, testing_component};
use serde_json::json;

/// `files`, `bash` and the `hostile` tools guarded by `policy-example`.
fn guarded() -> &'static Arc<PluginSet> {
    static SET: OnceLock<(PluginDir, Arc<PluginSet>)> = OnceLock::new();
    &SET.get_or_init(|| {
        let dir = PluginDir::new();
        for (name, wasm) in [
            ("files", builtin_component("files")),
            ("bash", builtin_component("bash")),
            ("hostile", testing_component("hostile")),
            ("policy-example", testing_component("policy-example")),
        ] {
            let manifest = std::fs::read_to_string(wasm.with_extension("toml")).unwrap();
            dir.add(name, &wasm, &manifest);
        }
        let set = Arc::new(dir.load().expect("the guarded set loads"));
        (dir, set)
    })
    .1
}

fn fixture() -> Fixture {
    Fixture::with_plugins(guarded().clone())
}

#[test]
fn a_denied_call_never_reaches_the_tool_and_the_model_is_told_why() {
    let fx = fixture();
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("secret/key.pem"), "content": "x"}),
    );
    assert!(
        text.starts_with("Denied by policy policy-example: "),
        "{text}"
    );
    assert!(text.contains("secret/"), "{text}");
    assert!(!fx.path("secret").exists(), "the tool ran");
    // Other calls go through.
    fx.ok(
        "Write",
        json!({"file_path": fx.p("public/a.txt"), "content": "x"}),
    );
    assert_eq!(fx.read("public/a.txt"), b"x");
}

#[test]
fn the_chain_records_each_decision() {
    let fx = fixture();
    let context = CallContext::new(fx.root().to_path_buf(), Arc::new(SessionState::in_memory()));
    let checked = guarded().call(
        "Write",
        &json!({"file_path": fx.p("secret/a"), "content": "x"}).to_string(),
        &context,
    );
    assert!(!checked.ran);
    assert_eq!(checked.decisions.len(), 1);
    assert_eq!(checked.decisions[0].policy, "policy-example");
    assert!(matches!(checked.decisions[0].decision, Decision::Deny(_)));
    let allowed = guarded().call("Glob", r#"{"pattern":"*"}"#, &context);
    assert!(
        !allowed.ran,
        "Glob is not in this set: an unknown tool is refused first"
    );
    assert!(
        allowed.decisions.is_empty(),
        "policies never see invalid calls"
    );
    let read = guarded().call(
        "Write",
        &json!({"file_path": fx.p("b"), "content": "y"}).to_string(),
        &context,
    );
    assert!(read.ran);
    assert_eq!(read.decisions[0].decision, Decision::Allow);
}

#[test]
fn a_rewrite_changes_what_the_tool_runs_with() {
    let fx = fixture();
    fx.write("blocked", "the rewritten target\n");
    let context = CallContext::new(fx.root().to_path_buf(), Arc::new(SessionState::in_memory()));
    let checked = guarded().call("Probe", r#"{"path":"/etc/passwd"}"#, &context);
    assert!(checked.ran);
    assert_eq!(
        checked.final_input.as_deref(),
        Some(r#"{"path":"blocked"}"#)
    );
    assert!(
        matches!(&checked.decisions[0].decision, Decision::Rewrite(input) if input.contains("blocked"))
    );
    assert!(
        !checked.outcome.text().contains("root:"),
        "the original input ran: {}",
        checked.outcome.text()
    );
}

#[test]
fn a_rewrite_the_tool_would_refuse_is_a_denial() {
    let fx = fixture();
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("policy-bad-rewrite.txt"), "content": "x"}),
    );
    assert!(text.contains("Denied by policy policy-example"), "{text}");
    assert!(text.contains("does not accept"), "{text}");
    assert!(!fx.path("policy-bad-rewrite.txt").exists());
}

#[test]
fn a_broken_policy_denies_and_the_host_carries_on() {
    let fx = fixture();
    for marker in ["policy-trap", "policy-loop", "policy-memory"] {
        let file = format!("{marker}.txt");
        let text = fx.err("Write", json!({"file_path": fx.p(&file), "content": "x"}));
        assert!(
            text.starts_with(
                "Denied by policy policy-example: policy policy-example could not check this call"
            ),
            "{marker}: {text}"
        );
        assert!(!fx.path(&file).exists(), "{marker}: the tool ran");
    }
    // The next call is decided normally.
    fx.ok(
        "Write",
        json!({"file_path": fx.p("after.txt"), "content": "x"}),
    );
}

#[test]
fn bash_commands_pass_the_policies_with_the_exact_command() {
    let fx = fixture();
    let text = fx.err(
        "Bash",
        json!({"command": "touch ran.txt; echo policy-trap"}),
    );
    assert!(text.contains("Denied by policy policy-example"), "{text}");
    assert!(!fx.path("ran.txt").exists(), "the command ran");
    assert_eq!(
        fx.ok("Bash", json!({"command": "touch ran.txt && echo ok"})),
        "ok"
    );
}

/// Adds `policy-example` to `dir` with `tools` (a TOML list) as its `[policy] tools`.
fn add_example_judging(dir: &PluginDir, tools: &str) {
    let policy = testing_component("policy-example");
    let manifest = std::fs::read_to_string(policy.with_extension("toml")).unwrap();
    dir.add(
        "policy-example",
        &policy,
        &format!("{manifest}\n[policy]\ntools = {tools}\n"),
    );
}

#[test]
fn a_policy_that_names_its_tools_judges_only_their_calls() {
    let dir = PluginDir::new();
    dir.add_builtin("files");
    dir.add_builtin("bash");
    add_example_judging(&dir, r#"["Write"]"#);
    let set = dir.load().expect("the scoped set loads");
    assert_eq!(set.policies()[0].scope().to_string(), "calls of Write");
    assert!(set.judged_tools_not_offered().is_empty());
    let fx = Fixture::with_plugins(Arc::new(set));
    let set = fx.plugins();
    let context = CallContext::new(fx.root().to_path_buf(), Arc::new(SessionState::in_memory()));

    // A tool it names: judged, and a broken check still denies.
    let write = json!({"file_path": fx.p("secret/a"), "content": "x"}).to_string();
    let checked = set.call("Write", &write, &context);
    assert_eq!(checked.denied_by(), Some("policy-example"));
    let text = fx.err(
        "Write",
        json!({"file_path": fx.p("policy-trap"), "content": "x"}),
    );
    assert!(text.contains("could not check this call"), "{text}");
    assert!(!fx.path("secret").exists() && !fx.path("policy-trap").exists());

    // Any other tool: not consulted at all. This input would make it trap, so the call
    // running shows no instance of it ran.
    let bash = json!({"command": "echo policy-trap > ran.txt"}).to_string();
    let checked = set.call("Bash", &bash, &context);
    assert!(checked.ran, "{}", checked.outcome.text());
    assert!(checked.decisions.is_empty(), "{:?}", checked.decisions);
    assert_eq!(fx.read("ran.txt"), b"policy-trap\n");

    // Prepared calls make instances only for the policies that will judge them.
    let prepared = set.prepare("Bash", &context);
    assert_eq!(prepared.instances(), 1, "the tool's only");
    let checked = set.call_prepared(prepared, &bash);
    assert!(checked.ran && checked.decisions.is_empty());
    assert_eq!(checked.made_ahead, 1);
    let prepared = set.prepare("Write", &context);
    assert_eq!(prepared.instances(), 2);
    let checked = set.call_prepared(prepared, &write);
    assert_eq!(checked.denied_by(), Some("policy-example"));
    assert_eq!(checked.made_ahead, 1, "the tool's instance was never used");

    // Its scope is about calls: it still checks every turn's changes.
    let changed = vec![fx.p("ran.bad")];
    assert!(set.policies()[0].check_changes(&changed, &context).is_err());
}

#[test]
fn a_misspelt_tool_in_a_policy_scope_is_reported_at_load() {
    let dir = PluginDir::new();
    dir.add_builtin("files");
    add_example_judging(&dir, r#"["Write", "Wirte"]"#);
    let set = dir
        .load()
        .expect("a scope naming an unknown tool still loads");
    // A misspelt name leaves the calls it meant unjudged: the load names it (and warns of
    // it in the log) so the operator can see that.
    assert_eq!(
        set.judged_tools_not_offered(),
        vec![("policy-example", "Wirte")]
    );
}
