//! The agent end to end: the real server over HTTP, the real plugin components, the real
//! Bedrock client (aws-sdk-bedrockruntime) pointed at the scripted fake on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::agent::JobRunner;
use agent_host::agent::{Agent, AgentSettings};
use agent_host::model::image::model_tokens;
use agent_host::model::{BedrockModel, ImageRef, ModelSettings, fit_for_model};
use agent_host::plugins::AuditLog;
use agent_host::plugins::LivePlugins;
use agent_host::plugins::PluginRuntime;
use agent_host::server::{AppState, ServerSettings};
use agent_host::session::Users;
use agent_host::session::history::{FileHistory, HistoryStore};
use agent_host::session::workspace_dir_name;
use agent_host_tests::fake_bedrock::{FakeBedrock, Recorded, SentImage, Step, Turn, Usage};
use agent_host_tests::{
    Gate, PluginDir, builtin_component, builtin_plugins, runtime, test_cache_dir, testing_component,
};
use reqwest::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Value, json};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const USER: &str = "4242";

/// The production client pointed at `fake`.
fn model(fake: &FakeBedrock, streaming: bool) -> BedrockModel {
    agent_host_tests::bedrock_model(fake, MODEL, streaming)
}

struct Host {
    base: String,
    root: std::path::PathBuf,
}

impl Host {
    /// A host whose state (history, plugin state, workspaces) lives under `root`.
    async fn start(fake: &FakeBedrock, root: &Path) -> Self {
        let plugins = Arc::new(LivePlugins::fixed(builtin_plugins().clone()));
        Self::start_with(fake, root, plugins, AgentSettings::new(root.join("state"))).await
    }

    /// A host with its own plugins and agent settings.
    async fn start_with(
        fake: &FakeBedrock,
        root: &Path,
        plugins: Arc<LivePlugins>,
        settings: AgentSettings,
    ) -> Self {
        let root = root.to_path_buf();
        let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.join("history")));
        let agent = Agent::new(plugins, model(fake, true), history, settings).unwrap();
        let runner: Arc<dyn JobRunner> = Arc::new(agent);
        let users = Arc::new(Users::new(root.join("workspaces"), [USER.to_string()]));
        let state = AppState::new(users, runner, ServerSettings::default());
        let base = agent_host_tests::serve_locally(state).await;
        Self { base, root }
    }

    fn workspace(&self) -> std::path::PathBuf {
        self.root.join("workspaces").join(USER)
    }

    async fn ask(&self, prompt: &str) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/invocations", self.base))
            .body(json!({"prompt": prompt, "user_id": USER, "mode": "sync"}).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn ping(&self) -> String {
        let body: Value = reqwest::get(format!("{}/ping", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["status"].as_str().unwrap().to_string()
    }
}

fn usage() -> Usage {
    Usage {
        input: 100,
        output: 20,
        cache_read: 50,
        cache_write: 10,
    }
}

/// A small git repository with a bug in `add`.
fn seed(workspace: &Path) {
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(
        workspace.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
    )
    .unwrap();
    std::fs::write(
        workspace.join("src/main.rs"),
        "fn main() {\n    println!(\"{}\", demo::add(2, 3));\n}\n",
    )
    .unwrap();
    std::fs::write(workspace.join("README.md"), "# demo\n\nAdds numbers.\n").unwrap();
    // The repository's tests, runnable without a toolchain.
    std::fs::write(
        workspace.join("tests.sh"),
        "if grep -q 'a + b' src/lib.rs; then echo '1 passed'; \
         else echo 'FAILED: add(2, 3) != 5' >&2; exit 1; fi\n",
    )
    .unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=seed",
            "-c",
            "user.email=seed@example.com",
            "commit",
            "-qm",
            "seed",
        ],
    ] {
        let git = std::process::Command::new("git")
            .args(args)
            .current_dir(workspace)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git {args:?}");
    }
}

