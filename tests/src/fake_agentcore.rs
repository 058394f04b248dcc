//! A fake of AgentCore's data plane (`bedrock-agentcore`), served on 127.0.0.1: the
//! `InvokeAgentRuntime` operation as the AWS SDK calls it (REST-JSON:
//! `POST /runtimes/<runtime ARN, percent-encoded>/invocations?qualifier=<endpoint>`, the
//! session in `X-Amzn-Bedrock-AgentCore-Runtime-Session-Id`, the payload as the body, a
//! SigV4 `Authorization` header).
//!
//! Every invocation is recorded as an [`Invocation`]; what it answers is the fake's
//! [`Mode`]: take every payload, fail the way AgentCore fails (a status and an
//! `x-amzn-errortype`), never answer, or pass the payload on to a container's
//! `/invocations` as the platform does, answering `424 RuntimeClientError` when the
//! container answers with an error status.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Notify;

/// The session header, on the request and on the answer.
pub const SESSION_HEADER: &str = "x-amzn-bedrock-agentcore-runtime-session-id";

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Takes every payload: `200`, `{"status":"accepted"}`.
    Accept,
    /// Fails every call with this HTTP status and error type (e.g. `500`,
    /// `InternalServerException`; `424`, `RuntimeClientError`).
    Fail(u16, &'static str),
    /// Never answers (the caller times out).
    Hang,
    /// Passes the payload on to `<base URL>/invocations` with the session header, as the
    /// platform does for the session's container.
    Container(String),
}

/// One `InvokeAgentRuntime` call as it arrived.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request path, as sent (percent-encoded).
    pub raw_path: String,
    /// The runtime ARN, decoded from the path.
    pub runtime_arn: String,
    /// The `qualifier` query parameter.
    pub qualifier: Option<String>,
    /// The session id header.
    pub session_id: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
    /// The `Authorization` header (SigV4 when the SDK signed it).
    pub authorization: Option<String>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Invocation {
    /// The payload as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("the payload is JSON")
    }
}

#[derive(Default)]
struct Inner {
    invocations: Vec<Invocation>,
    mode: Option<Mode>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake; dropped with the test's runtime.
pub struct FakeAgentCore {
    addr: SocketAddr,
    shared: Shared,
}

impl FakeAgentCore {
    /// Starts the fake on an ephemeral port of 127.0.0.1, in [`Mode::Accept`].
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake AgentCore binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                mode: Some(Mode::Accept),
                ..Inner::default()
            })),
            changed: Arc::new(Notify::new()),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(invoke).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// The endpoint URL for the SDK (`endpoint_url`, or `AWS_ENDPOINT_URL_BEDROCK_AGENTCORE`).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What later calls get.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().mode = Some(mode);
    }

    /// Every call so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared.lock().invocations.clone()
    }

    /// Waits until `count` calls arrived (or `timeout`); returns them.
    pub async fn wait_for_invocations(&self, count: usize, timeout: Duration) -> Vec<Invocation> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            let invocations = self.invocations();
            if invocations.len() >= count {
                return invocations;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.invocations();
            }
        }
    }
}

async fn invoke(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let payload = to_bytes(body, 100 * 1024 * 1024)
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let header = |headers: &HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let Some(runtime_arn) = raw_path
        .strip_prefix("/runtimes/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(percent_decode)
    else {
        return error(404, "UnknownOperationException", "no such operation");
    };
    let qualifier = parts.uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("qualifier="))
            .map(percent_decode)
    });
    let invocation = Invocation {
        raw_path,
        runtime_arn,
        qualifier,
        session_id: header(&parts.headers, SESSION_HEADER),
        content_type: header(&parts.headers, "content-type"),
        accept: header(&parts.headers, "accept"),
        authorization: header(&parts.headers, "authorization"),
        payload,
    };
    let mode = {
        let mut inner = shared.lock();
        inner.invocations.push(invocation.clone());
        inner.mode.clone().unwrap_or(Mode::Accept)
    };
    shared.changed.notify_waiters();
    let session = invocation.session_id.clone().unwrap_or_default();
    match mode {
        Mode::Accept => answer(200, &session, br#"{"status":"accepted"}"#.to_vec()),
        Mode::Fail(status, kind) => error(status, kind, "the fake was told to fail"),
        Mode::Hang => std::future::pending().await,
        Mode::Container(base) => {
            let sent = shared
                .http
                .post(format!("{base}/invocations"))
                .header(SESSION_HEADER, &session)
                .header(
                    "content-type",
                    invocation
                        .content_type
                        .as_deref()
                        .unwrap_or("application/json"),
                )
                .body(invocation.payload.clone())
                .send()
                .await;
            match sent {
                Ok(reply) if reply.status().is_success() => {
                    let status = reply.status().as_u16();
                    let body = reply.bytes().await.unwrap_or_default().to_vec();
                    answer(status, &session, body)
                }
                Ok(reply) => error(
                    424,
                    "RuntimeClientError",
                    &format!("the container answered {}", reply.status()),
                ),
                Err(failure) => error(
                    424,
                    "RuntimeClientError",
                    &format!("the container could not be reached: {failure}"),
                ),
            }
        }
    }
}

fn answer(status: u16, session: &str, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            ("content-type", "application/json"),
            (SESSION_HEADER, session),
        ],
        Body::from(body),
    )
        .into_response()
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", kind),
        ],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

/// `%3A` → `:` and so on; anything that is not a valid escape is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
