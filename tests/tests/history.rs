//! Conversation histories survive a restarted host: files on local disk (appends, torn
//! writes, corruption, hostile user keys, concurrency) and S3 against a real S3-compatible
//! server (moto) on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::model::types::{Block, Message, Role};
use agent_host::session::{FileHistory, HistoryStore, S3History, workspace_dir_name};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use serde_json::json;

/// One message of each block kind, with text outside ASCII and JSON that needs escaping.
fn conversation() -> Vec<Message> {
    vec![
        Message::user_text("Grüße, 世界! Read \"main.rs\"\nplease 🦀"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text {
                    text: "Je lis le fichier…\u{2028}".into(),
                },
                Block::ToolUse {
                    id: "tool-1".into(),
                    name: "Read".into(),
                    input: json!({"path": "src/main.rs", "lines": [1, 2], "note": "ß\n\t\"q\""}),
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "tool-1".into(),
                content: "fn main() {\n    println!(\"héllo\");\n}\n".into(),
                is_error: false,
            }],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "tool-2".into(),
                content: "no such file: ☃.txt".into(),
                is_error: true,
            }],
        },
    ]
}

fn history_file(dir: &Path, user_key: &str) -> PathBuf {
    dir.join(format!("{}.jsonl", workspace_dir_name(user_key)))
}

// ---- FileHistory ----

#[tokio::test]
async fn file_round_trip_keeps_every_block_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileHistory::new(dir.path().join("histories"));
    assert!(store.load("alice").await.unwrap().is_empty());

    let all = conversation();
    store.append("alice", &all[..2]).await.unwrap();
    store.append("alice", &all[2..]).await.unwrap();
    store.append("alice", &[]).await.unwrap();
    assert_eq!(store.load("alice").await.unwrap(), all);

    let text =
        std::fs::read_to_string(history_file(&dir.path().join("histories"), "alice")).unwrap();
    assert_eq!(text.lines().count(), all.len(), "one JSON line per message");
    assert!(
        store.load("bob").await.unwrap().is_empty(),
        "users are separate"
    );
}

#[tokio::test]
async fn file_history_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let all = conversation();
    {
        let first = FileHistory::new(dir.path().to_path_buf());
        first.append("alice", &all[..1]).await.unwrap();
        first.append("alice", &all[1..2]).await.unwrap();
    }
    let second = FileHistory::new(dir.path().to_path_buf());
    assert_eq!(second.load("alice").await.unwrap(), all[..2]);
    second.append("alice", &all[2..]).await.unwrap();

    let third = FileHistory::new(dir.path().to_path_buf());
    assert_eq!(third.load("alice").await.unwrap(), all);
}

#[tokio::test]
async fn file_torn_last_line_is_skipped_and_cut_off_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let all = conversation();
    FileHistory::new(dir.path().to_path_buf())
        .append("alice", &all[..2])
        .await
        .unwrap();
    // A crash in the middle of the next append: half a line, no newline.
    let path = history_file(dir.path(), "alice");
    let line = serde_json::to_string(&all[2]).unwrap();
    append_raw(&path, &line.as_bytes()[..line.len() / 2]);

    // A restarted host sees every acknowledged message...
    let restarted = FileHistory::new(dir.path().to_path_buf());
    assert_eq!(restarted.load("alice").await.unwrap(), all[..2]);
    // ...and its next append starts on a line of its own.
    restarted.append("alice", &all[2..]).await.unwrap();
    assert_eq!(restarted.load("alice").await.unwrap(), all);
    let again = FileHistory::new(dir.path().to_path_buf());
    assert_eq!(again.load("alice").await.unwrap(), all);

    // Same when the appending instance never loaded the file first.
    append_raw(&path, b"{\"role\":\"assis");
    let fresh = FileHistory::new(dir.path().to_path_buf());
    fresh.append("alice", &all[..1]).await.unwrap();
    let mut expected = all.clone();
    expected.push(all[0].clone());
    assert_eq!(fresh.load("alice").await.unwrap(), expected);
}