/// Every `toolUse` of an assistant message is answered once, by id, in the next message.
fn assert_tool_pairs(messages: &[Value]) {
    for (index, message) in messages.iter().enumerate() {
        if message["role"] != "assistant" {
            continue;
        }
        let uses: Vec<&str> = message["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["toolUse"]["toolUseId"].as_str())
            .collect();
        if uses.is_empty() {
            continue;
        }
        let next = &messages[index + 1];
        assert_eq!(next["role"], "user");
        let mut results: Vec<&str> = next["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["toolResult"]["toolUseId"].as_str())
            .collect();
        results.sort();
        let mut expected = uses.clone();
        expected.sort();
        assert_eq!(
            results, expected,
            "message {index}'s tool uses are answered exactly once"
        );
    }
}

fn is_cache_point(block: &Value) -> bool {
    block.get("cachePoint").is_some()
}

#[tokio::test]
async fn a_scripted_coding_task_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspaces").join(USER);
    seed(&workspace);
    let ws = workspace.canonicalize().unwrap().display().to_string();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("t1", "Glob", json!({"pattern": "**/*.rs"})).with_usage(usage())),
        Step::Reply(Turn::tool_use("t2", "Read", json!({"file_path": format!("{ws}/src/lib.rs")})).with_usage(usage())),
        Step::Reply(
            Turn::tool_use("t3", "Grep", json!({"pattern": "add\\(", "output_mode": "content"})).with_usage(usage()),
        ),
        Step::Reply(Turn::tool_use("t4", "Read", json!({"file_path": format!("{ws}/src/main.rs")})).with_usage(usage())),
        Step::Reply(Turn::tool_use("b1", "Bash", json!({"command": "sh tests.sh"})).with_usage(usage())),
        Step::Reply(
            Turn::tool_use(
                "t5",
                "Edit",
                json!({"file_path": format!("{ws}/src/lib.rs"), "old_string": "a - b", "new_string": "a + b"}),
            )
            .with_usage(usage()),
        ),
        Step::Reply(
            Turn::tool_uses(vec![
                ("t6", "Write", json!({"file_path": format!("{ws}/CHANGELOG.md"), "content": "- fix add()\n"})),
                ("t7", "Read", json!({"file_path": format!("{ws}/nope.txt")})),
            ])
            .with_usage(usage()),
        ),
        Step::Reply(Turn::tool_use("b2", "Bash", json!({"command": "git diff --stat"})).with_usage(usage())),
        Step::Reply(Turn::tool_use("b3", "Bash", json!({"command": "sh tests.sh"})).with_usage(usage())),
        Step::Reply(Turn::tool_use("t8", "Read", json!({"file_path": format!("{ws}/src/lib.rs")})).with_usage(usage())),
        Step::Reply(Turn::text("Fixed `add`: it subtracted. Added a CHANGELOG entry.").with_usage(usage())),
    ])
    .await;
    let host = Host::start(&fake, root.path()).await;
    let started = Instant::now();
    let (status, body) = host.ask("add() returns wrong results, fix it").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["answer"],
        "Fixed `add`: it subtracted. Added a CHANGELOG entry."
    );
    assert_eq!(body["usage"]["input_tokens"], 1100);
    assert_eq!(body["usage"]["output_tokens"], 220);
    assert_eq!(body["usage"]["cache_read_tokens"], 550);
    assert_eq!(body["usage"]["cache_write_tokens"], 110);
    assert_eq!(host.ping().await, "Healthy");
    assert!(started.elapsed() < Duration::from_secs(60));

    // The workspace ends exactly as expected.
    let ws_path = host.workspace();
    assert_eq!(
        std::fs::read_to_string(ws_path.join("src/lib.rs")).unwrap(),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws_path.join("CHANGELOG.md")).unwrap(),
        "- fix add()\n"
    );
    assert!(
        std::fs::read_to_string(ws_path.join("src/main.rs"))
            .unwrap()
            .contains("demo::add(2, 3)")
    );
    assert!(!ws_path.join("nope.txt").exists());

    // Every request the fake saw is valid and cache-friendly.
    let requests: Vec<Recorded> = fake.requests();
    assert_eq!(requests.len(), 11);
    let first = &requests[0].body;
    let tools = first["toolConfig"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["toolSpec"]["name"].as_str())
        .collect();
    for tool in ["Read", "Write", "Edit", "Glob", "Grep", "Bash"] {
        assert!(names.contains(&tool), "{tool} offered: {names:?}");
    }
    assert!(
        is_cache_point(tools.last().unwrap()),
        "cache point after the tool specs"
    );
    let system = first["system"].as_array().unwrap();
    assert!(system[0]["text"].as_str().unwrap().contains(&ws));
    assert!(
        is_cache_point(system.last().unwrap()),
        "cache point after the system prompt"
    );
    for (index, request) in requests.iter().enumerate() {
        assert_eq!(request.model_id, MODEL);
        let body = &request.body;
        assert_eq!(
            body["system"], first["system"],
            "request {index}: the system prompt never changes"
        );
        assert_eq!(
            body["toolConfig"], first["toolConfig"],
            "request {index}: the tool specs never change"
        );
        let messages = body["messages"].as_array().unwrap();
        let last = messages.last().unwrap()["content"].as_array().unwrap();
        assert!(
            is_cache_point(last.last().unwrap()),
            "request {index}: cache point at the end"
        );
        assert_tool_pairs(messages);
        if index > 0 {
            // The conversation only grows: the previous request's messages are a prefix.
            let previous = requests[index - 1].body["messages"].as_array().unwrap();
            for (m, (old, new)) in previous.iter().zip(messages).enumerate() {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    v["content"]
                        .as_array_mut()
                        .unwrap()
                        .retain(|b| !is_cache_point(b));
                    v
                };
                assert_eq!(
                    strip(old),
                    strip(new),
                    "request {index}, message {m} changed"
                );
            }
        }
    }
    // Byte for byte: the system prompt and the tool specs are the same bytes in every
    // request, and so is every earlier message (the last one only gains the moving cache
    // point). A map serialised in a different order would break prompt caching.
    let raw = |request: &Recorded| -> (String, String, Vec<String>) {
        let top: std::collections::HashMap<String, Box<RawValue>> =
            serde_json::from_str(&request.raw).unwrap();
        let messages: Vec<Box<RawValue>> = serde_json::from_str(top["messages"].get()).unwrap();
        (
            top["system"].get().to_string(),
            top["toolConfig"].get().to_string(),
            messages.iter().map(|m| m.get().to_string()).collect(),
        )
    };
    let (system0, tools0, _) = raw(&requests[0]);
    for pair in requests.windows(2) {
        let (system, tools, before) = raw(&pair[0]);
        let (_, _, after) = raw(&pair[1]);
        assert_eq!(
            (&system, &tools),
            (&system0, &tools0),
            "the prefix bytes never change"
        );
        for (m, message) in before.iter().enumerate().take(before.len() - 1) {
            assert_eq!(message, &after[m], "message {m} kept its bytes");
        }
    }

    // What the model was told, by tool use id.
    let last = requests[10].body["messages"].as_array().unwrap();
    let result = |id: &str| -> (String, String) {
        let block = last
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .find(|b| b["toolResult"]["toolUseId"] == id)
            .unwrap_or_else(|| panic!("no result for {id}"));
        let text = block["toolResult"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let status = block["toolResult"]["status"]
            .as_str()
            .unwrap_or("success")
            .to_string();
        (status, text)
    };
    // The missing file came back as an error result the model could read.
    assert_eq!(result("t7").0, "error");
    // The tests failed before the fix, with the exit code first...
    assert_eq!(
        result("b1"),
        ("error".into(), "Exit code 1\nFAILED: add(2, 3) != 5".into())
    );
    // ... git saw exactly the one-line change (the scratch area stays out of git) ...
    let (status, diff) = result("b2");
    assert_eq!(status, "success", "{diff}");
    assert!(diff.contains("src/lib.rs | 2 +-"), "{diff}");
    assert!(diff.contains("1 file changed"), "{diff}");
    // ... and they pass after it.
    assert_eq!(result("b3"), ("success".into(), "1 passed".into()));
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let fake = FakeBedrock::start(vec![
        Step::throttle(),
        Step::server_error(),
        Step::Reply(Turn::text("finally")),
        Step::throttle(),
        Step::Reply(Turn::text("again")),
    ])
    .await;
    let root = tempfile::tempdir().unwrap();
    let host = Host::start(&fake, root.path()).await;
    let (status, body) = host.ask("hello").await;
    assert_eq!(
        (status, body["answer"].as_str()),
        (StatusCode::OK, Some("finally")),
        "{body}"
    );
    assert_eq!(body["usage"]["requests"], 3);
    let (status, body) = host.ask("hello again").await;
    assert_eq!(
        (status, body["answer"].as_str()),
        (StatusCode::OK, Some("again")),
        "{body}"
    );
    assert_eq!(fake.remaining(), 0);
}

