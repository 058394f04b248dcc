//! The AgentCore contract over real HTTP on 127.0.0.1, with a real client: `/ping` through
//! a task's life, the one-task-per-user rule under concurrency, bad input, modes, Telegram
//! updates, and shutdown on SIGTERM of a real process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_host::server::{AppState, ServerSettings};
use agent_host::session::{Users, workspace_dir_name};
use agent_host_tests::{Gate, ManualClock, ScriptRunner, builtin_plugins};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct TestServer {
    base: String,
    state: AppState,
    runner: Arc<ScriptRunner>,
    root: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    async fn start(allowed: &[&str]) -> Self {
        Self::with(allowed, ServerSettings::default(), None).await
    }

    /// A server with `settings`, stamping `/ping` from `clock` if given (else the system
    /// clock).
    async fn with(allowed: &[&str], settings: ServerSettings, clock: Option<&ManualClock>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let users = Arc::new(Users::new(
            root.path().join("workspaces"),
            allowed.iter().map(|s| s.to_string()),
        ));
        let runner = Arc::new(ScriptRunner::new(builtin_plugins().clone()));
        let state = match clock {
            Some(clock) => AppState::with_clock(users, runner.clone(), settings, clock.clock()),
            None => AppState::new(users, runner.clone(), settings),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(agent_host::server::serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            base,
            state,
            runner,
            root,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// The gate that `wait <name>` script steps wait at.
    fn gate(&self, name: &str) -> Gate {
        self.runner.gate(name)
    }

    fn workspace(&self, user: &str) -> PathBuf {
        self.root
            .path()
            .join("workspaces")
            .join(workspace_dir_name(user))
    }

    async fn ping(&self) -> Value {
        let response = reqwest::get(format!("{}/ping", self.base)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn invoke(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/invocations", self.base))
            .header("content-type", "application/json")
            .header(
                "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
                "test-session-0000000000000000000000001",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, value)
    }

    async fn direct(&self, user: &str, prompt: &str, mode: &str) -> (StatusCode, Value) {
        self.invoke(json!({"prompt": prompt, "user_id": user, "mode": mode}).to_string())
            .await
    }

    /// Runs `prompt` for user 1 in stream mode; returns the events' JSON data.
    async fn stream(&self, prompt: &str) -> Vec<Value> {
        let response = reqwest::Client::new()
            .post(format!("{}/invocations", self.base))
            .body(json!({"prompt": prompt, "user_id": "1", "mode": "stream"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let text = response.text().await.unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    /// Waits (bounded) until no task runs.
    async fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state.tasks().active_count() > 0 {
            assert!(Instant::now() < deadline, "tasks did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
    }
}

/// The registry's clock is moved by hand: seconds pass without waiting for them.
#[tokio::test]
async fn ping_follows_a_task_and_stamps_only_changes() {
    let clock = ManualClock::at(1_700_000_000);
    let server = TestServer::with(&["1", "2"], ServerSettings::default(), Some(&clock)).await;
    let idle = server.ping().await;
    assert_eq!(idle["status"], "Healthy");
    let t0 = idle["time_of_last_update"]
        .as_u64()
        .expect("an integer timestamp");
    assert_eq!(t0, clock.now());
    clock.advance(2);
    assert_eq!(
        server.ping().await["time_of_last_update"],
        t0,
        "an idle ping does not re-stamp"
    );

    // The task runs until the test opens its gate.
    let (status, ack) = server.direct("1", "wait done", "async").await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["status"], "accepted");
    assert!(ack["task_id"].is_string());
    assert_eq!(ack["session_id"], "test-session-0000000000000000000000001");
    let busy = server.ping().await;
    assert_eq!(busy["status"], "HealthyBusy");
    let t1 = busy["time_of_last_update"].as_u64().unwrap();
    assert!(t1 > t0, "the status changed, so the time moved");
    clock.advance(2);
    assert_eq!(
        server.ping().await["time_of_last_update"],
        t1,
        "still busy: unchanged"
    );

    server.gate("done").open();
    server.idle().await;
    let after = server.ping().await;
    assert_eq!(after["status"], "Healthy");
    assert!(after["time_of_last_update"].as_u64().unwrap() > t1);
    server.shutdown().await;
}

/// Without a test clock, `/ping` stamps unix seconds of the system clock.
#[tokio::test]
async fn ping_stamps_unix_seconds_of_the_system_clock() {
    let unix_now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = unix_now();
    let server = TestServer::start(&["1"]).await;
    let stamped = server.ping().await["time_of_last_update"].as_u64().unwrap();
    assert!(
        (before..=unix_now()).contains(&stamped),
        "{stamped} is not between {before} and now"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_task_that_panics_or_fails_returns_the_container_to_healthy() {
    let server = TestServer::start(&["1"]).await;
    let (status, _) = server.direct("1", "wait go\npanic", "async").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.ping().await["status"], "HealthyBusy");
    server.gate("go").open();
    server.idle().await;
    assert_eq!(server.ping().await["status"], "Healthy");
    // The user is free again, and a sync caller hears about the crash.
    let (status, body) = server.direct("1", "panic", "sync").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["error"].as_str().unwrap().contains("internal error"),
        "{body}"
    );
    // The error chain stays in the log: the caller gets a sentence and the task id.
    let (status, body) = server.direct("1", "fail the disk is on fire", "sync").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let error = body["error"].as_str().unwrap();
    assert!(!error.contains("disk is on fire"), "{body}");
    assert!(
        error.starts_with("The task failed: the host ran into an internal error")
            && error.contains("under task "),
        "{body}"
    );
    assert_eq!(server.ping().await["status"], "Healthy");
    server.shutdown().await;
}

#[tokio::test]
async fn one_user_twenty_requests_exactly_one_runs() {
    let server = Arc::new(TestServer::start(&["7"]).await);
    let requests = (0..20).map(|i| {
        let server = server.clone();
        async move {
            server
                .direct(
                    "7",
                    &format!("write mark-{i}.txt request {i}\nwait hold"),
                    "async",
                )
                .await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let accepted = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CONFLICT)
        .collect();
    assert_eq!((accepted, busy.len()), (1, 19), "{answers:?}");
    for (_, body) in &busy {
        assert_eq!(body["error"], "Busy");
        assert!(
            body["details"]
                .as_str()
                .unwrap()
                .contains("wait for it to finish"),
            "{body}"
        );
    }
    // Only now may the accepted task end.
    server.gate("hold").open();
    server.idle().await;
    let files: Vec<_> = std::fs::read_dir(server.workspace("7"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        files.len(),
        1,
        "only the accepted task touched the workspace"
    );
    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
}

#[tokio::test]
async fn fifty_users_at_once_each_in_their_own_workspace() {
    let users: Vec<String> = (1..=50).map(|i| format!("user{i}")).collect();
    let allowed: Vec<&str> = users.iter().map(String::as_str).collect();
    let server = Arc::new(TestServer::start(&allowed).await);
    let requests = users.iter().map(|user| {
        let server = server.clone();
        let user = user.clone();
        async move {
            server
                .direct(&user, &format!("write whoami.txt {user}"), "async")
                .await
        }
    });
    for (status, body) in futures_util::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.idle().await;
    for user in &users {
        let text = std::fs::read_to_string(server.workspace(user).join("whoami.txt")).unwrap();
        assert_eq!(&text, user);
    }
    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_the_right_4xx_and_a_clear_json_error() {
    let long_user = "x".repeat(300);
    let server = TestServer::with(
        &["1", "../x", "/etc"],
        ServerSettings {
            max_body_bytes: 64 * 1024,
            ..Default::default()
        },
        None,
    )
    .await;
    let cases: Vec<(Vec<u8>, StatusCode, &str, &str)> = vec![
        (
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            "not valid JSON",
        ),
        (
            b"\xff\xfe\x00".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid encoding",
            "UTF-8",
        ),
        (
            br#"{"prompt": 5, "user_id": "1"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "string",
        ),
        (
            br#"{"prompt": "hi"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "user_id",
        ),
        (
            br#"{"hello": "there"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Unrecognized payload",
            "update_id",
        ),
        (
            br#"{"prompt": "hi", "user_id": "1", "mode": "later"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "mode",
        ),
        (
            br#"{"prompt": "hi", "user_id": "stranger"}"#.to_vec(),
            StatusCode::FORBIDDEN,
            "Forbidden",
            "not allowed",
        ),
        (
            br#"{"prompt": "hi", "user_id": ""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid user",
            "not valid",
        ),
        (
            json!({"prompt": "hi", "user_id": long_user})
                .to_string()
                .into_bytes(),
            StatusCode::BAD_REQUEST,
            "Invalid user",
            "not valid",
        ),
        (
            json!({"prompt": "x".repeat(100_000), "user_id": "1"})
                .to_string()
                .into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            "max_body_bytes",
        ),
    ];
    for (body, status, error, detail) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (got, answer) = server.invoke(body).await;
        assert_eq!(got, status, "{shown}: {answer}");
        assert_eq!(answer["error"], error, "{shown}: {answer}");
        assert!(
            answer["details"].as_str().unwrap().contains(detail),
            "{shown}: {answer}"
        );
    }
    // Path-like user ids that are allowed get a workspace inside the root, never a path.
    for user in ["../x", "/etc"] {
        let (status, body) = server
            .direct(user, "write probe.txt contained", "sync")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let workspace = server.workspace(user);
        assert!(workspace.starts_with(server.root.path().join("workspaces")));
        assert_eq!(
            std::fs::read_to_string(workspace.join("probe.txt")).unwrap(),
            "contained"
        );
    }
    assert!(!Path::new("/etc/probe.txt").exists());
    assert!(!server.root.path().join("x").exists());
    assert_eq!(
        server.ping().await["status"],
        "Healthy",
        "the server is unharmed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sync_and_stream_modes_answer_as_promised() {
    let server = TestServer::start(&["1"]).await;
    let (status, body) = server
        .direct("1", "thinking\nwrite a.txt alpha", "sync")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["answer"], "done: 2 steps");
    assert_eq!(body["usage"]["requests"], 2);
    assert_eq!(
        server.ping().await["status"],
        "Healthy",
        "idle again when the answer arrives"
    );

    let events = server.stream("hello\nwrite b.txt beta").await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("error"))
        .collect();
    assert_eq!(
        kinds,
        ["text", "tool_started", "tool_finished", "final"],
        "{events:?}"
    );
    assert_eq!(events[0]["text"], "hello");
    assert_eq!(
        (&events[2]["tool"], &events[2]["is_error"]),
        (&json!("Write"), &json!(false))
    );
    assert!(events[2]["output"].is_string(), "{:?}", events[2]);
    assert_eq!(events[3]["answer"], "done: 2 steps");

    let events = server.stream("fail broken on purpose").await;
    let last = events.last().unwrap().clone();
    let message = format!(
        "The task failed: the host ran into an internal error. The operator can find the \
         details in the host's log under task {}.",
        server.state.launcher().task_id(3)
    );
    assert_eq!(
        last,
        json!({"error": message, "error_type": "TaskFailed", "message": message})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn telegram_updates_without_a_bot_token_are_refused_with_the_reason() {
    let server = TestServer::start(&["99"]).await;
    let update = json!({"update_id": 1, "message": {"message_id": 1,
        "from": {"id": 99, "is_bot": false}, "chat": {"id": 99, "type": "private"}, "text": "hi"}});
    let (status, body) = server.invoke(update.to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["details"]
            .as_str()
            .unwrap()
            .contains("AGENT_HOST_TELEGRAM_BOT_TOKEN"),
        "{body}"
    );
    assert_eq!(server.ping().await["status"], "Healthy", "no task started");
    server.shutdown().await;
}

/// A `test-server` process (the real server with the scripted runner).
struct Process {
    child: std::process::Child,
    base: String,
    root: tempfile::TempDir,
    stdin: std::process::ChildStdin,
    /// Each stdout (log) line as it comes.
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// All of stdout, once the process is gone.
    stdout: std::thread::JoinHandle<String>,
}

impl Process {
    fn start(grace_secs: u64) -> Self {
        use std::io::BufRead as _;
        let root = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_test-server"))
            .current_dir(root.path())
            .env("AGENT_HOST_WORKSPACE_ROOT", root.path().join("workspaces"))
            .env("AGENT_HOST_STATE_DIR", root.path().join("state"))
            .env("AGENT_HOST_ALLOWED_USERS", "1")
            .env("AGENT_HOST_SHUTDOWN_GRACE_SECS", grace_secs.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT=")
            .unwrap_or_else(|| panic!("no port: {line}"))
            .to_string();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            for line in stdout.lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
                let _ = sender.send(line);
            }
            text
        });
        Self {
            stdin: child.stdin.take().unwrap(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            root,
            lines,
            stdout,
        }
    }

    /// Waits (bounded) until the process logs a line with this `message`; returns it.
    async fn logged(&mut self, message: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no log line {message:?} in time"))
                .unwrap_or_else(|| panic!("the process ended without logging {message:?}"));
            match serde_json::from_str::<Value>(&line) {
                Ok(line) if line["message"] == message => return line,
                _ => {}
            }
        }
    }

    /// Opens the runner's gate `name` (a line on the process's stdin).
    fn open(&mut self, gate: &str) {
        use std::io::Write as _;
        writeln!(self.stdin, "open {gate}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the exit; returns the exit code, the time it took and the logs.
    fn wait(mut self) -> (Option<i32>, Duration, String, tempfile::TempDir) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let logs = self.stdout.join().unwrap();
                return (status.code(), start.elapsed(), logs, self.root);
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("the server did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The script's task outlasts the grace period: it waits at a gate nobody opens.
#[tokio::test]
async fn sigterm_cancels_a_long_task_cleanly_and_exits_0() {
    let mut process = Process::start(1);
    // Ten files, then the gate, then ten more that are never written.
    let write = |i: usize| format!("write f{i:02}.txt {}", "content ".repeat(200));
    let script: Vec<String> = (0..10)
        .map(write)
        .chain(["wait never".to_string()])
        .chain((10..20).map(write))
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{}/invocations", process.base))
        .header(
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
            "sess-for-logs-00000000000000000000000",
        )
        .header("X-Amzn-Bedrock-AgentCore-Runtime-Request-Id", "req-42")
        .body(json!({"prompt": script.join("\n"), "user_id": "1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    process.logged("script waits at a gate").await;
    process.terminate();
    let (code, took, logs, root) = tokio::task::spawn_blocking(|| process.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "logs:\n{logs}");
    assert!(
        took < Duration::from_secs(1 + 3 + 2),
        "exited within grace + cancel wait ({took:?})"
    );
    let workspace = root.path().join("workspaces/1");
    let mut files: Vec<_> = std::fs::read_dir(&workspace)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        !files.is_empty() && files.len() < 20,
        "the task was cut short: {files:?}"
    );
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: Vec<_> = (0..10).map(|i| format!("f{i:02}.txt")).collect();
    assert_eq!(names, expected, "exactly the writes before the gate");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with('f') && name.ends_with(".txt"),
            "no temporary files left: {name}"
        );
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            "content ".repeat(200).trim_end(),
            "{name} is whole"
        );
    }
    // JSON lines with the request and session ids, like the SDK's.
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "task started")
        .unwrap_or_else(|| panic!("no task-start log line in:\n{logs}"));
    assert_eq!(line["requestId"], "req-42");
    assert_eq!(line["sessionId"], "sess-for-logs-00000000000000000000000");
    assert_eq!(line["level"], "INFO");
    assert!(line["timestamp"].is_string());
    // It was the end of the grace period that stopped the task.
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["message"] == "grace period over: cancelling running tasks"),
        "{logs}"
    );
}

/// The task is still running when SIGTERM arrives: its gate opens only once the server
/// has begun to shut down.
#[tokio::test]
async fn sigterm_lets_a_short_task_finish() {
    let mut process = Process::start(5);
    let response = reqwest::Client::new()
        .post(format!("{}/invocations", process.base))
        .body(
            json!({"prompt": "wait release\nwrite done.txt finished", "user_id": "1"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    process.terminate();
    process
        .logged("shutting down: no new requests; waiting for running tasks")
        .await;
    process.open("release");
    let (code, _, logs, root) = tokio::task::spawn_blocking(|| process.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("workspaces/1/done.txt")).unwrap(),
        "finished"
    );
}