#[tokio::test]
async fn file_corrupt_middle_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let all = conversation();
    let store = FileHistory::new(dir.path().to_path_buf());
    store.append("alice", &all[..1]).await.unwrap();
    let path = history_file(dir.path(), "alice");
    append_raw(&path, b"{\"role\": \"nobody\"}\n");
    // This instance wrote the file and trusts its end: the damage ends up in the middle.
    store.append("alice", &all[1..2]).await.unwrap();

    let error = FileHistory::new(dir.path().to_path_buf())
        .load("alice")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("line 2"), "{error}");
}

#[tokio::test]
async fn file_replace_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileHistory::new(dir.path().to_path_buf());
    let all = conversation();
    store.append("alice", &all).await.unwrap();

    let summary = vec![Message::user_text("Summary: read main.rs")];
    store.replace("alice", &summary).await.unwrap();
    assert_eq!(store.load("alice").await.unwrap(), summary);
    store.append("alice", &all[1..2]).await.unwrap();
    let restarted = FileHistory::new(dir.path().to_path_buf());
    assert_eq!(
        restarted.load("alice").await.unwrap(),
        [summary[0].clone(), all[1].clone()]
    );

    restarted.clear("alice").await.unwrap();
    assert!(restarted.load("alice").await.unwrap().is_empty());
    assert!(!history_file(dir.path(), "alice").exists());
    restarted.clear("alice").await.unwrap();
    restarted.clear("never-seen").await.unwrap();

    // Replacing a history that does not exist yet creates it; no temporary files remain.
    let other = FileHistory::new(dir.path().join("new"));
    other.replace("bob", &summary).await.unwrap();
    assert_eq!(other.load("bob").await.unwrap(), summary);
    assert_eq!(file_names(&dir.path().join("new")), vec!["bob.jsonl"]);
}