#[tokio::test]
async fn a_malformed_stream_ends_in_a_clear_error_and_a_healthy_host() {
    let fake = FakeBedrock::start(vec![
        Step::MalformedStream,
        Step::MalformedStream,
        Step::MalformedStream,
    ])
    .await;
    let root = tempfile::tempdir().unwrap();
    let host = Host::start(&fake, root.path()).await;
    let (status, body) = host.ask("hello").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    // The caller hears the kind of failure; the chain (what Bedrock sent) is logged.
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("the model service is busy or unreachable") && !error.contains("malformed"),
        "{error}"
    );
    assert_eq!(host.ping().await, "Healthy");
    // The user is not stuck: the next message runs (and sees a valid history).
    fake.push(Step::Reply(Turn::text("recovered")));
    let (status, body) = host.ask("try again").await;
    assert_eq!(
        (status, body["answer"].as_str()),
        (StatusCode::OK, Some("recovered")),
        "{body}"
    );
    let last = fake.requests().last().unwrap().body.clone();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "both prompts in one user message: {messages:?}"
    );
}

#[tokio::test]
async fn fatal_errors_are_not_retried_and_the_caller_hears_their_kind() {
    let fake = FakeBedrock::start(vec![Step::error(
        403,
        "AccessDeniedException",
        "not authorized",
    )])
    .await;
    let root = tempfile::tempdir().unwrap();
    let host = Host::start(&fake, root.path()).await;
    let (status, body) = host.ask("hello").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // What to fix (the IAM action) is for the operator's log, not for the person asking.
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("the operator needs to fix it") && !error.contains("not authorized"),
        "{error}"
    );
    assert_eq!(fake.requests().len(), 1, "no retry for access denied");
}

#[tokio::test]
async fn a_conversation_too_long_for_the_model_is_shortened_and_asked_again() {
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::text("first answer")),
        Step::Reply(Turn::text("second answer")),
        Step::error(
            400,
            "ValidationException",
            "Input is too long for requested model.",
        ),
        Step::Reply(Turn::text("third answer")),
    ])
    .await;
    let root = tempfile::tempdir().unwrap();
    let mut settings = AgentSettings::new(root.path().join("state"));
    // About 1,000 tokens per question: three fit the budget, and half of it holds two.
    settings.context_budget_tokens = 5_000;
    let plugins = Arc::new(LivePlugins::fixed(builtin_plugins().clone()));
    let host = Host::start_with(&fake, root.path(), plugins, settings).await;
    let question = |n: &str| format!("{n} question {}", "x".repeat(4_000));
    for n in ["first", "second"] {
        assert_eq!(host.ask(&question(n)).await.0, StatusCode::OK);
    }
    let (status, body) = host.ask(&question("third")).await;
    assert_eq!(
        (status, body["answer"].as_str()),
        (StatusCode::OK, Some("third answer")),
        "{body}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 4, "the refused turn was asked once more");
    let sent = |index: usize| requests[index].body["messages"].to_string();
    assert!(sent(2).contains("first question"));
    let retried = sent(3);
    assert!(
        !retried.contains("first question") && retried.contains("third question"),
        "the oldest turn was dropped: {retried}"
    );
    assert!(retried.contains("were dropped to fit the model's context"));
}

/// A credential source that has none, counting how often it was asked.
#[derive(Debug)]
struct NoCredentials(Arc<std::sync::atomic::AtomicUsize>);

impl aws_sdk_bedrockruntime::config::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            ),
        ))
    }
}

