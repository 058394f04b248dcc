//! A tool call as a real task makes it, timed by the host's own audit log.
//!
//! The whole agent runs: the server takes a task over HTTP, the production Bedrock client
//! streams the model's turns from the scripted Converse fake on 127.0.0.1, and every turn
//! is one `Read` of a new 200-line file through the built-in plugins and policies. The fake
//! holds each turn's stream right after the tool is named, for 100 ms, as a model takes
//! time to write a call's input; the agent prepares the call meanwhile, as it does in
//! production. The figure is the audit log's `duration_ms` of each call: what the issue
//! that asked for the `task` rows of `benches/plugins.rs` measured, now next to them.
//!
//! `cargo bench --bench task` (release). `BENCH_QUICK=1` runs one short task.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_host::agent::{Agent, AgentSettings, JobRunner};
use agent_host::plugins::{AuditLog, LivePlugins, PluginRuntime};
use agent_host::server::{AppState, ServerSettings};
use agent_host::session::Users;
use agent_host::session::history::{FileHistory, HistoryStore};
use agent_host_tests::Gate;
use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use serde_json::{Value, json};

mod common;

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const USER: &str = "4242";
/// How long the model takes to write each call's input, after naming the tool.
const WRITING: Duration = Duration::from_millis(100);

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let (tasks, calls_per_task) = if quick { (1, 10) } else { (5, 20) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let durations = runtime.block_on(run(tasks, calls_per_task));
    println!(
        "## a Read in a real task, the model writing each call for 100 ms: the audit log's \
         duration_ms"
    );
    common::print_calls(&format!("{tasks} tasks of {calls_per_task}"), &durations);
}

/// Runs `tasks` tasks of `calls` `Read`s each; returns every call's `duration_ms`.
async fn run(tasks: usize, calls: usize) -> Vec<Duration> {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspaces").join(USER);
    std::fs::create_dir_all(&workspace).unwrap();
    let ws = workspace.canonicalize().unwrap();
    let audit_path = root.path().join("audit.jsonl");
    let plugin_runtime = Arc::new(PluginRuntime::new(Some(root.path().join("cache"))).unwrap());
    let plugins = Arc::new(
        LivePlugins::load(
            plugin_runtime,
            &agent_host::plugins::builtin_plugins_dir().expect("built-in plugins built"),
            Default::default(),
            Some(Arc::new(AuditLog::open(&audit_path).unwrap())),
        )
        .unwrap(),
    );
    let text: String = (0..200)
        .map(|i| format!("fn line_{i}() {{ println!(\"{i}\"); }}\n"))
        .collect();
    for task in 0..tasks {
        let gates: Vec<Gate> = (0..calls).map(|_| Gate::new()).collect();
        let mut script: Vec<Step> = Vec::new();
        for (call, gate) in gates.iter().enumerate() {
            let file = ws.join(format!("t{task}-f{call}.rs"));
            std::fs::write(&file, &text).unwrap();
            let input = json!({"file_path": file.display().to_string()});
            script.push(Step::GateInToolUse {
                gate: gate.clone(),
                turn: Turn::tool_use(&format!("r{call}"), "Read", input),
            });
        }
        script.push(Step::Reply(Turn::text("read them all")));
        let fake = FakeBedrock::start(script).await;
        let base = start_host(&fake, root.path(), plugins.clone()).await;
        let asked = tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/invocations"))
                .body(json!({"prompt": "read", "user_id": USER, "mode": "sync"}).to_string())
                .send()
                .await
                .unwrap()
                .status()
        });
        for gate in &gates {
            gate.reached().await;
            tokio::time::sleep(WRITING).await;
            gate.open();
        }
        assert!(asked.await.unwrap().is_success());
    }
    let lines = std::fs::read_to_string(&audit_path).unwrap();
    let records: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), tasks * calls, "one audit line per call");
    records
        .iter()
        .map(|record| {
            assert_eq!(record["status"], "success", "{record}");
            assert_eq!(
                record["made_ahead"], 2,
                "the tool's and policy-files': {record}"
            );
            Duration::from_secs_f64(record["duration_ms"].as_f64().unwrap() / 1000.0)
        })
        .collect()
}

/// The server and agent over `plugins`, talking to `fake`; returns its base URL.
async fn start_host(fake: &FakeBedrock, root: &Path, plugins: Arc<LivePlugins>) -> String {
    let history: Arc<dyn HistoryStore> = Arc::new(FileHistory::new(root.join("history")));
    let model = agent_host_tests::bedrock_model(fake, MODEL, true);
    let settings = AgentSettings::new(root.join("state"));
    let agent: Arc<dyn JobRunner> =
        Arc::new(Agent::new(plugins, model, history, settings).unwrap());
    let users = Arc::new(Users::new(root.join("workspaces"), [USER.to_string()]));
    let state = AppState::new(users, agent, ServerSettings::default());
    agent_host_tests::serve_locally(state).await
}
