//! `agent-host run`: one task from the terminal, as a developer tries it on a laptop. The
//! process reaches the scripted Bedrock fake through the standard endpoint override
//! (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`), with throwaway credentials — nothing in the host
//! knows it is a fake.

use std::path::Path;
use std::process::{Command, Output};

use agent_host_tests::fake_bedrock::{FakeBedrock, Step, Turn};
use serde_json::json;

fn run(fake: &FakeBedrock, home: &Path, workspace: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-host"))
        .arg("run")
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .env("AGENT_HOST_STATE_DIR", home.join("state"))
        .env("AGENT_HOST_MODEL_RETRY_BASE_MS", "10")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_does_one_task_and_continues_the_conversation() {
    let home = tempfile::tempdir().unwrap();
    let workspace_dir = tempfile::tempdir().unwrap();
    let workspace = workspace_dir.path().canonicalize().unwrap();
    std::fs::write(workspace.join("greeting.txt"), "hello wrold\n").unwrap();
    let file = workspace.join("greeting.txt").display().to_string();
    let fake = FakeBedrock::start(vec![
        Step::Reply(Turn::tool_use("r1", "Read", json!({"file_path": file}))),
        Step::Reply(Turn::tool_use(
            "e1",
            "Edit",
            json!({"file_path": file, "old_string": "wrold", "new_string": "world"}),
        )),
        Step::Reply(Turn::text("Fixed the typo in greeting.txt.")),
        Step::Reply(Turn::text("You asked me to fix a typo.")),
        Step::Reply(Turn::text("Fresh start.")),
    ])
    .await;

    let first =
        tokio::task::block_in_place(|| run(&fake, home.path(), &workspace, &["fix the typo"]));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "Fixed the typo in greeting.txt.\n"
    );
    assert!(
        stderr.contains("[Read] {\"file_path\""),
        "tool calls are shown: {stderr}"
    );
    assert!(stderr.contains("[Edit]"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(workspace.join("greeting.txt")).unwrap(),
        "hello world\n"
    );

    // The next run on the same workspace continues the conversation.
    let second =
        tokio::task::block_in_place(|| run(&fake, home.path(), &workspace, &["what did I ask?"]));
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let messages = fake.requests()[3].body["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(messages, 7, "prompt, 2 tool rounds, answer, new prompt");

    // --new starts afresh.
    let third =
        tokio::task::block_in_place(|| run(&fake, home.path(), &workspace, &["--new", "hi"]));
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert_eq!(
        fake.requests()[4].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_reports_a_failed_task_with_exit_code_1() {
    let home = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let fake = FakeBedrock::start(vec![Step::error(
        404,
        "ResourceNotFoundException",
        "no such model",
    )])
    .await;
    let output =
        tokio::task::block_in_place(|| run(&fake, home.path(), workspace.path(), &["hello"]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("model_id"),
        "the error says what to fix: {stderr}"
    );
}