/// `serve` resolves no credentials when it starts (AgentCore may snapshot the process
/// after start); the first task asks for them, and without any it fails at once, with
/// the line that says how to provide them in the log, and no retries.
#[tokio::test]
async fn without_credentials_the_first_task_fails_at_once_and_nothing_was_resolved_before() {
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("unused"))]).await;
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(fake.endpoint())
        .credentials_provider(
            aws_sdk_bedrockruntime::config::SharedCredentialsProvider::new(NoCredentials(
                asked.clone(),
            )),
        )
        .build();
    let model = BedrockModel::new(&config, ModelSettings::new(MODEL));
    let root = tempfile::tempdir().unwrap();
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let plugins = Arc::new(LivePlugins::fixed(builtin_plugins().clone()));
    let agent = Agent::new(
        plugins,
        model,
        history,
        AgentSettings::new(root.path().join("s")),
    )
    .unwrap();
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing resolved at start"
    );

    let workspace = root.path().join("w");
    std::fs::create_dir_all(&workspace).unwrap();
    let job = agent_host::agent::Job {
        task_id: "1".into(),
        user_key: USER.into(),
        session_id: None,
        prompt: "hello".into(),
        images: Vec::new(),
        workspace,
        cancel: tokio_util::sync::CancellationToken::new(),
        progress: agent_host::agent::Progress::discard(),
    };
    let error = agent.run(job).await.unwrap_err();
    let model_error = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<agent_host::model::ModelError>());
    assert!(
        matches!(model_error, Some(agent_host::model::ModelError::NotConfigured(line))
            if line.contains("AWS_PROFILE") && line.contains("aws sso login")),
        "{error:#}"
    );
    assert!(fake.requests().is_empty(), "no request went out");
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "asked once, no retries"
    );
}

/// A job of `user` for `prompt` in `workspace`, cancelled through `cancel`.
fn job(
    user: &str,
    prompt: &str,
    workspace: &Path,
    cancel: &tokio_util::sync::CancellationToken,
) -> agent_host::agent::Job {
    agent_host::agent::Job {
        task_id: user.into(),
        user_key: user.into(),
        session_id: None,
        prompt: prompt.into(),
        images: Vec::new(),
        workspace: workspace.to_path_buf(),
        cancel: cancel.clone(),
        progress: agent_host::agent::Progress::discard(),
    }
}

/// Idle users leave memory (their conversation and plugin state are on disk); a user
/// whose task is running keeps both.
#[tokio::test]
async fn idle_users_are_evicted_from_memory_but_never_a_running_one() {
    let never = Gate::new();
    let fake = FakeBedrock::start(vec![
        // User b's model turn: held until the test cancels the task.
        Step::Gate {
            gate: never.clone(),
            then: Turn::text("never heard"),
        },
        Step::Reply(Turn::text("a's answer")),
    ])
    .await;
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("w");
    std::fs::create_dir_all(&workspace).unwrap();
    let mut settings = AgentSettings::new(root.path().join("state"));
    settings.idle_user_evict = Duration::ZERO;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let plugins = Arc::new(LivePlugins::fixed(builtin_plugins().clone()));
    let agent = Agent::new(plugins, model(&fake, true), history, settings).unwrap();

    let cancel_b = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (agent, job) = (agent.clone(), job("b", "hello", &workspace, &cancel_b));
        async move { agent.run(job).await }
    });
    never.reached().await;
    let no_cancel = tokio_util::sync::CancellationToken::new();
    let answer = agent
        .run(job("a", "hello", &workspace, &no_cancel))
        .await
        .unwrap();
    assert_eq!(answer.text, "a's answer");
    assert_eq!(
        agent.users_in_memory(),
        (0, 1),
        "a was evicted when its task ended; b's plugin state stays while b runs"
    );

    cancel_b.cancel();
    assert!(running.await.unwrap().is_err());
    assert_eq!(
        agent.users_in_memory(),
        (0, 0),
        "b is idle now, and gone too"
    );
    // Nothing was lost: a's conversation is read back from the history store.
    let history = FileHistory::new(root.path().join("history"));
    assert_eq!(history.load("a").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_restarted_host_continues_the_conversation() {
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::text("first answer")),
        Step::Reply(Turn::text("second answer")),
    ])
    .await;
    let root = tempfile::tempdir().unwrap();
    let first = Host::start(&fake, root.path()).await;
    let (status, _) = first.ask("first question").await;
    assert_eq!(status, StatusCode::OK);
    // A new host on the same state dir: a new agent with nothing in memory.
    let host = Host::start(&fake, root.path()).await;
    let (status, body) = host.ask("second question").await;
    assert_eq!(
        (status, body["answer"].as_str()),
        (StatusCode::OK, Some("second answer")),
        "{body}"
    );
    let messages = fake.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["first question", "first answer", "second question"]);
}

#[tokio::test]
async fn stream_mode_shows_the_agents_progress() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("g1", "Glob", json!({"pattern": "*"}))),
        Step::Reply(Turn::text("Nothing here yet.")),
    ])
    .await;
    let host = Host::start(&fake, root.path()).await;
    let response = reqwest::Client::new()
        .post(format!("{}/invocations", host.base))
        .body(json!({"prompt": "what is here?", "user_id": USER, "mode": "stream"}).to_string())
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let started = events
        .iter()
        .position(|e| e["type"] == "tool_started")
        .expect("tool_started");
    assert_eq!(events[started]["tool"], "Glob");
    assert_eq!(
        events[started + 1],
        json!({"type": "tool_finished", "tool": "Glob", "is_error": false, "output": "No files found"})
    );
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        streamed, "Nothing here yet.",
        "text deltas arrive as they stream"
    );
    let turns: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "turn_finished")
        .collect();
    assert_eq!(turns.len(), 2, "one event per model turn: {events:?}");
    assert_eq!(turns[1]["turn"], 2);
    assert_eq!(
        turns[1]["usage"]["requests"], 2,
        "the usage is the task's so far"
    );
    assert_eq!(events.last().unwrap()["type"], "final");
    assert_eq!(events.last().unwrap()["answer"], "Nothing here yet.");
}

