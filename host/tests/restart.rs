//! `agent-host serve` killed with SIGKILL in the middle of a task, then started again on the
//! same state directory: the next message continues the conversation with its full history
//! (and the interrupted turn repaired, so Bedrock accepts it).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use serde_json::{Value, json};

fn serve(fake: &FakeBedrock, root: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agent-host"))
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
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/ping"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("r1", "Read", json!({"file_path": file}))),
        // The second turn hangs: the host is killed while waiting for it.
        Step::Slow {
            delay: Duration::from_secs(30),
            then: Turn::text("never delivered"),
        },
        Step::Reply(Turn::text("The file says: remember me.")),
    ])
    .await;

    let port = free_port();
    let mut first = serve(&fake, root.path(), port);
    wait_ready(port).await;
    let ack: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/invocations"))
        .body(json!({"prompt": "read notes.txt", "user_id": "7"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ack["status"], "accepted");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.requests().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second model turn never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let port = free_port();
    let mut second = serve(&fake, root.path(), port);
    wait_ready(port).await;
    let answer: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/invocations"))
        .body(json!({"prompt": "so what does it say?", "user_id": "7", "mode": "sync"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
