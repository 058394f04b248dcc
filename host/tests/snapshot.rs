//! Platform V2: AgentCore starts the container once, snapshots it after start, and restores
//! the snapshot for every session. So `serve` may make nothing before its first request
//! that restored copies would share: no connection to any service (model, history store,
//! Telegram, the credential and metadata endpoints), and no ids that two copies would both
//! hand out.
//!
//! Every outside endpoint of a deployed host points at a local listener that counts the
//! connections it is offered. `serve` comes up with the Telegram bot (its token in Secrets
//! Manager) and the S3 history store configured and answers `/ping`; the listeners must have seen nothing. Then one
//! request, and they must see the connections it makes: proof they were listening.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent_host_tests::{free_port, invoke, wait_until_serving};
use serde_json::json;

/// A TCP listener on 127.0.0.1 that counts connections and answers nothing useful
/// (an HTTP 500), so a client that reaches it fails fast.
struct Listener {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { addr, connections }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Every endpoint a deployed host may reach.
struct Endpoints {
    bedrock: Listener,
    s3: Listener,
    telegram: Listener,
    metadata: Listener,
    credentials: Listener,
    secrets: Listener,
}

impl Endpoints {
    async fn start() -> Self {
        Self {
            bedrock: Listener::start().await,
            s3: Listener::start().await,
            telegram: Listener::start().await,
            metadata: Listener::start().await,
            credentials: Listener::start().await,
            secrets: Listener::start().await,
        }
    }

    fn counts(&self) -> [(&'static str, usize); 6] {
        [
            ("bedrock", self.bedrock.count()),
            ("s3", self.s3.count()),
            ("telegram", self.telegram.count()),
            ("instance metadata", self.metadata.count()),
            ("container credentials", self.credentials.count()),
            ("secrets manager", self.secrets.count()),
        ]
    }

    fn total(&self) -> usize {
        self.counts().iter().map(|(_, count)| count).sum()
    }
}

fn serve(root: &Path, port: u16, endpoints: &Endpoints) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agent-host"))
        .args(["serve", "--port", &port.to_string()])
        .current_dir(root)
        .env_clear()
        .env("HOME", root)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENT_HOST_STATE_DIR", root.join("state"))
        .env("AGENT_HOST_ALLOWED_USERS", "7")
        .env("AGENT_HOST_LOG", "warn")
        .env("AGENT_HOST_HISTORY_STORE", "s3")
        .env("AGENT_HOST_HISTORY_S3_BUCKET", "histories")
        // The bot's token in Secrets Manager, as the CDK app deploys it.
        .env(
            "AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET",
            "agent-host/bot-token",
        )
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoints.secrets.url())
        .env("AGENT_HOST_TELEGRAM_API_BASE_URL", endpoints.telegram.url())
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoints.bedrock.url())
        .env("AWS_ENDPOINT_URL_S3", endpoints.s3.url())
        // No region and no keys in the environment: the SDK would ask the instance
        // metadata and the container credentials endpoints, as on AWS.
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            endpoints.metadata.url(),
        )
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/credentials", endpoints.credentials.url()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_reaches_out_before_the_first_request_and_task_ids_differ_per_copy() {
    let endpoints = Endpoints::start().await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = serve(first.path(), port_a, &endpoints);
    let mut b = serve(second.path(), port_b, &endpoints);
    wait_until_serving(port_a).await;
    wait_until_serving(port_b).await;
    // What a snapshot taken now would hold. Background work started at start (there
    // should be none) would show within this window.
    for _ in 0..10 {
        reqwest::get(format!("http://127.0.0.1:{port_a}/ping"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let before = endpoints.counts();
    assert_eq!(
        endpoints.total(),
        0,
        "connections before the first request: {before:?}"
    );

    let ask = json!({"prompt": "hello", "user_id": "7", "mode": "async"});
    let (answer_a, answer_b) = (invoke(port_a, &ask).await, invoke(port_b, &ask).await);
    let deadline = Instant::now() + Duration::from_secs(30);
    while endpoints.total() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = (a.kill(), b.kill(), a.wait(), b.wait());
    assert!(
        endpoints.total() > 0,
        "the first task reached out to nothing: were the listeners in use? {:?}",
        endpoints.counts()
    );
    let (id_a, id_b) = (&answer_a["task_id"], &answer_b["task_id"]);
    assert!(
        id_a.is_string() && id_b.is_string(),
        "{answer_a} {answer_b}"
    );
    assert_ne!(id_a, id_b, "two copies handed out the same first task id");
}