#[tokio::test]
async fn cancellation_stops_a_waiting_task_and_keeps_the_history_valid() {
    let root = tempfile::tempdir().unwrap();
    // The second model turn never answers: the task waits for it until cancelled.
    let never = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("g1", "Glob", json!({"pattern": "*"}))),
        Step::Gate {
            gate: never.clone(),
            then: Turn::text("too late"),
        },
        Step::Reply(Turn::text("back")),
    ])
    .await;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, true),
        history.clone(),
        AgentSettings::new(root.path().join("state")),
    )
    .unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let job = agent_host::agent::Job {
        task_id: "1".into(),
        user_key: USER.into(),
        session_id: None,
        prompt: "list".into(),
        images: Vec::new(),
        workspace: workspace.canonicalize().unwrap(),
        cancel: cancel.clone(),
        progress: agent_host::agent::Progress::discard(),
    };
    let running = tokio::spawn(agent.run(job));
    never.reached().await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let error = running.await.unwrap().unwrap_err();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "stopped promptly"
    );
    assert!(format!("{error:#}").contains("cancelled"), "{error:#}");
    // What was stored is a valid conversation: prompt, call, result.
    let stored = history.load(USER).await.unwrap();
    assert_eq!(stored.len(), 3, "{stored:#?}");
}

#[tokio::test]
async fn the_turn_limit_stops_a_task_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("g1", "Glob", json!({"pattern": "*"}))),
        Step::Reply(Turn::tool_use("g2", "Glob", json!({"pattern": "**"}))),
    ])
    .await;
    let mut settings = AgentSettings::new(root.path().join("state"));
    settings.max_turns = 2;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, false),
        history,
        settings,
    )
    .unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let job = agent_host::agent::Job {
        task_id: "1".into(),
        user_key: USER.into(),
        session_id: None,
        prompt: "look around".into(),
        images: Vec::new(),
        workspace: workspace.canonicalize().unwrap(),
        cancel: tokio_util::sync::CancellationToken::new(),
        progress: agent_host::agent::Progress::discard(),
    };
    let answer = agent.run(job).await.unwrap();
    assert!(
        answer.text.contains("I stopped after 2 model turns"),
        "{}",
        answer.text
    );
    assert_eq!(fake.requests().len(), 2);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.operation == agent_host_tests::fake_bedrock::Operation::Converse),
        "model_streaming = false uses Converse"
    );
}

#[tokio::test]
async fn a_policy_added_while_a_task_runs_applies_to_its_next_tool_call_and_is_audited() {
    let swap = SwapSetup::new(runtime().clone());
    let (root, workspace, ws, live) = (&swap.root, &swap.workspace, &swap.ws, &swap.live);
    let first = json!({"file_path": format!("{ws}/secret/a.txt"), "content": "a"});
    let second =
        json!({"file_path": format!("{ws}/secret/b.txt"), "content": "TOP-SECRET-CONTENT"});
    // The model "thinks" until the operator has dropped a policy in.
    let thinking = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("w1", "Write", first.clone())),
        Step::Gate {
            gate: thinking.clone(),
            then: Turn::tool_use("w2", "Write", second.clone()),
        },
        Step::Reply(Turn::text("done")),
    ])
    .await;
    let settings = AgentSettings::new(root.path().join("state"));
    let host = Host::start_with(&fake, root.path(), live.clone(), settings).await;
    let task = tokio::spawn(async move { host.ask("write two secrets").await });
    // The second model turn started, so the first write is done: add the policy and swap
    // while the task waits for the model.
    thinking.reached().await;
    assert!(
        workspace.join("secret/a.txt").exists(),
        "the first write happened before the second turn"
    );
    swap.add_policy().await;
    thinking.open();
    let (status, body) = task.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answer"], "done");
    assert!(workspace.join("secret/a.txt").exists());
    assert!(
        !workspace.join("secret/b.txt").exists(),
        "the second write ran past the new policy"
    );
    // The model was told who denied it.
    let requests = fake.requests();
    let last = requests.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let denial = last
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .find(|b| b["toolResult"]["toolUseId"] == "w2")
        .unwrap();
    assert_eq!(denial["toolResult"]["status"], "error");
    let text = denial["toolResult"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Denied by policy policy-example:"),
        "{text}"
    );
    // The audit log has both calls, the second with the policy's verdict.
    let lines = swap.audit_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["user"], USER);
    assert_eq!(lines[0]["tool"], "Write");
    assert_eq!(lines[0]["status"], "success");
    assert_eq!(lines[0]["policies"], json!([]));
    // Each call's instances were made while the model streamed it: the tool's, then the
    // policy's and the tool's.
    assert_eq!(lines[0]["made_ahead"], 1);
    assert_eq!(
        lines[1]["made_ahead"], 1,
        "the policy ran; the tool never did"
    );
    assert_eq!(lines[1]["status"], "denied");
    assert_eq!(lines[1]["ran"], false);
    assert_eq!(lines[1]["policies"][0]["policy"], "policy-example");
    assert_eq!(lines[1]["policies"][0]["verdict"], "deny");
    let digest = sha256_hex(second.to_string().as_bytes());
    assert_eq!(lines[1]["input_sha256"], digest);
    assert!(
        !std::fs::read_to_string(&swap.audit_path)
            .unwrap()
            .contains("TOP-SECRET-CONTENT"),
        "the audit log holds digests, not inputs: {}",
        std::fs::read_to_string(&swap.audit_path).unwrap()
    );
}