#[tokio::test]
async fn file_path_like_user_keys_stay_inside_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("histories");
    let store = FileHistory::new(dir.clone());
    let keys = [
        "../x",
        "/etc/passwd",
        "..",
        "a/../../b",
        "x\\..\\y",
        " ",
        "@x",
    ];
    for (i, key) in keys.iter().enumerate() {
        let message = Message::user_text(format!("message {i}"));
        store
            .append(key, std::slice::from_ref(&message))
            .await
            .unwrap();
        assert_eq!(store.load(key).await.unwrap(), vec![message], "{key:?}");
    }
    // Every key got its own file directly in `dir`, and nothing appeared elsewhere.
    let names = file_names(&dir);
    assert_eq!(names.len(), keys.len(), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with('@') && n.ends_with(".jsonl"))
    );
    assert_eq!(file_names(&root.path().join("a")), vec!["histories"]);
    assert_eq!(file_names(root.path()), vec!["a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_concurrent_appends_for_one_user_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileHistory::new(dir.path().to_path_buf()));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let pair = [
                    Message::user_text(format!("question {i}")),
                    Message::user_text(format!("answer {i}")),
                ];
                store.append("alice", &pair).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = FileHistory::new(dir.path().to_path_buf())
        .load("alice")
        .await
        .unwrap();
    assert_eq!(loaded.len(), 80);
    // Each append stays in one piece, and every one is there.
    let mut seen: Vec<usize> = loaded
        .chunks(2)
        .map(|pair| {
            let number = text_of(&pair[0]).strip_prefix("question ").unwrap();
            assert_eq!(text_of(&pair[1]), format!("answer {number}"));
            number.parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
}

fn append_raw(path: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn text_of(message: &Message) -> &str {
    match &message.content[..] {
        [Block::Text { text }] => text,
        other => panic!("expected one text block, got {other:?}"),
    }
}

// ---- S3History against moto ----

/// moto's S3 server on a free port of 127.0.0.1, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Moto {
    async fn start() -> Self {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server"])
            .output();
        match probe {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "the S3 tests need moto's S3 server, which is not installed; install it with: \
                 python3 -m pip install 'moto[server]'\n{}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => panic!(
                "the S3 tests need python3 with moto's S3 server ({error}); install python3, \
                 then: python3 -m pip install 'moto[server]'"
            ),
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("python3 starts");
        let mut moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_until_it_answers().await;
        moto
    }

    async fn wait_until_it_answers(&mut self) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto exited ({status}) before answering:\n{}", self.log());
            }
            if http.get(&self.endpoint).send().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer on {} within 30 s:\n{}",
                self.endpoint,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// A client configured in code only: static test credentials, the local endpoint and
    /// path-style addressing; nothing read from the environment.
    fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A client with a new bucket.
    async fn bucket(&self, name: &str) -> aws_sdk_s3::Client {
        let client = self.client();
        client.create_bucket().bucket(name).send().await.unwrap();
        client
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_store(client: &aws_sdk_s3::Client, bucket: &str) -> S3History {
    S3History::new(client.clone(), bucket.into(), "histories/".into())
}

#[tokio::test]
async fn s3_round_trip_keeps_every_block_kind() {
    let moto = Moto::start().await;
    let client = moto.bucket("round-trip").await;
    let store = s3_store(&client, "round-trip");
    store.check().await.unwrap();

    let all = conversation();
    store.append("alice", &all[..2]).await.unwrap();
    store.append("alice", &all[2..]).await.unwrap();
    assert_eq!(store.load("alice").await.unwrap(), all);

    // One object per user, named like the workspace, one JSON line per message.
    let object = client
        .get_object()
        .bucket("round-trip")
        .key("histories/alice.jsonl")
        .send()
        .await
        .unwrap();
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(String::from_utf8(body.to_vec()).unwrap().lines().count(), 4);

    // A path-like key gets a hashed name under the prefix.
    store.append("../x", &all[..1]).await.unwrap();
    let listed = client
        .list_objects_v2()
        .bucket("round-trip")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    let hashed = format!("histories/{}.jsonl", workspace_dir_name("../x"));
    assert_eq!(
        keys,
        [hashed.as_str(), "histories/alice.jsonl"],
        "'@' sorts first"
    );
}

#[tokio::test]
async fn s3_history_continues_after_a_restart() {
    let moto = Moto::start().await;
    let client = moto.bucket("restart").await;
    let all = conversation();
    {
        let first = s3_store(&client, "restart");
        first.append("alice", &all[..1]).await.unwrap();
        first.append("alice", &all[1..2]).await.unwrap();
    }
    let second = s3_store(&client, "restart");
    // Appending before any load must read what the first host wrote.
    second.append("alice", &all[2..]).await.unwrap();
    assert_eq!(second.load("alice").await.unwrap(), all);
    assert_eq!(
        s3_store(&client, "restart").load("alice").await.unwrap(),
        all
    );
}

#[tokio::test]
async fn s3_replace_and_clear() {
    let moto = Moto::start().await;
    let client = moto.bucket("compaction").await;
    let store = s3_store(&client, "compaction");
    let all = conversation();
    store.append("alice", &all).await.unwrap();

    let summary = vec![Message::user_text("Summary: read main.rs")];
    store.replace("alice", &summary).await.unwrap();
    store.append("alice", &all[1..2]).await.unwrap();
    let expected = vec![summary[0].clone(), all[1].clone()];
    assert_eq!(store.load("alice").await.unwrap(), expected);
    assert_eq!(
        s3_store(&client, "compaction").load("alice").await.unwrap(),
        expected
    );

    store.clear("alice").await.unwrap();
    assert!(store.load("alice").await.unwrap().is_empty());
    assert!(
        s3_store(&client, "compaction")
            .load("alice")
            .await
            .unwrap()
            .is_empty()
    );
    let listed = client
        .list_objects_v2()
        .bucket("compaction")
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty(), "the object is deleted");
    store.clear("alice").await.unwrap();
}

#[tokio::test]
async fn s3_missing_object_is_empty_and_missing_bucket_is_explained() {
    let moto = Moto::start().await;
    let client = moto.bucket("empty").await;
    let store = s3_store(&client, "empty");
    assert!(store.load("nobody").await.unwrap().is_empty());
    store.clear("nobody").await.unwrap();

    let lost = s3_store(&client, "no-such-bucket");
    let error = lost.load("alice").await.unwrap_err().to_string();
    assert!(error.contains("no-such-bucket"), "{error}");
    assert!(error.contains("bucket name"), "{error}");
    let error = lost.check().await.unwrap_err().to_string();
    assert!(error.contains("bucket name"), "{error}");

    // Nobody listening: the error points at the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = moto
        .client()
        .config()
        .to_builder()
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    let unreachable = s3_store(&aws_sdk_s3::Client::from_conf(config), "empty");
    let error = unreachable.load("alice").await.unwrap_err().to_string();
    assert!(error.contains("endpoint"), "{error}");
}
