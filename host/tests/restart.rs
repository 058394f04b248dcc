//! `agent-host serve` as a process, signalled:
//! - killed with SIGKILL in the middle of a task, then started again on the same state
//!   directory: the next message continues the conversation with its full history (and the
//!   interrupted turn repaired, so Bedrock accepts it);
//! - sent SIGHUP after a policy was dropped into its plugin directory: the next task is
//!   guarded by it, without a restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use agent_host_tests::{Gate, free_port, invoke, wait_until_serving};
use serde_json::{Value, json};

fn serve(fake: &FakeBedrock, root: &Path, port: u16) -> Child {
    serve_command(fake, root, port).spawn().unwrap()
}

fn serve_command(fake: &FakeBedrock, root: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-host"));
    command
        .args(["serve", "--port", &port.to_string()])
        .current_dir(root)
        .env("HOME", root)
        .env("AGENT_HOST_STATE_DIR", root.join("state"))
        .env("AGENT_HOST_ALLOWED_USERS", "7")
        .env("AGENT_HOST_LOG", "warn")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_host_continues_the_conversation_after_restart() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("state/workspaces/7");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("notes.txt"), "remember me\n").unwrap();
    let file = workspace
        .canonicalize()
        .unwrap()
        .join("notes.txt")
        .display()
        .to_string();
    // The second turn never answers: the host is killed while waiting for it.
    let hang = Gate::new();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("r1", "Read", json!({"file_path": file}))),
        Step::Gate {
            gate: hang.clone(),
            then: Turn::text("never delivered"),
        },
        Step::Reply(Turn::text("The file says: remember me.")),
    ])
    .await;

    let port = free_port();
    let mut first = serve(&fake, root.path(), port);
    wait_until_serving(port).await;
    let ack = invoke(port, &json!({"prompt": "read notes.txt", "user_id": "7"})).await;
    assert_eq!(ack["status"], "accepted");
    hang.reached().await;
    first.kill().unwrap();
    first.wait().unwrap();

    let port = free_port();
    let mut second = serve(&fake, root.path(), port);
    wait_until_serving(port).await;
    let answer = invoke(
        port,
        &json!({"prompt": "so what does it say?", "user_id": "7", "mode": "sync"}),
    )
    .await;
    let _ = second.kill();
    let _ = second.wait();
    assert_eq!(answer["answer"], "The file says: remember me.", "{answer}");

    // The request after the restart carries the whole conversation: the first prompt, the
    // Read call and its result (written before the kill), then the new prompt.
    let requests = fake.requests();
    let messages = requests[2].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(messages[0]["content"][0]["text"], "read notes.txt");
    assert_eq!(messages[1]["content"][0]["toolUse"]["toolUseId"], "r1");
    let last = messages[2]["content"].as_array().unwrap();
    assert_eq!(last[0]["toolResult"]["toolUseId"], "r1");
    assert_eq!(
        last[0]["toolResult"]["content"][0]["text"],
        "1\tremember me"
    );
    assert_eq!(last[1]["text"], "so what does it say?");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_in_a_new_policy_without_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("state/workspaces/7");
    std::fs::create_dir_all(&workspace).unwrap();
    let ws = workspace.canonicalize().unwrap().display().to_string();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let copy = |dir: &Path, name: &str| {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                dir.join(format!("{name}.{ext}")),
                plugins.join(format!("{name}.{ext}")),
            )
            .unwrap();
        }
    };
    copy(
        &agent_host::plugins::builtin_plugins_dir().unwrap(),
        "files",
    );
    let write = |name: &str| json!({"file_path": format!("{ws}/secret/{name}"), "content": "x"});
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("w1", "Write", write("a.txt"))),
        Step::Reply(Turn::text("first done")),
        Step::Reply(Turn::tool_use("w2", "Write", write("b.txt"))),
        Step::Reply(Turn::text("second done")),
    ])
    .await;
    let port = free_port();
    let mut host = serve_command(&fake, root.path(), port)
        .env("AGENT_HOST_PLUGINS_DIR", &plugins)
        // No polling: only the signal reloads.
        .env("AGENT_HOST_PLUGINS_RELOAD_SECS", "0")
        .env("AGENT_HOST_AUDIT_LOG", root.path().join("audit.jsonl"))
        .env("AGENT_HOST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Log lines, to see the reload happen.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stdout = host.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    wait_until_serving(port).await;
    let ask = |prompt: &'static str| async move {
        let body = invoke(
            port,
            &json!({"prompt": prompt, "user_id": "7", "mode": "sync"}),
        )
        .await;
        body["answer"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(ask("write a").await, "first done");
    assert!(workspace.join("secret/a.txt").exists());

    copy(
        Path::new(agent_host::plugins::TESTING_PLUGINS_DIR),
        "policy-example",
    );
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(host.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx
            .recv_timeout(left)
            .expect("serve never logged the reload");
        if line.contains("plugins reloaded") {
            assert!(line.contains("policy-example"), "{line}");
            break;
        }
    }
    assert_eq!(ask("write b").await, "second done");
    let _ = host.kill();
    let _ = host.wait();
    assert!(
        !workspace.join("secret/b.txt").exists(),
        "the policy loaded by SIGHUP did not guard the next task"
    );
    let audit = std::fs::read_to_string(root.path().join("audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "denied", "{audit}");
    assert_eq!(last["policies"][0]["policy"], "policy-example");
}