#[tokio::test]
async fn a_policy_swapped_in_while_the_model_writes_a_call_applies_to_it() {
    // A runtime of its own: the instances it holds ahead are this test's alone.
    let runtime = Arc::new(PluginRuntime::new(Some(test_cache_dir())).unwrap());
    let swap = SwapSetup::new(runtime.clone());
    let (root, workspace, ws, live) = (&swap.root, &swap.workspace, &swap.ws, &swap.live);
    let secret = json!({"file_path": format!("{ws}/secret/a.txt"), "content": "a"});
    // The model has named the tool and is still writing the call's input.
    let writing = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::GateInToolUse {
            gate: writing.clone(),
            turn: Turn::tool_use("w1", "Write", secret),
        },
        Step::Reply(Turn::text("done")),
    ])
    .await;
    let settings = AgentSettings::new(root.path().join("state"));
    let host = Host::start_with(&fake, root.path(), live.clone(), settings).await;
    let task = tokio::spawn(async move { host.ask("write a secret").await });
    writing.reached().await;
    // The agent makes the call's instance (the tool's: no policy yet) as the tool is named.
    let started = Instant::now();
    while runtime.held_ahead() != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the call was never prepared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    swap.add_policy().await;
    writing.open();
    let (status, body) = task.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !workspace.join("secret").exists(),
        "the call ran on what was prepared before the policy came"
    );
    let line = &swap.audit_lines()[0];
    assert_eq!(line["status"], "denied", "{line}");
    assert_eq!(line["policies"][0]["policy"], "policy-example");
    assert_eq!(line["made_ahead"], 0, "the old set's instance was not used");
    assert_eq!(runtime.held_ahead(), 0, "and it was given back");
}

/// A user's workspace, and `files` alone in a live plugin directory whose calls are
/// audited: for tests that swap a policy in while a task runs.
struct SwapSetup {
    root: tempfile::TempDir,
    workspace: std::path::PathBuf,
    /// The workspace's canonical path, as tool inputs name it.
    ws: String,
    plugin_dir: PluginDir,
    audit_path: std::path::PathBuf,
    live: Arc<LivePlugins>,
}

impl SwapSetup {
    fn new(runtime: Arc<PluginRuntime>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("workspaces").join(USER);
        std::fs::create_dir_all(&workspace).unwrap();
        let ws = workspace.canonicalize().unwrap().display().to_string();
        let plugin_dir = PluginDir::new();
        dir_add(&plugin_dir, "files", &builtin_component("files"));
        let audit_path = root.path().join("audit.jsonl");
        let audit = Some(Arc::new(AuditLog::open(&audit_path).unwrap()));
        let live = Arc::new(
            LivePlugins::load(runtime, plugin_dir.path(), Default::default(), audit).unwrap(),
        );
        Self {
            root,
            workspace,
            ws,
            plugin_dir,
            audit_path,
            live,
        }
    }

    /// Drops `policy-example` into the directory and swaps the new set in.
    async fn add_policy(&self) {
        dir_add(
            &self.plugin_dir,
            "policy-example",
            &testing_component("policy-example"),
        );
        let live = self.live.clone();
        let swapped = tokio::task::spawn_blocking(move || live.reload_if_changed())
            .await
            .unwrap();
        assert!(swapped.unwrap(), "the new set is in force");
    }

    /// The audit log's lines.
    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn dir_add(dir: &PluginDir, name: &str, wasm: &Path) {
    let manifest = std::fs::read_to_string(wasm.with_extension("toml")).unwrap();
    dir.add(name, wasm, &manifest);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `files`, `bash` and `policy-validate` configured to run the repository's `tests.sh`.
fn validating_plugins() -> (PluginDir, Arc<LivePlugins>) {
    let dir = PluginDir::new();
    dir_add(&dir, "files", &builtin_component("files"));
    dir_add(&dir, "bash", &builtin_component("bash"));
    let validate = builtin_component("policy-validate");
    let manifest = std::fs::read_to_string(validate.with_extension("toml"))
        .unwrap()
        .replace("commands = []", r#"commands = ["sh tests.sh"]"#);
    assert!(manifest.contains("sh tests.sh"));
    dir.add("policy-validate", &validate, &manifest);
    let live = Arc::new(
        LivePlugins::load(runtime().clone(), dir.path(), Default::default(), None).unwrap(),
    );
    (dir, live)
}

/// The validation failures the model was shown in `request`'s last message.
fn validation_errors(request: &Recorded) -> Vec<String> {
    let messages = request.body["messages"].as_array().unwrap();
    messages.last().unwrap()["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .filter(|t| t.contains("<validation_error>"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_broken_edit_fails_validation_and_the_model_fixes_it() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspaces").join(USER);
    seed(&workspace);
    let ws = workspace.canonicalize().unwrap().display().to_string();
    let (_dir, live) = validating_plugins();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("r1", "Read", json!({"file_path": format!("{ws}/src/lib.rs")}))),
        // The "fix" breaks the check ...
        Step::Reply(Turn::tool_use(
            "e1",
            "Edit",
            json!({"file_path": format!("{ws}/src/lib.rs"), "old_string": "a - b", "new_string": "a * b"}),
        )),
        // ... the model sees why and fixes it.
        Step::Reply(Turn::tool_use(
            "e2",
            "Edit",
            json!({"file_path": format!("{ws}/src/lib.rs"), "old_string": "a * b", "new_string": "a + b"}),
        )),
        Step::Reply(Turn::text("Fixed, and the tests pass.")),
    ])
    .await;
    let settings = AgentSettings::new(root.path().join("state"));
    let host = Host::start_with(&fake, root.path(), live, settings).await;
    let (status, body) = host.ask("fix add()").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answer"], "Fixed, and the tests pass.");
    assert!(
        std::fs::read_to_string(workspace.join("src/lib.rs"))
            .unwrap()
            .contains("a + b")
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        validation_errors(&requests[1]).is_empty(),
        "a Read changes nothing"
    );
    let failures = validation_errors(&requests[2]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("[policy-validate] Validation check `sh tests.sh` failed with exit code 1:\nFAILED: add(2, 3) != 5"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("1 of at most 3"), "{}", failures[0]);
    assert!(validation_errors(&requests[3]).is_empty(), "the fix passed");
    // The system prompt told the model about the check.
    let system = requests[0].body["system"][0]["text"].as_str().unwrap();
    assert!(system.contains("`sh tests.sh`"), "{system}");
}

#[tokio::test]
async fn repeated_validation_failures_stop_the_task_and_say_why() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspaces").join(USER);
    seed(&workspace);
    let (_dir, live) = validating_plugins();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use(
            "b1",
            "Bash",
            json!({"command": "echo '// one' >> src/lib.rs"}),
        )),
        Step::Reply(Turn::tool_use(
            "b2",
            "Bash",
            json!({"command": "echo '// two' >> src/lib.rs"}),
        )),
        Step::Reply(Turn::text("never asked")),
    ])
    .await;
    let mut settings = AgentSettings::new(root.path().join("state"));
    settings.max_failed_validations = 2;
    let host = Host::start_with(&fake, root.path(), live, settings).await;
    let (status, body) = host.ask("append comments").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = body["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("I stopped: my changes failed validation 2 times"),
        "{answer}"
    );
    assert!(answer.contains("FAILED: add(2, 3) != 5"), "{answer}");
    assert_eq!(fake.requests().len(), 2, "no model turn after the limit");
    assert_eq!(host.ping().await, "Healthy");
}

#[tokio::test]
async fn plugin_state_set_in_a_turn_is_on_disk_when_the_turns_calls_end() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(workspace.join("sub")).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let notes = workspace.join("notes.txt");
    std::fs::write(&notes, "one\n").unwrap();
    let notes = notes.display().to_string();
    let thinking = Gate::new();
    let fake = FakeBedrock::start(vec![
        // Turn 1: two plugins set session state (the file read, the shell's directory).
        Step::Reply(Turn::tool_uses(vec![
            ("r1", "Read", json!({"file_path": notes})),
            ("b1", "Bash", json!({"command": "cd sub"})),
        ])),
        // Turn 2: the model "thinks" until the test has looked and cancels.
        Step::Gate {
            gate: thinking.clone(),
            then: Turn::text("too late"),
        },
    ])
    .await;
    let state_dir = root.path().join("state");
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, true),
        history.clone(),
        AgentSettings::new(state_dir.clone()),
    )
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(agent.run(job(USER, "read my notes", &workspace, &cancel)));

    // The second model request means turn 1's calls have ended; the task is now mid-turn,
    // so what is on disk is exactly what a host killed at this point would restart with.
    fake.wait_for_requests(2).await;
    let file = state_dir
        .join("sessions")
        .join(USER)
        .join("plugin-state.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        saved["files"].get(format!("read:{notes}")).is_some(),
        "the read is recorded: {saved:#}"
    );
    assert_eq!(
        saved["bash"]["cwd"]
            .as_str()
            .and_then(|cwd| serde_json::from_str::<String>(cwd).ok()),
        Some(workspace.join("sub").display().to_string()),
        "{saved:#}"
    );
    cancel.cancel();
    let error = running.await.unwrap().unwrap_err();
    assert!(format!("{error:#}").contains("cancelled"), "{error:#}");

    // A new host on the same state dir: the file counts as read, so it may be edited
    // without reading it again.
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use(
            "e1",
            "Edit",
            json!({"file_path": notes, "old_string": "one", "new_string": "two"}),
        )),
        Step::Reply(Turn::text("edited")),
    ])
    .await;
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, true),
        history,
        AgentSettings::new(state_dir),
    )
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let answer = agent
        .run(job(USER, "now edit them", &workspace, &cancel))
        .await
        .unwrap();
    assert_eq!(answer.text, "edited");
    let last = fake.requests()[1].body["messages"].clone();
    let edit_result = last
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .find(|b| b["toolResult"]["toolUseId"] == "e1")
        .unwrap()
        .clone();
    assert_ne!(
        edit_result["toolResult"]["status"], "error",
        "{edit_result:#}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "two\n");
}

/// `upload` made to fit the model and saved under `workspace/uploads/` as the Telegram
/// side does: the saved bytes and the reference a job carries.
fn save_upload(workspace: &Path, name: &str, upload: &[u8]) -> (Vec<u8>, ImageRef) {
    let fitted = fit_for_model(upload).unwrap();
    let dir = workspace.join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.{}", fitted.format.extension()));
    std::fs::write(&path, &fitted.bytes).unwrap();
    (fitted.bytes.clone(), fitted.reference(path))
}

fn history_file(root: &Path) -> std::path::PathBuf {
    root.join("history")
        .join(format!("{}.jsonl", workspace_dir_name(USER)))
}

/// A picture the user sends reaches the model as an image block holding exactly the saved
/// file's bytes, in every request that follows (the tool turn's, a later task's after a
/// restart); the history keeps where it is, never its bytes; the estimate counts it.
#[tokio::test]
async fn a_picture_reaches_the_model_and_the_history_keeps_only_its_path() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let (bytes, image) = save_upload(
        &workspace,
        "photo",
        &agent_host_tests::photo_jpeg(2400, 1800),
    );
    assert!(
        image.width < 2400,
        "a phone photo is scaled to the model's size"
    );
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use(
            "g1",
            "Glob",
            json!({"pattern": "uploads/*"}),
        )),
        Step::Reply(Turn::text("A gradient.")),
        Step::Reply(Turn::text("Still a gradient.")),
    ])
    .await;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let start_agent = || {
        Agent::new(
            Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
            model(&fake, true),
            history.clone(),
            AgentSettings::new(root.path().join("state")),
        )
        .unwrap()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut first = job(USER, "What is in this photo?", &workspace, &cancel);
    first.images = vec![image.clone()];
    let answer = start_agent().run(first).await.unwrap();
    assert_eq!(answer.text, "A gradient.");

    let sent = SentImage {
        message: 0,
        format: "jpeg".into(),
        bytes: bytes.clone(),
    };
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "the tool turn, then the answer");
    for request in &requests {
        assert_eq!(request.images(), vec![sent.clone()]);
        assert_eq!(
            request.body["messages"][0]["content"][1]["text"], "What is in this photo?",
            "the prompt follows its picture"
        );
    }

    let stored = std::fs::read_to_string(history_file(root.path())).unwrap();
    let path_json = serde_json::to_string(&image.path).unwrap();
    assert!(
        stored.contains(&format!("\"path\":{path_json}")),
        "{stored}"
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert!(!stored.contains(&encoded[..64]), "no base64 of the image");
    assert!(
        !stored.as_bytes().windows(32).any(|w| w == &bytes[200..232]),
        "no run of the image's bytes"
    );
    assert!(
        stored.len() < bytes.len(),
        "{} bytes of history",
        stored.len()
    );
    let messages = history.load(USER).await.unwrap();
    assert_eq!(
        messages[0].content[0],
        agent_host::model::Block::Image(image.clone())
    );
    let estimate = agent_host::agent::conversation::estimate_tokens(&messages);
    let for_image = model_tokens(image.width, image.height);
    assert!(
        (for_image..for_image + 200).contains(&estimate),
        "{estimate} tokens estimated, {for_image} for the image"
    );

    // A restarted host reads the picture again from its file for the next task.
    let second = job(USER, "And now?", &workspace, &cancel);
    let answer = start_agent().run(second).await.unwrap();
    assert_eq!(answer.text, "Still a gradient.");
    assert_eq!(fake.requests()[2].images(), vec![sent]);
}

/// A picture whose file is gone by the time the model is asked becomes a line saying so;
/// the task goes on.
#[tokio::test]
async fn a_picture_whose_file_is_gone_becomes_a_line_and_the_task_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let (_, image) = save_upload(&workspace, "photo", &agent_host_tests::photo_jpeg(300, 200));
    std::fs::remove_file(&image.path).unwrap();
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("I cannot see it."))]).await;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, false),
        history,
        AgentSettings::new(root.path().join("state")),
    )
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut task = job(USER, "What is this?", &workspace, &cancel);
    task.images = vec![image.clone()];
    let answer = agent.run(task).await.unwrap();
    assert_eq!(answer.text, "I cannot see it.");
    let request = &fake.requests()[0];
    assert!(request.images().is_empty());
    assert_eq!(
        request.texts(),
        vec![
            format!("[image {} is no longer available]", image.path.display()),
            "What is this?".to_string()
        ]
    );
}

/// The host reads pictures outside the tools' sandbox, so one that is not in the user's
/// workspace (a front end's mistake, or a link planted by the agent's tools) is never read.
#[tokio::test]
async fn a_picture_outside_the_workspace_is_never_sent() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("ws");
    let elsewhere = root.path().join("other-user");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let (secret, outside) = save_upload(
        &elsewhere.canonicalize().unwrap(),
        "secret",
        &agent_host_tests::photo_jpeg(64, 64),
    );
    // A link inside the workspace to the other file, as a tool could make it.
    let (_, linked) = save_upload(&workspace, "mine", &agent_host_tests::photo_jpeg(64, 64));
    std::fs::remove_file(&linked.path).unwrap();
    std::os::unix::fs::symlink(&outside.path, &linked.path).unwrap();
    let fake = FakeBedrock::start(vec![Step::Reply(Turn::text("Nothing to see."))]).await;
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.path().join("history")));
    let agent = Agent::new(
        Arc::new(LivePlugins::fixed(builtin_plugins().clone())),
        model(&fake, false),
        history,
        AgentSettings::new(root.path().join("state")),
    )
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut task = job(USER, "Look", &workspace, &cancel);
    task.images = vec![outside, linked];
    agent.run(task).await.unwrap();
    let request = &fake.requests()[0];
    assert!(request.images().is_empty(), "{:?}", request.images().len());
    assert!(!request.raw.contains(&{
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&secret)[..64].to_string()
    }));
}
